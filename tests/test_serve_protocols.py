"""fewshot-serve speaks the protocols clients already use: the Open Inference Protocol (tritonclient with its
defaults, binary tensors included), TEI's /predict (huggingface_hub's InferenceClient), with API keys and TLS.

Every server is a real ``fewshot-serve`` process or an in-thread uvicorn on 127.0.0.1; answers are compared
with ``fewshot-predict``'s output for the same texts.
"""

import json
import os
import subprocess
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
import httpx  # noqa: E402

from fewshot.cli.predict import main as predict_main  # noqa: E402
from fewshot.runtime import OnnxPredictor  # noqa: E402
from test_serve import GatedPredictor, _free_port, metric_samples, serving, wait_for  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
LOCALHOST = "127.0.0.1"
KEY = "test-key-0123456789"


@contextmanager
def serve_process(bundle, tmp_path, *options, scheme="http"):
    """``fewshot-serve BUNDLE`` on a free loopback port until the block ends; yields (base URL, port, log path)."""
    port = _free_port()
    log = tmp_path / f"serve-{port}.log"
    command = [sys.executable, "-m", "fewshot.cli.serve", str(bundle), "--host", LOCALHOST, "--port", str(port),
               "--threads", "1", "--max-wait-ms", "2", "--log-level", "warning", *options]
    with open(log, "w") as sink:
        server = subprocess.Popen(command, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdin=subprocess.DEVNULL,
                                  stdout=sink, stderr=subprocess.STDOUT)
    base = f"{scheme}://{LOCALHOST}:{port}"
    try:
        def live():
            try:
                return httpx.get(base + "/v2/health/live", timeout=1, verify=False).status_code in (200, 401)
            except httpx.TransportError:
                assert server.poll() is None, log.read_text()
                return False

        wait_for(live, "fewshot-serve to listen", 60)
        yield base, port, log
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(10)


def predicted(bundle, rows, tmp_path, name="in.txt"):
    """fewshot-predict's labels and every label's probability for ``rows`` (dicts with text_a[, text_b])."""
    data, out = tmp_path / name, tmp_path / (name + ".out")
    data.write_text("".join("\t".join(r.values()) + "\n" for r in rows), encoding="utf-8")
    labels = OnnxPredictor(bundle, threads=1).labels
    assert predict_main(["--bundle", str(bundle), "--input", str(data), "--output", str(out), "--top-k",
                         str(len(labels)), "--no-progress", "--threads", "1"]) == 0
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    probs = np.array([[{t["label"]: t["score"] for t in r["top_k"]}[label] for label in labels] for r in records])
    return [r["label"] for r in records], probs, labels


@pytest.fixture(scope="module")
def texts(separable_task):
    return [e.text_a for e in separable_task[1]][:6]


@pytest.fixture(scope="module")
def pair_bundle(tiny_model_dir, separable_task, tmp_path_factory):
    from fewshot.classifier import PromptClassifier

    clf = PromptClassifier(tiny_model_dir, labels=separable_task[2],
                           template="{'text': 'text_a'}{'sep'}{'text': 'text_b'}这是{'mask'}{'mask'}", max_seq_length=32, seed=0)
    return clf.export(tmp_path_factory.mktemp("pair-bundle") / "bundle")


