"""Parsing PaddleNLP's template syntax into parts, without ``eval``; and writing parts back as text.

A template mixes text slots, hard text, soft tokens, ``[MASK]`` slots and separators::

    {'text': 'text_a'}这条新闻的主题是{'mask'}{'mask'}

parses to ``[Part('text', 'text_a'), Part('hard', '这条新闻的主题是'), Part('mask'), Part('mask')]``.
Each ``{...}`` part is read with ``ast.literal_eval``: only literals, never code.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, replace
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ..errors import TemplateError
from ..numbers import OptionError, check_number

KINDS = ("text", "hard", "soft", "mask", "sep", "options", "prefix")
COMMON_OPTIONS = {"token_type", "position", "add_space", "truncate"}
OPTIONS = {
    "text": COMMON_OPTIONS,
    "hard": COMMON_OPTIONS | {"length"},
    "soft": COMMON_OPTIONS | {"length", "encoder", "hidden_size", "soft_id"},
    "mask": COMMON_OPTIONS | {"length"},
    "sep": COMMON_OPTIONS,
    "options": COMMON_OPTIONS | {"add_omask", "add_prompt", "length"},
    "prefix": {"length", "encoder", "hidden_size"},
}
"""Options each part kind takes, as in ``paddlenlp.prompt`` (``length`` on hard text is accepted and
ignored, as PaddleNLP does)."""
CUTTABLE_KINDS = ("text", "hard")
"""Kinds that ``'truncate': True`` may shorten (a cut mask or soft token would change the model's inputs)."""
OPTION_TOKEN = "[OPT]"
"""Where ``add_prompt`` puts each answer option: ``'答案是[OPT]'``."""
ENCODERS = ("none", "lstm", "mlp")
MAX_TOKENS = 8192
"""The largest ``length`` or ``position`` a part may give (more than any ERNIE's positions)."""
MAX_HIDDEN_SIZE = 65536
"""The largest ``hidden_size`` of a soft or prefix encoder."""
TEXT_SLOTS = ("text_a", "text_b")


@dataclass(frozen=True)
class Part:
    """One piece of a template.

    ``kind`` is one of text/hard/soft/mask/sep; ``value`` is the slot name (text), the literal
    text (hard) or the initialising text of soft tokens (None for random initialisation);
    ``length`` is the number of soft tokens (at least the initialising text's) or mask slots.
    ``token_type`` and ``position`` (None: unchanged) set the token type and first position of
    this part and those after it; ``add_space`` prefixes a space before tokenizing; ``truncate``
    (None: the kind's default, true for text only) lets the part lose tokens to fit;
    ``soft_id`` names soft tokens that a later part with the same ``soft_id`` reuses.
    ``choices`` are an ``options`` part's answer options, each written as ``add_prompt`` (with
    ``[OPT]`` replaced by it) and, with ``add_omask``, behind an ``[O-MASK]`` token.
    """

    kind: str
    value: Optional[str] = None
    length: int = 1
    encoder: str = "none"
    hidden_size: Optional[int] = None
    truncate: Optional[bool] = None
    token_type: Optional[int] = None
    position: Optional[int] = None
    add_space: bool = False
    soft_id: Optional[int] = None
    choices: Optional[Tuple[str, ...]] = None
    add_omask: bool = False
    add_prompt: Optional[str] = None

    @property
    def cuttable(self) -> bool:
        """Whether the encoder may shorten this part: text unless ``'truncate': False``, hard text if
        ``'truncate': True``."""
        return self.truncate is True or (self.kind == "text" and self.truncate is None)


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
    kinds = [k for k in value if k in KINDS] or (["soft"] if "soft_id" in value else [])
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


def _integer(value: Dict[str, Any], name: str, where: str, low: int, high: int, default: Any = None) -> Any:
    """``value[name]`` when it is an integer in ``[low, high]`` (``default`` when absent), else a located error."""
    if name not in value:
        return default
    number = value[name]
    if isinstance(number, bool) or not isinstance(number, int):
        raise TemplateError(f"{where}: '{name}' must be an integer, got {number!r}")
    try:
        check_number(f"'{name}'", number, low=low, high=high)
    except OptionError as exc:
        raise TemplateError(f"{where}: {exc}") from None
    return number


def _common_options(value: Dict[str, Any], kind: str, where: str) -> Dict[str, Any]:
    """``token_type``, ``position``, ``add_space`` and ``truncate``, checked."""
    options: Dict[str, Any] = {}
    if "token_type" in value:
        if value["token_type"] not in (0, 1) or isinstance(value["token_type"], bool):
            raise TemplateError(f"{where}: 'token_type' must be 0 or 1, got {value['token_type']!r}")
        options["token_type"] = value["token_type"]
    if "position" in value:
        options["position"] = _integer(value, "position", where, 0, MAX_TOKENS)
    if "add_space" in value:
        if value["add_space"] not in (True, False, " "):
            raise TemplateError(f"{where}: 'add_space' must be True or False, got {value['add_space']!r}")
        options["add_space"] = bool(value["add_space"])
    if "truncate" in value:
        if not isinstance(value["truncate"], bool):
            raise TemplateError(f"{where}: 'truncate' must be True or False")
        if value["truncate"] and kind not in CUTTABLE_KINDS:
            raise TemplateError(f"{where}: only {' and '.join(CUTTABLE_KINDS)} parts can be truncated, not '{kind}'")
        options["truncate"] = value["truncate"]
    return options


def _build_part(kind: str, value: Dict[str, Any], chunk: str, position: int) -> Part:
    where = f"template: part {chunk!r} at character {position}"
    main = value.get(kind)
    length = _integer(value, "length", where, 1, MAX_TOKENS, default=1)
    options = _common_options(value, kind, where)
    if kind == "text":
        if not isinstance(main, str) or not main.strip() or main != main.strip():
            raise TemplateError(f"{where}: text slot must name an example field such as 'text_a', got {main!r}")
        return Part("text", main, **options)
    if kind == "hard":
        if not isinstance(main, str) or not main.strip():
            raise TemplateError(f"{where}: 'hard' needs non-empty text")
        return Part("hard", main, **options)
    if kind == "soft":
        if main is not None and (not isinstance(main, str) or not main.strip()):
            raise TemplateError(f"{where}: 'soft' takes initialising text or None")
        encoder = value.get("encoder") or "none"
        if encoder not in ENCODERS:
            raise TemplateError(f"{where}: encoder must be one of {', '.join(ENCODERS)}, got {encoder!r}")
        hidden = _integer(value, "hidden_size", where, 1, MAX_HIDDEN_SIZE, default=None)
        soft_id = value.get("soft_id")
        if soft_id is not None and (not isinstance(soft_id, int) or isinstance(soft_id, bool)):
            raise TemplateError(f"{where}: 'soft_id' must be an integer, got {soft_id!r}")
        return Part("soft", main, length=length, encoder=encoder, hidden_size=hidden, soft_id=soft_id, **options)
    if kind == "options":
        return _options_part(value, where, options)
    if kind == "prefix":
        if main is not None and (not isinstance(main, str) or not main.strip()):
            raise TemplateError(f"{where}: 'prefix' takes initialising text or None")
        if value.get("encoder", "mlp") != "mlp":
            raise TemplateError(f"{where}: a prefix is encoded by 'mlp' (its key/value projection), got {value['encoder']!r}")
        hidden = _integer(value, "hidden_size", where, 1, MAX_HIDDEN_SIZE, default=None)
        return Part("prefix", main, length=length, encoder="mlp", hidden_size=hidden)
    if main is not None:
        raise TemplateError(f"{where}: '{kind}' takes no value")
    if kind == "mask":
        return Part("mask", length=length, **options)
    return Part("sep", **options)


def _options_part(value: Dict[str, Any], where: str, options: Dict[str, Any]) -> Part:
    """``{'options': ['体育', '财经'], 'add_omask': True, 'add_prompt': '是[OPT]吗'}``, checked."""
    choices = value["options"]
    if isinstance(choices, str):
        raise TemplateError(f"{where}: options from an example field ({choices!r}) are not supported; "
                            "list them: {'options': ['体育', '财经']}")
    if not isinstance(choices, (list, tuple)) or not choices or not all(isinstance(c, str) and c.strip() for c in choices):
        raise TemplateError(f"{where}: 'options' must be a non-empty list of non-empty strings")
    add_omask = value.get("add_omask", False)
    if not isinstance(add_omask, bool):
        raise TemplateError(f"{where}: 'add_omask' must be True or False")
    prompt = value.get("add_prompt")
    if prompt is not None and (not isinstance(prompt, str) or OPTION_TOKEN not in prompt):
        raise TemplateError(f"{where}: 'add_prompt' must be text containing {OPTION_TOKEN}, got {prompt!r}")
    return Part("options", choices=tuple(choices), add_omask=add_omask, add_prompt=prompt, **options)


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
    parts = complete_short_form(parts)
    field_slots(parts)
    _check_prefix(parts)
    return parts


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


def _check_prefix(parts: Sequence[Part]) -> None:
    """A ``prefix`` part comes first (as in PaddleNLP), once, and not with ``soft`` parts."""
    kinds = [p.kind for p in parts]
    if "prefix" not in kinds:
        return
    if kinds.index("prefix") != 0 or kinds.count("prefix") > 1:
        raise TemplateError("template: a {'prefix'} part must be the template's first part, and only one "
                            "(the short form puts {'text': 'text_a'} first: write the text slot)")
    if "soft" in kinds:
        raise TemplateError("template: {'prefix'} and {'soft'} parts cannot be combined (as in PaddleNLP)")


def field_slots(parts: Sequence[Part]) -> Dict[str, str]:
    """The slot (``text_a``/``text_b``, the example's first and second text) each text field reads.

    ``text_a`` and ``text_b`` are themselves; other names take the free slots in template order:
    ``{'text': 'premise'}…{'text': 'hypothesis'}`` → ``{'premise': 'text_a', 'hypothesis': 'text_b'}``.
    TSV columns are read by position, JSON keys by these names (see :func:`named_fields`).
    """
    names = list(dict.fromkeys(p.value for p in parts if p.kind == "text"))
    free = [slot for slot in TEXT_SLOTS if slot not in names]
    others = [name for name in names if name not in TEXT_SLOTS]
    if len(others) > len(free):
        raise TemplateError(f"template: text fields {', '.join(names)}: an example holds at most two texts "
                            f"({', '.join(TEXT_SLOTS)})")
    return {**{name: name for name in names if name in TEXT_SLOTS}, **dict(zip(others, free))}


def named_fields(text: str) -> Dict[str, str]:
    """Slot → JSON key for the template's text fields other than ``text_a``/``text_b``:
    ``"{'text': 'sentence'}主题是{'mask'}"`` → ``{'text_a': 'sentence'}``."""
    return {slot: name for name, slot in field_slots(parse_template(text)).items() if name != slot}


def format_part(part: Part) -> str:
    """The template text of one part (inverse of parsing, up to spacing).

    ``Part("mask", length=2)`` → ``"{'mask': None, 'length': 2}"``; ``Part("hard", "主题")`` → ``"主题"``.
    """
    options = {name: getattr(part, name) for name in ("token_type", "position", "truncate", "soft_id")
               if getattr(part, name) is not None}
    if part.add_space:
        options["add_space"] = True
    if part.kind == "soft":
        if part.length > 1 or part.value is None:
            options["length"] = part.length
        if part.encoder != "none":
            options["encoder"] = part.encoder
        if part.hidden_size is not None:
            options["hidden_size"] = part.hidden_size
    elif part.kind == "prefix":
        options["length"] = part.length
        options.update({"hidden_size": part.hidden_size} if part.hidden_size is not None else {})
    elif part.kind == "mask" and part.length > 1:
        options["length"] = part.length
    elif part.kind == "options":
        options.update({"add_omask": True} if part.add_omask else {})
        options.update({"add_prompt": part.add_prompt} if part.add_prompt is not None else {})
        return repr({"options": list(part.choices), **options})
    if part.kind == "hard" and not options and "{" not in part.value and "}" not in part.value:
        return part.value
    if part.kind in ("mask", "sep") and not options:
        return f"{{'{part.kind}'}}"
    return repr({part.kind: part.value, **options})


def set_soft_encoder(text: str, encoder: str) -> str:
    """Give every soft part of ``text`` that names no encoder the encoder ``encoder``."""
    if encoder not in ENCODERS:
        raise TemplateError(f"template: encoder must be one of {', '.join(ENCODERS)}, got {encoder!r}")
    parts = parse_template(text)
    if encoder != "none" and not any(p.kind == "soft" for p in parts):
        raise TemplateError(f"template: {text!r} has no {{'soft'}} part for the soft encoder {encoder!r}")
    parts = [replace(p, encoder=encoder) if p.kind == "soft" and p.encoder == "none" else p for p in parts]
    return "".join(format_part(p) for p in parts)
