"""Reading text files line by line: UTF-8 (with or without BOM), LF, CRLF or CR, constant memory.

One reader serves every file fewshot reads (data, label files, prediction inputs, corpora)::

    b"\\xef\\xbb\\xbfa\\r\\nb\\rc\\n"  →  (1, "a"), (2, "b"), (3, "c")

Only ``\\n`` and ``\\r`` end a line (unlike ``str.splitlines``, which also splits on characters
such as U+2028 that may occur inside a text).
"""

from __future__ import annotations

import json
import os
import re
from typing import IO, Any, Dict, Iterator, Tuple, Type, Union

from ..errors import DataError, FewshotError

PathLike = Union[str, "os.PathLike[str]"]

UTF8_BOM = b"\xef\xbb\xbf"
_LINE_END = re.compile(rb"\r\n|\n|\r")
_BLOCK = 1 << 20


def iter_raw_lines(handle: IO[bytes]) -> Iterator[Tuple[int, int, bytes]]:
    """``(line number, bytes consumed, line without its ending)`` of a binary stream, BOM removed.

    Reads 1 MiB blocks, so memory stays flat however large the file. A ``\\r`` at the end of a
    block waits for the next one, in case it is the first half of ``\\r\\n``.
    """
    number = 0
    pending = b""
    first = True
    while True:
        block = handle.read(_BLOCK)
        if first:
            first = False
            if block.startswith(UTF8_BOM):
                block = block[len(UTF8_BOM):]
        data = pending + block
        if not block:
            if data:
                number += 1
                yield number, len(data), data.rstrip(b"\r")
            return
        start = 0
        for match in _LINE_END.finditer(data):
            if match.end() == len(data) and match.group() == b"\r":
                break
            number += 1
            yield number, match.end() - start, data[start:match.start()]
            start = match.end()
        pending = data[start:]


def decode_line(raw: bytes) -> str:
    """A line's text; ``DataError`` (without location) when it is not UTF-8: ``b"\\xff"`` → "not valid UTF-8 (byte 0xff)"."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"not valid UTF-8 (byte 0x{raw[exc.start]:02x})") from None


def iter_lines(handle: IO[bytes]) -> Iterator[Tuple[int, int, Union[str, DataError]]]:
    """``(line number, bytes consumed, text or the DataError saying why it is not text)`` of a stream."""
    for number, size, raw in iter_raw_lines(handle):
        try:
            yield number, size, decode_line(raw)
        except DataError as exc:
            yield number, size, exc


def open_input(path: PathLike, error: Type[FewshotError] = DataError) -> IO[bytes]:
    """Open a file for reading in binary; ``error`` naming the path when it is missing, a directory or unreadable."""
    if not os.path.exists(path):
        raise error(f"{path}: file does not exist")
    if os.path.isdir(path):
        raise error(f"{path}: is a directory, not a file")
    try:
        return open(path, "rb")
    except OSError as exc:
        raise error(f"{path}: cannot read ({exc.strerror})") from None


def read_lines(path: PathLike, error: Type[FewshotError] = DataError) -> Iterator[Tuple[int, str]]:
    """Yield ``(line_number, line)`` for each line of a UTF-8 text file, 1-based, without line ending.

    Raises ``error`` naming the path when the file is missing or unreadable, and the line when
    it is not valid UTF-8: ``train.txt line 3: not valid UTF-8 (byte 0xb9)``.
    """
    with open_input(path, error) as handle:
        for number, _, text in iter_lines(handle):
            if isinstance(text, DataError):
                raise error(f"{path} line {number}: {text}")
            yield number, text


def parse_json_object(line: str) -> Dict[str, Any]:
    """One JSON-lines row as a dict; ``DataError`` (without a location) for bad JSON or a non-object."""
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise DataError(f"invalid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(row, dict):
        raise DataError(f"expected a JSON object, found {json_type(row)}")
    return row


def json_type(value: Any) -> str:
    """The JSON name of a decoded value's type: ``[]`` → "array", ``None`` → "null"."""
    names = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number")


def is_json_lines(path: PathLike) -> bool:
    """``.json`` and ``.jsonl`` files hold one JSON object per line; anything else is text."""
    return os.fspath(path).lower().endswith((".json", ".jsonl"))
