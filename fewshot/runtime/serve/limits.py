"""Reading a ``POST /v1/predict`` body within the server's limits; every refusal names its limit.

>>> parse_predict_request(b'{"texts": ["球赛"], "top_k": 2}', ServeSettings(), needs_text_b=False)
PredictRequest(pairs=[('球赛', None)], top_k=2, probabilities=False)
>>> parse_predict_request(json.dumps({"texts": ["球"] * 200}).encode(), ServeSettings(), False)
Traceback (most recent call last):
RequestRejected: 200 texts in one request; the limit is 128 (max_texts)

The texts follow the predictors' one input contract (``fewshot.data.inputs.prediction_pairs``):
strings, or ``{"text_a": …, "text_b": …}`` objects (or ``[text_a, text_b]`` arrays) for pair templates.
"""

from __future__ import annotations

import asyncio
import json
import zlib
from dataclasses import dataclass
from typing import Any, AsyncIterator, Dict, List, Mapping, Optional, Sequence

from ...data.inputs import TextPair, prediction_pairs
from ...data.lines import json_type
from ...errors import DataError
from .settings import ServeSettings

REQUEST_KEYS = ("texts", "top_k", "probabilities")


class RequestRejected(Exception):
    """A request the server refuses: its HTTP status, a one-line message, and the limit it broke (if any)."""

    def __init__(self, status: int, message: str, limit: Optional[str] = None, maximum: Optional[float] = None,
                 headers: Optional[Mapping[str, str]] = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.limit = limit
        self.maximum = maximum
        self.headers = dict(headers or {})

    def body(self) -> Dict[str, Any]:
        """The JSON error: ``{"error": "...", "limit": "max_texts", "max": 128}`` (``limit``/``max`` when one applies)."""
        body: Dict[str, Any] = {"error": self.message}
        if self.limit is not None:
            body.update(limit=self.limit, max=self.maximum)
        return body


@dataclass
class PredictRequest:
    """A checked request: the text pairs in order, how many labels to rank, whether to return all probabilities."""

    pairs: List[TextPair]
    top_k: Optional[int] = None
    probabilities: bool = False


async def read_body(chunks: AsyncIterator[bytes], content_length: Optional[str], settings: ServeSettings,
                    content_encoding: Optional[str] = None) -> bytes:
    """The request body, refused with 413 as soon as it is known to exceed ``settings.max_body_bytes``,
    and with 408 when it has not all arrived ``settings.read_timeout`` seconds after the headers. A
    ``gzip`` or ``deflate`` body (``Content-Encoding``; tritonclient's ``request_compression_algorithm``)
    is inflated, and refused with 413 once it inflates past the same limit."""
    limit = settings.max_body_bytes
    if content_length is not None and content_length.isdigit() and int(content_length) > limit:
        raise _body_too_large(int(content_length), limit)
    body = bytearray()

    async def receive() -> None:
        async for chunk in chunks:
            body.extend(chunk)
            if len(body) > limit:
                raise _body_too_large(len(body), limit)

    try:
        await asyncio.wait_for(receive(), settings.read_timeout)
    except asyncio.TimeoutError:
        raise RequestRejected(408, f"request body: not received within {settings.read_timeout:g} s (read_timeout); "
                                   f"{len(body)} bytes arrived", "read_timeout", settings.read_timeout) from None
    return inflate(bytes(body), content_encoding, limit)


def inflate(body: bytes, content_encoding: Optional[str], limit: int) -> bytes:
    """``body`` decoded by its ``Content-Encoding`` (none, ``identity``, ``gzip``, ``deflate``), at most ``limit`` bytes.

    >>> inflate(gzip.compress(b'{"texts": []}'), "gzip", 1024)
    b'{"texts": []}'
    """
    encoding = (content_encoding or "identity").strip().lower()
    if encoding == "identity":
        return body
    if encoding not in WBITS:
        raise RequestRejected(415, f"Content-Encoding {content_encoding!r}: expected gzip, deflate or none")
    inflater = zlib.decompressobj(WBITS[encoding])
    try:
        data = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise RequestRejected(422, f"request body: not valid {encoding} data ({exc})") from None
    if len(data) > limit or inflater.unconsumed_tail:
        raise RequestRejected(413, f"request body: inflates to more than {limit} bytes (max_body_bytes, from "
                                   "max_texts and max_chars)", "max_body_bytes", limit)
    if not inflater.eof:
        raise RequestRejected(422, f"request body: {encoding} data ends early")
    return data


WBITS = {"gzip": 31, "deflate": 15}
"""zlib's window bits for each Content-Encoding: a gzip wrapper, a zlib wrapper (HTTP's "deflate")."""


def parse_json(body: bytes, where: str = "request body") -> Any:
    """The JSON value of ``body``, or ``RequestRejected`` 422 naming the problem (not JSON, not UTF-8,
    nested deeper than Python's parser goes)."""
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RequestRejected(422, f"{where}: not valid JSON ({exc})") from None
    except RecursionError:
        raise RequestRejected(422, f"{where}: JSON nested too deeply") from None


def _body_too_large(size: int, limit: int) -> RequestRejected:
    return RequestRejected(413, f"request body of {size} bytes; the limit is {limit} (max_body_bytes, from "
                                "max_texts and max_chars)", "max_body_bytes", limit)


def parse_predict_request(body: bytes, settings: ServeSettings, needs_text_b: bool) -> PredictRequest:
    """A ``PredictRequest`` from a JSON body, or ``RequestRejected``: 413 over ``max_texts``, 422 for a
    text over ``max_chars`` or anything malformed (the message says what and where)."""
    payload = parse_json(body)
    if not isinstance(payload, dict):
        raise RequestRejected(422, f"request body: expected a JSON object, found {json_type(payload)}")
    check_keys(payload, REQUEST_KEYS)
    texts = payload.get("texts")
    if not isinstance(texts, list):
        raise RequestRejected(422, f"texts: expected an array of texts, found {json_type(texts)}")
    top_k = payload.get("top_k")
    if top_k is not None and (not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1):
        raise RequestRejected(422, f"top_k: expected a positive integer, found {json.dumps(top_k)}")
    probabilities = payload.get("probabilities", False)
    if not isinstance(probabilities, bool):
        raise RequestRejected(422, f"probabilities: expected true or false, found {json.dumps(probabilities)}")
    return PredictRequest(checked_pairs(texts, settings, needs_text_b), top_k, probabilities)


def check_keys(payload: Dict[str, Any], allowed: Sequence[str]) -> None:
    """422 naming the keys of ``payload`` outside ``allowed``; a key that is not a plain name is shown JSON-quoted.

    >>> check_keys({"texts": [], "topk": 2, "a\\nb": 1}, REQUEST_KEYS)
    Traceback (most recent call last):
    RequestRejected: request body: unknown key(s) "a\\nb", topk (expected texts, top_k, probabilities)
    """
    unknown = sorted(set(payload) - set(allowed))
    if unknown:
        shown = [key if key.isidentifier() else json.dumps(key) for key in unknown]
        raise RequestRejected(422, f"request body: unknown key(s) {', '.join(shown)} (expected {', '.join(allowed)})")


def checked_pairs(texts: List[Any], settings: ServeSettings, needs_text_b: bool, where: str = "texts") -> List[TextPair]:
    """The ``(text_a, text_b)`` pairs of a request's texts, by the predictors' input contract, within
    ``max_texts`` (413) and ``max_chars`` (422); ``where`` names the field in messages."""
    if len(texts) > settings.max_texts:
        raise RequestRejected(413, f"{len(texts)} texts in one request; the limit is {settings.max_texts} (max_texts)",
                              "max_texts", settings.max_texts)
    try:
        pairs = prediction_pairs(texts, needs_text_b)
    except DataError as exc:
        raise RequestRejected(422, f"{where}: {exc}") from None
    for index, pair in enumerate(pairs):
        longest = max(len(text) for text in pair if text is not None)
        if longest > settings.max_chars:
            raise RequestRejected(422, f"{where}: input {index}: {longest} characters; the limit is {settings.max_chars} "
                                       "(max_chars)", "max_chars", settings.max_chars)
    return pairs
