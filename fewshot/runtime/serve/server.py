"""Running the app under uvicorn, with a graceful drain on SIGTERM (and Ctrl-C).

>>> serve(app, host="127.0.0.1", port=8000, drain_timeout=30.0)   # returns 0 after a signal, once drained

On the signal uvicorn stops listening and closes idle connections; the app refuses new predictions
(``/readyz`` turns 503 so a load balancer stops routing), runs what is queued at once, answers
every request already received, and only then shuts down; the process exits 0. A request still
unanswered after ``drain_timeout`` seconds is cancelled.
"""

from __future__ import annotations

import asyncio
import signal
from types import FrameType
from typing import Any, Optional

import uvicorn


class DrainingServer(uvicorn.Server):
    """``uvicorn.Server`` that tells the app to drain the moment a shutdown signal arrives."""

    def __init__(self, config: uvicorn.Config):
        super().__init__(config)
        self.loop: Optional[asyncio.AbstractEventLoop] = None

    async def startup(self, sockets: Any = None) -> None:
        self.loop = asyncio.get_running_loop()
        await super().startup(sockets)

    def handle_exit(self, sig: int, frame: Optional[FrameType]) -> None:
        drain = getattr(self.config.app.state, "drain", None)
        if not self.should_exit and self.loop is not None and drain is not None:
            self.loop.call_soon_threadsafe(drain)
        super().handle_exit(sig, frame)


def serve(app: Any, host: str, port: int, drain_timeout: float, log_level: str = "info") -> int:
    """Serve ``app`` until SIGTERM or SIGINT, drain, and return 0."""
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=False, lifespan="on",
                            timeout_graceful_shutdown=drain_timeout)
    # uvicorn re-sends a caught signal to the process after its graceful shutdown, which would end it
    # with status 143; with a handler that does nothing in place, a drained server returns 0.
    previous = {sig: signal.signal(sig, _drained) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        server = DrainingServer(config)
        server.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0 if server.started else 1


def _drained(sig: int, frame: Optional[FrameType]) -> None:
    """The signal arrives again after uvicorn's shutdown; the work is done, nothing is left to do."""
