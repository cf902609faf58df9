"""The ``Task`` interface: what a task kind decides between the model's logits and the user's labels.

A task owns its label columns, how a gold label is checked and turned into a training target,
the output activation, decoding probabilities into labels, metrics, thresholds where they
apply, and a JSON config that save, load, export and the runtime all read back with
:func:`task_from_config`. Training, export and serving ask the task; none branches on its kind.

>>> task = SingleLabelTask(["news_car", "news_tech"])
>>> task.target("news_tech")
1
>>> task.decode(task.activate(np.array([[2.0, 0.5]])))
['news_car']
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Dict, FrozenSet, List, Mapping, Optional, Sequence, Tuple, Type, Union

import numpy as np

from ..errors import BundleError, FewshotError
from .calibration import (
    DEFAULT_TEMPERATURE,
    check_temperature,
    expected_calibration_error,
    fit_temperature,
)
from .metrics import multilabel_metrics
from .thresholds import apply_thresholds, check_thresholds, tune_thresholds

TASKS: Dict[str, Type["Task"]] = {}
"""Task classes by their ``kind``, as written in configs and manifests."""


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float32: ``[[0, 0]]`` → ``[[0.5, 0.5]]``."""
    logits = np.asarray(logits, dtype="float64")
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return (shifted / shifted.sum(axis=-1, keepdims=True)).astype("float32")


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """Numerically stable logistic function: ``[0, 100]`` → ``[0.5, 1.0]`` (float32)."""
    logits = np.asarray(logits, dtype="float64")
    out = np.empty_like(logits)
    pos = logits >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-logits[pos]))
    exp = np.exp(logits[~pos])
    out[~pos] = exp / (1.0 + exp)
    return out.astype("float32")


def activate(activation: str, logits: np.ndarray) -> np.ndarray:
    """``softmax`` (one label per text) or ``sigmoid`` (independent labels) of ``logits``, float32."""
    return softmax(logits) if activation == "softmax" else sigmoid(logits)


