"""Batch inference on an exported bundle with an inference engine, ``tokenizers`` and numpy — no Paddle.

A bundle (written by ``fewshot-export``) holds ``model.onnx`` (ids → class probabilities),
``vocab.txt`` and the manifest ``fewshot.json``, from which the runtime rebuilds the template
encoder training used (``fewshot.template.TemplateEncoder``) and the task that decodes the
probabilities (``fewshot.tasks``)::

>>> predictor = OnnxPredictor("bundle/", device="cpu", threads=2, batch_size=32)
>>> predictor.predict(["文登区这些公路及危桥将进入封闭施工"])
['news_car']
>>> predictor.predict("文登区这些公路及危桥将进入封闭施工")     # a str is one text
['news_car']
>>> OnnxPredictor("bundle/", engine="openvino", precision="bf16").predict(["文登区这些公路及危桥将进入封闭施工"])
['news_car']
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

import numpy as np

from ..cpu_env import usable_cores
from ..data.inputs import TextInputs, prediction_pairs
from ..errors import BundleError, FewshotError, TemplateError
from ..numbers import check_number
from ..tasks.pooling import pool_windows
from ..template import Row, TemplateEncoder, flatten_windows
from .engines import DEFAULT_ENGINE, DEFAULT_PRECISION, EngineSession, auto_allows, choose_engine
from .manifest import (
    MANIFEST_NAME, ONNX_FILES, OUTPUT_NAME, bundle_file, graph_inputs, manifest_long_text, manifest_task, model_file,
    read_manifest,
)
from .prefetch import prefetched
from .tokenizer import batch_tokenize, load_wordpiece


def bundle_encoder(bundle_dir: Union[str, os.PathLike], manifest: Mapping[str, Any]) -> TemplateEncoder:
    """The template encoder a bundle's manifest describes, over the bundle's tokenizer, with every id
    checked against the vocabulary: what ``OnnxPredictor`` encodes with, and what feeds the bundle's
    Paddle static graph without onnxruntime (docs/deployment.md §4).

    >>> encoder = bundle_encoder("bundle/", read_manifest("bundle/"))
    >>> encoder.pad(encoder.encode_batch([("文登区这些公路及危桥将进入封闭施工", None)]))["input_ids"].shape
    (1, 29)
    """
    bundle_dir = Path(bundle_dir)
    where = str(bundle_dir / MANIFEST_NAME)
    encoding = manifest["encoding"]
    spec = encoding["tokenizer"]
    vocab = bundle_file(bundle_dir, spec["vocab_file"], "encoding.tokenizer.vocab_file")
    tokenizer = load_wordpiece(vocab, spec)
    encoder = TemplateEncoder.from_spec(encoding, batch_tokenize(tokenizer), where=where, error=BundleError)
    if encoder.num_masks < 1:
        raise BundleError(f"{where}: the encoding has no 'mask' part")
    vocab_size = max(tokenizer.get_vocab(with_added_tokens=False).values()) + 1
    vocab_rows = encoding.get("vocab_rows", vocab_size)
    if not isinstance(vocab_rows, int) or vocab_rows < vocab_size:
        raise BundleError(f"{where}: encoding.vocab_rows is {vocab_rows!r}, but {vocab.name} gives ids up to "
                          f"{vocab_size - 1} (a token repeated or added?)")
    rows = vocab_rows + encoder.num_soft_tokens
    if encoder.max_id() >= rows:
        raise BundleError(
            f"{where}: the encoding uses token id {encoder.max_id()}, but the vocabulary and soft tokens "
            f"have only {rows} ids"
        )
    return encoder


PREDICT_CHUNK = 2048
"""Texts tokenised at a time by ``predict_proba`` (and lines read at a time by ``predict_file``)."""


class OnnxPredictor:
    """Predicts class probabilities for texts with a bundle's ONNX model.

    ``engine`` runs the graph: ``onnxruntime`` (default), ``openvino``, or ``auto`` (the fastest
    installed, see ``fewshot.runtime.engines``). ``precision`` is ``fp32`` (``model.onnx``), ``int8``
    (``model.int8.onnx``, for CPU), ``bf16`` (``model.onnx`` computed in bfloat16; OpenVINO on CPUs
    with native bf16), ``fp16`` (``model.fp16.onnx``, for GPU) or ``auto``; ``self.engine`` and
    ``self.precision`` say what runs. ``throughput=True`` (a batch job) lets the engine keep several
    batches in flight; a server that runs one batch at a time wants ``False``. Texts are sorted by token length and batched, so a batch is
    padded only to its own longest text; results come back in input order. The bundle is checked
    as a whole when it loads (manifest, vocabulary, ids, graph inputs and output size). A bundle
    exported with ``long_text`` classifies a text longer than the template's room by windows whose
    probabilities are pooled, exactly as the classifier it came from.
    ``spin=False`` keeps onnxruntime's worker threads from spinning on the cores between runs (a
    server wants them free for its event loop; a batch job keeps the default).
    """

    def __init__(
        self,
        bundle_dir: Union[str, os.PathLike],
        device: str = "cpu",
        threads: Optional[int] = None,
        batch_size: int = 32,
        precision: str = DEFAULT_PRECISION,
        spin: bool = True,
        engine: str = DEFAULT_ENGINE,
        throughput: bool = True,
    ):
        if not isinstance(batch_size, int) or batch_size < 1:
            raise FewshotError(f"batch_size must be at least 1, got {batch_size}")
        if threads is not None:
            check_number("threads", threads, low=1, high=usable_cores())
        if device not in ("cpu", "gpu"):
            raise FewshotError(f"device must be 'cpu' or 'gpu', got {device!r}")
        self.bundle_dir = Path(bundle_dir)
        self.manifest = read_manifest(self.bundle_dir)
        self.task = manifest_task(self.bundle_dir, self.manifest)
        self.labels: List[str] = list(self.task.labels)
        self.batch_size = batch_size
        self.encoder = bundle_encoder(self.bundle_dir, self.manifest)
        self.input_names = graph_inputs(self.manifest)
        self.long_text = manifest_long_text(self.bundle_dir / MANIFEST_NAME, self.manifest)
        if self.long_text is not None:
            try:
                self.encoder.check_long_text()
            except TemplateError as exc:
                raise BundleError(f"{self.bundle_dir / MANIFEST_NAME}: {exc}") from None
        allows = auto_allows(self.manifest.get("export_check") or {})
        self.engine, self.precision = choose_engine(engine, precision, device, self._has_model, allows)
        path = model_file(self.bundle_dir, self.manifest, self.precision.model)
        self.session = self._checked(self.engine.open(path, self.precision, device, threads, spin, throughput), path)

    def _has_model(self, model: str) -> bool:
        """Whether the bundle has the ONNX model of ``model`` (a key of ``ONNX_FILES``)."""
        name = self.manifest["files"].get(f"onnx_{model}")
        return isinstance(name, str) and (self.bundle_dir / name).is_file() and model in ONNX_FILES

    @property
    def classes_(self) -> np.ndarray:
        """The label of each probability column (scikit-learn's name)."""
        return np.array(self.labels, dtype=object)

    def _checked(self, session: EngineSession, path: Path) -> EngineSession:
        """``session`` when its graph's inputs and output are the bundle's."""
        inputs, outputs = session.inputs, session.outputs
        if sorted(inputs) != sorted(self.input_names) or list(outputs) != [OUTPUT_NAME]:
            raise BundleError(
                f"{path}: graph inputs {list(inputs)} / outputs {list(outputs)} do not match "
                f"{MANIFEST_NAME} ({list(self.input_names)} / ['{OUTPUT_NAME}'])"
            )
        shape, width = outputs[OUTPUT_NAME], outputs[OUTPUT_NAME][-1] if outputs[OUTPUT_NAME] else None
        if len(shape) != 2 or not isinstance(width, int):
            opset = self.manifest.get("export_check", {}).get("onnx_opset", "?")
            hint = (f" (a model exported at ONNX opset {opset}, which OpenVINO misreads below 18: export the bundle "
                    "again)" if isinstance(opset, int) and opset < 18 else "")
            raise BundleError(f"{path}: the output {OUTPUT_NAME} has shape {shape}, not [batch, {len(self.labels)}] "
                              f"in {self.engine.name}{hint}")
        if width != len(self.labels):
            raise BundleError(f"{path}: the model gives {width} probabilities, but {MANIFEST_NAME} lists "
                              f"{len(self.labels)} labels")
        masks = inputs["masked_positions"][-1]
        if isinstance(masks, int) and masks != self.encoder.num_masks:
            raise BundleError(f"{path}: the model reads {masks} mask positions, but {MANIFEST_NAME}'s template "
                              f"has {self.encoder.num_masks}")
        return session

    def encode(self, inputs: TextInputs) -> List[Row]:
        """Encode texts (or pairs) into unpadded rows of model inputs (a long text's windows in turn)."""
        return flatten_windows(self.encode_texts(prediction_pairs(inputs, self.encoder.needs_text_b)))[0]

    def encode_texts(self, pairs: Sequence[Any], return_errors: bool = False) -> List[Any]:
        """The rows of each ``(text_a, text_b)`` pair: one, or one per window with ``long_text``; with
        ``return_errors`` a pair that cannot be encoded stands as its ``DataError``."""
        return self.encoder.encode_texts(pairs, self.long_text, return_errors=return_errors)

    def run_texts(self, items: Sequence[Sequence[Row]]) -> np.ndarray:
        """Probabilities ``[texts, labels]`` of encoded texts (lists of rows, see :meth:`encode_texts`);
        the windows of a long text pooled by the bundle's strategy."""
        rows, sizes = flatten_windows(items)
        return self.pool(self.run_rows(rows), sizes)

    def pool(self, probs: np.ndarray, sizes: Sequence[int]) -> np.ndarray:
        """Per-text probabilities from per-row ones (``sizes[i]`` rows for text ``i``): a long text's
        windows pooled by the bundle's strategy; without ``long_text`` the rows themselves."""
        if self.long_text is None:
            return probs
        return pool_windows(self.task.activation, probs, sizes, self.long_text.pooling)

    def run_rows(self, rows: Sequence[Row]) -> np.ndarray:
        """Probabilities for encoded rows: length-sorted batches (the next one padded while the engine
        runs the current ones), results in row order."""
        probs = np.empty((len(rows), len(self.labels)), dtype=np.float32)
        order = sorted(range(len(rows)), key=lambda i: len(rows[i]["input_ids"]))
        batches = [order[start : start + self.batch_size] for start in range(0, len(order), self.batch_size)]
        feeds = (self.encoder.pad([rows[i] for i in index]) for index in batches)
        feeds = prefetched(feeds) if len(batches) > 1 else feeds  # a helper thread only where there is overlap
        for index, batch_probs in zip(batches, self.session.run_many(feeds)):
            probs[index] = batch_probs
        return probs

    def run_batch(self, batch: Mapping[str, np.ndarray]) -> np.ndarray:
        """Probabilities of one padded batch (``TemplateEncoder.pad``): the graph run on its inputs."""
        return self.session.run({name: batch[name] for name in self.input_names})

    def predict_proba(self, inputs: TextInputs) -> np.ndarray:
        """Class probabilities ``[n, num_labels]``, columns in ``self.labels`` order. Texts are taken
        ``PREDICT_CHUNK`` at a time, the next chunk tokenised while the current one runs."""
        pairs = prediction_pairs(inputs, self.encoder.needs_text_b)
        chunks = [pairs[start : start + PREDICT_CHUNK] for start in range(0, len(pairs), PREDICT_CHUNK)]
        encoded = (self.encode_texts(chunk) for chunk in chunks)
        probs = [self.run_texts(items) for items in (prefetched(encoded) if len(chunks) > 1 else encoded)]
        return np.concatenate(probs) if probs else np.zeros((0, len(self.labels)), dtype=np.float32)

    def predict(self, inputs: TextInputs) -> List[Any]:
        """The predicted label of each text, as ``PromptClassifier.predict`` gives it.

        Single-label: the most probable label; multi-label: the list of labels at or above their
        thresholds; hierarchical: the most probable consistent node path.
        """
        return self.decode(self.predict_proba(inputs))

    def decode(self, probs: np.ndarray) -> List[Any]:
        """Labels from probabilities ``[n, num_labels]``, by the bundle's task and thresholds."""
        return self.task.decode(probs)

    def scores(self, probs: np.ndarray, labels: Sequence[Any]) -> List[Any]:
        """The probability of each decoded label (a list of them for multi-label rows)."""
        return self.task.scores(probs, labels)

    def describe(self) -> Dict[str, Any]:
        """A summary of the bundle: task, labels, template, sizes and provenance."""
        keys = ("format_version", "fewshot_version", "task", "template", "max_seq_length", "base_model", "verbalizer",
                "long_text")
        return {**{k: self.manifest.get(k) for k in keys}, "labels": self.labels,
                "temperature": self.task.temperature, "files": dict(self.manifest["files"]),
                "engine": self.engine.name, "precision": self.precision.name}
