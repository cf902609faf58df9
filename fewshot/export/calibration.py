"""INT8 at export: static quantisation whose activation ranges come from real texts, and the accuracy int8 costs.

>>> calibration = Calibration.from_files("unlabeled.txt", check_path="dev.txt", labels=task.labels)
>>> quantize_calibrated(Path("bundle/model.onnx"), Path("bundle/model.int8.onnx"), calibration_feeds(encoder, calibration.texts))
>>> accuracy_change(task, fp32_probs, int8_probs, [e.label for e in calibration.check])
{'examples': 400, 'metric': 'accuracy', 'fp32': 0.52, 'int8': 0.5175, 'delta': -0.0025, 'top1_agreement': 0.9825}

The quantised graph is QDQ (QuantizeLinear/DequantizeLinear around the weight MatMuls but the
feed-forward down-projections, see :func:`calibrated_matmuls`): onnxruntime runs it
with its int8 kernels (VNNI/AMX where the CPU has them) and OpenVINO reads the same file as an int8
model, so one ``model.int8.onnx`` serves both engines. A :class:`Calibration` without texts only
checks the (dynamically quantised) int8 model on its labelled examples.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from ..data import Example, read_examples
from ..errors import DataError
from ..runtime.manifest import GRAPH_INPUTS, ONNX_FILES
from ..template import TemplateEncoder
from .convert import onnx_probabilities

CALIBRATION_BATCH = 16
MIN_CALIBRATION_TEXTS = 8


@dataclass
class Calibration:
    """Texts whose activations set the int8 ranges (none: dynamic quantisation), and labelled examples on
    which the export measures what int8 changes (none: not measured); ``sources`` names the files for the manifest."""

    texts: List[Tuple[str, Optional[str]]]
    check: List[Example] = field(default_factory=list)
    sources: Dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_files(cls, path: "os.PathLike[str] | str | None", check_path: "os.PathLike[str] | str | None" = None,
                   labels: Optional[Sequence[str]] = None, fields: Optional[Mapping[str, str]] = None) -> "Calibration":
        """Calibration texts from ``path`` (text lines, ``text_a<TAB>text_b``, or JSON lines through
        ``fields``; labels, if any, ignored) and labelled check examples from ``check_path``; either may be None."""
        texts = [(e.text_a, e.text_b) for e in read_examples(path, labeled=False, fields=fields)] if path else []
        if path and len(texts) < MIN_CALIBRATION_TEXTS:
            raise DataError(f"{path}: {len(texts)} calibration texts; give at least {MIN_CALIBRATION_TEXTS} "
                            "(a few hundred unlabelled texts like the ones to classify)")
        check = read_examples(check_path, labels=list(labels) if labels else None, fields=fields) if check_path else []
        sources = {**({"calibration_file": Path(path).name} if path else {}),
                   **({"check_file": Path(check_path).name} if check_path else {})}
        return cls(texts, check, sources)


def encoded_batches(encoder: TemplateEncoder, pairs: Sequence[Tuple[str, Optional[str]]],
                    batch_size: int = CALIBRATION_BATCH) -> Iterator[Dict[str, np.ndarray]]:
    """The graph inputs of ``pairs``, ``batch_size`` texts at a time (texts longer than the template's
    room truncated), in input order."""
    for start in range(0, len(pairs), batch_size):
        batch = encoder.pad(encoder.encode_batch(list(pairs[start : start + batch_size])))
        yield {name: batch[name] for name in GRAPH_INPUTS}


class _FeedReader:
    """onnxruntime's ``CalibrationDataReader`` protocol over a list of feeds."""

    def __init__(self, feeds: List[Dict[str, np.ndarray]]):
        self._feeds = iter(feeds)

    def get_next(self) -> Optional[Dict[str, np.ndarray]]:
        return next(self._feeds, None)


