"""The output head each task's activation needs on top of a verbalizer's per-label scores.

Softmax tasks use the verbalizer's scores as logits. Sigmoid tasks (multi-label, hierarchical)
wrap it in :class:`SigmoidHead`, which turns scores into independent per-label logits:

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

from typing import Any, Dict

import numpy as np
import paddle
import paddle.nn as nn

from ..tasks import Task
from .verbalizers import VerbalizerArg, VerbalizerSpec

_LOG_ODDS_CLIP = 1e-6


class SigmoidHead(nn.Layer):
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

    def read_positions(self, masked_positions: paddle.Tensor) -> paddle.Tensor:
        return self.inner.read_positions(masked_positions)

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


def build_head(
    task: Task, kind: VerbalizerArg, label_words: Dict[str, Any], tokenizer: Any, num_masks: int,
    predictions: nn.Layer,
) -> nn.Layer:
    """The verbalizer ``kind`` (a name, spec or mapping) over the task's labels, with the output head
    the task's activation needs.

    A softmax over the labels needs label log-probabilities only up to a constant, which lets the
    manual verbalizer score only the label words; sigmoid log odds need true log-probabilities.
    """
    verbalizer = VerbalizerSpec.parse(kind).build(label_words, tokenizer, num_masks, predictions)
    if task.activation != "sigmoid":
        verbalizer.for_softmax()
        return verbalizer
    return SigmoidHead(verbalizer, len(task.labels), log_odds=verbalizer.log_prob_scores)
