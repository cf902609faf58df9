"""``fewshot-serve``: an HTTP server over a bundle with dynamic batching (Starlette, uvicorn, prometheus_client).

Paddle-free, like the rest of ``fewshot.runtime`` (a test enforces it); needs ``pip install "fewshot[serve]"``::

>>> from fewshot.runtime import OnnxPredictor
>>> from fewshot.runtime.serve import ServeSettings, create_app, serve
>>> settings = ServeSettings(max_batch=32, max_wait_ms=5)
>>> serve(create_app(OnnxPredictor("bundle/", batch_size=32), settings), "127.0.0.1", 8000, settings.drain_timeout)
"""

from .app import create_app
from .batcher import DynamicBatcher, QueueFull
from .limits import PredictRequest, RequestRejected, parse_predict_request
from .metrics import ServeMetrics
from .server import serve
from .settings import ServeSettings

__all__ = [
    "DynamicBatcher", "PredictRequest", "QueueFull", "RequestRejected", "ServeMetrics", "ServeSettings", "create_app",
    "parse_predict_request", "serve",
]
