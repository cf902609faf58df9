"""``fewshot-report``: one self-contained HTML report of a classifier on labelled data.

    fewshot-report --classifier out/ --data test.txt --output report.html [--train train.txt]

Metrics (the task's own), per-class precision/recall/F1, a confusion-matrix picture, the most
confused label pairs with texts, a reliability diagram (temperature 1 and the classifier's),
explained examples with shaded characters and — with ``--train`` — the training rows flagged by
k-fold confident learning (each fold starts from the classifier's base model; training options as
``fewshot-train``'s). One file, pictures embedded, no external link; written atomically.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import List, Optional

from ..analysis.label_issues import DEFAULT_FOLDS
from ..analysis.report import DEFAULT_EXPLAINED, build_report, write_report
from ..classifier import DEFAULT_BATCH_SIZE, PromptClassifier
from ..training.progress import quiet_paddlenlp
from ..numbers import int_option
from .common import run
from .options import add_trust_option
from .train import add_fields_option, add_training_options, fit_options, read_rows


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fewshot-report", description="Write an HTML report of a classifier on labelled data.")
    p.add_argument("--classifier", required=True, help="a classifier saved by fewshot-train or PromptClassifier.save")
    add_trust_option(p)
    p.add_argument("--data", required=True, help="labelled rows to report on: text<TAB>label file or JSON lines")
    p.add_argument("--output", required=True, help="the HTML file")
    p.add_argument("--train", help="the training rows: adds the likely label errors among them (k-fold training)")
    p.add_argument("--folds", type=int_option(low=2), default=DEFAULT_FOLDS, help=f"with --train: k (default {DEFAULT_FOLDS})")
    p.add_argument("--explain", type=int_option(low=0), default=DEFAULT_EXPLAINED,
                   help=f"how many texts to explain (default {DEFAULT_EXPLAINED}; mistakes first)")
    p.add_argument("--eval-batch-size", type=int_option(low=1), default=DEFAULT_BATCH_SIZE, help="texts per inference batch")
    add_fields_option(p)
    add_training_options(p, inherit=True)
    return p


def main(argv: Optional[List[str]] = None) -> int:
    """``fewshot-report``: exit status 0, or 2 with one error line for bad input."""
    args = build_parser().parse_args(argv)
    return run(lambda: _report(args), "fewshot-report")


def _report(args: argparse.Namespace) -> int:
    quiet_paddlenlp(args.verbose)
    clf = PromptClassifier.load(args.classifier, trust_pickle=args.trust_pickle)
    data = read_rows(args.data, clf.task, args, clf.template.text)
    train = read_rows(args.train, clf.task, args, clf.template.text) if args.train else None
    options = fit_options(args, clf.training_arguments) if train is not None else {}
    html = build_report(clf, data, train, title=Path(args.data).name, explain=args.explain, folds=args.folds,
                        batch_size=args.eval_batch_size, fit_args=options, seed=args.seed)
    write_report(args.output, html)
    print(f"fewshot-report: {len(data)} rows -> {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
