"""Distributed batch inference on Ray Data: one ``OnnxPredictor`` per actor, pandas or pyarrow batches.

>>> import ray
>>> from fewshot.integrations.ray import BundleClassifier
>>> ds = ray.data.read_parquet("docs/")                        # rows {"id": 7, "sentence": "..."}
>>> preds = ds.map_batches(BundleClassifier, fn_constructor_kwargs={"bundle": "bundles/tnews"},
...                        compute=ray.data.ActorPoolStrategy(size=2), num_cpus=1, batch_size=512, batch_format="pandas")
>>> preds.write_parquet("preds/")    # every row keeps its columns and gains label, score, top_k, error

Each actor loads the bundle once (``threads`` engine threads, ``engine``: onnxruntime or openvino; give the actor as many CPUs),
then classifies every batch it gets with the predictor's own encoder, batching and task decoding:
the records are those of ``fewshot-predict`` (``prediction_records``). On a cluster the bundle
path must be readable on every node. :func:`predict_file_ray` is ``fewshot-predict --backend ray``:
JSON-lines, text or Parquet in, JSON lines or Parquet out, identical to ``fewshot-predict``'s
output, one record per input row in row order.

Paddle-free; ``ray`` is imported only here (``pip install "fewshot[ray]"``).
"""

from __future__ import annotations

import gc
import json
import logging
import os
import threading
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, Tuple, Union

import numpy as np

from ..atomic import atomic_file
from ..data.lines import iter_lines, open_input
from ..errors import DataError, FewshotError
from ..runtime.batch import LineParser, PredictSummary, check_paths, checked_item, prediction_records
from ..runtime.predictor import OnnxPredictor

PathLike = Union[str, "os.PathLike[str]"]
OUTPUT_COLUMNS = ("label", "score", "top_k", "error")
"""The columns :class:`BundleClassifier` adds to each batch."""


