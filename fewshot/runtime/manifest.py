"""The bundle format: file names, graph inputs and output, and the manifest ``fewshot.json`` (no Paddle).

Export writes a manifest with :func:`build_manifest`; the runtime reads it with :func:`read_manifest`,
which checks it as a whole so that a bad bundle fails when it loads, with a message naming the
field, never later at predict time::

    bundle/fewshot.json  {"format_version": 1, "task": "multi_class", "labels": [...],
                          "encoding": {"tokenizer": {...}, "parts": [...], ...}, "files": {...}, ...}

Every file the manifest names must be a plain file name inside the bundle: no separators, no
``..``, not absolute, not a symbolic link.

A bundle exported with ``long_text`` records the strategy, ``"long_text": {"pooling":
"logprob_mean", "overlap": null}``, and is format version 2 (a runtime that cannot window long
texts refuses it rather than silently truncating); other bundles stay version 1.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

from ..documents import read_json_document
from ..errors import BundleError
from ..tasks import Task, task_from_config
from ..template import LongText

MANIFEST_NAME = "fewshot.json"
BUNDLE_FORMAT_VERSION = 2
"""The newest manifest format this runtime reads; version 2 adds ``long_text``."""
PLAIN_FORMAT_VERSION = 1
PADDLE_MODEL_NAME = "model.json"
PADDLE_PARAMS_NAME = "model.pdiparams"
VOCAB_NAME = "vocab.txt"
ONNX_FILES = {"fp32": "model.onnx", "int8": "model.int8.onnx", "fp16": "model.fp16.onnx"}
GRAPH_INPUTS = ("input_ids", "token_type_ids", "position_ids", "attention_mask", "masked_positions")
"""The exported graph's inputs, in the order the static graph takes them."""
LEGACY_GRAPH_INPUTS = ("input_ids", "token_type_ids", "attention_mask", "masked_positions")
"""The inputs of bundles written before templates could set positions (positions 0, 1, …, 2 … 3 …)."""
OUTPUT_NAME = "probs"
MANIFEST_KEYS = (
    "task", "labels", "template", "max_seq_length", "inputs", "output", "encoding", "files"
)
TOKENIZER_KEYS = ("type", "vocab_file", "unk_token")


def build_manifest(
    task: Task,
    label_words: Mapping[str, List[str]],
    template: str,
    encoding: Dict[str, Any],
    files: Dict[str, str],
    export_check: Dict[str, Any],
    info: Mapping[str, Any],
    long_text: Optional[LongText] = None,
) -> Dict[str, Any]:
    """Everything a runtime needs besides the graph and the vocabulary; ``info`` adds provenance
    (``fewshot_version``, ``base_model``, ``verbalizer``); ``long_text`` the window strategy."""
    masks = sum(len(part["ids"]) for part in encoding["parts"] if part["kind"] == "mask")
    square = any("omask_id" in part for part in encoding["parts"])
    windows = {"long_text": long_text.config()} if long_text else {}
    return {
        "format_version": BUNDLE_FORMAT_VERSION if long_text else PLAIN_FORMAT_VERSION,
        **info,
        "task": task.kind,
        "task_config": task.config(),
        "labels": list(task.labels),
        "label_words": dict(label_words),
        "template": template,
        "max_seq_length": encoding["max_seq_length"],
        "inputs": [
            {"name": "input_ids", "dtype": "int64", "shape": ["batch", "sequence"],
             "build": "[CLS] + encoding.parts (text slots tokenized with vocab.txt, truncated longest-first; "
                      "other parts' ids as listed) + [SEP], padded with pad_token_id"},
            {"name": "token_type_ids", "dtype": "int64", "shape": ["batch", "sequence"],
             "build": "0; a part's 'token_type' sets it from there on; after a 'sep' part 1 (encoding.style "
                      "'paddlenlp': unchanged); the final [SEP] continues it ('paddlenlp': 0); padding 0"},
            {"name": "position_ids", "dtype": "int64", "shape": ["batch", "sequence"],
             "build": "0 for [CLS], then counting on from 1 (a part's 'position' restarts the count); the final "
                      "[SEP] continues (encoding.style 'paddlenlp': 0); padding 0"},
            {"name": "attention_mask", "dtype": "int64",
             "shape": ["batch", "sequence", "sequence"] if square else ["batch", "sequence"],
             "build": ("row i: 1 where token i may attend (answer options see only themselves), 0 for padding"
                       if square else "1 for tokens, 0 for padding")},
            {"name": "masked_positions", "dtype": "int64", "shape": ["batch", masks],
             "build": "indices in input_ids of the tokens of the 'mask' parts"},
        ],
        "output": {"name": OUTPUT_NAME, "dtype": "float32", "shape": ["batch", len(task.labels)],
                   "meaning": f"probabilities, columns in 'labels' order ({task.activation} of the logits divided "
                              "by task_config.temperature)"},
        "encoding": encoding,
        **windows,
        "files": files,
        "export_check": export_check,
    }


