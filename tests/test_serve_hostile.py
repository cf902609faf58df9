"""fewshot-serve against hostile and careless clients and options (issue 26, the server's groups 5, 8, 11, 13).

Each test failed on the server before: NaN options hung it, a port in use was found only after loading,
disconnected clients' texts were still computed, slow clients held connections forever, deep JSON was a
500, 500s went uncounted, a dead batcher or a NaN model left /readyz green.
"""

import asyncio
import json
import logging
import socket
import time

import numpy as np
import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
import httpx  # noqa: E402

from fewshot.cli.serve import main as serve_main  # noqa: E402
from fewshot.cpu_env import usable_cores  # noqa: E402
from fewshot.runtime import OnnxPredictor  # noqa: E402
from test_serve import LOCALHOST, GatedPredictor, metric_samples, running, serving, wait_for  # noqa: E402


@pytest.fixture(scope="module")
def predictor(tiny_bundle):
    return OnnxPredictor(tiny_bundle, threads=1)


@pytest.mark.parametrize("option,value,message", [
    ("--max-wait-ms", "nan", "argument --max-wait-ms: must be a finite number, got nan"),
    ("--drain-timeout", "inf", "argument --drain-timeout: must be a finite number, got inf"),
    ("--read-timeout", "0", "--read-timeout must be > 0, got 0.0"),
    ("--port", "70000", "argument --port: must be ≤ 65535, got 70000"),
    ("--threads", "100000", f"argument --threads: must be ≤ {usable_cores()}, got 100000"),
    ("--parallel-batches", "100000", f"--parallel-batches must be ≤ {usable_cores()}, got 100000"),
])
def test_numeric_options_out_of_range_are_one_line_errors(tiny_bundle, capsys, option, value, message):
    try:
        status = serve_main([str(tiny_bundle), option, value])
    except SystemExit as exc:  # argparse's own refusal: usage and one error line, status 2
        status = exc.code
    assert status == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_a_port_in_use_is_reported_in_one_line_before_the_bundle_loads(tmp_path, capsys):
    with socket.socket() as taken:
        taken.bind((LOCALHOST, 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        # the bundle does not exist: the port error coming first shows nothing was loaded before the bind
        assert serve_main([str(tmp_path / "no-bundle"), "--host", LOCALHOST, "--port", str(port)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"fewshot-serve: error: --port {port}: the port is already in use on {LOCALHOST} (another server?)"]


def test_queued_texts_of_a_client_that_hung_up_are_never_computed(predictor, separable_task):
    texts = [e.text_a for e in separable_task[1]]
    gated = GatedPredictor(predictor)
    computed = []
    run_rows = gated.run_rows

    def counting(rows):
        computed.append(len(rows))
        return run_rows(rows)

    gated.run_rows = counting
    with serving(gated, max_batch=2, max_wait_ms=0, max_queue=64, max_texts=32) as base:
        computed.clear()
        gated.gate.clear()
        gated.entered.clear()  # the warm-up batch set it: wait for the holder's own batch

        async def scenario():
            async with httpx.AsyncClient(timeout=30) as client:
                holder = asyncio.ensure_future(client.post(base + "/v1/predict", json={"texts": texts[:2]}))
                await asyncio.to_thread(gated.entered.wait, 20)
                leaver = asyncio.ensure_future(client.post(base + "/v1/predict", json={"texts": texts[2:32]}))
                await asyncio.to_thread(wait_for, lambda: metric_samples(base)[("fewshot_queue_depth", ())] == 30,
                                        "30 queued texts")
                leaver.cancel()  # the client gives up: httpx closes its connection
                await asyncio.to_thread(wait_for, lambda: metric_samples(base)[("fewshot_queue_depth", ())] == 0,
                                        "the queue to drop the texts")
                gated.gate.set()
                return await holder

        held = asyncio.run(scenario())
        samples = metric_samples(base)
    assert held.status_code == 200
    assert sum(computed) == 2  # only the holder's batch ran; none of the 30 abandoned texts
    assert samples[("fewshot_cancelled_texts_total", ())] == 30
    assert samples[("fewshot_requests_total", (("route", "/v1/predict"), ("status", "499")))] == 1


def test_slow_headers_are_cut_off_and_a_slow_body_gets_408(predictor):
    with serving(predictor, read_timeout=0.5, max_wait_ms=0) as base:
        port = int(base.rsplit(":", 1)[1])
        with socket.create_connection((LOCALHOST, port), timeout=10) as trickle:
            trickle.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: x\r\n")  # the headers never end
            assert trickle.recv(1024) == b""  # the server closes the connection after read_timeout
        with socket.create_connection((LOCALHOST, port), timeout=10) as slow:
            slow.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 100\r\n\r\n{\"texts\": [")
            answer = slow.recv(4096).decode()
        ok = httpx.post(base + "/v1/predict", json={"texts": ["球赛"]}, timeout=10)
    assert answer.startswith("HTTP/1.1 408")
    assert '"limit":"read_timeout"' in answer.replace(" ", "")
    assert ok.status_code == 200


@pytest.mark.parametrize("path,status", [("/v1/predict", 422), ("/predict", 422), ("/v2/models/bundle/infer", 400)])
def test_deeply_nested_json_is_a_4xx_on_every_route(predictor, path, status):
    with serving(predictor, max_wait_ms=0) as base:
        response = httpx.post(base + path, content=b"[" * 100_000, timeout=10)
        samples = metric_samples(base)
    assert response.status_code == status
    assert response.json()["error"].endswith("JSON nested too deeply")
    assert sum(v for (name, labels), v in samples.items() if name == "fewshot_requests_total" and ("status", "500") in labels) == 0


def test_compressed_bodies_are_inflated_within_the_body_limit(predictor):
    import gzip

    settings = dict(max_texts=2, max_chars=10, max_queue=8)
    with serving(predictor, **settings) as base:
        def post(body, encoding):
            return httpx.post(base + "/v1/predict", content=body, headers={"Content-Encoding": encoding}, timeout=10)

        ok = post(gzip.compress(json.dumps({"texts": ["球赛"]}).encode()), "gzip")
        bomb = post(gzip.compress(b" " * 50_000_000), "gzip")  # 49 KB on the wire, 50 MB inflated
        broken = post(b"not gzip", "gzip")
        unknown = post(b"{}", "br")
    assert ok.status_code == 200
    assert bomb.status_code == 413 and bomb.json()["limit"] == "max_body_bytes"
    assert broken.status_code == 422 and broken.json()["error"].startswith("request body: not valid gzip data")
    assert unknown.status_code == 415


class NanPredictor(GatedPredictor):
    def __init__(self, predictor):
        super().__init__(predictor)
        self.calls = 0

    def run_rows(self, rows):
        self.calls += 1
        probs = self.predictor.run_rows(rows)
        return probs if self.calls == 1 else np.full_like(probs, np.nan)


def test_a_model_answering_nan_makes_the_server_unready_and_never_sends_nan(predictor):
    with serving(NanPredictor(predictor), max_wait_ms=0) as base:
        first = httpx.post(base + "/v1/predict", json={"texts": ["球赛"]}, timeout=10)
        later = httpx.post(base + "/predict", json={"inputs": "球赛"}, timeout=10)
        ready = httpx.get(base + "/readyz", timeout=10)
        oip_ready = httpx.get(base + "/v2/health/ready", timeout=10)
        samples = metric_samples(base)
    assert first.status_code == 500 and "NaN" not in first.text
    assert first.json() == {"error": "the model returned non-finite scores"}
    assert later.status_code == 424 and later.json()["error"] == "the model is unusable: the model returned non-finite scores"
    assert ready.status_code == 503 and ready.json() == {"status": "the model returned non-finite scores"}
    assert oip_ready.status_code == 503
    assert samples[("fewshot_requests_total", (("route", "/v1/predict"), ("status", "500")))] == 1


def test_a_dead_batcher_turns_readiness_red_and_requests_get_503(predictor):
    with running(predictor, max_wait_ms=0) as (base, app, server):
        # the app's own event loop runs in the server thread: end the batcher's task there
        app_core = app.state.core
        server.loop.call_soon_threadsafe(app_core.batcher._worker.cancel)
        wait_for(lambda: not app_core.batcher.alive, "the batcher to stop")
        ready = httpx.get(base + "/readyz", timeout=10)
        answer = httpx.post(base + "/v1/predict", json={"texts": ["球赛"]}, timeout=10)
    assert ready.status_code == 503 and ready.json() == {"status": "the batcher has stopped"}
    assert answer.status_code == 503 and answer.json()["error"].startswith("the server cannot take work")


def test_a_client_leaving_mid_body_logs_one_line_not_a_traceback(predictor, caplog):
    with caplog.at_level(logging.INFO):
        with serving(predictor, max_wait_ms=0) as base:
            port = int(base.rsplit(":", 1)[1])
            with socket.create_connection((LOCALHOST, port), timeout=10) as leaving:
                leaving.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"texts\": [")
                time.sleep(0.3)
            wait_for(lambda: any("while sending its request" in r.getMessage() for r in caplog.records), "the log line")
            samples = metric_samples(base)
    assert not [r for r in caplog.records if r.exc_info or "Traceback" in r.getMessage()]
    assert samples[("fewshot_requests_total", (("route", "/v1/predict"), ("status", "499")))] == 1


hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings as hypothesis_settings, strategies as st  # noqa: E402

from fewshot.runtime.serve import RequestRejected, ServeSettings, parse_predict_request  # noqa: E402
from fewshot.runtime.serve.oip import encode_bytes_tensor, parse_infer_request  # noqa: E402
from fewshot.runtime.serve.tei import parse_tei_request  # noqa: E402

JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
                    max_leaves=16)
TENSOR = st.fixed_dictionaries({"name": st.sampled_from(["text", "texts"]), "datatype": st.sampled_from(["BYTES", "FP32"]),
                                "shape": st.lists(st.integers(-2, 4), max_size=3), "data": JSON},
                               optional={"parameters": JSON | st.dictionaries(st.sampled_from(["binary_data_size"]), JSON)})
OUTPUT = st.fixed_dictionaries({"name": st.sampled_from(["label", "probabilities", "x"])},
                               optional={"parameters": JSON | st.dictionaries(
                                   st.sampled_from(["binary_data", "classification"]), JSON)})
BODIES = st.one_of(
    st.binary(max_size=64),
    JSON.map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries({"texts": JSON}, optional={"top_k": JSON, "probabilities": JSON}).map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries({"inputs": JSON}, optional={"raw_scores": JSON, "parameters": JSON}).map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries({"inputs": st.lists(TENSOR, max_size=2)},
                          optional={"outputs": JSON | st.lists(OUTPUT, max_size=3), "parameters": JSON}).map(
        lambda v: json.dumps(v).encode()),
)
LIMITS = ServeSettings(max_texts=4, max_chars=20, max_queue=8)


@hypothesis_settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=BODIES, binary=st.lists(st.text(max_size=6), max_size=3), needs_text_b=st.booleans())
def test_request_parsers_of_every_protocol_answer_any_body_with_a_refusal_or_pairs(body, binary, needs_text_b):
    tail = encode_bytes_tensor(binary)
    attempts = [lambda: parse_predict_request(body, LIMITS, needs_text_b),
                lambda: parse_tei_request(body, LIMITS, needs_text_b, 3),
                lambda: parse_tei_request(body, LIMITS, needs_text_b, 3, inference_api=True),
                lambda: parse_infer_request(body, None, LIMITS, needs_text_b),
                lambda: parse_infer_request(body + tail, str(len(body)), LIMITS, needs_text_b)]
    for attempt in attempts:
        try:
            parsed = attempt()
        except RequestRejected as exc:
            assert 400 <= exc.status < 500 and exc.message and "\n" not in exc.message
        else:
            assert all(isinstance(a, str) and (b is None) != needs_text_b for a, b in parsed.pairs)


def test_connections_beyond_max_connections_get_503_and_the_server_recovers(predictor):
    with serving(predictor, max_connections=3, max_wait_ms=0, read_timeout=5) as base:
        port = int(base.rsplit(":", 1)[1])
        idle = [socket.create_connection((LOCALHOST, port), timeout=10) for _ in range(3)]  # slowloris-style
        try:
            refused = httpx.post(base + "/v1/predict", json={"texts": ["球赛"]}, timeout=10)
        finally:
            for sock in idle:
                sock.close()
        wait_for(lambda: httpx.get(base + "/healthz", timeout=10).status_code == 200, "the server to take requests again")
        ok = httpx.post(base + "/v1/predict", json={"texts": ["球赛"]}, timeout=10)
    assert refused.status_code == 503
    assert ok.status_code == 200
