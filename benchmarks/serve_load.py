"""fewshot-serve under load: rising concurrency, half load, 2x overload, recovery; every answer checked.

    flock /tmp/fewshot-heavy.lock python benchmarks/serve_load.py [--bundle DIR] [--threads 1 --parallel-batches 2]
        [--max-batch 32] [--max-wait-ms 5] [--texts-per-request 4] [--concurrency 1,8,32,128] [--repeats 3]
        [--route v1|oip|tei] [--backend local|ray --replicas N]

``--route`` picks the protocol the client speaks: ``v1`` (``POST /v1/predict``), ``oip`` (the Open
Inference Protocol's ``POST /v2/models/NAME/infer``, JSON tensors) or ``tei`` (``POST /predict``, a
batch of inputs). ``--backend ray --replicas N`` serves on N Ray Serve replicas (``fewshot-serve
--backend ray``; each replica gets ``--threads`` threads); run it with ``--replicas 1`` and ``2`` and
once with ``--backend local`` to compare. With Ray the RSS figures are the driver's only.

Starts ``fewshot-serve`` in a subprocess bound to 127.0.0.1 (nothing else is ever contacted) and
drives it with an asyncio HTTP client (aiohttp: its C parser leaves more of the two cores to the
server than httpx's pure-Python one) at each concurrency, with bounded request counts and time.
Every answer is checked against the offline ``OnnxPredictor`` result for the same texts (label,
and score within 1e-4): *lost* counts requests without a 200 or 503 answer, *mismatched* answers
that differ. Offline batch throughput (``OnnxPredictor.predict_proba`` on all texts, as many
threads as the server uses in all) is timed between the served runs, in each of ``--repeats``
rounds; the table shows medians. Then, open loop (requests sent at a fixed rate): half of the
saturated rate (its p99 against the single-client latency), twice the saturated rate (503 shedding,
server RSS sampled every 0.25 s), and the saturating concurrency again (recovery).

Without ``--bundle`` the bundle is zh-ernie-tiny with the TNEWS labels, exported untrained in a
subprocess (speed does not need accuracy); texts are TNEWS ``test_public`` sentences.

Measured 2026-12-02 (2-core Xeon, load average ~2 from other jobs; the batcher then gathered whole
requests in arrival order, on FastAPI, with ``--max-queue 256``):
``ratios: served at saturation (32 clients)/offline 0.65x (target >=0.8) | p99 at half load/single-request
p50 2.17x | lost 0, mismatched 0 (target 0) | overload shed 1972, RSS growth +0 MiB, recovery 0.97x of saturation``
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from _paths import ROOT, TINY_ERNIE, TNEWS, TNEWS_LABELS, TNEWS_TEMPLATE as TEMPLATE

LOCALHOST = "127.0.0.1"
SCORE_TOLERANCE = 1e-4

BUILD_BUNDLE = """
import sys
from fewshot.classifier import PromptClassifier
model, labels, template, out = sys.argv[1:]
PromptClassifier(model, labels=labels, template=template, max_seq_length=128, seed=0).export(out, int8=True)
"""

sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bundle", help="an exported bundle (default: zh-ernie-tiny + TNEWS labels, exported here)")
    p.add_argument("--precision", default="fp32", choices=["fp32", "int8"])
    p.add_argument("--threads", type=int, default=1, help="onnxruntime threads per batch (default 1)")
    p.add_argument("--parallel-batches", type=int, default=None, help="batches at once (default: cores / threads)")
    p.add_argument("--max-batch", type=int, default=32)
    p.add_argument("--max-wait-ms", type=float, default=5.0)
    p.add_argument("--max-queue", type=int, default=1024, help="texts the server queues before answering 503")
    p.add_argument("--texts-per-request", type=int, default=4)
    p.add_argument("--concurrency", default="1,8,32,128", help="client counts, comma-separated")
    p.add_argument("--requests", type=int, default=600, help="requests per concurrency level at most")
    p.add_argument("--seconds", type=float, default=6.0, help="seconds per concurrency level at most")
    p.add_argument("--repeats", type=int, default=3, help="rounds of offline + every level (medians reported)")
    p.add_argument("--overload-seconds", type=float, default=8.0)
    p.add_argument("--texts", type=int, default=2000, help="distinct texts cycled through (default 2000)")
    p.add_argument("--route", choices=sorted(ROUTES), default="v1", help="the protocol the client speaks (default v1)")
    p.add_argument("--backend", choices=["local", "ray"], default="local", help="fewshot-serve --backend (default local)")
    p.add_argument("--replicas", type=int, default=1, help="--backend ray: Ray Serve replicas (default 1)")
    return p.parse_args()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOCALHOST, 0))
        return sock.getsockname()[1]


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def read_texts(limit: int) -> List[str]:
    with open(TNEWS / "test_public.json", encoding="utf-8") as handle:
        texts = [json.loads(line)["sentence"] for line in handle if line.strip()]
    return texts[:limit]


def server_rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


@dataclass
class Run:
    """What one load phase saw."""

    seconds: float = 0.0
    texts: int = 0
    latencies: List[float] = field(default_factory=list)
    shed: int = 0
    lost: int = 0
    mismatched: int = 0
    sent: int = 0
    not_sent: int = 0

    @property
    def throughput(self) -> float:
        return self.texts / self.seconds if self.seconds else 0.0


MODEL_NAME = "bench"


class Route:
    """One protocol's request body for some texts, and its answer as (label, score) per text."""

    path = "/v1/predict"
    shed_status = 503

    def body(self, texts: List[str]) -> Dict[str, Any]:
        return {"texts": texts}

    def answers(self, body: Any) -> List[Any]:
        return [(p["label"], p["score"]) for p in body["predictions"]]


