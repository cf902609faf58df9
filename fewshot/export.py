"""Export a trained prompt classifier to a deployable bundle.

``export_bundle(checkpoint, "bundle/")`` writes, atomically (a failed export leaves the previous
bundle in place)::

    bundle/
      model.json, model.pdiparams   Paddle static graph (PIR): ids → class probabilities
      model.onnx                    the same graph, converted with paddle2onnx
      model.int8.onnx               --int8: dynamically quantised MatMuls (CPU)
      model.fp16.onnx               --fp16: float16 weights and activations (GPU)
      vocab.txt, tokenizer_config.json, special_tokens_map.json
      fewshot.json                  manifest: labels, template, inputs and how to build them

The graph is the whole prompt model — PLM, soft prompt, verbalizer and softmax — so inference needs
neither the pretrained checkpoint nor the template code. The soft prompt does not depend on the
input, so its encoder (LSTM or MLP) runs once here and its output rows are appended to the word
embedding table: soft tokens become ordinary token ids ``vocab_size, vocab_size+1, …``.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from . import __version__
from .atomic import atomic_directory
from .errors import BundleError
from .inference import (
    BUNDLE_FORMAT_VERSION,
    INPUT_NAMES,
    MANIFEST_NAME,
    ONNX_FILES,
    OUTPUT_NAME,
    PADDLE_MODEL_NAME,
    PADDLE_PARAMS_NAME,
    BundleEncoder,
    load_wordpiece,
)
from .encoder_forward import encode_at_positions
from .model import PromptModel

if TYPE_CHECKING:
    from .classifier import PromptClassifier

DEFAULT_OPSET = 14
TOLERANCE = 1e-4
"""Largest difference in probabilities allowed between the exported fp32 graph and the Paddle model."""
PADDLE_PREFIX = PADDLE_MODEL_NAME[: -len(".json")]


class InferenceGraph(nn.Layer):
    """The prompt model's inference path as one layer: token ids → probabilities.

    Shares the PLM encoder, the verbalizer and the calibration prior with ``model``; the word
    embedding table is the PLM's own, or (with soft tokens) a copy with the soft prompt's rows
    appended. ``activation`` is ``softmax`` (one label per text) or ``sigmoid`` (independent labels:
    multi-label and hierarchical tasks), as ``PromptClassifier.predict_proba`` applies them.
    """

    def __init__(self, model: PromptModel, activation: str = "softmax"):
        super().__init__()
        self.encoder = model.encoder
        self.verbalizer = model.verbalizer
        self.activation = activation
        self.calibrated = bool(getattr(model, "calibrated", False))
        if self.calibrated:
            self.register_buffer("log_prior", model.log_prior, persistable=True)
        words = model.plm.get_input_embeddings().weight
        if model.soft_prompt is None:
            self.word_embeddings = words
        else:
            table = extended_embedding_table(model)
            self.word_embeddings = self.create_parameter(
                list(table.shape), default_initializer=nn.initializer.Assign(table)
            )

    def forward(
        self,
        input_ids: paddle.Tensor,
        token_type_ids: paddle.Tensor,
        attention_mask: paddle.Tensor,
        masked_positions: paddle.Tensor,
    ) -> paddle.Tensor:
        embeds = F.embedding(input_ids, self.word_embeddings)
        hidden = encode_at_positions(self.encoder, masked_positions, attention_mask,
                                     inputs_embeds=embeds, token_type_ids=token_type_ids)
        logits = self.verbalizer(hidden)
        if self.calibrated:
            logits = logits - self.log_prior
        return F.softmax(logits, axis=-1) if self.activation == "softmax" else F.sigmoid(logits)


@paddle.no_grad()
def extended_embedding_table(model: PromptModel) -> np.ndarray:
    """The word embeddings with the soft prompt's ``S`` rows appended: ``[vocab + S, hidden]``.

    ``SoftPrompt()`` returns ``[S + 1, hidden]`` with a zero row 0; soft token ``k`` (1-based) gets
    row ``vocab + k - 1``. Call with the model in eval mode.
    """
    soft = model.soft_prompt().numpy()[1:]
    words = model.plm.get_input_embeddings().weight.numpy()
    return np.concatenate([words, soft.astype(words.dtype)], axis=0)


def encoding_spec(clf: "PromptClassifier") -> Dict[str, Any]:
    """The manifest's ``encoding``: how ``OnnxPredictor`` builds inputs without the template code."""
    template, tok = clf.template, clf.tokenizer
    vocab_rows = clf.model.plm.get_input_embeddings().weight.shape[0]
    fixed = iter(template._fixed_ids)
    parts: List[Dict[str, Any]] = []
    next_soft = vocab_rows
    for part in template.parts:
        ids = next(fixed)
        if part.kind == "text":
            parts.append({"kind": "text", "slot": part.value, "truncate": part.truncate})
            continue
        if part.kind == "soft":
            ids = list(range(next_soft, next_soft + len(ids)))
            next_soft += len(ids)
        parts.append({"kind": part.kind, "ids": [int(i) for i in ids]})
    return {
        "tokenizer": tokenizer_spec(tok),
        "cls_token_id": tok.cls_token_id,
        "sep_token_id": tok.sep_token_id,
        "pad_token_id": tok.pad_token_id,
        "vocab_rows": int(vocab_rows),
        "num_soft_tokens": template.num_soft_tokens,
        "max_seq_length": template.max_seq_length,
        "parts": parts,
    }


