"""PaddleNLP's few-shot ``infer.py``, unchanged on the command line: label every ``data.txt`` line with the export.

    python infer.py --model_path_prefix checkpoints/export/model --data_dir ./data/tnews --batch_size 32 --device cpu

``--model_path_prefix DIR/model`` names the static graph ``train.py --do_export`` wrote
(``DIR/model.json``, ``DIR/model.pdiparams``); the fewshot bundle beside it in ``DIR`` (``model.onnx``,
tokenizer, ``fewshot.json``) is what runs, with onnxruntime and without Paddle: the tokenizer, template,
labels and ``max_seq_length`` are the bundle's, the ones the model was trained with. Prints one label
per ``data.txt`` line to stdout; ``--output_file`` also writes ``text<TAB>label`` lines.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import List, Optional, Sequence

from fewshot.cli.common import run
from fewshot.data import TaskFolder, write_predictions
from fewshot.errors import BundleError
from fewshot.numbers import int_option
from fewshot.runtime import MANIFEST_NAME, OnnxPredictor, read_manifest


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """PaddleNLP's ``infer.py`` options, plus ``--output_file``."""
    p = argparse.ArgumentParser(description="Label data.txt with the bundle train.py --do_export wrote.")
    p.add_argument("--model_path_prefix", required=True,
                   help="DIR/model: the exported static graph's path prefix; the bundle in DIR runs")
    p.add_argument("--model_name_or_path", default=None,
                   help="PaddleNLP's tokenizer source; the bundle carries its own tokenizer, which is used")
    p.add_argument("--data_dir", required=True, help="folder holding data.txt (one text, or text_a<TAB>text_b, per line)")
    p.add_argument("--max_seq_length", type=int_option(low=1), default=None,
                   help="must match the bundle's (the length it was trained and exported with) when given")
    p.add_argument("--use_fp16", action="store_true", help="GPU only: run the bundle's model.fp16.onnx")
    p.add_argument("--batch_size", type=int_option(low=1), default=200, help="texts per run (default 200, PaddleNLP's)")
    p.add_argument("--num_threads", type=int_option(low=1), default=None,
                   help="CPU threads (default: the cores this process may use)")
    p.add_argument("--device", choices=["cpu", "gpu"], default="gpu", help="default gpu, as PaddleNLP's")
    p.add_argument("--device_id", type=int_option(low=0), default=0, help="which GPU")
    p.add_argument("--output_file", default=None, help="also write text<TAB>label lines here")
    return p.parse_args(argv)


def bundle_dir(model_path_prefix: str) -> Path:
    """The bundle of ``DIR/model``: ``DIR``, which must hold ``fewshot.json``."""
    directory = Path(model_path_prefix).parent
    if not (directory / MANIFEST_NAME).is_file():
        raise BundleError(f"{directory}: no {MANIFEST_NAME}; export with train.py --do_export (or fewshot-export), "
                          "which writes the static graph and the bundle that runs it to OUTPUT_DIR/export")
    return directory


def select_gpu(device_id: int) -> None:
    """Make GPU ``device_id`` (counted among the visible ones, as PaddleNLP counts) the only one onnxruntime sees."""
    visible = [d for d in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
    if visible and device_id >= len(visible):
        raise BundleError(f"--device_id {device_id}: CUDA_VISIBLE_DEVICES shows only {len(visible)} GPU(s)")
    os.environ["CUDA_VISIBLE_DEVICES"] = visible[device_id] if visible else str(device_id)


def infer(args: argparse.Namespace) -> List[str]:
    """The label of each ``data.txt`` line, printed one per line (and written to ``--output_file``)."""
    directory = bundle_dir(args.model_path_prefix)
    manifest = read_manifest(directory)
    if args.max_seq_length is not None and args.max_seq_length != manifest["max_seq_length"]:
        raise BundleError(f"--max_seq_length {args.max_seq_length}: the bundle in {directory} was exported with "
                          f"{manifest['max_seq_length']}; leave it out or pass that")
    if args.model_name_or_path:
        print(f"infer.py: the bundle's own tokenizer is used (--model_name_or_path {args.model_name_or_path} "
              "is not needed)", file=sys.stderr)
    if args.device == "gpu":
        select_gpu(args.device_id)
    precision = "fp16" if args.use_fp16 and args.device == "gpu" else "fp32"
    predictor = OnnxPredictor(directory, device=args.device, threads=args.num_threads, batch_size=args.batch_size,
                              precision=precision)
    rows = TaskFolder(Path(args.data_dir)).texts(why="infer.py")
    labels = [str(label) for label in predictor.predict(rows)]
    for label in labels:
        print(label)
    if args.output_file:
        write_predictions(args.output_file, rows, labels)
    return labels


def main(argv: Optional[List[str]] = None) -> int:
    """Exit status 0, or 2 with one ``infer.py: error: ...`` line for bad input."""
    args = parse_args(argv)

    def go() -> int:
        infer(args)
        return 0

    return run(go, "infer.py")


if __name__ == "__main__":
    sys.exit(main())
