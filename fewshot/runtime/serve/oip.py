"""The Open Inference Protocol (KServe v2, Triton) over HTTP, with Triton's binary tensor data extension.

    GET  /v2/health/live  /v2/health/ready  /v2  /v2/models/tnews[/versions/1]  /v2/models/tnews/ready
    POST /v2/models/tnews/infer
         {"id": "7", "inputs": [{"name": "text", "datatype": "BYTES", "shape": [2], "data": ["球赛", "股价"]}]}
    →    {"model_name": "tnews", "model_version": "1", "id": "7", "outputs": [
           {"name": "label", "datatype": "BYTES", "shape": [2], "data": ["sports", "finance"]},
           {"name": "probabilities", "datatype": "FP32", "shape": [2, 3], "data": [0.8, 0.1, 0.1, 0.2, 0.7, 0.1]}]}

The input ``text`` is ``BYTES`` of shape ``[N]`` (``[N, 2]``: ``(text_a, text_b)`` pairs for pair
templates); ``probabilities`` columns follow ``parameters.labels`` of the model metadata. A
multi-label or hierarchical ``label`` is the JSON array of its labels. With the binary extension
(``tritonclient``'s default) a request's JSON header is the first ``Inference-Header-Content-Length``
bytes and each input with ``parameters.binary_data_size`` follows in order (``BYTES``: each element a
4-byte little-endian length, then its UTF-8); outputs are sent so when asked (``binary_data`` on the
output, or ``binary_data_output`` on the request). Triton's classification extension works on
``probabilities`` (``"parameters": {"classification": k}``): ``BYTES [N, k]`` of ``"score:index:label"``. Errors: ``{"error": "..."}``, 400 for a bad request,
404 for an unknown model or version, 413 past a limit, 503 when overloaded, 500 when the model failed.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ... import __version__
from ...data.inputs import TextPair
from ...data.lines import json_type
from ..batch import prediction_records
from .core import ServeCore
from .limits import RequestRejected, checked_pairs, parse_json, read_body
from .protocol import Protocol
from .settings import ServeSettings

INPUT_NAME = "text"
OUTPUTS = ("label", "probabilities")
MODEL_VERSION = "1"
HEADER_LENGTH = "Inference-Header-Content-Length"


def oip_error(exc: RequestRejected) -> Response:
    """``{"error": "..."}``; a malformed request (422 elsewhere) is the protocol's 400."""
    return JSONResponse({"error": exc.message}, status_code=400 if exc.status == 422 else exc.status,
                        headers=exc.headers)


def split_body(body: bytes, header_length: Optional[str]) -> Tuple[Dict[str, Any], bytes]:
    """The JSON header of an infer request and the binary data after it.

    >>> split_body(b'{"inputs": []}', None)
    ({'inputs': []}, b'')
    """
    if header_length is None:
        size = len(body)
    elif header_length.isdigit() and int(header_length) <= len(body):
        size = int(header_length)
    else:
        raise RequestRejected(400, f"{HEADER_LENGTH} {header_length!r}: expected a byte count within the "
                                   f"{len(body)}-byte body")
    header = parse_json(body[:size], "inference request")
    if not isinstance(header, dict):
        raise RequestRejected(400, f"inference request: expected a JSON object, found {json_type(header)}")
    return header, body[size:]


def decode_bytes_tensor(data: bytes, count: int) -> List[str]:
    """``count`` UTF-8 strings from the binary ``BYTES`` layout (4-byte little-endian length, then the bytes).

    >>> decode_bytes_tensor(b"\\x02\\x00\\x00\\x00ab", 1)
    ['ab']
    """
    texts, offset = [], 0
    for index in range(count):
        if offset + 4 > len(data):
            raise RequestRejected(400, f"input {INPUT_NAME}: binary data ends before element {index} of {count}")
        (size,) = struct.unpack_from("<I", data, offset)
        offset += 4
        if offset + size > len(data):
            raise RequestRejected(400, f"input {INPUT_NAME}: element {index} claims {size} bytes, past the binary data")
        texts.append(_utf8(data[offset:offset + size], index))
        offset += size
    if offset != len(data):
        raise RequestRejected(400, f"input {INPUT_NAME}: {len(data) - offset} bytes of binary data left after "
                                   f"{count} elements")
    return texts


