"""Batch inference on an exported bundle with onnxruntime, ``tokenizers`` and numpy — no Paddle.

A bundle (written by ``fewshot-export``) holds ``model.onnx`` (ids → class probabilities),
``vocab.txt`` and the manifest ``fewshot.json``, which says how to turn a text into the graph's
inputs without the template code: the template's fixed parts are stored as token-id lists, so only
the text slots are tokenized here. With the template ``{'text': 'text_a'}主题是{'mask'}{'mask'}``::

    "球赛"  →  input_ids       [CLS] 球 赛 主 题 是 [MASK] [MASK] [SEP]
               token_type_ids  0     0  0  0  0  0  0      0      0
               masked_positions                 [6, 7]

>>> predictor = OnnxPredictor("bundle/", device="cpu", threads=2, batch_size=32)
>>> predictor.predict(["文登区这些公路及危桥将进入封闭施工"])
['news_car']

Importing this module imports neither Paddle nor PaddleNLP.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from .cpu_env import usable_cores as available_cores
from .data import parse_json_object
from .errors import BundleError, DataError, FewshotError

MANIFEST_NAME = "fewshot.json"
BUNDLE_FORMAT_VERSION = 1
PADDLE_MODEL_NAME = "model.json"
PADDLE_PARAMS_NAME = "model.pdiparams"
ONNX_FILES = {"fp32": "model.onnx", "int8": "model.int8.onnx", "fp16": "model.fp16.onnx"}
INPUT_NAMES = ("input_ids", "token_type_ids", "attention_mask", "masked_positions")
OUTPUT_NAME = "probs"
TASKS = ("multi_class", "multi_label", "hierarchical")
MANIFEST_KEYS = (
    "format_version", "task", "labels", "template", "max_seq_length", "inputs", "output", "encoding", "files"
)

ISOLATED_CHARS = r"[\p{P}\p{S}\x{00AD}\x{00B2}\x{00BA}\x{3007}\x{00B5}\x{00D8}\x{014B}\x{01B1}]"
"""Characters PaddleNLP's ``BasicTokenizer`` makes tokens of their own: punctuation, symbols and a few
letters it lists explicitly (``_is_punctuation`` / ``_is_symbol``)."""

TextInput = Union[str, Tuple[str, str], Sequence[str]]


def read_manifest(bundle_dir: Union[str, os.PathLike]) -> Dict[str, Any]:
    """Read and check a bundle's ``fewshot.json``; every problem names the file."""
    bundle_dir = Path(bundle_dir)
    if not bundle_dir.is_dir():
        raise BundleError(f"{bundle_dir}: bundle directory does not exist")
    path = bundle_dir / MANIFEST_NAME
    if not path.is_file():
        raise BundleError(f"{bundle_dir}: not a fewshot bundle (no {MANIFEST_NAME}); create one with fewshot-export")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(manifest, dict):
        raise BundleError(f"{path}: expected a JSON object, found {type(manifest).__name__}")
    missing = [key for key in MANIFEST_KEYS if key not in manifest]
    if missing:
        raise BundleError(f"{path}: missing key(s) {', '.join(missing)}")
    if manifest["task"] not in TASKS:
        raise BundleError(f"{path}: unknown task {manifest['task']!r} (expected {', '.join(TASKS)})")
    version = manifest["format_version"]
    if not isinstance(version, int) or version > BUNDLE_FORMAT_VERSION:
        raise BundleError(
            f"{path}: format version {version!r} is not supported (this fewshot reads {BUNDLE_FORMAT_VERSION})"
        )
    names = [item.get("name") for item in manifest["inputs"] if isinstance(item, dict)]
    if tuple(names) != INPUT_NAMES:
        raise BundleError(f"{path}: inputs {names} are not {list(INPUT_NAMES)}")
    _check_encoding(path, manifest["encoding"])
    return manifest


