"""From the Paddle static graph to portable ONNX (paddle2onnx in a child process), cleaned; INT8 and FP16 variants.

>>> files, check = write_onnx_models(Path("bundle"), num_labels=15, opset=18, fp16=False, int8=True,
...                                  feed=feed, expected=probabilities)
>>> files
{'onnx_fp32': 'model.onnx', 'onnx_int8': 'model.int8.onnx'}

Opset 18 is the oldest that every mainstream runtime reads identically: below it, OpenVINO's ONNX
reader ignores the ``axes`` attribute of ``ReduceLogSumExp`` (the verbalizer's pooling) and returns
``[labels]`` instead of ``[batch, labels]`` probabilities.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Iterable, Tuple

import numpy as np
import onnx
import onnxruntime as ort
from onnxruntime.quantization import QuantType, quantize_dynamic
from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16
from onnxruntime.transformers.onnx_model import OnnxModel

from ..errors import BundleError
from ..runtime.manifest import ONNX_FILES, OUTPUT_NAME, PADDLE_MODEL_NAME, PADDLE_PARAMS_NAME

DEFAULT_OPSET = 18
MIN_OPSET = 18
"""The oldest opset whose graph onnxruntime and OpenVINO read identically (see above)."""
TOLERANCE = 1e-4
"""Largest difference in probabilities allowed between the exported fp32 graph and the Paddle model."""


def check_opset(opset: int) -> int:
    """``opset`` when the graph it gives is portable (≥ ``MIN_OPSET``); otherwise a one-line ``BundleError``."""
    if isinstance(opset, bool) or not isinstance(opset, int) or opset < MIN_OPSET:
        raise BundleError(f"export: opset {opset!r} is below {MIN_OPSET}, the oldest that onnxruntime and OpenVINO "
                          f"read identically; export with opset {MIN_OPSET} or newer")
    return opset


def convert_to_onnx(directory: Path, opset: int, num_labels: int) -> Path:
    """Convert the static graph with paddle2onnx, name its inputs' and output's dimensions, and clean it.

    Cleaning is onnxruntime's basic level (constant folding, identity and dead-node removal): the
    result has standard ONNX operators only, and its MatMuls read weights directly, which dynamic
    quantisation needs. Fusions (LayerNorm, Gelu, MatMul+Add) are left to the runtime session.
    """
    raw_path = directory / "model.raw.onnx"
    run_paddle2onnx(directory / PADDLE_MODEL_NAME, directory / PADDLE_PARAMS_NAME, raw_path, opset)
    model = onnx.load(str(raw_path))
    _name_dimensions(model, num_labels)
    onnx.save(model, str(raw_path))
    path = directory / ONNX_FILES["fp32"]
    _ort_optimize(raw_path, path)
    raw_path.unlink()
    onnx.checker.check_model(str(path))
    return path


def run_paddle2onnx(model_file: Path, params_file: Path, onnx_file: Path, opset: int) -> None:
    """Run paddle2onnx in a child process: on an operator it cannot convert it aborts its process.

    ``optimize_tool='None'``: its default post-pass (polygraphy) pip-installs missing packages into
    the running environment.
    """
    result = subprocess.run(
        [sys.executable, "-c", _PADDLE2ONNX_SCRIPT, str(model_file), str(params_file), str(opset), str(onnx_file)],
        capture_output=True, text=True, errors="replace",
    )
    if result.returncode != 0 or not onnx_file.is_file():
        output = [line.strip() for line in (result.stdout + "\n" + result.stderr).splitlines() if line.strip()]
        errors = [line for line in output if "[ERROR]" in line] or output[-2:]
        detail = " | ".join(errors) or f"exit status {result.returncode}"
        raise BundleError(
            f"export: paddle2onnx could not convert {model_file.name} to ONNX opset {opset} ({detail}); "
            "the Paddle static graph itself is fine: export with --no-onnx to deploy with Paddle Inference"
        )


_PADDLE2ONNX_SCRIPT = """
import sys
import paddle2onnx
model, params, opset, out = sys.argv[1:]
data = paddle2onnx.export(model, params, None, opset_version=int(opset), auto_upgrade_opset=False,
                          enable_onnx_checker=True, optimize_tool="None")
