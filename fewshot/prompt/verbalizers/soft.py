"""The soft verbalizer: a trainable per-slot linear head over the LM head's transform (kind ``"soft"``).

It replaces the LM decoder by one linear layer per ``[MASK]`` slot, initialised from the label words'
output embeddings, which training then moves freely. With one slot it is PaddleNLP's
``SoftVerbalizer`` (a checkpoint of it imports into this one).
"""

from __future__ import annotations

from typing import Any, Dict, Sequence

import numpy as np
import paddle
import paddle.nn as nn

from .base import Verbalizer, register


@register
class SoftVerbalizer(Verbalizer):
    """A trainable per-slot linear head over the LM head's transform.

    Slot ``m``'s weights for label ``c`` start as the mean output embedding of the ``m``-th
    character of ``c``'s words (of all their characters with one slot), so before training it ranks
    labels like the LM head would.
    """

    kind = "soft"
    untrained = False
    log_prob_scores = False

    def __init__(self, label_words: Dict[str, Sequence[str]], tokenizer: Any, num_masks: int, predictions: nn.Layer):
        super().__init__(label_words, tokenizer, num_masks, predictions)
        word_ids = self.label_token_ids
        decoder = predictions.decoder
        out_embed = decoder.weight.numpy()
        if out_embed.shape[0] != tokenizer.vocab_size and out_embed.shape[1] == tokenizer.vocab_size:
            out_embed = out_embed.T
        bias = decoder.bias.numpy() if decoder.bias is not None else np.zeros(out_embed.shape[0], "float32")
        hidden = out_embed.shape[1]
        weight = np.zeros([num_masks, len(self.labels), hidden], dtype="float32")
        init_bias = np.zeros([num_masks, len(self.labels)], dtype="float32")
        for c, label in enumerate(self.labels):
            for slot in range(num_masks):
                rows = [token for w in word_ids[label] for t, token in enumerate(w) if min(t, num_masks - 1) == slot]
                if rows:
                    weight[slot, c] = out_embed[rows].mean(axis=0)
                    init_bias[slot, c] = bias[rows].mean()
        self.weight = self.create_parameter(weight.shape, default_initializer=nn.initializer.Assign(weight))
        self.bias = self.create_parameter(init_bias.shape, default_initializer=nn.initializer.Assign(init_bias))

    def project(self, hidden: paddle.Tensor) -> paddle.Tensor:
        """``[batch, num_masks, hidden]`` → ``[num_masks, batch, num_labels]`` per-slot scores."""
        per_slot = paddle.matmul(hidden.transpose([1, 0, 2]), self.weight, transpose_y=True)
        return per_slot + self.bias.unsqueeze(1)

    def aggregate(self, per_slot: paddle.Tensor) -> paddle.Tensor:
        """The sum over slots, ``[batch, num_labels]``."""
        return per_slot.sum(axis=0)