def _check_encoding(path: Path, encoding: Any) -> None:
    keys = ("tokenizer", "cls_token_id", "sep_token_id", "pad_token_id", "max_seq_length", "parts")
    if not isinstance(encoding, dict) or any(key not in encoding for key in keys):
        raise BundleError(f"{path}: 'encoding' must be an object with {', '.join(keys)}")
    for i, part in enumerate(encoding["parts"]):
        kind = part.get("kind") if isinstance(part, dict) else None
        if kind == "text" and part.get("slot") in ("text_a", "text_b"):
            continue
        if kind in ("hard", "soft", "mask", "sep") and isinstance(part.get("ids"), list):
            continue
        raise BundleError(f"{path}: encoding part {i} is malformed: {part!r}")


def load_wordpiece(vocab_file: Path, spec: Mapping[str, Any]):
    """A ``tokenizers`` WordPiece tokenizer that splits text like PaddleNLP's ``ErnieTokenizer``.

    Same normalisation (control characters dropped, CJK characters split, lower-casing and accent
    stripping when ``do_lower_case``), ``##`` continuations and special tokens written literally in
    the text (``[MASK]``) kept whole. PaddleNLP's basic tokenizer isolates symbols (``℃``, emoji,
    ``+``) as well as punctuation, where BERT's isolates punctuation only, hence the regex split.
    """
    from tokenizers import Regex, Tokenizer, pre_tokenizers
    from tokenizers.models import WordPiece
    from tokenizers.normalizers import BertNormalizer

    if spec.get("type") != "wordpiece":
        where = vocab_file.parent / MANIFEST_NAME
        raise BundleError(f"{where}: tokenizer type {spec.get('type')!r} is not supported (only 'wordpiece')")
    if not vocab_file.is_file():
        raise BundleError(f"{vocab_file}: missing (the bundle's vocabulary)")
    vocab = WordPiece.read_file(str(vocab_file))
    model = WordPiece(
        vocab,
        unk_token=spec["unk_token"],
        continuing_subword_prefix="##",
        max_input_chars_per_word=int(spec.get("max_input_chars_per_word", 100)),
    )
    tokenizer = Tokenizer(model)
    lower = bool(spec.get("do_lower_case", True))
    tokenizer.normalizer = BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=lower
    )
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Split(Regex(ISOLATED_CHARS), behavior="isolated")]
    )
    tokenizer.add_special_tokens(list(spec.get("special_tokens", [])))
    return tokenizer


@dataclass(frozen=True)
class EncodedRow:
    """One example as the graph wants it (before padding)."""

    input_ids: List[int]
    token_type_ids: List[int]
    masked_positions: List[int]


