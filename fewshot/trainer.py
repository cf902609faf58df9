"""Training: PaddleNLP's ``Trainer`` with prompt-specific losses, learning rates and metrics.

Checkpointing, logging, evaluation and ``paddle.distributed.launch`` multi-GPU come from
PaddleNLP; this module adds R-Drop/RGL, a separate learning rate and weight decay for prompt
parameters, ``freeze_plm``, dynamic padding, accuracy / macro-F1 metrics and, on CPU, the
faster kernel settings of ``fewshot.cpu_math``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np
import paddle
from paddle.io import Dataset
from paddlenlp.trainer import Trainer, TrainingArguments
from sklearn.metrics import accuracy_score, classification_report, f1_score

from .cpu_math import FastCpuMathTrainer
from .losses import cross_entropy, rdrop_loss, rgl_loss
from .multilabel import bce_loss, bernoulli_rdrop_loss
from .template import pad_batch


@dataclass
class PromptTrainingArguments(TrainingArguments):
    """PaddleNLP ``TrainingArguments`` plus the prompt-learning options."""

    ppt_learning_rate: Optional[float] = field(
        default=None, metadata={"help": "Learning rate of prompt parameters (soft tokens, soft verbalizer)."}
    )
    ppt_weight_decay: Optional[float] = field(default=None, metadata={"help": "Weight decay of prompt parameters."})
    freeze_plm: bool = field(default=False, metadata={"help": "Train only the prompt parameters."})
    use_rdrop: bool = field(default=False, metadata={"help": "Add the R-Drop loss."})
    alpha_rdrop: float = field(default=5.0, metadata={"help": "Weight of the R-Drop loss."})
    use_rgl: bool = field(default=False, metadata={"help": "Add the RGL label-consistency loss."})
    alpha_rgl: float = field(default=0.5, metadata={"help": "Weight of the RGL loss."})

    def __post_init__(self):
        if self.label_names is None:
            self.label_names = ["labels"]
        super().__post_init__()


class EncodedDataset(Dataset):
    """A list of encoded examples (dicts of int lists, with an optional ``labels`` int)."""

    def __init__(self, rows: Sequence[Dict[str, Any]]):
        self.rows = list(rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> Dict[str, Any]:
        return self.rows[index]


def make_collator(pad_token_id: int) -> Callable[[List[Dict[str, Any]]], Dict[str, np.ndarray]]:
    """Collate encoded rows into arrays padded to the longest row of the batch.

    ``labels`` become int64 class ids, or float32 ``[batch, labels]`` when rows hold multi-hot lists.
    """

    def collate(rows: List[Dict[str, Any]]) -> Dict[str, np.ndarray]:
        batch = pad_batch(rows, pad_token_id)
        if "labels" in rows[0]:
            multi_hot = isinstance(rows[0]["labels"], (list, tuple))
            batch["labels"] = np.array([r["labels"] for r in rows], dtype="float32" if multi_hot else "int64")
        return batch

    return collate


def classification_metrics(
    predictions: np.ndarray, labels: np.ndarray, label_names: Optional[Sequence[str]] = None, report: bool = False
) -> Dict[str, Any]:
    """Accuracy and macro-F1 (scikit-learn) of predicted class ids; per-class report on request."""
    metrics: Dict[str, Any] = {
        "accuracy": float(accuracy_score(labels, predictions)),
        "macro_f1": float(f1_score(labels, predictions, average="macro", zero_division=0)),
    }
    if report and label_names is not None:
        metrics["per_class"] = classification_report(
            labels,
            predictions,
            labels=list(range(len(label_names))),
            target_names=list(label_names),
            output_dict=True,
            zero_division=0,
        )
    return metrics


def compute_metrics(eval_pred: Any) -> Dict[str, float]:
    """``compute_metrics`` hook for the Trainer: logits → accuracy and macro-F1."""
    logits = eval_pred.predictions[0] if isinstance(eval_pred.predictions, tuple) else eval_pred.predictions
    return classification_metrics(np.argmax(logits, axis=-1), np.asarray(eval_pred.label_ids).reshape(-1))


def is_multi_hot(labels: paddle.Tensor) -> bool:
    """True for float ``[batch, labels]`` targets (multi-label / hierarchical), False for class ids."""
    return labels.ndim == 2 and labels.dtype in (paddle.float32, paddle.float64)


def _double(inputs: Dict[str, paddle.Tensor]) -> Dict[str, paddle.Tensor]:
    return {k: paddle.concat([v, v], axis=0) for k, v in inputs.items()}


class PromptTrainer(FastCpuMathTrainer, Trainer):
    """PaddleNLP ``Trainer`` for ``PromptModel`` (and any model mapping the batch to logits).

    Training and evaluation run in ``fast_cpu_math`` (contiguous kernels, denormals flushed).
    """

    def __init__(self, model: paddle.nn.Layer, args: PromptTrainingArguments, **kwargs: Any):
        if args.freeze_plm and hasattr(model, "plm"):
            for p in model.plm.parameters():
                p.stop_gradient = True
        kwargs.setdefault("compute_metrics", compute_metrics)
        super().__init__(model=model, args=args, **kwargs)

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
        """Cross-entropy, plus R-Drop and RGL while training when enabled.

        R-Drop runs the batch twice in one doubled forward pass, so the soft prompt is encoded once.
        """
        inputs = dict(inputs)
        labels = inputs.pop("labels")
        if is_multi_hot(labels):
            return self.compute_multilabel_loss(model, inputs, labels, return_outputs)
        args = self.args
        training = model.training
        use_rdrop = training and args.use_rdrop
        use_rgl = training and args.use_rgl
        if use_rdrop:
            inputs = _double(inputs)
        outputs = model(**inputs, return_hidden=True) if use_rgl else model(**inputs)
        logits, hidden = outputs if use_rgl else (outputs, None)
        if use_rdrop:
            first, second = paddle.split(logits, 2, axis=0)
            loss = 0.5 * (cross_entropy(first, labels) + cross_entropy(second, labels))
            loss = loss + args.alpha_rdrop * rdrop_loss(first, second)
            logits = first
            if hidden is not None:
                hidden = paddle.split(hidden, 2, axis=0)[0]
        else:
            loss = cross_entropy(logits, labels)
        if use_rgl:
            loss = loss + args.alpha_rgl * rgl_loss(hidden, labels)
        return (loss, (loss, logits)) if return_outputs else loss

    def compute_multilabel_loss(
        self, model: paddle.nn.Layer, inputs: Dict[str, paddle.Tensor], labels: paddle.Tensor, return_outputs: bool
    ):
        """Binary cross-entropy over independent label logits, plus Bernoulli R-Drop when enabled.

        RGL compares single labels of example pairs, so it is refused for multi-hot targets.
        """
        args = self.args
        if model.training and args.use_rgl:
            raise ValueError("use_rgl works with single-label tasks only; turn it off for multi-label/hierarchical")
        if model.training and args.use_rdrop:
            first, second = paddle.split(model(**_double(inputs)), 2, axis=0)
            loss = 0.5 * (bce_loss(first, labels) + bce_loss(second, labels))
            loss = loss + args.alpha_rdrop * bernoulli_rdrop_loss(first, second)
            logits = first
        else:
            logits = model(**inputs)
            loss = bce_loss(logits, labels)
        return (loss, (loss, logits)) if return_outputs else loss
