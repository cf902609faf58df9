"""Train a prompt classifier on FewCLUE TNEWS (15 news topics), evaluate on dev and public test, export.

    python examples/tnews/train.py --data_dir ../shared/fewclue/tnews --model_name_or_path ../shared/models/zh-ernie-tiny \
        --max_steps 300 --learning_rate 1e-4 --do_predict --do_export

FewCLUE's JSON files come from https://github.com/CLUEbenchmark/FewCLUE (``datasets/tnews``): ``train_k.json``
and ``dev_k.json`` (k = 0..4, or ``few_all``), ``test_public.json`` (labelled) and ``test.json``.
Writes to ``--output_dir``: the saved classifier, ``metrics.json`` (dev and test accuracy),
``test_predictions.json`` with ``--do_predict`` when ``test.json`` exists, and ``bundle/`` with ``--do_export``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

HERE = Path(__file__).resolve().parent
DEFAULT_PROMPT = "{'text': 'text_a'}这条新闻的主题是{'mask'}{'mask'}"
FIELDS = {"text_a": "sentence", "label": "label_desc"}


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """The example's options, PaddleNLP few-shot example style (``--use_rdrop``, ``--soft_encoder``, ...)."""
    p = argparse.ArgumentParser(description="Few-shot TNEWS with fewshot.PromptClassifier.")
    p.add_argument("--data_dir", default=str(HERE.parents[2] / "shared" / "fewclue" / "tnews"),
                   help="FewCLUE TNEWS folder with train_k.json, dev_k.json, test_public.json")
    p.add_argument("--split", default="0", help="few-shot split: 0..4 or few_all (default 0)")
    p.add_argument("--model_name_or_path", default="ernie-3.0-base-zh", help="PaddleNLP model name or local directory")
    p.add_argument("--label_file", default=str(HERE.parents[1] / "data" / "tnews" / "label.txt"), help="label==word lines")
    p.add_argument("--prompt", default=DEFAULT_PROMPT, help="template, PaddleNLP syntax")
    p.add_argument("--soft_encoder", choices=["lstm", "mlp"], default=None,
                   help="encoder of the prompt's {'soft'} tokens (the prompt needs a soft part)")
    p.add_argument("--method", choices=["prompt", "finetune", "zeroshot"], default="prompt")
    p.add_argument("--verbalizer", choices=["manual", "soft"], default="manual")
    p.add_argument("--use_rdrop", action="store_true", help="add the R-Drop loss")
    p.add_argument("--alpha_rdrop", type=float, default=5.0)
    p.add_argument("--use_rgl", action="store_true", help="add the RGL label-consistency loss")
    p.add_argument("--alpha_rgl", type=float, default=0.5)
    p.add_argument("--max_steps", type=int, default=300)
    p.add_argument("--batch_size", type=int, default=16)
    p.add_argument("--eval_batch_size", type=int, default=64)
    p.add_argument("--learning_rate", type=float, default=1e-4)
    p.add_argument("--ppt_learning_rate", type=float, default=1e-3, help="learning rate of soft tokens / new heads")
    p.add_argument("--max_seq_length", type=int, default=128)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--output_dir", default="output/tnews")
    p.add_argument("--do_predict", action="store_true", help="evaluate on test_public.json and predict test.json")
    p.add_argument("--do_export", action="store_true", help="export a deployment bundle to OUTPUT_DIR/bundle")
    args = p.parse_args(argv)
    if args.split not in ("0", "1", "2", "3", "4", "few_all"):
        p.error(f"--split must be 0..4 or few_all, got {args.split!r}")
    if args.max_steps < 1 and args.method != "zeroshot":
        p.error("--max_steps must be at least 1")
    return args


