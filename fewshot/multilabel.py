"""Multi-label classification: label sets in data rows, per-label logits, BCE, thresholds, metrics.

A multi-label row lists its labels with a delimiter (default ``,``)::

    张某盗窃并故意伤害他人    盗窃,故意伤害

Each label gets an independent probability ``sigmoid(logit)``; a label is predicted when its
probability reaches its threshold (0.5, or tuned per label on dev data with
:func:`tune_thresholds`). Metrics are micro-F1, macro-F1 and the exact-match ratio (the share
of rows whose predicted label set equals the gold set).

Per-label logits (:class:`MultiLabelHead`):

- the soft verbalizer's output is already an unbounded linear score, so it is used as is;
- the manual verbalizer's output is ``s = log P(label words at the masks)`` (always ≤ 0, a
  log-probability that only makes sense against the other labels), so it is turned into the log
  odds ``log p - log(1 - p)`` of "the masks read this label's words". Without training, a label
  is then predicted exactly when the masked LM gives its words probability above the threshold;

both plus a learned per-label bias that absorbs how often each label occurs. Raw masked-LM log odds
of a label word are far below 0 (a word rarely has probability above 0.5), so before the first
training run the bias is set from the training data (:func:`prior_bias`): each label's mean logit
starts at the log odds of its base rate instead of all labels starting as "almost surely absent".
"""

from __future__ import annotations

import re
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np
import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from .errors import DataError, LabelFileError

DEFAULT_LABEL_DELIMITER = ","
DEFAULT_THRESHOLD = 0.5
_PUNCTUATION = re.compile(r"[^\w\u4e00-\u9fff]")
_LOG_ODDS_CLIP = 1e-6


def split_labels(text: str, delimiter: str = DEFAULT_LABEL_DELIMITER) -> List[str]:
    """The labels of one row, stripped: ``"盗窃, 故意伤害"`` → ``["盗窃", "故意伤害"]``."""
    return [part.strip() for part in text.split(delimiter)]


def delimiter_hint(value: str, known: Any, delimiter: str, what: str) -> str:
    """A hint when ``value`` is made of known names joined by another punctuation character.

    ``("盗窃;抢劫", {"盗窃", "抢劫"}, ",", "labels are separated by")`` →
    ``"; it looks like ';' was used, but labels are separated by ','"``; ``""`` when no such character fits.
    """
    for char in sorted(set(_PUNCTUATION.findall(value)) - set(delimiter)):
        parts = [part.strip() for part in value.split(char)]
        if len(parts) > 1 and all(part in known for part in parts):
            return f"; it looks like {char!r} was used, but {what} {delimiter!r}"
    return ""


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
            hint = delimiter_hint(label, known, delimiter, "labels are separated by")
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


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """Numerically stable logistic function on numpy arrays."""
    logits = np.asarray(logits, dtype="float64")
    out = np.empty_like(logits)
    pos = logits >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-logits[pos]))
    exp = np.exp(logits[~pos])
    out[~pos] = exp / (1.0 + exp)
    return out.astype("float32")


def bce_loss(logits: paddle.Tensor, targets: paddle.Tensor) -> paddle.Tensor:
    """Mean binary cross-entropy of ``[batch, labels]`` logits against 0/1 targets."""
    return F.binary_cross_entropy_with_logits(logits, targets.astype(logits.dtype))


def bernoulli_rdrop_loss(logits_a: paddle.Tensor, logits_b: paddle.Tensor) -> paddle.Tensor:
    """R-Drop for independent sigmoids: symmetric KL between the two passes' Bernoulli distributions."""
    logp_a, logq_a = F.log_sigmoid(logits_a), F.log_sigmoid(-logits_a)
    logp_b, logq_b = F.log_sigmoid(logits_b), F.log_sigmoid(-logits_b)
    diff = (logp_a.exp() - logp_b.exp()) * (logp_a - logp_b) + (logq_a.exp() - logq_b.exp()) * (logq_a - logq_b)
    return 0.5 * diff.sum(axis=-1).mean()


class MultiLabelHead(nn.Layer):
    """Wraps a verbalizer so that its per-label scores become independent (sigmoid) logits.

    ``log_odds=True`` (manual verbalizer): the score ``s = log p`` becomes ``log p - log(1 - p)``;
    ``log_odds=False`` (soft verbalizer): the score is used as is. A per-label bias is added.
    ``log1p(-exp(s))`` rather than ``log(-expm1(s))``: paddle2onnx cannot convert ``expm1``.
    """

    def __init__(self, verbalizer: nn.Layer, num_labels: int, log_odds: bool):
        super().__init__()
        self.inner = verbalizer
        self.labels = list(getattr(verbalizer, "labels", []))
        self.log_odds = log_odds
        self.bias = self.create_parameter([num_labels], default_initializer=nn.initializer.Constant(0.0))

    @property
    def head(self) -> nn.Layer:
        return self.inner.head

    def is_fresh(self) -> bool:
        """True until the bias was set or trained (all zeros)."""
        return not bool(paddle.any(self.bias != 0))

    def forward(self, mask_hidden: paddle.Tensor) -> paddle.Tensor:
        """``[batch, num_masks, hidden]`` → ``[batch, num_labels]`` sigmoid logits."""
        scores = self.inner(mask_hidden)
        if self.log_odds:
            scores = paddle.clip(scores, max=-_LOG_ODDS_CLIP)
            scores = scores - paddle.log1p(-paddle.exp(scores))
        return scores + self.bias


