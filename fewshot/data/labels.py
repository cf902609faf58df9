"""Read, validate and write label words: which words stand for each label.

The file format is PaddleNLP's ``label.txt``: one label per line (``news_car``), or
``label==word`` lines (``news_car==汽车``); repeating a label gives it several words::

    news_car==汽车
    news_car==车辆
    news_tech==科技

reads as ``{"news_car": ["汽车", "车辆"], "news_tech": ["科技"]}``. A bare label line gives
the label no words (``[]``): the verbalizer then reads the label's own name, as PaddleNLP does, so
bare and ``label==word`` lines may be mixed. PaddleNLP's ``verbalizer_config.json`` (a JSON object
``{"news_car": ["汽车"]}``) is read as the mapping it is; its ``template_config.json`` is refused
with a message saying what it is. Errors raise :class:`~fewshot.errors.LabelFileError`.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Dict, Iterator, List, Mapping, Tuple

from ..errors import LabelFileError
from .fields import clean_string
from .lines import PathLike, read_lines

logger = logging.getLogger(__name__)

SEPARATOR = "=="
_FORBIDDEN = {"\t": "a tab (data files separate columns with tabs)", "\r": "a line break", "\n": "a line break"}


def label_lines(path: PathLike, what: str = "label") -> Iterator[Tuple[int, str, str]]:
    """``(line number, label, word)`` of each non-blank ``label`` or ``label==word`` line (word may be "").

    ``what`` names the left side in errors ("label", or "path" for hierarchy files).
    """
    for number, line in read_lines(path, error=LabelFileError):
        line = line.strip()
        if not line:
            continue
        where = f"{path} line {number}"
        if line.count(SEPARATOR) > 1:
            raise LabelFileError(f"{where}: more than one '{SEPARATOR}' in '{line}'")
        label, _, word = (part.strip() for part in line.partition(SEPARATOR))
        if not label:
            raise LabelFileError(f"{where}: empty {what} before '{SEPARATOR}'")
        if SEPARATOR in line and not word:
            raise LabelFileError(f"{where}: empty word after '{SEPARATOR}' for {what} '{label}'")
        _check_characters(where, what, label)
        _check_characters(where, "word", word)
        yield number, label, word


def read_label_words(path: PathLike) -> Dict[str, List[str]]:
    """Read a ``label.txt`` file into ``{label: [words]}``, labels in first-appearance order.

    Duplicate words of a label are dropped; blank lines are skipped; a UTF-8 BOM and
    CRLF endings are accepted. Errors name the path and 1-based line; a word given to two
    labels is logged as a warning (the verbalizer cannot tell those labels apart by it).
    A file whose first line starts with ``{``, ``[`` or ``"`` is read as PaddleNLP's JSON files.
    """
    lines = [line.strip() for _, line in read_lines(path, error=LabelFileError)]
    first = next((line for line in lines if line), "")
    if first.startswith(("{", "[", '"')):
        return label_words_from_json(path, [line for line in lines if line])
    label_words: Dict[str, List[str]] = {}
    for _, label, word in label_lines(path):
        words = label_words.setdefault(label, [])
        if word and word not in words:
            words.append(word)
    if not label_words:
        raise LabelFileError(f"{path}: no labels (the file is empty or has only blank lines)")
    _log_labels_without_words(label_words, str(path))
    warn_shared_words(label_words, str(path))
    return label_words


def label_words_from_json(path: PathLike, lines: List[str]) -> Dict[str, List[str]]:
    """PaddleNLP's ``verbalizer_config.json`` (``{"label": ["word", ...]}``) as label words; its
    ``template_config.json`` (a JSON string line, then ``{"class": ...}``) refused as a template."""
    try:
        documents = [json.loads(line) for line in lines]
    except json.JSONDecodeError as exc:
        raise LabelFileError(f"{path}: starts like JSON but is not valid JSON ({exc.msg} at column {exc.colno}); "
                             f"a label file has 'label' or 'label==word' lines") from None
    if len(documents) == 2 and isinstance(documents[1], dict) and "class" in documents[1]:
        raise LabelFileError(f"{path}: this is PaddleNLP's template_config.json (a {documents[1]['class']} "
                             f"template), not a label file; give its template as the template")
    if len(documents) != 1 or not isinstance(documents[0], dict):
        raise LabelFileError(f"{path}: a JSON label file must be one object mapping each label to its words, "
                             f"as PaddleNLP's verbalizer_config.json")
    try:
        return label_words_from_mapping(documents[0])
    except LabelFileError as exc:
        raise LabelFileError(f"{path}: {exc}") from None


def label_words_from_mapping(mapping: Mapping[str, Any]) -> Dict[str, List[str]]:
    """Validate an in-memory ``{label: word or [words] or None}`` and return ``{label: [words]}``.

    Applies the rules of :func:`read_label_words` (stripped, non-empty, no ``==``, tabs or line
    breaks); errors name the label. Integer keys are labels too: ``{0: "差", 1: "好"}`` →
    ``{"0": ["差"], "1": ["好"]}`` (data files hold labels as text).
    """
    if not isinstance(mapping, Mapping):
        raise LabelFileError(f"label words must be a mapping of label to words, found {type(mapping).__name__}")
    label_words: Dict[str, List[str]] = {}
    for raw_label, raw_words in mapping.items():
        if isinstance(raw_label, int) and not isinstance(raw_label, bool):
            raw_label = str(raw_label)
        label = _clean_name(f"label {raw_label!r}", "label", raw_label)
        if label in label_words:
            raise LabelFileError(f"label '{label}': given twice")
        if raw_words is None:
            raw_words = []
        elif isinstance(raw_words, str):
            raw_words = [raw_words]
        elif not isinstance(raw_words, (list, tuple)):
            raise LabelFileError(
                f"label '{label}': words must be a string or a list of strings, found {type(raw_words).__name__}"
            )
        words: List[str] = []
        for raw_word in raw_words:
            word = _clean_name(f"label '{label}'", "word", raw_word)
            if word not in words:
                words.append(word)
        label_words[label] = words
    if not label_words:
        raise LabelFileError("label words: no labels given")
    _log_labels_without_words(label_words, "label words")
    warn_shared_words(label_words, "label words")
    return label_words


def write_label_words(path: PathLike, label_words: Mapping[str, Any]) -> None:
    """Write ``label==word`` lines (a label without words as a bare line) that read back unchanged."""
    label_words = label_words_from_mapping(label_words)
    lines = []
    for label, words in label_words.items():
        lines.extend(f"{label}{SEPARATOR}{word}" for word in words)
        if not words:
            lines.append(label)
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        handle.write("\n".join(lines) + "\n")


def warn_shared_words(label_words: Mapping[str, List[str]], where: str) -> List[str]:
    """Warn once per word that stands for more than one label; returns those words.

    ``{"a": ["车"], "b": ["车"]}`` → warning ``label words: word '车' is given to labels 'a', 'b'``.
    """
    owners: Dict[str, List[str]] = {}
    for label, words in label_words.items():
        for word in words:
            owners.setdefault(word, []).append(label)
    shared = [word for word, labels in owners.items() if len(labels) > 1]
    for word in shared:
        names = ", ".join(f"'{label}'" for label in owners[word])
        logger.warning("%s: word '%s' is given to labels %s; the verbalizer cannot tell them apart by it",
                       where, word, names)
    return shared


def _check_characters(where: str, kind: str, value: str) -> None:
    for char, name in _FORBIDDEN.items():
        if char in value:
            raise LabelFileError(f"{where}: {kind} '{value.strip()}' contains {name}")


def _clean_name(where: str, kind: str, value: Any) -> str:
    """Strip a label or word and reject what a label file could not hold."""
    value = clean_string(where, kind, value, error=LabelFileError)
    if SEPARATOR in value:
        raise LabelFileError(f"{where}: {kind} '{value}' contains '{SEPARATOR}'")
    _check_characters(where, kind, value)
    return value


def _log_labels_without_words(label_words: Dict[str, List[str]], where: str) -> None:
    """Say which labels stand for themselves when other labels have words (PaddleNLP's mixed files)."""
    without = [label for label, words in label_words.items() if not words]
    if without and len(without) < len(label_words):
        logger.info("%s: label(s) %s have no word; the verbalizer reads the label name itself",
                    where, ", ".join(f"'{label}'" for label in without))
