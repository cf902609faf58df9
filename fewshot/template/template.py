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
from .parse import OPTION_TOKEN, Part, field_slots, format_part, parse_template
from .style import FEWSHOT, EncodingStyle


@dataclass(frozen=True)
class SoftToken:
    """One soft token: its encoder group and the vocabulary id used to initialise it (None: random)."""

    group: Tuple[str, Optional[int]]
    init_token_id: Optional[int]


@dataclass(frozen=True)
class Prefix:
    """A ``prefix`` part (prefix tuning): its soft tokens' initialising ids (None: random) and the
    hidden size of the MLP that turns them into every layer's keys and values (None: the PLM's)."""

    init_token_ids: Tuple[Optional[int], ...]
    hidden_size: Optional[int] = None


OMASK_TOKEN = "[O-MASK]"
"""The token in front of each answer option of an ``options`` part with ``add_omask``."""


def token_ids(tokenizer: Any, text: str) -> List[int]:
    """The training tokenizer's ids of ``text`` (no special tokens)."""
    return tokenizer.convert_tokens_to_ids(tokenizer.tokenize(text))


class Template:
    """A template string, its parts and soft tokens, and the :class:`TemplateEncoder` built from them.

    ``style`` (:class:`~fewshot.template.style.EncodingStyle`, default ``FEWSHOT``) decides the few
    deliberate differences from PaddleNLP's encoding; a model imported from PaddleNLP uses ``PADDLENLP``.
    """

    def __init__(self, text: str, tokenizer: Any, max_seq_length: int = 128, style: EncodingStyle = FEWSHOT):
        self.text = text
        self.style = style
        self.parts: List[Part] = parse_template(text)
        declared = 2 + sum(part.length for part in self.parts if part.kind in ("soft", "mask"))
        if declared > max_seq_length:  # before any soft token is made: 'length': 10**9 would never finish
            raise TemplateError(f"template: its soft tokens, masks and special tokens need {declared} positions, "
                                f"but max_seq_length is {max_seq_length}")
        self.slots = field_slots(self.parts)
        self.soft_tokens: List[SoftToken] = []
        self.prefix: Optional[Prefix] = None
        self._shared_soft: Dict[int, Dict[str, Any]] = {}
        self._encoder_sizes: Dict[str, Optional[int]] = {}
        encoded = [self._encode_part(part, tokenizer) for part in self.parts]
        self.encoder = TemplateEncoder(
            encoded, tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id, max_seq_length,
            lambda texts: [token_ids(tokenizer, t) for t in texts], style=style,
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
        options: Dict[str, Any] = {name: getattr(part, name) for name in ("token_type", "position")
                                   if getattr(part, name) is not None}
        if part.kind == "text":
            return {"kind": "text", "slot": self.slots[part.value], "truncate": part.cuttable, **options,
                    **({"add_space": True} if part.add_space else {})}
        if part.cuttable:
            options["truncate"] = True
        space = " " if part.add_space else ""
        if part.kind == "hard":
            ids = token_ids(tokenizer, space + part.value)
            if not ids:
                raise TemplateError(f"template: hard text {part.value!r} tokenizes to nothing")
            return {"kind": "hard", "ids": ids, **options}
        if part.kind == "mask":
            return {"kind": "mask", "ids": [tokenizer.mask_token_id] * part.length, **options}
        if part.kind == "sep":
            return {"kind": "sep", "ids": [tokenizer.sep_token_id], **options}
        if part.kind == "options":
            return {"kind": "options", **self._option_ids(part, tokenizer, space), **options}
        if part.kind == "prefix":
            init = list(token_ids(tokenizer, part.value)) if part.value is not None else []
            self.prefix = Prefix(tuple(init + [None] * (part.length - len(init))), part.hidden_size)
            return {"kind": "prefix", "length": len(self.prefix.init_token_ids)}
        return {"kind": "soft", **self._soft_ids(part, tokenizer, space), **options}

    def _soft_ids(self, part: Part, tokenizer: Any, space: str) -> Dict[str, Any]:
        """A soft part's ``ids`` (initialising ids) and ``soft_ids`` (1-based soft token numbers).

        New soft tokens are the initialising text's tokens, then random ones up to ``length``; a part
        whose ``soft_id`` an earlier part defined reuses that part's soft tokens (as PaddleNLP does,
        ignoring its own ``length``).
        """
        if part.soft_id is not None and part.soft_id in self._shared_soft:
            if part.value is not None:
                raise TemplateError(f"template: soft part {format_part(part)} reuses soft_id {part.soft_id} "
                                    "defined earlier, so it cannot give initialising text")
            return dict(self._shared_soft[part.soft_id])
        group = self.style.soft_encoder_group(part.encoder, part.hidden_size, self._encoder_sizes)
        self._encoder_sizes.setdefault(part.encoder, group[1])
        init_ids: List[Optional[int]] = []
        if part.value is not None:
            init_ids = list(token_ids(tokenizer, space + part.value))
            if not init_ids:
                raise TemplateError(f"template: soft part {part.value!r} tokenizes to nothing")
        init_ids += [None] * (part.length - len(init_ids))
        first = len(self.soft_tokens) + 1
        self.soft_tokens.extend(SoftToken(group, init) for init in init_ids)
        encoded = {"ids": [tid if tid is not None else tokenizer.unk_token_id for tid in init_ids],
                   "soft_ids": list(range(first, first + len(init_ids)))}
        if part.soft_id is not None:
            self._shared_soft[part.soft_id] = encoded
        return dict(encoded)

    @staticmethod
    def _option_ids(part: Part, tokenizer: Any, space: str) -> Dict[str, Any]:
        """An options part's ``ids``: each choice (written as ``add_prompt``) tokenized, behind the
        ``[O-MASK]`` id (``omask_id``) with ``add_omask``."""
        omask = tokenizer.convert_tokens_to_ids(OMASK_TOKEN) if part.add_omask else None
        if omask is not None and (omask == tokenizer.unk_token_id or OMASK_TOKEN not in tokenizer.get_vocab()):
            raise TemplateError(f"template: {format_part(part)} needs the token {OMASK_TOKEN} in the tokenizer's "
                                "vocabulary (UTC models have it)")
        ids: List[int] = []
        for choice in part.choices:
            text = part.add_prompt.replace(OPTION_TOKEN, choice) if part.add_prompt else choice
            ids += ([omask] if omask is not None else []) + token_ids(tokenizer, space + text if not ids else text)
        return {"ids": ids, **({"omask_id": omask} if omask is not None else {})}

    def describe(self, soft_token_start: Optional[int] = None) -> Dict[str, Any]:
        """The encoder's spec: what a bundle manifest stores so the runtime can rebuild the encoder.

        ``soft_token_start`` renumbers the soft tokens' ids to ``start, start+1, …`` — the rows an
        export appends to the word embedding table for them.
        """
        spec = self.encoder.spec()
        if soft_token_start is not None:
            for part in spec["parts"]:
                if part["kind"] == "soft":
                    part["ids"] = [soft_token_start + soft_id - 1 for soft_id in part["soft_ids"]]
        return spec

    def encode(self, text_a: str, text_b: Optional[str] = None) -> Row:
        """One example's model inputs (see :class:`TemplateEncoder`)."""
        return self.encoder.encode(text_a, text_b)

    def encode_batch(self, examples: Sequence[Tuple[str, Optional[str]]]) -> List[Row]:
        """Model inputs of ``(text_a, text_b)`` pairs."""
        return self.encoder.encode_batch(examples)
