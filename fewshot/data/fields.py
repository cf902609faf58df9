"""Cleaning and checking the string fields of rows and label files, and JSON field mappings.

One rule for every text, label and word fewshot reads: a string (numbers too where JSON allows
them), stripped, not empty, valid Unicode, with something to read (not only control or zero-width
characters); errors say where and what (``train.txt line 3: empty text``).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any, Callable, Dict, Mapping, Sequence, Type

from ..errors import DataError, FewshotError
from .lines import json_type

FIELD_NAMES = ("text_a", "text_b", "label")
DEFAULT_JSON_FIELDS: Mapping[str, str] = {"text_a": "sentence", "label": "label_desc"}
"""FewCLUE TNEWS layout: ``{"label": "107", "label_desc": "news_car", "sentence": "…"}``."""

_PUNCTUATION_RUN = re.compile(r"[^\w\u4e00-\u9fff]+")
_SURROGATE = re.compile("[\ud800-\udfff]")
_INVISIBLE = {"Cc", "Cf", "Zs", "Zl", "Zp"}
"""Unicode categories with nothing to read: control and format (zero-width) characters, spaces."""


def clean_string(where: str, name: str, value: Any, error: Type[FewshotError] = DataError, numbers: bool = False) -> str:
    """``value`` stripped; ``error`` when it is not a string (or, with ``numbers``, a number) or is empty.

    ``("row 3", "text", " 球赛 ")`` → ``"球赛"``; ``("row 3", "text", "  ")`` → ``DataError("row 3: empty text")``.
    """
    if numbers and isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        kind = "a string or number" if numbers else "a string"
        found = json_type(value) if numbers else type(value).__name__
        raise error(f"{where}: {name} must be {kind}, found {found}")
    value = value.strip()
    if not value:
        raise error(f"{where}: empty {name}")
    if _SURROGATE.search(value):
        raise error(f"{where}: {name} is not valid Unicode (an unpaired surrogate such as \\ud800)")
    if not any(unicodedata.category(char) not in _INVISIBLE for char in value):
        raise error(f"{where}: empty {name} (only control or zero-width characters)")
    return value


def parse_fields(spec: str) -> Dict[str, str]:
    """``"text_a=sentence,label=label_desc"`` → ``{"text_a": "sentence", "label": "label_desc"}``."""
    fields = {}
    for item in spec.split(","):
        name, sep, key = item.partition("=")
        if not sep or not name.strip() or not key.strip():
            raise FewshotError(f"--fields: expected name=key pairs separated by commas, got {item!r}")
        if name.strip() not in FIELD_NAMES:
            raise FewshotError(f"--fields: unknown name '{name.strip()}' (use {', '.join(FIELD_NAMES)})")
        fields[name.strip()] = key.strip()
    return fields


def format_fields(fields: Mapping[str, str]) -> str:
    """The inverse of :func:`parse_fields`: ``{"text_a": "sentence"}`` → ``"text_a=sentence"``."""
    return ",".join(f"{name}={key}" for name, key in fields.items())


def check_fields(fields: Mapping[str, str], labeled: bool) -> Mapping[str, str]:
    """A JSON field mapping must name text_a (and label when rows are labelled), and nothing unknown."""
    unknown = [name for name in fields if name not in FIELD_NAMES]
    if unknown:
        raise DataError(f"fields: unknown name '{unknown[0]}' (use {', '.join(FIELD_NAMES)})")
    if "text_a" not in fields:
        raise DataError("fields: must map 'text_a' to a JSON key")
    if labeled and "label" not in fields:
        raise DataError("fields: must map 'label' to a JSON key when labeled=True")
    return fields


def delimiter_hint(value: str, fits: Callable[[Sequence[str]], bool], delimiter: str, what: str) -> str:
    """A hint when ``value`` split at another punctuation run gives parts that ``fits`` accepts.

    ``("盗窃;抢劫", all-parts-known, ",", "labels are separated by")`` →
    ``"; it looks like ';' was used, but labels are separated by ','"``; ``""`` when no split fits.
    """
    for sep in sorted(set(_PUNCTUATION_RUN.findall(value)) - {delimiter}):
        parts = [part.strip() for part in value.split(sep)]
        if len(parts) > 1 and fits(parts):
            return f"; it looks like {sep!r} was used, but {what} {delimiter!r}"
    return ""
