"""Parsing PaddleNLP's template syntax into parts, without ``eval``; and writing parts back as text.

A template mixes text slots, hard text, soft tokens, ``[MASK]`` slots and separators::

    {'text': 'text_a'}这条新闻的主题是{'mask'}{'mask'}

parses to ``[Part('text', 'text_a'), Part('hard', '这条新闻的主题是'), Part('mask'), Part('mask')]``.
Each ``{...}`` part is read with ``ast.literal_eval``: only literals, never code.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, replace
from typing import Any, Dict, List, Optional

from ..errors import TemplateError

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
    except ValueError:
        raise TemplateError(
            f"template: cannot parse part {chunk!r} at character {position}: only literals (strings, numbers, "
            "True/False/None, and sets or dicts of them) are allowed here, never code"
        ) from None
    except (SyntaxError, TypeError, MemoryError, RecursionError) as exc:
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

    ``"{'text': 'text_a'}主题是{'mask'}"`` → ``[Part('text', 'text_a'), Part('hard', '主题是'), Part('mask')]``;
    the short form ``"主题是"`` gives the same parts (see :func:`complete_short_form`).
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
    return complete_short_form(parts)


def complete_short_form(parts: List[Part]) -> List[Part]:
    """PaddleNLP's short form (``AutoTemplate.create_from``): a template without a text slot reads
    ``text_a`` first, and one with neither a text slot nor a mask ends with one ``[MASK]``.

    ``这条新闻标题的主题是`` → ``{'text': 'text_a'}这条新闻标题的主题是{'mask'}``.
    """
    if any(p.kind == "text" for p in parts):
        return parts
    parts = [Part("text", "text_a"), *parts]
    if not any(p.kind == "mask" for p in parts):
        parts.append(Part("mask"))
    return parts


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
