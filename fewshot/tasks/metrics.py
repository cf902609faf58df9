"""Evaluation metrics of each task kind, computed with scikit-learn.

scikit-learn is imported when a metric is computed, so that the runtime (which only decodes)
installs without it.

>>> classification_metrics(np.array([0, 1, 1]), np.array([0, 1, 0]))
{'accuracy': 0.666..., 'macro_f1': 0.666...}
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Sequence

import numpy as np


def classification_metrics(
    predictions: np.ndarray, labels: np.ndarray, label_names: Optional[Sequence[str]] = None, report: bool = False
) -> Dict[str, Any]:
    """Accuracy and macro-F1 of predicted class ids; per-class report under ``per_class`` on request."""
    from sklearn.metrics import accuracy_score, classification_report, f1_score

    metrics: Dict[str, Any] = {
        "accuracy": float(accuracy_score(labels, predictions)),
        "macro_f1": float(f1_score(labels, predictions, average="macro", zero_division=0)),
    }
    if report and label_names is not None:
        present = sorted(set(np.asarray(labels).tolist()) | set(np.asarray(predictions).tolist()))
        metrics["per_class"] = per_class_table(classification_report(
            labels, predictions, labels=present, target_names=[label_names[i] for i in present],
            output_dict=True, zero_division=0,
        ), [label_names[i] for i in present])
    return metrics


def per_class_table(report: Dict[str, Any], names: Sequence[str]) -> Dict[str, Dict[str, float]]:
    """scikit-learn's ``classification_report`` dict reduced to one row per class: ``{"news_car": {"precision":
    …, "recall": …, "f1-score": …, "support": …}}``, without its ``accuracy`` / ``macro avg`` / ``weighted avg``
    entries (the task's own metrics give those, macro-F1 over the labels present)."""
    return {name: {key: float(value) for key, value in report[name].items()} for name in names}


def multilabel_metrics(
    predicted: np.ndarray, gold: np.ndarray, label_names: Optional[Sequence[str]] = None, report: bool = False
) -> Dict[str, Any]:
    """Micro-F1, macro-F1 and exact-match ratio of 0/1 ``[n, labels]`` matrices.

    ``report=True`` adds scikit-learn's per-label precision/recall/F1 under ``per_class``.
    """
    from sklearn.metrics import accuracy_score, classification_report, f1_score

    predicted = np.asarray(predicted).astype("int64")
    gold = np.asarray(gold).astype("int64")
    metrics: Dict[str, Any] = {
        "micro_f1": float(f1_score(gold, predicted, average="micro", zero_division=0)),
        "macro_f1": float(f1_score(gold, predicted, average="macro", zero_division=0)),
        "exact_match": float(accuracy_score(gold, predicted)),
    }
    if report and label_names is not None:
        metrics["per_class"] = per_class_table(classification_report(
            gold, predicted, target_names=list(label_names), output_dict=True, zero_division=0
        ), list(label_names))
    return metrics
