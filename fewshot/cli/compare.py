"""``fewshot-compare``: prompt-tune several checkpoints with the same settings and print a Markdown table.

    fewshot-compare --checkpoints base=ernie-3.0-base-zh runs/domain/model_1000 --train train.txt \
        --test test.txt --labels label.txt --seeds 0 1 2

Training options and defaults are generated from ``PromptTrainingArguments`` (as for fewshot-train).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from ..classifier import DEFAULT_MAX_SEQ_LENGTH, DEFAULT_TEMPLATE
from ..data import DEFAULT_JSON_FIELDS, format_fields, is_json_lines, label_words_from_mapping, parse_fields, read_examples, read_label_words
from ..errors import DataError
from ..pretraining.compare import compare_checkpoints, markdown_table, parse_checkpoint, read_groups
from ..prompt.verbalizers import VERBALIZERS
from ..training.arguments import PromptTrainingArguments
from ..training.progress import LossLines, quiet_paddlenlp
from ..numbers import int_option
from .common import run, show_fewshot_logs
from .options import OnceOption, add_dataclass_options, dataclass_values

TRAINING_OPTIONS = ("max_steps", "num_train_epochs", "per_device_train_batch_size", "learning_rate", "logging_steps")
FLAGS = {"num_train_epochs": "--epochs", "per_device_train_batch_size": "--batch-size"}


def load_labels(path: str) -> Any:
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
    default_fields = format_fields(DEFAULT_JSON_FIELDS)
    p = argparse.ArgumentParser(
        prog="fewshot-compare",
        description="Prompt-tune several checkpoints with the same settings and print a Markdown table of accuracy.",
    )
    p.add_argument("--checkpoints", nargs="+", required=True,
                   help="model directories or names, optionally name=path (e.g. base=ernie-3.0-nano-zh out/model_320)")
    p.add_argument("--train", required=True, help="labelled training data (text<TAB>label or JSON lines)")
    p.add_argument("--test", required=True, help="labelled test data, same formats")
    p.add_argument("--labels", required=True, help="label file (label==word lines) or JSON {label: word(s)}")
    p.add_argument("--template", action=OnceOption, default=DEFAULT_TEMPLATE, help=f"prompt template (default {DEFAULT_TEMPLATE})")
    p.add_argument("--group-field", default=None, help="JSON key of the test data's group/domain column")
    p.add_argument("--fields", default=default_fields, help=f"JSON-lines field mapping (default {default_fields})")
    p.add_argument("--seeds", type=int_option(low=0, high=2**32 - 1), nargs="+", default=[0], help="one training run per seed; the table shows the mean")
    p.add_argument("--max-seq-length", type=int_option(low=1), default=DEFAULT_MAX_SEQ_LENGTH)
    p.add_argument("--verbalizer", choices=list(VERBALIZERS), default="manual")
    p.add_argument("--output", default=None, help="write all results (every seed, every group) to this JSON file")
    p.add_argument("--markdown", default=None, help="also write the Markdown table to this file")
    p.add_argument("--verbose", action="store_true", help="PaddleNLP's full log")
    add_dataclass_options(p, PromptTrainingArguments, TRAINING_OPTIONS, FLAGS)
    return p


def main(argv: Optional[List[str]] = None) -> int:
    """``fewshot-compare``: print the Markdown comparison table; exit 2 with one error line on bad input."""
    args = build_parser().parse_args(argv)
    return run(lambda: _compare(args), "fewshot-compare")


def _compare(args: argparse.Namespace) -> int:
    quiet_paddlenlp(args.verbose)
    show_fewshot_logs()
    labels = load_labels(args.labels)
    label_words = label_words_from_mapping(labels) if isinstance(labels, dict) else read_label_words(labels)
    fields = parse_fields(args.fields)
    names = list(label_words)

    def read(path: str):
        return read_examples(path, labels=names, fields=fields if is_json_lines(path) else None)

    train, test = read(args.train), read(args.test)
    groups = read_groups(args.test, args.group_field) if args.group_field else None
    results = compare_checkpoints(
        [parse_checkpoint(spec) for spec in args.checkpoints], train, test, label_words,
        template=args.template, groups=groups, seeds=args.seeds, max_seq_length=args.max_seq_length,
        verbalizer=args.verbalizer, callbacks=[] if args.verbose else [LossLines()],
        **dataclass_values(args, TRAINING_OPTIONS),
    )
    sizes = _counts(groups) if groups else None
    table = markdown_table(results, sizes)
    print(table)
    if args.markdown:
        Path(args.markdown).write_text(table + "\n", encoding="utf-8")
    if args.output:
        settings = {k: v for k, v in vars(args).items()}
        payload = {"settings": settings, "results": [r.to_dict() for r in results], "group_sizes": sizes}
        Path(args.output).write_text(json.dumps(payload, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return 0


def _counts(values: Sequence[str]) -> Dict[str, int]:
    counts: Dict[str, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return counts


if __name__ == "__main__":
    sys.exit(main())
