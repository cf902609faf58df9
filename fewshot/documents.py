"""The JSON documents fewshot writes and reads back: saved-classifier configs and bundle manifests.

>>> read_json_document(Path("bundle/fewshot.json"), required=("labels",), supported_version=1)
{'format_version': 1, 'labels': [...], ...}

Every problem is a ``BundleError`` naming the file: missing, not JSON, not an object, missing keys,
a format version newer than this fewshot reads.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Sequence

from .errors import BundleError


def read_json_document(path: Path, required: Sequence[str], supported_version: int, missing_hint: str = "") -> Dict[str, Any]:
    """The JSON object in ``path``, checked for the keys ``required`` and ``format_version``."""
    if not path.is_file():
        raise BundleError(f"{path.parent}: {missing_hint or f'no {path.name}'}")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{path}: not valid JSON ({exc})") from None
    except OSError as exc:
        raise BundleError(f"{path}: cannot read ({exc.strerror})") from None
    if not isinstance(document, dict):
        raise BundleError(f"{path}: expected a JSON object, found {type(document).__name__}")
    missing = [key for key in ("format_version", *required) if key not in document]
    if missing:
        raise BundleError(f"{path}: missing key(s) {', '.join(missing)}")
    version = document["format_version"]
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= supported_version:
        raise BundleError(
            f"{path}: format version {version!r} is not supported (this fewshot reads versions up to {supported_version})"
        )
    return document


def json_text(document: Any) -> str:
    """The text fewshot writes for a document: UTF-8 characters as they are, indented, a final newline."""
    return json.dumps(document, ensure_ascii=False, indent=2) + "\n"