def data_file(data_dir: Path, name: str) -> Path:
    """A FewCLUE file of ``data_dir``; the error says where to download the data."""
    path = Path(data_dir) / name
    if not path.is_file():
        raise SystemExit(
            f"train.py: error: {path} does not exist; download FewCLUE's datasets/tnews from "
            "https://github.com/CLUEbenchmark/FewCLUE and pass its folder as --data_dir"
        )
    return path


def build_template(args: argparse.Namespace) -> str:
    """The prompt, with ``--soft_encoder`` applied to its soft parts."""
    from fewshot.template import set_soft_encoder

    return set_soft_encoder(args.prompt, args.soft_encoder) if args.soft_encoder else args.prompt


def predict_test(clf: Any, path: Path, output: Path, batch_size: int) -> int:
    """Write ``{"id", "label_desc"}`` JSON lines for the unlabelled ``test.json``; returns the row count."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    labels = clf.predict([r["sentence"] for r in rows], batch_size=batch_size)
    with output.open("w", encoding="utf-8") as handle:
        for row, label in zip(rows, labels):
            handle.write(json.dumps({"id": row.get("id"), "label_desc": label}, ensure_ascii=False) + "\n")
    return len(rows)


def run(args: argparse.Namespace) -> Dict[str, Any]:
    """Train, evaluate, save, optionally predict and export; returns the metrics written to metrics.json."""
    from fewshot.classifier import PromptClassifier
    from fewshot.data import read_examples

    data_dir = Path(args.data_dir)
    train_path = data_file(data_dir, f"train_{args.split}.json")
    dev_path = data_file(data_dir, f"dev_{args.split}.json")
    output = Path(args.output_dir)
    clf = PromptClassifier(
        args.model_name_or_path, labels=args.label_file, template=build_template(args), verbalizer=args.verbalizer,
        max_seq_length=args.max_seq_length, seed=args.seed, method=args.method, calibrate=args.method == "zeroshot",
    )
    train = read_examples(train_path, labels=clf.labels, fields=FIELDS)
    dev = read_examples(dev_path, labels=clf.labels, fields=FIELDS)
    fit = clf.fit(
        train, max_steps=args.max_steps, per_device_train_batch_size=args.batch_size,
        learning_rate=args.learning_rate, ppt_learning_rate=args.ppt_learning_rate, use_rdrop=args.use_rdrop,
        alpha_rdrop=args.alpha_rdrop, use_rgl=args.use_rgl, alpha_rgl=args.alpha_rgl, seed=args.seed,
        logging_steps=max(args.max_steps // 10, 1), evaluation_strategy="no", save_strategy="no", report_to=[],
    )
    metrics: Dict[str, Any] = {"train": fit, "dev": clf.evaluate(dev, batch_size=args.eval_batch_size)}
    if args.do_predict:
        test = read_examples(data_file(data_dir, "test_public.json"), labels=clf.labels, fields=FIELDS)
        metrics["test_public"] = clf.evaluate(test, batch_size=args.eval_batch_size)
    clf.train_metrics = {**fit, **{f"{k}_accuracy": v["accuracy"] for k, v in metrics.items() if "accuracy" in v}}
    clf.save(output)  # replaces output_dir atomically, so everything else is written after it
    if args.do_predict and (data_dir / "test.json").is_file():
        metrics["test_predictions"] = predict_test(
            clf, data_dir / "test.json", output / "test_predictions.json", args.eval_batch_size
        )
    if args.do_export:
        metrics["bundle"] = str(clf.export(output / "bundle"))
    (output / "metrics.json").write_text(json.dumps(metrics, ensure_ascii=False, indent=2), encoding="utf-8")
    return metrics


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    from fewshot.errors import FewshotError

    try:
        metrics = run(args)
    except FewshotError as exc:
        print(f"train.py: error: {exc}", file=sys.stderr)
        return 2
    summary = {k: v["accuracy"] for k, v in metrics.items() if isinstance(v, dict) and "accuracy" in v}
    print(json.dumps({"accuracy": summary, "output_dir": args.output_dir}, ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