def require_ray() -> Any:
    """The ``ray`` module, or a ``FewshotError`` saying how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401  (Ray Data is the ``ray[data]`` part)
    except ImportError as exc:
        raise FewshotError(f"the Ray engine needs ray[data] ({exc.name} is not installed): "
                           "pip install 'fewshot[ray]'") from None
    return ray


class BundleClassifier:
    """A callable class for ``Dataset.map_batches``: classifies the text column(s) of each batch.

    ``fields`` maps the template's slots to columns, as ``fewshot-predict --fields`` does
    (``{"text_a": "sentence"}``; add ``"text_b"`` for pair templates). A row whose text is missing,
    empty or does not fit the template raises ``DataError`` (``on_error="fail"``) or, with
    ``on_error="skip"``, gets its message in ``error`` and nulls in the other columns.
    """

    def __init__(self, bundle: PathLike, fields: Optional[Mapping[str, str]] = None, top_k: int = 1, threads: int = 1,
                 batch_size: int = 32, precision: str = "fp32", on_error: str = "fail", engine: str = "onnxruntime"):
        if on_error not in ("fail", "skip"):
            raise FewshotError(f"on_error must be 'fail' or 'skip', got {on_error!r}")
        self.predictor = OnnxPredictor(bundle, threads=threads, batch_size=batch_size, precision=precision, engine=engine)
        self.parser = LineParser(None, self.predictor.encoder.needs_text_b, fields)
        self.top_k = top_k
        self.on_error = on_error

    def __call__(self, batch: Any) -> Any:
        """A pandas DataFrame, pyarrow Table or dict of numpy arrays, with :data:`OUTPUT_COLUMNS` added."""
        columns = self._columns(batch)
        records = self.classify([dict(zip(columns, values)) for values in zip(*columns.values())])
        added = {name: [record.get(name) for record in records] for name in OUTPUT_COLUMNS}
        return _with_columns(batch, added)

    def classify(self, rows: List[Mapping[str, Any]]) -> List[Dict[str, Any]]:
        """One record per row: ``{"label", "score", "top_k"}`` or ``{"error": "row 3: empty text"}``."""
        items: List[Any] = []
        for row in rows:
            try:
                items.append(self.parser.parse_record(row))
            except DataError as exc:
                items.append(exc)
        pairs = [item for item in items if not isinstance(item, DataError)]
        encoded = iter(self.predictor.encode_texts(pairs, return_errors=True))
        items = [item if isinstance(item, DataError) else next(encoded) for item in items]
        for index, item in enumerate(items):
            if isinstance(item, DataError) and self.on_error == "fail":
                raise DataError(f"row {index} of the batch: {item}")
        rows_ok = [item for item in items if not isinstance(item, DataError)]
        predicted = iter(prediction_records(self.predictor, self.predictor.run_texts(rows_ok), self.top_k) if rows_ok else [])
        return [{"error": str(item)} if isinstance(item, DataError) else next(predicted) for item in items]

    def _columns(self, batch: Any) -> Dict[str, List[Any]]:
        """The field columns of a batch as Python lists."""
        names = list(dict.fromkeys(self.parser.fields[slot] for slot in self.parser.fields if slot in ("text_a", "text_b")))
        if hasattr(batch, "column_names") and hasattr(batch, "column"):  # pyarrow.Table
            present = set(batch.column_names)
            return {name: batch.column(name).to_pylist() for name in names if name in present}
        present = set(batch.keys()) if isinstance(batch, Mapping) else set(batch.columns)
        return {name: list(batch[name].tolist()) for name in names if name in present}


def _with_columns(batch: Any, added: Mapping[str, List[Any]]) -> Any:
    if hasattr(batch, "column_names") and hasattr(batch, "append_column"):  # pyarrow.Table
        import pyarrow as pa

        for name, values in added.items():
            batch = batch.append_column(name, pa.array(values))
        return batch
    if isinstance(batch, Mapping):  # Ray's "numpy" batch format
        out = dict(batch)
        for name, values in added.items():
            column = np.empty(len(values), dtype=object)
            column[:] = values
            out[name] = column
        return out
    import pandas as pd

    out = batch.copy()
    for name, values in added.items():
        out[name] = pd.Series(values, index=out.index, dtype=object)  # None stays None (not NaN)
    return out


def _input_chunks(path: Path, parser: LineParser, chunk_size: int) -> Iterator[Tuple[List[Dict[str, Any]], List[Tuple[int, DataError]]]]:
    """``(rows, errors)`` per ``chunk_size`` input rows: rows ``{"line", "text_a", "text_b"}`` ready to
    predict, and the rows that cannot be read with the ``DataError`` saying why (line numbers from 1)."""
    if path.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        number = 0
        try:
            batches = pq.ParquetFile(path).iter_batches(batch_size=chunk_size)
        except Exception as exc:  # pyarrow raises its own types for files that are not Parquet
            raise DataError(f"{path}: cannot read as Parquet ({exc})") from None
        for table in batches:
            rows, errors = [], []
            for record in table.to_pylist():
                number += 1
                _add_row(rows, errors, number, lambda: parser.parse_record(record))
            yield rows, errors
        return
    with open_input(path) as handle:
        rows, errors = [], []
        for number, _, text in iter_lines(handle):
            _add_row(rows, errors, number, lambda: text if isinstance(text, DataError) else parser.parse(text))
            if len(rows) + len(errors) >= chunk_size:
                yield rows, errors
                rows, errors = [], []
        if rows or errors:
            yield rows, errors


def _add_row(rows: List[Dict[str, Any]], errors: List[Tuple[int, DataError]], number: int, parse: Any) -> None:
    try:
        pair = parse()
        if isinstance(pair, DataError):
            raise pair
    except DataError as exc:
        errors.append((number, exc))
        return
    rows.append({"line": number, "text_a": pair[0], "text_b": pair[1]})


def record_schema(task: Any) -> Any:
    """The Parquet schema of the output: ``line``, ``label`` and ``score`` (lists where the task decodes
    a row to several labels), ``top_k`` (label, score) structs, ``error``."""
    import pyarrow as pa

    sample = task.decode(np.full((1, len(task.labels)), 0.5, dtype=np.float32))[0]
    several = isinstance(sample, list)
    return pa.schema([
        ("line", pa.int64()),
        ("label", pa.list_(pa.string()) if several else pa.string()),
        ("score", pa.list_(pa.float64()) if several else pa.float64()),
        ("top_k", pa.list_(pa.struct([("label", pa.string()), ("score", pa.float64())]))),
        ("error", pa.string()),
    ])


def predict_file_ray(
    bundle: PathLike, input_path: PathLike, output_path: PathLike, k: int = 1,
    fields: Optional[Mapping[str, str]] = None, on_error: str = "fail", chunk_size: int = 2048, workers: int = 2,
    threads: int = 1, batch_size: int = 32, precision: str = "fp32", address: Optional[str] = None,
    engine: str = "onnxruntime",
) -> PredictSummary:
    """``predict_file`` on Ray: ``workers`` actors of ``threads`` CPUs each predict the chunks of
    ``input_path`` (``.jsonl``/``.json``, text, or ``.parquet``); the driver writes ``output_path``
    (JSON lines, or ``.parquet``) in row order, atomically, with ``fewshot-predict``'s records and
    error handling. A Ray already running is used and left running; otherwise the call joins ``address``
    (``"auto"``, ``"ray://head:10001"``) or, without one, starts a local Ray, and shuts it down on return."""
    ray = require_ray()
    if on_error not in ("fail", "skip"):
        raise FewshotError(f"on_error must be 'fail' or 'skip', got {on_error!r}")
    if k < 1 or chunk_size < 1 or workers < 1 or threads < 1:
        raise FewshotError("--top-k, --chunk-size, --workers and --threads must be at least 1")
    check_paths(input_path, output_path)
    input_path, output_path = Path(input_path), Path(output_path)
    bundle = Path(bundle).resolve()
    # A bad bundle fails here; every actor then runs the engine and precision "auto" picked here.
    probe = OnnxPredictor(bundle, threads=1, batch_size=batch_size, precision=precision, engine=engine)
    engine, precision = probe.engine.name, probe.precision.name
    parser = LineParser(None if input_path.suffix.lower() == ".parquet" else input_path, probe.encoder.needs_text_b,
                        fields)
    schema = record_schema(probe.task) if output_path.suffix.lower() == ".parquet" else None
    del probe

    with _ray_session(ray, address):
        logging.getLogger("ray.data").setLevel(logging.ERROR)  # no progress and execution lines on the user's stderr
        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True
        context.enable_progress_bars = False

        import pandas as pd

        refs, errors = [], {}
        for rows, bad in _input_chunks(input_path, parser, chunk_size):
            errors.update(bad)
            if rows:
                refs.append(ray.put(pd.DataFrame(rows, columns=["line", "text_a", "text_b"])))
        dataset = None
        if refs:
            dataset = ray.data.from_pandas_refs(refs).map_batches(
                BundleClassifier, batch_size=None, batch_format="pandas", num_cpus=threads,
                compute=ray.data.ActorPoolStrategy(size=workers),
                fn_constructor_kwargs={"bundle": str(bundle), "fields": {"text_a": "text_a", "text_b": "text_b"},
                                       "top_k": k, "threads": threads, "batch_size": batch_size,
                                       "precision": precision, "engine": engine, "on_error": "skip"})
        summary = PredictSummary()
        # Closed on every exit: a failed line stops Ray's execution now, not when the iterator is collected.
        with closing(_rows_in_order(dataset)) as predicted, atomic_file(output_path, "the predictions") as tmp:
            _write(tmp, schema, _records(predicted, errors, input_path, on_error, summary))
        return summary


PREFETCHER_THREAD = "Prefetcher"  # the name Ray Data gives WaitBlockPrefetcher's thread
BATCH_WORKER_THREAD = "iter_threaded"  # and its iterator's batch workers (they stop within 0.1 s of a close)


@contextmanager
def _ray_session(ray: Any, address: Optional[str]) -> Iterator[None]:
    """Ray as the caller left it: a running one is used and left running; otherwise one is started (joining
    ``address``, or a local one) and shut down on leaving, with every worker it started."""
    if ray.is_initialized():
        yield
        return
    ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    try:
        yield
    finally:
        wait_for_dataset_executions()
        ray.shutdown()


def wait_for_dataset_executions(timeout_s: float = 120.0) -> None:
    """Stop Ray Data's driver-side threads and wait until they have ended (at most ``timeout_s`` each).

    Any thread that calls into Ray after ``ray.shutdown()`` ends the whole process ("The core worker
    has already been shutdown ... The process will exit"). Three kinds outlive a dataset: its
    ``StreamingExecutor`` thread, which Ray Data joins for only 2 s; the block prefetcher's thread
    (``Prefetcher``), which Ray Data stops only when its iterator runs to the end, not when it is closed
    early, so every early stop leaves one behind; and the iterator's batch workers (``iter_threaded``),
    which finish the batch in hand after a close. So a Ray this module started is shut down only after
    this.

    These are Ray Data internals (checked on ray 2.60); where a release has moved them there is nothing
    here to stop, and Ray is shut down as before.

    >>> wait_for_dataset_executions()    # none running: returns at once
    """
    try:
        from ray.data._internal.block_batching.util import WaitBlockPrefetcher
        from ray.data._internal.execution.streaming_executor import StreamingExecutor
    except ImportError:
        return

    threads = [t for t in threading.enumerate() if t is not threading.current_thread()
               and (isinstance(t, StreamingExecutor) or t.name in (PREFETCHER_THREAD, BATCH_WORKER_THREAD))]
    if any(t.name == PREFETCHER_THREAD for t in threads):  # an early stop left one: only then scan the heap
        for prefetcher in [o for o in gc.get_objects() if isinstance(o, WaitBlockPrefetcher)]:
            prefetcher.stop()
    for thread in threads:
        thread.join(timeout_s)


def _rows_in_order(dataset: Optional[Any]) -> Iterator[Dict[str, Any]]:
    """The predicted rows of ``dataset`` (none for None), checked to come back in line order.

    No driver-side prefetching (``prefetch_batches=0``): fewer threads that keep fetching blocks after an
    early stop (see ``wait_for_dataset_executions``). The actors keep predicting ahead either way; only
    the driver's fetch of the next block is not overlapped.
    """
    if dataset is None:
        return
    last = 0
    for batch in dataset.iter_batches(batch_size=None, batch_format="pandas", prefetch_batches=0):
        for row in batch.to_dict("records"):
            if row["line"] <= last:
                raise FewshotError(f"Ray returned line {row['line']} after line {last}; preserve_order is off")
            last = row["line"]
            yield row


def _records(predicted: Iterator[Dict[str, Any]], errors: Dict[int, DataError], path: Path, on_error: str,
             summary: PredictSummary) -> Iterator[Dict[str, Any]]:
    """Predicted rows and unreadable lines merged by line number, as ``fewshot-predict`` writes them."""
    pending = sorted(errors)
    index = 0
    for row in predicted:
        while index < len(pending) and pending[index] < row["line"]:
            yield _error_record(pending[index], errors[pending[index]], path, on_error, summary)
            index += 1
        if row["error"] is not None:
            yield _error_record(row["line"], DataError(row["error"]), path, on_error, summary)
            continue
        summary.lines += 1
        yield {"line": int(row["line"]), "label": _plain(row["label"]), "score": _plain(row["score"]),
               "top_k": [{"label": t["label"], "score": float(t["score"])} for t in row["top_k"]]}
    for number in pending[index:]:
        yield _error_record(number, errors[number], path, on_error, summary)


def _error_record(number: int, error: DataError, path: Path, on_error: str, summary: PredictSummary) -> Dict[str, Any]:
    checked = checked_item(error, path, number, on_error)
    summary.lines += 1
    summary.skipped += 1
    return {"line": number, "error": str(checked)}


def _plain(value: Any) -> Any:
    """Python values from what pandas hands back (numpy arrays and scalars for lists and floats)."""
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_plain(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return float(value)
    return str(value) if isinstance(value, np.str_) else value


def _write(path: Path, schema: Any, records: Iterator[Dict[str, Any]], rows_per_group: int = 8192) -> None:
    """JSON lines (one record a line, ``fewshot-predict``'s format), or Parquet when ``schema`` is given."""
    if schema is None:
        with open(path, "w", encoding="utf-8") as out:
            for record in records:
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
        return
    import pyarrow as pa
    import pyarrow.parquet as pq

    with pq.ParquetWriter(path, schema) as writer:
        group: List[Dict[str, Any]] = []
        for record in records:
            group.append(record)
            if len(group) >= rows_per_group:
                writer.write_table(pa.Table.from_pylist(group, schema=schema))
                group = []
        if group:
            writer.write_table(pa.Table.from_pylist(group, schema=schema))
