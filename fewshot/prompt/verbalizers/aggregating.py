"""PaddleNLP's verbalizers with their aggregation options: every ``[MASK]`` reads whole words.

- ``PaddleNLPManualVerbalizer`` (kind ``"paddlenlp"``): PaddleNLP's ``ManualVerbalizer``. At every mask
  slot a word's score is its tokens' logits combined (``token_aggregate_type``); with
  ``post_log_softmax`` the scores are softmaxed over all label words (and slots) and logged; a
  label's words are combined (``word_aggregate_type``), then the slots (``mask_aggregate_type``).
- ``MaskedLMVerbalizer`` (kind ``"maskedlm"``): PaddleNLP's ``MaskedLMVerbalizer``. One word per
  label, all with as many tokens as the template has masks; mask ``i`` reads token ``i``'s logit and
  the slots are combined (``mask_aggregate_type``).

Only the label words' rows of the LM decoder are computed, never the whole vocabulary: every option
above reads label-token logits only.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, Sequence

import numpy as np
import paddle
import paddle.nn as nn

from ...errors import LabelFileError
from .base import Verbalizer, decoder_rows, register

logger = logging.getLogger(__name__)

_MASKED = 1e4
_EPS = 1e-15


def aggregate_last_axis(scores: paddle.Tensor, mask: paddle.Tensor, how: str) -> paddle.Tensor:
    """Combine the last axis where ``mask`` is 1: ``"mean"``, ``"max"`` or ``"first"``.

    ``[[1., 3., 9.]]`` with mask ``[[1, 1, 0]]`` → mean ``[2.]``, max ``[3.]``, first ``[1.]``.
    """
    if how == "mean":
        return (scores * mask).sum(axis=-1) / (mask.sum(axis=-1) + _EPS)
    if how == "max":
        return (scores - _MASKED * (1 - mask)).max(axis=-1)
    return scores[..., 0]


def aggregate_slots(scores: paddle.Tensor, how: str) -> paddle.Tensor:
    """Combine ``[batch, slots, labels]`` over the slots: ``"mean"``, ``"sum"``, ``"max"``, ``"first"``
    or ``"product"`` (PaddleNLP's default; it multiplies the slots' scores as they are)."""
    if how == "mean":
        return scores.mean(axis=1)
    if how == "sum":
        return scores.sum(axis=1)
    if how == "max":
        return scores.max(axis=1)
    if how == "first":
        return scores[:, 0]
    result = scores[:, 0]
    for slot in range(1, scores.shape[1]):
        result = result * scores[:, slot]
    return result


@register
class PaddleNLPManualVerbalizer(Verbalizer):
    """PaddleNLP's ``ManualVerbalizer``: each slot scores whole label words, then words and slots combine.

    ``{'news_car': ['汽车']}`` with one mask and the defaults: the word's score is the mean of the
    logits of 汽 and 车 at the mask, log-softmaxed over the label words.
    """

    kind = "paddlenlp"
    whole_words = True
    OPTIONS = {
        "token_aggregate_type": ("mean", "max", "first"),
        "word_aggregate_type": ("mean", "max", "first"),
        "mask_aggregate_type": ("product", "mean", "max", "first", "sum"),
        "post_log_softmax": (True, False),
    }

    def __init__(
        self,
        label_words: Dict[str, Sequence[str]],
        tokenizer: Any,
        num_masks: int,
        predictions: nn.Layer,
        token_aggregate_type: str = "mean",
        word_aggregate_type: str = "mean",
        mask_aggregate_type: str = "product",
        post_log_softmax: bool = True,
    ):
        super().__init__(label_words, tokenizer, num_masks, predictions)
        self.token_aggregate_type = token_aggregate_type
        self.word_aggregate_type = word_aggregate_type
        self.mask_aggregate_type = mask_aggregate_type
        self.post_log_softmax = post_log_softmax
        self.log_prob_scores = post_log_softmax and (num_masks == 1 or mask_aggregate_type != "product")
        words = [self.label_token_ids[label] for label in self.labels]
        max_words = max(len(w) for w in words)
        max_tokens = max(len(t) for w in words for t in w)
        ids = np.zeros([len(words), max_words, max_tokens], dtype="int64")
        token_mask = np.zeros_like(ids, dtype="float32")
        word_mask = np.zeros([len(words), max_words], dtype="float32")
        for c, label_words_ids in enumerate(words):
            word_mask[c, : len(label_words_ids)] = 1
            for w, tokens in enumerate(label_words_ids):
                ids[c, w, : len(tokens)] = tokens
                token_mask[c, w, : len(tokens)] = 1
        self.shape = list(ids.shape)
        self.register_buffer("token_ids", paddle.to_tensor(ids.reshape(-1)), persistable=False)
        self.register_buffer("token_mask", paddle.to_tensor(token_mask), persistable=False)
        self.register_buffer("word_mask", paddle.to_tensor(word_mask), persistable=False)

    def project(self, hidden: paddle.Tensor) -> paddle.Tensor:
        """``[batch, slots, hidden]`` → ``[batch, slots, labels, words]`` word scores (tokens combined)."""
        rows, bias = decoder_rows(self.head.predictions.decoder, self.token_ids)
        logits = paddle.matmul(hidden, rows, transpose_y=True) + bias
        logits = logits.reshape([hidden.shape[0], hidden.shape[1], *self.shape])
        words = aggregate_last_axis(logits, self.token_mask, self.token_aggregate_type)
        return words - _MASKED * (1 - self.word_mask)

    def normalize(self, words: paddle.Tensor) -> paddle.Tensor:
        """With ``post_log_softmax``: log of the softmax over every label word at every slot together."""
        if not self.post_log_softmax:
            return words
        shape = words.shape
        probs = nn.functional.softmax(words.reshape([shape[0], -1]), axis=-1).reshape(shape)
        return paddle.log(probs + _EPS)

    def aggregate(self, words: paddle.Tensor) -> paddle.Tensor:
        """Words then slots combined: ``[batch, labels]``."""
        labels = aggregate_last_axis(words, self.word_mask, self.word_aggregate_type)
        return aggregate_slots(labels, self.mask_aggregate_type)


@register
class MaskedLMVerbalizer(Verbalizer):
    """PaddleNLP's ``MaskedLMVerbalizer``: mask ``i`` reads token ``i`` of the label's (first) word.

    ``{'news_car': ['汽车'], 'news_tech': ['科技']}`` with two masks: label ``news_car`` scores
    logit(汽 at mask 1) combined with logit(车 at mask 2). Scores are raw logits, as in PaddleNLP.
    """

    kind = "maskedlm"
    whole_words = True
    OPTIONS = {"mask_aggregate_type": ("product", "mean", "max", "first", "sum")}
    log_prob_scores = False

    def __init__(
        self,
        label_words: Dict[str, Sequence[str]],
        tokenizer: Any,
        num_masks: int,
        predictions: nn.Layer,
        mask_aggregate_type: str = "product",
    ):
        first_words = {}
        for label, words in label_words.items():
            if len(words) > 1:
                logger.info("maskedlm verbalizer: label %r has %d words; only %r is used", label, len(words), words[0])
            first_words[label] = list(words[:1])
        super().__init__(first_words, tokenizer, num_masks, predictions)
        self.mask_aggregate_type = mask_aggregate_type
        ids = np.zeros([num_masks, len(self.labels)], dtype="int64")
        for c, label in enumerate(self.labels):
            tokens = self.label_token_ids[label][0]
            if len(tokens) != num_masks:
                raise LabelFileError(
                    f"verbalizer 'maskedlm': label {label!r} word has {len(tokens)} tokens but the template has "
                    f"{num_masks} [MASK] slots; every label word needs exactly one token per slot"
                )
            ids[:, c] = tokens
        self.register_buffer("slot_token_ids", paddle.to_tensor(ids.reshape(-1)), persistable=False)

    def project(self, hidden: paddle.Tensor) -> paddle.Tensor:
        """``[batch, slots, hidden]`` → ``[batch, slots, labels]``: each label's token ``i`` logit at slot ``i``."""
        rows, bias = decoder_rows(self.head.predictions.decoder, self.slot_token_ids)
        rows = rows.reshape([self.num_masks, len(self.labels), hidden.shape[-1]])
        logits = paddle.matmul(hidden.transpose([1, 0, 2]), rows, transpose_y=True)
        return logits.transpose([1, 0, 2]) + bias.reshape([1, self.num_masks, -1])

    def aggregate(self, scores: paddle.Tensor) -> paddle.Tensor:
        return aggregate_slots(scores, self.mask_aggregate_type)