def tokenizer_spec(tokenizer: Any) -> Dict[str, Any]:
    """How to rebuild ``tokenizer`` with the ``tokenizers`` library (WordPiece tokenizers only)."""
    wordpiece = getattr(tokenizer, "wordpiece_tokenizer", None)
    basic = getattr(tokenizer, "basic_tokenizer", None)
    if wordpiece is None or basic is None:
        raise BundleError(
            f"export: tokenizer {type(tokenizer).__name__} is not a WordPiece (BERT/ERNIE) tokenizer; "
            "the ONNX predictor supports those only"
        )
    special = getattr(tokenizer, "unique_no_split_tokens", None) or tokenizer.all_special_tokens
    return {
        "type": "wordpiece",
        "vocab_file": "vocab.txt",
        "do_lower_case": bool(basic.do_lower_case),
        "unk_token": tokenizer.unk_token,
        "special_tokens": sorted(special),
        "max_input_chars_per_word": int(getattr(wordpiece, "max_input_chars_per_word", 100)),
    }


def task_config(clf: "PromptClassifier") -> Dict[str, Any]:
    """``{"task": "multi_class"}``, or the multi-label / hierarchical task with its thresholds."""
    task = getattr(clf, "task", None)
    return task.config() if task is not None else {"task": "multi_class"}


def build_manifest(
    clf: "PromptClassifier", encoding: Dict[str, Any], files: Dict[str, str], export_check: Dict[str, Any]
) -> Dict[str, Any]:
    """Everything a runtime needs besides the graph and the vocabulary."""
    masks = clf.template.num_masks
    task = task_config(clf)
    return {
        "format_version": BUNDLE_FORMAT_VERSION,
        "fewshot_version": __version__,
        "task": task["task"],
        "task_config": task,
        "labels": list(clf.labels),
        "label_words": clf.label_words,
        "template": clf.template.text,
        "verbalizer": clf.verbalizer_kind,
        "base_model": clf.model_name,
        "max_seq_length": clf.max_seq_length,
        "inputs": [
            {"name": "input_ids", "dtype": "int64", "shape": ["batch", "sequence"],
             "build": "[CLS] + encoding.parts (text slots tokenized with vocab.txt, truncated longest-first; "
                      "other parts' ids as listed) + [SEP], padded with pad_token_id"},
            {"name": "token_type_ids", "dtype": "int64", "shape": ["batch", "sequence"],
             "build": "0, and 1 for the tokens after a 'sep' part; padding 0"},
            {"name": "attention_mask", "dtype": "int64", "shape": ["batch", "sequence"],
             "build": "1 for tokens, 0 for padding"},
            {"name": "masked_positions", "dtype": "int64", "shape": ["batch", masks],
             "build": "indices in input_ids of the tokens of the 'mask' parts"},
        ],
        "output": {"name": OUTPUT_NAME, "dtype": "float32", "shape": ["batch", len(clf.labels)],
                   "meaning": "probabilities, columns in 'labels' order: softmax over labels for multi_class, "
                              "independent sigmoids for multi_label and hierarchical"},
        "encoding": encoding,
        "files": files,
        "export_check": export_check,
    }