def encode_bytes_tensor(texts: List[str]) -> bytes:
    """The binary ``BYTES`` layout of ``texts`` (inverse of :func:`decode_bytes_tensor`)."""
    parts = []
    for text in texts:
        raw = text.encode("utf-8")
        parts += [struct.pack("<I", len(raw)), raw]
    return b"".join(parts)


def _utf8(raw: bytes, index: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RequestRejected(400, f"input {INPUT_NAME}: element {index} is not UTF-8 ({exc.reason})") from None


def _parameters(holder: Dict[str, Any], where: str) -> Dict[str, Any]:
    """The ``parameters`` object of a request, input or output (``{}`` when absent)."""
    parameters = holder.get("parameters")
    if parameters is None:
        return {}
    if not isinstance(parameters, dict):
        raise RequestRejected(400, f"{where}: parameters must be an object, found {json_type(parameters)}")
    return parameters


def _flatten(data: Any) -> List[Any]:
    """A JSON tensor's elements, row-major, whether given flat or nested."""
    if not isinstance(data, list):
        return [data]
    flat: List[Any] = []
    stack = [iter(data)]
    while stack:
        for item in stack[-1]:
            if isinstance(item, list):
                stack.append(iter(item))
                break
            flat.append(item)
        else:
            stack.pop()
    return flat


def request_texts(header: Dict[str, Any], binary: bytes, needs_text_b: bool) -> List[Any]:
    """The texts (or ``[text_a, text_b]`` pairs) of the request's one ``text`` input."""
    inputs = header.get("inputs")
    if not isinstance(inputs, list) or len(inputs) != 1 or not isinstance(inputs[0], dict):
        raise RequestRejected(400, f"inputs: expected one input, {INPUT_NAME!r} (BYTES [N] or [N, 2])")
    tensor = inputs[0]
    if tensor.get("name") != INPUT_NAME:
        raise RequestRejected(400, f"inputs: unknown input {tensor.get('name')!r}; this model's input is {INPUT_NAME!r}")
    if tensor.get("datatype") != "BYTES":
        raise RequestRejected(400, f"input {INPUT_NAME}: datatype {tensor.get('datatype')!r}; expected 'BYTES'")
    shape = tensor.get("shape")
    width = 2 if needs_text_b else 1
    if not (isinstance(shape, list) and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
            and ((len(shape) == 1 and not needs_text_b) or (len(shape) == 2 and shape[1] == width))):
        wanted = "[N, 2] (text_a, text_b pairs)" if needs_text_b else "[N] (or [N, 1])"
        raise RequestRejected(400, f"input {INPUT_NAME}: shape {json.dumps(shape)}; this model takes {wanted}")
    count = math.prod(shape)
    parameters = _parameters(tensor, f"input {INPUT_NAME}")
    if "binary_data_size" in parameters:
        size = parameters["binary_data_size"]
        if not isinstance(size, int) or size != len(binary):
            raise RequestRejected(400, f"input {INPUT_NAME}: binary_data_size {size!r} but {len(binary)} bytes follow "
                                       "the JSON header")
        elements: List[Any] = decode_bytes_tensor(binary, count)
    else:
        elements = _flatten(tensor.get("data"))
        if len(elements) != count:
            raise RequestRejected(400, f"input {INPUT_NAME}: {len(elements)} elements for shape {json.dumps(shape)}")
    if len(shape) == 2 and shape[1] == 2:
        return [elements[i:i + 2] for i in range(0, count, 2)]
    return elements


@dataclass
class RequestedOutput:
    """One output to send: its name, whether in binary, and ``classification`` (Triton's top-k extension) if asked."""

    name: str
    binary: bool = False
    classification: Optional[int] = None


def _requested_outputs(header: Dict[str, Any]) -> List[RequestedOutput]:
    """The outputs to send, in the request's order (both outputs by default)."""
    binary_default = bool(_parameters(header, "inference request").get("binary_data_output", False))
    requested = header.get("outputs")
    if requested is None:
        return [RequestedOutput(name, binary_default) for name in OUTPUTS]
    if not isinstance(requested, list) or not all(isinstance(o, dict) for o in requested):
        raise RequestRejected(400, "outputs: expected an array of {\"name\": ...} objects")
    chosen = []
    for output in requested:
        if output.get("name") not in OUTPUTS:
            raise RequestRejected(400, f"outputs: unknown output {output.get('name')!r} (this model has "
                                       f"{', '.join(OUTPUTS)})")
        parameters = _parameters(output, f"output {output['name']}")
        classification = parameters.get("classification")
        if classification is not None and (output["name"] != "probabilities" or not isinstance(classification, int)
                                           or isinstance(classification, bool) or classification < 1):
            raise RequestRejected(400, f"outputs: {output['name']}: classification {classification!r}; it applies to "
                                       "'probabilities', as a positive number of classes")
        chosen.append(RequestedOutput(output["name"], bool(parameters.get("binary_data", binary_default)), classification))
    return chosen


def classifications(probs: np.ndarray, labels: List[str], count: int) -> List[List[str]]:
    """Triton's classification extension: per row, the ``count`` best ``"score:index:label"`` strings.

    >>> classifications(np.array([[0.2, 0.8]]), ["sports", "finance"], 1)
    [['0.800000:1:finance']]
    """
    rows = []
    for row in probs.tolist():
        best = sorted(range(len(labels)), key=lambda i: (-row[i], i))[:count]
        rows.append([f"{row[i]:f}:{i}:{labels[i]}" for i in best])
    return rows


@dataclass
class InferRequest:
    """A checked infer request: its id (echoed), text pairs, and the outputs to send as ``(name, binary)``."""

    request_id: Any
    pairs: List[TextPair]
    outputs: List[RequestedOutput]


def parse_infer_request(body: bytes, header_length: Optional[str], settings: ServeSettings,
                        needs_text_b: bool) -> InferRequest:
    """An :class:`InferRequest` from a body (JSON, or JSON + binary tensors), or ``RequestRejected``."""
    header, binary = split_body(body, header_length)
    texts = request_texts(header, binary, needs_text_b)
    outputs = _requested_outputs(header)
    pairs = checked_pairs(texts, settings, needs_text_b, where=f"input {INPUT_NAME}")
    return InferRequest(header.get("id"), pairs, outputs)


def _label_text(label: Any) -> str:
    return label if isinstance(label, str) else json.dumps(label, ensure_ascii=False)


class OpenInferenceProtocol(Protocol):
    """KServe v2 / Triton HTTP routes for the bundle, served as model ``core.model_name`` version 1."""

    name = "oip"
    open_paths = ("/v2/health/live", "/v2/health/ready")

    def routes(self, core: ServeCore) -> List[BaseRoute]:
        predictor, settings = core.predictor, core.settings
        needs_text_b = predictor.encoder.needs_text_b

        def check_model(request: Request) -> None:
            name = request.path_params["name"]
            if name != core.model_name:
                raise RequestRejected(404, f"unknown model {name!r}; this server serves {core.model_name!r}")
            version = request.path_params.get("version")
            if version is not None and version != MODEL_VERSION:
                raise RequestRejected(404, f"model {name!r} has no version {version!r} (versions: {MODEL_VERSION})")

        async def live(request: Request) -> Response:
            return JSONResponse({"live": True})

        async def ready(request: Request) -> Response:
            reason = core.not_ready()
            return JSONResponse({"ready": reason is None}, status_code=200 if reason is None else 503)

        async def server_metadata(request: Request) -> Response:
            return JSONResponse({"name": "fewshot", "version": __version__, "extensions": ["binary_tensor_data"]})

        async def model_metadata(request: Request) -> Response:
            async def handle() -> Response:
                check_model(request)
                return JSONResponse({
                    "name": core.model_name, "versions": [MODEL_VERSION], "platform": "fewshot_onnx",
                    "inputs": [{"name": INPUT_NAME, "datatype": "BYTES", "shape": [-1, 2] if needs_text_b else [-1]}],
                    "outputs": [{"name": "label", "datatype": "BYTES", "shape": [-1]},
                                {"name": "probabilities", "datatype": "FP32", "shape": [-1, len(core.labels)]}],
                    "parameters": {"labels": core.labels, "task": predictor.task.kind},
                })
            return await core.answer("/v2/models/{name}", handle, oip_error)

        async def model_ready(request: Request) -> Response:
            async def handle() -> Response:
                check_model(request)
                reason = core.not_ready()
                return JSONResponse({"name": core.model_name, "ready": reason is None},
                                    status_code=200 if reason is None else 503)
            return await core.answer("/v2/models/{name}/ready", handle, oip_error)

        async def infer(request: Request) -> Response:
            async def handle() -> Response:
                check_model(request)
                core.check_accepting()
                body = await read_body(request.stream(), request.headers.get("content-length"), settings,
                                       request.headers.get("content-encoding"))
                parsed = parse_infer_request(body, request.headers.get(HEADER_LENGTH.lower()), settings, needs_text_b)
                probs = (await core.classify(parsed.pairs, request)).probs
                return _infer_response(core, parsed.request_id, probs, parsed.outputs)
            return await core.answer("/v2/models/{name}/infer", handle, oip_error)

        return [
            Route("/v2/health/live", live, methods=["GET"]),
            Route("/v2/health/ready", ready, methods=["GET"]),
            Route("/v2", server_metadata, methods=["GET"]),
            Route("/v2/models/{name}", model_metadata, methods=["GET"]),
            Route("/v2/models/{name}/versions/{version}", model_metadata, methods=["GET"]),
            Route("/v2/models/{name}/ready", model_ready, methods=["GET"]),
            Route("/v2/models/{name}/versions/{version}/ready", model_ready, methods=["GET"]),
            Route("/v2/models/{name}/infer", infer, methods=["POST"]),
            Route("/v2/models/{name}/versions/{version}/infer", infer, methods=["POST"]),
        ]


def _infer_response(core: ServeCore, request_id: Any, probs: np.ndarray, outputs: List[RequestedOutput]) -> Response:
    """The infer answer: JSON, or JSON header + binary outputs with ``Inference-Header-Content-Length``."""
    labels = [_label_text(r["label"]) for r in prediction_records(core.predictor, probs, None)]
    probs = np.ascontiguousarray(probs, dtype="<f4")
    answer: Dict[str, Any] = {"model_name": core.model_name, "model_version": MODEL_VERSION, "outputs": []}
    if request_id is not None:
        answer["id"] = request_id
    blobs = []
    for output in outputs:
        if output.name == "label":
            datatype, shape, data, raw = "BYTES", [len(labels)], labels, lambda: encode_bytes_tensor(labels)
        elif output.classification is not None:
            classes = classifications(probs, core.labels, output.classification)
            flat = [entry for row in classes for entry in row]
            datatype, shape, data = "BYTES", [len(classes), min(output.classification, len(core.labels))], classes
            raw = lambda flat=flat: encode_bytes_tensor(flat)  # noqa: E731
        else:
            datatype, shape, data, raw = "FP32", list(probs.shape), probs.ravel().tolist(), probs.tobytes
        tensor: Dict[str, Any] = {"name": output.name, "datatype": datatype, "shape": shape}
        if output.binary:
            blob = raw()
            blobs.append(blob)
            tensor["parameters"] = {"binary_data_size": len(blob)}
        else:
            tensor["data"] = data
        answer["outputs"].append(tensor)
    header = json.dumps(answer, ensure_ascii=False).encode("utf-8")
    if not blobs:
        return Response(header, media_type="application/json")
    return Response(header + b"".join(blobs), media_type="application/octet-stream",
                    headers={HEADER_LENGTH: str(len(header))})
