"""The default engine: onnxruntime (CPU, or CUDA with onnxruntime-gpu); fp32, dynamic or calibrated int8, fp16.

>>> session = OnnxRuntimeEngine().open(Path("bundle/model.int8.onnx"), PRECISIONS["int8"], "cpu", threads=2)
>>> session.run(feed).shape
(32, 15)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, List, Optional, Tuple

import numpy as np

from ...cpu_env import usable_cores
from ...errors import BundleError, FewshotError
from .base import Engine, EngineSession, Feed, Precision


def session_options(threads: Optional[int], spin: bool = True) -> Any:
    """onnxruntime's options for a fewshot session: all graph optimisations, ``threads`` intra-op threads
    (default: the usable cores), one inter-op thread, no spinning between runs with ``spin=False``."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = int(threads) if threads else usable_cores()
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    if not spin:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def providers(device: str) -> List[str]:
    """The execution providers for ``device``: ``cpu`` → CPU; ``gpu`` → CUDA then CPU (needs onnxruntime-gpu)."""
    import onnxruntime as ort

    if device == "cpu":
        return ["CPUExecutionProvider"]
    if device == "gpu":
        available = ort.get_available_providers()
        if "CUDAExecutionProvider" not in available:
            raise FewshotError(
                "device='gpu' needs onnxruntime-gpu (CUDAExecutionProvider); "
                f"this onnxruntime has {', '.join(available)}"
            )
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    raise FewshotError(f"device must be 'cpu' or 'gpu', got {device!r}")


class OnnxRuntimeSession(EngineSession):
    def __init__(self, session: Any):
        self.session = session
        self.inputs = {i.name: list(i.shape) for i in session.get_inputs()}
        self.outputs = {o.name: list(o.shape) for o in session.get_outputs()}
        self._output = next(iter(self.outputs))

    def run(self, feed: Feed) -> np.ndarray:
        return self.session.run([self._output], {name: feed[name] for name in self.inputs})[0]


class OnnxRuntimeEngine(Engine):
    name = "onnxruntime"
    module = "onnxruntime"
    install = "pip install onnxruntime"

    def precisions(self, device: str) -> Tuple[str, ...]:
        return ("int8", "fp32", "fp16") if device == "cpu" else ("fp16", "fp32")

    def open(self, path: Path, precision: Precision, device: str, threads: Optional[int] = None,
             spin: bool = True, throughput: bool = False) -> EngineSession:
        import onnxruntime as ort

        self.check(precision, device)
        wanted = providers(device)
        try:
            session = ort.InferenceSession(str(path), session_options(threads, spin), providers=wanted)
        except Exception as exc:  # onnxruntime raises its own exception types for corrupt files
            raise BundleError(f"{path}: cannot load the ONNX model ({exc})") from None
        if wanted[0] not in session.get_providers():
            raise FewshotError(f"{path}: onnxruntime could not start {wanted[0]} (CUDA/cuDNN libraries?)")
        return OnnxRuntimeSession(session)
