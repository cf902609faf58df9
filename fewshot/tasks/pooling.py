"""Combining several probability rows into one, in numpy: the windows of a long text, the members of an ensemble.

The training code and the bundle runtime both call these functions, so a long text gets the same
probabilities from ``PromptClassifier`` and from ``OnnxPredictor``. Rows are first mapped back to
logits (``log p`` for a softmax, the log odds for independent sigmoids), combined, and activated
again, so a pooled row is a proper distribution of the task's kind:

- ``logprob_mean``: the mean of the rows' log-probabilities, renormalised (a geometric mean; for
  sigmoid tasks, each label's mean log odds). Every window votes, a confident one the loudest.
- ``max``: each label's largest probability over the rows, renormalised for a softmax (the label
  some window is surest of wins; for sigmoid tasks a label is present if one window says so).
- ``prob_mean``: the arithmetic mean of the probabilities.

>>> pool_windows("softmax", np.array([[0.8, 0.2], [0.4, 0.6], [0.9, 0.1]]), [2, 1], "max")
array([[0.5714, 0.4286],
       [0.9   , 0.1   ]], dtype=float32)
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..errors import FewshotError
from .base import activate

POOLINGS = ("logprob_mean", "max", "prob_mean")
_CLIP = 1e-12


def logits_of(activation: str, probs: np.ndarray) -> np.ndarray:
    """Logits whose activation gives ``probs`` back (for a softmax, up to a constant per row).

    ``("softmax", [[0.5, 0.5]])`` → ``[[-0.693, -0.693]]``; ``("sigmoid", [[0.5, 0.9]])`` → ``[[0.0, 2.197]]``.
    Probabilities are clipped to ``[1e-12, 1 - 1e-12]`` so that a 0 or 1 in float32 stays finite.
    """
    p = np.clip(np.asarray(probs, dtype="float64"), _CLIP, 1.0 - _CLIP)
    return np.log(p) if activation == "softmax" else np.log(p) - np.log1p(-p)


def temper(activation: str, probs: np.ndarray, temperature: float) -> np.ndarray:
    """Temperature-scaled probabilities: the activation of ``logits / temperature``.

    ``temperature > 1`` flattens a distribution (soft labels for distillation), ``< 1`` sharpens it.
    """
    if not temperature > 0:
        raise FewshotError(f"temperature must be positive, got {temperature}")
    if temperature == 1:
        return np.asarray(probs, dtype="float32")
    return activate(activation, logits_of(activation, probs) / temperature)


def pool_rows(activation: str, probs: np.ndarray, method: str) -> np.ndarray:
    """All rows of ``probs`` ``[k, labels]`` pooled into one row ``[labels]``; one row is returned as it is."""
    return pool_windows(activation, np.asarray(probs)[None] if np.ndim(probs) == 1 else probs,
                        [len(probs)], method)[0]


def pool_windows(activation: str, probs: np.ndarray, sizes: Sequence[int], method: str) -> np.ndarray:
    """Pool consecutive groups of rows: ``sizes[i]`` rows of ``probs`` belong to text ``i``.

    Returns ``[len(sizes), labels]`` float32. A group of one row is returned unchanged, so a text
    that fits one window gets exactly the probabilities it gets without long-text handling.
    """
    if method not in POOLINGS:
        raise FewshotError(f"pooling must be one of {', '.join(POOLINGS)}, got {method!r}")
    probs = np.asarray(probs, dtype="float32")
    sizes = np.asarray(sizes, dtype="int64")
    if sizes.size == 0:
        return np.zeros((0, probs.shape[-1]), dtype="float32")
    if (sizes < 1).any() or int(sizes.sum()) != len(probs):
        raise FewshotError(f"pool_windows: group sizes sum to {int(sizes.sum())} for {len(probs)} rows")
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    if method == "prob_mean":
        pooled = np.add.reduceat(probs.astype("float64"), starts, axis=0) / sizes[:, None]
    elif method == "max":
        pooled = activate(activation, logits_of(activation, np.maximum.reduceat(probs, starts, axis=0)))
    else:
        mean = np.add.reduceat(logits_of(activation, probs), starts, axis=0) / sizes[:, None]
        pooled = activate(activation, mean)
    pooled = np.asarray(pooled, dtype="float32")
    single = sizes == 1
    pooled[single] = probs[starts[single]]
    return pooled
