"""``fewshot-predict``: stream a text or JSON-lines file through an exported bundle (no Paddle import).

    fewshot-predict --bundle bundle/ --input data.txt --output predictions.jsonl --top-k 3
    fewshot-predict --backend ray --workers 2 --threads 1 --bundle bundle/ --input docs.parquet --output preds.parquet
    fewshot-predict --engine openvino --precision bf16 --bundle bundle/ --input data.txt --output predictions.jsonl

``--engine`` is what runs the graph (onnxruntime, openvino, auto); ``--backend ray``
(``pip install "fewshot[ray]"``) spreads the chunks over Ray actors, on this machine or a cluster
(``--ray-address auto``); its output is the same, in the same order. ``--engine onnx`` and
``--engine ray`` are the deprecated spellings of ``--backend local`` and ``--backend ray``.
"""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from ..cpu_env import usable_cores
from ..data import format_fields, parse_fields
from ..numbers import int_option
from ..runtime import OnnxPredictor, PredictSummary, predict_file, read_manifest
from ..runtime.batch import check_paths
from ..runtime.engines import AUTO, DEFAULT_ENGINE
from ..template import named_fields
from .common import run
from .options import add_engine_options

DEFAULT_FIELDS = format_fields({"text_a": "sentence"})
LEGACY_BACKENDS = {"onnx": "local", "ray": "ray"}
"""``--engine onnx|ray``, the spellings of ``--backend local|ray`` before engines existed (deprecated)."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="fewshot-predict", description="Predict labels for a text or JSON-lines file with an exported bundle."
    )
    p.add_argument("--bundle", required=True, help="directory written by fewshot-export")
    p.add_argument("--input", required=True, help="data.txt (text or text_a<TAB>text_b per line) or .jsonl")
    p.add_argument("--output", required=True, help="predictions, one JSON line per input line, in order")
    p.add_argument("--batch-size", type=int_option(low=1), default=32)
    p.add_argument("--device", choices=["cpu", "gpu"], default="cpu")
    p.add_argument("--top-k", type=int_option(low=1), default=1, help="labels listed per line, best first")
    p.add_argument("--threads", type=int_option(low=1, high=usable_cores()), default=None,
                   help=f"CPU threads, at most the {usable_cores()} usable cores (default: all of them)")
    p.add_argument("--fields", default=DEFAULT_FIELDS,
                   help=f"JSON-lines keys (default {DEFAULT_FIELDS}), e.g. text_a=sentence1,text_b=sentence2")
    p.add_argument("--on-error", choices=["fail", "skip"], default="fail",
                   help="a malformed line stops the run (fail) or is reported and written as an error record (skip)")
    p.add_argument("--chunk-size", type=int_option(low=1), default=2048, help="lines read and predicted at a time")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    add_engine_options(p, legacy_engines=list(LEGACY_BACKENDS))
    p.add_argument("--backend", choices=["local", "ray"], default="local",
                   help="local: this process; ray: Ray Data actors (also reads and writes .parquet)")
    p.add_argument("--workers", type=int_option(low=1), default=2, help="--backend ray: actors, each with --threads CPUs (default 2)")
    p.add_argument("--ray-address", default=None,
                   help="--backend ray: cluster to join (auto, ray://HEAD:10001); default: a local Ray on this machine")
    return p


def main(argv: Optional[List[str]] = None) -> int:
    """``fewshot-predict``: exit status 0, or 2 with one error line for bad input."""
    args = build_parser().parse_args(argv)
    return run(lambda: _predict(args), "fewshot-predict")


def _backend(args: argparse.Namespace) -> str:
    """``--backend``, from a deprecated ``--engine onnx|ray`` (said once on stderr) too."""
    if args.engine not in LEGACY_BACKENDS:
        return args.backend
    backend = LEGACY_BACKENDS[args.engine]
    print(f"fewshot-predict: --engine {args.engine} is deprecated and will be removed in the next release; "
          f"use --backend {backend}", file=sys.stderr)
    args.engine = DEFAULT_ENGINE
    return backend


def _predict(args: argparse.Namespace) -> int:
    fields = {**parse_fields(args.fields), **named_fields(read_manifest(args.bundle)["template"])}
    check_paths(args.input, args.output)
    if _backend(args) == "ray":
        from ..integrations.ray import predict_file_ray

        summary = predict_file_ray(
            args.bundle, args.input, args.output, k=args.top_k, fields=fields, on_error=args.on_error,
            chunk_size=args.chunk_size, workers=args.workers, threads=args.threads or 1, batch_size=args.batch_size,
            precision=args.precision, address=args.ray_address, engine=args.engine,
        )
        return _report(args, summary)
    predictor = OnnxPredictor(
        args.bundle, device=args.device, threads=args.threads, batch_size=args.batch_size, precision=args.precision,
        engine=args.engine,
    )
    if AUTO in (args.engine, args.precision):
        print(f"fewshot-predict: --engine {args.engine} --precision {args.precision}: running "
              f"{predictor.engine.name} {predictor.precision.name}", file=sys.stderr)
    summary = predict_file(
        predictor, args.input, args.output, k=args.top_k, fields=fields,
        on_error=args.on_error, chunk_size=args.chunk_size, progress=not args.no_progress,
    )
    return _report(args, summary)


def _report(args: argparse.Namespace, summary: PredictSummary) -> int:
    print(f"fewshot-predict: {summary.lines} lines, {summary.predicted} predicted, {summary.skipped} skipped "
          f"-> {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
