"""The one loading policy: what fewshot reads from a directory it did not just write, and how.

A saved classifier's ``plm/``, and the base model its ``fewshot_config.json`` names, are read through
these checks before any weight is touched:

- every file read is a regular file inside the directory (no ``..``, no symbolic link out of it);
- weights are safetensors only: ``model.safetensors``, or the shards a ``model.safetensors.index.json``
  names (each a plain ``.safetensors`` name inside the directory); pickled weights (``model_state.pdparams``,
  ``model_state.pdparams.index.json`` and its shards) are refused unless the caller passes the trust switch;
- a saved classifier records its base model's identity (:func:`base_model_identity`): a model name, or an
  absolute directory with the SHA-256 of its weight files, never a path relative to where it was trained.

>>> safetensors_files(Path("clf/plm"))
[PosixPath('clf/plm/model.safetensors')]
>>> base_model_identity("../models/zh-ernie-tiny")
{'base_model': '/work/models/zh-ernie-tiny', 'base_model_sha256': '5f0c…'}
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

from .errors import BundleError

SAFE_WEIGHTS = "model.safetensors"
SAFE_INDEX = "model.safetensors.index.json"
PICKLED_WEIGHTS = "model_state.pdparams"
PICKLED_INDEX = "model_state.pdparams.index.json"
MODEL_CONFIG = "config.json"
TOKENIZER_FILES = ("vocab.txt", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json")
TRUST_HINT = "trust_pickle=True (--trust-pickle)"


def pickle_refusal(path: Path) -> BundleError:
    """The one message for pickled weights that the caller did not trust."""
    return BundleError(
        f"{path}: pickled weights can run code when loaded, so fewshot does not read them by default; load with "
        f"{TRUST_HINT} only if you trust where the directory came from, then save it again to convert it to safetensors"
    )


def inside(directory: Path, name: Any, what: str) -> Path:
    """``directory / name`` when ``name`` is a plain relative name of a regular file that stays inside
    ``directory`` (symbolic links resolved); otherwise a ``BundleError`` naming ``what`` and the name.

    >>> inside(Path("plm"), "../../etc/passwd", "plm/model.safetensors.index.json")
    BundleError: plm/model.safetensors.index.json: '../../etc/passwd' is not a file inside plm
    """
    if not isinstance(name, str) or not name or os.path.isabs(name) or "\x00" in name:
        raise BundleError(f"{what}: {name!r} is not a file name inside {directory}")
    path = directory / name
    root = directory.resolve()
    try:
        resolved = path.resolve()
    except (OSError, RuntimeError):
        raise BundleError(f"{what}: {name!r} cannot be resolved inside {directory}") from None
    if resolved != root and root not in resolved.parents:
        raise BundleError(f"{what}: {name!r} is not a file inside {directory} (it leads to {resolved})")
    if not resolved.is_file():
        raise BundleError(f"{what}: {name!r} is missing or not a regular file in {directory}")
    return path


def _index_shards(directory: Path, index_name: str, suffix: str) -> List[Path]:
    """The shard files a PaddleNLP shard index names, each checked with :func:`inside`."""
    index = inside(directory, index_name, str(directory / index_name))
    try:
        document = json.loads(index.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{index}: not valid JSON ({exc})") from None
    weight_map = document.get("weight_map") if isinstance(document, dict) else None
    if not isinstance(weight_map, dict) or not weight_map:
        raise BundleError(f"{index}: expected an object with a non-empty 'weight_map'")
    shards: Dict[str, Path] = {}
    for tensor, shard in weight_map.items():
        if not isinstance(shard, str) or not shard.endswith(suffix) or "/" in shard or "\\" in shard:
            raise BundleError(f"{index}: tensor {tensor!r} is in {shard!r}, not a plain {suffix} file name")
        shards.setdefault(shard, inside(directory, shard, str(index)))
    return list(shards.values())


def safetensors_files(directory: Path) -> Optional[List[Path]]:
    """The safetensors weight files of a model directory (the single file, or the index's shards);
    None when it has none. A shard index is preferred, as PaddleNLP does."""
    if os.path.lexists(directory / SAFE_INDEX):
        return _index_shards(directory, SAFE_INDEX, ".safetensors")
    if os.path.lexists(directory / SAFE_WEIGHTS):
        return [inside(directory, SAFE_WEIGHTS, str(directory / SAFE_WEIGHTS))]
    return None


def pickled_files(directory: Path) -> Optional[List[Path]]:
    """The pickled weight files of a model directory (``model_state.pdparams`` or its index's shards), or None."""
    if os.path.lexists(directory / PICKLED_INDEX):
        return _index_shards(directory, PICKLED_INDEX, ".pdparams")
    if os.path.lexists(directory / PICKLED_WEIGHTS):
        return [inside(directory, PICKLED_WEIGHTS, str(directory / PICKLED_WEIGHTS))]
    return None


def check_model_directory(directory: Path, trust_pickle: bool) -> Optional[List[Path]]:
    """Check a model directory before loading it: its config and tokenizer files inside it, and its
    weights. Returns the safetensors files to read, or None when the caller trusts pickles and the
    directory has only pickled weights (PaddleNLP then loads it as it ships).

    Safetensors weights are read by fewshot itself, never by PaddleNLP's file resolution (which prefers
    any shard index, pickled or not, over the weight file): a pickle beside them is never opened.
    """
    if not directory.is_dir():
        raise BundleError(f"{directory}: not a model directory")
    inside(directory, MODEL_CONFIG, str(directory / MODEL_CONFIG))
    for name in TOKENIZER_FILES:
        if os.path.lexists(directory / name):
            inside(directory, name, str(directory / name))
    safe = safetensors_files(directory)
    if safe is not None:
        return safe
    for name in (PICKLED_INDEX, PICKLED_WEIGHTS):
        if os.path.lexists(directory / name) and not trust_pickle:
            raise pickle_refusal(directory / name)
    if trust_pickle and pickled_files(directory) is not None:
        return None
    raise BundleError(f"{directory}: no model weights ({SAFE_WEIGHTS} or {SAFE_INDEX})")


def weights_sha256(directory: Path) -> Optional[str]:
    """The SHA-256 of a model directory's weight files (safetensors, else pickled), in name order; None
    when the directory has none (a model name, not a directory)."""
    if not Path(directory).is_dir():
        return None
    files = safetensors_files(directory) or pickled_files(directory)
    if not files:
        return None
    digest = hashlib.sha256()
    for path in sorted(files):
        digest.update(path.name.encode("utf-8") + b"\0")
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def base_model_identity(name_or_dir: str) -> Dict[str, Any]:
    """What a saved classifier records about its base model: a local directory as its absolute path and
    the SHA-256 of its weights, a model name as it is."""
    path = Path(name_or_dir)
    if path.is_dir():
        return {"base_model": str(path.resolve()), "base_model_sha256": weights_sha256(path)}
    return {"base_model": str(name_or_dir), "base_model_sha256": None}


def saved_base_model(config: Mapping[str, Any], where: str, trust_pickle: bool) -> str:
    """The base model directory a saved classifier names, checked before it is loaded again (k-fold
    training, ``untrained_copy``): absolute, present, the weights it was trained from (SHA-256), and
    safetensors unless the caller trusts pickles. A model name (a download, maybe pickled) needs trust too."""
    name = config.get("base_model")
    if not isinstance(name, str) or not name:
        raise BundleError(f"{where}: 'base_model' must be the base model's name or directory, got {name!r}")
    path = Path(name)
    if not path.is_absolute():
        if not trust_pickle:
            raise BundleError(
                f"{where}: base model {name!r} is a model name or a path relative to wherever the classifier was "
                f"trained; loading it may download and unpickle weights, so pass {TRUST_HINT} if you trust it, "
                "or save the classifier again with a base model directory"
            )
        return name
    if not path.is_dir():
        raise BundleError(f"{where}: base model directory {name} is not here; the classifier was trained from it")
    expected = config.get("base_model_sha256")
    if expected is not None and weights_sha256(path) != expected:
        raise BundleError(f"{where}: the weights in base model directory {name} are not the ones the classifier "
                          "was trained from (SHA-256 differs)")
    check_model_directory(path, trust_pickle)
    return name
