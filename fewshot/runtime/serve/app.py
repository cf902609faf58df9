"""The ``fewshot-serve`` ASGI app (Starlette): predict, model, health, readiness and metrics routes.

>>> app = create_app(OnnxPredictor("bundle/", batch_size=32), ServeSettings())
>>> # POST /v1/predict {"texts": ["文登区这些公路及危桥将进入封闭施工"], "top_k": 2}
>>> # → {"predictions": [{"label": "news_car", "score": 0.91, "top_k": [{"label": "news_car", "score": 0.91}, ...]}]}

``predictor`` is an ``OnnxPredictor`` (or anything with its ``encoder``, ``encode_texts``, ``run_rows``, ``pool``, ``decode``,
``scores``, ``labels`` and ``describe``). Each request is checked (``limits``), encoded with the
bundle's template encoder, and its rows queued on the :class:`DynamicBatcher`; the answer has one
record per text in request order, the same records ``fewshot-predict`` writes (``prediction_records``),
with ``"probabilities": {label: p, ...}`` added when asked. Errors are JSON ``{"error": "..."}``
(``"limit"`` and ``"max"`` when a limit was hit): 413/422 for the request, 503 with ``Retry-After``
when the queue is full or the server is shutting down.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from typing import Any, AsyncIterator, Dict, List

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ...errors import DataError
from ...template import flatten_windows
from ..batch import prediction_records
from .batcher import DynamicBatcher, QueueFull
from .limits import PredictRequest, RequestRejected, parse_predict_request, read_body
from .metrics import ServeMetrics
from .settings import ServeSettings

WARMUP_TEXT = "预热"


@dataclass
class ServerState:
    """``ready``: the bundle answered its warm-up batch; ``draining``: shutting down, no new work."""

    ready: bool = False
    draining: bool = False


def warmup_rows(predictor: Any, settings: ServeSettings) -> List[Any]:
    """A short row and a full batch of the longest rows, so the first requests meet warm caches."""
    longest = WARMUP_TEXT * predictor.encoder.max_seq_length
    pairs = [(WARMUP_TEXT, WARMUP_TEXT)] + [(longest, longest)] * settings.max_batch
    return predictor.encoder.encode_batch([(a, b if predictor.encoder.needs_text_b else None) for a, b in pairs])


def create_app(predictor: Any, settings: ServeSettings) -> Starlette:
    """The app; its batcher starts and the bundle warms up in the app's lifespan, ``/readyz`` says when."""
    state = ServerState()
    batcher = DynamicBatcher(predictor.run_rows, settings.max_batch, settings.max_wait_ms / 1000.0,
                             settings.max_queue, settings.parallel_batches)
    metrics = ServeMetrics(lambda: batcher.queued)
    batcher.on_batch = metrics.observe_batch

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await asyncio.to_thread(predictor.run_rows, warmup_rows(predictor, settings))
        batcher.start()
        state.ready = True
        yield
        state.ready = False
        state.draining = True
        await batcher.close()

    def drain() -> None:
        """Refuse new predictions, and run the queued ones without waiting for batches to fill."""
        state.draining = True
        batcher.flush()

    async def predict(request: Request) -> Response:
        start = time.perf_counter()
        try:
            if state.draining:
                raise RequestRejected(503, "the server is shutting down", headers={"Retry-After": "1"})
            body = await read_body(request.stream(), request.headers.get("content-length"), settings)
            parsed = parse_predict_request(body, settings, predictor.encoder.needs_text_b)
            answer = await _answer(predictor, batcher, parsed)
            response: Response = JSONResponse(answer)
        except RequestRejected as exc:
            response = JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)
        metrics.observe_request(response.status_code, time.perf_counter() - start)
        return response

    async def model(request: Request) -> Response:
        return JSONResponse({**predictor.describe(), "needs_text_b": predictor.encoder.needs_text_b,
                             "serve": asdict(settings)})

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "alive"})

    async def readyz(request: Request) -> Response:
        if state.draining:
            return JSONResponse({"status": "draining"}, status_code=503)
        if not state.ready:
            return JSONResponse({"status": "warming up"}, status_code=503)
        return JSONResponse({"status": "ready"})

    async def prometheus_metrics(request: Request) -> Response:
        return Response(metrics.render(), media_type=metrics.content_type)

    app = Starlette(lifespan=lifespan, routes=[
        Route("/v1/predict", predict, methods=["POST"]),
        Route("/v1/model", model, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", prometheus_metrics, methods=["GET"]),
    ])
    app.state.batcher, app.state.metrics, app.state.serve, app.state.drain = batcher, metrics, state, drain
    return app


async def _answer(predictor: Any, batcher: DynamicBatcher, parsed: PredictRequest) -> Dict[str, Any]:
    """``{"predictions": [...]}`` for a checked request: encode, wait for its batch, decode."""
    if not parsed.pairs:
        return {"predictions": []}
    try:
        rows, sizes = flatten_windows(predictor.encode_texts(parsed.pairs))
    except DataError as exc:
        raise RequestRejected(422, f"texts: {exc}") from None
    if len(rows) > batcher.max_queue:  # long texts: more windows than the queue can ever hold
        raise RequestRejected(413, f"texts: the {len(sizes)} texts are {len(rows)} windows, more than the queue holds "
                                   f"({batcher.max_queue}); send fewer or shorter texts", "max_queue", batcher.max_queue)
    try:
        probs = predictor.pool(await batcher.submit(rows), sizes)
    except QueueFull as exc:
        raise RequestRejected(503, str(exc), "max_queue", batcher.max_queue,
                              headers={"Retry-After": str(exc.retry_after)}) from None
    records = prediction_records(predictor, probs, parsed.top_k)
    if parsed.probabilities:
        for record, row in zip(records, probs.tolist()):
            record["probabilities"] = dict(zip(predictor.labels, row))
    return {"predictions": records}
