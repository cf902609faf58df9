"""What both predictors (``PromptClassifier`` and ``OnnxPredictor``) accept as texts to classify.

One contract, the same errors with the same wording:

- a ``str`` is one text: ``predict("一条新闻")`` → one prediction;
- otherwise any iterable (list, tuple, generator — read once) of texts, ``(text_a, text_b)`` pairs,
  ``{"text_a": …, "text_b": …}`` dicts or ``Example`` objects;
- texts are stripped; an empty or whitespace-only text is refused (``input 2: empty text``), and so are
  texts of only control or zero-width characters and invalid Unicode (a lone surrogate); a pair's
  ``text_b`` is checked the same way even where the template does not use it;
- ``input N`` counts from 0, as Python indexes the inputs (files say ``line N``, from 1, as editors do);
- files are read explicitly: ``predict(read_examples("data.txt", labeled=False))``.

>>> prediction_pairs(["球赛", ("雨", "风")], needs_text_b=False)
[('球赛', None), ('雨', None)]
"""

from __future__ import annotations

import os
from typing import Any, Iterable, List, Mapping, Optional, Tuple, Union

from ..errors import DataError
from .examples import Example
from .fields import clean_string

TextPair = Tuple[str, Optional[str]]
TextInputs = Union[str, Example, Iterable[Any]]


def prediction_pairs(inputs: TextInputs, needs_text_b: bool) -> List[TextPair]:
    """``(text_a, text_b)`` of each input (``text_b`` None unless the template uses it)."""
    if isinstance(inputs, (str, Example)):
        inputs = [inputs]
    elif isinstance(inputs, (os.PathLike, bytes, Mapping)):
        raise DataError(
            f"expected a text or an iterable of texts, found {type(inputs).__name__} "
            "(read files with fewshot.read_examples(path, labeled=False))"
        )
    try:
        items = iter(inputs)
    except TypeError:
        raise DataError(f"expected a text or an iterable of texts, found {type(inputs).__name__}") from None
    return [_pair(f"input {index}", item, needs_text_b) for index, item in enumerate(items)]


def _pair(where: str, item: Any, needs_text_b: bool) -> TextPair:
    if isinstance(item, str):
        a, b = item, None
    elif isinstance(item, Example):
        a, b = item.text_a, item.text_b
    elif isinstance(item, Mapping) and "text_a" in item:
        a, b = item["text_a"], item.get("text_b")
    elif isinstance(item, (tuple, list)) and len(item) in (1, 2):
        a, b = item[0], item[1] if len(item) == 2 else None
    else:
        raise DataError(f"{where}: expected a text or a (text_a, text_b) pair, found {type(item).__name__}")
    if needs_text_b and b is None:
        raise DataError(f"{where}: the template uses text_b; pass (text_a, text_b) pairs")
    a = clean_string(where, "text_a" if b is not None else "text", a)
    b = clean_string(where, "text_b", b) if b is not None else None
    return a, b if needs_text_b else None
