"""Checkpoint names on the command line and what a ``fewshot-pretrain`` checkpoint says about itself.

>>> parse_checkpoint("base@320=out/model_320")
('base@320', 'out/model_320')
>>> parse_checkpoint("out/model_320/")
('model_320', 'out/model_320/')
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Tuple

from ..pretraining.models import model_step, read_pretrain_info


def parse_checkpoint(spec: str) -> Tuple[str, str]:
    """``"name=path"`` → ``(name, path)``; a bare path is named by its last component."""
    name, sep, path = spec.partition("=")
    if sep and name.strip() and path.strip():
        return name.strip(), path.strip()
    return Path(spec.rstrip("/")).name or spec, spec


def checkpoint_step(path: str) -> Tuple[Optional[int], Optional[float]]:
    """``(pretraining step, held-out MLM perplexity)`` from ``pretrain_info.json``, else the ``model_<step>`` name."""
    info = read_pretrain_info(path) if Path(path).is_dir() else {}
    step = info.get("step")
    if step is None and model_step(path) >= 0:
        step = model_step(path)
    ppl = info.get("eval_perplexity")
    return step, float(ppl) if ppl is not None else None
