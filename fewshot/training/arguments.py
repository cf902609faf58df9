"""``PromptTrainingArguments``: PaddleNLP's ``TrainingArguments`` with fewshot's defaults and prompt options.

This dataclass is the one source of every training default: ``PromptClassifier.fit``,
``fewshot-train``, ``fewshot-compare`` and the examples all read it (the CLIs generate their
options from its fields, see ``fewshot.cli.options``).

>>> PromptTrainingArguments().learning_rate, PromptTrainingArguments().per_device_train_batch_size
(3e-05, 8)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional

from paddlenlp.trainer import TrainingArguments

from ..numbers import check_fields

POSITIVE = {"low": 0, "low_open": True}


@dataclass
class PromptTrainingArguments(TrainingArguments):
    """PaddleNLP ``TrainingArguments`` with few-shot defaults, plus the prompt-learning options."""

    output_dir: Optional[str] = field(
        default=None, metadata={"help": "Directory for the Trainer's own files; a temporary one when not given."}
    )
    per_device_train_batch_size: int = field(default=8, metadata={"help": "Training examples per step and device.", "range": {"low": 1}})
    per_device_eval_batch_size: int = field(default=32, metadata={"help": "Examples per evaluation batch.", "range": {"low": 1}})
    learning_rate: float = field(default=3e-5, metadata={"help": "Learning rate of the pretrained model.", "range": POSITIVE})
    num_train_epochs: float = field(default=10.0, metadata={"help": "Epochs to train when max_steps is not set.", "range": POSITIVE})
    max_steps: int = field(default=-1, metadata={"help": "Training steps (overrides num_train_epochs when > 0).", "range": {"low": -1}})
    logging_steps: int = field(default=10, metadata={"help": "Log the loss every N steps.", "range": {"low": 1}})
    save_strategy: str = field(default="no", metadata={"help": "Trainer checkpoints: no, steps or epoch."})
    report_to: Optional[List[str]] = field(default_factory=list, metadata={"help": "Logging integrations."})
    do_train: bool = field(default=True, metadata={"help": "Train (always true for fit)."})
    release_grads: Optional[bool] = field(
        default=True,
        metadata={"help": "Free the gradients after each optimizer step instead of zero-filling them (same numbers, faster)."},
    )
    ppt_learning_rate: Optional[float] = field(
        default=None,
        metadata={"help": "Learning rate of prompt parameters (soft tokens, soft verbalizer).", "range": POSITIVE},
    )
    ppt_weight_decay: Optional[float] = field(default=None, metadata={"help": "Weight decay of prompt parameters.", "range": {"low": 0}})
    freeze_plm: bool = field(default=False, metadata={"help": "Train only the prompt parameters."})
    use_rdrop: bool = field(default=False, metadata={"help": "Add the R-Drop loss."})
    alpha_rdrop: float = field(default=5.0, metadata={"help": "Weight of the R-Drop loss.", "range": {"low": 0}})
    use_rgl: bool = field(default=False, metadata={"help": "Add the RGL label-consistency loss (single-label)."})
    alpha_rgl: float = field(default=0.5, metadata={"help": "Weight of the RGL loss.", "range": {"low": 0}})
    early_stopping_patience: int = field(
        default=0,
        metadata={"help": "Stop after N evaluations on the dev data without improvement of metric_for_best_model, "
                          "keeping the best weights (0: off; evaluates every eval_steps, else every epoch).",
                  "range": {"low": 0}},
    )
    early_stopping_threshold: float = field(
        default=0.0, metadata={"help": "Least change of the metric that counts as an improvement.", "range": {"low": 0}}
    )

    seed: int = field(default=TrainingArguments.seed, metadata={"help": "Random seed.", "range": {"low": 0, "high": 2**32 - 1}})

    def __post_init__(self):
        check_fields(self)
        if self.early_stopping_patience and str(self.evaluation_strategy) in ("no", "IntervalStrategy.NO"):
            self.evaluation_strategy = "steps" if self.eval_steps else "epoch"
        if self.label_names is None:
            self.label_names = ["labels"]
        super().__post_init__()
