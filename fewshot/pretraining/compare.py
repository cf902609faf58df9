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

import gc
import logging
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from ..classifier import DEFAULT_MAX_SEQ_LENGTH, DEFAULT_TEMPLATE, PromptClassifier
from ..data import Example, PathLike, is_json_lines, parse_json_object, read_lines
from ..errors import DataError, FewshotError
from .pretrain import model_step, read_pretrain_info

logger = logging.getLogger(__name__)

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
    info = read_pretrain_info(path) if Path(path).is_dir() else {}
    step = info.get("step")
    if step is None and model_step(path) >= 0:
        step = model_step(path)
    ppl = info.get("eval_perplexity")
    return step, float(ppl) if ppl is not None else None


def read_groups(path: PathLike, group_field: str) -> List[str]:
    """The ``group_field`` value of each non-blank JSON line, in the order ``read_examples`` returns rows."""
    if not is_json_lines(path):
        raise DataError(f"{path}: --group-field needs JSON lines (.json/.jsonl)")
    groups = []
    for number, line in read_lines(path):
        if not line.strip():
            continue
        try:
            row = parse_json_object(line)
        except DataError as exc:
            raise DataError(f"{path} line {number}: {exc}") from None
        value = row.get(group_field)
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
    max_seq_length: int = DEFAULT_MAX_SEQ_LENGTH,
    verbalizer: str = "manual",
    **fit_args: Any,
) -> List[CheckpointResult]:
    """Prompt-tune each ``(name, path)`` checkpoint on ``train`` with every seed and score it on ``test``.

    ``labels`` is what ``PromptClassifier`` takes (label file, ``{label: words}`` mapping).
    ``fit_args`` are ``PromptClassifier.fit``'s (training arguments, ``callbacks``); the same ones are
    used for every checkpoint.
    ``groups`` (one per test example) adds per-group accuracy.
    """
    if not checkpoints:
        raise FewshotError("no checkpoints to compare")
    if groups is not None and len(groups) != len(test):
        raise DataError(f"{len(groups)} groups for {len(test)} test examples")
    if not seeds:
        raise FewshotError("no seeds given")
    results = []
    for name, path in checkpoints:
        runs = [
            _fit_and_score(path, train, test, labels, template, groups, seed, max_seq_length, verbalizer, fit_args)
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
