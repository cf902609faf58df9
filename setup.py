"""Install fewshot.

- ``pip install fewshot``: the Paddle-free runtime (``OnnxPredictor``, ``fewshot-predict``): onnxruntime,
  tokenizers, numpy — what a deployment image needs;
- ``pip install "fewshot[train]"``: training, export and pretraining (PaddlePaddle, PaddleNLP, paddle2onnx);
- ``[serve]`` adds ``fewshot-serve``; ``[test]`` what the test suite needs.

GPU users install paddlepaddle-gpu==3.3.1 first (see docs/deployment.md).
"""

import re
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent
VERSION = re.search(r'^__version__ = "([^"]+)"', (HERE / "fewshot" / "__init__.py").read_text(encoding="utf-8"), re.M)[1]

RUNTIME_REQUIRES = [
    "numpy",
    "onnxruntime",
    "tokenizers",
    "tqdm",
]
"""The runtime: a bundle, onnxruntime and the tokenizers library; no Paddle, no PaddleNLP."""

TRAIN_REQUIRES = [
    # A set known to import and train together on Python 3.11; unpinned, pip resolves a set that fails at import.
    "paddlepaddle==3.3.1",
    "paddlenlp==3.0.0b4",
    "aistudio-sdk<0.3",
    "datasets<3",
    "pyarrow<18",
    "paddle2onnx==2.1.0",
    "onnx",
    "numpy<2",
    "safetensors",
    "scikit-learn",
]

setup(
    name="fewshot",
    version=VERSION,
    description="Prompt-learning few-shot text classification on PaddlePaddle and PaddleNLP",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["fewshot", "fewshot.*"]),
    python_requires=">=3.9",
    install_requires=RUNTIME_REQUIRES,
    extras_require={
        "train": TRAIN_REQUIRES,
        "test": ["pytest"],
    },
    entry_points={
        "console_scripts": [
            "fewshot-train=fewshot.cli.train:main",
            "fewshot-export=fewshot.cli.export:main",
            "fewshot-predict=fewshot.cli.predict:main",
            "fewshot-pretrain=fewshot.cli.pretrain:main",
            "fewshot-corpus-stats=fewshot.cli.corpus_stats:main",
            "fewshot-compare=fewshot.cli.compare:main",
            "fewshot-labelwords=fewshot.cli.labelwords:main",
        ]
    },
)