class BundleEncoder:
    """Builds the graph's inputs from texts following the manifest's ``encoding`` section.

    Reproduces ``fewshot.template.Template.encode`` exactly: ``[CLS]`` + parts + ``[SEP]``; only text
    slots are truncated, longest first, one token at a time from the end; the token type becomes 1
    after a ``{'sep'}`` part. Soft tokens carry the ids the export appended to the embedding table.
    """

    def __init__(self, encoding: Mapping[str, Any], tokenizer: Any):
        self.tokenizer = tokenizer
        self.parts: List[Dict[str, Any]] = list(encoding["parts"])
        self.cls_id = int(encoding["cls_token_id"])
        self.sep_id = int(encoding["sep_token_id"])
        self.pad_id = int(encoding["pad_token_id"])
        self.max_seq_length = int(encoding["max_seq_length"])
        self.slots = [part["slot"] for part in self.parts if part["kind"] == "text"]
        fixed = 2 + sum(len(part["ids"]) for part in self.parts if part["kind"] != "text")
        self.text_budget = self.max_seq_length - fixed
        self.num_masks = sum(len(part["ids"]) for part in self.parts if part["kind"] == "mask")
        self.needs_text_b = "text_b" in self.slots

    def tokenize(self, texts: Sequence[str]) -> List[List[int]]:
        """Token ids of each text (no special tokens), as the training tokenizer gives them."""
        return [encoding.ids for encoding in self.tokenizer.encode_batch(list(texts), add_special_tokens=False)]

    def encode_batch(
        self, examples: Sequence[Tuple[str, Optional[str]]], return_errors: bool = False
    ) -> List[Union[EncodedRow, DataError]]:
        """Encode ``(text_a, text_b)`` pairs (``text_b`` None when the template has no text_b slot).

        A pair that cannot fit ``max_seq_length`` raises ``DataError``, or with ``return_errors``
        stands in the result as its ``DataError``.
        """
        ids_a = self.tokenize([a for a, _ in examples])
        ids_b = self.tokenize([b for _, b in examples]) if self.needs_text_b else [None] * len(examples)
        rows: List[Union[EncodedRow, DataError]] = []
        for index, (a, b) in enumerate(zip(ids_a, ids_b)):
            try:
                rows.append(self.encode_ids({"text_a": a, "text_b": b}))
            except DataError as exc:
                if not return_errors:
                    raise DataError(f"input {index}: {exc}") from None
                rows.append(exc)
        return rows

    def encode_ids(self, slot_ids: Mapping[str, Optional[List[int]]]) -> EncodedRow:
        """Assemble one row from the token ids of its text slots."""
        texts = {i: list(slot_ids[part["slot"]]) for i, part in enumerate(self.parts) if part["kind"] == "text"}
        self._truncate(texts)
        input_ids = [self.cls_id]
        token_type_ids = [0]
        masked_positions: List[int] = []
        token_type = 0
        for i, part in enumerate(self.parts):
            ids = texts[i] if part["kind"] == "text" else part["ids"]
            if part["kind"] == "mask":
                masked_positions.extend(range(len(input_ids), len(input_ids) + len(ids)))
            input_ids.extend(ids)
            token_type_ids.extend([token_type] * len(ids))
            if part["kind"] == "sep":
                token_type = 1
        input_ids.append(self.sep_id)
        token_type_ids.append(token_type)
        return EncodedRow(input_ids, token_type_ids, masked_positions)

    def _truncate(self, texts: Dict[int, List[int]]) -> None:
        """Longest-first truncation, as ``Template._truncate`` does it, but removing runs at once.

        While the longest truncatable slot is longer than every other one it alone loses tokens, so
        it can lose up to the difference in one step; ties go to the earliest slot, one token each.
        """
        excess = sum(len(ids) for ids in texts.values()) - self.text_budget
        while excess > 0:
            candidates = [i for i in texts if self.parts[i].get("truncate", True) and len(texts[i]) > 1]
            if not candidates:
                raise DataError(
                    f"text does not fit max_seq_length={self.max_seq_length} and the remaining text slots "
                    "are marked 'truncate': False"
                )
            longest = max(candidates, key=lambda i: len(texts[i]))
            others = [len(texts[i]) for i in candidates if i != longest]
            floor = max(others + [1])
            step = min(excess, max(len(texts[longest]) - floor, 1))
            del texts[longest][-step:]
            excess -= step

    def pad(self, rows: Sequence[EncodedRow]) -> Dict[str, np.ndarray]:
        """The graph's feed: int64 arrays padded to the longest row of this batch."""
        length = max(len(row.input_ids) for row in rows)
        input_ids = np.full((len(rows), length), self.pad_id, dtype=np.int64)
        token_type_ids = np.zeros((len(rows), length), dtype=np.int64)
        attention_mask = np.zeros((len(rows), length), dtype=np.int64)
        for r, row in enumerate(rows):
            n = len(row.input_ids)
            input_ids[r, :n] = row.input_ids
            token_type_ids[r, :n] = row.token_type_ids
            attention_mask[r, :n] = 1
        masked_positions = np.array([row.masked_positions for row in rows], dtype=np.int64)
        return {
            "input_ids": input_ids,
            "token_type_ids": token_type_ids,
            "attention_mask": attention_mask,
            "masked_positions": masked_positions,
        }


def _session_options(threads: Optional[int]):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = int(threads) if threads else available_cores()
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return options


def _providers(device: str) -> List[str]:
    import onnxruntime as ort

    if device == "cpu":
        return ["CPUExecutionProvider"]
    if device == "gpu":
        available = ort.get_available_providers()
        if "CUDAExecutionProvider" not in available:
            raise FewshotError(
                "device='gpu' needs onnxruntime-gpu (CUDAExecutionProvider); "
                f"this onnxruntime has {', '.join(available)}"
            )
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    raise FewshotError(f"device must be 'cpu' or 'gpu', got {device!r}")


