"""examples/serving: the Dockerfile's commands, the tritonclient snippet, the KServe manifest and the
Prometheus/Grafana files work against a real fewshot-serve (no container engine needed: the image's
entrypoint and health check run here as they would in the container)."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("starlette")
import httpx  # noqa: E402

from fewshot.cli.serve import build_parser  # noqa: E402
from test_serve import _free_port, wait_for  # noqa: E402
from test_serve_protocols import serve_process  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "serving"


def dockerfile_instructions():
    """{instruction: [arguments, ...]} of the Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", (EXAMPLES / "Dockerfile").read_text())
    found = {}
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            word, _, rest = line.strip().partition(" ")
            found.setdefault(word, []).append(rest.strip())
    return found


def test_dockerfile_runs_as_non_root_and_its_entrypoint_and_healthcheck_work(tiny_bundle, tmp_path):
    steps = dockerfile_instructions()
    assert steps["USER"] == ["10001:10001"]
    assert any("[serve]" in run and ".whl" in run for run in steps["RUN"])  # the runtime-only image, from the wheel
    assert re.search(r'"serve": SERVE_REQUIRES', (ROOT / "setup.py").read_text())
    entrypoint = json.loads(steps["ENTRYPOINT"][0])
    healthcheck = json.loads(steps["HEALTHCHECK"][0].split("CMD", 1)[1])
    assert entrypoint[:2] == ["fewshot-serve", "/models/bundle"] and healthcheck[:2] == ["python", "-c"]
    port = _free_port()
    command = [sys.executable, "-m", "fewshot.cli.serve", str(tiny_bundle)] + \
        [str(port) if a == "8000" else "127.0.0.1" if a == "0.0.0.0" else a for a in entrypoint[2:]]
    probe = [sys.executable, "-c", healthcheck[2].replace("8000", str(port))]
    assert subprocess.run(probe, capture_output=True).returncode != 0  # nothing listens yet: unhealthy
    log = tmp_path / "entrypoint.log"
    with open(log, "w") as sink:
        server = subprocess.Popen(command, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
                                  stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        wait_for(lambda: server.poll() is None and subprocess.run(probe, capture_output=True).returncode == 0,
                 "the HEALTHCHECK command to pass", 90)
    finally:
        server.terminate()
        code = server.wait(30)
    assert code == 0, log.read_text()


def test_triton_client_snippet_classifies_through_a_real_server(tiny_bundle, tmp_path):
    pytest.importorskip("tritonclient.http")
    with serve_process(tiny_bundle, tmp_path, "--model-name", "tnews") as (base, port, log):
        out = subprocess.run([sys.executable, str(EXAMPLES / "triton_client.py"), "--url", f"127.0.0.1:{port}",
                              "--model", "tnews", "球赛", "股价"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert [line.split("\t")[0] for line in lines] == ["球赛", "股价"]
    assert all(line.split("\t")[1] in ("sports", "finance", "weather") for line in lines)


def test_kserve_manifest_uses_the_oip_health_routes_and_valid_arguments(tiny_bundle, tmp_path):
    yaml = pytest.importorskip("yaml")
    manifest = yaml.safe_load((EXAMPLES / "kserve-inferenceservice.yaml").read_text())
    container = manifest["spec"]["predictor"]["containers"][0]
    args = build_parser().parse_args(container["args"])
    assert (args.port, args.model_name) == (container["ports"][0]["containerPort"], "tnews")
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert manifest["spec"]["predictor"]["terminationGracePeriodSeconds"] > args.drain_timeout
    with serve_process(tiny_bundle, tmp_path, "--model-name", "tnews") as (base, port, log):
        probes = [httpx.get(base + container[p]["httpGet"]["path"], timeout=10).status_code
                  for p in ("readinessProbe", "livenessProbe")]
    assert probes == [200, 200]


def test_every_metric_the_dashboard_and_alerts_use_is_exported(tiny_bundle, tmp_path):
    used = set(re.findall(r"fewshot_[a-z_]+", (EXAMPLES / "grafana-dashboard.json").read_text()
                          + (EXAMPLES / "fewshot-alerts.yml").read_text()))
    assert "fewshot-alerts.yml" in (EXAMPLES / "prometheus.yml").read_text()
    with serve_process(tiny_bundle, tmp_path) as (base, port, log):
        httpx.post(base + "/v1/predict", json={"texts": ["球赛"]}, timeout=10)
        exported = set(re.findall(r"^(fewshot_[a-z_]+)", httpx.get(base + "/metrics", timeout=10).text, re.M))
    assert used and used <= exported, used - exported
    documented = set(re.findall(r"fewshot_[a-z_]+", (ROOT / "docs" / "deployment.md").read_text()))

    def family(name):
        return re.sub(r"_(bucket|sum|count|created|total)$", "", name)

    assert {family(n) for n in exported} <= {family(n) for n in documented}  # every metric is in the docs