def read_manifest(bundle_dir: Union[str, os.PathLike]) -> Dict[str, Any]:
    """Read and check a bundle's ``fewshot.json``; every problem is a ``BundleError`` naming the file and field."""
    bundle_dir = Path(bundle_dir)
    if not bundle_dir.is_dir():
        raise BundleError(f"{bundle_dir}: bundle directory does not exist")
    path = bundle_dir / MANIFEST_NAME
    if path.is_symlink():
        raise BundleError(f"{path}: a symbolic link; a bundle holds its files itself")
    manifest = read_json_document(
        path, MANIFEST_KEYS, BUNDLE_FORMAT_VERSION,
        missing_hint=f"not a fewshot bundle (no {MANIFEST_NAME}); create one with fewshot-export",
    )
    labels = manifest["labels"]
    if not isinstance(labels, list) or not labels or not all(isinstance(x, str) and x for x in labels):
        raise BundleError(f"{path}: 'labels' must be a non-empty list of label names")
    if len(set(labels)) != len(labels):
        raise BundleError(f"{path}: 'labels' has repeated names")
    names = graph_inputs(manifest)
    if names not in (GRAPH_INPUTS, LEGACY_GRAPH_INPUTS):
        raise BundleError(f"{path}: inputs {list(names)} are not {list(GRAPH_INPUTS)}")
    if not isinstance(manifest["files"], dict):
        raise BundleError(f"{path}: 'files' must be an object of file names")
    for field, name in manifest["files"].items():
        bundle_file(bundle_dir, name, f"files.{field}")
    tokenizer = manifest["encoding"].get("tokenizer") if isinstance(manifest["encoding"], dict) else None
    if not isinstance(tokenizer, dict) or any(key not in tokenizer for key in TOKENIZER_KEYS):
        raise BundleError(f"{path}: encoding.tokenizer must be an object with {', '.join(TOKENIZER_KEYS)}")
    bundle_file(bundle_dir, tokenizer["vocab_file"], "encoding.tokenizer.vocab_file")
    check_tokenizer_spec(path, tokenizer)
    check_lengths(path, manifest["encoding"])
    if "task_config" in manifest and not isinstance(manifest["task_config"], (dict, type(None))):
        raise BundleError(f"{path}: task_config must be an object, found {type(manifest['task_config']).__name__}")
    manifest_long_text(path, manifest)
    return manifest


def graph_inputs(manifest: Mapping[str, Any]) -> Tuple[str, ...]:
    """The names of the graph's inputs that the manifest lists, in order (``GRAPH_INPUTS`` for new bundles)."""
    items = manifest["inputs"] if isinstance(manifest["inputs"], list) else []
    return tuple(item.get("name") for item in items if isinstance(item, dict))


def _field(path: Path, name: str, value: Any, kind: type, what: str) -> None:
    if not isinstance(value, kind):
        raise BundleError(f"{path}: {name} must be {what}, found {value!r}")


