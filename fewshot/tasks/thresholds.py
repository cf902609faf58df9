"""Per-label decision thresholds of sigmoid tasks: checking, tuning on dev data, applying.

>>> tune_thresholds(np.array([[0.9], [0.4], [0.2]]), np.array([[1], [1], [0]]))
array([0.3], dtype=float32)
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from ..errors import FewshotError

DEFAULT_THRESHOLD = 0.5


def check_thresholds(thresholds: Optional[Any], count: int, where: str = "thresholds") -> np.ndarray:
    """``count`` float32 thresholds strictly between 0 and 1 (one value is repeated; None gives 0.5).

    ``(0.3, 3)`` → ``[0.3, 0.3, 0.3]``; ``([0.2, 1.0], 2)`` → ``FewshotError`` naming the values.
    """
    if thresholds is None:
        return np.full(count, DEFAULT_THRESHOLD, dtype="float32")
    try:
        values = np.broadcast_to(np.asarray(thresholds, dtype="float32"), (count,)).copy()
    except (TypeError, ValueError):
        raise FewshotError(f"{where}: expected one number or {count} numbers, got {thresholds!r}") from None
    if not np.all((values > 0) & (values < 1)):
        raise FewshotError(f"{where} must lie strictly between 0 and 1, got {values.tolist()}")
    return values


def apply_thresholds(probs: np.ndarray, thresholds: Any) -> np.ndarray:
    """Boolean ``[n, labels]``: which labels are predicted (probability ≥ its threshold)."""
    return np.asarray(probs) >= np.asarray(thresholds, dtype="float32")


def _candidate_thresholds(scores: np.ndarray, default: float) -> np.ndarray:
    """Midpoints between consecutive distinct scores, the extremes' outer edges, and ``default``."""
    distinct = np.unique(scores)
    mids = (distinct[1:] + distinct[:-1]) / 2 if len(distinct) > 1 else np.empty(0)
    edges = np.array([distinct[0] / 2, (distinct[-1] + 1) / 2]) if len(distinct) else np.empty(0)
    return np.unique(np.concatenate([mids, edges, [default]]))


def _binary_f1(predicted: np.ndarray, gold: np.ndarray) -> float:
    tp = float(np.sum(predicted & gold))
    denominator = float(np.sum(predicted) + np.sum(gold))
    return 2 * tp / denominator if denominator else 1.0


def tune_thresholds(probs: np.ndarray, gold: np.ndarray, default: float = DEFAULT_THRESHOLD) -> np.ndarray:
    """One threshold per label, each maximising that label's F1 on ``(probs, gold)``.

    Candidates lie between consecutive distinct probabilities of the label, so every achievable
    split is tried; ties go to the threshold closest to ``default``. A label with no positive row
    keeps ``default`` (no evidence to move it). ``probs``/``gold`` are ``[n, labels]``.
    """
    probs = np.asarray(probs, dtype="float64")
    gold = np.asarray(gold) > 0.5
    thresholds = np.full(probs.shape[1], default, dtype="float32")
    for c in range(probs.shape[1]):
        if not gold[:, c].any():
            continue
        candidates = _candidate_thresholds(probs[:, c], default)
        scores = np.array([_binary_f1(probs[:, c] >= t, gold[:, c]) for t in candidates])
        best = np.flatnonzero(scores >= scores.max() - 1e-12)
        thresholds[c] = candidates[best[np.argmin(np.abs(candidates[best] - default))]]
    return thresholds
