"""``fewshot-export``: write a deployment bundle (static graph, ONNX, INT8/FP16, manifest) for a saved classifier.

    fewshot-export --checkpoint out/ --output bundle/ --int8
    fewshot-export --checkpoint out/ --output bundle/ --int8 --calibration unlabeled.txt --check-data dev.json

``--calibration`` quantises the int8 model statically, its activation ranges taken from a few hundred
unlabelled texts (without it: dynamic quantisation); ``--check-data`` (labelled) measures the accuracy
int8 costs and its top-1 agreement with fp32, printed and written into the manifest's
``export_check.int8_check`` (``--engine auto`` then passes over an int8 model that agrees less than 96 %).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import List, Optional

from ..atomic import check_inputs_outside, check_replaceable
from ..classifier import PromptClassifier
from ..runtime.manifest import MANIFEST_NAME, read_manifest
from ..data import DEFAULT_JSON_FIELDS, format_fields, parse_fields
from ..export.calibration import Calibration
from ..export.convert import DEFAULT_OPSET, MIN_OPSET
from ..errors import FewshotError
from ..training.progress import quiet_paddlenlp
from ..numbers import int_option
from .common import run
from .options import add_trust_option


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="fewshot-export",
        description="Export a trained classifier to a bundle: Paddle static graph, ONNX, tokenizer, fewshot.json.",
    )
    p.add_argument("--checkpoint", required=True, help="directory written by fewshot-train or PromptClassifier.save")
    p.add_argument("--output", required=True, help="bundle directory (replaced atomically)")
    p.add_argument("--onnx", action=argparse.BooleanOptionalAction, default=True, help="write model.onnx (default: yes)")
    p.add_argument("--opset", type=int_option(low=MIN_OPSET), default=DEFAULT_OPSET,
                   help=f"ONNX opset (default {DEFAULT_OPSET}; at least {MIN_OPSET}, which every runtime reads alike)")
    p.add_argument("--fp16", action="store_true", help="also write model.fp16.onnx for GPU")
    p.add_argument("--int8", action="store_true",
                   help="also write model.int8.onnx (CPU): dynamic quantisation, or static with --calibration")
    p.add_argument("--calibration", default=None, metavar="FILE",
                   help="--int8: unlabelled texts (text lines or JSON lines) that set the int8 activation ranges")
    p.add_argument("--check-data", default=None, metavar="FILE",
                   help="--int8: labelled file on which the export measures the accuracy int8 costs")
    p.add_argument("--fields", default=None,
                   help=f"JSON-lines keys of --calibration/--check-data (default {format_fields(DEFAULT_JSON_FIELDS)})")
    add_trust_option(p)
    p.add_argument("--verbose", action="store_true", help="PaddleNLP's full log")
    return p


def main(argv: Optional[List[str]] = None) -> int:
    """``fewshot-export``: exit status 0, or 2 with one error line for bad input."""
    args = build_parser().parse_args(argv)
    return run(lambda: _export(args), "fewshot-export")


def _export(args: argparse.Namespace) -> int:
    quiet_paddlenlp(args.verbose)
    if (args.check_data or args.calibration) and not args.int8:
        raise FewshotError("--calibration and --check-data are about the int8 model; add --int8")
    check_replaceable(args.output, MANIFEST_NAME, "the bundle")
    check_inputs_outside(args.output, [args.checkpoint])
    clf = PromptClassifier.load(args.checkpoint, trust_pickle=args.trust_pickle)
    fields = parse_fields(args.fields) if args.fields else None
    calibration = (Calibration.from_files(args.calibration, args.check_data, clf.labels, fields)
                   if args.calibration or args.check_data else None)
    bundle = clf.export(args.output, onnx=args.onnx, opset=args.opset, fp16=args.fp16, int8=args.int8,
                        calibration=calibration)
    files = sorted(p.name for p in Path(bundle).iterdir())
    print(f"fewshot-export: wrote {bundle} ({', '.join(files)})")
    change = read_manifest(bundle)["export_check"].get("int8_check")
    if change:
        print(f"fewshot-export: int8 on {args.check_data} ({change['examples']} examples): {change['metric']} "
              f"{change['fp32']:.4f} -> {change['int8']:.4f} ({change['delta']:+.4f}), "
              f"top-1 agreement {change['top1_agreement']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
