"""Hugging Face text-embeddings-inference (TEI) classification: ``POST /predict`` and ``POST /``.

    POST /predict {"inputs": "球赛"}                       → [{"label": "sports", "score": 0.8}, {"label": ..., ...}, ...]
    POST /predict {"inputs": ["球赛", "股价"]}              → one (text_a, text_b) pair, as TEI reads it
    POST /predict {"inputs": [["球赛"], ["股价"]]}           → [[...], [...]]: a batch, one ranking per input
    POST /        {"inputs": "球赛", "parameters": {"top_k": 2}}   → [[{...}, {...}]] (the Inference API's shape)

Each input's answer lists every label, highest score first; ``raw_scores`` gives logits recovered from
the bundle's probabilities instead (``log p`` for single-label bundles, the same up to a constant as
the model's logits over its temperature; ``log(p / (1 - p))`` for independent labels). ``truncate``
is accepted; a bundle always truncates (or windows) texts as its template says. The root route also
takes the Inference API's ``parameters`` (``top_k``, ``function_to_apply``), which
``huggingface_hub.InferenceClient.text_classification`` sends, and then answers in its shape (a list
per input, top ``top_k`` labels). Errors: ``{"error": "...", "error_type": "Validation"}`` with TEI's
status codes: 413 a batch too large, 422 invalid input, 429 overloaded, 424 the model failed, 503
shutting down. Successful answers carry TEI's timing headers, in milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ...data.inputs import TextPair
from ...data.lines import json_type
from .core import ServeCore
from .limits import RequestRejected, check_keys, checked_pairs, parse_json, read_body
from .protocol import Protocol
from .settings import ServeSettings

REQUEST_KEYS = ("inputs", "raw_scores", "truncate", "truncation_direction", "parameters")

RAW_SCORES: Dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "softmax": lambda p: np.log(np.clip(p, 1e-38, None)),
    "sigmoid": lambda p: np.log(np.clip(p, 1e-38, None)) - np.log(np.clip(1.0 - p, 1e-38, None)),
}
"""Logits recovered from probabilities, by the task's activation."""


def tei_error(exc: RequestRejected) -> Response:
    """TEI's ``{"error", "error_type"}`` and status for a refusal."""
    if exc.status == 503 and exc.limit == "max_queue":
        status, kind = 429, "Overloaded"
    elif exc.status == 503:
        status, kind = 503, "Unhealthy"
    elif exc.status >= 500:
        status, kind = 424, "Backend"
    elif exc.limit == "empty":
        status, kind = 422, "Empty"
    else:
        status, kind = exc.status, "Validation"
    return JSONResponse({"error": exc.message, "error_type": kind}, status_code=status, headers=exc.headers)


def parse_inputs(inputs: Any) -> Tuple[List[List[str]], bool]:
    """TEI's ``inputs`` as a list of sequences (``[text]`` or ``[text_a, text_b]``), and whether it was a batch.

    >>> parse_inputs("球赛"), parse_inputs(["球赛", "股价"]), parse_inputs([["球赛"], ["雨", "风"]])
    (([['球赛']], False), ([['球赛', '股价']], False), ([['球赛'], ['雨', '风']], True))
    """
    if isinstance(inputs, str):
        return [[inputs]], False
    if not isinstance(inputs, list) or not inputs:
        if isinstance(inputs, list):
            raise RequestRejected(422, "inputs: cannot be empty", "empty")
        raise RequestRejected(422, f"inputs: expected a string, a [string, string] pair or a batch "
                                   f"[[string], [string, string], ...], found {json_type(inputs)}")
    if isinstance(inputs[0], str):
        if len(inputs) > 2 or not all(isinstance(t, str) for t in inputs):
            raise RequestRejected(422, "inputs: a sequence is a string or a [string, string] pair; "
                                       "send a batch as [[string], [string], ...]")
        return [list(inputs)], False
    for index, sequence in enumerate(inputs):
        if not (isinstance(sequence, list) and len(sequence) in (1, 2) and all(isinstance(t, str) for t in sequence)):
            raise RequestRejected(422, f"inputs: input {index}: expected [string] or [string, string], "
                                       f"found {json_type(sequence)}")
    return inputs, True


def _flag(payload: Dict[str, Any], name: str) -> bool:
    value = payload.get(name, False)
    if not isinstance(value, bool):
        raise RequestRejected(422, f"{name}: expected true or false, found {json_type(value)}")
    return value


def _top_k(parameters: Dict[str, Any], labels: int) -> Optional[int]:
    top_k = parameters.get("top_k")
    if top_k is None:
        return None
    if not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1:
        raise RequestRejected(422, f"parameters.top_k: expected a positive integer, found {top_k!r}")
    return min(top_k, labels)


