"""Multi-label classification: label sets in data rows, one sigmoid per label, thresholds, metrics.

A multi-label row lists its labels with a delimiter (default ``,``)::

    张某盗窃并故意伤害他人    盗窃,故意伤害

Each label gets an independent probability; a label is predicted when its probability reaches
its threshold (0.5, or tuned per label on dev data). Metrics are micro-F1, macro-F1 and the
exact-match ratio (the share of rows whose predicted label set equals the gold set).

>>> task = MultiLabelTask(["盗窃", "抢劫", "故意伤害"])
>>> task.target("故意伤害,盗窃")
[1.0, 0.0, 1.0]
>>> task.decode(np.array([[0.9, 0.2, 0.6]]))
[['盗窃', '故意伤害']]
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np

from ..data.fields import delimiter_hint
from ..errors import DataError, LabelFileError
from .base import ThresholdTask
from .metrics import multilabel_metrics
from .thresholds import apply_thresholds

DEFAULT_LABEL_DELIMITER = ","


def split_labels(text: str, delimiter: str = DEFAULT_LABEL_DELIMITER) -> List[str]:
    """The labels of one row, stripped: ``"盗窃, 故意伤害"`` → ``["盗窃", "故意伤害"]``."""
    return [part.strip() for part in text.split(delimiter)]


def check_label_names(labels: Sequence[str], delimiter: str) -> None:
    """Reject label names that contain the row delimiter (they could not be written in a data row)."""
    if not delimiter:
        raise LabelFileError("label_delimiter must be a non-empty string")
    for label in labels:
        if delimiter in label:
            raise LabelFileError(
                f"label '{label}' contains the label delimiter {delimiter!r}; rename it or choose another label_delimiter"
            )


def parse_label_set(where: str, text: str, labels: Sequence[str], delimiter: str = DEFAULT_LABEL_DELIMITER) -> List[str]:
    """Validate one row's label field and return its labels in the given order, without repeats.

    ``("train.txt line 3", "盗窃,抢劫", ["抢劫", "盗窃"])`` → ``["盗窃", "抢劫"]``. Raises
    ``DataError`` prefixed by ``where`` for an empty item (``"盗窃,,抢劫"``) or an unknown label,
    with a hint when another delimiter seems to have been used.
    """
    known = set(labels)
    result: List[str] = []
    for label in split_labels(text, delimiter):
        if not label:
            raise DataError(f"{where}: empty label in '{text}' (labels are separated by {delimiter!r})")
        if label not in known:
            hint = delimiter_hint(label, lambda parts: all(p in known for p in parts), delimiter,
                                  "labels are separated by")
            shown = ", ".join(list(labels)[:10]) + (", ..." if len(labels) > 10 else "")
            raise DataError(f"{where}: unknown label '{label}'{hint} (known: {shown})")
        if label not in result:
            result.append(label)
    return result


def to_multi_hot(label_sets: Sequence[Sequence[str]], labels: Sequence[str]) -> np.ndarray:
    """``[["b"], ["a", "b"]]`` over ``["a", "b"]`` → ``[[0, 1], [1, 1]]`` (float32)."""
    index = {label: i for i, label in enumerate(labels)}
    out = np.zeros([len(label_sets), len(labels)], dtype="float32")
    for row, label_set in enumerate(label_sets):
        out[row, [index[label] for label in label_set]] = 1.0
    return out


class MultiLabelTask(ThresholdTask):
    """``labels`` fixes the column order; ``thresholds`` (one per label) decide the predicted sets."""

    kind = "multi_label"
    description = "multi-label"
    exclusive = False

    def __init__(self, labels: Sequence[str], delimiter: str = DEFAULT_LABEL_DELIMITER, thresholds: Optional[Any] = None):
        check_label_names(labels, delimiter)
        super().__init__(labels, thresholds)
        self.delimiter = delimiter

    def check(self, where: str, label: str) -> None:
        parse_label_set(where, label, self.labels, self.delimiter)

    def label_field(self, value: Any) -> Any:
        """In-memory rows may give a label list: ``["a", "b"]`` → ``"a,b"``."""
        return self.delimiter.join(map(str, value)) if isinstance(value, (list, tuple)) else value

    def gold_matrix(self, gold_labels: Sequence[str]) -> np.ndarray:
        return to_multi_hot([split_labels(text, self.delimiter) for text in gold_labels], self.labels)

    def given_classes(self, gold_labels: Sequence[str]) -> List[List[int]]:
        return [[int(c) for c in np.flatnonzero(row)] for row in self.gold_matrix(gold_labels)]

    def decode(self, probs: np.ndarray) -> List[List[str]]:
        """Predicted label lists, labels in ``self.labels`` order; a row may get no label."""
        chosen = apply_thresholds(probs, self.thresholds)
        return [[self.labels[c] for c in np.flatnonzero(row)] for row in chosen]

    def metrics(self, probs: np.ndarray, gold_labels: Sequence[str], report: bool = False) -> Dict[str, Any]:
        return multilabel_metrics(
            apply_thresholds(probs, self.thresholds), self.gold_matrix(gold_labels), self.labels, report
        )

    def config(self) -> Dict[str, Any]:
        return {**super().config(), "label_delimiter": self.delimiter, "thresholds": self.thresholds.tolist()}

    @classmethod
    def from_config(cls, labels: Sequence[str], config: Mapping[str, Any]) -> "MultiLabelTask":
        return cls(labels, config.get("label_delimiter", DEFAULT_LABEL_DELIMITER), config.get("thresholds"))
