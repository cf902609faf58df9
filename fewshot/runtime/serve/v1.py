"""fewshot's own JSON protocol: ``POST /v1/predict``, ``GET /v1/model``, ``/healthz``, ``/readyz``, ``/metrics``.

>>> # POST /v1/predict {"texts": ["文登区这些公路及危桥将进入封闭施工"], "top_k": 2}
>>> # → {"predictions": [{"label": "news_car", "score": 0.91, "top_k": [{"label": "news_car", "score": 0.91}, ...]}]}

The answer has one record per text in request order, the same records ``fewshot-predict`` writes
(``prediction_records``), with ``"probabilities": {label: p, ...}`` added when asked. Errors are JSON
``{"error": "..."}`` (``"limit"`` and ``"max"`` when a limit was hit): 413/422 for the request, 503 with
``Retry-After`` when the queue is full or the server is shutting down, 500 when the model failed.
"""

from __future__ import annotations

import os
from dataclasses import asdict
from typing import Any, Dict, List

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ..batch import prediction_records
from .core import ServeCore
from .limits import RequestRejected, parse_predict_request, read_body
from .protocol import Protocol


def v1_error(exc: RequestRejected) -> Response:
    """``{"error": ..., "limit": ..., "max": ...}`` with the refusal's own status."""
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)


def public_description(predictor: Any) -> Dict[str, Any]:
    """The bundle's summary without local paths: a ``base_model`` given as a directory shows its name only.

    >>> public_description(predictor)["base_model"]      # exported from /home/me/models/zh-ernie-tiny
    'zh-ernie-tiny'
    """
    described = dict(predictor.describe())
    base = described.get("base_model")
    if isinstance(base, str) and (os.path.isabs(base) or base.startswith((".", "~")) or "\\" in base):
        described["base_model"] = os.path.basename(base.rstrip("/\\").replace("\\", "/"))
    return described


class V1Protocol(Protocol):
    """fewshot's ``/v1`` routes and the server's health and metrics routes."""

    name = "v1"
    open_paths = ("/healthz", "/readyz", "/metrics")

    def routes(self, core: ServeCore) -> List[BaseRoute]:
        settings, predictor = core.settings, core.predictor

        async def predict(request: Request) -> Response:
            async def handle() -> Response:
                core.check_accepting()
                body = await read_body(request.stream(), request.headers.get("content-length"), settings,
                                       request.headers.get("content-encoding"))
                parsed = parse_predict_request(body, settings, predictor.encoder.needs_text_b)
                probs = (await core.classify(parsed.pairs, request)).probs
                records = prediction_records(predictor, probs, parsed.top_k)
                if parsed.probabilities:
                    for record, row in zip(records, probs.tolist()):
                        record["probabilities"] = dict(zip(predictor.labels, row))
                return JSONResponse({"predictions": records})

            return await core.answer("/v1/predict", handle, v1_error)

        async def model(request: Request) -> Response:
            return JSONResponse({**public_description(predictor), "needs_text_b": predictor.encoder.needs_text_b,
                                 "serve": asdict(settings)})

        async def healthz(request: Request) -> Response:
            return JSONResponse({"status": "alive"})

        async def readyz(request: Request) -> Response:
            reason = core.not_ready()
            if reason is None:
                return JSONResponse({"status": "ready"})
            return JSONResponse({"status": reason}, status_code=503)

        async def metrics(request: Request) -> Response:
            return Response(core.metrics.render(), media_type=core.metrics.content_type)

        return [
            Route("/v1/predict", predict, methods=["POST"]),
            Route("/v1/model", model, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
        ]
