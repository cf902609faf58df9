"""Install fewshot: ``pip install -e .``; GPU users install paddlepaddle-gpu==3.3.1 first (see docs/deployment.md)."""

from pathlib import Path

from setuptools import find_packages, setup

# A set known to import and train together on Python 3.11; unpinned, pip resolves a set that fails at import.
INSTALL_REQUIRES = [
    "paddlepaddle==3.3.1",
    "paddlenlp==3.0.0b4",
    "aistudio-sdk<0.3",
    "datasets<3",
    "pyarrow<18",
    "paddle2onnx==2.1.0",
    "onnxruntime",
    "onnx",
    "tokenizers",
    "numpy<2",
    "scikit-learn",
    "tqdm",
]

setup(
    name="fewshot",
    version="0.1.0",
    description="Prompt-learning few-shot text classification on PaddlePaddle and PaddleNLP",
    long_description=Path(__file__).with_name("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["fewshot", "fewshot.*"]),
    python_requires=">=3.9",
    install_requires=INSTALL_REQUIRES,
    extras_require={
        "test": ["pytest"],
    },
    entry_points={
        "console_scripts": [
            "fewshot-train=fewshot.cli:train_main",
            "fewshot-export=fewshot.cli:export_main",
            "fewshot-predict=fewshot.cli:predict_main",
            "fewshot-pretrain=fewshot.pretrain:main",
            "fewshot-corpus-stats=fewshot.corpus:main",
            "fewshot-compare=fewshot.compare:main",
        ]
    },
)
