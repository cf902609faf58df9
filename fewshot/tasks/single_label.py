"""Single-label classification: one label per text, a softmax over the labels, the argmax wins.

>>> task = SingleLabelTask(["news_car", "news_tech"])
>>> task.metrics(np.array([[0.9, 0.1], [0.3, 0.7]]), ["news_car", "news_car"])
{'accuracy': 0.5, 'macro_f1': 0.333...}
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Sequence

import numpy as np

from ..data.examples import KnownLabels
from .base import Task
from .metrics import classification_metrics


class SingleLabelTask(Task):
    """``labels`` fixes the column order; a text's target is its label's index."""

    kind = "multi_class"
    description = "single-label"
    activation = "softmax"
    options = frozenset({"calibrate", "rgl", "pseudo_labels"})

    def __init__(self, labels: Sequence[str]):
        self.labels = list(labels)
        self._index = {label: i for i, label in enumerate(self.labels)}
        self._known = KnownLabels(self.labels)

    def check(self, where: str, label: str) -> None:
        self._known.check(where, label)

    def target(self, label: str) -> int:
        return self._index[label]

    def soft_target(self, label: str) -> List[float]:
        row = [0.0] * len(self.labels)
        row[self._index[label]] = 1.0
        return row

    def decode(self, probs: np.ndarray) -> List[str]:
        return [self.labels[i] for i in np.asarray(probs).argmax(axis=-1)]

    def metrics(self, probs: np.ndarray, gold_labels: Sequence[str], report: bool = False) -> Dict[str, Any]:
        gold = np.array([self._index[label] for label in gold_labels])
        return classification_metrics(np.asarray(probs).argmax(axis=-1), gold, self.labels, report=report)

    def target_metrics(self, probs: np.ndarray, targets: np.ndarray) -> Dict[str, float]:
        return classification_metrics(np.asarray(probs).argmax(axis=-1), np.asarray(targets).reshape(-1))


    @classmethod
    def from_config(cls, labels: Sequence[str], config: Mapping[str, Any]) -> "SingleLabelTask":
        return cls(labels)
