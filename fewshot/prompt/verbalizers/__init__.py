"""Verbalizers: from the hidden states at the ``[MASK]`` slots to one score per label.

One class per kind, each registered in :data:`VERBALIZERS` by name:

- ``"manual"`` (:class:`ManualVerbalizer`): fewshot's own; label words read at consecutive slots;
- ``"soft"`` (:class:`SoftVerbalizer`): a trainable per-slot head initialised from the label words;
- ``"paddlenlp"`` (:class:`PaddleNLPManualVerbalizer`): PaddleNLP's ``ManualVerbalizer`` with its
  token / word / mask aggregation options and the label-word log-softmax;
- ``"maskedlm"`` (:class:`MaskedLMVerbalizer`): PaddleNLP's ``MaskedLMVerbalizer``;
- ``"efl"`` (:class:`EFLHead`): a linear head on the ``[CLS]`` state, no label words (EFL).

A new kind is one subclass of :class:`Verbalizer` overriding ``project`` / ``normalize`` /
``aggregate``, decorated with :func:`register`.
"""

from .base import VERBALIZERS, LMHeadTransform, Verbalizer, register, tokenize_label_words
from .manual import ManualVerbalizer  # noqa: I001 (registration order: the default kind first)
from .soft import SoftVerbalizer
from .aggregating import MaskedLMVerbalizer, PaddleNLPManualVerbalizer
from .efl import EFLHead
from .spec import VerbalizerArg, VerbalizerSpec, verbalizer_option

__all__ = [
    "VERBALIZERS", "EFLHead", "LMHeadTransform", "ManualVerbalizer", "MaskedLMVerbalizer", "PaddleNLPManualVerbalizer",
    "SoftVerbalizer", "Verbalizer", "VerbalizerArg", "VerbalizerSpec", "register", "tokenize_label_words",
    "verbalizer_option",
]
