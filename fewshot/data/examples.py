"""Read text-classification examples from TSV files, JSON lines, or Python objects.

Inputs follow PaddleNLP's few-shot applications (``text<TAB>label`` files) and FewCLUE
(JSON lines with ``sentence`` and ``label_desc``)::

    文登区这些公路将封闭施工<TAB>news_car   →  Example("文登区这些公路将封闭施工", label="news_car")

Every malformed row raises :class:`~fewshot.errors.DataError` saying where (file and 1-based
line, or row index) and what.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from ..errors import DataError
from .fields import DEFAULT_JSON_FIELDS, check_fields, clean_string
from .lines import PathLike, is_json_lines, parse_json_object, read_lines

LabelSpec = Union[Sequence[str], Callable[[str, str], Any]]
"""The allowed labels: a list of names, or a validator ``check(where, label)`` that raises ``DataError``
(multi-label rows ``"a,b"`` and hierarchical paths ``"a##b"`` are checked this way)."""

_MAX_LABELS_SHOWN = 10


@dataclass(frozen=True)
class Example:
    """One input text (or text pair) and, when known, its label name.

    ``line`` is the 1-based line of the file it was read from (None for in-memory rows); it takes no
    part in comparisons.
    """

    text_a: str
    text_b: Optional[str] = None
    label: Optional[str] = None
    line: Optional[int] = field(default=None, compare=False, repr=False)


def read_tsv(path: PathLike, labels: Optional[LabelSpec] = None, labeled: bool = True) -> List[Example]:
    """Read a PaddleNLP few-shot text file into examples.

    Labeled rows are ``text<TAB>label`` or ``text_a<TAB>text_b<TAB>label``; unlabeled rows
    (``labeled=False``, e.g. ``data.txt``) are ``text`` or ``text_a<TAB>text_b``. The first
    data line fixes the column count for the whole file. Blank lines are skipped and each
    field is stripped. When ``labels`` is given, every label must be one of them.
    """
    known = KnownLabels(labels)
    allowed = (2, 3) if labeled else (1, 2)
    columns: Optional[int] = None
    first_line = 0
    examples: List[Example] = []
    for number, line in read_lines(path):
        if not line.strip():
            continue
        where = f"{path} line {number}"
        fields = [field.strip() for field in line.split("\t")]
        if columns is None:
            if len(fields) not in allowed:
                raise DataError(f"{where}: expected {_describe_any_columns(labeled)}, found {len(fields)}")
            columns, first_line = len(fields), number
        elif len(fields) != columns:
            raise DataError(
                f"{where}: expected {_describe_columns(columns, labeled)}, found {len(fields)} "
                f"(line {first_line} has {columns})"
            )
        label = fields.pop() if labeled else None
        text_a, text_b = fields if len(fields) == 2 else (fields[0], None)
        examples.append(make_example(where, text_a, text_b, label, labeled, known, line=number))
    if not examples:
        raise DataError(f"{path}: no examples (the file is empty or has only blank lines)")
    return examples


def read_jsonl(
    path: PathLike,
    fields: Optional[Mapping[str, str]] = None,
    labels: Optional[LabelSpec] = None,
    labeled: bool = True,
) -> List[Example]:
    """Read JSON lines (one object per line) into examples.

    ``fields`` maps ``text_a``/``text_b``/``label`` to JSON keys; the default,
    :data:`DEFAULT_JSON_FIELDS`, reads FewCLUE files. Numbers are converted to strings.
    The label key is only read when ``labeled`` is true. Blank lines are skipped.
    """
    fields = check_fields(DEFAULT_JSON_FIELDS if fields is None else fields, labeled)
    known = KnownLabels(labels)
    examples: List[Example] = []
    for number, line in read_lines(path):
        if not line.strip():
            continue
        where = f"{path} line {number}"
        try:
            row = parse_json_object(line)
        except DataError as exc:
            raise DataError(f"{where}: {exc}") from None
        values = {}
        for name, key in fields.items():
            if name == "label" and not labeled:
                continue
            if key not in row:
                raise DataError(f"{where}: missing key '{key}' (for {name})")
            value = row[key]
            if isinstance(value, str) or (isinstance(value, (int, float)) and not isinstance(value, bool)):
                values[name] = str(value)
            else:
                clean_string(where, f"key '{key}'", value, numbers=True)
        examples.append(
            make_example(where, values["text_a"], values.get("text_b"), values.get("label"), labeled, known,
                         line=number)
        )
    if not examples:
        raise DataError(f"{path}: no examples (the file is empty or has only blank lines)")
    return examples


def read_examples(
    path: PathLike,
    labels: Optional[LabelSpec] = None,
    labeled: bool = True,
    fields: Optional[Mapping[str, str]] = None,
) -> List[Example]:
    """Read examples from a file, choosing the reader by extension.

    ``.json`` and ``.jsonl`` files are JSON lines (see :func:`read_jsonl`); anything else
    is tab-separated text (see :func:`read_tsv`), for which ``fields`` is ignored.
    """
    if not os.path.exists(path):
        raise DataError(f"{path}: file does not exist")
    if is_json_lines(path):
        return read_jsonl(path, fields=fields, labels=labels, labeled=labeled)
    return read_tsv(path, labels=labels, labeled=labeled)


def to_examples(
    data: Union[PathLike, Iterable[Any]],
    labels: Optional[LabelSpec] = None,
    labeled: bool = True,
) -> List[Example]:
    """Turn a file path or in-memory rows into validated examples.

    ``data`` may be a path to an existing file (read with :func:`read_examples`) or rows: :class:`Example`, ``str`` (unlabeled text), tuples/lists, or dicts with keys
    ``text_a``/``text_b``/``label``. Tuples mean ``(text, label)`` or ``(text_a, text_b, label)``
    when ``labeled``, and ``(text,)`` or ``(text_a, text_b)`` when not — so a 2-tuple is a text
    pair only with ``labeled=False``. Rows are checked like file lines; errors name the 0-based
    row index (``row 3: empty text``). All rows must agree on whether they have ``text_b``.
    Any iterable works, generators included; it is read once.
    """
    if isinstance(data, (str, os.PathLike)):
        if not os.path.isfile(data):
            raise DataError(
                f"{data}: file does not exist (a string is read as a file path; pass a list of texts for "
                "in-memory data)"
            )
        return read_examples(data, labels=labels, labeled=labeled)
    if isinstance(data, (Mapping, bytes)):
        raise DataError(f"expected a file path or a list of rows, found {type(data).__name__}")
    known = KnownLabels(labels)
    examples: List[Example] = []
    for index, row in enumerate(data):
        where = f"row {index}"
        text_a, text_b, label = _unpack_row(where, row, labeled)
        example = make_example(where, text_a, text_b, label, labeled, known,
                               line=row.line if isinstance(row, Example) else None)
        if examples and (example.text_b is None) != (examples[0].text_b is None):
            problem = "has text_b but row 0 does not" if example.text_b is not None else "has no text_b but row 0 does"
            raise DataError(f"{where}: {problem}; all rows must agree")
        examples.append(example)
    if not examples:
        raise DataError("no examples given (the list is empty)")
    return examples


class KnownLabels:
    """The allowed label names, a label validator, or no restriction when ``labels`` is None."""

    def __init__(self, labels: Optional[LabelSpec]) -> None:
        self.validator = labels if callable(labels) else None
        self.ordered = None if labels is None or callable(labels) else [str(label) for label in labels]
        self.names = None if self.ordered is None else set(self.ordered)

    def check(self, where: str, label: str) -> None:
        if self.validator is not None:
            self.validator(where, label)
            return
        if self.names is not None and label not in self.names:
            shown = ", ".join(self.ordered[:_MAX_LABELS_SHOWN])
            more = ", ..." if len(self.ordered) > _MAX_LABELS_SHOWN else ""
            raise DataError(f"{where}: unknown label '{label}' (known: {shown}{more})")


def make_example(
    where: str,
    text_a: Any,
    text_b: Any,
    label: Any,
    labeled: bool,
    known: KnownLabels,
    line: Optional[int] = None,
) -> Example:
    """Validate and strip one row's fields; ``where`` prefixes every error message."""
    pair = text_b is not None
    text_a = clean_string(where, "text_a" if pair else "text", text_a)
    if pair:
        text_b = clean_string(where, "text_b", text_b)
    if labeled:
        if label is None:
            raise DataError(f"{where}: missing label")
        label = clean_string(where, "label", label, numbers=True)
        known.check(where, label)
    elif label is not None and not isinstance(label, str):
        label = str(label)
    return Example(text_a=text_a, text_b=text_b, label=label, line=line)


