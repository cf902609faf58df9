"""The Paddle-free runtime: a bundle's manifest, the shared template encoder and task, onnxruntime.

Nothing under ``fewshot.runtime`` imports Paddle or PaddleNLP (a test enforces it), so a
deployment image installs only ``pip install fewshot``::

>>> from fewshot.runtime import OnnxPredictor, predict_file
>>> OnnxPredictor("bundle/").predict(["文登区这些公路及危桥将进入封闭施工"])
['news_car']
"""

from .batch import PredictSummary, predict_file, prediction_records, top_k
from .manifest import GRAPH_INPUTS, MANIFEST_NAME, ONNX_FILES, OUTPUT_NAME, read_manifest
from .predictor import OnnxPredictor, bundle_encoder
from .tokenizer import load_wordpiece

__all__ = [
    "GRAPH_INPUTS", "MANIFEST_NAME", "ONNX_FILES", "OUTPUT_NAME", "OnnxPredictor", "PredictSummary", "bundle_encoder",
    "load_wordpiece",
    "predict_file", "prediction_records", "read_manifest", "top_k",
]
