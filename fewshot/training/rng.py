"""Seeding without side effects: draw from a seed inside a block, then give the caller's generators back.

>>> state = paddle.get_rng_state()
>>> with seeded(0):
...     layer = paddle.nn.Linear(4, 2)      # the same weights for seed 0, every time
>>> # paddle's global generator is where it was before the block, as are numpy's and random's
"""

from __future__ import annotations

import random
from contextlib import contextmanager
from typing import Iterator, Optional

import numpy as np
import paddle


@contextmanager
def preserved_random_state() -> Iterator[None]:
    """Within the block anything may seed or draw; after it, Paddle's, numpy's and Python's global
    generators are back in the state they had before."""
    paddle_state = paddle.get_rng_state()
    numpy_state = np.random.get_state()
    python_state = random.getstate()
    try:
        yield
    finally:
        paddle.set_rng_state(paddle_state)
        np.random.set_state(numpy_state)
        random.setstate(python_state)


@contextmanager
def seeded(seed: Optional[int]) -> Iterator[None]:
    """Seed Paddle, numpy and ``random`` inside the block (nothing when ``seed`` is None), restoring them after."""
    if seed is None:
        yield
        return
    with preserved_random_state():
        paddle.seed(seed)
        np.random.seed(seed)
        random.seed(seed)
        yield
