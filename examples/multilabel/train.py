"""Train a multi-label prompt classifier on site inspection records (渗漏, 开裂, 用电, 消防, 高处, 扬尘).

    python examples/multilabel/train.py --max_steps 200 --output output/multilabel

Reads ``train.txt``, ``dev.txt``, ``test.txt`` (``text<TAB>label1,label2``) and ``label.txt``
(``label==word``) from ``--data_dir`` (this folder by default). Trains, evaluates on test with the
default thresholds (0.5) and again after tuning one threshold per label on dev, prints a Markdown
table (micro-F1, macro-F1, exact match), and saves the classifier (with the tuned thresholds) to
``--output``, with the table's numbers in ``test_metrics.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

HERE = Path(__file__).resolve().parent
LOCAL_MODEL = HERE.parents[2] / "shared" / "models" / "zh-ernie-tiny"
HUB_MODEL = "ernie-3.0-base-zh"
TEMPLATE = "{'text': 'text_a'}这条检查记录的问题是{'mask'}{'mask'}"
COLUMNS = (("micro_f1", "micro-F1"), ("macro_f1", "macro-F1"), ("exact_match", "exact match"))


def default_model() -> str:
    """``../../../shared/models/zh-ernie-tiny`` next to the repository when present, else the hub name."""
    return str(LOCAL_MODEL) if (LOCAL_MODEL / "config.json").is_file() else HUB_MODEL


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description="Multi-label few-shot tagging of site inspection records.")
    p.add_argument("--model", default=default_model(), help="PaddleNLP model name or local directory")
    p.add_argument("--data_dir", default=str(HERE), help="folder with train/dev/test.txt and label.txt")
    p.add_argument("--template", default=TEMPLATE, help="prompt with two masks (label words have 2 characters)")
    p.add_argument("--verbalizer", choices=["manual", "soft"], default="manual")
    p.add_argument("--max_steps", type=int, default=200)
    p.add_argument("--batch_size", type=int, default=16)
    p.add_argument("--learning_rate", type=float, default=3e-4, help="learning rate of the PLM")
    p.add_argument("--ppt_learning_rate", type=float, default=1e-2, help="LR of label biases, soft head")
    p.add_argument("--max_seq_length", type=int, default=96)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--output", default="output/multilabel", help="where the trained classifier is saved")
    args = p.parse_args(argv)
    if args.max_steps < 1:
        p.error("--max_steps must be at least 1")
    return args


def train(args: argparse.Namespace) -> Any:
    """Build the classifier and train it on ``train.txt``; returns the classifier."""
    from fewshot.classifier import PromptClassifier

    data = Path(args.data_dir)
    clf = PromptClassifier(
        args.model, labels=str(data / "label.txt"), template=args.template, verbalizer=args.verbalizer,
        max_seq_length=args.max_seq_length, seed=args.seed, multi_label=True,
    )
    clf.fit(
        str(data / "train.txt"), max_steps=args.max_steps, per_device_train_batch_size=args.batch_size,
        learning_rate=args.learning_rate, ppt_learning_rate=args.ppt_learning_rate, seed=args.seed,
        logging_steps=max(args.max_steps // 5, 1), evaluation_strategy="no", disable_tqdm=True,
    )
    return clf


def evaluate(clf: Any, data_dir: Path) -> Dict[str, Dict[str, float]]:
    """Test metrics with the default thresholds, then with per-label thresholds tuned on dev (kept in ``clf``)."""
    test = str(data_dir / "test.txt")
    results = {"default thresholds (0.5)": clf.evaluate(test)}
    clf.tune_thresholds(str(data_dir / "dev.txt"))
    results["thresholds tuned on dev"] = clf.evaluate(test)
    return results


def metrics_table(results: Dict[str, Dict[str, float]]) -> str:
    """A Markdown table, one row per evaluation and one column per metric in ``COLUMNS``."""
    lines = [
        "| test | " + " | ".join(title for _, title in COLUMNS) + " |",
        "|---" * (len(COLUMNS) + 1) + "|",
    ]
    for name, metrics in results.items():
        lines.append(f"| {name} | " + " | ".join(f"{metrics[key]:.3f}" for key, _ in COLUMNS) + " |")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> Dict[str, Dict[str, float]]:
    """Train, evaluate and save; returns the test metrics shown in the table."""
    start = time.time()
    clf = train(args)
    results = evaluate(clf, Path(args.data_dir))
    clf.save(args.output)
    (Path(args.output) / "test_metrics.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(metrics_table(results))
    print(f"\n{args.max_steps} steps, lr {args.learning_rate:g}, {time.time() - start:.0f} s; saved to {args.output}")
    return results


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point; returns the exit status."""
    args = parse_args(argv)
    from fewshot.errors import FewshotError

    try:
        run(args)
    except FewshotError as exc:
        print(f"train.py: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
