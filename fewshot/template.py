"""Prompt templates: parse PaddleNLP's template syntax (without ``eval``) and encode examples.

A template mixes text slots, hard text, soft tokens, ``[MASK]`` slots and separators::

    {'text': 'text_a'}这条新闻的主题是{'mask'}{'mask'}

encodes the example ``text_a="球赛"`` (character vocabulary) as::

    tokens          [CLS] 球 赛 这 条 新 闻 的 主 题 是 [MASK] [MASK] [SEP]
    masked_positions                                     [11, 12]
    soft_token_ids  all 0 (no soft tokens)

Soft tokens get ids ``1..S`` in ``soft_token_ids``; the model replaces their word embeddings
by rows of a trainable table (see ``encoders.SoftPrompt``).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, replace
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .errors import TemplateError

KINDS = ("text", "hard", "soft", "mask", "sep")
OPTIONS = {
    "text": {"truncate"},
    "hard": set(),
    "soft": {"length", "encoder", "hidden_size"},
    "mask": {"length"},
    "sep": set(),
}
ENCODERS = ("none", "lstm", "mlp")
TEXT_SLOTS = ("text_a", "text_b")


@dataclass(frozen=True)
class Part:
    """One piece of a template.

    ``kind`` is one of text/hard/soft/mask/sep; ``value`` is the slot name (text), the literal
    text (hard) or the initialising text of soft tokens (None for random initialisation);
    ``length`` is the number of soft tokens or mask slots.
    """

    kind: str
    value: Optional[str] = None
    length: int = 1
    encoder: str = "none"
    hidden_size: Optional[int] = None
    truncate: bool = True


def _find_closing_brace(text: str, start: int) -> int:
    """Index of the ``}`` closing the ``{`` at ``start``, skipping quoted strings."""
    quote = None
    i = start + 1
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "{":
            raise TemplateError(f"template: nested '{{' at character {i} inside part starting at {start}: {text[start:i + 1]!r}")
        elif ch == "}":
            return i
        i += 1
    raise TemplateError(f"template: part starting at character {start} is never closed: {text[start:]!r}")


def _part_from_literal(chunk: str, position: int) -> Part:
    """Turn one ``{...}`` chunk into a Part, validating kind and options."""
    try:
        value = ast.literal_eval(chunk)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as exc:
        raise TemplateError(f"template: cannot parse part {chunk!r} at character {position}: {exc}") from None
    if isinstance(value, set):
        if not all(isinstance(k, str) for k in value):
            raise TemplateError(f"template: part {chunk!r} at character {position} must name a part kind")
        value = {k: None for k in value}
    if not isinstance(value, dict):
        raise TemplateError(f"template: part {chunk!r} at character {position} is not a {{key: value}} part")
    kinds = [k for k in value if k in KINDS]
    if len(kinds) != 1:
        raise TemplateError(
            f"template: part {chunk!r} at character {position} must have exactly one of {', '.join(KINDS)}"
        )
    kind = kinds[0]
    unknown = set(value) - {kind} - OPTIONS[kind]
    if unknown:
        allowed = ", ".join(sorted(OPTIONS[kind])) or "none"
        raise TemplateError(
            f"template: part {chunk!r} at character {position} has unknown option(s) "
            f"{', '.join(sorted(map(str, unknown)))} for '{kind}' (allowed: {allowed})"
        )
    return _build_part(kind, value, chunk, position)


def _build_part(kind: str, value: Dict[str, Any], chunk: str, position: int) -> Part:
    where = f"template: part {chunk!r} at character {position}"
    main = value[kind]
    length = value.get("length", 1)
    if not isinstance(length, int) or isinstance(length, bool) or length < 1:
        raise TemplateError(f"{where}: 'length' must be a positive integer, got {length!r}")
    if kind == "text":
        if main not in TEXT_SLOTS:
            raise TemplateError(f"{where}: text slot must be one of {', '.join(TEXT_SLOTS)}, got {main!r}")
        truncate = value.get("truncate", True)
        if not isinstance(truncate, bool):
            raise TemplateError(f"{where}: 'truncate' must be True or False")
        return Part("text", main, truncate=truncate)
    if kind == "hard":
        if not isinstance(main, str) or not main.strip():
            raise TemplateError(f"{where}: 'hard' needs non-empty text")
        return Part("hard", main)
    if kind == "soft":
        if main is not None and (not isinstance(main, str) or not main.strip()):
            raise TemplateError(f"{where}: 'soft' takes initialising text or None")
        if main is not None and "length" in value:
            raise TemplateError(f"{where}: give either initialising text or 'length', not both")
        encoder = value.get("encoder") or "none"
        if encoder not in ENCODERS:
            raise TemplateError(f"{where}: encoder must be one of {', '.join(ENCODERS)}, got {encoder!r}")
        hidden = value.get("hidden_size")
        if hidden is not None and (not isinstance(hidden, int) or hidden < 1):
            raise TemplateError(f"{where}: 'hidden_size' must be a positive integer, got {hidden!r}")
        return Part("soft", main, length=length, encoder=encoder, hidden_size=hidden)
    if kind == "mask":
        if main is not None:
            raise TemplateError(f"{where}: 'mask' takes no value")
        return Part("mask", length=length)
    if main is not None:
        raise TemplateError(f"{where}: 'sep' takes no value")
    return Part("sep")


def parse_template(text: str) -> List[Part]:
    """Parse a template string into parts; text outside ``{...}`` is hard text.

    ``"{'text': 'text_a'}主题是{'mask'}"`` → ``[Part('text', 'text_a'), Part('hard', '主题是'), Part('mask')]``.
    """
    if not isinstance(text, str) or not text.strip():
        raise TemplateError("template: empty template")
    parts: List[Part] = []
    i = 0
    hard_start = 0
    while i < len(text):
        if text[i] == "}":
            raise TemplateError(f"template: unmatched '}}' at character {i}: {text[max(0, i - 20):i + 1]!r}")
        if text[i] != "{":
            i += 1
            continue
        if text[hard_start:i].strip():
            parts.append(Part("hard", text[hard_start:i]))
        end = _find_closing_brace(text, i)
        parts.append(_part_from_literal(text[i:end + 1], i))
        i = hard_start = end + 1
    if text[hard_start:].strip():
        parts.append(Part("hard", text[hard_start:]))
    if not any(p.kind == "text" for p in parts):
        raise TemplateError(f"template: {text!r} has no text slot such as {{'text': 'text_a'}}")
    return parts


@dataclass(frozen=True)
class SoftToken:
    """One soft token: its encoder group and the vocabulary id used to initialise it (None: random)."""

    group: Tuple[str, Optional[int]]
    init_token_id: Optional[int]


class Template:
    """A parsed template bound to a tokenizer; encodes examples into model inputs.

    Only text slots are truncated (longest first); prompt tokens, soft tokens and masks never are.
    """

    def __init__(self, text: str, tokenizer: Any, max_seq_length: int = 128):
        self.text = text
        self.parts = parse_template(text)
        self.tokenizer = tokenizer
        self.max_seq_length = int(max_seq_length)
        self.num_masks = sum(p.length for p in self.parts if p.kind == "mask")
        self.soft_tokens: List[SoftToken] = []
        self._fixed_ids: List[Optional[List[int]]] = []
        for part in self.parts:
            self._fixed_ids.append(self._prepare(part))
        fixed = 2 + sum(len(ids) for ids in self._fixed_ids if ids is not None)
        n_text = sum(1 for p in self.parts if p.kind == "text")
        if fixed + n_text > self.max_seq_length:
            raise TemplateError(
                f"template: {text!r} needs {fixed} tokens for prompt, masks and special tokens plus at least "
                f"{n_text} for text, but max_seq_length is {self.max_seq_length}"
            )

    def _tokenize(self, text: str) -> List[int]:
        return self.tokenizer.convert_tokens_to_ids(self.tokenizer.tokenize(text))

    def _prepare(self, part: Part) -> Optional[List[int]]:
        """Token ids of a part that does not depend on the example (None for text slots)."""
        tok = self.tokenizer
        if part.kind == "text":
            return None
        if part.kind == "hard":
            return self._tokenize(part.value)
        if part.kind == "mask":
            return [tok.mask_token_id] * part.length
        if part.kind == "sep":
            return [tok.sep_token_id]
        group = (part.encoder, part.hidden_size if part.encoder != "none" else None)
        init_ids = self._tokenize(part.value) if part.value is not None else [None] * part.length
        if not init_ids:
            raise TemplateError(f"template: soft part {part.value!r} tokenizes to nothing")
        for init in init_ids:
            self.soft_tokens.append(SoftToken(group, init))
        return [tid if tid is not None else tok.unk_token_id for tid in init_ids]

    @property
    def num_soft_tokens(self) -> int:
        return len(self.soft_tokens)

    def _truncate(self, texts: Dict[int, List[int]], budget: int) -> None:
        """Shorten truncatable text slots, longest first, until they fit ``budget`` tokens."""
        while sum(len(ids) for ids in texts.values()) > budget:
            candidates = [i for i in texts if self.parts[i].truncate and len(texts[i]) > 1]
            if not candidates:
                raise TemplateError(
                    f"template: text does not fit max_seq_length={self.max_seq_length} and the remaining "
                    "text slots are marked 'truncate': False"
                )
            longest = max(candidates, key=lambda i: len(texts[i]))
            texts[longest].pop()

    def encode(self, text_a: str, text_b: Optional[str] = None) -> Dict[str, List[int]]:
        """Encode one example into input_ids, token_type_ids, position_ids, attention_mask,
        soft_token_ids (0 = ordinary token) and masked_positions."""
        texts: Dict[int, List[int]] = {}
        for i, part in enumerate(self.parts):
            if part.kind == "text":
                value = text_a if part.value == "text_a" else text_b
                if value is None:
                    raise TemplateError(f"template: slot {part.value!r} is used but the example has no {part.value}")
                texts[i] = self._tokenize(value)
        fixed = 2 + sum(len(ids) for ids in self._fixed_ids if ids is not None)
        self._truncate(texts, self.max_seq_length - fixed)

        tok = self.tokenizer
        input_ids = [tok.cls_token_id]
        token_type_ids = [0]
        soft_token_ids = [0]
        masked_positions: List[int] = []
        token_type = 0
        next_soft = 1
        for i, part in enumerate(self.parts):
            ids = texts[i] if part.kind == "text" else self._fixed_ids[i]
            if part.kind == "mask":
                masked_positions.extend(range(len(input_ids), len(input_ids) + len(ids)))
            if part.kind == "soft":
                soft_token_ids.extend(range(next_soft, next_soft + len(ids)))
                next_soft += len(ids)
            else:
                soft_token_ids.extend([0] * len(ids))
            input_ids.extend(ids)
            token_type_ids.extend([token_type] * len(ids))
            if part.kind == "sep":
                token_type = 1
        input_ids.append(tok.sep_token_id)
        token_type_ids.append(token_type)
        soft_token_ids.append(0)
        n = len(input_ids)
        return {
            "input_ids": input_ids,
            "token_type_ids": token_type_ids,
            "position_ids": list(range(n)),
            "attention_mask": [1] * n,
            "soft_token_ids": soft_token_ids,
            "masked_positions": masked_positions,
        }


def pad_batch(encoded: Sequence[Dict[str, List[int]]], pad_token_id: int = 0) -> Dict[str, "Any"]:
    """Stack encoded examples into int64 numpy arrays padded only to the batch's longest row."""
    import numpy as np

    length = max(len(e["input_ids"]) for e in encoded)
    pads = {"input_ids": pad_token_id}
    batch: Dict[str, Any] = {}
    for key in ("input_ids", "token_type_ids", "position_ids", "attention_mask", "soft_token_ids"):
        fill = pads.get(key, 0)
        batch[key] = np.array([e[key] + [fill] * (length - len(e[key])) for e in encoded], dtype="int64")
    if encoded[0]["masked_positions"]:
        batch["masked_positions"] = np.array([e["masked_positions"] for e in encoded], dtype="int64")
    return batch


def format_part(part: Part) -> str:
    """The template text of one part (inverse of parsing, up to spacing)."""
    if part.kind == "hard":
        return part.value
    if part.kind == "text":
        return repr({"text": part.value} if part.truncate else {"text": part.value, "truncate": False})
    if part.kind == "sep":
        return "{'sep'}"
    if part.kind == "mask":
        return "{'mask'}" if part.length == 1 else repr({"mask": None, "length": part.length})
    spec = {"soft": part.value}
    if part.value is None:
        spec["length"] = part.length
    if part.encoder != "none":
        spec["encoder"] = part.encoder
    if part.hidden_size is not None:
        spec["hidden_size"] = part.hidden_size
    return repr(spec)


def set_soft_encoder(text: str, encoder: str) -> str:
    """Give every soft part of ``text`` that names no encoder the encoder ``encoder``."""
    if encoder not in ENCODERS:
        raise TemplateError(f"template: encoder must be one of {', '.join(ENCODERS)}, got {encoder!r}")
    parts = parse_template(text)
    if encoder != "none" and not any(p.kind == "soft" for p in parts):
        raise TemplateError(f"template: {text!r} has no {{'soft'}} part for the soft encoder {encoder!r}")
    parts = [replace(p, encoder=encoder) if p.kind == "soft" and p.encoder == "none" else p for p in parts]
    return "".join(format_part(p) for p in parts)
