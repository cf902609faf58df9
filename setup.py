"""Install fewshot.

- ``pip install fewshot``: the Paddle-free runtime (``OnnxPredictor``, ``fewshot-predict``): onnxruntime,
  tokenizers, numpy — what a deployment image needs;
- ``pip install "fewshot[train]"``: training, export and pretraining (PaddlePaddle, PaddleNLP, paddle2onnx);
- ``[analysis]`` adds label-error detection (cleanlab) and the HTML report's pictures (matplotlib):
  ``fewshot-analyze``, ``fewshot-select``, ``fewshot-report``;
- ``[serve]`` adds ``fewshot-serve`` (Starlette, uvicorn, prometheus_client); ``[ray]`` Ray Data batch
  inference (``fewshot-predict --backend ray``, ``fewshot.integrations.ray``); ``[openvino]`` the OpenVINO
  inference engine (``--engine openvino``: bf16 and int8 on CPU); ``[test]`` what the test suite needs.

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

ANALYSIS_REQUIRES = [
    # Confident learning (find_label_issues, label quality scores) for single- and multi-label rows.
    "cleanlab>=2.5",
    # The report's pictures, drawn on the Agg canvas and embedded as PNG.
    "matplotlib",
]

SERVE_REQUIRES = [
    "starlette",          # the ASGI app and its routing (what FastAPI is built on, without its per-request layers)
    "uvicorn[standard]",  # the server; [standard] brings httptools and uvloop, its fast C HTTP parser and event loop
    "prometheus_client",  # /metrics in the Prometheus text format
]
"""fewshot-serve: PaddleNLP already depends on FastAPI (Starlette) and uvicorn, so training installs have them too."""

RAY_REQUIRES = ["ray[data,serve]"]
"""Ray Data for distributed batch inference (fewshot.integrations.ray) and Ray Serve for serving on replicas
(fewshot.integrations.ray_serve, ``fewshot-serve --backend ray``); ray is imported only there."""

OPENVINO_REQUIRES = ["openvino"]
"""The OpenVINO inference engine (``--engine openvino``); imported only in fewshot.runtime.engines.openvino_engine."""

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
        "analysis": ANALYSIS_REQUIRES,
        "serve": SERVE_REQUIRES,
        "ray": RAY_REQUIRES,
        "openvino": OPENVINO_REQUIRES,
        # tritonclient and huggingface_hub: the real clients the serving protocols' tests talk to fewshot-serve with;
        # hypothesis: the parsers' fuzz tests
        "test": ["pytest", "pytest-timeout", "httpx", "hypothesis", "tritonclient[http]", "huggingface_hub"],
    },
    entry_points={
        "console_scripts": [
            "fewshot-train=fewshot.cli.launch:train",
            "fewshot-export=fewshot.cli.launch:export",
            "fewshot-predict=fewshot.cli.predict:main",
            "fewshot-serve=fewshot.cli.serve:main",
            "fewshot-pretrain=fewshot.cli.launch:pretrain",
            "fewshot-corpus-stats=fewshot.cli.launch:corpus_stats",
            "fewshot-compare=fewshot.cli.launch:compare",
            "fewshot-analyze=fewshot.cli.launch:analyze",
            "fewshot-select=fewshot.cli.launch:select",
            "fewshot-report=fewshot.cli.launch:report",
            "fewshot-labelwords=fewshot.cli.launch:labelwords",
            "fewshot-import=fewshot.cli.launch:import_paddlenlp",
        ]
    },
)