class OnnxPredictor:
    """Predicts class probabilities for texts with a bundle's ONNX model.

    ``precision`` picks the model file: ``fp32`` (``model.onnx``), ``int8`` (dynamic quantisation,
    for CPU) or ``fp16`` (for GPU). Texts are sorted by token length and batched, so a batch is
    padded only to its own longest text; results come back in input order.
    """

    def __init__(
        self,
        bundle_dir: Union[str, os.PathLike],
        device: str = "cpu",
        threads: Optional[int] = None,
        batch_size: int = 32,
        precision: str = "fp32",
    ):
        if batch_size < 1:
            raise FewshotError(f"batch_size must be at least 1, got {batch_size}")
        if precision not in ONNX_FILES:
            raise FewshotError(f"precision must be one of {', '.join(ONNX_FILES)}, got {precision!r}")
        providers = _providers(device)
        self.bundle_dir = Path(bundle_dir)
        self.manifest = read_manifest(self.bundle_dir)
        self.labels: List[str] = list(self.manifest["labels"])
        self.task: str = self.manifest["task"]
        self.batch_size = int(batch_size)
        encoding = self.manifest["encoding"]
        vocab_file = self.bundle_dir / encoding["tokenizer"].get("vocab_file", "vocab.txt")
        tokenizer = load_wordpiece(vocab_file, encoding["tokenizer"])
        self.encoder = BundleEncoder(encoding, tokenizer)
        model_path = self.bundle_dir / self.manifest["files"].get(f"onnx_{precision}", ONNX_FILES[precision])
        self.session = self._open_session(model_path, precision, providers, threads)

    @staticmethod
    def _open_session(model_path: Path, precision: str, providers: List[str], threads: Optional[int]) -> Any:
        """An onnxruntime session for ``model_path``, whose inputs and output must be the bundle's."""
        import onnxruntime as ort

        if not model_path.is_file():
            hint = "export without --no-onnx" if precision == "fp32" else f"export with --{precision}"
            raise BundleError(f"{model_path}: missing ({hint})")
        try:
            session = ort.InferenceSession(str(model_path), _session_options(threads), providers=providers)
        except Exception as exc:  # onnxruntime raises its own exception types for corrupt files
            raise BundleError(f"{model_path}: cannot load the ONNX model ({exc})") from None
        if providers[0] not in session.get_providers():
            raise FewshotError(f"{model_path}: onnxruntime could not start {providers[0]} (CUDA/cuDNN libraries?)")
        inputs = [i.name for i in session.get_inputs()]
        outputs = [o.name for o in session.get_outputs()]
        if sorted(inputs) != sorted(INPUT_NAMES) or outputs != [OUTPUT_NAME]:
            raise BundleError(
                f"{model_path}: graph inputs {inputs} / outputs {outputs} do not match {MANIFEST_NAME} "
                f"({list(INPUT_NAMES)} / ['{OUTPUT_NAME}'])"
            )
        return session

    def _as_pair(self, item: TextInput, index: int) -> Tuple[str, Optional[str]]:
        if isinstance(item, str):
            pair: Tuple[Any, Any] = (item, None)
        elif isinstance(item, (tuple, list)) and len(item) in (1, 2):
            pair = (item[0], item[1] if len(item) == 2 else None)
        else:
            raise DataError(f"input {index}: expected a text or a (text_a, text_b) pair, found {type(item).__name__}")
        if not all(isinstance(t, str) for t in pair if t is not None):
            raise DataError(f"input {index}: texts must be strings")
        if self.encoder.needs_text_b and pair[1] is None:
            raise DataError(f"input {index}: the template uses text_b; pass (text_a, text_b) pairs")
        return pair

    def encode(self, inputs: Sequence[TextInput]) -> List[EncodedRow]:
        """Encode texts (or pairs) into unpadded rows of graph inputs."""
        return self.encoder.encode_batch([self._as_pair(item, i) for i, item in enumerate(inputs)])

    def run_rows(self, rows: Sequence[EncodedRow]) -> np.ndarray:
        """Probabilities for encoded rows: length-sorted batches, results in row order."""
        probs = np.empty((len(rows), len(self.labels)), dtype=np.float32)
        order = sorted(range(len(rows)), key=lambda i: len(rows[i].input_ids))
        for start in range(0, len(order), self.batch_size):
            index = order[start : start + self.batch_size]
            feed = self.encoder.pad([rows[i] for i in index])
            probs[index] = self.session.run([OUTPUT_NAME], feed)[0]
        return probs

    def predict_proba(self, inputs: Sequence[TextInput]) -> np.ndarray:
        """Class probabilities ``[n, num_labels]``, columns in ``self.labels`` order."""
        if len(inputs) == 0:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        return self.run_rows(self.encode(inputs))

    def predict(self, inputs: Sequence[TextInput]) -> List[Any]:
        """The predicted label of each text, as ``PromptClassifier.predict`` gives it.

        multi_class: the most probable label; multi_label: the list of labels at or above their
        thresholds; hierarchical: the most probable consistent node path.
        """
        return self.decode(self.predict_proba(inputs))

    def decode(self, probs: np.ndarray) -> List[Any]:
        """Labels from probabilities ``[n, num_labels]``, by the bundle's task and thresholds."""
        if self.task == "multi_class":
            return [self.labels[i] for i in probs.argmax(axis=-1)]
        config = self.manifest.get("task_config", {})
        if self.task == "multi_label":
            chosen = probs >= np.asarray(config.get("thresholds", 0.5), dtype=np.float32)
            return [[self.labels[c] for c in np.flatnonzero(row)] for row in chosen]
        from .hierarchy import HierarchyTask

        return HierarchyTask.from_config(config).decode(probs)

    def scores(self, probs: np.ndarray, labels: Sequence[Any]) -> List[Any]:
        """The probability of each decoded label (a list of them for multi-label rows)."""
        column = {label: i for i, label in enumerate(self.labels)}
        return [
            [float(row[column[x]]) for x in label] if isinstance(label, list) else float(row[column[label]])
            for row, label in zip(probs, labels)
        ]