def rankings(labels: List[str], scores: np.ndarray, top_k: Optional[int]) -> List[List[Dict[str, Any]]]:
    """Per row, ``{"label", "score"}`` of every label (or the best ``top_k``), highest first (ties: label order)."""
    ranked = []
    for row in scores.tolist():
        order = sorted(range(len(labels)), key=lambda i: (-row[i], i))[:top_k]
        ranked.append([{"label": labels[i], "score": row[i]} for i in order])
    return ranked


@dataclass
class TeiRequest:
    """A checked TEI request: its text pairs, whether to answer a list per input, raw scores, how many labels."""

    pairs: List[TextPair]
    batch: bool
    raw_scores: bool
    top_k: Optional[int]


def parse_tei_request(body: bytes, settings: ServeSettings, needs_text_b: bool, labels: int,
                      inference_api: bool = False) -> TeiRequest:
    """A :class:`TeiRequest` from a ``/predict`` body (``inference_api``: the root route, which also takes
    the Inference API's ``parameters`` and then answers a list per input), or ``RequestRejected``."""
    payload = parse_json(body)
    if not isinstance(payload, dict):
        raise RequestRejected(422, f"request body: expected a JSON object, found {json_type(payload)}")
    allowed = REQUEST_KEYS if inference_api else REQUEST_KEYS[:-1]
    check_keys(payload, allowed)
    sequences, batch = parse_inputs(payload.get("inputs"))
    raw = _flag(payload, "raw_scores")
    _flag(payload, "truncate")
    parameters = payload.get("parameters")
    if parameters is not None and not isinstance(parameters, dict):
        raise RequestRejected(422, f"parameters: expected an object, found {json_type(parameters)}")
    top_k = _top_k(parameters or {}, labels)
    function = (parameters or {}).get("function_to_apply")
    if function not in (None, "softmax", "sigmoid", "none"):
        raise RequestRejected(422, f"parameters.function_to_apply: expected softmax, sigmoid or none, found {function!r}")
    for index, sequence in enumerate(sequences):
        if len(sequence) == 2 and not needs_text_b:
            raise RequestRejected(422, f"inputs: input {index}: a pair, but this model's template takes one text")
    pairs = checked_pairs(sequences, settings, needs_text_b, where="inputs")
    return TeiRequest(pairs, batch or parameters is not None, raw or function == "none", top_k)


class TeiProtocol(Protocol):
    """TEI's ``/predict`` (and root ``/``), ``/info`` and ``/health`` routes."""

    name = "tei"
    open_paths = ("/health",)

    def routes(self, core: ServeCore) -> List[BaseRoute]:
        predictor, settings = core.predictor, core.settings

        async def classify(request: Request, route: str, inference_api: bool) -> Response:
            async def handle() -> Response:
                core.check_accepting()
                body = await read_body(request.stream(), request.headers.get("content-length"), settings,
                                       request.headers.get("content-encoding"))
                parsed = parse_tei_request(body, settings, predictor.encoder.needs_text_b, len(core.labels), inference_api)
                pairs, raw, top_k = parsed.pairs, parsed.raw_scores, parsed.top_k
                result = await core.classify(pairs, request)
                scores = RAW_SCORES[predictor.task.activation](result.probs.astype(np.float64)) if raw else result.probs
                ranked = rankings(core.labels, scores, top_k)
                answer: Any = ranked if parsed.batch else ranked[0]
                characters = sum(len(text) for pair in pairs for text in pair if text is not None)
                headers = {**result.timings.headers(), "x-compute-characters": str(characters), "x-compute-type": "cpu"}
                return JSONResponse(answer, headers=headers)
            return await core.answer(route, handle, tei_error)

        async def predict(request: Request) -> Response:
            return await classify(request, "/predict", False)

        async def root(request: Request) -> Response:
            return await classify(request, "/", True)

        async def health(request: Request) -> Response:
            reason = core.not_ready()
            if reason is None:
                return Response(status_code=200)
            return JSONResponse({"error": reason, "error_type": "Unhealthy"}, status_code=503)

        async def info(request: Request) -> Response:
            return JSONResponse({"model_id": core.model_name, "model_type": {"classifier": {
                "id2label": {str(i): label for i, label in enumerate(core.labels)},
                "label2id": {label: i for i, label in enumerate(core.labels)}}},
                "max_input_length": predictor.encoder.max_seq_length, "max_client_batch_size": settings.max_texts,
                "max_batch_tokens": settings.max_batch * predictor.encoder.max_seq_length,
                "max_concurrent_requests": settings.max_queue, "version": "fewshot"})

        return [
            Route("/predict", predict, methods=["POST"]),
            Route("/", root, methods=["POST"]),
            Route("/health", health, methods=["GET"]),
            Route("/info", info, methods=["GET"]),
        ]
