"""What to label next: the unlabelled texts a classifier is least sure about, spread over the input space.

Strategies (``select_indices``):

- ``margin``: smallest gap between the two most probable classes (``1 - (p1 - p2)`` is the score);
- ``entropy``: highest entropy of the class distribution;
- ``diverse``: uncertainty and coverage together (Cluster-Margin, Citovsky et al. 2021): the
  ``pool_factor * k`` texts with the smallest margin are clustered by k-means on their L2-normalised
  mask hidden states (what the verbalizer reads) into ``k`` clusters, and each cluster gives its
  most uncertain text — so ``k`` near-copies of one confusing headline count once.

Classes are the task's (``Task.class_distribution``): labels, or hierarchy paths. Multi-label
tasks have a yes/no decision per label: margin is the smallest distance of a label's logit from
its threshold's, entropy the sum of the labels' binary entropies.

>>> select_indices(probs, hidden, clf.task, k=2, strategy="diverse")
[41, 7]
"""

from __future__ import annotations

from typing import Any, List, Optional, Sequence, Tuple

import numpy as np

from ..errors import FewshotError
from ..tasks import Task

STRATEGIES = ("margin", "entropy", "diverse")
DEFAULT_POOL_FACTOR = 10
_EPS = 1e-12


def uncertainty(task: Task, probs: np.ndarray, strategy: str) -> np.ndarray:
    """Higher is more worth labelling: ``margin`` (``diverse`` uses it too) or ``entropy`` scores per row."""
    p = np.clip(task.class_distribution(probs), _EPS, 1 - _EPS)
    if strategy == "entropy":
        if task.exclusive:
            return -(p * np.log(p)).sum(axis=1)
        return -(p * np.log(p) + (1 - p) * np.log1p(-p)).sum(axis=1)
    if task.exclusive:
        top = np.sort(p, axis=1)[:, ::-1]
        second = top[:, 1] if p.shape[1] > 1 else np.zeros(len(p))
        return 1.0 - (top[:, 0] - second)
    thresholds = np.clip(np.asarray(task.thresholds, dtype="float64"), _EPS, 1 - _EPS)  # type: ignore[attr-defined]
    distance = np.abs((np.log(p) - np.log1p(-p)) - (np.log(thresholds) - np.log1p(-thresholds)))
    return -distance.min(axis=1)


def _kmeans_picks(points: np.ndarray, scores: np.ndarray, k: int, seed: int) -> List[int]:
    """The most uncertain member of each of ``k`` k-means clusters of ``points`` (fewer when the points
    have fewer distinct positions)."""
    import warnings

    from sklearn.cluster import KMeans
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clusters = KMeans(n_clusters=k, n_init=4, random_state=seed).fit_predict(points)
    picks = []
    for c in np.unique(clusters):
        members = np.flatnonzero(clusters == c)
        picks.append(int(members[np.argmax(scores[members])]))
    return sorted(picks, key=lambda i: -scores[i])


def select_indices(
    probs: np.ndarray, hidden: Optional[np.ndarray], task: Task, k: int, strategy: str = "margin",
    pool_factor: int = DEFAULT_POOL_FACTOR, seed: int = 0,
) -> Tuple[List[int], np.ndarray]:
    """The ``k`` row indices to label next, best first, and every row's uncertainty score.

    ``probs``: the classifier's probabilities ``[n, labels]``; ``hidden``: its mask hidden states
    ``[n, d]`` (needed by ``diverse`` only).
    """
    if strategy not in STRATEGIES:
        raise FewshotError(f"strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
    if k < 1:
        raise FewshotError(f"k must be at least 1, got {k}")
    n = len(probs)
    k = min(k, n)
    scores = uncertainty(task, probs, "entropy" if strategy == "entropy" else "margin")
    ranked = sorted(range(n), key=lambda i: (-scores[i], i))
    if strategy != "diverse":
        return ranked[:k], scores
    if hidden is None:
        raise FewshotError("strategy 'diverse' needs the mask hidden states")
    pool = np.array(ranked[: max(k, min(n, pool_factor * k))])
    points = hidden[pool] / np.maximum(np.linalg.norm(hidden[pool], axis=1, keepdims=True), _EPS)
    chosen = [int(pool[i]) for i in _kmeans_picks(points, scores[pool], k, seed)]
    taken = set(chosen)
    chosen += [i for i in ranked if i not in taken][: k - len(chosen)]
    return chosen, scores


def select_texts(
    clf: Any, inputs: Sequence[Any], k: int, strategy: str = "margin", batch_size: int = 32,
    pool_factor: int = DEFAULT_POOL_FACTOR, seed: int = 0,
) -> Tuple[List[int], np.ndarray, np.ndarray]:
    """:func:`select_indices` for a ``PromptClassifier`` on unlabelled ``inputs`` (texts, pairs, Examples):
    the chosen indices, every row's score and the probabilities, from one batched pass."""
    logits, hidden = clf.logits(inputs, batch_size=batch_size, return_hidden=True)
    probs = clf.task.activate(logits)
    chosen, scores = select_indices(probs, hidden, clf.task, k, strategy, pool_factor, seed)
    return chosen, scores, probs
