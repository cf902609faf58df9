"""``fewshot-import``: turn a checkpoint of PaddleNLP's few-shot example into a saved fewshot classifier.

    fewshot-import --paddlenlp checkpoints/ --model ernie-3.0-base-zh --output clf/ --trust-pickle

after which ``fewshot-export --checkpoint clf/``, ``fewshot-predict`` and the Python API work on it.
"""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from ..classifier import PromptClassifier
from ..numbers import int_option
from ..prompt.verbalizers import VERBALIZERS, verbalizer_option
from ..training.progress import quiet_paddlenlp
from .common import run


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="fewshot-import",
        description="Import a PaddleNLP few-shot checkpoint (model_state.pdparams, template_config.json, "
                    "verbalizer_config.json) as a fewshot classifier saved with safetensors.",
    )
    p.add_argument("--paddlenlp", required=True, metavar="DIR",
                   help="directory written by PaddleNLP's PromptTrainer (its --output_dir or a checkpoint-N)")
    p.add_argument("--output", required=True, help="classifier directory to write (replaced atomically)")
    p.add_argument("--model", "--model_name_or_path", dest="model", default=None,
                   help="the base model it was trained from (default: DIR/plm, written with --save_plm)")
    p.add_argument("--max-seq-length", "--max_seq_length", dest="max_seq_length", type=int_option(low=8),
                   default=None, help="default: the one in DIR/training_args.bin, else PaddleNLP's 512")
    p.add_argument("--verbalizer", type=verbalizer_option, default=None, metavar="KIND[:OPTION=VALUE,...]",
                   help=f"override the verbalizer ({', '.join(VERBALIZERS)}), e.g. "
                        "paddlenlp:mask_aggregate_type=mean when it was trained with non-default options")
    p.add_argument("--trust-pickle", action="store_true",
                   help="read DIR/model_state.pdparams, a pickle that can run code when loaded: only for a "
                        "checkpoint you trust (required: PaddleNLP saves no other format)")
    p.add_argument("--verbose", action="store_true", help="PaddleNLP's full log")
    return p


def main(argv: Optional[List[str]] = None) -> int:
    """``fewshot-import``: exit status 0, or 2 with one error line for bad input."""
    args = build_parser().parse_args(argv)
    return run(lambda: _import(args), "fewshot-import")


def _import(args: argparse.Namespace) -> int:
    quiet_paddlenlp(args.verbose)
    clf = PromptClassifier.from_paddlenlp(args.paddlenlp, base_model=args.model, trust_pickle=args.trust_pickle,
                                          max_seq_length=args.max_seq_length, verbalizer=args.verbalizer)
    output = clf.save(args.output)
    print(f"fewshot-import: wrote {output} ({len(clf.labels)} labels, verbalizer {clf.config()['verbalizer']}, "
          f"template {clf.template.text})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
