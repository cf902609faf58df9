"""The OpenVINO engine (``pip install "fewshot[openvino]"``): fp32, bf16 (AVX512-BF16/AMX CPUs) and int8 on CPU.

The precision is always set explicitly: OpenVINO computes in bfloat16 by default on CPUs with
native bf16, which would change fp32 results silently. With ``throughput=True`` the model is compiled
for throughput (several streams) and :meth:`OpenVinoSession.run_many` keeps OpenVINO's optimal number
of batches in flight on an ``AsyncInferQueue``::

>>> session = OpenVinoEngine().open(Path("bundle/model.onnx"), PRECISIONS["bf16"], "cpu", threads=2, throughput=True)
>>> [probs.shape for probs in session.run_many([feed1, feed2])]
[(32, 15), (32, 15)]
"""

from __future__ import annotations

import threading
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, Optional, Tuple

import numpy as np

from ...cpu_env import usable_cores
from ...errors import BundleError
from .base import Engine, EngineSession, Feed, Precision


@lru_cache(maxsize=1)
def _core() -> Any:
    import openvino as ov

    return ov.Core()


def _shape(port: Any) -> list:
    return [d.get_length() if d.is_static else None for d in port.get_partial_shape()]


class OpenVinoSession(EngineSession):
    def __init__(self, compiled: Any, in_flight: int):
        self.compiled = compiled
        self.inputs = {port.get_any_name(): _shape(port) for port in compiled.inputs}
        self.outputs = {port.get_any_name(): _shape(port) for port in compiled.outputs}
        self.in_flight = in_flight
        self._request = compiled.create_infer_request()
        self._lock = threading.Lock()

    def run(self, feed: Feed) -> np.ndarray:
        with self._lock:
            self._request.infer({name: feed[name] for name in self.inputs})
            return self._request.get_output_tensor(0).data.copy()

    def run_many(self, feeds: Iterable[Feed]) -> Iterator[np.ndarray]:
        if self.in_flight < 2:
            yield from super().run_many(feeds)
            return
        import openvino as ov

        queue = ov.AsyncInferQueue(self.compiled, self.in_flight)
        results: Dict[int, np.ndarray] = {}
        queue.set_callback(lambda request, index: results.__setitem__(index, request.get_output_tensor(0).data.copy()))
        ready = 0
        for index, feed in enumerate(feeds):
            queue.start_async({name: feed[name] for name in self.inputs}, index)  # waits for a free request
            while ready in results:
                yield results.pop(ready)
                ready += 1
        queue.wait_all()
        while ready in results:
            yield results.pop(ready)
            ready += 1


class OpenVinoEngine(Engine):
    name = "openvino"
    module = "openvino"
    install = 'pip install "fewshot[openvino]"'

    def precisions(self, device: str) -> Tuple[str, ...]:
        if device != "cpu" or not self.available():
            return ()
        native_bf16 = "BF16" in _core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
        return ("int8", "bf16", "fp32") if native_bf16 else ("int8", "fp32")

    def open(self, path: Path, precision: Precision, device: str, threads: Optional[int] = None,
             spin: bool = True, throughput: bool = False) -> EngineSession:
        self.check(precision, device)
        config = {
            "INFERENCE_PRECISION_HINT": precision.compute,
            "INFERENCE_NUM_THREADS": int(threads) if threads else usable_cores(),
            "PERFORMANCE_HINT": "THROUGHPUT" if throughput else "LATENCY",
        }
        try:
            compiled = _core().compile_model(str(path), "CPU", config)
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise BundleError(f"{path}: OpenVINO cannot load the ONNX model ({first})") from None
        jobs = int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")) if throughput else 1
        return OpenVinoSession(compiled, jobs)
