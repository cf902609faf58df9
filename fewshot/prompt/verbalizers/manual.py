"""fewshot's manual verbalizer: label words read character by character at consecutive ``[MASK]`` slots.

With the template ``…{'mask'}{'mask'}`` and ``news_car==汽车``, slot 1 should read 汽 and slot 2 车.
With a single ``{'mask'}`` the slot reads the whole word: its score is the mean of its tokens'
scores there (PaddleNLP's ManualVerbalizer with its default ``token_aggregate_type="mean"``). A
label with several words scores the mean of their probabilities. It uses the pretrained masked-LM
head, so it classifies before any training.
"""

from __future__ import annotations

import math
from typing import Any, Dict, Sequence

import numpy as np
import paddle
import paddle.nn as nn

from .base import Verbalizer, decoder_rows, register


@register
class ManualVerbalizer(Verbalizer):
    """Scores label words with the PLM's masked-LM head (kind ``"manual"``).

    A word's score is the mean log-probability of its characters at consecutive mask slots (all at
    the one slot when the template has one); a label's logit is the log of the mean probability of
    its words.

    ``log_probs=False`` is for a softmax over the labels, which ignores a constant added to every
    label's logit. When all label words have the same number of characters (or the template has
    one slot), the slots' vocabulary log-partition functions are such a constant, so the logits
    leave them out and project the mask states onto the label words' output embeddings only,
    instead of the whole vocabulary (the same probabilities and gradients for a fraction of the head's work). Mixed
    word lengths, and ``log_probs=True`` (multi-label log-odds need true log-probabilities), score
    against the whole vocabulary.
    """

    kind = "manual"

    def __init__(
        self,
        label_words: Dict[str, Sequence[str]],
        tokenizer: Any,
        num_masks: int,
        predictions: nn.Layer,
        log_probs: bool = True,
    ):
        super().__init__(label_words, tokenizer, num_masks, predictions)
        word_ids = self.label_token_ids
        words = [w for label in self.labels for w in word_ids[label]]
        lengths = {len(w) for w in words}
        width = max(lengths)
        # Token t of a word is read at slot t; one slot reads every token of the word.
        token_slots = [min(t, num_masks - 1) for t in range(width)]
        self.same_partition = num_masks == 1 or len(lengths) == 1
        self.label_words_only = not log_probs and self.same_partition
        ids = np.zeros([len(words), width], dtype="int64")
        weights = np.zeros([len(words), width], dtype="float32")
        for i, w in enumerate(words):
            ids[i, : len(w)] = w
            weights[i, : len(w)] = 1.0 / len(w)
        membership = np.full([len(self.labels), len(words)], -1e4, dtype="float32")
        log_counts = np.zeros([len(self.labels)], dtype="float32")
        start = 0
        for c, label in enumerate(self.labels):
            n = len(word_ids[label])
            membership[c, start : start + n] = 0.0
            log_counts[c] = math.log(n)
            start += n
        self.token_slots = token_slots
        self.register_buffer("word_ids", paddle.to_tensor(ids), persistable=False)
        self.register_buffer("word_weights", paddle.to_tensor(weights), persistable=False)
        self.register_buffer("membership", paddle.to_tensor(membership), persistable=False)
        self.register_buffer("log_counts", paddle.to_tensor(log_counts), persistable=False)
        if self.same_partition:
            # Token-major copies for _label_word_scores: ids [tokens * words], weights [tokens, 1, words].
            self.register_buffer("slot_index", paddle.to_tensor(np.array(token_slots, dtype="int64")),
                                 persistable=False)
            self.register_buffer("slot_word_ids", paddle.to_tensor(ids.T.reshape(-1)), persistable=False)
            slot_weights = np.ascontiguousarray(weights.T[:, None, :])
            self.register_buffer("slot_word_weights", paddle.to_tensor(slot_weights), persistable=False)

    def for_softmax(self) -> None:
        """Score the label words' decoder rows only where that shifts a row by a constant (as ``log_probs=False``)."""
        self.label_words_only = self.same_partition

    def project(self, hidden: paddle.Tensor) -> paddle.Tensor:
        """``[batch, words]``: each word's mean token score (log-probability, or logit on the fast path)."""
        return self._label_word_scores(hidden) if self.label_words_only else self._word_log_probs(hidden)

    def aggregate(self, word_scores: paddle.Tensor) -> paddle.Tensor:
        """``[batch, words]`` → ``[batch, labels]``: log of the mean probability of a label's words."""
        per_label = word_scores.unsqueeze(1) + self.membership.unsqueeze(0)
        return paddle.logsumexp(per_label, axis=-1) - self.log_counts

    def _word_log_probs(self, hidden: paddle.Tensor) -> paddle.Tensor:
        """``[batch, words]``: each word's mean token log-probability over the whole vocabulary."""
        vocab_logits = self.head.predictions.decoder(hidden)
        # Not F.log_softmax: Paddle's CPU kernel clips it at -64, flattening rare words' scores.
        logp = vocab_logits - paddle.logsumexp(vocab_logits, axis=-1, keepdim=True)
        word_scores = 0.0
        for t, slot in enumerate(self.token_slots):
            slot_logp = paddle.index_select(logp[:, slot, :], self.word_ids[:, t], axis=1)
            word_scores = word_scores + slot_logp * self.word_weights[:, t]
        return word_scores

    def _label_word_scores(self, hidden: paddle.Tensor) -> paddle.Tensor:
        """``[batch, words]``: each word's mean token logit, decoder rows of the label words only."""
        decoder = self.head.predictions.decoder
        tokens = self.slot_word_weights.shape[0]
        ids = self.slot_word_ids
        rows, bias = decoder_rows(decoder, ids)
        token_hidden = paddle.index_select(hidden, self.slot_index, axis=1).transpose([1, 0, 2])
        logits = paddle.matmul(token_hidden, rows.reshape([tokens, -1, hidden.shape[-1]]), transpose_y=True)
        logits = logits + bias.reshape([tokens, 1, -1])
        return (logits * self.slot_word_weights).sum(axis=0)