class OipRoute(Route):
    path = f"/v2/models/{MODEL_NAME}/infer"

    def body(self, texts: List[str]) -> Dict[str, Any]:
        return {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [len(texts)], "data": texts}]}

    def answers(self, body: Any) -> List[Any]:
        labels, probs = body["outputs"][0]["data"], body["outputs"][1]["data"]
        width = len(probs) // max(len(labels), 1)
        return [(label, max(probs[i * width:(i + 1) * width])) for i, label in enumerate(labels)]


class TeiRoute(Route):
    path = "/predict"
    shed_status = 429

    def body(self, texts: List[str]) -> Dict[str, Any]:
        return {"inputs": [[t] for t in texts]}

    def answers(self, body: Any) -> List[Any]:
        return [(ranking[0]["label"], ranking[0]["score"]) for ranking in body]


ROUTES = {"v1": Route(), "oip": OipRoute(), "tei": TeiRoute()}


class Load:
    """The client: requests over the distinct texts, cycled; answers checked against ``expected``."""

    def __init__(self, base: str, texts: List[str], expected: List[Dict[str, Any]], per_request: int,
                 route: Route = ROUTES["v1"]):
        self.route = route
        self.url = base + route.path
        self.texts = texts
        self.expected = expected
        self.per_request = per_request
        self.counter = itertools.count()

    async def one(self, session: Any, run: Run) -> None:
        start_index = next(self.counter) * self.per_request
        index = [(start_index + k) % len(self.texts) for k in range(self.per_request)]
        run.sent += 1
        start = time.perf_counter()
        try:
            async with session.post(self.url, json=self.route.body([self.texts[i] for i in index])) as response:
                status = response.status
                body = await response.json() if status == 200 else await response.read()
                answers = self.route.answers(body) if status == 200 else []
        except Exception:  # a reset connection, a timeout or a malformed answer: the request is lost
            run.lost += 1
            return
        elapsed = time.perf_counter() - start
        if status == self.route.shed_status:
            run.shed += 1
            return
        if status != 200 or len(answers) != len(index):
            run.lost += 1
            return
        run.latencies.append(elapsed)
        run.texts += len(index)
        for i, (label, score) in zip(index, answers):
            want = self.expected[i]
            if label != want["label"] or abs(score - want["score"]) > SCORE_TOLERANCE:
                run.mismatched += 1

    async def closed_loop(self, session: Any, clients: int, requests: int, seconds: float) -> Run:
        """``clients`` clients, each sending its next request when the last is answered."""
        run = Run()
        budget = itertools.count()
        deadline = time.perf_counter() + seconds

        async def client() -> None:
            while time.perf_counter() < deadline and next(budget) < requests:
                await self.one(session, run)

        start = time.perf_counter()
        await asyncio.gather(*[client() for _ in range(clients)])
        run.seconds = time.perf_counter() - start
        return run

    async def open_loop(self, session: Any, rate: float, seconds: float, max_in_flight: int,
                        rss: Optional[List[float]] = None, pid: int = 0) -> Run:
        """Requests sent at ``rate`` per second for ``seconds``, whatever the answers (at most
        ``max_in_flight`` unanswered: beyond it a due request is counted as not sent)."""
        run = Run()
        in_flight: set = set()
        start = time.perf_counter()
        next_sample = start
        due_total = 0
        while time.perf_counter() - start < seconds:
            now = time.perf_counter()
            due = int((now - start) * rate) + 1
            while due_total < due:
                due_total += 1
                if len(in_flight) >= max_in_flight:
                    run.not_sent += 1
                    continue
                task = asyncio.ensure_future(self.one(session, run))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
            if rss is not None and now >= next_sample:
                rss.append(server_rss_mib(pid))
                next_sample = now + 0.25
            await asyncio.sleep(0.001)
        await asyncio.gather(*in_flight)
        run.seconds = time.perf_counter() - start
        return run


