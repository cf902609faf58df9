"""Calibrated confidence: temperature scaling fitted on dev logits, and the expected calibration error.

Temperature scaling (Guo et al. 2017) divides every logit by one number ``T > 0`` fitted to minimise
the negative log-likelihood of held-out labels: ``T > 1`` softens an over-confident model, and the
argmax (and, with thresholds moved along, every decision) stays the same. The task applies it in
``Task.activate``; the exported graph divides by the same value (see ``fewshot.export.graph``).

>>> logits = np.array([[8.0, 0.0], [8.0, 0.0], [0.0, 8.0], [8.0, 0.0]])
>>> fit_temperature(logits, np.array([0, 1, 1, 0]), "softmax")      # one in four is wrong
7.28...
>>> expected_calibration_error(np.array([0.9, 0.9]), np.array([1.0, 0.0]))
0.4
"""

from __future__ import annotations

import math
from typing import Any, Dict, List

import numpy as np

from ..errors import FewshotError

DEFAULT_TEMPERATURE = 1.0
DEFAULT_BINS = 10
TEMPERATURE_RANGE = (1e-2, 1e2)
"""The interval the fit searches; a temperature at either end means the dev data say little."""


def check_temperature(value: Any, where: str = "temperature") -> float:
    """A finite temperature above 0 as a float: ``"2"`` → ``FewshotError``, ``1.5`` → ``1.5``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise FewshotError(f"{where} must be a finite number above 0, got {value!r}")
    return float(value)


def negative_log_likelihood(logits: np.ndarray, targets: np.ndarray, activation: str) -> float:
    """Mean NLL of ``targets`` under ``activation(logits)``: class ids for ``softmax``, a 0/1 matrix for
    ``sigmoid`` (mean binary cross-entropy over every row and column)."""
    z = np.asarray(logits, dtype="float64")
    if activation == "softmax":
        top = z.max(axis=1, keepdims=True)
        log_norm = top[:, 0] + np.log(np.exp(z - top).sum(axis=1))
        return float(np.mean(log_norm - z[np.arange(len(z)), np.asarray(targets, dtype="int64")]))
    y = np.asarray(targets, dtype="float64")
    return float(np.mean(np.logaddexp(0.0, z) - y * z))


def fit_temperature(logits: np.ndarray, targets: Any, activation: str) -> float:
    """The temperature minimising the NLL of ``targets`` (see :func:`negative_log_likelihood`) under
    ``logits / T``, searched on ``log T`` in :data:`TEMPERATURE_RANGE` (scipy's bounded Brent method)."""
    from scipy.optimize import minimize_scalar

    z = np.asarray(logits, dtype="float64")
    y = np.asarray(targets)
    if not len(z):
        raise FewshotError("fit_temperature: no rows to fit on")
    low, high = (math.log(t) for t in TEMPERATURE_RANGE)
    result = minimize_scalar(lambda log_t: negative_log_likelihood(z / math.exp(log_t), y, activation),
                             bounds=(low, high), method="bounded", options={"xatol": 1e-4})
    return float(math.exp(result.x))


def calibration_bins(confidence: np.ndarray, outcome: np.ndarray, bins: int = DEFAULT_BINS) -> List[Dict[str, float]]:
    """Equal-width confidence bins over [0, 1]: each non-empty bin's ``low``, ``high``, ``count``,
    mean ``confidence`` and mean ``outcome`` (accuracy, or the positive rate) — a reliability diagram."""
    confidence = np.asarray(confidence, dtype="float64").reshape(-1)
    outcome = np.asarray(outcome, dtype="float64").reshape(-1)
    index = np.minimum((confidence * bins).astype("int64"), bins - 1)
    rows = []
    for b in range(bins):
        chosen = index == b
        if chosen.any():
            rows.append({"low": b / bins, "high": (b + 1) / bins, "count": int(chosen.sum()),
                         "confidence": float(confidence[chosen].mean()), "outcome": float(outcome[chosen].mean())})
    return rows


def expected_calibration_error(confidence: np.ndarray, outcome: np.ndarray, bins: int = DEFAULT_BINS) -> float:
    """ECE: the count-weighted mean gap between confidence and outcome over :func:`calibration_bins`."""
    table = calibration_bins(confidence, outcome, bins)
    total = sum(row["count"] for row in table)
    if not total:
        raise FewshotError("expected_calibration_error: no rows")
    return float(sum(row["count"] * abs(row["confidence"] - row["outcome"]) for row in table) / total)
