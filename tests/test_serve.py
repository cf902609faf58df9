"""fewshot-serve: dynamic batching, back-pressure, limits, metrics, model info and a graceful SIGTERM drain.

Servers bind to 127.0.0.1 only, on a port the OS picks; every request loop is bounded.
"""

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
pytest.importorskip("prometheus_client")
import httpx  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from fewshot.cli.serve import main as serve_main  # noqa: E402
from fewshot.runtime import OnnxPredictor, prediction_records  # noqa: E402
from fewshot.runtime.serve import ServeSettings, create_app  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
LOCALHOST = "127.0.0.1"


class GatedPredictor:
    """An OnnxPredictor whose ``run_rows`` waits while ``gate`` is closed: batches pile up on demand."""

    def __init__(self, predictor):
        self.predictor = predictor
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()

    def __getattr__(self, name):
        return getattr(self.predictor, name)

    def run_rows(self, rows):
        self.entered.set()
        assert self.gate.wait(20), "the test never opened the gate"
        return self.predictor.run_rows(rows)


@contextmanager
def serving(predictor, **settings):
    """The app on 127.0.0.1 in a thread, once ready; yields its base URL."""
    with running(predictor, **settings) as (base, app, server):
        yield base


@contextmanager
def running(predictor, **settings):
    """The app under fewshot-serve's uvicorn config (timeouts included) in a thread; yields (base URL, app, server)."""
    from fewshot.runtime.serve import server_config
    from fewshot.runtime.serve.server import DrainingServer

    app = create_app(predictor, ServeSettings(**settings))
    server = DrainingServer(server_config(app, ServeSettings(**settings), "warning", host=LOCALHOST, port=0))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{LOCALHOST}:{port}", app, server
    finally:
        server.should_exit = True
        thread.join(30)


def metric_samples(base):
    """{(name, labels as a sorted tuple): value} of every sample /metrics exposes."""
    text = httpx.get(base + "/metrics", timeout=10).text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def wait_for(condition, what, seconds=20):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


async def post_all(base, bodies):
    async with httpx.AsyncClient(timeout=30) as client:
        return await asyncio.gather(*[client.post(base + "/v1/predict", json=body) for body in bodies])


@pytest.fixture(scope="module")
def predictor(tiny_bundle):
    return OnnxPredictor(tiny_bundle, threads=1, batch_size=64)


@pytest.fixture(scope="module")
def texts(separable_task):
    return [e.text_a for e in separable_task[1]]


def expected_records(predictor, texts, k=None):
    return prediction_records(predictor, predictor.predict_proba(texts), k)


def assert_same_records(got, expected):
    assert [r["label"] for r in got] == [r["label"] for r in expected]
    np.testing.assert_allclose([r["score"] for r in got], [r["score"] for r in expected], atol=1e-5, rtol=0)


def test_concurrent_requests_share_one_batch_and_each_gets_its_own_results(predictor, texts):
    groups = [texts[0:2], texts[2:4], texts[4:6], texts[6:8]]
    with serving(predictor, max_batch=8, max_wait_ms=5000) as base:
        before = metric_samples(base)
        responses = asyncio.run(post_all(base, [{"texts": g, "top_k": 2} for g in groups]))
        after = metric_samples(base)
    for response, group in zip(responses, groups):
        assert response.status_code == 200
        predictions = response.json()["predictions"]
        assert_same_records(predictions, expected_records(predictor, group))
        assert [[t["label"] for t in p["top_k"]] for p in predictions] == \
            [[t["label"] for t in r["top_k"]] for r in expected_records(predictor, group, k=2)]
    batches = after[("fewshot_batch_requests_count", ())] - before.get(("fewshot_batch_requests_count", ()), 0)
    gathered = after[("fewshot_batch_requests_sum", ())] - before.get(("fewshot_batch_requests_sum", ()), 0)
    assert (batches, gathered) == (1, 4)  # 4 requests of 2 texts filled one batch of 8 long before the 5 s wait
    assert after[("fewshot_batch_texts_sum", ())] == 8
    assert after[("fewshot_requests_total", (("route", "/v1/predict"), ("status", "200")))] == 4


