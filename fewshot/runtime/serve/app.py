"""The ``fewshot-serve`` ASGI app (Starlette): every protocol's routes over one batcher.

>>> app = create_app(OnnxPredictor("bundle/", batch_size=32), ServeSettings(), api_key="s3cret")

``predictor`` is an ``OnnxPredictor`` (or anything with its ``encoder``, ``encode_texts``, ``run_rows``,
``pool``, ``decode``, ``scores``, ``labels`` and ``describe``). The routes of each protocol in
``PROTOCOLS`` (fewshot's ``/v1``, the Open Inference Protocol ``/v2``, TEI's ``/predict``) share the
batcher, so requests of every protocol fill the same batches. The batcher starts and the bundle
warms up in the app's lifespan; ``/readyz`` and ``/v2/health/ready`` say when. With ``api_key`` every
route but the health and metrics routes needs ``Authorization: Bearer <key>`` (those too with
``protect_health``).
"""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, List, Optional, Sequence

from starlette.applications import Starlette
from starlette.middleware import Middleware

from .auth import ApiKeyMiddleware
from .core import ServeCore
from .oip import OpenInferenceProtocol
from .protocol import Protocol
from .settings import ServeSettings
from .tei import TeiProtocol
from .v1 import V1Protocol

WARMUP_TEXT = "预热"

PROTOCOLS: Sequence[Protocol] = (V1Protocol(), OpenInferenceProtocol(), TeiProtocol())
"""The protocols every app serves, side by side."""


def warmup_rows(predictor: Any, settings: ServeSettings) -> List[Any]:
    """A short row and a full batch of the longest rows, so the first requests meet warm caches."""
    longest = WARMUP_TEXT * predictor.encoder.max_seq_length
    pairs = [(WARMUP_TEXT, WARMUP_TEXT)] + [(longest, longest)] * settings.max_batch
    return predictor.encoder.encode_batch([(a, b if predictor.encoder.needs_text_b else None) for a, b in pairs])


def create_app(predictor: Any, settings: ServeSettings, api_key: Optional[str] = None,
               protect_health: bool = False, model_name: Optional[str] = None, batcher: Optional[Any] = None) -> Starlette:
    """The app; ``app.state.core`` is its :class:`ServeCore`, ``app.state.drain()`` starts a graceful shutdown.
    ``model_name``: the bundle's name in the OIP routes (default: its directory's name); ``batcher``: what
    gathers texts into batches (default: a :class:`DynamicBatcher` over ``predictor.run_rows``)."""
    core = ServeCore(predictor, settings, model_name, batcher)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await asyncio.to_thread(predictor.run_rows, warmup_rows(predictor, settings))
        core.batcher.start()
        core.state.ready = True
        yield
        core.state.ready = False
        core.state.draining = True
        await core.batcher.close()

    def drain() -> None:
        """Refuse new predictions, and run the queued ones without waiting for batches to fill."""
        core.state.draining = True
        core.batcher.flush()

    middleware = []
    if api_key is not None:
        open_paths = () if protect_health else tuple(p for protocol in PROTOCOLS for p in protocol.open_paths)
        middleware.append(Middleware(ApiKeyMiddleware, api_key=api_key, open_paths=open_paths))
    app = Starlette(lifespan=lifespan, middleware=middleware,
                    routes=[route for protocol in PROTOCOLS for route in protocol.routes(core)])
    app.state.core, app.state.drain = core, drain
    app.state.batcher, app.state.metrics, app.state.serve = core.batcher, core.metrics, core.state
    return app
