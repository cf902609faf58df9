"""Ranked result files (label issues, texts to label): tab-separated, one header line, written atomically.

>>> write_tsv("issues.tsv", ["line", "text", "score"], [{"line": 17, "text": "国足\t负", "score": 0.0213}])
>>> open("issues.tsv").read()
'line\\ttext\\tscore\\n17\\t国足 负\\t0.0213\\n'
"""

from __future__ import annotations

import os
import re
from typing import Any, Mapping, Sequence, Union

from ..atomic import atomic_file

_BREAKS = re.compile(r"[\t\r\n]+")


def _cell(value: Any) -> str:
    """A field with tabs and line breaks turned into spaces; floats with six significant digits."""
    text = f"{value:.6g}" if isinstance(value, float) else str(value)
    return _BREAKS.sub(" ", text)


def write_tsv(path: Union[str, "os.PathLike[str]"], columns: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> None:
    """Write ``rows`` (dicts keyed by ``columns``) under a header line; a failed write keeps the old file."""
    with atomic_file(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="\n") as handle:
            handle.write("\t".join(columns) + "\n")
            for row in rows:
                handle.write("\t".join(_cell(row[c]) for c in columns) + "\n")