def test_full_queue_gives_503_with_retry_after_and_the_server_keeps_serving(predictor, texts):
    gated = GatedPredictor(predictor)
    with serving(gated, max_batch=2, max_wait_ms=0, max_queue=4, max_texts=2) as base:
        gated.gate.clear()
        gated.entered.clear()

        async def scenario():
            async with httpx.AsyncClient(timeout=30) as client:
                running = asyncio.ensure_future(client.post(base + "/v1/predict", json={"texts": texts[0:2]}))
                await asyncio.to_thread(gated.entered.wait, 20)         # batch 1 is running (and held)
                queued = [asyncio.ensure_future(client.post(base + "/v1/predict", json={"texts": g}))
                          for g in (texts[2:4], texts[4:6])]
                await asyncio.to_thread(wait_for, lambda: metric_samples(base)[("fewshot_queue_depth", ())] == 4,
                                        "4 queued texts")
                refused = await client.post(base + "/v1/predict", json={"texts": texts[6:7]})
                gated.gate.set()
                done = [await running] + [await q for q in queued]
                after = await client.post(base + "/v1/predict", json={"texts": texts[6:7]})
                return refused, done, after

        refused, done, after = asyncio.run(scenario())
        samples = metric_samples(base)
    assert refused.status_code == 503
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.json()["limit"] == "max_queue" and refused.json()["max"] == 4
    assert "the queue is full (4 texts waiting, max_queue 4)" in refused.json()["error"]
    assert [r.status_code for r in done] == [200, 200, 200]
    for response, group in zip(done, (texts[0:2], texts[2:4], texts[4:6])):
        assert_same_records(response.json()["predictions"], expected_records(predictor, group))
    assert after.status_code == 200
    assert_same_records(after.json()["predictions"], expected_records(predictor, texts[6:7]))
    assert samples[("fewshot_requests_total", (("route", "/v1/predict"), ("status", "503")))] == 1
    assert samples[("fewshot_queue_depth", ())] == 0


@pytest.mark.parametrize(
    "body,status,limit,message",
    [
        ({"texts": ["球赛"] * 4}, 413, "max_texts", "4 texts in one request; the limit is 3 (max_texts)"),
        ({"texts": ["球赛", "球" * 11]}, 422, "max_chars", "texts: input 1: 11 characters; the limit is 10 (max_chars)"),
        ({"texts": ["球赛", "  "]}, 422, None, "texts: input 1: empty text"),
        ({"texts": ["球赛", 7]}, 422, None, "texts: input 1: expected a text or a (text_a, text_b) pair, found int"),
        ({"texts": "球赛"}, 422, None, "texts: expected an array of texts, found string"),
        ({"texts": ["球赛"], "topk": 2}, 422, None, "request body: unknown key(s) topk (expected texts, top_k, probabilities)"),
        ({"texts": ["球赛"], "top_k": 0}, 422, None, "top_k: expected a positive integer, found 0"),
        ({"texts": ["球赛"], "probabilities": "yes"}, 422, None, 'probabilities: expected true or false, found "yes"'),
    ],
    ids=["too-many-texts", "text-too-long", "empty-text", "not-a-text", "texts-not-a-list", "unknown-key", "bad-top-k",
         "bad-probabilities"],
)
def test_oversized_and_malformed_requests_are_refused_with_the_limit_named(predictor, body, status, limit, message):
    with serving(predictor, max_texts=3, max_chars=10, max_queue=8) as base:
        response = httpx.post(base + "/v1/predict", json=body, timeout=10)
        ok = httpx.post(base + "/v1/predict", json={"texts": ["球赛"]}, timeout=10)
    assert response.status_code == status
    assert response.json()["error"] == message
    assert response.json().get("limit") == limit
    assert ok.status_code == 200


def test_body_too_large_and_invalid_json_are_refused(predictor):
    settings = ServeSettings(max_texts=2, max_chars=10, max_queue=8)
    with serving(predictor, max_texts=2, max_chars=10, max_queue=8) as base:
        big = httpx.post(base + "/v1/predict", content=b" " * (settings.max_body_bytes + 1), timeout=10)
        broken = httpx.post(base + "/v1/predict", content=b'{"texts": [', timeout=10)
    assert big.status_code == 413 and big.json()["limit"] == "max_body_bytes"
    assert big.json()["max"] == settings.max_body_bytes
    assert broken.status_code == 422 and broken.json()["error"].startswith("request body: not valid JSON")