def top_k(probs: np.ndarray, labels: Sequence[str], k: int) -> List[List[Tuple[str, float]]]:
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
    """

    def __init__(self, path: Union[str, os.PathLike], needs_text_b: bool, fields: Optional[Mapping[str, str]] = None):
        self.json = Path(path).suffix.lower() in (".json", ".jsonl")
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
        texts = [self._text(f"column {i + 1}", value) for i, value in enumerate(columns)]
        return texts[0], texts[1] if self.needs_text_b else None

    def _parse_json(self, line: str) -> Tuple[str, Optional[str]]:
        row = parse_json_object(line)
        slots = ("text_a", "text_b") if self.needs_text_b else ("text_a",)
        texts = []
        for slot in slots:
            key = self.fields[slot]
            if key not in row:
                raise DataError(f"missing key '{key}' (for {slot}; choose the key with --fields {slot}=KEY)")
            value = row[key]
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                value = str(value)
            texts.append(self._text(f"key '{key}'", value))
        return texts[0], texts[1] if self.needs_text_b else None

    @staticmethod
    def _text(where: str, value: Any) -> str:
        if not isinstance(value, str):
            raise DataError(f"{where} must be a string, found {type(value).__name__}")
        value = value.strip()
        if not value:
            raise DataError(f"{where} is empty")
        return value


def iter_lines(handle: IO[bytes]) -> Iterator[Tuple[int, int, Union[str, DataError]]]:
    """Yield ``(line_number, bytes_read, text or DataError)`` for each line of a binary stream.

    Reads one line at a time (constant memory); accepts a UTF-8 BOM and LF or CRLF line endings.
    """
    for number, raw in enumerate(handle, start=1):
        size = len(raw)
        if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        raw = raw.rstrip(b"\r\n")
        try:
            yield number, size, raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield number, size, DataError(f"not valid UTF-8 (byte 0x{raw[exc.start]:02x})")


def predict_file(
    predictor: OnnxPredictor,
    input_path: Union[str, os.PathLike],
    output_path: Union[str, os.PathLike],
    k: int = 1,
    fields: Optional[Mapping[str, str]] = None,
    on_error: str = "fail",
    chunk_size: int = 2048,
    progress: bool = True,
) -> PredictSummary:
    """Predict every line of ``input_path`` into JSON lines at ``output_path``, in input order.

    Reads and predicts ``chunk_size`` lines at a time, so memory stays flat for files of any size.
    A malformed line raises ``DataError`` naming it (``on_error='fail'``), or with ``on_error='skip'``
    is reported on stderr and written as ``{"line": N, "error": "..."}``, so the output always has one
    line per input line. The output is written to a temporary file and renamed when complete.
    """
    from tqdm import tqdm

    if on_error not in ("fail", "skip"):
        raise FewshotError(f"on_error must be 'fail' or 'skip', got {on_error!r}")
    input_path, output_path = Path(input_path), Path(output_path)
    if not input_path.is_file():
        raise DataError(f"{input_path}: file does not exist")
    parser = LineParser(input_path, predictor.encoder.needs_text_b, fields)
    summary = PredictSummary()
    tmp_path = output_path.with_name(f".{output_path.name}.tmp-{os.getpid()}")
    try:
        with open(input_path, "rb") as src, open(tmp_path, "w", encoding="utf-8") as out, tqdm(
            total=input_path.stat().st_size, unit="B", unit_scale=True, disable=not progress, file=sys.stderr,
            desc="fewshot-predict",
        ) as bar:
            chunk: List[Tuple[int, Any]] = []
            for number, size, text in iter_lines(src):
                chunk.append((number, _parse(parser, text)))
                bar.update(size)
                if len(chunk) >= chunk_size:
                    _predict_chunk(predictor, chunk, k, on_error, input_path, out, summary)
                    chunk = []
            if chunk:
                _predict_chunk(predictor, chunk, k, on_error, input_path, out, summary)
        os.replace(tmp_path, output_path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
    return summary


def _parse(parser: LineParser, text: Union[str, DataError]) -> Union[Tuple[str, Optional[str]], DataError]:
    """The line's text pair, or the DataError saying what is wrong with it."""
    if isinstance(text, DataError):
        return text
    try:
        return parser.parse(text)
    except DataError as exc:
        return exc


