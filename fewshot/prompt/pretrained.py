"""Loading a pretrained masked LM and its tokenizer by PaddleNLP name or local directory.

>>> model, tokenizer = load_pretrained("ernie-3.0-base-zh")    # downloads once, where the network allows
>>> model, tokenizer = load_pretrained("../shared/models/zh-ernie-tiny")
"""

from __future__ import annotations

from typing import Any, Tuple

from paddlenlp.transformers import AutoModelForMaskedLM, AutoTokenizer

from ..errors import BundleError


def load_pretrained(name_or_dir: str) -> Tuple[Any, Any]:
    """A PaddleNLP masked-LM model and its tokenizer; a model that cannot be loaded (no such name or
    directory, a corrupt or wrong kind of weight file) is a one-line ``BundleError``."""
    try:
        return AutoModelForMaskedLM.from_pretrained(name_or_dir), AutoTokenizer.from_pretrained(name_or_dir)
    except Exception as exc:  # PaddleNLP and Paddle raise many types: OSError, ValueError, InvalidArgument, …
        detail = str(exc).strip().splitlines()
        raise BundleError(
            f"{name_or_dir}: cannot load the pretrained model ({type(exc).__name__}: {detail[0] if detail else ''})"
        ) from None
