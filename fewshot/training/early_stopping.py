"""Early stopping on a dev metric, with the best weights restored in memory when training ends.

PaddleNLP's ``EarlyStoppingCallback`` semantics: after each evaluation (every ``eval_steps``, or
every epoch), the metric ``metric_for_best_model`` (default ``loss``; ``accuracy`` means
``eval_accuracy``) counts as improved when it beats the best so far (higher is better unless it
is a loss, or as ``greater_is_better`` says) by more than ``early_stopping_threshold``; after
``early_stopping_patience`` evaluations in a row without improvement, training stops. Unlike
PaddleNLP, which needs ``load_best_model_at_end`` and a pickled checkpoint per evaluation, the
best weights are copied in memory and put back into the model at the end of training.

>>> stopper = EarlyStopping(patience=2)
>>> [stopper.record(value, greater_is_better=True) for value in (0.5, 0.7, 0.6, 0.7, 0.65)]
[True, True, False, False, False]
>>> stopper.should_stop()
True
"""

from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional

import numpy as np
import paddle
from paddlenlp.trainer import TrainerCallback

from ..errors import FewshotError

logger = logging.getLogger(__name__)

LOSS_METRICS = ("loss", "eval_loss")
DEFAULT_METRIC = "loss"


def metric_key(name: Optional[str]) -> str:
    """The key of ``name`` among the evaluation metrics: ``"accuracy"`` → ``"eval_accuracy"``."""
    name = name or DEFAULT_METRIC
    return name if name.startswith("eval_") else f"eval_{name}"


def greater_is_better(args: Any) -> bool:
    """``args.greater_is_better`` when set, else True for every metric but the loss (as PaddleNLP decides)."""
    if getattr(args, "greater_is_better", None) is not None:
        return bool(args.greater_is_better)
    return (args.metric_for_best_model or DEFAULT_METRIC) not in LOSS_METRICS


class EarlyStopping(TrainerCallback):
    """Stop after ``patience`` evaluations without improvement; restore the best weights at the end.

    After training, ``best_step`` and ``best_metric`` describe the weights the model holds, and
    ``history`` lists ``(step, value)`` of every evaluation.
    """

    def __init__(self, patience: int, threshold: float = 0.0):
        if patience < 1:
            raise FewshotError(f"early stopping: patience must be at least 1, got {patience}")
        self.patience = patience
        self.threshold = threshold
        self.counter = 0
        self.best_metric: Optional[float] = None
        self.best_step: Optional[int] = None
        self.history: List[tuple] = []
        self._best_state: Optional[Dict[str, np.ndarray]] = None

    def record(self, value: float, greater_is_better: bool) -> bool:
        """Count one evaluation; True when ``value`` improves on the best so far."""
        better = np.greater if greater_is_better else np.less
        improved = self.best_metric is None or (
            bool(better(value, self.best_metric)) and abs(value - self.best_metric) > self.threshold
        )
        if improved:
            self.best_metric, self.counter = float(value), 0
        else:
            self.counter += 1
        return improved

    def should_stop(self) -> bool:
        return self.counter >= self.patience

    def on_evaluate(self, args: Any, state: Any, control: Any, metrics: Optional[Dict[str, float]] = None,
                    **kwargs: Any) -> None:
        key = metric_key(args.metric_for_best_model)
        if not metrics or key not in metrics:
            shown = ", ".join(sorted(metrics or {})) or "none"
            raise FewshotError(f"early stopping: metric '{key}' is not among the evaluation metrics ({shown}); "
                               "set metric_for_best_model (--metric-for-best-model) to one of them")
        value = float(metrics[key])
        step = int(state.global_step)
        self.history.append((step, value))
        if self.record(value, greater_is_better(args)):
            self.best_step = step
            self._best_state = {name: tensor.numpy().copy() for name, tensor in kwargs["model"].state_dict().items()}
        if self.should_stop():
            logger.info("early stopping at step %d: %s has not improved on %.4f (step %d) for %d evaluation(s)",
                        step, key, self.best_metric, self.best_step, self.patience)
            control.should_training_stop = True

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self._best_state is None:
            return
        model = kwargs["model"]
        model.set_state_dict({name: paddle.to_tensor(value) for name, value in self._best_state.items()})
        self._best_state = None
        logger.info("restored the weights of step %d (%s %.4f)", self.best_step,
                    metric_key(args.metric_for_best_model), self.best_metric)

    def summary(self) -> Dict[str, Any]:
        """What ``fit`` reports: ``{"best_step": 20, "best_metric": 0.81, "evaluations": 5}``."""
        return {"best_step": self.best_step, "best_metric": self.best_metric, "evaluations": len(self.history)}


def early_stopping_for(args: Any) -> Optional[EarlyStopping]:
    """An :class:`EarlyStopping` callback when ``args.early_stopping_patience`` is positive, else None."""
    patience = getattr(args, "early_stopping_patience", 0) or 0
    return EarlyStopping(patience, args.early_stopping_threshold) if patience > 0 else None