def check_tokenizer_spec(path: Path, spec: Mapping[str, Any]) -> None:
    """Every field of ``encoding.tokenizer`` of the type the runtime uses: ``max_input_chars_per_word: "x"``
    → ``fewshot.json: encoding.tokenizer.max_input_chars_per_word must be an integer ≥ 1, found 'x'``."""
    where = "encoding.tokenizer."
    _field(path, where + "type", spec["type"], str, "a string")
    _field(path, where + "unk_token", spec["unk_token"], str, "a string")
    if "do_lower_case" in spec:
        _field(path, where + "do_lower_case", spec["do_lower_case"], bool, "true or false")
    if "max_input_chars_per_word" in spec:
        value = spec["max_input_chars_per_word"]
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise BundleError(f"{path}: {where}max_input_chars_per_word must be an integer ≥ 1, found {value!r}")
    tokens = spec.get("special_tokens", [])
    if not isinstance(tokens, list) or not all(isinstance(t, str) and t for t in tokens):
        raise BundleError(f"{path}: {where}special_tokens must be a list of non-empty strings, found {tokens!r}")


def check_lengths(path: Path, encoding: Mapping[str, Any]) -> None:
    """``encoding.max_seq_length`` a positive integer, at most the model's position table
    (``encoding.max_position_embeddings``, recorded by export): a longer text would index past it."""
    length = encoding.get("max_seq_length")
    if not isinstance(length, int) or isinstance(length, bool) or length < 1:
        raise BundleError(f"{path}: encoding.max_seq_length must be an integer ≥ 1, found {length!r}")
    positions = encoding.get("max_position_embeddings")
    if positions is None:
        return
    if not isinstance(positions, int) or isinstance(positions, bool) or positions < 1:
        raise BundleError(f"{path}: encoding.max_position_embeddings must be an integer ≥ 1, found {positions!r}")
    if length > positions:
        raise BundleError(f"{path}: encoding.max_seq_length {length} is more than the model's {positions} positions")


def manifest_long_text(path: Path, manifest: Mapping[str, Any]) -> Optional[LongText]:
    """The manifest's long-text strategy (None when texts are truncated); malformed is a ``BundleError``."""
    return LongText.from_config(manifest.get("long_text"), f"{path}: long_text", BundleError)


def manifest_task(bundle_dir: Path, manifest: Mapping[str, Any]) -> Task:
    """The manifest's task (its ``task_config``, or the bare ``task`` kind of early bundles)."""
    config = manifest.get("task_config") or {"task": manifest["task"]}
    if config.get("task") != manifest["task"]:
        raise BundleError(f"{bundle_dir / MANIFEST_NAME}: task_config.task does not match task {manifest['task']!r}")
    return task_from_config(manifest["labels"], config, where=str(bundle_dir / MANIFEST_NAME))


def bundle_file(bundle_dir: Path, name: Any, field: str, must_exist: bool = False, hint: str = "") -> Path:
    """The path of a file the manifest names, confined to the bundle directory.

    ``("bundle", "model.onnx", "files.onnx_fp32")`` → ``bundle/model.onnx``; ``"../x"``, ``"/etc/passwd"``,
    ``"sub/x"`` or a symbolic link are a ``BundleError`` naming ``field``.
    """
    where = f"{bundle_dir / MANIFEST_NAME}: {field}"
    if not isinstance(name, str) or not name or name in (".", ".."):
        raise BundleError(f"{where} must be a file name, got {name!r}")
    if "/" in name or "\\" in name or os.sep in name or (os.altsep and os.altsep in name) or "\x00" in name:
        raise BundleError(f"{where} must be a plain file name inside the bundle, got {name!r}")
    path = bundle_dir / name
    if path.is_symlink():
        raise BundleError(f"{where} names {name!r}, a symbolic link; a bundle holds its files itself")
    if must_exist and not path.is_file():
        raise BundleError(f"{path}: missing{f' ({hint})' if hint else ''}")
    return path


def model_file(bundle_dir: Path, manifest: Mapping[str, Any], precision: str) -> Path:
    """The ONNX model of ``precision``, checked to exist inside the bundle."""
    hint = "export without --no-onnx" if precision == "fp32" else f"export with --{precision}"
    name: Optional[str] = manifest["files"].get(f"onnx_{precision}", ONNX_FILES[precision])
    return bundle_file(bundle_dir, name, f"files.onnx_{precision}", must_exist=True, hint=hint)