def test_tritonclient_with_its_defaults_gets_fewshot_predicts_answers(tiny_bundle, texts, tmp_path):
    tritonclient = pytest.importorskip("tritonclient.http")
    labels, probs, names = predicted(tiny_bundle, [{"text_a": t} for t in texts], tmp_path)
    with serve_process(tiny_bundle, tmp_path, "--model-name", "tnews") as (base, port, log):
        client = tritonclient.InferenceServerClient(f"{LOCALHOST}:{port}")
        assert client.is_server_live() and client.is_server_ready() and client.is_model_ready("tnews")
        metadata = client.get_model_metadata("tnews")
        assert metadata["parameters"]["labels"] == names
        assert metadata["inputs"] == [{"name": "text", "datatype": "BYTES", "shape": [-1]}]
        assert client.get_server_metadata()["extensions"] == ["binary_tensor_data"]
        text = tritonclient.InferInput("text", [len(texts)], "BYTES")
        text.set_data_from_numpy(np.array([t.encode() for t in texts], dtype=object))  # binary_data=True by default
        result = client.infer("tnews", [text], request_id="req-7")
        as_json = tritonclient.InferInput("text", [len(texts)], "BYTES")
        as_json.set_data_from_numpy(np.array(texts, dtype=object), binary_data=False)
        json_result = client.infer("tnews", [as_json], outputs=[tritonclient.InferRequestedOutput("label", binary_data=False)])
        compressed = [client.infer("tnews", [text], request_compression_algorithm=algorithm) for algorithm in ("gzip", "deflate")]
        top2 = client.infer("tnews", [text], outputs=[tritonclient.InferRequestedOutput("probabilities", class_count=2)])
        with pytest.raises(tritonclient.InferenceServerException, match="unknown model 'nope'"):
            client.infer("nope", [text])
        client.close()
    assert result.get_response()["id"] == "req-7"
    assert [b.decode() for b in result.as_numpy("label")] == labels
    np.testing.assert_allclose(result.as_numpy("probabilities"), probs, atol=1e-5)
    assert result.as_numpy("probabilities").dtype == np.float32
    assert list(json_result.as_numpy("label")) == labels  # JSON BYTES come back as str
    assert json_result.as_numpy("probabilities") is None  # only the output asked for
    for answer in compressed:
        assert [b.decode() for b in answer.as_numpy("label")] == labels
    classes = top2.as_numpy("probabilities")  # Triton's classification extension: "score:index:label", best first
    assert classes.shape == (len(texts), 2)
    assert [row[0].decode().split(":")[2] for row in classes] == labels
    for row, p in zip(classes, probs):
        score, index, label = row[0].decode().split(":")
        assert names[int(index)] == label and abs(float(score) - p.max()) < 1e-5


def test_tritonclient_sends_pairs_as_n_by_2_bytes(pair_bundle, tmp_path):
    tritonclient = pytest.importorskip("tritonclient.http")
    pairs = [("球赛", "股价"), ("雨雪", "风"), ("股价", "球赛")]
    labels, probs, _ = predicted(pair_bundle, [{"text_a": a, "text_b": b} for a, b in pairs], tmp_path)
    with serve_process(pair_bundle, tmp_path) as (base, port, log):
        client = tritonclient.InferenceServerClient(f"{LOCALHOST}:{port}")
        text = tritonclient.InferInput("text", [3, 2], "BYTES")
        text.set_data_from_numpy(np.array([[a.encode(), b.encode()] for a, b in pairs], dtype=object))
        result = client.infer("bundle", [text])
        single = tritonclient.InferInput("text", [3], "BYTES")
        single.set_data_from_numpy(np.array([a.encode() for a, _ in pairs], dtype=object))
        with pytest.raises(tritonclient.InferenceServerException, match=r"this model takes \[N, 2\]"):
            client.infer("bundle", [single])
        client.close()
    assert [b.decode() for b in result.as_numpy("label")] == labels
    np.testing.assert_allclose(result.as_numpy("probabilities"), probs, atol=1e-5)


