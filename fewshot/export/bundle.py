"""Export the components of a trained prompt classifier to a deployable bundle.

``export_bundle(model, template, task, tokenizer, label_words, "bundle/")`` writes, atomically (an
interrupted or failed export leaves the previous bundle in place)::

    bundle/
      model.json, model.pdiparams   Paddle static graph (PIR): ids → class probabilities
      model.onnx                    the same graph, converted with paddle2onnx
      model.int8.onnx               --int8: quantised MatMuls (CPU), dynamic or calibrated (--calibration)
      model.fp16.onnx               --fp16: float16 weights and activations (GPU)
      vocab.txt, tokenizer_config.json, special_tokens_map.json
      fewshot.json                  manifest: labels, task, template encoding, inputs, files

The graph is the whole prompt model — PLM, soft prompt, verbalizer and activation — so inference
needs neither the pretrained checkpoint nor Paddle. Before the bundle replaces the old one, probe
texts are encoded by the runtime from the written files and run through every exported graph;
the export fails if the encoding or the probabilities differ from the Paddle model.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

import numpy as np

from ..atomic import atomic_directory
from ..documents import json_text
from ..errors import BundleError
from ..prompt.model import PromptModel
from ..runtime.manifest import GRAPH_INPUTS, MANIFEST_NAME, ONNX_FILES, PADDLE_MODEL_NAME, PADDLE_PARAMS_NAME, VOCAB_NAME, build_manifest
from ..runtime.tokenizer import batch_tokenize, load_wordpiece
from ..tasks import Task
from ..template import LongText, Template, TemplateEncoder, pad_batch
from .calibration import Calibration, write_int8_check
from .convert import DEFAULT_OPSET, check_against_paddle, check_opset, write_onnx_models
from .graph import InferenceGraph, reference_probabilities, run_static_graph, save_static_graph


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
        "vocab_file": VOCAB_NAME,
        "do_lower_case": bool(basic.do_lower_case),
        "unk_token": tokenizer.unk_token,
        "special_tokens": sorted(special),
        "max_input_chars_per_word": int(getattr(wordpiece, "max_input_chars_per_word", 100)),
    }


def encoding_spec(template: Template, tokenizer: Any, vocab_rows: int,
                  positions: Optional[int] = None) -> Dict[str, Any]:
    """The manifest's ``encoding``: the template encoder's spec (soft tokens renumbered past the
    vocabulary's ``vocab_rows``), the tokenizer, and the model's position table size ``positions``
    (the runtime refuses a ``max_seq_length`` beyond it)."""
    return {
        **template.describe(soft_token_start=vocab_rows),
        "tokenizer": tokenizer_spec(tokenizer),
        "vocab_rows": int(vocab_rows),
        "num_soft_tokens": template.num_soft_tokens,
        **({"max_position_embeddings": int(positions)} if positions else {}),
    }


def probe_texts(template: Template, tokenizer: Any, count: int = 6) -> List[Tuple[str, Optional[str]]]:
    """Deterministic texts drawn from the vocabulary, one longer than ``max_seq_length`` (to truncate)."""
    vocab = [t for t in tokenizer.vocab.token_to_idx if not t.startswith(("[", "##")) and t.strip()]
    rng = np.random.default_rng(0)
    lengths = [1, 3, 8, 17, 30, template.max_seq_length + 10][:count]
    texts = [" ".join(rng.choice(vocab, size=n)) for n in lengths]
    pairs = [" ".join(rng.choice(vocab, size=n)) for n in reversed(lengths)]
    return [(a, b if template.needs_text_b else None) for a, b in zip(texts, pairs)]


def written_encoder(directory: Path, encoding: Dict[str, Any]) -> TemplateEncoder:
    """The template encoder the runtime builds from the written bundle's tokenizer and encoding."""
    tokenizer = load_wordpiece(directory / encoding["tokenizer"]["vocab_file"], encoding["tokenizer"])
    return TemplateEncoder.from_spec(encoding, batch_tokenize(tokenizer), error=BundleError)


def bundle_feed(directory: Path, encoding: Dict[str, Any], examples: List[Tuple[str, Optional[str]]]) -> Dict[str, np.ndarray]:
    """The graph inputs for ``examples`` as the runtime builds them from the written bundle."""
    encoder = written_encoder(directory, encoding)
    batch = encoder.pad(encoder.encode_batch(examples))
    return {name: batch[name] for name in GRAPH_INPUTS}


def check_encoding(batch: Dict[str, np.ndarray], feed: Dict[str, np.ndarray], vocab_rows: int) -> None:
    """The bundle's encoding must give the template's inputs, soft tokens renumbered past the vocabulary."""
    soft = batch["soft_token_ids"]
    expected = {
        "input_ids": np.where(soft > 0, vocab_rows + soft - 1, batch["input_ids"]),
        "token_type_ids": batch["token_type_ids"],
        "position_ids": batch["position_ids"],
        "attention_mask": batch["attention_mask"],
        "masked_positions": batch["masked_positions"],
    }
    for name in GRAPH_INPUTS:
        if not np.array_equal(feed[name], expected[name]):
            raise BundleError(
                f"export: the bundle's tokenizer/encoding gives different {name} than the template on probe texts"
            )


def export_bundle(
    model: Any,
    template: Template,
    task: Task,
    tokenizer: Any,
    label_words: Mapping[str, List[str]],
    bundle_dir: Union[str, "os.PathLike[str]"],
    info: Optional[Mapping[str, Any]] = None,
    onnx: bool = True,
    opset: int = DEFAULT_OPSET,
    fp16: bool = False,
    int8: bool = False,
    long_text: Optional[LongText] = None,
    calibration: Optional[Calibration] = None,
) -> Path:
    """Write a bundle for a prompt model, its template, task and tokenizer; returns ``bundle_dir``.

    ``info`` is recorded in the manifest as provenance (``base_model``, ``verbalizer``, …);
    ``long_text`` as the strategy the runtime applies to texts longer than the template's room.
    ``calibration`` (with ``int8``) makes ``model.int8.onnx`` statically quantised on its texts (if any), and
    records what int8 changes on its labelled check examples (if any) in the manifest's ``export_check``.
    """
    if (fp16 or int8) and not onnx:
        raise BundleError("export: --fp16 and --int8 derive from the ONNX model; drop --no-onnx")
    if calibration is not None and not int8:
        raise BundleError("export: --calibration and --check-data are about the int8 model; add --int8")
    if onnx:
        check_opset(opset)
    if not isinstance(model, PromptModel):
        raise BundleError(f"export: only prompt models can be exported, not {type(model).__name__}")
    model.eval()
    examples = probe_texts(template, tokenizer)
    batch = pad_batch(template.encode_batch(examples), tokenizer.pad_token_id)
    expected = reference_probabilities(model, batch, task)
    graph = InferenceGraph(model, task)
    vocab_rows = int(model.plm.get_input_embeddings().weight.shape[0])
    with atomic_directory(bundle_dir, "the bundle", marker=MANIFEST_NAME) as tmp:
        save_static_graph(graph, tmp, template.num_masks, template.encoder.square_mask)
        tokenizer.save_pretrained(str(tmp))
        positions = getattr(getattr(model.plm, "config", None), "max_position_embeddings", None)
        encoding = encoding_spec(template, tokenizer, vocab_rows, positions if isinstance(positions, int) else None)
        feed = bundle_feed(tmp, encoding, examples)
        check_encoding(batch, feed, vocab_rows)
        files = {"paddle_model": PADDLE_MODEL_NAME, "paddle_params": PADDLE_PARAMS_NAME}
        if onnx:
            dynamic_int8 = int8 and not (calibration and calibration.texts)
            onnx_files, check = write_onnx_models(tmp, len(task.labels), opset, fp16, dynamic_int8, feed, expected)
            files.update(onnx_files)
            if calibration is not None:
                check.update(write_int8_check(tmp, written_encoder(tmp, encoding), task, calibration, feed, expected))
                files["onnx_int8"] = ONNX_FILES["int8"]
        else:
            diff = check_against_paddle("the static graph", run_static_graph(tmp, feed), expected)
            check = {"probe_texts": len(examples), "paddle_static_max_abs_diff": diff}
        manifest = build_manifest(task, label_words, template.text, encoding, files, check, dict(info or {}),
                                  long_text=long_text)
        (tmp / MANIFEST_NAME).write_text(json_text(manifest), encoding="utf-8")
    return Path(bundle_dir)
