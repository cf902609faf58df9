"""The one template encoder: texts → model input ids, for training and for the bundle runtime alike.

It knows nothing of Paddle or of any tokenizer class: it is given the template as *encoded parts*
(the ids of every fixed part, the names of the text slots) and a function that tokenizes a batch
of texts into ids. Training builds it from a PaddleNLP tokenizer (``Template``); the runtime
rebuilds it from a bundle manifest and a ``tokenizers`` WordPiece. With the template
``{'text': 'text_a'}主题是{'soft'}{'mask'}{'mask'}`` and the text ``球赛``::

    input_ids         [CLS] 球 赛 主 题 是 s1 [MASK] [MASK] [SEP]
    token_type_ids     0    0  0  0  0  0  0   0      0      0
    soft_token_ids     0    0  0  0  0  0  1   0      0      0
    masked_positions                            [7, 8]

Only text slots (and hard text marked ``truncate``) are truncated, as the template's
:class:`~fewshot.template.style.EncodingStyle` cuts them (``FEWSHOT``: the longest truncatable slot
loses tokens from its end first, ties going to the earliest slot); prompt text, soft tokens, masks
and special tokens never are. The style also decides the token type after a ``{'sep'}`` part and the
final ``[SEP]``'s token type and position. Parts' ``token_type``/``position`` set them from that
part on. Soft tokens are numbered ``1..S`` in ``soft_token_ids`` (parts sharing a ``soft_id``
repeat numbers); what ``input_ids`` holds at their positions is the spec's ids (initialising ids
in training, rows appended to the embedding table in a bundle). A template with ``[O-MASK]``
answer options gives each row an ``[n, n]`` attention mask; a ``prefix`` part gives no tokens.

With a ``LongText`` option, :meth:`TemplateEncoder.encode_texts` gives a text that does not fit
several rows instead of one truncated row: overlapping windows over ``text_a`` (see ``windows``).
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Type

import numpy as np

from ..errors import DataError, FewshotError, TemplateError
from .parse import TEXT_SLOTS
from .style import FEWSHOT, EncodingStyle
from .windows import LongText, window_starts

Tokenize = Callable[[Sequence[str]], List[List[int]]]
"""Token ids of each text of a batch, without special tokens."""

Row = Dict[str, List[int]]
ROW_KEYS = ("input_ids", "token_type_ids", "position_ids", "attention_mask", "soft_token_ids")
FIXED_KINDS = ("hard", "soft", "mask", "sep", "options")
SPEC_KEYS = ("cls_token_id", "sep_token_id", "pad_token_id", "max_seq_length", "parts")
PART_OPTIONS = ("token_type", "position", "omask_id")


class TemplateEncoder:
    """Assembles model inputs from encoded template parts and a batch tokenizer.

    ``parts`` are ``{"kind": "text", "slot": "text_a", "truncate": True}`` or
    ``{"kind": "hard"|"soft"|"mask"|"sep"|"options", "ids": [...]}`` or ``{"kind": "prefix", "length": 4}``
    (first; no tokens in the row, its positions skipped), in template order. Any part may also
    hold ``token_type`` (0/1, for it and the parts after it), ``position`` (its first position id,
    the parts after it continuing from there); a text part ``add_space`` (a space before the text
    when tokenizing); a hard part ``truncate: true`` (it may lose tokens like a text slot); a soft
    part ``soft_ids`` (its soft tokens' 1-based numbers; parts sharing soft tokens repeat them); an
    options part ``omask_id``: each ``[O-MASK]`` starts an answer option whose positions restart at the
    part's first position, and the row's ``attention_mask`` becomes ``[n, n]``: options do not see each
    other (as ``paddlenlp.prompt`` builds it).
    """

    def __init__(
        self,
        parts: Sequence[Mapping[str, Any]],
        cls_token_id: int,
        sep_token_id: int,
        pad_token_id: int,
        max_seq_length: int,
        tokenize: Tokenize,
        style: EncodingStyle = FEWSHOT,
    ):
        self.parts: List[Dict[str, Any]] = [dict(part) for part in parts]
        self.style = style
        self.cls_token_id = int(cls_token_id)
        self.sep_token_id = int(sep_token_id)
        self.pad_token_id = int(pad_token_id)
        self.max_seq_length = int(max_seq_length)
        self.tokenize = tokenize
        self.slots = [part["slot"] for part in self.parts if part["kind"] == "text"]
        self.needs_text_b = "text_b" in self.slots
        self.num_masks = sum(len(part["ids"]) for part in self.parts if part["kind"] == "mask")
        next_soft = 1
        for part in self.parts:
            if part["kind"] == "soft" and "soft_ids" not in part:
                part["soft_ids"] = list(range(next_soft, next_soft + len(part["ids"])))
            next_soft = max([next_soft - 1, *part.get("soft_ids", [])]) + 1
        self.num_soft_tokens = next_soft - 1
        self.variable = [i for i, part in enumerate(self.parts) if part["kind"] == "text" or part.get("truncate")]
        self.prefix_length = sum(part["length"] for part in self.parts if part["kind"] == "prefix")
        """Soft tokens of a ``prefix`` part: keys and values in every layer, not tokens of the row; they
        count toward ``max_seq_length`` (as in PaddleNLP, and so that positions stay below it)."""
        self.fixed_length = 2 + self.prefix_length + sum(
            len(part.get("ids", [])) for i, part in enumerate(self.parts) if i not in self.variable)
        self.square_mask = any("omask_id" in part for part in self.parts)
        """Whether rows carry an ``[n, n]`` attention mask (answer options) rather than ``[n]``."""
        self.spaced = {part["slot"] for part in self.parts if part["kind"] == "text" and part.get("add_space")}
        self.text_budget = self.max_seq_length - self.fixed_length
        if self.text_budget < len(self.slots):
            raise TemplateError(
                f"template: needs {self.fixed_length} tokens for prompt, masks and special tokens plus at least "
                f"{len(self.slots)} for text, but max_seq_length is {self.max_seq_length}"
            )

    @classmethod
    def from_spec(
        cls, spec: Mapping[str, Any], tokenize: Tokenize, where: str = "template", error: Type[FewshotError] = TemplateError
    ) -> "TemplateEncoder":
        """The encoder a :meth:`spec` (e.g. a bundle manifest's ``encoding``) describes; ``error`` names ``where``.

        Every part is checked: a known kind, a text slot name, ids that are non-negative integers.
        """
        if not isinstance(spec, Mapping) or any(key not in spec for key in SPEC_KEYS):
            raise error(f"{where}: the encoding must be an object with {', '.join(SPEC_KEYS)}")
        parts = spec["parts"]
        if not isinstance(parts, list) or not parts:
            raise error(f"{where}: the encoding has no parts")
        for i, part in enumerate(parts):
            problem = _part_problem(part)
            if problem:
                raise error(f"{where}: encoding part {i} {problem}: {part!r}")
        if not any(part["kind"] == "text" for part in parts):
            raise error(f"{where}: the encoding has no text slot")
        for key in SPEC_KEYS[:4]:
            if not _is_id(spec[key]):
                raise error(f"{where}: {key} must be a non-negative integer, got {spec[key]!r}")
        style = EncodingStyle.named(spec.get("style", FEWSHOT.name), where=where, error=error)
        try:
            return cls(parts, spec["cls_token_id"], spec["sep_token_id"], spec["pad_token_id"],
                       spec["max_seq_length"], tokenize, style=style)
        except TemplateError as exc:
            raise error(f"{where}: {exc}") from None

    def spec(self) -> Dict[str, Any]:
        """JSON-ready description that :meth:`from_spec` reads back (the tokenizer is described apart)."""
        return {
            "cls_token_id": self.cls_token_id,
            "sep_token_id": self.sep_token_id,
            "pad_token_id": self.pad_token_id,
            "max_seq_length": self.max_seq_length,
            "style": self.style.name,
            "parts": [dict(part) for part in self.parts],
        }

    def max_id(self) -> int:
        """The largest id the encoder writes itself (special tokens and fixed parts)."""
        fixed = [i for part in self.parts for i in part.get("ids", [])]
        return max([self.cls_token_id, self.sep_token_id, self.pad_token_id, *fixed])

    def encode(self, text_a: str, text_b: Optional[str] = None) -> Row:
        """One example's row: ``input_ids``, ``token_type_ids``, ``position_ids``, ``attention_mask``,
        ``soft_token_ids`` (0 = ordinary token) and ``masked_positions``."""
        return self.encode_batch([(text_a, text_b)])[0]

    def encode_batch(
        self, examples: Sequence[Tuple[str, Optional[str]]], return_errors: bool = False
    ) -> List[Any]:
        """Rows of ``(text_a, text_b)`` pairs, tokenized in one batch per slot.

        A pair that cannot fit ``max_seq_length`` raises ``DataError`` (``input 3: text does not
        fit …``), or with ``return_errors`` stands in the result as its ``DataError``.
        """
        ids = self._tokenize_slots(examples)
        rows: List[Any] = []
        for index in range(len(examples)):
            try:
                rows.append(self.assemble({slot: ids[slot][index] for slot in ids}))
            except DataError as exc:
                if not return_errors:
                    raise DataError(f"input {index}: {exc}") from None
                rows.append(exc)
        return rows

    def encode_texts(
        self, examples: Sequence[Tuple[str, Optional[str]]], long_text: Optional[LongText] = None,
        return_errors: bool = False,
    ) -> List[Any]:
        """The rows of each ``(text_a, text_b)`` pair: ``[row]``, or with ``long_text`` the rows of
        its windows when it does not fit (see :meth:`windows`). Errors as in :meth:`encode_batch`."""
        if long_text is None:
            return [row if isinstance(row, DataError) else [row]
                    for row in self.encode_batch(examples, return_errors=return_errors)]
        self.check_long_text()
        ids = self._tokenize_slots(examples)
        items: List[Any] = []
        for index in range(len(examples)):
            try:
                items.append(self.windows({slot: ids[slot][index] for slot in ids}, long_text))
            except DataError as exc:
                if not return_errors:
                    raise DataError(f"input {index}: {exc}") from None
                items.append(exc)
        return items

    def check_long_text(self) -> None:
        """Long texts are windowed over ``text_a``: the template must hold it once, truncatable."""
        parts = [part for part in self.parts if part["kind"] == "text" and part["slot"] == "text_a"]
        if len(parts) != 1 or not parts[0].get("truncate", True):
            raise TemplateError("long_text: the template must have exactly one {'text': 'text_a'} slot, "
                                "not marked 'truncate': False (its windows are what long_text classifies)")
        if any(part["kind"] != "text" and part.get("truncate") for part in self.parts):
            raise TemplateError("long_text: the template's prompt text must not be marked 'truncate': True "
                                "(windows are cut from text_a only)")

    def windows(self, slot_ids: Mapping[str, Sequence[int]], long_text: LongText) -> List[Row]:
        """One row when the text fits; else one row per window of ``text_a``'s tokens.

        The other slots (``text_b``) are kept in every window, first truncated to at most half the
        text budget when the pair does not fit; ``text_a``'s windows fill the rest.
        """
        a_ids = list(slot_ids["text_a"])
        others = {i: list(slot_ids[part["slot"]]) for i, part in enumerate(self.parts)
                  if part["kind"] == "text" and part["slot"] != "text_a"}
        if len(a_ids) + sum(map(len, others.values())) <= self.text_budget:
            return [self.assemble(slot_ids)]
        size = self.text_budget - min(sum(map(len, others.values())), self.text_budget // 2)
        self._fit(others, self.text_budget - size)
        fixed = {self.parts[i]["slot"]: ids for i, ids in others.items()}
        overlap = long_text.overlap_for(size)
        return [self.assemble({**fixed, "text_a": a_ids[start : start + size]})
                for start in window_starts(len(a_ids), size, overlap)]

    def _tokenize_slots(self, examples: Sequence[Tuple[str, Optional[str]]]) -> Dict[str, List[List[int]]]:
        """Token ids of every slot the template uses, one batch per slot."""
        ids = {"text_a": self._tokenize_slot("text_a", [a for a, _ in examples])}
        if self.needs_text_b:
            missing = next((i for i, (_, b) in enumerate(examples) if b is None), None)
            if missing is not None:
                raise TemplateError("template: slot 'text_b' is used but the example has no text_b")
            ids["text_b"] = self._tokenize_slot("text_b", [b for _, b in examples])
        return ids

    def _tokenize_slot(self, slot: str, texts: List[str]) -> List[List[int]]:
        """Token ids of one slot's texts (after a space when a part of the slot says ``add_space``)."""
        return self.tokenize([" " + text for text in texts] if slot in self.spaced else texts)

    def assemble(self, slot_ids: Mapping[str, Sequence[int]]) -> Row:
        """One row from the token ids of its text slots (truncated here, as the style says)."""
        pieces = {i: list(slot_ids[self.parts[i]["slot"]]) if self.parts[i]["kind"] == "text" else list(self.parts[i]["ids"])
                  for i in self.variable}
        self._fit(pieces, self.text_budget)
        input_ids = [self.cls_token_id]
        token_type_ids = [0]
        position_ids = [0]
        soft_token_ids = [0]
        masked_positions: List[int] = []
        omask_positions: List[int] = []
        token_type = 0
        position = 1
        for i, part in enumerate(self.parts):
            kind = part["kind"]
            if kind == "prefix":  # positions of the prefix's keys, as PaddleNLP numbers them
                position += part["length"]
                continue
            ids = pieces[i] if i in pieces else part["ids"]
            token_type = part.get("token_type", token_type)
            position = part.get("position", position)
            if kind == "mask":
                masked_positions.extend(range(len(input_ids), len(input_ids) + len(ids)))
            soft_token_ids.extend(part["soft_ids"] if kind == "soft" else [0] * len(ids))
            input_ids.extend(ids)
            token_type_ids.extend([token_type] * len(ids))
            if "omask_id" in part:
                starts = [k for k, token in enumerate(ids) if token == part["omask_id"]]
                omask_positions.extend(len(input_ids) - len(ids) + k for k in starts)
                bounds = list(zip([0, *starts], [*starts, len(ids)]))
                position_ids.extend(p for a, b in bounds for p in range(position, position + b - a))
                position += max(b - a for a, b in bounds)
            else:
                position_ids.extend(range(position, position + len(ids)))
                position += len(ids)
            if kind == "sep" and "token_type" not in part:
                token_type = self.style.token_type_after_sep(token_type)
        final_type, final_position = self.style.final_sep(token_type, position)
        input_ids.append(self.sep_token_id)
        token_type_ids.append(final_type)
        position_ids.append(final_position)
        soft_token_ids.append(0)
        return {
            "input_ids": input_ids,
            "token_type_ids": token_type_ids,
            "position_ids": position_ids,
            "attention_mask": option_attention_mask(input_ids, omask_positions, (self.cls_token_id, self.sep_token_id))
            if omask_positions else [1] * len(input_ids),
            "soft_token_ids": soft_token_ids,
            "masked_positions": masked_positions,
        }

    def _fit(self, pieces: Dict[int, List[int]], budget: int) -> None:
        """Shorten the parts ``pieces`` (index → ids) in place to ``budget`` tokens in all, as the style cuts."""
        order = list(pieces)
        truncatable = [self.parts[i].get("truncate", True) for i in order]
        try:
            lengths = self.style.fit_lengths([len(pieces[i]) for i in order], truncatable, budget)
        except DataError:
            raise DataError(
                f"text does not fit max_seq_length={self.max_seq_length} and the remaining text slots "
                "are marked 'truncate': False"
            ) from None
        for i, length in zip(order, lengths):
            del pieces[i][length:]

    def pad(self, rows: Sequence[Row]) -> Dict[str, np.ndarray]:
        """Stack rows into int64 arrays padded only to the batch's longest row (padding: pad id, 0s)."""
        return pad_batch(rows, self.pad_token_id)


def option_attention_mask(input_ids: Sequence[int], omask_positions: Sequence[int], ends: Sequence[int]) -> List[List[int]]:
    """The ``[n, n]`` 1/0 mask of a row with answer options: every token sees every other, except that
    the options (from the first ``[O-MASK]`` to the first ``[CLS]``/``[SEP]`` after the last) see
    only themselves. ``ends`` are the ids that close the options region."""
    n = len(input_ids)
    end = next((k for k in range(omask_positions[-1] + 1, n) if input_ids[k] in ends), n)
    mask = np.ones((n, n), dtype=np.int64)
    mask[omask_positions[0]:end, omask_positions[0]:end] = 0
    for a, b in zip(omask_positions, [*omask_positions[1:], end]):
        mask[a:b, a:b] = 1
    return mask.tolist()


def pad_batch(rows: Sequence[Row], pad_token_id: int = 0) -> Dict[str, np.ndarray]:
    """Stack encoded rows into int64 numpy arrays padded only to the batch's longest row (an
    ``[n, n]`` attention mask to ``[length, length]``, padding 0)."""
    length = max(len(row["input_ids"]) for row in rows)
    batch: Dict[str, np.ndarray] = {}
    for key in ROW_KEYS:
        fill = pad_token_id if key == "input_ids" else 0
        square = key == "attention_mask" and isinstance(rows[0][key][0], list)
        out = np.full((len(rows), length, length) if square else (len(rows), length), fill, dtype=np.int64)
        for r, row in enumerate(rows):
            values = np.asarray(row[key], dtype=np.int64)
            out[(r, *(slice(0, n) for n in values.shape))] = values
        batch[key] = out
    if rows[0]["masked_positions"]:
        batch["masked_positions"] = np.array([row["masked_positions"] for row in rows], dtype=np.int64)
    return batch


def _is_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _part_problem(part: Any) -> str:
    """What is wrong with one encoded part, or ``""``."""
    if not isinstance(part, Mapping):
        return "is not an object"
    for key in PART_OPTIONS:
        if key in part and not _is_id(part[key]):
            return f"has a {key!r} that is not a non-negative integer"
    if not isinstance(part.get("truncate", True), bool):
        return "has a 'truncate' that is not true/false"
    kind = part.get("kind")
    if kind == "prefix":
        length = part.get("length")
        return "" if _is_id(length) and length > 0 else "needs 'length', a positive integer"
    if kind == "text":
        if part.get("slot") not in TEXT_SLOTS:
            return f"has slot {part.get('slot')!r}, not one of {', '.join(TEXT_SLOTS)}"
        return "" if isinstance(part.get("add_space", False), bool) else "has an 'add_space' that is not true/false"
    if kind not in FIXED_KINDS:
        return f"has kind {kind!r}, not one of text, {', '.join(FIXED_KINDS)}"
    ids = part.get("ids")
    if not isinstance(ids, list) or not ids or not all(_is_id(i) for i in ids):
        return "needs 'ids', a non-empty list of non-negative integers"
    if kind == "soft" and "soft_ids" in part:
        soft_ids = part["soft_ids"]
        if not isinstance(soft_ids, list) or len(soft_ids) != len(ids) or not all(_is_id(i) and i > 0 for i in soft_ids):
            return "has 'soft_ids' that are not one positive integer per id"
    return ""
