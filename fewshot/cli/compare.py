"""``fewshot-compare``: train several checkpoints (and methods) with the same settings and seeds; print two tables.

    fewshot-compare --checkpoints base=ernie-3.0-base-zh base@320=runs/domain/model_320 \\
        --method prompt finetune --hierarchical --labels label.txt --train train.jsonl --dev dev.jsonl \\
        --test test.jsonl --group-field domain --seeds 0 1 2 --early-stopping-patience 3 --eval-steps 20

Every run is scored by ``PromptClassifier.evaluate`` on the whole test set and on each group
(``--group-field``), so the figures are those of ``evaluate`` for every task kind. The classifier,
data and training options are the shared ones of ``fewshot-train``.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path
from typing import Any, List, Optional, Union

from ..atomic import atomic_file
from ..classifier import DEFAULT_BATCH_SIZE, PromptClassifier
from ..comparison.checkpoints import parse_checkpoint
from ..comparison.runs import Candidate, compare_candidates, group_rows, read_groups
from ..comparison.tables import json_document, markdown_tables
from ..documents import json_text
from ..errors import DataError
from ..numbers import int_option
from ..training.progress import quiet_paddlenlp
from .common import run, show_fewshot_logs
from .train import (
    add_classifier_options,
    add_fields_option,
    add_training_options,
    classifier_from_args,
    fit_options,
    read_rows,
    task_from_args,
)


def load_labels(path: str) -> Union[str, dict]:
    """Label words from a ``.json`` ``{label: word(s)}`` file, else the path of a label file."""
    if Path(path).suffix.lower() != ".json":
        return path
    try:
        mapping = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: cannot read label words as JSON ({exc})") from None
    if not isinstance(mapping, dict) or not mapping:
        raise DataError(f"{path}: expected a JSON object {{label: word or [words]}}")
    return mapping


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="fewshot-compare",
        description="Train several checkpoints (and methods) with the same settings and seeds; print a table of "
        "the headline metrics per domain and a table per domain and level (Markdown, optionally JSON).",
    )
    add_classifier_options(p, several=True)
    p.add_argument("--train", required=True, help="labelled training data (text<TAB>label or JSON lines)")
    p.add_argument("--test", required=True, help="labelled test data, same formats")
    p.add_argument("--dev", default=None, help="dev data for early stopping (--early-stopping-patience)")
    p.add_argument("--group-field", default=None, help="JSON key of the test rows' group (domain), e.g. domain")
    p.add_argument("--seeds", type=int, nargs="+", default=None,
                   help="one training run per seed; cells are mean ± std (default: one run with --seed)")
    p.add_argument("--level-names", nargs="+", default=[], metavar="NAME",
                   help="--hierarchical: titles of the per-level columns, top level first (e.g. 专业 分部 分项)")
    p.add_argument("--eval-batch-size", type=int_option(low=1), default=DEFAULT_BATCH_SIZE,
                   help=f"texts per inference batch when scoring (default {DEFAULT_BATCH_SIZE})")
    p.add_argument("--output", default=None, help="write every run's metrics and the summary to this JSON file")
    p.add_argument("--markdown", default=None, help="also write the Markdown tables to this file")
    add_fields_option(p)
    add_training_options(p)
    return p


def main(argv: Optional[List[str]] = None) -> int:
    """``fewshot-compare``: print the Markdown tables; exit 2 with one error line on bad input."""
    args = build_parser().parse_args(argv)
    return run(lambda: _compare(args), "fewshot-compare")


def _compare(args: argparse.Namespace) -> int:
    quiet_paddlenlp(args.verbose)
    show_fewshot_logs()
    args.labels = load_labels(args.labels)
    label_words, task = task_from_args(args)
    train, test = read_rows(args.train, task, args), read_rows(args.test, task, args)
    dev = read_rows(args.dev, task, args) if args.dev else None
    groups = read_groups(args.test, args.group_field) if args.group_field else None
    sizes = {group: len(rows) for group, rows in group_rows(test, groups).items()}
    candidates = [Candidate(name, path, method) for name, path in map(parse_checkpoint, args.model)
                  for method in dict.fromkeys(args.method)]

    def make_classifier(path: str, method: str, seed: int) -> PromptClassifier:
        options = argparse.Namespace(**{**vars(args), "model": path, "method": method, "seed": seed})
        return classifier_from_args(options, label_words, copy.deepcopy(task))

    fit_args = {k: v for k, v in fit_options(args).items() if k != "seed"}
    seeds = args.seeds or [args.seed]
    results = compare_candidates(candidates, make_classifier, train, test, groups=groups, seeds=seeds,
                                 fit_args=fit_args, dev=dev, eval_batch_size=args.eval_batch_size)
    tables = markdown_tables(results, sizes, args.level_names)
    print(tables)
    if args.markdown:
        _write(args.markdown, tables + "\n")
    if args.output:
        settings = {k: v for k, v in vars(args).items() if _plain(v)}
        _write(args.output, json_text(json_document(results, sizes, settings)))
    return 0


def _plain(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool, list, dict))


def _write(path: str, text: str) -> None:
    with atomic_file(path, "the comparison") as tmp:
        Path(tmp).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
