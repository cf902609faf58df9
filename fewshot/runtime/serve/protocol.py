"""A serving protocol: the routes it adds to the app, over the shared :class:`~.core.ServeCore`.

>>> [route.path for route in OpenInferenceProtocol().routes(core)][:2]
['/v2/health/live', '/v2/health/ready']

One subclass per protocol (``v1``: fewshot's own JSON, ``oip``: KServe v2 / Triton, ``tei``: Hugging
Face text-embeddings-inference); ``PROTOCOLS`` in ``app`` lists those the app serves. ``open_paths``
are the protocol's health routes, left open by ``--api-key`` unless ``--protect-health``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import List, Tuple

from starlette.routing import BaseRoute

from .core import ServeCore


class Protocol(ABC):
    """Routes in one protocol's shapes: its request parsing, answers and error bodies."""

    name: str = ""
    open_paths: Tuple[str, ...] = ()

    @abstractmethod
    def routes(self, core: ServeCore) -> List[BaseRoute]:
        """The Starlette routes of this protocol, answering through ``core``."""