def test_probabilities_model_health_and_metrics_text_format(predictor, texts):
    with serving(predictor) as base:
        answer = httpx.post(base + "/v1/predict", json={"texts": texts[:3], "probabilities": True}, timeout=10).json()
        empty = httpx.post(base + "/v1/predict", json={"texts": []}, timeout=10).json()
        model = httpx.get(base + "/v1/model", timeout=10).json()
        health = httpx.get(base + "/healthz", timeout=10)
        ready = httpx.get(base + "/readyz", timeout=10)
        metrics = httpx.get(base + "/metrics", timeout=10)
    probs = predictor.predict_proba(texts[:3])
    for record, row in zip(answer["predictions"], probs):
        assert list(record["probabilities"]) == predictor.labels
        np.testing.assert_allclose(list(record["probabilities"].values()), row, atol=1e-5)
        assert "top_k" not in record
    assert empty == {"predictions": []}
    assert model["labels"] == predictor.labels and model["task"] == "multi_class"
    assert model["serve"]["max_batch"] == ServeSettings().max_batch and model["needs_text_b"] is False
    assert health.json() == {"status": "alive"} and ready.json() == {"status": "ready"}
    assert metrics.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(metrics.text)}
    assert families["fewshot_requests"].type == "counter"
    assert families["fewshot_batch_texts"].type == "histogram"
    assert families["fewshot_request_duration_seconds"].type == "histogram"
    assert families["fewshot_queue_depth"].type == "gauge"
    count = [s.value for s in families["fewshot_request_duration_seconds"].samples if s.name.endswith("_count")]
    assert count == [2.0]


@pytest.fixture(scope="module")
def pair_bundle(tiny_model_dir, separable_task, tmp_path_factory):
    from fewshot.classifier import PromptClassifier

    _, _, words = separable_task
    clf = PromptClassifier(tiny_model_dir, labels=words, template="{'text': 'text_a'}{'sep'}{'text': 'text_b'}这是{'mask'}{'mask'}",
                           multi_label=True, thresholds=[0.2, 0.5, 0.8], max_seq_length=32, seed=0)
    return clf.export(tmp_path_factory.mktemp("pair-bundle") / "bundle")


def test_pair_template_multi_label_bundle_answers_in_its_own_shape(pair_bundle):
    predictor = OnnxPredictor(pair_bundle, threads=1)
    pairs = [{"text_a": "球赛", "text_b": "股价"}, {"text_a": "雨雪", "text_b": "风"}]
    with serving(predictor) as base:
        response = httpx.post(base + "/v1/predict", json={"texts": pairs, "top_k": 3}, timeout=10)
        missing = httpx.post(base + "/v1/predict", json={"texts": ["球赛"]}, timeout=10)
        model = httpx.get(base + "/v1/model", timeout=10).json()
    assert response.status_code == 200
    got = response.json()["predictions"]
    expected = prediction_records(predictor, predictor.predict_proba(pairs), 3)
    assert [r["label"] for r in got] == [r["label"] for r in expected]
    assert all(isinstance(r["label"], list) and len(r["score"]) == len(r["label"]) for r in got)
    assert missing.status_code == 422
    assert missing.json()["error"] == "texts: input 0: the template uses text_b; pass (text_a, text_b) pairs"
    assert model["task"] == "multi_label" and model["needs_text_b"] is True


def _free_port():
    with socket.socket() as sock:
        sock.bind((LOCALHOST, 0))
        return sock.getsockname()[1]


