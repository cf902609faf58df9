"""Model directories of a pretraining run: loading the model to continue, building one from scratch,
writing ``model_<step>/`` with its ``pretrain_info.json`` and reading it back.
"""

from __future__ import annotations

import inspect
import json
import logging
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import paddle

from ..atomic import atomic_directory
from ..documents import json_text
from ..prompt.pretrained import load_pretrained
from .config import INFO_NAME, MODEL_PREFIX, PretrainConfig, PretrainError
from .corpus import Corpus, load_tokenizer
from .vocabulary import SPECIAL_TOKENS, build_vocab

logger = logging.getLogger(__name__)


def save_model_dir(directory: Path, model: paddle.nn.Layer, tokenizer: Any, info: Dict[str, Any]) -> Path:
    """Write a loadable model directory atomically: weights, config, tokenizer and ``pretrain_info.json``."""
    with atomic_directory(directory, "the model", marker=INFO_NAME) as tmp:
        model.save_pretrained(str(tmp), safe_serialization=True)
        if tokenizer is not None:
            tokenizer.save_pretrained(str(tmp))
        (tmp / INFO_NAME).write_text(json_text(info), encoding="utf-8")
    return directory


def read_pretrain_info(directory: "str | Path") -> Dict[str, Any]:
    """``pretrain_info.json`` of a ``model_<step>`` directory, or ``{}`` for any other model."""
    path = Path(directory) / INFO_NAME
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        logger.warning("%s: not valid JSON, ignored", path)
        return {}


def load_model(name_or_dir: str, tokenizer_name: Optional[str] = None) -> Tuple[paddle.nn.Layer, Any]:
    """A masked-LM model whose ``forward`` takes ``masked_positions``, and its tokenizer (the model's,
    or ``tokenizer_name``'s, PaddleNLP's ``--tokenizer_name_or_path``)."""
    model, tokenizer = load_pretrained(name_or_dir)
    if tokenizer_name and tokenizer_name != name_or_dir:
        tokenizer = load_tokenizer(tokenizer_name)
    if "masked_positions" not in inspect.signature(model.forward).parameters:
        raise PretrainError(
            f"{name_or_dir}: {type(model).__name__}.forward has no masked_positions argument; "
            "fewshot-pretrain needs an ERNIE-style masked LM (ErnieForMaskedLM, BertForMaskedLM)"
        )
    return model, tokenizer


def build_scratch_model(config: PretrainConfig, corpus: Corpus, directory: Path) -> None:
    """Write a randomly initialised ERNIE masked LM with a character vocabulary built from ``corpus``."""
    from paddlenlp.transformers import ErnieConfig, ErnieForMaskedLM, ErnieTokenizer

    vocab = build_vocab(corpus.documents, min_freq=config.vocab_min_freq, special_tokens=SPECIAL_TOKENS)
    if len(vocab) <= len(SPECIAL_TOKENS):
        raise PretrainError(f"no character occurs {config.vocab_min_freq} times; lower --vocab-min-freq")
    paddle.seed(config.seed)
    model = ErnieForMaskedLM(
        ErnieConfig(
            vocab_size=len(vocab),
            hidden_size=config.hidden_size,
            num_hidden_layers=config.num_layers,
            num_attention_heads=config.num_heads,
            intermediate_size=config.intermediate_size,
            max_position_embeddings=max(512, config.max_seq_length),
            type_vocab_size=4,
            pad_token_id=0,
            use_task_id=False,
        )
    )
    with atomic_directory(directory, "the initial model", marker=INFO_NAME) as tmp:
        vocab_file = tmp / "vocab.txt"
        vocab_file.write_text("".join(token + "\n" for token in vocab), encoding="utf-8")
        ErnieTokenizer(str(vocab_file)).save_pretrained(str(tmp))
        model.save_pretrained(str(tmp), safe_serialization=True)
        info = {"step": 0, "base_model": None, "from_scratch": True, "vocab_size": len(vocab)}
        (tmp / INFO_NAME).write_text(json_text(info), encoding="utf-8")
    logger.info("wrote the initial model (vocabulary of %d tokens) to %s", len(vocab), directory)


def model_step(path: "str | Path") -> int:
    """The step of a ``model_<step>`` directory name; -1 for other names."""
    name = Path(path).name
    suffix = name[len(MODEL_PREFIX) :] if name.startswith(MODEL_PREFIX) else ""
    return int(suffix) if suffix.isdigit() else -1
