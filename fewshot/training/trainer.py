"""Training: PaddleNLP's ``Trainer`` with the task's loss, R-Drop/RGL, prompt learning rates and metrics.

Checkpointing, logging, evaluation and ``paddle.distributed.launch`` data parallelism come from
PaddleNLP; this module adds the task's objective (``OBJECTIVES[task.activation]``) with R-Drop and
RGL, a separate learning rate and weight decay for prompt parameters, ``freeze_plm`` for one
``train`` call, dynamic padding, the task's metrics and, on CPU, the faster kernel settings of
``fewshot.training.cpu_math``.

>>> trainer = PromptTrainer(model, PromptTrainingArguments(max_steps=100), task,
...                         train_dataset=ListDataset(rows), data_collator=make_collator(0))
>>> trainer.train().global_step
100
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Dict, Iterator, List

import numpy as np
import paddle
from paddlenlp.trainer import Trainer

from ..tasks import Task
from ..template import pad_batch
from .arguments import PromptTrainingArguments
from .cpu_math import FastCpuMathTrainer
from .losses import OBJECTIVES, pool_window_logits, rgl_loss


def make_collator(pad_token_id: int) -> Callable[[List[Dict[str, Any]]], Dict[str, np.ndarray]]:
    """Collate encoded rows into arrays padded to the longest row of the batch.

    ``labels`` become int64 class ids, or float32 ``[batch, labels]`` when rows hold lists
    (multi-hot targets, or soft label distributions). An item ``{"windows": [rows], "labels": …}``
    (a long text trained pooled) gives its rows to the batch and ``window_weights`` ``[items,
    rows]`` (``1/k`` over its ``k`` rows) for :func:`pool_window_logits`.
    """

    def collate(items: List[Dict[str, Any]]) -> Dict[str, np.ndarray]:
        grouped = "windows" in items[0]
        rows = [row for item in items for row in item["windows"]] if grouped else items
        batch = pad_batch(rows, pad_token_id)
        if grouped:
            sizes = [len(item["windows"]) for item in items]
            weights = np.zeros([len(items), len(rows)], dtype="float32")
            for i, start in enumerate(np.cumsum([0] + sizes[:-1])):
                weights[i, start : start + sizes[i]] = 1.0 / sizes[i]
            batch["window_weights"] = weights
        if "labels" in items[0]:
            dense = isinstance(items[0]["labels"], (list, tuple, np.ndarray))
            batch["labels"] = np.array([r["labels"] for r in items], dtype="float32" if dense else "int64")
        return batch

    return collate


def _double(inputs: Dict[str, paddle.Tensor]) -> Dict[str, paddle.Tensor]:
    return {k: paddle.concat([v, v], axis=0) for k, v in inputs.items()}


@contextmanager
def frozen(layer: paddle.nn.Layer, enabled: bool = True) -> Iterator[None]:
    """Within the block, ``layer``'s parameters get no gradients; their previous setting comes back after."""
    params = list(layer.parameters()) if enabled else []
    before = [p.stop_gradient for p in params]
    for p in params:
        p.stop_gradient = True
    try:
        yield
    finally:
        for p, value in zip(params, before):
            p.stop_gradient = value


