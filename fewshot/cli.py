"""Command-line entry points: ``fewshot-train``, ``fewshot-export``, ``fewshot-predict``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Dict, List, Optional

from .errors import FewshotError

TNEWS_FIELDS = "text_a=sentence,label=label_desc"


def parse_fields(spec: str) -> Dict[str, str]:
    """``"text_a=sentence,label=label_desc"`` → ``{"text_a": "sentence", "label": "label_desc"}``."""
    fields = {}
    for item in spec.split(","):
        name, sep, key = item.partition("=")
        if not sep or not name.strip() or not key.strip():
            raise FewshotError(f"--fields: expected name=key pairs separated by commas, got {item!r}")
        fields[name.strip()] = key.strip()
    return fields


def json_fields(path: str, fields: Dict[str, str]) -> Optional[Dict[str, str]]:
    """The field mapping for JSON-lines files; None for tab-separated ones."""
    return fields if Path(path).suffix.lower() in (".json", ".jsonl") else None


def build_train_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="fewshot-train", description="Train a prompt classifier on a few labelled examples."
    )
    p.add_argument("--train", required=True, help="training data: text<TAB>label file or JSON lines")
    p.add_argument("--dev", help="evaluation data, same formats")
    p.add_argument("--labels", required=True, help="label file: one label per line or label==word lines")
    p.add_argument("--model", required=True, help="PaddleNLP model name (ernie-3.0-base-zh) or local directory")
    p.add_argument("--template", default=None, help="prompt template (default: text + 这句话的类别是 + two masks)")
    p.add_argument("--output", required=True, help="directory for the trained classifier and metrics.json")
    p.add_argument("--soft-encoder", choices=["none", "lstm", "mlp"], default=None,
                   help="encoder for the template's soft tokens that name none")
    p.add_argument("--verbalizer", choices=["manual", "soft"], default="manual")
    p.add_argument("--method", choices=["prompt", "finetune", "zeroshot"], default="prompt",
                   help="prompt: train the template + verbalizer; finetune: [CLS] head baseline on the same PLM; "
                        "zeroshot: manual verbalizer, no training")
    p.add_argument("--calibrate", action="store_true",
                   help="zeroshot only: subtract the label prior estimated from the training texts")
    task = p.add_mutually_exclusive_group()
    task.add_argument("--multi-label", action="store_true",
                      help="several labels per row (joined by --label-delimiter); sigmoid outputs")
    task.add_argument("--hierarchical", action="store_true",
                      help="labels are paths (joined by --path-delimiter); predictions are consistent paths")
    p.add_argument("--label-delimiter", default=",", help="between a multi-label row's labels (default ,)")
    p.add_argument("--path-delimiter", default="##", help="between the levels of a hierarchical label (default ##)")
    p.add_argument("--tune-thresholds", action="store_true",
                   help="multi-label/hierarchical: tune one decision threshold per label on --dev")
    p.add_argument("--rdrop", action="store_true", help="add the R-Drop loss")
    p.add_argument("--alpha-rdrop", type=float, default=5.0)
    p.add_argument("--rgl", action="store_true", help="add the RGL label-consistency loss")
    p.add_argument("--alpha-rgl", type=float, default=0.5)
    p.add_argument("--max-steps", type=int, default=-1)
    p.add_argument("--epochs", type=float, default=10)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--learning-rate", type=float, default=3e-5)
    p.add_argument("--ppt-learning-rate", type=float, default=None, help="learning rate of prompt parameters")
    p.add_argument("--freeze-plm", action="store_true", help="train only the prompt parameters")
    p.add_argument("--max-seq-length", type=int, default=128)
    p.add_argument("--fields", default=TNEWS_FIELDS, help=f"JSON-lines field mapping (default {TNEWS_FIELDS})")
    p.add_argument("--seed", type=int, default=42)
    return p


def train_main(argv: Optional[List[str]] = None) -> int:
    """``fewshot-train``: fit, evaluate on --dev, save to --output with metrics.json."""
    parser = build_train_parser()
    args = parser.parse_args(argv)
    if args.calibrate and args.method != "zeroshot":
        parser.error(f"--calibrate applies to --method zeroshot only, not --method {args.method}")
    if args.tune_thresholds and not (args.dev and (args.multi_label or args.hierarchical)):
        parser.error("--tune-thresholds needs --multi-label or --hierarchical, and --dev")
    from .classifier import DEFAULT_TEMPLATE, PromptClassifier
    from .data import read_examples
    from .template import set_soft_encoder

    try:
        fields = parse_fields(args.fields)
        template = args.template or DEFAULT_TEMPLATE
        if args.soft_encoder:
            template = set_soft_encoder(template, args.soft_encoder)
        clf = PromptClassifier(
            args.model, labels=args.labels, template=template, verbalizer=args.verbalizer,
            max_seq_length=args.max_seq_length, seed=args.seed, method=args.method, calibrate=args.calibrate,
            multi_label=args.multi_label, hierarchical=args.hierarchical,
            label_delimiter=args.label_delimiter, path_delimiter=args.path_delimiter,
        )
        known = clf.task.check if clf.task is not None else clf.labels
        train = read_examples(args.train, labels=known, fields=json_fields(args.train, fields))
        dev = read_examples(args.dev, labels=known, fields=json_fields(args.dev, fields)) if args.dev else None
        metrics = clf.fit(
            train, eval_data=dev, max_steps=args.max_steps, num_train_epochs=args.epochs, per_device_train_batch_size=args.batch_size,
            learning_rate=args.learning_rate, ppt_learning_rate=args.ppt_learning_rate, freeze_plm=args.freeze_plm,
            use_rdrop=args.rdrop, alpha_rdrop=args.alpha_rdrop, use_rgl=args.rgl, alpha_rgl=args.alpha_rgl,
            seed=args.seed, evaluation_strategy="no", tune_thresholds=args.tune_thresholds,
        )
        clf.save(args.output)
    except FewshotError as exc:
        print(f"fewshot-train: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(metrics, indent=2, ensure_ascii=False))
    return 0


def build_export_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="fewshot-export",
        description="Export a trained classifier to a bundle: Paddle static graph, ONNX, tokenizer, fewshot.json.",
    )
    p.add_argument("--checkpoint", required=True, help="directory written by fewshot-train or PromptClassifier.save")
    p.add_argument("--output", required=True, help="bundle directory (replaced atomically)")
    p.add_argument("--onnx", action=argparse.BooleanOptionalAction, default=True, help="write model.onnx (default: yes)")
    p.add_argument("--opset", type=int, default=None, help="ONNX opset (default 14)")
    p.add_argument("--fp16", action="store_true", help="also write model.fp16.onnx for GPU")
    p.add_argument("--int8", action="store_true", help="also write model.int8.onnx (dynamic quantisation, CPU)")
    return p


def export_main(argv: Optional[List[str]] = None) -> int:
    """``fewshot-export``: write a deployment bundle for a saved classifier."""
    args = build_export_parser().parse_args(argv)
    from .export import DEFAULT_OPSET, export_bundle

    try:
        bundle = export_bundle(
            args.checkpoint, args.output, onnx=args.onnx, opset=args.opset or DEFAULT_OPSET, fp16=args.fp16, int8=args.int8
        )
    except FewshotError as exc:
        print(f"fewshot-export: error: {exc}", file=sys.stderr)
        return 2
    files = sorted(p.name for p in Path(bundle).iterdir())
    print(f"fewshot-export: wrote {bundle} ({', '.join(files)})")
    return 0


def build_predict_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="fewshot-predict", description="Predict labels for a text or JSON-lines file with an exported bundle."
    )
    p.add_argument("--bundle", required=True, help="directory written by fewshot-export")
    p.add_argument("--input", required=True, help="data.txt (text or text_a<TAB>text_b per line) or .jsonl")
    p.add_argument("--output", required=True, help="predictions, one JSON line per input line, in order")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--device", choices=["cpu", "gpu"], default="cpu")
    p.add_argument("--precision", choices=["fp32", "int8", "fp16"], default="fp32", help="which ONNX model of the bundle")
    p.add_argument("--top-k", type=int, default=1, help="labels listed per line, best first")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: all cores available)")
    p.add_argument("--fields", default="text_a=sentence", help="JSON-lines keys, e.g. text_a=sentence1,text_b=sentence2")
    p.add_argument("--on-error", choices=["fail", "skip"], default="fail",
                   help="a malformed line stops the run (fail) or is reported and written as an error record (skip)")
    p.add_argument("--chunk-size", type=int, default=2048, help="lines read and predicted at a time")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return p


def predict_main(argv: Optional[List[str]] = None) -> int:
    """``fewshot-predict``: stream an input file through ``OnnxPredictor`` (no Paddle import)."""
    args = build_predict_parser().parse_args(argv)
    from .inference import OnnxPredictor, predict_file

    try:
        if args.top_k < 1 or args.chunk_size < 1:
            raise FewshotError("--top-k and --chunk-size must be at least 1")
        predictor = OnnxPredictor(
            args.bundle, device=args.device, threads=args.threads, batch_size=args.batch_size, precision=args.precision
        )
        summary = predict_file(
            predictor, args.input, args.output, k=args.top_k, fields=parse_fields(args.fields),
            on_error=args.on_error, chunk_size=args.chunk_size, progress=not args.no_progress,
        )
    except FewshotError as exc:
        print(f"fewshot-predict: error: {exc}", file=sys.stderr)
        return 2
    print(
        f"fewshot-predict: {summary.lines} lines, {summary.predicted} predicted, {summary.skipped} skipped "
        f"-> {args.output}",
        file=sys.stderr,
    )
    return 0
