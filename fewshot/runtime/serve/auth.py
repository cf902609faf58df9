"""API-key authentication for every route but the open ones: ``Authorization: Bearer <key>``, compared in constant time.

>>> app = ApiKeyMiddleware(app, api_key="s3cret", open_paths=("/healthz", "/readyz"))
>>> # GET /v1/model without the header → 401 {"error": "missing or wrong API key (Authorization: Bearer <key>)"}

The key comes from ``--api-key``, ``--api-key-file`` or ``FEWSHOT_API_KEY`` (``fewshot-serve``);
health and metrics routes stay open for probes and scrapers unless ``--protect-health``.
"""

from __future__ import annotations

import hmac
import json
from typing import Any, Awaitable, Callable, Dict, MutableMapping, Sequence

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Dict[str, Any]]]
Send = Callable[[Dict[str, Any]], Awaitable[None]]

UNAUTHORIZED = json.dumps({"error": "missing or wrong API key (Authorization: Bearer <key>)"}).encode()


class ApiKeyMiddleware:
    """A pure ASGI middleware: HTTP requests to paths outside ``open_paths`` need the bearer key."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], api_key: str,
                 open_paths: Sequence[str] = ()):
        self.app = app
        self.expected = f"Bearer {api_key}".encode()
        self.open_paths = frozenset(open_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.open_paths or self._authorized(scope):
            await self.app(scope, receive, send)
            return
        await send({"type": "http.response.start", "status": 401,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(UNAUTHORIZED)).encode()),
                                (b"www-authenticate", b'Bearer realm="fewshot"')]})
        await send({"type": "http.response.body", "body": UNAUTHORIZED})

    def _authorized(self, scope: Scope) -> bool:
        given = b""
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                given = value
        return hmac.compare_digest(given, self.expected)
