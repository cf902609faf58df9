"""Serving a bundle on Ray Serve replicas: the same ``/v1``, OIP ``/v2`` and TEI routes, batched by ``@serve.batch``.

>>> from ray import serve
>>> from fewshot.integrations.ray_serve import bundle_application
>>> serve.run(bundle_application("bundles/tnews", replicas=2), route_prefix="/")   # http://127.0.0.1:8000
>>> # or scale with load: bundle_application("bundles/tnews", autoscaling={"min_replicas": 1, "max_replicas": 8})

Each replica loads the bundle once (``threads`` onnxruntime threads, as many CPUs reserved for the
replica) and serves ``fewshot-serve``'s app through Ray Serve's ASGI ingress; the texts of all its
requests are gathered by Ray Serve's own request batching (``@serve.batch``: ``max_batch`` texts or
``max_wait_ms``), instead of :class:`~fewshot.runtime.serve.DynamicBatcher`. Ray Serve's proxy spreads
requests over the replicas. ``fewshot-serve BUNDLE --backend ray --replicas N`` runs this on a local
Ray (or ``--ray-address``). Each replica has its own ``/metrics``; a scrape reaches one of them.

Paddle-free; ``ray`` is imported only here (``pip install "fewshot[ray]"``).
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from dataclasses import asdict
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
from ray import serve

from ..runtime.engines import DEFAULT_ENGINE
from ..runtime.predictor import OnnxPredictor
from ..runtime.serve.batcher import BatchTiming, QueueFull
from ..runtime.serve.settings import ServeSettings

Row = Dict[str, Any]
DEFAULTS = ServeSettings()


class ServeBatchQueue:
    """The batcher interface of ``ServeCore`` over a ``@serve.batch`` method: ``run_one(row, timing)`` → probabilities.

    ``queued`` counts the texts submitted and not yet answered (Ray Serve holds the waiting ones); beyond
    ``max_queue`` a request gets 503 at once. Cancelling a request's future cancels its texts' calls.
    """

    def __init__(self, run_one: Any, max_queue: int):
        self.run_one = run_one
        self.max_queue = max_queue
        self.queued = 0
        self.cancelled_texts = 0
        self.on_batch: Optional[Any] = None
        self._started = False

    @property
    def alive(self) -> bool:
        """Whether the app's lifespan has started it and not closed it."""
        return self._started

    def start(self) -> None:
        """Accept work (the app's lifespan, once the bundle is warm)."""
        self._started = True

    def flush(self) -> None:
        """Nothing to do: Ray Serve runs a waiting batch once its wait is over."""

    async def close(self) -> None:
        """Stop accepting work; Ray Serve drains the requests it holds."""
        self._started = False

    def submit_timed(self, rows: Sequence[Row]) -> Tuple["asyncio.Future[np.ndarray]", BatchTiming]:
        """Submit one request's rows; the future resolves to their probabilities ``[len(rows), labels]``."""
        if not self._started:
            raise RuntimeError("the replica is not serving")
        if self.queued + len(rows) > self.max_queue:
            raise QueueFull(self.queued, self.max_queue, 1)
        timing = BatchTiming()
        self.queued += len(rows)

        async def gather() -> np.ndarray:
            try:
                return np.stack(await asyncio.gather(*(self.run_one(row, timing) for row in rows)))
            except asyncio.CancelledError:
                self.cancelled_texts += len(rows)
                raise
            finally:
                self.queued -= len(rows)

        return asyncio.ensure_future(gather()), timing


@serve.ingress()
class BundleIngress:
    """One replica: the bundle's predictor, ``fewshot-serve``'s app, Ray Serve's batching."""

    def __init__(self, bundle: str, settings: Dict[str, Any], threads: int = 1, precision: str = "fp32",
                 api_key: Optional[str] = None, protect_health: bool = False, model_name: Optional[str] = None,
                 engine: str = DEFAULT_ENGINE):
        self.settings = ServeSettings(**settings)
        self.predictor = OnnxPredictor(bundle, threads=threads, batch_size=self.settings.max_batch,
                                       precision=precision, spin=False, engine=engine, throughput=False)
        self.api_key, self.protect_health, self.model_name = api_key, protect_health, model_name
        self._run_batch.set_max_batch_size(self.settings.max_batch)
        self._run_batch.set_batch_wait_timeout_s(self.settings.max_wait_ms / 1000.0)
        self.queue = ServeBatchQueue(self._run_one, self.settings.max_queue)

    async def _run_one(self, row: Row, timing: BatchTiming) -> np.ndarray:
        return await self._run_batch((row, timing))

    @serve.batch(max_batch_size=DEFAULTS.max_batch, batch_wait_timeout_s=DEFAULTS.max_wait_ms / 1000.0)  # set per replica
    async def _run_batch(self, items: List[Tuple[Row, BatchTiming]]) -> List[np.ndarray]:
        start = time.perf_counter()
        timings = list({id(timing): timing for _, timing in items}.values())
        for timing in timings:
            if timing.started_at is None:
                timing.started_at = start
        probs = await asyncio.to_thread(self.predictor.run_rows, [row for row, _ in items])
        seconds = time.perf_counter() - start
        for timing in timings:
            timing.inference_seconds += seconds
        if self.queue.on_batch is not None:
            self.queue.on_batch(len(items), len(timings), seconds)
        return list(probs)

    def __serve_build_asgi_app__(self) -> Any:
        from ..runtime.serve import create_app

        return create_app(self.predictor, self.settings, api_key=self.api_key, protect_health=self.protect_health,
                          model_name=self.model_name, batcher=self.queue)


