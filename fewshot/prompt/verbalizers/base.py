"""What every verbalizer shares: labels in order, their words' token ids, the LM head, and three hooks.

A verbalizer turns the hidden states at the ``[MASK]`` slots into one score per label in three steps,
each a method a new kind overrides (OpenPrompt's hooks):

- ``project``: hidden states (after the LM head's transform) → scores of the label words' tokens;
- ``normalize``: scores → normalized scores (identity unless the kind normalizes);
- ``aggregate``: per-token / per-word / per-slot scores → ``[batch, num_labels]``.

A kind registers itself in :data:`VERBALIZERS` by its ``kind`` name; options it accepts are declared in
``OPTIONS`` (name → allowed values, first is the default), so that :class:`~.spec.VerbalizerSpec` can
check them before any model loads.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar, Dict, List, Mapping, Sequence, Tuple, Type

import paddle
import paddle.nn as nn

from ...errors import LabelFileError

logger = logging.getLogger(__name__)

VERBALIZERS: Dict[str, Type["Verbalizer"]] = {}
"""Every verbalizer kind by name, filled by :func:`register`."""


def register(cls: Type["Verbalizer"]) -> Type["Verbalizer"]:
    """Class decorator: make ``cls`` available as verbalizer kind ``cls.kind``."""
    VERBALIZERS[cls.kind] = cls
    return cls


def tokenize_label_words(
    label_words: Dict[str, Sequence[str]], tokenizer: Any, num_masks: int
) -> Dict[str, List[List[int]]]:
    """Token ids of every label word; a label without words stands for itself.

    ``{'news_car': ['汽车']}`` → ``{'news_car': [[id('汽'), id('车')]]}``. With several mask slots a
    word may not have more tokens than slots; one slot reads a word of any length.
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
            if 1 < num_masks < len(ids):
                raise LabelFileError(
                    f"verbalizer: label {label!r} word {word!r} has {len(ids)} tokens but the template has "
                    f"only {num_masks} [MASK] slots; add {{'mask'}} slots, use shorter words, or use one "
                    f"{{'mask'}} (which reads the whole word)"
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


def decoder_rows(decoder: nn.Layer, ids: paddle.Tensor) -> Tuple[paddle.Tensor, paddle.Tensor]:
    """The LM decoder's output embeddings ``[len(ids), hidden]`` and biases ``[len(ids)]`` of vocabulary ``ids``.

    PaddleNLP's ``Linear`` stores its weight as ``[vocab, hidden]``, ``paddle.nn.Linear`` as ``[hidden, vocab]``.
    """
    if isinstance(decoder, nn.Linear):
        rows = paddle.index_select(decoder.weight, ids, axis=1).transpose([1, 0])
    else:
        rows = paddle.index_select(decoder.weight, ids, axis=0)
    bias = paddle.index_select(decoder.bias, ids) if decoder.bias is not None else paddle.zeros([ids.shape[0]])
    return rows, bias


class LMHeadTransform(nn.Layer):
    """The PLM's masked-LM head up to (not including) the vocabulary decoder, shared with the PLM."""

    def __init__(self, predictions: nn.Layer):
        super().__init__()
        self.predictions = predictions

    def forward(self, hidden: paddle.Tensor) -> paddle.Tensor:
        p = self.predictions
        return p.layer_norm(p.activation(p.transform(hidden)))


class Verbalizer(nn.Layer):
    """Labels in order, their words' token ids, the LM head transform; ``forward`` runs the three hooks.

    Class attributes a kind sets: ``kind`` (its registry name), ``OPTIONS`` (option → allowed values,
    the first the default), ``untrained`` (True when it classifies before any training, so zero-shot
    can use it), ``log_prob_scores`` (True when its scores are log-probabilities ≤ 0, which a
    sigmoid head turns into log odds) and ``whole_words`` (True when every slot reads whole words,
    so a word may have more tokens than the template has slots).
    """

    kind: ClassVar[str] = ""
    OPTIONS: ClassVar[Dict[str, Tuple[Any, ...]]] = {}
    untrained: ClassVar[bool] = True
    log_prob_scores: ClassVar[bool] = True
    whole_words: ClassVar[bool] = False

    def __init__(self, label_words: Dict[str, Sequence[str]], tokenizer: Any, num_masks: int, predictions: nn.Layer):
        super().__init__()
        if num_masks < 1:
            raise LabelFileError(f"verbalizer {self.kind!r}: the template has no {{'mask'}} slot for the label words")
        self.label_token_ids = tokenize_label_words(label_words, tokenizer, 1 if self.whole_words else num_masks)
        self.labels = list(self.label_token_ids)
        self.num_masks = num_masks
        self.head = LMHeadTransform(predictions)

    def forward(self, mask_hidden: paddle.Tensor) -> paddle.Tensor:
        """``[batch, num_masks, hidden]`` → ``[batch, num_labels]`` scores."""
        return self.aggregate(self.normalize(self.project(self.head(mask_hidden))))

    def read_positions(self, masked_positions: paddle.Tensor) -> paddle.Tensor:
        """The positions whose hidden states ``forward`` reads: the mask slots, unless a kind reads others."""
        return masked_positions

    def for_softmax(self) -> None:
        """The scores will only feed a softmax over the labels: a kind may then leave out a constant
        shared by a row's labels (nothing for most kinds)."""

    def project(self, hidden: paddle.Tensor) -> paddle.Tensor:
        """Transformed mask states → scores of the label words (shape up to the kind)."""
        raise NotImplementedError

    def normalize(self, scores: paddle.Tensor) -> paddle.Tensor:
        """Normalized word scores; the identity unless a kind normalizes."""
        return scores

    def aggregate(self, scores: paddle.Tensor) -> paddle.Tensor:
        """Word scores → ``[batch, num_labels]``; the identity unless a kind combines several."""
        return scores
