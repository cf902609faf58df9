"""``fewshot-analyze label-issues``: flag likely mislabelled training rows by k-fold confident learning.

    fewshot-analyze label-issues --train train.txt --labels label.txt --model ernie-3.0-base-zh \\
        --folds 3 --max-steps 100 --output issues.tsv
    fewshot-analyze label-issues --train train.txt --classifier out/ --output issues.tsv

Each fold's classifier starts from the base model: from ``--model`` and the classifier options, or
with the settings of a saved ``--classifier`` (its base model loaded again; its trained weights are
not used — they have seen every row). Training options are ``fewshot-train``'s. The output is
tab-separated with a header: ``line`` (in ``--train``), ``text``, ``given``, ``suggested``, ``score``
(cleanlab's label quality: low is suspicious), ``flagged``; flagged rows only, most suspicious first;
``--all`` writes the other rows after them, in the same order.
"""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from ..analysis.label_issues import DEFAULT_FOLDS, issue_rows, out_of_fold_probabilities, rank_label_issues
from ..analysis.tables import write_tsv
from ..classifier import PromptClassifier
from ..training.progress import quiet_paddlenlp
from ..numbers import int_option
from .common import run
from .options import add_trust_option
from .train import add_classifier_options, add_fields_option, add_training_options, classifier_from_args, fit_options
from .train import read_rows, task_from_args

COLUMNS = ("line", "text", "given", "suggested", "score", "flagged", "fold_accuracy")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fewshot-analyze", description="Look for problems in labelled data.")
    commands = p.add_subparsers(dest="command", required=True)
    issues = commands.add_parser("label-issues", help="rank likely mislabelled rows (k-fold confident learning)",
                                 description=__doc__.split("\n\n")[0])
    issues.add_argument("--train", required=True, help="labelled rows: text<TAB>label file or JSON lines")
    issues.add_argument("--output", required=True, help="the ranked rows (tab-separated, header line)")
    issues.add_argument("--classifier", help="a saved classifier whose settings (not weights) every fold uses; "
                                             "instead of --model/--labels")
    add_trust_option(issues)
    issues.add_argument("--folds", type=int_option(low=2), default=DEFAULT_FOLDS, help=f"k of the k-fold training (default {DEFAULT_FOLDS})")
    issues.add_argument("--all", action="store_true", help="write every row, not only the flagged ones")
    add_classifier_options(issues, required=False)
    add_fields_option(issues)
    add_training_options(issues, inherit=True)
    return p


def main(argv: Optional[List[str]] = None) -> int:
    """``fewshot-analyze``: exit status 0, or 2 with one error line for bad input."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.classifier and not (args.model and args.labels):
        parser.error("label-issues needs --classifier DIR, or --model and --labels")
    return run(lambda: _label_issues(args), "fewshot-analyze")


def _label_issues(args: argparse.Namespace) -> int:
    quiet_paddlenlp(args.verbose)
    if args.classifier:
        saved = PromptClassifier.load(args.classifier, trust_pickle=args.trust_pickle)
        task, build = saved.task, lambda: saved.untrained_copy(seed=args.seed)
        fit = fit_options(args, saved.training_arguments)
    else:
        fit = fit_options(args)
        label_words, task = task_from_args(args)
        build = lambda: classifier_from_args(args, label_words, task_from_args(args)[1])  # noqa: E731
    examples = read_rows(args.train, task, args)
    print(f"fewshot-analyze: {len(examples)} rows, {args.folds}-fold training", file=sys.stderr)
    oof = out_of_fold_probabilities(build, examples, folds=args.folds, split_seed=args.seed, **fit)
    issues = rank_label_issues(oof.task, examples, oof.probs, include_unflagged=args.all,
                               fold_accuracy=oof.row_accuracy())
    write_tsv(args.output, COLUMNS, issue_rows(issues, oof.task.label_field))
    accuracy = ", ".join(f"{a:.3f}" for a in oof.fold_accuracy)
    print(f"fewshot-analyze: fold accuracy {accuracy} (held out)", file=sys.stderr)
    flagged = sum(issue.flagged for issue in issues)
    print(f"fewshot-analyze: {flagged} of {len(examples)} rows flagged -> {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