def test_huggingface_inference_client_and_tei_predict_get_fewshot_predicts_answers(tiny_bundle, texts, tmp_path):
    hub = pytest.importorskip("huggingface_hub")
    labels, probs, names = predicted(tiny_bundle, [{"text_a": t} for t in texts], tmp_path)
    with serve_process(tiny_bundle, tmp_path) as (base, port, log):
        client = hub.InferenceClient(model=base)
        answers = [client.text_classification(t) for t in texts]
        top2 = client.text_classification(texts[0], top_k=2)
        single = httpx.post(base + "/predict", json={"inputs": texts[0]}, timeout=10)
        batch = httpx.post(base + "/predict", json={"inputs": [[t] for t in texts], "truncate": True}, timeout=10)
        raw = httpx.post(base + "/predict", json={"inputs": texts[0], "raw_scores": True}, timeout=10)
    for answer, label, row in zip(answers, labels, probs):
        assert [a.label for a in answer] == sorted(names, key=lambda n: -row[names.index(n)])
        assert answer[0].label == label
        np.testing.assert_allclose([a.score for a in answer], sorted(row, reverse=True), atol=1e-5)
    assert [a.label for a in top2] == [a.label for a in answers[0][:2]]
    assert single.status_code == 200 and single.json() == [{"label": a.label, "score": a.score} for a in answers[0]]
    for header in ("x-compute-time", "x-tokenization-time", "x-queue-time", "x-inference-time", "x-total-time"):
        assert single.headers[header].isdigit()
    assert [ranking[0]["label"] for ranking in batch.json()] == labels
    raw_scores = {r["label"]: r["score"] for r in raw.json()}
    np.testing.assert_allclose([raw_scores[n] for n in names], np.log(probs[0]), atol=1e-5)


@pytest.mark.parametrize(
    "body,status,error_type,message",
    [
        ({"inputs": [["球赛"]] * 4}, 413, "Validation", "4 texts in one request; the limit is 3 (max_texts)"),
        ({"inputs": []}, 422, "Empty", "inputs: cannot be empty"),
        ({"inputs": ["球赛", "雨", "风"]}, 422, "Validation", "inputs: a sequence is a string or a [string, string] pair"),
        ({"inputs": ["球赛", "雨"]}, 422, "Validation", "inputs: input 0: a pair, but this model's template takes one text"),
        ({"inputs": "   "}, 422, "Validation", "inputs: input 0: empty text"),
        ({"inputs": "球赛", "raw_scores": "yes"}, 422, "Validation", "raw_scores: expected true or false"),
        ({"inputs": "球赛", "parameters": {}}, 422, "Validation", "request body: unknown key(s) parameters"),
    ],
    ids=["batch-too-large", "empty", "three-texts", "pair-for-single-template", "blank", "bad-flag", "parameters-on-predict"],
)
def test_tei_refusals_have_teis_status_and_error_type(tiny_bundle, body, status, error_type, message):
    with serving(OnnxPredictor(tiny_bundle, threads=1), max_texts=3, max_queue=8) as base:
        response = httpx.post(base + "/predict", json=body, timeout=10)
    assert response.status_code == status
    assert response.json()["error_type"] == error_type
    assert response.json()["error"].startswith(message)


class FailingPredictor(GatedPredictor):
    """Warms up, then fails every batch (``error``) or answers NaN (``nan``)."""

    def __init__(self, predictor, mode):
        super().__init__(predictor)
        self.mode, self.calls = mode, 0

    def run_rows(self, rows):
        self.calls += 1
        probs = self.predictor.run_rows(rows)
        if self.calls == 1:  # the warm-up batch
            return probs
        if self.mode == "error":
            raise RuntimeError("onnxruntime: boom")
        return np.full_like(probs, np.nan)


def test_model_errors_are_424_on_tei_and_500_elsewhere_and_counted(tiny_bundle):
    predictor = FailingPredictor(OnnxPredictor(tiny_bundle, threads=1), "error")
    with serving(predictor, max_wait_ms=0) as base:
        tei = httpx.post(base + "/predict", json={"inputs": "球赛"}, timeout=10)
        v1 = httpx.post(base + "/v1/predict", json={"texts": ["球赛"]}, timeout=10)
        oip = httpx.post(base + "/v2/models/bundle/infer", timeout=10, json={
            "inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": ["球赛"]}]})
        samples = metric_samples(base)
        ready = httpx.get(base + "/readyz", timeout=10)
    assert (tei.status_code, tei.json()["error_type"]) == (424, "Backend")
    assert tei.json()["error"] == "the model failed: RuntimeError: onnxruntime: boom"
    assert v1.status_code == 500 and oip.status_code == 500
    assert oip.json() == {"error": "the model failed: RuntimeError: onnxruntime: boom"}
    assert samples[("fewshot_requests_total", (("route", "/v1/predict"), ("status", "500")))] == 1
    assert samples[("fewshot_requests_total", (("route", "/predict"), ("status", "424")))] == 1
    assert samples[("fewshot_requests_total", (("route", "/v2/models/{name}/infer"), ("status", "500")))] == 1
    assert ready.status_code == 200  # one failing batch does not make the server unready


