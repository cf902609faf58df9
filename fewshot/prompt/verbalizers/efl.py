"""EFL (entailment as few-shot learner): the template's text, read at ``[CLS]`` by a linear head; no label words.

PaddleNLP runs such a template with a sequence-classification model and no verbalizer. Here it is a
kind like the others, ``"efl"``: it reads the encoder's hidden state at position 0 instead of the
mask slots (the template still needs one ``{'mask'}``, which it ignores) and maps it to one logit per
label with a new linear layer, trained like a soft verbalizer.
"""

from __future__ import annotations

from typing import Any, Dict, Sequence

import paddle
import paddle.nn as nn

from ...errors import LabelFileError
from .base import Verbalizer, register


@register
class EFLHead(Verbalizer):
    """``[CLS]`` hidden state → linear → ``[batch, num_labels]``; label words are not used."""

    kind = "efl"
    untrained = False
    log_prob_scores = False

    def __init__(self, label_words: Dict[str, Sequence[str]], tokenizer: Any, num_masks: int, predictions: nn.Layer):
        nn.Layer.__init__(self)
        if num_masks < 1:
            raise LabelFileError("verbalizer 'efl': the template needs one {'mask'} slot (the head reads [CLS])")
        self.labels = list(label_words)
        self.label_token_ids = {label: [] for label in self.labels}
        self.num_masks = num_masks
        hidden = predictions.transform.weight.shape[0]
        self.classifier = nn.Linear(hidden, len(self.labels))

    def read_positions(self, masked_positions: paddle.Tensor) -> paddle.Tensor:
        """Position 0 (``[CLS]``) of every row, ``[batch, 1]``."""
        return paddle.zeros_like(masked_positions[:, :1])

    def forward(self, cls_hidden: paddle.Tensor) -> paddle.Tensor:
        """``[batch, 1, hidden]`` → ``[batch, num_labels]``."""
        return self.classifier(cls_hidden[:, 0])
