"""What every protocol's routes share: classify checked texts through the batcher, health, and answering.

>>> core = ServeCore(OnnxPredictor("bundle/"), ServeSettings())
>>> result = await core.classify([("文登区这些公路及危桥将进入封闭施工", None)], request)
>>> result.probs.shape, result.timings.headers()["x-queue-time"]
((1, 15), '2')

A protocol (``v1``, ``oip``, ``tei``) parses its own request shape into text pairs, calls
:meth:`ServeCore.classify`, and writes its own answer; :meth:`ServeCore.answer` runs a route's handler,
turns a :class:`RequestRejected` (or any unexpected error, as a 500) into the protocol's error body,
and counts every answer in ``fewshot_requests_total{route, status}``. While a request waits for its
batch, the client hanging up cancels it: its queued texts leave the queue and are never computed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Dict, List, Optional

import numpy as np
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from ...data.inputs import TextPair
from ...errors import DataError
from ...template import flatten_windows
from .batcher import DynamicBatcher, QueueFull
from .limits import RequestRejected
from .metrics import ServeMetrics
from .settings import ServeSettings

LOG = logging.getLogger("fewshot.serve")

ErrorResponder = Callable[[RequestRejected], Response]
"""A protocol's error answer for a refusal: its status and body shape."""


@dataclass
class ServerState:
    """``ready``: the bundle answered its warm-up batch; ``draining``: shutting down, no new work;
    ``broken``: why the model cannot be trusted any more (it returned non-finite scores)."""

    ready: bool = False
    draining: bool = False
    broken: Optional[str] = None


@dataclass
class StageTimings:
    """Seconds one request spent tokenizing, queued and in inference, and since it arrived."""

    arrived: float = field(default_factory=time.perf_counter)
    tokenization: float = 0.0
    queue: float = 0.0
    inference: float = 0.0

    def headers(self) -> Dict[str, str]:
        """TEI's timing headers, whole milliseconds: ``{"x-compute-time": "12", "x-queue-time": "2", ...}``."""
        total = time.perf_counter() - self.arrived
        ms = {"x-compute-time": total, "x-tokenization-time": self.tokenization, "x-queue-time": self.queue,
              "x-inference-time": self.inference, "x-total-time": total}
        return {name: str(int(round(seconds * 1000))) for name, seconds in ms.items()}


@dataclass
class Classified:
    """Probabilities ``[texts, labels]`` of one request's texts, in its order, and where its time went."""

    probs: np.ndarray
    timings: StageTimings


