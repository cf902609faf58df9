"""Soft labels from an ensemble, confident pseudo-labels, and their files — numpy only (no Paddle).

>>> members = [np.array([[0.9, 0.1]]), np.array([[0.6, 0.4]])]
>>> ensemble_soft_labels("softmax", members, temperature=2.0)
array([[0.6503, 0.3497]], dtype=float32)
>>> confident_rows(np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8]]), [1, 1])
(array([0, 2]), array([0, 1]))
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np

from ..atomic import atomic_file
from ..errors import BundleError, FewshotError
from ..tasks.pooling import temper


def ensemble_soft_labels(activation: str, member_probs: Sequence[np.ndarray], temperature: float) -> np.ndarray:
    """The members' averaged temperature-scaled distributions ``[texts, labels]`` (PET's soft labels).

    Each member's probabilities become the activation of its logits divided by ``temperature``
    (``fewshot.tasks.pooling.temper``); the ensemble is their arithmetic mean.
    """
    if not len(member_probs):
        raise FewshotError("ensemble_soft_labels: no member predictions")
    shapes = {np.shape(p) for p in member_probs}
    if len(shapes) != 1:
        raise FewshotError(f"ensemble_soft_labels: members predicted different shapes {sorted(shapes)}")
    return np.mean([temper(activation, p, temperature) for p in member_probs], axis=0).astype("float32")


def class_counts(total: int, shares: Sequence[float]) -> List[int]:
    """``total`` rows split over classes in proportion to ``shares`` (largest remainders; sums to ``total``).

    ``class_counts(10, [0.5, 0.3, 0.2])`` → ``[5, 3, 2]``.
    """
    shares = np.asarray(shares, dtype="float64")
    exact = total * shares / shares.sum()
    counts = np.floor(exact).astype(int)
    for index in np.argsort(-(exact - counts), kind="stable")[: total - counts.sum()]:
        counts[index] += 1
    return counts.tolist()


def confident_rows(probs: np.ndarray, per_class: Sequence[int]) -> Tuple[np.ndarray, np.ndarray]:
    """Row indices and hard labels of the most confident predictions, ``per_class[c]`` for class ``c``.

    A row belongs to the class it is predicted as; within a class the rows of highest probability
    come first (a class with fewer predicted rows gives what it has). Rows are returned in index order.
    """
    probs = np.asarray(probs)
    predicted = probs.argmax(axis=1)
    confidence = probs.max(axis=1)
    chosen = []
    for label, count in enumerate(per_class):
        rows = np.flatnonzero(predicted == label)
        chosen.append(rows[np.argsort(-confidence[rows], kind="stable")][: int(count)])
    index = np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, dtype=int)
    return index, predicted[index]


def one_hot(labels: np.ndarray, num_labels: int) -> np.ndarray:
    """``[2, 0]`` over 3 labels → ``[[0, 0, 1], [1, 0, 0]]`` (float32)."""
    out = np.zeros((len(labels), num_labels), dtype="float32")
    out[np.arange(len(labels)), labels] = 1.0
    return out


def save_arrays(path: Path, arrays: Dict[str, np.ndarray]) -> None:
    """Write named arrays to ``path`` (``.npz``) atomically: a kill leaves the old file or the new one."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)


def load_arrays(path: Path) -> Dict[str, np.ndarray]:
    """The arrays :func:`save_arrays` wrote; an unreadable file is a ``BundleError`` naming it."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return {name: data[name] for name in data.files}
    except (OSError, ValueError) as exc:
        raise BundleError(f"{path}: not a readable .npz file ({exc})") from None