class PromptTrainer(FastCpuMathTrainer, Trainer):
    """PaddleNLP ``Trainer`` for ``PromptModel`` (and any model mapping the batch to logits) on a ``Task``.

    Training and evaluation run in ``fast_cpu_math`` (contiguous kernels, denormals flushed).
    """

    def __init__(self, model: paddle.nn.Layer, args: PromptTrainingArguments, task: Task, **kwargs: Any):
        if args.use_rgl:
            task.require("rgl", "use_rgl")
        self.task = task
        self.objective = OBJECTIVES[task.activation]
        kwargs.setdefault("compute_metrics", self.task_metrics)
        super().__init__(model=model, args=args, **kwargs)

    def task_metrics(self, eval_pred: Any) -> Dict[str, float]:
        """``compute_metrics`` hook: logits and targets of the evaluation set → the task's metrics."""
        logits = eval_pred.predictions[0] if isinstance(eval_pred.predictions, tuple) else eval_pred.predictions
        return self.task.target_metrics(self.task.activate(np.asarray(logits)), np.asarray(eval_pred.label_ids))

    def train(self, *args: Any, **kwargs: Any) -> Any:
        """``Trainer.train``; with ``freeze_plm`` the PLM is frozen for this call only."""
        with frozen(self.model.plm, enabled=self.args.freeze_plm and hasattr(self.model, "plm")):
            return super().train(*args, **kwargs)

    def create_optimizer(self, lr_scheduler: Any = None) -> paddle.optimizer.Optimizer:
        """AdamW with parameter groups: PLM weights (decay), PLM biases/norms (no decay) and prompt
        parameters at ``ppt_learning_rate`` / ``ppt_weight_decay``."""
        if self.optimizer is None:
            args = self.args
            prompt = self.model.prompt_parameters() if hasattr(self.model, "prompt_parameters") else []
            prompt_ids = {id(p) for p in prompt}
            decay, no_decay = [], []
            for name, p in self.model.named_parameters():
                if id(p) in prompt_ids or p.stop_gradient:
                    continue
                (no_decay if ("bias" in name or "norm" in name) else decay).append(p)
            groups = [
                {"params": decay, "weight_decay": args.weight_decay},
                {"params": no_decay, "weight_decay": 0.0},
            ]
            if prompt:
                ppt_lr = args.ppt_learning_rate if args.ppt_learning_rate is not None else args.learning_rate
                ppt_wd = args.ppt_weight_decay if args.ppt_weight_decay is not None else args.weight_decay
                groups.append(
                    {"params": prompt, "learning_rate": ppt_lr / args.learning_rate, "weight_decay": ppt_wd}
                )
            self.optimizer_grouped_parameters = [g for g in groups if g["params"]]
        return super().create_optimizer(lr_scheduler)

    def compute_loss(self, model: paddle.nn.Layer, inputs: Dict[str, paddle.Tensor], return_outputs: bool = False):
        """The task's loss, plus R-Drop and RGL while training when enabled.

        R-Drop runs the batch twice in one doubled forward pass, so the soft prompt is encoded once.
        A batch of long texts trained pooled (``window_weights``) scores each text by its windows'
        pooled logits; RGL then compares the texts' mean mask states.
        """
        inputs = dict(inputs)
        labels = inputs.pop("labels")
        weights = inputs.pop("window_weights", None)
        args, objective = self.args, self.objective
        use_rdrop = model.training and args.use_rdrop
        use_rgl = model.training and args.use_rgl
        if use_rdrop:
            inputs = _double(inputs)
        outputs = model(**inputs, return_hidden=use_rgl)
        logits, hidden = outputs if use_rgl else (outputs, None)
        if weights is not None:
            logits, hidden = self._pooled(logits, hidden, weights, copies=2 if use_rdrop else 1)
        if use_rdrop:
            first, second = paddle.split(logits, 2, axis=0)
            loss = 0.5 * (objective.loss(first, labels) + objective.loss(second, labels))
            loss = loss + args.alpha_rdrop * objective.rdrop(first, second)
            logits = first
            if hidden is not None:
                hidden = paddle.split(hidden, 2, axis=0)[0]
        else:
            loss = objective.loss(logits, labels)
        if use_rgl:
            loss = loss + args.alpha_rgl * rgl_loss(hidden, labels)
        return (loss, (loss, logits)) if return_outputs else loss

    def _pooled(self, logits: paddle.Tensor, hidden: Any, weights: paddle.Tensor, copies: int) -> Any:
        """Window logits (and mask states) → per-text ones, for each of the ``copies`` stacked passes."""
        pooled_logits, pooled_hidden = [], []
        for part in range(copies):
            rows = slice(part * weights.shape[1], (part + 1) * weights.shape[1])
            pooled_logits.append(pool_window_logits(logits[rows], weights, self.task.activation))
            if hidden is not None:
                pooled_hidden.append(paddle.matmul(weights.astype(hidden.dtype), hidden[rows]))
        joined = paddle.concat(pooled_logits, axis=0)
        return joined, (paddle.concat(pooled_hidden, axis=0) if hidden is not None else None)
