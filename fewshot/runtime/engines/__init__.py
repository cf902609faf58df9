"""Inference engines: what runs a bundle's ONNX graph, and in which precision.

``onnxruntime`` is the default; ``openvino`` is optional (``pip install "fewshot[openvino]"``). One
subclass of :class:`Engine` per engine, registered in ``ENGINES``; ``auto`` picks the fastest engine
and precision that are installed, that the device runs and whose model the bundle has::

>>> engine, precision = choose_engine("auto", "auto", "cpu", lambda model: model in ("fp32", "int8"))
>>> engine.name, precision.name     # on a CPU with native bf16 and OpenVINO installed
('openvino', 'bf16')
>>> choose_engine("onnxruntime", "bf16", "cpu", lambda model: True)
Traceback (most recent call last):
fewshot.errors.FewshotError: --engine onnxruntime on cpu runs precision int8, fp32, fp16, not bf16
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Mapping, Tuple

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
    ("openvino", "bf16"), ("openvino", "int8"), ("onnxruntime", "int8"), ("openvino", "fp32"),
    ("onnxruntime", "fp16"), ("onnxruntime", "fp32"),
)
"""Engine and precision in the order ``auto`` takes them, the first one available: fastest first as
measured end to end on zh-ernie-tiny (docs/cpu.md: on an AMD EPYC with AVX512-BF16 OpenVINO bf16 ran
2.6x onnxruntime fp32, onnxruntime's int8 2.4x, OpenVINO's calibrated int8 2.1x), bf16 ahead of int8
also because it keeps fp32's labels (99.4 % against 95-97 % top-1 agreement). onnxruntime's fp16 is
first of its kind on a GPU, where it is the only engine; on a CPU fp16 is never picked automatically."""
AUTO_MIN_AGREEMENT = 0.96
"""``--precision auto`` passes over an int8 model whose export check measured a lower top-1 agreement with fp32."""


def auto_allows(export_check: Mapping[str, Any]) -> Callable[[str], bool]:
    """Which precisions ``auto`` may pick for a bundle, from its manifest's ``export_check``: all but
    int8 when the export measured int8's top-1 agreement with fp32 below ``AUTO_MIN_AGREEMENT``.

    >>> auto_allows({"int8_check": {"top1_agreement": 0.73}})("int8")
    False
    """
    agreement = (export_check.get("int8_check") or {}).get("top1_agreement", 1.0)
    return lambda precision: precision != "int8" or agreement >= AUTO_MIN_AGREEMENT


def choose_engine(engine: str, precision: str, device: str, has_model: Callable[[str], bool],
                  allows: Callable[[str], bool] = lambda precision: True) -> Tuple[Engine, Precision]:
    """The engine and precision to run: the ones named, checked, or for ``auto`` the fastest available
    combination whose model file (a key of ``ONNX_FILES``) the bundle has (``has_model``) and, for
    ``--precision auto``, whose precision ``allows`` (see :func:`auto_allows`)."""
    if engine not in ENGINE_CHOICES:
        raise FewshotError(f"engine must be one of {', '.join(ENGINE_CHOICES)}, got {engine!r}")
    if precision not in PRECISION_CHOICES:
        raise FewshotError(f"precision must be one of {', '.join(PRECISION_CHOICES)}, got {precision!r}")
    if engine != AUTO and precision != AUTO:
        ENGINES[engine].check(PRECISIONS[precision], device)
        return ENGINES[engine], PRECISIONS[precision]
    candidates = _candidates(engine, precision, device, has_model, allows)
    if not candidates:
        wanted = f"engine {engine}, precision {precision}"
        raise FewshotError(f"no installed engine runs this bundle on {device} with {wanted}")
    name, precision_name = candidates[0]
    return ENGINES[name], PRECISIONS[precision_name]


def _candidates(engine: str, precision: str, device: str, has_model: Callable[[str], bool],
                allows: Callable[[str], bool]) -> List[Tuple[str, str]]:
    """Every (engine, precision) that ``auto`` may pick, fastest first."""
    found = []
    for name, candidate in ENGINES.items():
        if engine not in (AUTO, name) or not candidate.available():
            continue
        for p in candidate.precisions(device):
            automatic = precision == AUTO and allows(p) and not (p == "fp16" and device == "cpu")
            if (automatic or p == precision) and has_model(PRECISIONS[p].model):
                found.append((name, p))
    rank = {pair: i for i, pair in enumerate(SPEED_ORDER)}
    return sorted(found, key=lambda pair: rank.get(pair, len(rank)))


__all__ = [
    "AUTO", "AUTO_MIN_AGREEMENT", "DEFAULT_ENGINE", "DEFAULT_PRECISION", "ENGINES", "ENGINE_CHOICES", "Engine", "EngineSession",
    "PRECISIONS", "PRECISION_CHOICES", "Precision", "SPEED_ORDER", "auto_allows", "choose_engine",
]