def test_overload_is_429_on_tei(tiny_bundle):
    gated = GatedPredictor(OnnxPredictor(tiny_bundle, threads=1))
    with serving(gated, max_batch=1, max_wait_ms=0, max_queue=2, max_texts=2) as base:
        gated.gate.clear()
        gated.entered.clear()
        holder = threading.Thread(target=lambda: httpx.post(base + "/v1/predict", json={"texts": ["球赛"]}, timeout=30))
        holder.start()
        assert gated.entered.wait(20)
        queued = threading.Thread(target=lambda: httpx.post(base + "/v1/predict", json={"texts": ["雨", "风"]}, timeout=30))
        queued.start()
        wait_for(lambda: metric_samples(base)[("fewshot_queue_depth", ())] == 2, "2 queued texts")
        refused = httpx.post(base + "/predict", json={"inputs": "股价"}, timeout=10)
        gated.gate.set()
        holder.join(30)
        queued.join(30)
    assert (refused.status_code, refused.json()["error_type"]) == (429, "Overloaded")
    assert int(refused.headers["retry-after"]) >= 1


def test_oip_json_errors_and_model_routes(tiny_bundle):
    with serving(OnnxPredictor(tiny_bundle, threads=1), max_texts=2, max_queue=8) as base:
        def infer(body, name="bundle", **kwargs):
            return httpx.post(f"{base}/v2/models/{name}/infer", json=body, timeout=10, **kwargs)

        text = {"name": "text", "datatype": "BYTES", "shape": [1], "data": ["球赛"]}
        ok = infer({"inputs": [text], "outputs": [{"name": "probabilities"}]})
        nested = infer({"inputs": [{**text, "shape": [1, 1], "data": [["球赛"]]}]})
        wrong_name = infer({"inputs": [{**text, "name": "texts"}]})
        wrong_type = infer({"inputs": [{**text, "datatype": "FP32"}]})
        wrong_count = infer({"inputs": [{**text, "shape": [2]}]})
        too_many = infer({"inputs": [{**text, "shape": [3], "data": ["球赛"] * 3}]})
        empty = infer({"inputs": [{**text, "data": [" "]}]})
        unknown = infer({"inputs": [text]}, name="other")
        version = httpx.get(base + "/v2/models/bundle/versions/2", timeout=10)
        versioned = httpx.post(base + "/v2/models/bundle/versions/1/infer", json={"inputs": [text]}, timeout=10)
        truncated = httpx.post(base + "/v2/models/bundle/infer", content=b'{"inputs": []}', timeout=10,
                               headers={"Inference-Header-Content-Length": "99"})
        model_ready = httpx.get(base + "/v2/models/bundle/ready", timeout=10)
    assert ok.status_code == 200 and [o["name"] for o in ok.json()["outputs"]] == ["probabilities"]
    assert nested.status_code == 200 and versioned.status_code == 200
    assert (wrong_name.status_code, wrong_name.json()) == (400, {"error": "inputs: unknown input 'texts'; this model's input is 'text'"})
    assert wrong_type.status_code == 400 and "datatype 'FP32'" in wrong_type.json()["error"]
    assert wrong_count.json() == {"error": "input text: 1 elements for shape [2]"}
    assert too_many.status_code == 413
    assert empty.json() == {"error": "input text: input 0: empty text"}
    assert unknown.status_code == 404 and version.status_code == 404
    assert truncated.status_code == 400 and "Inference-Header-Content-Length" in truncated.json()["error"]
    assert model_ready.json() == {"name": "bundle", "ready": True}