def _unpack_row(where: str, row: Any, labeled: bool) -> Tuple[Any, Any, Any]:
    """Return ``(text_a, text_b, label)`` from one in-memory row of any accepted kind."""
    if isinstance(row, Example):
        return row.text_a, row.text_b, row.label
    if isinstance(row, str):
        if labeled:
            raise DataError(f"{where}: a bare string has no label; pass (text, label) rows or labeled=False")
        return row, None, None
    if isinstance(row, Mapping):
        if "text_a" not in row:
            raise DataError(f"{where}: missing key 'text_a'")
        return row["text_a"], row.get("text_b"), row.get("label")
    if isinstance(row, (tuple, list)):
        if labeled and len(row) in (2, 3):
            return row[0], (row[1] if len(row) == 3 else None), row[-1]
        if not labeled and len(row) in (1, 2):
            return row[0], (row[1] if len(row) == 2 else None), None
        expected = "(text, label) or (text_a, text_b, label)" if labeled else "(text,) or (text_a, text_b)"
        raise DataError(f"{where}: expected {expected}, found {len(row)} items")
    raise DataError(f"{where}: expected an Example, str, tuple, list or dict, found {type(row).__name__}")


def _describe_columns(count: int, labeled: bool) -> str:
    names = {
        (True, 2): "(text, label)",
        (True, 3): "(text_a, text_b, label)",
        (False, 1): "(text)",
        (False, 2): "(text_a, text_b)",
    }[(labeled, count)]
    plural = "column" if count == 1 else "columns"
    return f"{count} tab-separated {plural} {names}"


def _describe_any_columns(labeled: bool) -> str:
    if labeled:
        return "2 or 3 tab-separated columns (text, label) or (text_a, text_b, label)"
    return "1 or 2 tab-separated columns (text) or (text_a, text_b)"
