"""Running the app under uvicorn: the port bound first, slow clients cut off, a graceful drain on SIGTERM (and Ctrl-C).

>>> sock = bind("127.0.0.1", 8000)        # before the bundle loads: a port in use is one line, at once
>>> serve(app, sock, ServeSettings(), log_level="info")   # returns 0 after a signal, once drained

On the signal uvicorn stops listening and closes idle connections; the app refuses new predictions
(``/readyz`` turns 503 so a load balancer stops routing), runs what is queued at once, answers
every request already received, and only then shuts down; the process exits 0. A request still
unanswered after ``drain_timeout`` seconds is cancelled. A client that has not sent its request
line and headers ``read_timeout`` seconds after connecting (or after starting its next request) is
disconnected; an idle keep-alive connection is closed after ``keep_alive_timeout``; beyond
``max_connections`` open connections (or requests in progress) a request gets 503 at once. With
``ssl_certfile`` and ``ssl_keyfile`` uvicorn serves HTTPS.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import signal
import socket
from types import FrameType
from typing import Any, Optional

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from ...errors import FewshotError
from .settings import ServeSettings


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port``, or a one-line :class:`FewshotError` (in use, not allowed, bad host)."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    except socket.gaierror as exc:
        raise FewshotError(f"--host {host}: cannot resolve it ({exc.strerror})") from None
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise FewshotError(f"--port {port}: the port is already in use on {host} (another server?)") from None
        raise FewshotError(f"--host {host} --port {port}: cannot listen there ({exc.strerror})") from None
    sock.set_inheritable(True)
    return sock


def header_deadline_protocol(seconds: float) -> type:
    """uvicorn's HTTP protocol, closing a connection whose request line and headers take over ``seconds``."""

    class HeaderDeadlineProtocol(HttpToolsProtocol):
        _deadline: Optional[asyncio.TimerHandle] = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            if self._deadline is None:
                self._arm()

        def on_headers_complete(self) -> None:
            self._disarm()
            super().on_headers_complete()

        def connection_lost(self, exc: Optional[Exception]) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            self._deadline = self.loop.call_later(seconds, self._too_slow)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _too_slow(self) -> None:
            self._deadline = None
            if not self.transport.is_closing():
                self.transport.close()

    return HeaderDeadlineProtocol


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


def server_config(app: Any, settings: ServeSettings, log_level: str = "info", ssl_certfile: Optional[str] = None,
                  ssl_keyfile: Optional[str] = None, **where: Any) -> uvicorn.Config:
    """uvicorn's config for ``app`` with the settings' timeouts (``where``: ``host``/``port``, or nothing with a socket)."""
    return uvicorn.Config(app, log_level=log_level, access_log=False, lifespan="on",
                          http=header_deadline_protocol(settings.read_timeout),
                          timeout_keep_alive=settings.keep_alive_timeout,  # type: ignore[arg-type]
                          limit_concurrency=settings.max_connections,
                          timeout_graceful_shutdown=settings.drain_timeout,  # type: ignore[arg-type]
                          ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile, **where)


def serve(app: Any, sock: socket.socket, settings: ServeSettings, log_level: str = "info",
          ssl_certfile: Optional[str] = None, ssl_keyfile: Optional[str] = None) -> int:
    """Serve ``app`` on the bound ``sock`` until SIGTERM or SIGINT, drain, and return 0."""
    config = server_config(app, settings, log_level, ssl_certfile, ssl_keyfile)
    _log_to_stderr(log_level)
    # uvicorn re-sends a caught signal to the process after its graceful shutdown, which would end it
    # with status 143; with a handler that does nothing in place, a drained server returns 0.
    previous = {sig: signal.signal(sig, _drained) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        server = DrainingServer(config)
        server.run(sockets=[sock])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0 if server.started else 1


def _log_to_stderr(level: str) -> None:
    """The server's own log lines (``fewshot.serve``: clients gone, model failures) on stderr, as uvicorn's are."""
    log = logging.getLogger("fewshot.serve")
    if not log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s:     %(message)s"))
        log.addHandler(handler)
    log.setLevel(level.upper())


def _drained(sig: int, frame: Optional[FrameType]) -> None:
    """The signal arrives again after uvicorn's shutdown; the work is done, nothing is left to do."""