class Task(ABC):
    """One task kind. Subclasses set the class attributes and implement the abstract methods.

    - ``kind``: its name in configs (``multi_class``, ``multi_label``, ``hierarchical``);
    - ``activation``: ``softmax`` (one label per text) or ``sigmoid`` (independent labels); the
      model's output head, the loss and the exported graph follow it;
    - ``options``: the optional features it supports (``calibrate``, ``rgl``, ``thresholds``,
      ``pseudo_labels``: one hard label per unlabelled text, for iPET and self-training);
    - ``exclusive``: whether a row has exactly one class among the columns (single-label labels,
      hierarchy paths) or a set of them (multi-label), see :meth:`class_distribution`.

    Every task holds a ``temperature`` (1 until :meth:`fit_temperature`): ``activate`` divides the
    logits by it, and it travels in ``config()``, so saved classifiers and bundles keep it.
    """

    kind: ClassVar[str]
    description: ClassVar[str]
    activation: ClassVar[str]
    options: ClassVar[FrozenSet[str]] = frozenset()
    exclusive: ClassVar[bool] = True

    labels: List[str]
    temperature: float = DEFAULT_TEMPERATURE

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "kind" in cls.__dict__:
            TASKS[cls.kind] = cls

    def require(self, option: str, what: str) -> None:
        """Raise ``FewshotError`` when this task does not support ``option`` (``what`` names it to the user)."""
        if option not in self.options:
            raise FewshotError(f"{what} does not apply to {self.description} classifiers")

    @abstractmethod
    def check(self, where: str, label: str) -> None:
        """Validate a gold label field of a data row; raises ``DataError`` prefixed by ``where``."""

    def label_field(self, value: Any) -> Any:
        """An in-memory row's label as the data readers take it (a string); identity by default."""
        return value

    @abstractmethod
    def target(self, label: str) -> Any:
        """A checked gold label's training target (a class id, or a multi-hot list)."""

    @abstractmethod
    def soft_target(self, label: str) -> List[float]:
        """A checked gold label as a row of per-column target probabilities, the form soft labels
        take: one-hot for a softmax task, multi-hot for a sigmoid one. The losses give a one-hot
        row the loss of its class id, so labelled and soft-labelled rows train together."""

    def activate(self, logits: np.ndarray, temperature: Optional[float] = None) -> np.ndarray:
        """Probabilities ``[n, labels]`` from the model's logits divided by the task's temperature (or
        ``temperature``), as the exported graph computes them: ``[[2, 0]]`` at T=2 → ``[[0.73, 0.27]]``."""
        scaled = np.asarray(logits, dtype="float64") / (self.temperature if temperature is None else temperature)
        return activate(self.activation, scaled)

    def set_temperature(self, temperature: float) -> None:
        """Use ``temperature`` from now on, keeping every decision as it was (the argmax does not move;
        threshold tasks move their thresholds along)."""
        self.temperature = check_temperature(temperature)

    def fit_temperature(self, logits: np.ndarray, gold_labels: Sequence[str]) -> float:
        """Fit and keep the temperature minimising the NLL of checked gold labels on (dev) logits; returns it."""
        targets = np.array([self.target(label) for label in gold_labels])
        self.set_temperature(fit_temperature(logits, targets, self.activation))
        return self.temperature

    def calibration_pairs(self, probs: np.ndarray, gold_labels: Sequence[str]) -> Tuple[np.ndarray, np.ndarray]:
        """``(confidence, outcome)`` the calibration error compares: for a softmax, each row's top
        probability and whether that label is right; for sigmoids, every (row, column) probability and
        whether the column is in the gold label set."""
        if self.activation == "softmax":
            probs = np.asarray(probs)
            gold = np.array([self.target(label) for label in gold_labels])
            return probs.max(axis=1), (probs.argmax(axis=1) == gold).astype("float64")
        targets = np.array([self.target(label) for label in gold_labels], dtype="float64")
        return np.asarray(probs).reshape(-1), targets.reshape(-1)

    def calibration_report(self, logits: np.ndarray, gold_labels: Sequence[str]) -> Dict[str, float]:
        """The expected calibration error of ``logits`` at temperature 1 and at the task's temperature."""
        return {
            "temperature": self.temperature,
            "ece_uncalibrated": expected_calibration_error(
                *self.calibration_pairs(self.activate(logits, DEFAULT_TEMPERATURE), gold_labels)),
            "ece": expected_calibration_error(*self.calibration_pairs(self.activate(logits), gold_labels)),
        }

    def class_distribution(self, probs: np.ndarray) -> np.ndarray:
        """Exclusive tasks: the probability of each column being the row's one class (rows sum to 1);
        others: each column's own probability of belonging to the row's set. Default: ``probs``."""
        return np.asarray(probs, dtype="float64")

    def given_classes(self, gold_labels: Sequence[str]) -> List[Union[int, List[int]]]:
        """Checked gold label fields as column indices: one index per row for exclusive tasks
        (``"news_tech"`` → ``1``), the list of the row's columns otherwise (``"a,c"`` → ``[0, 2]``)."""
        return [int(self.target(label)) for label in gold_labels]

    @abstractmethod
    def decode(self, probs: np.ndarray) -> List[Any]:
        """The predicted label of each row of probabilities."""

    def scores(self, probs: np.ndarray, decoded: Sequence[Any]) -> List[Any]:
        """The probability of each decoded label (a list of them where a row has a list of labels)."""
        column = {label: i for i, label in enumerate(self.labels)}
        return [
            [float(row[column[x]]) for x in label] if isinstance(label, list) else float(row[column[label]])
            for row, label in zip(probs, decoded)
        ]

    @abstractmethod
    def metrics(self, probs: np.ndarray, gold_labels: Sequence[str], report: bool = False) -> Dict[str, Any]:
        """Metrics of probabilities against gold label fields (already checked)."""

    @abstractmethod
    def target_metrics(self, probs: np.ndarray, targets: np.ndarray) -> Dict[str, float]:
        """Metrics against training targets (what the Trainer's evaluation loop has)."""

    def tune(self, probs: np.ndarray, gold_labels: Sequence[str]) -> np.ndarray:
        """Tune and keep decision thresholds on dev probabilities; returns them (sigmoid tasks only)."""
        raise FewshotError(f"tune_thresholds does not apply to {self.description} classifiers: they predict the argmax")

    def config(self) -> Dict[str, Any]:
        """JSON-ready description, ``{"task": kind, "temperature": 1.0, ...}``; subclasses add their
        fields to it, :func:`task_from_config` reads it back."""
        return {"task": self.kind, "temperature": self.temperature}

    @classmethod
    @abstractmethod
    def from_config(cls, labels: Sequence[str], config: Mapping[str, Any]) -> "Task":
        """The task described by ``config``, over the label columns ``labels``."""


