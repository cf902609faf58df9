"""``fewshot-compare``: prompt-tune several checkpoints the same way and tabulate their accuracy.

The table a user puts in a report to choose a pretraining checkpoint::

    | checkpoint   | step | held-out MLM ppl | accuracy        | macro-F1 |
    |--------------|-----:|-----------------:|----------------:|---------:|
    | zh-ernie-tiny |   – |                – | 0.4512 ± 0.0071 |   0.4210 |
    | model_320    |  320 |            21.40 | **0.4630** ± …  |   0.4388 |

plus, when the test data has a group (domain) column, one row per group with each checkpoint's
accuracy. Every checkpoint is trained with the same template, label words, training arguments
and seeds, so the only difference between rows is the checkpoint.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from .data import Example, PathLike, read_examples, read_lines
from .errors import DataError, FewshotError

logger = logging.getLogger(__name__)

DEFAULT_FIT_ARGS: Mapping[str, Any] = {
    "max_steps": 200,
    "learning_rate": 3e-5,
    "per_device_train_batch_size": 8,
    "logging_steps": 1000,
    "evaluation_strategy": "no",
    "save_strategy": "no",
    "disable_tqdm": True,
    "report_to": [],
}
"""Training arguments used for every checkpoint unless the caller overrides them."""


@dataclass
class CheckpointResult:
    """Test metrics of one checkpoint after prompt-tuning, averaged over seeds (``runs`` has each seed)."""

    name: str
    path: str
    step: Optional[int]
    eval_perplexity: Optional[float]
    accuracy: float
    accuracy_std: float
    macro_f1: float
    group_accuracy: Dict[str, float] = field(default_factory=dict)
    runs: List[Dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


def parse_checkpoint(spec: str) -> Tuple[str, str]:
    """``"name=path"`` → ``(name, path)``; a bare path is named by its last component.

    >>> parse_checkpoint("base=../shared/models/zh-ernie-tiny")
    ('base', '../shared/models/zh-ernie-tiny')
    >>> parse_checkpoint("out/model_320")
    ('model_320', 'out/model_320')
    """
    name, sep, path = spec.partition("=")
    if sep and name.strip() and path.strip():
        return name.strip(), path.strip()
    return Path(spec.rstrip("/")).name or spec, spec


def checkpoint_step(path: str) -> Tuple[Optional[int], Optional[float]]:
    """``(pretraining step, held-out perplexity)`` from ``pretrain_info.json``, else the ``model_<step>`` name."""
    from .pretrain import model_step, read_pretrain_info

    info = read_pretrain_info(path) if Path(path).is_dir() else {}
    step = info.get("step")
    if step is None and model_step(path) >= 0:
        step = model_step(path)
    ppl = info.get("eval_perplexity")
    return step, float(ppl) if ppl is not None else None


def read_groups(path: PathLike, group_field: str) -> List[str]:
    """The ``group_field`` value of each non-blank JSON line, in the order ``read_examples`` returns rows."""
    if Path(path).suffix.lower() not in (".json", ".jsonl"):
        raise DataError(f"{path}: --group-field needs JSON lines (.json/.jsonl)")
    groups = []
    for number, line in read_lines(path):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path} line {number}: invalid JSON ({exc.msg})") from None
        value = row.get(group_field) if isinstance(row, dict) else None
        if not isinstance(value, (str, int, float)) or isinstance(value, bool) or str(value).strip() == "":
            raise DataError(f"{path} line {number}: no group in '{group_field}'")
        groups.append(str(value).strip())
    return groups


def evaluate_predictions(
    predicted: Sequence[str], gold: Sequence[str], labels: Sequence[str], groups: Optional[Sequence[str]] = None
) -> Dict[str, Any]:
    """Accuracy and macro-F1 of predicted label names, and accuracy per group when ``groups`` is given."""
    from sklearn.metrics import accuracy_score, f1_score

    metrics: Dict[str, Any] = {
        "accuracy": float(accuracy_score(gold, predicted)),
        "macro_f1": float(f1_score(gold, predicted, labels=list(labels), average="macro", zero_division=0)),
    }
    if groups is not None:
        by_group: Dict[str, List[int]] = {}
        for i, group in enumerate(groups):
            by_group.setdefault(group, []).append(i)
        metrics["groups"] = {
            group: float(accuracy_score([gold[i] for i in idx], [predicted[i] for i in idx]))
            for group, idx in sorted(by_group.items())
        }
    return metrics


def compare_checkpoints(
    checkpoints: Sequence[Tuple[str, str]],
    train: Sequence[Example],
    test: Sequence[Example],
    labels: Any,
    template: Optional[str] = None,
    groups: Optional[Sequence[str]] = None,
    seeds: Sequence[int] = (0,),
    max_seq_length: int = 128,
    verbalizer: str = "manual",
    **fit_args: Any,
) -> List[CheckpointResult]:
    """Prompt-tune each ``(name, path)`` checkpoint on ``train`` with every seed and score it on ``test``.

    ``labels`` is what ``PromptClassifier`` takes (label file, ``{label: words}`` mapping).
    ``fit_args`` override :data:`DEFAULT_FIT_ARGS`; the same ones are used for every checkpoint.
    ``groups`` (one per test example) adds per-group accuracy.
    """
    if not checkpoints:
        raise FewshotError("no checkpoints to compare")
    if groups is not None and len(groups) != len(test):
        raise DataError(f"{len(groups)} groups for {len(test)} test examples")
    if not seeds:
        raise FewshotError("no seeds given")
    args = dict(DEFAULT_FIT_ARGS, **fit_args)
    results = []
    for name, path in checkpoints:
        runs = [
            _fit_and_score(path, train, test, labels, template, groups, seed, max_seq_length, verbalizer, args)
            for seed in seeds
        ]
        for seed, run in zip(seeds, runs):
            logger.info("%s seed %d: accuracy %.4f (%.0f s)", name, seed, run["accuracy"], run["seconds"])
        results.append(_summarize(name, path, runs))
    return results


def _fit_and_score(
    path: str,
    train: Sequence[Example],
    test: Sequence[Example],
    labels: Any,
    template: Optional[str],
    groups: Optional[Sequence[str]],
    seed: int,
    max_seq_length: int,
    verbalizer: str,
    fit_args: Dict[str, Any],
) -> Dict[str, Any]:
    """Train one classifier from ``path`` with ``seed`` and return its test metrics."""
    from .classifier import DEFAULT_TEMPLATE, PromptClassifier

    start = time.perf_counter()
    clf = PromptClassifier(
        path, labels=labels, template=template or DEFAULT_TEMPLATE, verbalizer=verbalizer,
        max_seq_length=max_seq_length, seed=seed,
    )
    clf.fit(list(train), seed=seed, **fit_args)
    predicted = clf.predict(list(test))
    metrics = evaluate_predictions(predicted, [e.label for e in test], clf.labels, groups)
    metrics.update(seed=seed, seconds=time.perf_counter() - start)
    del clf
    gc.collect()
    return metrics


def _summarize(name: str, path: str, runs: List[Dict[str, Any]]) -> CheckpointResult:
    accuracies = [run["accuracy"] for run in runs]
    step, ppl = checkpoint_step(path)
    group_names = runs[0].get("groups", {})
    return CheckpointResult(
        name=name,
        path=path,
        step=step,
        eval_perplexity=ppl,
        accuracy=statistics.fmean(accuracies),
        accuracy_std=statistics.pstdev(accuracies) if len(accuracies) > 1 else 0.0,
        macro_f1=statistics.fmean(run["macro_f1"] for run in runs),
        group_accuracy={g: statistics.fmean(run["groups"][g] for run in runs) for g in group_names},
        runs=runs,
    )


def markdown_table(results: Sequence[CheckpointResult], group_sizes: Optional[Mapping[str, int]] = None) -> str:
    """The overall table (best accuracy in bold) and, when results have groups, a per-group table."""
    best = max(r.accuracy for r in results)
    show_std = any(len(r.runs) > 1 for r in results)
    lines = [
        "| checkpoint | step | held-out MLM ppl | accuracy | macro-F1 |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in results:
        accuracy = _bold(f"{r.accuracy:.4f}", r.accuracy == best)
        if show_std:
            accuracy += f" ± {r.accuracy_std:.4f}"
        step = "–" if r.step is None else str(r.step)
        ppl = "–" if r.eval_perplexity is None else f"{r.eval_perplexity:.2f}"
        lines.append(f"| {r.name} | {step} | {ppl} | {accuracy} | {r.macro_f1:.4f} |")
    if results[0].group_accuracy:
        lines += ["", _group_table(results, group_sizes or {})]
    return "\n".join(lines)


def _group_table(results: Sequence[CheckpointResult], group_sizes: Mapping[str, int]) -> str:
    names = [r.name for r in results]
    lines = [
        "| group | n | " + " | ".join(names) + " |",
        "|---|---:|" + "---:|" * len(names),
    ]
    for group in results[0].group_accuracy:
        values = [r.group_accuracy[group] for r in results]
        cells = [_bold(f"{v:.4f}", v == max(values)) for v in values]
        size = str(group_sizes.get(group, "–"))
        lines.append(f"| {group} | {size} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _bold(text: str, flag: bool) -> str:
    return f"**{text}**" if flag else text


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
    from .cli import TNEWS_FIELDS

    p = argparse.ArgumentParser(
        prog="fewshot-compare",
        description="Prompt-tune several checkpoints with the same settings and print a Markdown table of accuracy.",
    )
    p.add_argument("--checkpoints", nargs="+", required=True,
                   help="model directories or names, optionally name=path (e.g. base=ernie-3.0-nano-zh out/model_320)")
    p.add_argument("--train", required=True, help="labelled training data (text<TAB>label or JSON lines)")
    p.add_argument("--test", required=True, help="labelled test data, same formats")
    p.add_argument("--labels", required=True, help="label file (label==word lines) or JSON {label: word(s)}")
    p.add_argument("--template", default=None, help="prompt template (default: PromptClassifier's)")
    p.add_argument("--group-field", default=None, help="JSON key of the test data's group/domain column")
    p.add_argument("--fields", default=TNEWS_FIELDS, help=f"JSON-lines field mapping (default {TNEWS_FIELDS})")
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="one training run per seed; the table shows the mean")
    p.add_argument("--max-steps", type=int, default=DEFAULT_FIT_ARGS["max_steps"])
    p.add_argument("--batch-size", type=int, default=DEFAULT_FIT_ARGS["per_device_train_batch_size"])
    p.add_argument("--learning-rate", type=float, default=DEFAULT_FIT_ARGS["learning_rate"])
    p.add_argument("--max-seq-length", type=int, default=128)
    p.add_argument("--verbalizer", choices=["manual", "soft"], default="manual")
    p.add_argument("--output", default=None, help="write all results (every seed, every group) to this JSON file")
    p.add_argument("--markdown", default=None, help="also write the Markdown table to this file")
    return p


def main(argv: Optional[List[str]] = None) -> int:
    """``fewshot-compare``: print the Markdown comparison table; exit 2 on bad input."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from .cli import json_fields, parse_fields
    from .labels import label_words_from_mapping, read_label_words

    try:
        labels = load_labels(args.labels)
        label_words = label_words_from_mapping(labels) if isinstance(labels, dict) else read_label_words(labels)
        fields = parse_fields(args.fields)
        names = list(label_words)
        train = read_examples(args.train, labels=names, fields=json_fields(args.train, fields))
        test = read_examples(args.test, labels=names, fields=json_fields(args.test, fields))
        groups = read_groups(args.test, args.group_field) if args.group_field else None
        results = compare_checkpoints(
            [parse_checkpoint(spec) for spec in args.checkpoints], train, test, label_words,
            template=args.template, groups=groups, seeds=args.seeds, max_seq_length=args.max_seq_length,
            verbalizer=args.verbalizer, max_steps=args.max_steps, learning_rate=args.learning_rate,
            per_device_train_batch_size=args.batch_size,
        )
    except FewshotError as exc:
        print(f"fewshot-compare: error: {exc}", file=sys.stderr)
        return 2
    sizes = _counts(groups) if groups else None
    table = markdown_table(results, sizes)
    print(table)
    if args.markdown:
        Path(args.markdown).write_text(table + "\n", encoding="utf-8")
    if args.output:
        payload = {"settings": vars(args), "results": [r.to_dict() for r in results], "group_sizes": sizes}
        Path(args.output).write_text(json.dumps(payload, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return 0


def _counts(values: Sequence[str]) -> Dict[str, int]:
    counts: Dict[str, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return counts


if __name__ == "__main__":
    sys.exit(main())
