"""``predict_file``: stream a text or JSON-lines file through a predictor into JSON lines, in order.

>>> predict_file(OnnxPredictor("bundle/"), "data.txt", "predictions.jsonl", k=2)
PredictSummary(lines=100000, skipped=0)

Each output line is ``{"line": 7, "label": "news_car", "score": 0.91, "top_k": [...]}`` (or
``{"line": 7, "error": "..."}`` for a skipped line). Memory stays flat for files of any size; the
output is written to a hidden temporary file and renamed into place when complete, so an
interrupted run never leaves a half-written output, and never replaces the input.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Dict, Iterator, List, Mapping, Optional, Tuple, Union

import numpy as np

from ..atomic import atomic_file
from ..data.fields import clean_string
from ..data.lines import is_json_lines, iter_lines, open_input, parse_json_object
from ..errors import DataError, FewshotError
from ..template import Row
from .prefetch import prefetched



def top_k(probs: np.ndarray, labels: List[str], k: int) -> List[List[Tuple[str, float]]]:
    """The ``k`` most probable ``(label, probability)`` of each row, best first."""
    k = max(1, min(k, probs.shape[1]))
    best = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    return [[(labels[j], float(row[j])) for j in idx] for row, idx in zip(probs, best)]


@dataclass
class PredictSummary:
    """What ``predict_file`` did: lines read, predicted and skipped."""

    lines: int = 0
    skipped: int = 0

    @property
    def predicted(self) -> int:
        return self.lines - self.skipped


class LineParser:
    """Turns one input line into ``(text_a, text_b)``; raises ``DataError`` saying what is wrong.

    ``.jsonl``/``.json`` files hold one JSON object per line, read through ``fields``
    (``{'text_a': 'sentence'}``); other files hold ``text`` or ``text_a<TAB>text_b`` per line.
    With ``path=None`` it reads records (Parquet or DataFrame rows) through ``fields`` with :meth:`parse_record`.
    """

    def __init__(self, path: Union[str, os.PathLike, None], needs_text_b: bool, fields: Optional[Mapping[str, str]] = None):
        self.json = path is None or is_json_lines(path)
        self.needs_text_b = needs_text_b
        self.fields = dict(fields or {"text_a": "sentence"})
        if self.json and needs_text_b and "text_b" not in self.fields:
            raise DataError("fields: the template uses text_b; map it to a JSON key (text_b=KEY)")

    def parse(self, line: str) -> Tuple[str, Optional[str]]:
        if not line.strip():
            raise DataError("empty line")
        return self._parse_json(line) if self.json else self._parse_tsv(line)

    def _parse_tsv(self, line: str) -> Tuple[str, Optional[str]]:
        columns = line.split("\t")
        expected = 2 if self.needs_text_b else 1
        if len(columns) != expected:
            names = "(text_a, text_b)" if self.needs_text_b else "(text)"
            raise DataError(f"expected {expected} tab-separated column(s) {names}, found {len(columns)}")
        texts = [clean_string(f"column {i + 1}", "text", value) for i, value in enumerate(columns)]
        return texts[0], texts[1] if self.needs_text_b else None

    def _parse_json(self, line: str) -> Tuple[str, Optional[str]]:
        return self.parse_record(parse_json_object(line))

    def parse_record(self, row: Mapping[str, Any]) -> Tuple[str, Optional[str]]:
        """``(text_a, text_b)`` of one record (a JSON line's object, a Parquet or DataFrame row) through ``fields``."""
        slots = ("text_a", "text_b") if self.needs_text_b else ("text_a",)
        texts = []
        for slot in slots:
            key = self.fields[slot]
            if key not in row:
                raise DataError(f"missing key '{key}' (for {slot}; choose the key with --fields {slot}=KEY)")
            texts.append(clean_string(f"key '{key}'", "text", row[key], numbers=True))
        return texts[0], texts[1] if self.needs_text_b else None


def check_paths(input_path: Union[str, os.PathLike], output_path: Union[str, os.PathLike]) -> None:
    """Refuse, before any work, a missing input, or an output that is the input, a directory, or in a
    missing or read-only directory."""
    input_path, output_path = Path(input_path), Path(output_path)
    if not input_path.is_file():
        raise DataError(f"{input_path}: file does not exist")
    if output_path.exists() and output_path.is_dir():
        raise FewshotError(f"--output {output_path}: is a directory; name a file to write the predictions to")
    if not output_path.parent.is_dir():
        raise FewshotError(f"--output {output_path}: the directory {output_path.parent} does not exist")
    if output_path.exists() and os.path.samefile(input_path, output_path):
        raise FewshotError(f"--output {output_path} is the input file; write the predictions to another file")
    if not os.access(output_path.parent, os.W_OK):
        raise FewshotError(f"--output {output_path}: cannot write in {output_path.parent} (permission denied)")


def predict_file(
    predictor: Any,
    input_path: Union[str, os.PathLike],
    output_path: Union[str, os.PathLike],
    k: int = 1,
    fields: Optional[Mapping[str, str]] = None,
    on_error: str = "fail",
    chunk_size: int = 2048,
    progress: bool = True,
) -> PredictSummary:
    """Predict every line of ``input_path`` into JSON lines at ``output_path``, in input order.

    ``predictor`` is an ``OnnxPredictor`` (or anything with its ``encoder``, ``encode_texts``,
    ``run_texts``, ``decode``, ``scores`` and ``labels``). Reads and predicts ``chunk_size`` lines at a time,
    the next chunk read and tokenised on a helper thread while the current one runs. A
    malformed line raises ``DataError`` naming it (``on_error='fail'``), or with ``on_error='skip'``
    is reported on stderr and written as ``{"line": N, "error": "..."}``, so the output always has
    one line per input line. A full disk or a permission error is a one-line ``FewshotError``.
    """
    from tqdm import tqdm

    if on_error not in ("fail", "skip"):
        raise FewshotError(f"on_error must be 'fail' or 'skip', got {on_error!r}")
    if k < 1 or chunk_size < 1:
        raise FewshotError("--top-k and --chunk-size must be at least 1")
    check_paths(input_path, output_path)
    input_path, output_path = Path(input_path), Path(output_path)
    parser = LineParser(input_path, predictor.encoder.needs_text_b, fields)
    summary = PredictSummary()
    with open_input(input_path) as src, atomic_file(output_path, "the predictions") as tmp, \
            open(tmp, "w", encoding="utf-8") as out, \
            tqdm(total=input_path.stat().st_size, unit="B", unit_scale=True, disable=not progress,
                 file=sys.stderr, desc="fewshot-predict") as bar:
        chunks = _chunks(iter_lines(src), parser, bar, chunk_size)
        for items in prefetched(_encoded(predictor, chunk) for chunk in chunks):
            _predict_chunk(predictor, items, k, on_error, input_path, out, summary)
    return summary


def _chunks(lines: Iterator[Tuple[int, int, Any]], parser: LineParser, bar: Any, chunk_size: int) -> Iterator[List[Tuple[int, Any]]]:
    """``(line number, text pair or DataError)`` of the lines, ``chunk_size`` at a time; blank lines are
    errors before a text and ignored at the end of the file (as ``read_examples`` ignores them)."""
    chunk: List[Tuple[int, Any]] = []
    blank: List[int] = []
    for number, size, text in lines:
        bar.update(size)
        if isinstance(text, str) and not text.strip():
            blank.append(number)
            continue
        chunk.extend((n, DataError("empty line")) for n in blank)
        blank = []
        chunk.append((number, _parse(parser, text)))
        if len(chunk) >= chunk_size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _encoded(predictor: Any, chunk: List[Tuple[int, Any]]) -> List[Tuple[int, Any]]:
    """``(line number, encoded rows or DataError)`` of a chunk of parsed lines."""
    pairs = [item for _, item in chunk if not isinstance(item, DataError)]
    encoded = iter(predictor.encode_texts(pairs, return_errors=True))
    return [(n, item if isinstance(item, DataError) else next(encoded)) for n, item in chunk]


def _parse(parser: LineParser, text: Union[str, DataError]) -> Union[Tuple[str, Optional[str]], DataError]:
    """The line's text pair, or the DataError saying what is wrong with it."""
    if isinstance(text, DataError):
        return text
    try:
        return parser.parse(text)
    except DataError as exc:
        return exc


def checked_item(item: Any, path: Path, number: int, on_error: str) -> Any:
    """``item`` unless it is an error: then raise it naming the line, or report it and keep it as a record."""
    if not isinstance(item, DataError):
        return item
    error = DataError(f"{path} line {number}: {item}")
    if on_error == "fail":
        raise error
    print(f"fewshot-predict: {error} (skipped)", file=sys.stderr)
    return error


def prediction_records(predictor: Any, probs: np.ndarray, k: Optional[int] = 1) -> List[Dict[str, Any]]:
    """``label``, ``score`` and (unless ``k`` is None) ``top_k`` of each row of probabilities, in row order.

    The one record shape of every way to predict (``fewshot-predict``, ``fewshot-serve``, Ray):
    ``[[0.9, 0.1]]`` → ``[{"label": "news_car", "score": 0.9, "top_k": [{"label": "news_car", "score": 0.9}]}]``;
    multi-label rows have a list of labels and one score per label, hierarchical rows a node path.
    """
    labels = predictor.decode(probs)
    records = [{"label": label, "score": score} for label, score in zip(labels, predictor.scores(probs, labels))]
    if k is not None:
        for record, best in zip(records, top_k(probs, predictor.labels, k)):
            record["top_k"] = [{"label": name, "score": value} for name, value in best]
    return records


def _predictions(predictor: Any, items: List[List[Row]], k: int) -> Iterator[Dict[str, Any]]:
    """``label``, ``score`` and ``top_k`` of each encoded text (its rows: one, or its windows), in order."""
    if not items:
        return iter(())
    return iter(prediction_records(predictor, predictor.run_texts(items), k))


def _predict_chunk(
    predictor: Any, chunk: List[Tuple[int, Any]], k: int, on_error: str, path: Path,
    out: IO[str], summary: PredictSummary,
) -> None:
    """Predict and write one chunk of ``(line number, encoded rows or DataError)``, in line order."""
    items = [(n, checked_item(item, path, n, on_error)) for n, item in chunk]
    results = _predictions(predictor, [row for _, row in items if not isinstance(row, DataError)], k)
    for number, item in items:
        failed = isinstance(item, DataError)
        record = {"line": number, **({"error": str(item)} if failed else next(results))}
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
        summary.lines += 1
        summary.skipped += failed