def save_static_graph(graph: InferenceGraph, directory: Path, num_masks: int) -> None:
    """``paddle.jit.save`` with dynamic batch and sequence length (``model.json`` + ``model.pdiparams``)."""
    from paddle.static import InputSpec

    spec = [InputSpec([None, None], "int64", name) for name in INPUT_NAMES[:3]]
    spec.append(InputSpec([None, num_masks], "int64", INPUT_NAMES[3]))
    graph.eval()
    paddle.jit.save(graph, str(directory / PADDLE_PREFIX), input_spec=spec)
    for name in (PADDLE_MODEL_NAME, PADDLE_PARAMS_NAME):
        if not (directory / name).is_file():
            raise BundleError(f"export: paddle.jit.save did not write {name} (is FLAGS_enable_pir_api off?)")


def convert_to_onnx(directory: Path, opset: int, num_labels: int) -> Path:
    """Convert the static graph with paddle2onnx, name its inputs' and output's dimensions, and clean it.

    Cleaning is onnxruntime's basic level (constant folding, identity and dead-node removal): the
    result has standard ONNX operators only, and its MatMuls read weights directly, which dynamic
    quantisation needs. Fusions (LayerNorm, Gelu, MatMul+Add) are left to the runtime session.
    """
    import onnx

    raw_path = directory / "model.raw.onnx"
    run_paddle2onnx(directory / PADDLE_MODEL_NAME, directory / PADDLE_PARAMS_NAME, raw_path, opset)
    model = onnx.load(str(raw_path))
    _name_dimensions(model, num_labels)
    onnx.save(model, str(raw_path))
    path = directory / ONNX_FILES["fp32"]
    _ort_optimize(raw_path, path)
    raw_path.unlink()
    onnx.checker.check_model(str(path))
    return path


def run_paddle2onnx(model_file: Path, params_file: Path, onnx_file: Path, opset: int) -> None:
    """Run paddle2onnx in a child process: on an operator it cannot convert it aborts its process.

    ``optimize_tool='None'``: its default post-pass (polygraphy) pip-installs missing packages into
    the running environment.
    """
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-c", _PADDLE2ONNX_SCRIPT, str(model_file), str(params_file), str(opset), str(onnx_file)],
        capture_output=True, text=True, errors="replace",
    )
    if result.returncode != 0 or not onnx_file.is_file():
        output = [line.strip() for line in (result.stdout + "\n" + result.stderr).splitlines() if line.strip()]
        errors = [line for line in output if "[ERROR]" in line] or output[-2:]
        detail = " | ".join(errors) or f"exit status {result.returncode}"
        raise BundleError(
            f"export: paddle2onnx could not convert {model_file.name} to ONNX opset {opset} ({detail}); "
            "the Paddle static graph itself is fine: export with --no-onnx to deploy with Paddle Inference"
        )


_PADDLE2ONNX_SCRIPT = """
import sys
import paddle2onnx
model, params, opset, out = sys.argv[1:]
data = paddle2onnx.export(model, params, None, opset_version=int(opset), auto_upgrade_opset=False,
                          enable_onnx_checker=True, optimize_tool="None")
with open(out, "wb") as handle:
    handle.write(data)
"""


def _name_dimensions(model: Any, num_labels: int) -> None:
    """Call the output ``probs`` and the dynamic dimensions ``batch`` and ``sequence``."""
    graph = model.graph
    old = graph.output[0].name
    for node in graph.node:
        for i, name in enumerate(node.output):
            if name == old:
                node.output[i] = OUTPUT_NAME
    graph.output[0].name = OUTPUT_NAME
    for value in graph.input:
        dims = value.type.tensor_type.shape.dim
        dims[0].dim_param = "batch"
        if value.name != "masked_positions":
            dims[1].dim_param = "sequence"
    out_dims = graph.output[0].type.tensor_type.shape.dim
    if len(out_dims) == 2:
        out_dims[0].dim_param = "batch"
        out_dims[1].dim_value = num_labels


def _ort_optimize(src: Path, dst: Path) -> None:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = str(dst)
    options.log_severity_level = 3
    ort.InferenceSession(str(src), options, providers=["CPUExecutionProvider"])