def prior_bias(logits: np.ndarray, targets: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """A per-label bias that moves each label's mean logit on the training rows to its log base rate.

    ``logits`` were computed with ``bias`` in place; a label on 1 of 4 rows whose mean logit is
    ``-6`` gets ``bias + (logit(0.25) + 6)``. Rates are clipped to [0.02, 0.98] so that a label on
    every row (or none) keeps a finite bias.
    """
    rates = np.clip(np.asarray(targets, dtype="float64").mean(axis=0), 0.02, 0.98)
    shift = np.log(rates) - np.log1p(-rates) - np.asarray(logits, dtype="float64").mean(axis=0)
    return (np.asarray(bias, dtype="float64") + shift).astype("float32")


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


def apply_thresholds(probs: np.ndarray, thresholds: Any) -> np.ndarray:
    """Boolean ``[n, labels]``: which labels are predicted (probability ≥ its threshold)."""
    return np.asarray(probs) >= np.asarray(thresholds, dtype="float32")


def multilabel_metrics(
    predicted: np.ndarray, gold: np.ndarray, label_names: Optional[Sequence[str]] = None, report: bool = False
) -> Dict[str, Any]:
    """Micro-F1, macro-F1 (scikit-learn) and exact-match ratio of 0/1 ``[n, labels]`` matrices.

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
        metrics["per_class"] = classification_report(
            gold, predicted, target_names=list(label_names), output_dict=True, zero_division=0
        )
    return metrics


def compute_multilabel_metrics(eval_pred: Any) -> Dict[str, float]:
    """``compute_metrics`` hook for the Trainer: sigmoid logits at 0.5 → micro/macro-F1, exact match."""
    logits = eval_pred.predictions[0] if isinstance(eval_pred.predictions, tuple) else eval_pred.predictions
    return multilabel_metrics(np.asarray(logits) >= 0.0, np.asarray(eval_pred.label_ids))


class MultiLabelTask:
    """What ``PromptClassifier(multi_label=True)`` does differently: targets, decoding, metrics.

    ``labels`` fixes the column order; ``thresholds`` (one per label) decide the predicted sets.
    """

    kind = "multi_label"

    def __init__(
        self,
        labels: Sequence[str],
        delimiter: str = DEFAULT_LABEL_DELIMITER,
        thresholds: Optional[Sequence[float]] = None,
    ):
        check_label_names(labels, delimiter)
        self.labels = list(labels)
        self.delimiter = delimiter
        self.thresholds = self._checked_thresholds(thresholds)

    def _checked_thresholds(self, thresholds: Optional[Any]) -> np.ndarray:
        if thresholds is None:
            return np.full(len(self.labels), DEFAULT_THRESHOLD, dtype="float32")
        values = np.broadcast_to(np.asarray(thresholds, dtype="float32"), (len(self.labels),)).copy()
        if not np.all((values > 0) & (values < 1)):
            raise ValueError(f"thresholds must lie strictly between 0 and 1, got {values.tolist()}")
        return values

    def set_thresholds(self, thresholds: Any) -> None:
        self.thresholds = self._checked_thresholds(thresholds)

    def check(self, where: str, label: str) -> None:
        """Validator for ``fewshot.data`` readers: raises ``DataError`` naming ``where``."""
        parse_label_set(where, label, self.labels, self.delimiter)

    def gold_matrix(self, labels: Sequence[str]) -> np.ndarray:
        """Multi-hot ``[n, labels]`` of rows' label fields (already validated)."""
        return to_multi_hot([split_labels(text, self.delimiter) for text in labels], self.labels)

    def target(self, label: str) -> List[float]:
        """A row's training target: ``"b,a"`` → ``[1.0, 1.0, 0.0]`` over labels ``a, b, c``."""
        return self.gold_matrix([label])[0].tolist()

    def decode(self, probs: np.ndarray) -> List[List[str]]:
        """Predicted label lists, labels in ``self.labels`` order; a row may get no label."""
        chosen = apply_thresholds(probs, self.thresholds)
        return [[self.labels[c] for c in np.flatnonzero(row)] for row in chosen]

    def metrics(self, probs: np.ndarray, gold_labels: Sequence[str], report: bool = False) -> Dict[str, Any]:
        return multilabel_metrics(
            apply_thresholds(probs, self.thresholds), self.gold_matrix(gold_labels), self.labels, report
        )

    def tune(self, probs: np.ndarray, gold_labels: Sequence[str]) -> np.ndarray:
        """Tune and keep per-label thresholds on dev probabilities; returns them."""
        self.thresholds = tune_thresholds(probs, self.gold_matrix(gold_labels))
        return self.thresholds

    def config(self) -> Dict[str, Any]:
        return {"task": self.kind, "label_delimiter": self.delimiter, "thresholds": self.thresholds.tolist()}

    @classmethod
    def from_config(cls, labels: Sequence[str], config: Mapping[str, Any]) -> "MultiLabelTask":
        return cls(labels, config.get("label_delimiter", DEFAULT_LABEL_DELIMITER), config.get("thresholds"))