def _checked(item: Any, path: Path, number: int, on_error: str) -> Any:
    """``item`` unless it is an error: then raise it naming the line, or report it and keep it as a record."""
    if not isinstance(item, DataError):
        return item
    error = DataError(f"{path} line {number}: {item}")
    if on_error == "fail":
        raise error
    print(f"fewshot-predict: {error} (skipped)", file=sys.stderr)
    return error


def _predictions(predictor: OnnxPredictor, rows: List[EncodedRow], k: int) -> Iterator[Dict[str, Any]]:
    """``label``, ``score`` and ``top_k`` of each row, in row order."""
    if not rows:
        return iter(())
    probs = predictor.run_rows(rows)
    labels = predictor.decode(probs)
    ranked = top_k(probs, predictor.labels, k)
    return (
        {"label": label, "score": score, "top_k": [{"label": name, "score": value} for name, value in best]}
        for label, score, best in zip(labels, predictor.scores(probs, labels), ranked)
    )


def _predict_chunk(
    predictor: OnnxPredictor, chunk: List[Tuple[int, Any]], k: int, on_error: str, path: Path,
    out: IO[str], summary: PredictSummary,
) -> None:
    """Encode, predict and write one chunk of ``(line number, text pair or DataError)``, in line order."""
    pairs = [item for _, item in chunk if not isinstance(item, DataError)]
    encoded = iter(predictor.encoder.encode_batch(pairs, return_errors=True))
    items = [(n, item if isinstance(item, DataError) else next(encoded)) for n, item in chunk]
    items = [(n, _checked(item, path, n, on_error)) for n, item in items]
    results = _predictions(predictor, [row for _, row in items if isinstance(row, EncodedRow)], k)
    for number, item in items:
        failed = isinstance(item, DataError)
        record = {"line": number, **({"error": str(item)} if failed else next(results))}
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
        summary.lines += 1
        summary.skipped += failed
