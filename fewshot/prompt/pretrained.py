"""Loading a pretrained masked LM and its tokenizer by PaddleNLP name or local directory.

>>> model, tokenizer = load_pretrained("ernie-3.0-base-zh")    # downloads once, where the network allows
>>> model, tokenizer = load_pretrained("../shared/models/zh-ernie-tiny")
>>> model, tokenizer = load_checked_pretrained(Path("clf/plm"))  # safetensors only, every tensor checked
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Tuple

import numpy as np
from paddlenlp.transformers import AutoConfig, AutoModelForMaskedLM, AutoTokenizer
from safetensors import safe_open

from ..errors import BundleError
from ..loading import check_model_directory


def _first_line(exc: Exception) -> str:
    detail = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {detail[0] if detail else ''}"


def load_pretrained(name_or_dir: str) -> Tuple[Any, Any]:
    """A PaddleNLP masked-LM model and its tokenizer; a model that cannot be loaded (no such name or
    directory, a corrupt or wrong kind of weight file) is a one-line ``BundleError``."""
    try:
        return AutoModelForMaskedLM.from_pretrained(name_or_dir), AutoTokenizer.from_pretrained(name_or_dir)
    except Exception as exc:  # PaddleNLP and Paddle raise many types: OSError, ValueError, InvalidArgument, …
        raise BundleError(f"{name_or_dir}: cannot load the pretrained model ({_first_line(exc)})") from None


def _read_tensors(files: List[Path]) -> Dict[str, np.ndarray]:
    tensors: Dict[str, np.ndarray] = {}
    for path in files:
        try:
            with safe_open(str(path), framework="numpy") as handle:
                for name in handle.keys():
                    tensors[name] = handle.get_tensor(name)
        except Exception as exc:  # safetensors raises its own error types for corrupt files
            raise BundleError(f"{path}: not a readable safetensors file ({_first_line(exc)})") from None
    return tensors


def dtype_name(dtype: Any) -> str:
    """A Paddle dtype as numpy names it: ``paddle.float32`` → ``"float32"``."""
    return str(dtype).replace("paddle.", "")


def check_state(model: Any, tensors: Dict[str, np.ndarray], where: str) -> None:
    """Every parameter of ``model`` present in ``tensors`` with its shape and dtype; nothing extra.

    ``ernie.embeddings.word_embeddings.weight`` missing → ``BundleError: plm: missing tensors
    ernie.embeddings.word_embeddings.weight (1 of 46)``."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    if missing:
        shown = ", ".join(missing[:5]) + (", …" if len(missing) > 5 else "")
        raise BundleError(f"{where}: missing tensors {shown} ({len(missing)} of {len(expected)})")
    unexpected = sorted(set(tensors) - set(expected))
    if unexpected:
        raise BundleError(f"{where}: unexpected tensors {', '.join(unexpected[:5])}"
                          f"{', …' if len(unexpected) > 5 else ''} (not parameters of the model in config.json)")
    for name, value in expected.items():
        found = tensors[name]
        if list(found.shape) != list(value.shape):
            raise BundleError(f"{where}: tensor {name} has shape {list(found.shape)}, "
                              f"the model expects {list(value.shape)}")
        if str(found.dtype) != dtype_name(value.dtype):
            raise BundleError(f"{where}: tensor {name} has dtype {found.dtype}, "
                              f"the model expects {dtype_name(value.dtype)}")


def load_checked_pretrained(directory: Path, trust_pickle: bool = False) -> Tuple[Any, Any]:
    """A model directory fewshot did not just write (a saved classifier's ``plm/``, a recorded base
    model), loaded under the loading policy (``fewshot.loading``): the model is built from its
    ``config.json`` and its safetensors tensors set after checking names, shapes and dtypes. Pickled
    weights are read (by PaddleNLP) only with ``trust_pickle=True``."""
    files = check_model_directory(directory, trust_pickle)
    if files is None:
        return load_pretrained(str(directory))
    try:
        config = AutoConfig.from_pretrained(str(directory))
        model = AutoModelForMaskedLM.from_config(config)
        tokenizer = AutoTokenizer.from_pretrained(str(directory))
    except Exception as exc:  # PaddleNLP raises many types for a malformed config or tokenizer
        raise BundleError(f"{directory}: cannot load the pretrained model ({_first_line(exc)})") from None
    tensors = _read_tensors(files)
    check_state(model, tensors, str(directory))
    model.set_state_dict(tensors)
    model.eval()
    return model, tokenizer