class ServeCore:
    """The predictor, its batcher, the metrics and the server's state, shared by every protocol's routes."""

    def __init__(self, predictor: Any, settings: ServeSettings, model_name: Optional[str] = None,
                 batcher: Optional[Any] = None):
        self.predictor = predictor
        self.settings = settings
        self.model_name = model_name or model_name_of(predictor)
        """The name clients use for the bundle (OIP's ``/v2/models/{name}``): the bundle directory's by default."""
        self.state = ServerState()
        self.batcher = batcher or DynamicBatcher(predictor.run_rows, settings.max_batch, settings.max_wait_ms / 1000.0,
                                                 settings.max_queue, settings.parallel_batches)
        """A :class:`DynamicBatcher`, or anything with its ``submit_timed``, ``alive``, ``queued``,
        ``cancelled_texts``, ``max_queue``, ``on_batch``, ``start``, ``flush`` and ``close`` (Ray Serve's batching)."""
        self.metrics = ServeMetrics(lambda: self.batcher.queued, lambda: self.batcher.cancelled_texts)
        self.batcher.on_batch = self.metrics.observe_batch

    @property
    def labels(self) -> List[str]:
        """The label of each probability column."""
        return list(self.predictor.labels)

    def not_ready(self) -> Optional[str]:
        """Why the server should not get traffic now (``None``: ready)."""
        if self.state.draining:
            return "draining"
        if not self.state.ready:
            return "warming up"
        if self.state.broken is not None:
            return self.state.broken
        if not self.batcher.alive:
            return "the batcher has stopped"
        return None

    def check_accepting(self) -> None:
        """Refuse new work while shutting down (503, Retry-After) or once the model is broken (500)."""
        if self.state.draining:
            raise RequestRejected(503, "the server is shutting down", headers={"Retry-After": "1"})
        if self.state.broken is not None:
            raise RequestRejected(500, f"the model is unusable: {self.state.broken}")

    async def classify(self, pairs: List[TextPair], request: Optional[Request] = None) -> Classified:
        """Encode checked ``pairs``, wait for their batches, pool a long text's windows. With ``request``,
        the client hanging up cancels the work (:class:`ClientGone`)."""
        self.check_accepting()
        timings = StageTimings()
        if not pairs:
            return Classified(np.zeros((0, len(self.labels)), dtype=np.float32), timings)
        start = time.perf_counter()
        try:
            rows, sizes = flatten_windows(self.predictor.encode_texts(pairs))
        except DataError as exc:
            raise RequestRejected(422, f"texts: {exc}") from None
        timings.tokenization = time.perf_counter() - start
        if len(rows) > self.batcher.max_queue:  # long texts: more windows than the queue can ever hold
            raise RequestRejected(413, f"texts: the {len(sizes)} texts are {len(rows)} windows, more than the queue "
                                       f"holds ({self.batcher.max_queue}); send fewer or shorter texts",
                                  "max_queue", self.batcher.max_queue)
        try:
            future, batch_timing = self.batcher.submit_timed(rows)
        except QueueFull as exc:
            raise RequestRejected(503, str(exc), "max_queue", self.batcher.max_queue,
                                  headers={"Retry-After": str(exc.retry_after)}) from None
        except RuntimeError as exc:
            raise RequestRejected(503, f"the server cannot take work: {exc}", headers={"Retry-After": "1"}) from None
        try:
            probs = await (future if request is None else _unless_disconnected(future, request))
        except ClientGone:
            raise
        except Exception as exc:  # the model itself failed on this batch
            raise ModelFailed(f"the model failed: {type(exc).__name__}: {exc}") from None
        timings.queue, timings.inference = batch_timing.queue_seconds, batch_timing.inference_seconds
        if not np.isfinite(probs).all():
            self.state.broken = "the model returned non-finite scores"
            LOG.error("fewshot-serve: %s; /readyz now answers 503", self.state.broken)
            raise ModelFailed(self.state.broken)
        self.metrics.observe_stages(timings.tokenization, timings.queue, timings.inference)
        return Classified(self.predictor.pool(probs, sizes), timings)

    async def answer(self, route: str, handler: Callable[[], Awaitable[Response]], error: ErrorResponder) -> Response:
        """``handler()``'s response; a refusal or an unexpected error (500, one log line) in the
        protocol's ``error`` shape. Every answer is counted and timed under ``route``."""
        start = time.perf_counter()
        try:
            response = await handler()
        except RequestRejected as exc:
            response = error(exc)
        except ClientGone:
            LOG.info("fewshot-serve: %s: the client went away before its answer; its queued texts were dropped", route)
            response = Response(status_code=499)
        except ClientDisconnect:
            LOG.info("fewshot-serve: %s: the client went away while sending its request", route)
            response = Response(status_code=499)
        except Exception as exc:  # a bug or a failing model must not leave the client without an answer
            LOG.error("fewshot-serve: %s: %s: %s", route, type(exc).__name__, exc)
            response = error(RequestRejected(500, f"internal error: {type(exc).__name__}: {exc}"))
        self.metrics.observe_request(route, response.status_code, time.perf_counter() - start)
        return response


def model_name_of(predictor: Any) -> str:
    """The bundle directory's name (``bundles/tnews/`` → ``tnews``), or ``model`` without one."""
    bundle_dir = getattr(predictor, "bundle_dir", None)
    return Path(bundle_dir).resolve().name if bundle_dir is not None else "model"


class ClientGone(Exception):
    """The client disconnected while its request waited."""


class ModelFailed(RequestRejected):
    """The model raised or returned non-finite scores: 500 (TEI: 424)."""

    def __init__(self, message: str):
        super().__init__(500, message)


async def _unless_disconnected(future: "asyncio.Future[np.ndarray]", request: Request) -> np.ndarray:
    """The future's result; :class:`ClientGone` (and the future cancelled) if the client hangs up first.
    The body has been read, so the next ASGI message is ``http.disconnect`` when the connection drops."""
    async def disconnected() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    watcher = asyncio.ensure_future(disconnected())
    try:
        await asyncio.wait({future, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
    if not future.done():
        future.cancel()
        raise ClientGone()
    return future.result()
