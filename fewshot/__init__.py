"""fewshot: prompt-learning few-shot text classification on PaddlePaddle and PaddleNLP.

The names a user needs::

    from fewshot import PromptClassifier          # build, fit, evaluate, predict, save, load, export
    from fewshot import OnnxPredictor             # deployment: a bundle, onnxruntime, no Paddle
    from fewshot import read_examples, read_label_words

The package follows the data flow, and ``fewshot.runtime`` (with ``data``, ``tasks``, ``template``)
never imports Paddle, so a deployment image installs without it. Names are imported on first use.
"""

from typing import Any

from .cpu_env import apply_once

apply_once()  # fast CPU thread defaults, before anything imports Paddle (fewshot/cpu_env.py)

__version__ = "0.2.0"

_LAZY = {
    "PromptClassifier": "fewshot.classifier",
    "OnnxPredictor": "fewshot.runtime",
    "predict_file": "fewshot.runtime",
    "PromptTrainer": "fewshot.training.trainer",
    "PromptTrainingArguments": "fewshot.training.arguments",
    "Template": "fewshot.template",
    "parse_template": "fewshot.template",
    "read_label_words": "fewshot.data",
    "read_examples": "fewshot.data",
    "Example": "fewshot.data",
    "SingleLabelTask": "fewshot.tasks",
    "MultiLabelTask": "fewshot.tasks",
    "HierarchicalTask": "fewshot.tasks",
    "FewshotError": "fewshot.errors",
}

__all__ = list(_LAZY) + ["__version__"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'fewshot' has no attribute {name!r}")
