"""Loading a pretrained masked LM and its tokenizer by PaddleNLP name or local directory.

>>> model, tokenizer = load_pretrained("ernie-3.0-base-zh")    # downloads once, where the network allows
>>> model, tokenizer = load_pretrained("../shared/models/zh-ernie-tiny")
"""

from __future__ import annotations

from typing import Any, Tuple

from paddlenlp.transformers import AutoModelForMaskedLM, AutoTokenizer


def load_pretrained(name_or_dir: str) -> Tuple[Any, Any]:
    """A PaddleNLP masked-LM model and its tokenizer."""
    return AutoModelForMaskedLM.from_pretrained(name_or_dir), AutoTokenizer.from_pretrained(name_or_dir)