def test_sigterm_drains_queued_requests_and_exits_0(tiny_bundle, predictor, texts, tmp_path):
    port = _free_port()
    base = f"http://{LOCALHOST}:{port}"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "fewshot.cli.serve", str(tiny_bundle), "--host", LOCALHOST, "--port", str(port),
               "--threads", "1", "--max-batch", "64", "--max-wait-ms", "10000", "--log-level", "warning"]
    # The server's output goes to a file, not a pipe nobody reads while it runs: a full pipe would block the server.
    log = tmp_path / "serve.log"
    with open(log, "w") as sink:
        server = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT)
    try:
        def ready():
            try:
                return httpx.get(base + "/readyz", timeout=1).status_code == 200
            except httpx.TransportError:
                assert server.poll() is None, log.read_text()
                return False

        wait_for(ready, "the server to be ready", 60)
        groups = [texts[0:3], texts[3:5], texts[5:6]]

        async def scenario():
            async with httpx.AsyncClient(timeout=30) as client:
                pending = [asyncio.ensure_future(client.post(base + "/v1/predict", json={"texts": g})) for g in groups]
                await asyncio.to_thread(wait_for, lambda: metric_samples(base)[("fewshot_queue_depth", ())] == 6,
                                        "6 queued texts")
                sent = time.monotonic()
                server.send_signal(signal.SIGTERM)
                responses = [await p for p in pending]
                return responses, time.monotonic() - sent

        responses, drained_in = asyncio.run(scenario())
        code = server.wait(30)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(10)
    assert code == 0, log.read_text()
    assert [r.status_code for r in responses] == [200, 200, 200]
    for response, group in zip(responses, groups):
        assert_same_records(response.json()["predictions"], expected_records(predictor, group))
    assert drained_in < 8  # the queued batch ran at once instead of waiting out its 10 s window
    with pytest.raises(httpx.TransportError):
        httpx.get(base + "/healthz", timeout=2)


def test_serve_cli_refuses_bad_options_and_bundles_in_one_line(tmp_path, tiny_bundle, capsys):
    assert serve_main([str(tmp_path / "nope")]) == 2
    assert "bundle directory does not exist" in capsys.readouterr().err
    assert serve_main([str(tiny_bundle), "--max-queue", "10", "--max-texts", "64"]) == 2
    assert "--max-queue 10 is smaller than --max-texts 64" in capsys.readouterr().err
    assert serve_main([str(tiny_bundle), "--max-batch", "0"]) == 2
    assert "--max-batch must be ≥ 1, got 0" in capsys.readouterr().err


def test_serve_and_ray_modules_do_not_import_paddle():
    code = ("import sys, fewshot.runtime.serve, fewshot.cli.serve, fewshot.integrations.ray; "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('paddle', 'paddlenlp')); "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_serve_without_its_extra_says_how_to_install_it(tiny_bundle, monkeypatch, capsys):
    for name in [m for m in sys.modules if m.startswith("fewshot.runtime.serve")]:
        monkeypatch.delitem(sys.modules, name)
    for name in [m for m in sys.modules if m == "starlette" or m.startswith("starlette.")] + ["starlette"]:
        monkeypatch.setitem(sys.modules, name, None)  # importing starlette (or any part of it) now fails
    assert serve_main([str(tiny_bundle)]) == 2
    assert "fewshot-serve needs starlette, which is not installed: pip install 'fewshot[serve]'" in capsys.readouterr().err


def test_batches_group_texts_of_similar_length_and_each_request_gets_its_own_rows_in_order():
    from fewshot.runtime.serve import DynamicBatcher

    batches = []

    def run(rows):
        batches.append(sorted(len(r["input_ids"]) for r in rows))
        return np.array([[float(r["input_ids"][0])] for r in rows], dtype=np.float32)

    def row(ident, length):
        return {"input_ids": [ident] + [0] * (length - 1)}

    async def scenario():
        batcher = DynamicBatcher(run, max_batch=2, max_wait=10.0, max_queue=16)
        batcher.start()
        futures = [batcher.submit([row(10 * i + 1, 3), row(10 * i + 2, 30)]) for i in range(2)]  # short + long each
        results = [await f for f in futures]
        await batcher.close()
        return results

    results = asyncio.run(scenario())
    assert batches == [[3, 3], [30, 30]]  # the two short texts together, then the two long ones
    assert [r[:, 0].tolist() for r in results] == [[1.0, 2.0], [11.0, 12.0]]