ROUTES = [("POST", "/v1/predict", {"texts": ["球赛"]}), ("GET", "/v1/model", None), ("POST", "/predict", {"inputs": "球赛"}),
          ("POST", "/", {"inputs": "球赛"}), ("GET", "/info", None), ("GET", "/v2", None), ("GET", "/v2/models/bundle", None),
          ("POST", "/v2/models/bundle/infer", {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": ["球赛"]}]})]
HEALTH = ["/healthz", "/readyz", "/metrics", "/v2/health/live", "/v2/health/ready", "/health"]


def test_api_key_guards_every_inference_route_and_health_only_when_asked(tiny_bundle, tmp_path):
    key_file = tmp_path / "key"
    key_file.write_text(KEY + "\n")
    with serve_process(tiny_bundle, tmp_path, "--api-key-file", str(key_file)) as (base, port, log):
        def call(method, path, body, key):
            headers = {} if key is None else {"Authorization": f"Bearer {key}"}
            return httpx.request(method, base + path, json=body, headers=headers, timeout=10).status_code

        missing = {path: call(m, path, b, None) for m, path, b in ROUTES}
        wrong = {path: call(m, path, b, KEY + "x") for m, path, b in ROUTES}
        right = {path: call(m, path, b, KEY) for m, path, b in ROUTES}
        health = {path: call("GET", path, None, None) for path in HEALTH}
        hub = pytest.importorskip("huggingface_hub")
        answer = hub.InferenceClient(model=base, api_key=KEY).text_classification("球赛")
        model = httpx.get(base + "/v1/model", headers={"Authorization": f"Bearer {KEY}"}, timeout=10).json()
    assert set(missing.values()) == {401} and set(wrong.values()) == {401}
    assert set(right.values()) == {200}
    assert set(health.values()) == {200}
    assert len(answer) == 3
    assert model["base_model"] and not os.path.isabs(model["base_model"])
    assert str(tmp_path) not in json.dumps(model) and str(tiny_bundle) not in json.dumps(model)


def test_protect_health_and_environment_key_and_tls(tiny_bundle, tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    made = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                           "-addext", "subjectAltName=IP:127.0.0.1",
                           "-keyout", str(key), "-out", str(cert)], capture_output=True)
    if made.returncode != 0:
        pytest.skip("openssl cannot make a test certificate")
    os.environ["FEWSHOT_API_KEY"] = KEY
    try:
        with serve_process(tiny_bundle, tmp_path, "--protect-health", "--ssl-certfile", str(cert), "--ssl-keyfile", str(key),
                           scheme="https") as (base, port, log):
            health = {p: httpx.get(base + p, timeout=10, verify=False).status_code for p in HEALTH}
            authorized = httpx.get(base + "/readyz", headers={"Authorization": f"Bearer {KEY}"}, timeout=10, verify=False)
            answer = httpx.post(base + "/v1/predict", json={"texts": ["球赛"]}, timeout=10, verify=str(cert),
                                headers={"Authorization": f"Bearer {KEY}"})
            with pytest.raises(httpx.TransportError):
                httpx.get(f"http://{LOCALHOST}:{port}/healthz", timeout=5)
    finally:
        del os.environ["FEWSHOT_API_KEY"]
    assert set(health.values()) == {401}
    assert authorized.status_code == 200 and answer.status_code == 200


def test_api_key_options_are_checked_in_one_line(tiny_bundle, tmp_path, capsys):
    from fewshot.cli.serve import main as serve_main

    assert serve_main([str(tiny_bundle), "--api-key", "short"]) == 2
    assert "--api-key: an API key must be at least 8 printable characters without spaces" in capsys.readouterr().err
    assert serve_main([str(tiny_bundle), "--api-key-file", str(tmp_path / "missing")]) == 2
    assert "--api-key-file" in capsys.readouterr().err
    assert serve_main([str(tiny_bundle), "--ssl-certfile", str(tmp_path / "c.pem")]) == 2
    assert "--ssl-certfile and --ssl-keyfile go together" in capsys.readouterr().err
    assert serve_main([str(tiny_bundle), "--protect-health"]) == 2
    assert "--protect-health needs an API key" in capsys.readouterr().err
