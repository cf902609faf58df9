"""Shared runner of the multi-label and hierarchical examples: train, then compare decision thresholds.

Both examples train a ``PromptClassifier`` with independent (sigmoid) outputs on ``train.txt``,
evaluate on ``test.txt`` with every threshold at 0.5, tune one threshold per label or node on
``dev.txt``, evaluate again, print both as a Markdown table and save the classifier (with the tuned
thresholds) and the table's numbers. What differs — the task option, the template, the metric
columns, the defaults — is an ``ExampleTask``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

LOCAL_MODEL = Path(__file__).resolve().parents[2] / "shared" / "models" / "zh-ernie-tiny"
HUB_MODEL = "ernie-3.0-base-zh"


@dataclass(frozen=True)
class ExampleTask:
    """What one example sets: its data folder, task option, prompt, metric columns and defaults."""

    folder: Path
    description: str
    task_option: str
    template: str
    columns: Tuple[Tuple[str, str], ...]
    max_steps: int
    max_seq_length: int
    output: str


def default_model() -> str:
    """``../../../shared/models/zh-ernie-tiny`` next to the repository when present, else the hub name."""
    return str(LOCAL_MODEL) if (LOCAL_MODEL / "config.json").is_file() else HUB_MODEL


def parse_args(task: ExampleTask, argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Command-line options, with the example's defaults."""
    p = argparse.ArgumentParser(description=task.description)
    p.add_argument("--model", default=default_model(), help="PaddleNLP model name or local directory")
    p.add_argument("--data_dir", default=str(task.folder), help="folder with train/dev/test.txt and label.txt")
    p.add_argument("--template", default=task.template, help="prompt with two masks (label words have 2 characters)")
    p.add_argument("--verbalizer", choices=["manual", "soft"], default="manual")
    p.add_argument("--max_steps", type=int, default=task.max_steps)
    p.add_argument("--batch_size", type=int, default=16)
    p.add_argument("--learning_rate", type=float, default=3e-4, help="learning rate of the PLM")
    p.add_argument("--ppt_learning_rate", type=float, default=1e-2, help="LR of label/node biases, soft head")
    p.add_argument("--max_seq_length", type=int, default=task.max_seq_length)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--output", default=task.output, help="where the trained classifier is saved")
    args = p.parse_args(argv)
    if args.max_steps < 1:
        p.error("--max_steps must be at least 1")
    return args


def train(task: ExampleTask, args: argparse.Namespace) -> Any:
    """Build the classifier and train it on ``train.txt``; returns the classifier."""
    from fewshot.classifier import PromptClassifier

    data = Path(args.data_dir)
    clf = PromptClassifier(
        args.model, labels=str(data / "label.txt"), template=args.template, verbalizer=args.verbalizer,
        max_seq_length=args.max_seq_length, seed=args.seed, **{task.task_option: True},
    )
    clf.fit(
        str(data / "train.txt"), max_steps=args.max_steps, per_device_train_batch_size=args.batch_size,
        learning_rate=args.learning_rate, ppt_learning_rate=args.ppt_learning_rate, seed=args.seed,
        logging_steps=max(args.max_steps // 5, 1), evaluation_strategy="no", disable_tqdm=True,
    )
    return clf


def evaluate(clf: Any, data_dir: Path) -> Dict[str, Dict[str, float]]:
    """Test metrics with the default thresholds, then with thresholds tuned on dev (kept in ``clf``)."""
    test = str(data_dir / "test.txt")
    results = {"default thresholds (0.5)": clf.evaluate(test)}
    clf.tune_thresholds(str(data_dir / "dev.txt"))
    results["thresholds tuned on dev"] = clf.evaluate(test)
    return results


def metrics_table(columns: Sequence[Tuple[str, str]], results: Dict[str, Dict[str, float]]) -> str:
    """A Markdown table, one row per evaluation and one column per ``(metric key, title)``."""
    lines = [
        "| test | " + " | ".join(title for _, title in columns) + " |",
        "|---" * (len(columns) + 1) + "|",
    ]
    for name, metrics in results.items():
        lines.append(f"| {name} | " + " | ".join(f"{metrics[key]:.3f}" for key, _ in columns) + " |")
    return "\n".join(lines)


def run(task: ExampleTask, args: argparse.Namespace) -> Dict[str, Dict[str, float]]:
    """Train, evaluate and save; returns the test metrics shown in the table."""
    start = time.time()
    clf = train(task, args)
    results = evaluate(clf, Path(args.data_dir))
    clf.save(args.output)
    (Path(args.output) / "test_metrics.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(metrics_table(task.columns, results))
    print(f"\n{args.max_steps} steps, lr {args.learning_rate:g}, {time.time() - start:.0f} s; saved to {args.output}")
    return results


def main(task: ExampleTask, argv: Optional[List[str]] = None) -> int:
    """Entry point of an example; returns the exit status."""
    args = parse_args(task, argv)
    from fewshot.errors import FewshotError

    try:
        run(task, args)
    except FewshotError as exc:
        print(f"train.py: error: {exc}", file=sys.stderr)
        return 2
    return 0
