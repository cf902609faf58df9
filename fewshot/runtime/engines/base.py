"""What every inference engine offers: a precision, an engine that opens a graph, a session that runs it.

>>> session = ENGINES["onnxruntime"].open(Path("bundle/model.onnx"), PRECISIONS["fp32"], "cpu", threads=2)
>>> session.run({"input_ids": ids, "token_type_ids": types, "attention_mask": mask, "masked_positions": masks}).shape
(32, 15)
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, Mapping, Optional, Sequence, Tuple

import numpy as np

from ...errors import FewshotError

Feed = Mapping[str, np.ndarray]
Shape = Sequence[Any]
"""A graph tensor's dimensions: an int where fixed, anything else (a name, None) where dynamic."""


@dataclass(frozen=True)
class Precision:
    """The number format inference runs in: ``model`` is which of the bundle's ONNX files is read
    (a key of ``ONNX_FILES``), ``compute`` the float type the engine computes in (``bf16`` reads the
    fp32 model and has the engine compute in bfloat16)."""

    name: str
    model: str
    compute: str


PRECISIONS: Dict[str, Precision] = {
    p.name: p for p in (
        Precision("fp32", "fp32", "f32"),
        Precision("bf16", "fp32", "bf16"),
        Precision("int8", "int8", "f32"),
        Precision("fp16", "fp16", "f16"),
    )
}
AUTO = "auto"


class EngineSession:
    """One opened graph. ``inputs``/``outputs`` map tensor names to shapes; :meth:`run` runs one batch,
    :meth:`run_many` a stream of batches, results in order (several in flight where the engine profits)."""

    inputs: Dict[str, Shape]
    outputs: Dict[str, Shape]

    def run(self, feed: Feed) -> np.ndarray:
        """The first output for one batch of inputs."""
        raise NotImplementedError

    def run_many(self, feeds: Iterable[Feed]) -> Iterator[np.ndarray]:
        """The first output of each batch, in order: ``[feed1, feed2]`` → ``probs1, probs2``."""
        for feed in feeds:
            yield self.run(feed)


class Engine:
    """An inference engine: a Python package that runs ONNX graphs. One subclass per engine, in ``ENGINES``."""

    name: str = ""
    module: str = ""
    """The package to import; missing means the engine is not available."""
    install: str = ""
    """How to install it, for the error message."""

    def available(self) -> bool:
        """Whether the engine's package is installed."""
        return importlib.util.find_spec(self.module) is not None

    def precisions(self, device: str) -> Tuple[str, ...]:
        """The precisions this engine runs on ``device``, fastest first."""
        raise NotImplementedError

    def open(self, path: Path, precision: Precision, device: str, threads: Optional[int] = None,
             spin: bool = True, throughput: bool = False) -> EngineSession:
        """A session for the graph at ``path`` computing in ``precision`` on ``device`` with ``threads``
        CPU threads. ``throughput=True`` sets it up for a stream of batches (several in flight in
        :meth:`EngineSession.run_many` where the engine profits); ``False`` for one batch at a time, as soon
        as possible. ``spin=False`` keeps idle worker threads off the cores between runs."""
        raise NotImplementedError

    def check(self, precision: Precision, device: str) -> None:
        """Refuse, in one line, an engine that is not installed or a precision it cannot run."""
        if not self.available():
            raise FewshotError(f"--engine {self.name} needs {self.module}, which is not installed: {self.install}")
        supported = self.precisions(device)
        if not supported:
            raise FewshotError(f"--engine {self.name} does not run on {device}")
        if precision.name not in supported:
            raise FewshotError(f"--engine {self.name} on {device} runs precision {', '.join(supported)}, "
                               f"not {precision.name}")

    def version(self) -> str:
        """The engine package's version, for reports."""
        return str(getattr(importlib.import_module(self.module), "__version__", "?"))

