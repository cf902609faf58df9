"""A parsed template bound to a training tokenizer: the parts' ids, the soft tokens, the encoder.

>>> template = Template("{'text': 'text_a'}主题是{'mask'}", tokenizer, max_seq_length=32)
>>> template.encode("球赛")["masked_positions"]
[6]
>>> template.describe()["parts"][1]
{'kind': 'hard', 'ids': [51, 52, 53]}

Any tokenizer with ``tokenize``, ``convert_tokens_to_ids`` and the ``cls/sep/pad/mask/unk`` token
ids works (PaddleNLP's, for one); this module imports neither Paddle nor PaddleNLP.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ..errors import TemplateError
from .encoder import Row, TemplateEncoder
from .parse import Part, parse_template


@dataclass(frozen=True)
class SoftToken:
    """One soft token: its encoder group and the vocabulary id used to initialise it (None: random)."""

    group: Tuple[str, Optional[int]]
    init_token_id: Optional[int]


def token_ids(tokenizer: Any, text: str) -> List[int]:
    """The training tokenizer's ids of ``text`` (no special tokens)."""
    return tokenizer.convert_tokens_to_ids(tokenizer.tokenize(text))


class Template:
    """A template string, its parts and soft tokens, and the :class:`TemplateEncoder` built from them."""

    def __init__(self, text: str, tokenizer: Any, max_seq_length: int = 128):
        self.text = text
        self.parts: List[Part] = parse_template(text)
        declared = 2 + sum(part.length for part in self.parts if part.kind in ("soft", "mask"))
        if declared > max_seq_length:  # before any soft token is made: 'length': 10**9 would never finish
            raise TemplateError(f"template: its soft tokens, masks and special tokens need {declared} positions, "
                                f"but max_seq_length is {max_seq_length}")
        self.soft_tokens: List[SoftToken] = []
        encoded = [self._encode_part(part, tokenizer) for part in self.parts]
        self.encoder = TemplateEncoder(
            encoded, tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id, max_seq_length,
            lambda texts: [token_ids(tokenizer, t) for t in texts],
        )

    @property
    def max_seq_length(self) -> int:
        return self.encoder.max_seq_length

    @property
    def num_masks(self) -> int:
        return self.encoder.num_masks

    @property
    def num_soft_tokens(self) -> int:
        return len(self.soft_tokens)

    @property
    def needs_text_b(self) -> bool:
        return self.encoder.needs_text_b

    def _encode_part(self, part: Part, tokenizer: Any) -> Dict[str, Any]:
        """The encoder's description of one part; soft parts also register their soft tokens."""
        if part.kind == "text":
            return {"kind": "text", "slot": part.value, "truncate": part.truncate}
        if part.kind == "hard":
            ids = token_ids(tokenizer, part.value)
            if not ids:
                raise TemplateError(f"template: hard text {part.value!r} tokenizes to nothing")
            return {"kind": "hard", "ids": ids}
        if part.kind == "mask":
            return {"kind": "mask", "ids": [tokenizer.mask_token_id] * part.length}
        if part.kind == "sep":
            return {"kind": "sep", "ids": [tokenizer.sep_token_id]}
        group = (part.encoder, part.hidden_size if part.encoder != "none" else None)
        init_ids: List[Optional[int]] = list(token_ids(tokenizer, part.value)) if part.value is not None else [None] * part.length
        if not init_ids:
            raise TemplateError(f"template: soft part {part.value!r} tokenizes to nothing")
        self.soft_tokens.extend(SoftToken(group, init) for init in init_ids)
        return {"kind": "soft", "ids": [tid if tid is not None else tokenizer.unk_token_id for tid in init_ids]}

    def describe(self, soft_token_start: Optional[int] = None) -> Dict[str, Any]:
        """The encoder's spec: what a bundle manifest stores so the runtime can rebuild the encoder.

        ``soft_token_start`` renumbers the soft tokens' ids to ``start, start+1, …`` — the rows an
        export appends to the word embedding table for them.
        """
        spec = self.encoder.spec()
        if soft_token_start is not None:
            next_id = soft_token_start
            for part in spec["parts"]:
                if part["kind"] == "soft":
                    part["ids"] = list(range(next_id, next_id + len(part["ids"])))
                    next_id += len(part["ids"])
        return spec

    def encode(self, text_a: str, text_b: Optional[str] = None) -> Row:
        """One example's model inputs (see :class:`TemplateEncoder`)."""
        return self.encoder.encode(text_a, text_b)

    def encode_batch(self, examples: Sequence[Tuple[str, Optional[str]]]) -> List[Row]:
        """Model inputs of ``(text_a, text_b)`` pairs."""
        return self.encoder.encode_batch(examples)
