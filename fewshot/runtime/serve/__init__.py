"""``fewshot-serve``: an HTTP server over a bundle with dynamic batching (Starlette, uvicorn, prometheus_client).

It speaks fewshot's ``/v1`` JSON (``v1``), the Open Inference Protocol with Triton's binary tensors
(``oip``) and TEI's ``/predict`` (``tei``) side by side (``PROTOCOLS``), over one :class:`ServeCore`.

Paddle-free, like the rest of ``fewshot.runtime`` (a test enforces it); needs ``pip install "fewshot[serve]"``::

>>> from fewshot.runtime import OnnxPredictor
>>> from fewshot.runtime.serve import ServeSettings, create_app, serve
>>> settings = ServeSettings(max_batch=32, max_wait_ms=5)
>>> serve(create_app(OnnxPredictor("bundle/", batch_size=32), settings), bind("127.0.0.1", 8000), settings)
"""

from .app import PROTOCOLS, create_app
from .batcher import DynamicBatcher, QueueFull
from .core import ServeCore
from .limits import PredictRequest, RequestRejected, parse_predict_request
from .metrics import ServeMetrics
from .server import bind, serve, server_config
from .settings import ServeSettings

__all__ = [
    "DynamicBatcher", "PROTOCOLS", "PredictRequest", "QueueFull", "RequestRejected", "ServeCore", "ServeMetrics",
    "ServeSettings", "bind", "create_app", "parse_predict_request", "serve", "server_config",
]