def build_bundle(work: Path) -> Path:
    if not (TINY_ERNIE.is_dir() and TNEWS.is_dir()):
        sys.exit("benchmarks/serve_load.py: ../shared (zh-ernie-tiny, FewCLUE TNEWS) is missing; pass --bundle")
    out = work / "bundle"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-c", BUILD_BUNDLE, str(TINY_ERNIE), str(TNEWS_LABELS), TEMPLATE, str(out)],
                   check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return out


def offline_throughput(bundle: Path, texts: List[str], threads: int, batch: int, precision: str) -> float:
    """Texts/s of ``OnnxPredictor.predict_proba`` over all texts (a fresh session, timed on its second pass)."""
    from fewshot.runtime import OnnxPredictor

    predictor = OnnxPredictor(bundle, threads=threads, batch_size=batch, precision=precision)
    predictor.predict_proba(texts[:batch])
    start = time.perf_counter()
    predictor.predict_proba(texts)
    rate = len(texts) / (time.perf_counter() - start)
    del predictor
    gc.collect()
    return rate


def start_server(bundle: Path, port: int, args: argparse.Namespace, parallel: int) -> subprocess.Popen:
    command = [sys.executable, "-m", "fewshot.cli.serve", str(bundle), "--host", LOCALHOST, "--port", str(port),
               "--threads", str(args.threads), "--parallel-batches", str(parallel), "--max-batch", str(args.max_batch),
               "--max-wait-ms", str(args.max_wait_ms), "--max-queue", str(args.max_queue),
               "--max-texts", str(min(args.max_queue, 128)), "--precision", args.precision, "--log-level", "warning",
               "--model-name", MODEL_NAME]
    if args.backend == "ray":
        command += ["--backend", "ray", "--replicas", str(args.replicas)]
    return subprocess.Popen(command, env={**os.environ, "PYTHONPATH": str(ROOT)}, stderr=subprocess.PIPE, text=True)


async def wait_ready(base: str, server: subprocess.Popen, seconds: float = 300) -> None:
    import aiohttp

    deadline = time.monotonic() + seconds
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if server.poll() is not None:
                sys.exit(f"fewshot-serve exited: {server.stderr.read()}")
            try:
                async with session.get(base + "/readyz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    sys.exit("fewshot-serve did not become ready")


async def metric(base: str, name: str) -> float:
    import aiohttp
    from prometheus_client.parser import text_string_to_metric_families

    async with aiohttp.ClientSession() as session:
        async with session.get(base + "/metrics") as response:
            text = await response.text()
    return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples if s.name == name)


async def drive(args: argparse.Namespace, bundle: Path, texts: List[str], expected: List[Dict[str, Any]],
                base: str, server: subprocess.Popen, levels: List[int], total_threads: int) -> Dict[str, Any]:
    import aiohttp

    load = Load(base, texts, expected, args.texts_per_request, ROUTES[args.route])
    connector = aiohttp.TCPConnector(limit=0, limit_per_host=0)
    timeout = aiohttp.ClientTimeout(total=60)
    offline: List[float] = []
    runs: Dict[int, List[Run]] = {c: [] for c in levels}
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await load.closed_loop(session, max(levels), 2 * max(levels), 10)  # warm connections and caches
        for _ in range(args.repeats):
            offline.append(await asyncio.to_thread(offline_throughput, bundle, texts, total_threads, args.max_batch,
                                                   args.precision))
            for clients in levels:
                runs[clients].append(await load.closed_loop(session, clients, args.requests, args.seconds))
        served = {c: statistics.median(r.throughput for r in runs[c]) for c in levels}
        saturation = max(levels, key=lambda c: served[c])
        request_rate = served[saturation] / args.texts_per_request
        half = await load.open_loop(session, request_rate / 2, args.seconds, 4 * max(levels))
        rss: List[float] = []
        rss_before = server_rss_mib(server.pid)
        overload = await load.open_loop(session, request_rate * 2, args.overload_seconds, 4096, rss, server.pid)
        rss_after = server_rss_mib(server.pid)
        recovery = await load.closed_loop(session, saturation, args.requests, args.seconds)
    return dict(offline=offline, runs=runs, served=served, saturation=saturation, request_rate=request_rate,
                half=half, overload=overload, recovery=recovery, rss=rss, rss_before=rss_before, rss_after=rss_after,
                batches=await metric(base, "fewshot_batch_texts_count"),
                batch_texts=await metric(base, "fewshot_batch_texts_sum"))


