"""Inference engines: what runs a bundle's ONNX graph, and in which precision.

``onnxruntime`` is the default; ``openvino`` is optional (``pip install "fewshot[openvino]"``). One
subclass of :class:`Engine` per engine, registered in ``ENGINES``; ``auto`` picks the fastest engine
and precision that are installed, that the device runs and whose model the bundle has::

>>> engine, precision = choose_engine("auto", "auto", "cpu", lambda model: model in ("fp32", "int8"))
>>> engine.name, precision.name
('openvino', 'int8')
>>> choose_engine("onnxruntime", "bf16", "cpu", lambda model: True)
Traceback (most recent call last):
fewshot.errors.FewshotError: --engine onnxruntime on cpu runs precision int8, fp32, fp16, not bf16
"""

from __future__ import annotations

from typing import Callable, Dict, List, Tuple

from ...errors import FewshotError
from .base import AUTO, Engine, EngineSession, Precision, PRECISIONS
from .onnxruntime_engine import OnnxRuntimeEngine
from .openvino_engine import OpenVinoEngine

ENGINES: Dict[str, Engine] = {engine.name: engine for engine in (OnnxRuntimeEngine(), OpenVinoEngine())}
DEFAULT_ENGINE = "onnxruntime"
DEFAULT_PRECISION = "fp32"
ENGINE_CHOICES = (*ENGINES, AUTO)
PRECISION_CHOICES = (*PRECISIONS, AUTO)
SPEED_ORDER = (
    ("openvino", "int8"), ("openvino", "bf16"), ("onnxruntime", "int8"), ("openvino", "fp32"),
    ("onnxruntime", "fp16"), ("onnxruntime", "fp32"),
)
"""Engine and precision from fastest to slowest, as measured end to end (docs/cpu.md); ``auto`` takes
the first one available. (onnxruntime's fp16 is first of its kind on a GPU, where it is the only
engine; on a CPU the fp16 model is never picked automatically.)"""


def choose_engine(engine: str, precision: str, device: str, has_model: Callable[[str], bool]) -> Tuple[Engine, Precision]:
    """The engine and precision to run: the ones named, checked, or for ``auto`` the fastest available
    combination whose model file (a key of ``ONNX_FILES``) the bundle has (``has_model``)."""
    if engine not in ENGINE_CHOICES:
        raise FewshotError(f"engine must be one of {', '.join(ENGINE_CHOICES)}, got {engine!r}")
    if precision not in PRECISION_CHOICES:
        raise FewshotError(f"precision must be one of {', '.join(PRECISION_CHOICES)}, got {precision!r}")
    if engine != AUTO and precision != AUTO:
        ENGINES[engine].check(PRECISIONS[precision], device)
        return ENGINES[engine], PRECISIONS[precision]
    candidates = _candidates(engine, precision, device, has_model)
    if not candidates:
        wanted = f"engine {engine}, precision {precision}"
        raise FewshotError(f"no installed engine runs this bundle on {device} with {wanted}")
    name, precision_name = candidates[0]
    return ENGINES[name], PRECISIONS[precision_name]


def _candidates(engine: str, precision: str, device: str, has_model: Callable[[str], bool]) -> List[Tuple[str, str]]:
    """Every (engine, precision) that ``auto`` may pick, fastest first."""
    found = []
    for name, candidate in ENGINES.items():
        if engine not in (AUTO, name) or not candidate.available():
            continue
        for p in candidate.precisions(device):
            automatic = precision == AUTO and not (p == "fp16" and device == "cpu")
            if (automatic or p == precision) and has_model(PRECISIONS[p].model):
                found.append((name, p))
    rank = {pair: i for i, pair in enumerate(SPEED_ORDER)}
    return sorted(found, key=lambda pair: rank.get(pair, len(rank)))


__all__ = [
    "AUTO", "DEFAULT_ENGINE", "DEFAULT_PRECISION", "ENGINES", "ENGINE_CHOICES", "Engine", "EngineSession",
    "PRECISIONS", "PRECISION_CHOICES", "Precision", "SPEED_ORDER", "choose_engine",
]