def task_from_config(labels: Sequence[str], config: Mapping[str, Any], where: str = "config") -> Task:
    """Rebuild a task from ``config`` (a saved classifier's or a bundle manifest's ``task`` section).

    ``{"task": "multi_class"}`` → ``SingleLabelTask(labels)``; an unknown kind is a ``BundleError``
    naming ``where``. The stored ``temperature`` (1 in configs written before it existed) is set as
    it is: stored thresholds already belong to it.
    """
    kind = config.get("task") if isinstance(config, Mapping) else None
    if kind not in TASKS:
        raise BundleError(f"{where}: unknown task {kind!r} (expected {', '.join(TASKS)})")
    try:
        task = TASKS[kind].from_config(labels, config)
    except (KeyError, TypeError) as exc:
        raise BundleError(f"{where}: malformed {kind} task ({exc!r})") from None
    try:
        task.temperature = check_temperature(config.get("temperature", DEFAULT_TEMPERATURE))
    except FewshotError as exc:
        raise BundleError(f"{where}: task {exc}") from None
    return task



class ThresholdTask(Task):
    """A sigmoid task: one independent probability per column, decided by per-column thresholds.

    Subclasses give ``gold_matrix`` (gold label fields → multi-hot ``[n, labels]``) and decode.
    """

    activation = "sigmoid"
    options = frozenset({"thresholds"})

    def __init__(self, labels: Sequence[str], thresholds: Any = None):
        self.labels = list(labels)
        self.thresholds = check_thresholds(thresholds, len(self.labels))

    @abstractmethod
    def gold_matrix(self, gold_labels: Sequence[str]) -> np.ndarray:
        """Multi-hot ``[n, labels]`` of checked gold label fields."""

    def target(self, label: str) -> List[float]:
        return self.gold_matrix([label])[0].tolist()

    def soft_target(self, label: str) -> List[float]:
        return self.target(label)

    def target_metrics(self, probs: np.ndarray, targets: np.ndarray) -> Dict[str, float]:
        return multilabel_metrics(apply_thresholds(probs, self.thresholds), np.asarray(targets) > 0.5)

    def tune(self, probs: np.ndarray, gold_labels: Sequence[str]) -> np.ndarray:
        """Per-label thresholds maximising each label's F1 on dev probabilities; kept and returned."""
        self.thresholds = tune_thresholds(probs, self.gold_matrix(gold_labels))
        return self.thresholds

    def set_temperature(self, temperature: float) -> None:
        """Move each threshold ``t`` to ``sigmoid(logit(t) * old / new)``: a logit above its threshold
        at the old temperature is above the moved one at the new temperature, and only then."""
        new = check_temperature(temperature)
        t = np.clip(self.thresholds.astype("float64"), 1e-12, 1 - 1e-12)
        moved = sigmoid((np.log(t) - np.log1p(-t)) * self.temperature / new)
        self.thresholds = check_thresholds(np.clip(moved, 1e-6, 1 - 1e-6), len(self.labels))
        self.temperature = new