def quantize_calibrated(src: Path, dst: Path, feeds: List[Dict[str, np.ndarray]]) -> None:
    """Static INT8 QDQ quantisation of ``src``'s weight MatMuls (:func:`calibrated_matmuls`: signed weights,
    unsigned activations whose ranges are the min/max seen on ``feeds``), written to ``dst``."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    nodes = calibrated_matmuls(onnx.load(str(src)))
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)  # the quantiser logs advice and a line per tensor on the root logger
    try:
        quantize_static(
            str(src), str(dst), _FeedReader(feeds), quant_format=QuantFormat.QDQ, op_types_to_quantize=["MatMul"],
            nodes_to_quantize=nodes, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=False,
            calibrate_method=CalibrationMethod.MinMax,
            extra_options={"WeightSymmetric": True, "ActivationSymmetric": False},
        )
    finally:
        logging.disable(previous)


def calibrated_matmuls(model: Any, depth: int = 5) -> List[str]:
    """The MatMuls static int8 quantises: those with a weight, except the ones reading a GELU's output (an
    ``Erf`` within ``depth`` nodes upstream: the feed-forward down-projections). One per-tensor uint8 range
    cannot hold a GELU output's outliers: on zh-ernie-tiny/TNEWS quantising them too made int8 agree with
    fp32 on 73 % of top-1 labels instead of 94 % (docs/cpu.md)."""
    weights = {tensor.name for tensor in model.graph.initializer}
    producer = {output: node for node in model.graph.node for output in node.output}

    def after_gelu(node: Any) -> bool:
        frontier = [name for name in node.input if name not in weights]
        for _ in range(depth):
            parents = [producer[name] for name in frontier if name in producer]
            if any(parent.op_type == "Erf" for parent in parents):
                return True
            frontier = [name for parent in parents if parent.op_type != "MatMul" for name in parent.input
                        if name not in weights]
        return False

    return [node.name for node in model.graph.node
            if node.op_type == "MatMul" and any(name in weights for name in node.input) and not after_gelu(node)]


def accuracy_change(task: Any, fp32_probs: np.ndarray, int8_probs: np.ndarray, gold: Sequence[str]) -> Dict[str, Any]:
    """The task's headline metric (accuracy, or exact match for label sets) of the fp32 and int8 models on
    labelled examples, its change, and how often the two predict the same label."""
    fp32, int8 = task.metrics(fp32_probs, list(gold)), task.metrics(int8_probs, list(gold))
    metric = "accuracy" if "accuracy" in fp32 else "exact_match"
    agree = [a == b for a, b in zip(task.decode(fp32_probs), task.decode(int8_probs))]
    return {"examples": len(gold), "metric": metric, "fp32": float(fp32[metric]), "int8": float(int8[metric]),
            "delta": float(int8[metric] - fp32[metric]), "top1_agreement": float(np.mean(agree))}


def write_int8_check(directory: Path, encoder: TemplateEncoder, task: Any, calibration: Calibration,
                     probe: Dict[str, np.ndarray], expected: np.ndarray) -> Dict[str, Any]:
    """With calibration texts, write ``model.int8.onnx`` quantised statically on them (else the dynamic one
    is already there); returns the export check: the largest probability difference from the Paddle
    model on the probe batch and, with check examples, what int8 changes on them (:func:`accuracy_change`)."""
    fp32, int8 = directory / ONNX_FILES["fp32"], directory / ONNX_FILES["int8"]
    check: Dict[str, Any] = {f"int8_{key}": value for key, value in calibration.sources.items()}
    if calibration.texts:
        quantize_calibrated(fp32, int8, list(encoded_batches(encoder, calibration.texts)))
        check.update({"int8_method": "static", "int8_calibration_texts": len(calibration.texts),
                      "onnx_int8_max_abs_diff": float(np.abs(onnx_probabilities(int8, [probe]) - expected).max())})
    if calibration.check:
        pairs = [(e.text_a, e.text_b) for e in calibration.check]
        probs = [onnx_probabilities(path, encoded_batches(encoder, pairs)) for path in (fp32, int8)]
        check["int8_check"] = accuracy_change(task, probs[0], probs[1], [e.label for e in calibration.check])
    return check