def main() -> int:
    args = parse_args()
    from _machine import machine_line

    from fewshot.cpu_env import usable_cores

    from fewshot.runtime import OnnxPredictor, prediction_records

    levels = [int(c) for c in args.concurrency.split(",")]
    parallel = args.parallel_batches or max(1, usable_cores() // args.threads)
    if args.backend == "ray":
        parallel = args.replicas
    total_threads = args.threads * parallel
    with tempfile.TemporaryDirectory(prefix="fewshot-serve-load-") as tmp:
        bundle = Path(args.bundle) if args.bundle else build_bundle(Path(tmp))
        texts = read_texts(args.texts)
        reference = OnnxPredictor(bundle, threads=total_threads, batch_size=args.max_batch, precision=args.precision)
        expected = prediction_records(reference, reference.predict_proba(texts), None)
        del reference
        gc.collect()
        port = free_port()
        base = f"http://{LOCALHOST}:{port}"
        server = start_server(bundle, port, args, parallel)
        try:
            asyncio.run(wait_ready(base, server))
            result = asyncio.run(drive(args, bundle, texts, expected, base, server, levels, total_threads))
        finally:
            server.terminate()
            code = server.wait(60)
    where = (f"{args.replicas} Ray Serve replicas x {args.threads} threads" if args.backend == "ray"
             else f"{args.threads} x {parallel} parallel batches")
    print(machine_line({"server onnxruntime threads": where, "offline threads": total_threads,
                        "route": f"{args.route} ({ROUTES[args.route].path})"}))
    print(f"bundle {'zh-ernie-tiny (untrained), TNEWS labels' if not args.bundle else args.bundle}, {args.precision}; "
          f"{len(texts)} TNEWS texts, {args.texts_per_request} per request; max batch {args.max_batch}, max wait "
          f"{args.max_wait_ms} ms, max queue {args.max_queue} texts; {args.repeats} rounds, medians; "
          f"{result['batch_texts'] / max(result['batches'], 1):.1f} texts per batch on average")
    offline = statistics.median(result["offline"])
    header = f"{'load':<24}{'texts/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'503s':>7}{'lost':>6}{'wrong':>7}"
    print(header)
    print("-" * len(header))
    print(f"{'offline batch':<24}{offline:>9.0f}{'':>9}{'':>9}{'':>9}{'':>7}{'':>6}{'':>7}")
    lost = mismatched = 0

    def row(name: str, runs: List[Run], throughput: float) -> None:
        nonlocal lost, mismatched
        quantiles = [statistics.median(percentile(r.latencies, q) * 1000 for r in runs) for q in (50, 95, 99)]
        shed, gone, wrong = (sum(getattr(r, a) for r in runs) for a in ("shed", "lost", "mismatched"))
        lost += gone
        mismatched += wrong
        print(f"{name:<24}{throughput:>9.0f}{quantiles[0]:>9.1f}{quantiles[1]:>9.1f}{quantiles[2]:>9.1f}"
              f"{shed:>7}{gone:>6}{wrong:>7}")

    for clients in levels:
        row(f"{clients} clients", result["runs"][clients], result["served"][clients])
    half, overload, recovery = result["half"], result["overload"], result["recovery"]
    rate = result["request_rate"]
    row(f"open {rate / 2:.0f} req/s (half)", [half], half.throughput)
    row(f"open {rate * 2:.0f} req/s (2x)", [overload], overload.throughput)
    row(f"{result['saturation']} clients (recovery)", [recovery], recovery.throughput)
    rss = result["rss"]
    print(f"overload: offered {overload.sent / overload.seconds:.0f} req/s ({overload.not_sent} not sent: client "
          f"cap), {overload.shed} shed with 503; server RSS {result['rss_before']:.0f} MiB before, "
          f"{min(rss):.0f}-{max(rss):.0f} MiB during, {result['rss_after']:.0f} MiB after; server exit status {code}")
    saturated = result["served"][result["saturation"]]
    single = statistics.median(percentile(r.latencies, 50) for r in result["runs"][levels[0]])
    print(f"ratios: served at saturation ({result['saturation']} clients)/offline {saturated / offline:.2f}x "
          f"(target >=0.8) | p99 at half load/single-request p50 {percentile(half.latencies, 99) * 1000 / (single * 1000):.2f}x "
          f"| lost {lost}, mismatched {mismatched} (target 0) | overload shed {overload.shed}, RSS growth "
          f"{max(rss) - result['rss_before']:+.0f} MiB, recovery {recovery.throughput / saturated:.2f}x of saturation")
    return 0 if lost == 0 and mismatched == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