def quantize_int8(src: Path, dst: Path) -> None:
    """Dynamic INT8 quantisation of the MatMul weights (activations quantised per batch at run time).

    Signed 8-bit weights use the VNNI / AVX-512 integer kernels; embedding tables, LayerNorm and
    softmax stay float32.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)  # the quantiser logs a line per tensor, and advice, on the root logger
    try:
        quantize_dynamic(str(src), str(dst), op_types_to_quantize=["MatMul"], weight_type=QuantType.QInt8)
    finally:
        logging.disable(previous)


def convert_fp16(src: Path, dst: Path) -> None:
    """Float16 weights and activations for GPU, with float32 inputs/outputs and float32 log-sum-exp/softmax."""
    import onnx
    from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16
    from onnxruntime.transformers.onnx_model import OnnxModel

    model = convert_float_to_float16(
        onnx.load(str(src)), keep_io_types=True, op_block_list=DEFAULT_OP_BLOCK_LIST + ["ReduceLogSumExp", "Softmax"]
    )
    wrapped = OnnxModel(model)
    wrapped.topological_sort()
    onnx.checker.check_model(wrapped.model)
    onnx.save(wrapped.model, str(dst))


def probe_texts(clf: "PromptClassifier", count: int = 6) -> List[Tuple[str, Optional[str]]]:
    """Deterministic texts drawn from the vocabulary, one longer than ``max_seq_length`` (to truncate)."""
    vocab = [t for t in clf.tokenizer.vocab.token_to_idx if not t.startswith(("[", "##")) and t.strip()]
    rng = np.random.default_rng(0)
    lengths = [1, 3, 8, 17, 30, clf.max_seq_length + 10][:count]
    texts = [" ".join(rng.choice(vocab, size=n)) for n in lengths]
    pairs = [" ".join(rng.choice(vocab, size=n)) for n in reversed(lengths)]
    uses_b = any(p.kind == "text" and p.value == "text_b" for p in clf.template.parts)
    return [(a, b if uses_b else None) for a, b in zip(texts, pairs)]


def template_batch(clf: "PromptClassifier", examples: Sequence[Tuple[str, Optional[str]]]) -> Dict[str, np.ndarray]:
    """The training-time model inputs for ``examples`` (``Template.encode`` + ``pad_batch``)."""
    from .template import pad_batch

    return pad_batch([clf.template.encode(a, b) for a, b in examples], clf.tokenizer.pad_token_id)


@paddle.no_grad()
def reference_probabilities(clf: "PromptClassifier", batch: Dict[str, np.ndarray], activation: str) -> np.ndarray:
    """Probabilities from the Paddle dynamic graph."""
    logits = clf.model(**{k: paddle.to_tensor(v) for k, v in batch.items()})
    return (F.softmax(logits, axis=-1) if activation == "softmax" else F.sigmoid(logits)).numpy()


def check_encoding(batch: Dict[str, np.ndarray], feed: Dict[str, np.ndarray], vocab_rows: int) -> None:
    """The bundle's encoding must give the template's inputs, soft tokens renumbered past the vocabulary."""
    soft = batch["soft_token_ids"]
    expected = {
        "input_ids": np.where(soft > 0, vocab_rows + soft - 1, batch["input_ids"]),
        "token_type_ids": batch["token_type_ids"],
        "attention_mask": batch["attention_mask"],
        "masked_positions": batch["masked_positions"],
    }
    for name in INPUT_NAMES:
        if not np.array_equal(feed[name], expected[name]):
            raise BundleError(
                f"export: the bundle's tokenizer/encoding gives different {name} than the template on probe texts"
            )


def bundle_feed(
    directory: Path, encoding: Dict[str, Any], examples: Sequence[Tuple[str, Optional[str]]]
) -> Dict[str, np.ndarray]:
    """The graph inputs for ``examples`` as ``OnnxPredictor`` builds them from the written bundle."""
    tokenizer = load_wordpiece(directory / encoding["tokenizer"]["vocab_file"], encoding["tokenizer"])
    encoder = BundleEncoder(encoding, tokenizer)
    return encoder.pad(encoder.encode_batch(examples))


def check_against_paddle(name: str, got: np.ndarray, expected: np.ndarray) -> float:
    """Largest probability difference; raises when it is over ``TOLERANCE``."""
    diff = float(np.abs(got - expected).max())
    if not np.isfinite(diff) or diff > TOLERANCE:
        raise BundleError(
            f"export: {name} differs from the Paddle model by {diff:.3g} (> {TOLERANCE}) on probe texts"
        )
    return diff


def run_onnx(path: Path, feed: Dict[str, np.ndarray]) -> np.ndarray:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"]).run([OUTPUT_NAME], feed)[0]


def run_static_graph(directory: Path, feed: Dict[str, np.ndarray]) -> np.ndarray:
    loaded = paddle.jit.load(str(directory / PADDLE_PREFIX))
    return loaded(*[paddle.to_tensor(feed[name]) for name in INPUT_NAMES]).numpy()


def _load(source: Union["PromptClassifier", str, os.PathLike]) -> "PromptClassifier":
    """The classifier to export; only prompt models (not the [CLS] fine-tuning baseline) have a bundle form."""
    from .classifier import PromptClassifier

    clf = source if isinstance(source, PromptClassifier) else PromptClassifier.load(source)
    if not isinstance(clf.model, PromptModel):
        method = getattr(clf, "method", type(clf.model).__name__)
        raise BundleError(f"export: only prompt classifiers can be exported, not method {method!r}")
    return clf


def export_bundle(
    source: Union["PromptClassifier", str, os.PathLike],
    bundle_dir: Union[str, os.PathLike],
    onnx: bool = True,
    opset: int = DEFAULT_OPSET,
    fp16: bool = False,
    int8: bool = False,
) -> Path:
    """Write a bundle for a classifier (or a directory saved by ``PromptClassifier.save``).

    Before the bundle replaces ``bundle_dir``, probe texts are encoded the way ``OnnxPredictor``
    encodes them and run through the exported graph; the export fails if the probabilities differ
    from the Paddle model by more than ``TOLERANCE``.
    """
    if (fp16 or int8) and not onnx:
        raise BundleError("export: --fp16 and --int8 derive from the ONNX model; drop --no-onnx")
    clf = _load(source)
    clf.model.eval()
    examples = probe_texts(clf)
    batch = template_batch(clf, examples)
    activation = "softmax" if task_config(clf)["task"] == "multi_class" else "sigmoid"
    expected = reference_probabilities(clf, batch, activation)
    graph = InferenceGraph(clf.model, activation)
    with atomic_directory(bundle_dir) as tmp:
        save_static_graph(graph, tmp, clf.template.num_masks)
        clf.tokenizer.save_pretrained(str(tmp))
        encoding = encoding_spec(clf)
        feed = bundle_feed(tmp, encoding, examples)
        check_encoding(batch, feed, encoding["vocab_rows"])
        files = {"paddle_model": PADDLE_MODEL_NAME, "paddle_params": PADDLE_PARAMS_NAME}
        if onnx:
            onnx_files, check = write_onnx_models(tmp, len(clf.labels), opset, fp16, int8, feed, expected)
            files.update(onnx_files)
        else:
            diff = check_against_paddle("the static graph", run_static_graph(tmp, feed), expected)
            check = {"probe_texts": len(examples), "paddle_static_max_abs_diff": diff}
        manifest = build_manifest(clf, encoding, files, check)
        (tmp / MANIFEST_NAME).write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")
    return Path(bundle_dir)


def write_onnx_models(
    directory: Path, num_labels: int, opset: int, fp16: bool, int8: bool,
    feed: Dict[str, np.ndarray], expected: np.ndarray,
) -> Tuple[Dict[str, str], Dict[str, Any]]:
    """Write ``model.onnx`` (checked against ``expected``) and the INT8/FP16 variants asked for.

    Returns the files written and the export check: each model's largest probability difference
    from the Paddle model on the probe batch ``feed``.
    """
    fp32 = convert_to_onnx(directory, opset, num_labels)
    files = {"onnx_fp32": fp32.name}
    check: Dict[str, Any] = {
        "probe_texts": len(expected),
        "onnx_opset": opset,
        "onnx_fp32_max_abs_diff": check_against_paddle("model.onnx", run_onnx(fp32, feed), expected),
    }
    variants = [("int8", quantize_int8)] * int8 + [("fp16", convert_fp16)] * fp16
    for precision, convert in variants:
        path = directory / ONNX_FILES[precision]
        convert(fp32, path)
        files[f"onnx_{precision}"] = path.name
        check[f"onnx_{precision}_max_abs_diff"] = float(np.abs(run_onnx(path, feed) - expected).max())
    return files, check