with open(out, "wb") as handle:
    handle.write(data)
"""


def _name_dimensions(model: Any, num_labels: int) -> None:
    """Call the output ``probs`` and the dynamic dimensions ``batch`` and ``sequence``."""
    graph = model.graph
    old = graph.output[0].name
    for node in graph.node:
        for i, name in enumerate(node.output):
            if name == old:
                node.output[i] = OUTPUT_NAME
    graph.output[0].name = OUTPUT_NAME
    for value in graph.input:
        dims = value.type.tensor_type.shape.dim
        dims[0].dim_param = "batch"
        if value.name != "masked_positions":
            dims[1].dim_param = "sequence"
    out_dims = graph.output[0].type.tensor_type.shape.dim
    if len(out_dims) == 2:
        out_dims[0].dim_param = "batch"
        out_dims[1].dim_value = num_labels


def _ort_optimize(src: Path, dst: Path) -> None:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = str(dst)
    options.log_severity_level = 3
    ort.InferenceSession(str(src), options, providers=["CPUExecutionProvider"])


def quantize_int8(src: Path, dst: Path) -> None:
    """Dynamic INT8 quantisation of the MatMul weights (activations quantised per batch at run time).

    Signed 8-bit weights use the VNNI / AVX-512 integer kernels; embedding tables, LayerNorm and
    softmax stay float32.
    """
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)  # the quantiser logs a line per tensor, and advice, on the root logger
    try:
        quantize_dynamic(str(src), str(dst), op_types_to_quantize=["MatMul"], weight_type=QuantType.QInt8)
    finally:
        logging.disable(previous)


def convert_fp16(src: Path, dst: Path) -> None:
    """Float16 weights and activations for GPU, with float32 inputs/outputs and float32 log-sum-exp/softmax."""
    model = convert_float_to_float16(
        onnx.load(str(src)), keep_io_types=True, op_block_list=DEFAULT_OP_BLOCK_LIST + ["ReduceLogSumExp", "Softmax"]
    )
    wrapped = OnnxModel(model)
    wrapped.topological_sort()
    onnx.checker.check_model(wrapped.model)
    onnx.save(wrapped.model, str(dst))


def onnx_probabilities(path: Path, feeds: Iterable[Dict[str, np.ndarray]]) -> np.ndarray:
    """The graph's probabilities on each feed, with onnxruntime on CPU, stacked in order."""
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return np.concatenate([session.run([OUTPUT_NAME], feed)[0] for feed in feeds])


def check_against_paddle(name: str, got: np.ndarray, expected: np.ndarray) -> float:
    """Largest probability difference; raises when it is over ``TOLERANCE``."""
    diff = float(np.abs(got - expected).max())
    if not np.isfinite(diff) or diff > TOLERANCE:
        raise BundleError(
            f"export: {name} differs from the Paddle model by {diff:.3g} (> {TOLERANCE}) on probe texts"
        )
    return diff


def write_onnx_models(
    directory: Path, num_labels: int, opset: int, fp16: bool, int8: bool,
    feed: Dict[str, np.ndarray], expected: np.ndarray,
) -> Tuple[Dict[str, str], Dict[str, Any]]:
    """Write ``model.onnx`` (checked against ``expected``) and the INT8/FP16 variants asked for.

    Returns the files written and the export check: each model's largest probability difference
    from the Paddle model on the probe batch ``feed``.
    """
    fp32 = convert_to_onnx(directory, opset, num_labels)
    files = {"onnx_fp32": fp32.name}
    check: Dict[str, Any] = {
        "probe_texts": len(expected),
        "onnx_opset": opset,
        "onnx_fp32_max_abs_diff": check_against_paddle("model.onnx", onnx_probabilities(fp32, [feed]), expected),
    }
    variants = [("int8", quantize_int8)] * int8 + [("fp16", convert_fp16)] * fp16
    for precision, convert in variants:
        path = directory / ONNX_FILES[precision]
        convert(fp32, path)
        files[f"onnx_{precision}"] = path.name
        if precision == "int8":
            check["int8_method"] = "dynamic"
        check[f"onnx_{precision}_max_abs_diff"] = float(np.abs(onnx_probabilities(path, [feed]) - expected).max())
    return files, check
