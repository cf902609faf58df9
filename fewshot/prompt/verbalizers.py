"""Verbalizers: from the hidden states at the ``[MASK]`` slots to one logit per class.

A label's words fill the mask slots character by character: with the template ``…{'mask'}{'mask'}``
and ``news_car==汽车``, slot 1 should read 汽 and slot 2 车. A label with several words scores the
mean of their probabilities.

- ``ManualVerbalizer`` uses the pretrained masked-LM head, so it classifies before any training.
- ``SoftVerbalizer`` replaces the LM decoder by a per-slot linear layer initialised from the label
  words' output embeddings, which training then moves freely.
"""

from __future__ import annotations

import logging
import math
from typing import Any, Dict, List, Mapping, Sequence

import numpy as np
import paddle
import paddle.nn as nn

from ..errors import LabelFileError

logger = logging.getLogger(__name__)


def tokenize_label_words(
    label_words: Dict[str, Sequence[str]], tokenizer: Any, num_masks: int
) -> Dict[str, List[List[int]]]:
    """Token ids of every label word; a label without words stands for itself.

    ``{'news_car': ['汽车']}`` → ``{'news_car': [[id('汽'), id('车')]]}``.
    """
    if num_masks < 1:
        raise LabelFileError("verbalizer: the template has no {'mask'} slot for the label words")
    result: Dict[str, List[List[int]]] = {}
    for label, words in label_words.items():
        ids_per_word = []
        for word in words or [label]:
            ids = tokenizer.convert_tokens_to_ids(tokenizer.tokenize(word))
            if not ids:
                raise LabelFileError(f"verbalizer: label {label!r} word {word!r} tokenizes to nothing")
            if len(ids) > num_masks:
                raise LabelFileError(
                    f"verbalizer: label {label!r} word {word!r} has {len(ids)} tokens but the template has "
                    f"only {num_masks} [MASK] slot(s); add {{'mask'}} slots or use shorter words"
                )
            if tokenizer.unk_token_id in ids:
                logger.warning("label %r word %r contains characters unknown to the vocabulary", label, word)
            ids_per_word.append(ids)
        result[label] = ids_per_word
    _check_distinct(result, tokenizer)
    return result


def _check_distinct(ids: Mapping[str, List[List[int]]], tokenizer: Any) -> None:
    """Two labels whose words become the same tokens only through ``[UNK]`` can never be told apart:
    ``{'a': ['😀'], 'b': ['🎉']}`` → ``LabelFileError: verbalizer: labels 'a' and 'b' …``."""
    seen: Dict[Any, str] = {}
    for label, words in ids.items():
        key = tuple(sorted(map(tuple, words)))
        if key in seen and any(tokenizer.unk_token_id in word for word in words):
            shown = " ".join(tokenizer.convert_ids_to_tokens(list(key[0])))
            raise LabelFileError(
                f"verbalizer: labels {seen[key]!r} and {label!r} both become {shown}: their words have characters "
                "unknown to the vocabulary, so the two labels could never be told apart; choose words in the vocabulary"
            )
        seen.setdefault(key, label)


class LMHeadTransform(nn.Layer):
    """The PLM's masked-LM head up to (not including) the vocabulary decoder, shared with the PLM."""

    def __init__(self, predictions: nn.Layer):
        super().__init__()
        self.predictions = predictions

    def forward(self, hidden: paddle.Tensor) -> paddle.Tensor:
        p = self.predictions
        return p.layer_norm(p.activation(p.transform(hidden)))


class Verbalizer(nn.Layer):
    """What every verbalizer holds: labels in order, their words' token ids, and the LM head transform."""

    def __init__(self, label_words: Dict[str, Sequence[str]], tokenizer: Any, num_masks: int, predictions: nn.Layer):
        super().__init__()
        self.label_token_ids = tokenize_label_words(label_words, tokenizer, num_masks)
        self.labels = list(self.label_token_ids)
        self.num_masks = num_masks
        self.head = LMHeadTransform(predictions)