def bundle_application(bundle: str, settings: Optional[ServeSettings] = None, replicas: Optional[int] = 1,
                       autoscaling: Optional[Dict[str, Any]] = None, threads: int = 1, precision: str = "fp32",
                       api_key: Optional[str] = None, protect_health: bool = False,
                       model_name: Optional[str] = None, engine: str = DEFAULT_ENGINE) -> Any:
    """A Ray Serve application of the bundle: ``replicas`` replicas, or ``autoscaling`` (Ray Serve's
    ``autoscaling_config``, e.g. ``{"min_replicas": 1, "max_replicas": 8, "target_ongoing_requests": 16}``)."""
    from pathlib import Path

    settings = settings or ServeSettings()
    scaling: Dict[str, Any] = {"autoscaling_config": autoscaling} if autoscaling else {"num_replicas": replicas}
    deployment = serve.deployment(BundleIngress, name="fewshot", ray_actor_options={"num_cpus": threads},
                                  max_ongoing_requests=settings.max_queue, **scaling)
    return deployment.bind(str(Path(bundle).resolve()), asdict(settings), threads, precision, api_key, protect_health,
                           model_name or Path(bundle).resolve().name, engine)


def build_app(args: Dict[str, str]) -> Any:
    """Ray Serve's application builder, for ``serve run`` and config files (values are strings there).

    >>> # serve run fewshot.integrations.ray_serve:build_app bundle=bundles/tnews replicas=2 threads=1 max_batch=32
    >>> # serve run examples/serving/ray_serve_config.yaml   (the same arguments under applications[].args)

    Keys: ``bundle`` (required), ``replicas`` or ``min_replicas``/``max_replicas`` (autoscaling), ``threads``,
    ``precision``, ``model_name``, ``protect_health``, and any ``ServeSettings`` field; the API key comes from
    ``FEWSHOT_API_KEY`` in the replicas' environment (never from the config file).
    """
    import os
    from dataclasses import fields

    from ..errors import FewshotError
    from ..numbers import check_number

    given = dict(args)
    if "bundle" not in given:
        raise FewshotError("build_app: the 'bundle' argument is required (a directory written by fewshot-export)")
    kinds = {f.name: f.type for f in fields(ServeSettings)}
    settings = {name: (float if "float" in str(kinds[name]) else int)(given.pop(name)) for name in list(given)
                if name in kinds}

    def count(name: str, default: int) -> int:
        return int(check_number(name, int(given.pop(name, default)), low=1))

    autoscaling = None
    if "min_replicas" in given or "max_replicas" in given:
        autoscaling = {"min_replicas": count("min_replicas", 1), "max_replicas": count("max_replicas", 4),
                       "target_ongoing_requests": count("target_ongoing_requests", 32)}
    application = bundle_application(
        given.pop("bundle"), ServeSettings(**settings), replicas=count("replicas", 1), autoscaling=autoscaling,
        threads=count("threads", 1), precision=given.pop("precision", "fp32"),
        api_key=os.environ.get("FEWSHOT_API_KEY") or None,
        protect_health=str(given.pop("protect_health", "false")).lower() in ("1", "true", "yes"),
        model_name=given.pop("model_name", None))
    if given:
        raise FewshotError(f"build_app: unknown argument(s) {', '.join(sorted(given))}")
    return application


def run_ray_serve(application: Any, host: str, port: int, address: Optional[str] = None,
                  stop: Optional[threading.Event] = None) -> int:
    """Run ``application`` on Ray Serve at ``host:port`` until SIGTERM/SIGINT (or ``stop``), then shut Serve
    and the Ray it started down; returns 0."""
    import ray

    started_ray = not ray.is_initialized()
    if started_ray:
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    stop = stop or threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        serve.start(http_options={"host": host, "port": port})
        serve.run(application, name="fewshot", route_prefix="/", blocking=False)
        stop.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        serve.shutdown()
        if started_ray:
            ray.shutdown()
    return 0
