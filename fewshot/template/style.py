"""Encoding styles: the few deliberate differences between fewshot's own encoding and PaddleNLP's.

A template encodes the same way in both styles except for these choices, which a style owns:

============================  ===========================  ==============================
choice                        ``FEWSHOT`` (our templates)   ``PADDLENLP`` (its checkpoints)
============================  ===========================  ==============================
token type after ``{'sep'}``  1                             unchanged (only ``token_type``)
final ``[SEP]``               current token type, next      token type 0, position 0
                              position
soft parts' encoders          one per encoder and size      one per encoder name (its first size)
truncation                    longest truncatable part      PaddleNLP's: parts shorter than
                              loses one token at a time     the average kept, the rest cut to
                              (earliest on ties), >= 1      ``budget // n`` each (may leave
                              token each                    tokens unused)
============================  ===========================  ==============================

With ``{'text': 'text_a'}{'sep'}{'text': 'text_b'}{'mask'}`` and texts ``球``, ``雨``::

    FEWSHOT     token_type_ids [0, 0, 0, 1, 1, 1]   position_ids [0, 1, 2, 3, 4, 5]
    PADDLENLP   token_type_ids [0, 0, 0, 0, 0, 0]   position_ids [0, 1, 2, 3, 4, 0]

A template's style is stored by name (``"fewshot"``, ``"paddlenlp"``) in its encoder spec, so a
bundle encodes as training did; a model imported from PaddleNLP uses ``PADDLENLP``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Type

from ..errors import DataError, FewshotError, TemplateError


class EncodingStyle(ABC):
    """How special tokens, token types after ``{'sep'}`` and truncation are encoded (subclass per style)."""

    name = ""
    registry: Dict[str, "EncodingStyle"] = {}

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        EncodingStyle.registry[cls.name] = cls()

    @classmethod
    def named(cls, name: str, where: str = "template", error: Type[FewshotError] = TemplateError) -> "EncodingStyle":
        """The style called ``name``: ``EncodingStyle.named("paddlenlp")`` → ``PADDLENLP``."""
        style = cls.registry.get(name) if isinstance(name, str) else None
        if style is None:
            raise error(f"{where}: encoding style must be one of {', '.join(cls.registry)}, got {name!r}")
        return style

    @abstractmethod
    def token_type_after_sep(self, token_type: int) -> int:
        """The token type of the parts after a ``{'sep'}`` that sets none itself."""

    @abstractmethod
    def final_sep(self, token_type: int, position: int) -> Tuple[int, int]:
        """``(token_type, position)`` of the closing ``[SEP]``, given the current ones."""

    @abstractmethod
    def fit_lengths(self, lengths: Sequence[int], truncatable: Sequence[bool], budget: int) -> List[int]:
        """New lengths of the parts so that they sum to at most ``budget``; raises ``DataError`` when the
        parts that may not be cut are too long already."""

    def soft_encoder_group(self, encoder: str, hidden_size: Optional[int],
                           earlier: Mapping[str, Optional[int]]) -> Tuple[str, Optional[int]]:
        """The ``(encoder, hidden_size)`` group whose one encoder a soft part's tokens go through, given the
        hidden size each encoder name had where it first appeared (``earlier``): parts naming the same
        encoder and size share one (``PADDLENLP``: the same encoder name shares its first one)."""
        if encoder == "none":
            return encoder, None
        return encoder, hidden_size

    def __repr__(self) -> str:
        return f"EncodingStyle({self.name!r})"


def _cannot_fit() -> DataError:
    return DataError("the parts that may be truncated cannot make room for the others")


class FewshotStyle(EncodingStyle):
    """fewshot's own templates: ``{'sep'}`` starts segment 1; the final ``[SEP]`` continues the row;
    the longest truncatable part is cut first, one token at a time, none below one token."""

    name = "fewshot"

    def token_type_after_sep(self, token_type: int) -> int:
        return 1

    def final_sep(self, token_type: int, position: int) -> Tuple[int, int]:
        return token_type, position

    def fit_lengths(self, lengths: Sequence[int], truncatable: Sequence[bool], budget: int) -> List[int]:
        """Longest-first in runs: while the longest truncatable part is longer than every other, it alone
        loses tokens, up to the difference at once; ties lose one token each, earliest first — the same
        result as removing one token at a time. ``[20, 3]``, budget 10 → ``[7, 3]``."""
        lengths = list(lengths)
        excess = sum(lengths) - budget
        while excess > 0:
            candidates = [i for i, n in enumerate(lengths) if truncatable[i] and n > 1]
            if not candidates:
                raise _cannot_fit()
            longest = max(candidates, key=lambda i: lengths[i])
            floor = max([lengths[i] for i in candidates if i != longest] + [1])
            step = min(excess, max(lengths[longest] - floor, 1))
            lengths[longest] -= step
            excess -= step
        return lengths


class PaddleNLPStyle(EncodingStyle):
    """``paddlenlp.prompt``'s ``MLMPromptTokenizer``: token types change only by ``token_type``; the
    closing ``[SEP]`` (like ``[CLS]``) has token type 0 and position 0; truncation shares the budget."""

    name = "paddlenlp"

    def token_type_after_sep(self, token_type: int) -> int:
        return token_type

    def final_sep(self, token_type: int, position: int) -> Tuple[int, int]:
        return 0, 0

    def soft_encoder_group(self, encoder: str, hidden_size: Optional[int],
                           earlier: Mapping[str, Optional[int]]) -> Tuple[str, Optional[int]]:
        return (encoder, earlier[encoder]) if encoder in earlier else super().soft_encoder_group(encoder, hidden_size, earlier)

    def fit_lengths(self, lengths: Sequence[int], truncatable: Sequence[bool], budget: int) -> List[int]:
        """Parts no longer than the average share of what is left are kept, repeatedly; the others get
        ``left // n`` tokens each. ``[20, 20]``, budget 11 → ``[5, 5]``; ``[20, 3]``, budget 10 → ``[7, 3]``."""
        lengths = list(lengths)
        if sum(lengths) <= budget:
            return lengths
        left = budget - sum(n for n, cut in zip(lengths, truncatable) if not cut)
        open_parts = [i for i, cut in enumerate(truncatable) if cut]
        if not open_parts or left < 0:
            raise _cannot_fit()
        shrinking = True
        while shrinking and open_parts:
            shrinking = False
            average = left // len(open_parts)
            for i in list(open_parts):
                if lengths[i] <= average:
                    open_parts.remove(i)
                    left -= lengths[i]
                    shrinking = True
        if open_parts:
            share = left // len(open_parts)
            for i in open_parts:
                lengths[i] = min(share, left)
                left -= lengths[i]
        return lengths


FEWSHOT = EncodingStyle.named("fewshot")
PADDLENLP = EncodingStyle.named("paddlenlp")