class ManualVerbalizer(Verbalizer):
    """Scores label words with the PLM's masked-LM head.

    A word's score is the mean log-probability of its characters at consecutive mask slots; a
    label's logit is the log of the mean probability of its words.

    ``log_probs=False`` is for a softmax over the labels, which ignores a constant added to every
    label's logit. When all label words have the same number of characters, the slots'
    vocabulary log-partition functions are such a constant, so the logits leave them out and
    project the mask states onto the label words' output embeddings only, instead of the whole
    vocabulary (the same probabilities and gradients for a fraction of the head's work). Mixed
    word lengths, and ``log_probs=True`` (multi-label log-odds need true log-probabilities), score
    against the whole vocabulary.
    """

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
        # The label-words-only path reads decoder rows: paddlenlp's Linear stores weight as [vocab, hidden].
        rows_first = not isinstance(predictions.decoder, nn.Linear)
        self.label_words_only = not log_probs and len(lengths) == 1 and rows_first
        ids = np.zeros([len(words), num_masks], dtype="int64")
        weights = np.zeros([len(words), num_masks], dtype="float32")
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
        self.register_buffer("word_ids", paddle.to_tensor(ids), persistable=False)
        self.register_buffer("word_weights", paddle.to_tensor(weights), persistable=False)
        self.register_buffer("membership", paddle.to_tensor(membership), persistable=False)
        self.register_buffer("log_counts", paddle.to_tensor(log_counts), persistable=False)
        if self.label_words_only:
            # Slot-major copies for _label_word_scores: ids [slots * words], weights [slots, 1, words].
            slots = lengths.pop()
            self.register_buffer("slot_word_ids", paddle.to_tensor(ids[:, :slots].T.reshape(-1)), persistable=False)
            slot_weights = np.ascontiguousarray(weights[:, :slots].T[:, None, :])
            self.register_buffer("slot_word_weights", paddle.to_tensor(slot_weights), persistable=False)

    def forward(self, mask_hidden: paddle.Tensor) -> paddle.Tensor:
        """``[batch, num_masks, hidden]`` → ``[batch, num_labels]`` logits."""
        hidden = self.head(mask_hidden)
        word_scores = self._label_word_scores(hidden) if self.label_words_only else self._word_log_probs(hidden)
        per_label = word_scores.unsqueeze(1) + self.membership.unsqueeze(0)
        return paddle.logsumexp(per_label, axis=-1) - self.log_counts

    def _word_log_probs(self, hidden: paddle.Tensor) -> paddle.Tensor:
        """``[batch, words]``: each word's mean character log-probability over the whole vocabulary."""
        vocab_logits = self.head.predictions.decoder(hidden)
        # Not F.log_softmax: Paddle's CPU kernel clips it at -64, flattening rare words' scores.
        logp = vocab_logits - paddle.logsumexp(vocab_logits, axis=-1, keepdim=True)
        word_scores = 0.0
        for slot in range(self.num_masks):
            slot_logp = paddle.index_select(logp[:, slot, :], self.word_ids[:, slot], axis=1)
            word_scores = word_scores + slot_logp * self.word_weights[:, slot]
        return word_scores

    def _label_word_scores(self, hidden: paddle.Tensor) -> paddle.Tensor:
        """``[batch, words]``: each word's mean character logit, decoder rows of the label words only."""
        decoder = self.head.predictions.decoder
        slots = self.slot_word_weights.shape[0]
        ids = self.slot_word_ids
        rows = paddle.index_select(decoder.weight, ids, axis=0).reshape([slots, -1, hidden.shape[-1]])
        logits = paddle.matmul(hidden[:, :slots, :].transpose([1, 0, 2]), rows, transpose_y=True)
        if decoder.bias is not None:
            logits = logits + paddle.index_select(decoder.bias, ids).reshape([slots, 1, -1])
        return (logits * self.slot_word_weights).sum(axis=0)


class SoftVerbalizer(Verbalizer):
    """A trainable per-slot linear head over the LM head's transform.

    Slot ``m``'s weights for label ``c`` start as the mean output embedding of the ``m``-th
    character of ``c``'s words, so before training it ranks labels like the LM head would.
    """

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
                rows = [w[slot] for w in word_ids[label] if len(w) > slot]
                if rows:
                    weight[slot, c] = out_embed[rows].mean(axis=0)
                    init_bias[slot, c] = bias[rows].mean()
        self.weight = self.create_parameter(weight.shape, default_initializer=nn.initializer.Assign(weight))
        self.bias = self.create_parameter(init_bias.shape, default_initializer=nn.initializer.Assign(init_bias))

    def forward(self, mask_hidden: paddle.Tensor) -> paddle.Tensor:
        """``[batch, num_masks, hidden]`` → ``[batch, num_labels]`` logits (summed over slots)."""
        h = self.head(mask_hidden).transpose([1, 0, 2])
        per_slot = paddle.matmul(h, self.weight, transpose_y=True) + self.bias.unsqueeze(1)
        return per_slot.sum(axis=0)


VERBALIZERS = {"manual": ManualVerbalizer, "soft": SoftVerbalizer}
