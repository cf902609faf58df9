"""``fewshot-export``: write a deployment bundle (static graph, ONNX, INT8/FP16, manifest) for a saved classifier.

    fewshot-export --checkpoint out/ --output bundle/ --int8
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import List, Optional

from ..atomic import check_inputs_outside, check_replaceable
from ..classifier import PromptClassifier
from ..runtime.manifest import MANIFEST_NAME
from ..export.convert import DEFAULT_OPSET
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
    p.add_argument("--opset", type=int_option(low=7), default=DEFAULT_OPSET, help=f"ONNX opset (default {DEFAULT_OPSET})")
    p.add_argument("--fp16", action="store_true", help="also write model.fp16.onnx for GPU")
    p.add_argument("--int8", action="store_true", help="also write model.int8.onnx (dynamic quantisation, CPU)")
    add_trust_option(p)
    p.add_argument("--verbose", action="store_true", help="PaddleNLP's full log")
    return p


def main(argv: Optional[List[str]] = None) -> int:
    """``fewshot-export``: exit status 0, or 2 with one error line for bad input."""
    args = build_parser().parse_args(argv)
    return run(lambda: _export(args), "fewshot-export")


def _export(args: argparse.Namespace) -> int:
    quiet_paddlenlp(args.verbose)
    check_replaceable(args.output, MANIFEST_NAME, "the bundle")
    check_inputs_outside(args.output, [args.checkpoint])
    clf = PromptClassifier.load(args.checkpoint, trust_pickle=args.trust_pickle)
    bundle = clf.export(args.output, onnx=args.onnx, opset=args.opset, fp16=args.fp16, int8=args.int8)
    files = sorted(p.name for p in Path(bundle).iterdir())
    print(f"fewshot-export: wrote {bundle} ({', '.join(files)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
