"""fewshot: prompt-learning few-shot text classification on PaddlePaddle and PaddleNLP.

The names a user needs::

    from fewshot import PromptClassifier
    from fewshot.inference import OnnxPredictor   # deployment, no Paddle import

Heavy modules (Paddle, PaddleNLP) are imported on first use, so ``fewshot.inference`` stays light.
"""

from typing import Any

from .cpu_env import apply_once

apply_once()  # fast CPU thread defaults, before anything imports Paddle (fewshot/cpu_env.py)

__version__ = "0.1.0"

_LAZY = {
    "PromptClassifier": "fewshot.classifier",
    "PromptTrainer": "fewshot.trainer",
    "PromptTrainingArguments": "fewshot.trainer",
    "Template": "fewshot.template",
    "parse_template": "fewshot.template",
    "read_label_words": "fewshot.labels",
    "read_examples": "fewshot.data",
    "Example": "fewshot.data",
}

__all__ = list(_LAZY) + ["__version__"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'fewshot' has no attribute {name!r}")
