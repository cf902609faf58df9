"""fewshot-serve --backend ray: the same routes on 2 Ray Serve replicas on loopback, answers equal fewshot-predict's."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ray.serve")
pytest.importorskip("starlette")
import httpx  # noqa: E402

from test_serve import _free_port, wait_for  # noqa: E402
from test_serve_protocols import KEY, predicted  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
LOCALHOST = "127.0.0.1"


def test_two_ray_serve_replicas_answer_every_protocol_like_fewshot_predict(tiny_bundle, separable_task, tmp_path):
    texts = [e.text_a for e in separable_task[1]][:8]
    labels, probs, names = predicted(tiny_bundle, [{"text_a": t} for t in texts], tmp_path)
    port = _free_port()
    base = f"http://{LOCALHOST}:{port}"
    log = tmp_path / "ray-serve.log"
    command = [sys.executable, "-m", "fewshot.cli.serve", str(tiny_bundle), "--backend", "ray", "--replicas", "2",
               "--threads", "1", "--host", LOCALHOST, "--port", str(port), "--max-wait-ms", "2", "--model-name", "tnews"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FEWSHOT_API_KEY": KEY, "RAY_USAGE_STATS_ENABLED": "0"}
    with open(log, "w") as sink:
        server = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT)
    auth = {"Authorization": f"Bearer {KEY}"}
    try:
        def ready():
            try:
                return httpx.get(base + "/readyz", timeout=2).status_code == 200
            except httpx.TransportError:
                assert server.poll() is None, log.read_text()[-3000:]
                return False

        wait_for(ready, "two Ray Serve replicas", 240)
        v1 = [httpx.post(base + "/v1/predict", json={"texts": [t], "probabilities": True}, headers=auth, timeout=30).json()
              for t in texts]
        tei = httpx.post(base + "/predict", json={"inputs": [[t] for t in texts]}, headers=auth, timeout=30).json()
        oip = httpx.post(base + "/v2/models/tnews/infer", headers=auth, timeout=30, json={
            "inputs": [{"name": "text", "datatype": "BYTES", "shape": [len(texts)], "data": texts}]}).json()
        refused = httpx.post(base + "/v1/predict", json={"texts": texts}, timeout=30)
        server.send_signal(signal.SIGTERM)
        code = server.wait(120)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(30)
    assert code == 0, log.read_text()[-3000:]
    assert [r["predictions"][0]["label"] for r in v1] == labels
    np.testing.assert_allclose([list(r["predictions"][0]["probabilities"].values()) for r in v1], probs, atol=1e-5)
    assert [ranking[0]["label"] for ranking in tei] == labels
    assert oip["outputs"][0]["data"] == labels
    np.testing.assert_allclose(np.reshape(oip["outputs"][1]["data"], probs.shape), probs, atol=1e-5)
    assert refused.status_code == 401
    assert "2 Ray Serve replica(s)" in log.read_text()


def test_serve_run_builder_and_config_file_make_the_documented_application(tiny_bundle):
    yaml = pytest.importorskip("yaml")
    from fewshot.errors import FewshotError
    from fewshot.integrations.ray_serve import build_app

    config = yaml.safe_load((ROOT / "examples" / "serving" / "ray_serve_config.yaml").read_text())
    args = {**config["applications"][0]["args"], "bundle": str(tiny_bundle)}
    assert config["applications"][0]["import_path"] == "fewshot.integrations.ray_serve:build_app"
    deployment = build_app(args)._bound_deployment
    assert deployment._deployment_config.autoscaling_config.max_replicas == 4
    assert deployment.ray_actor_options == {"num_cpus": 1}
    fixed = build_app({"bundle": str(tiny_bundle), "replicas": "2", "max_wait_ms": "2.5"})._bound_deployment
    assert fixed.num_replicas == 2
    with pytest.raises(FewshotError, match="unknown argument"):
        build_app({"bundle": str(tiny_bundle), "replica": "2"})


def test_ray_serve_module_does_not_import_paddle():
    code = ("import sys, fewshot.integrations.ray_serve; "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('paddle', 'paddlenlp')); assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
