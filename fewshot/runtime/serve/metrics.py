"""The server's Prometheus metrics (``prometheus_client``), in a registry of its own per app.

    fewshot_requests_total{status="200"} 1520.0
    fewshot_batch_texts_bucket{le="32.0"} 97.0        texts per onnxruntime batch
    fewshot_batch_requests_bucket{le="8.0"} 97.0      requests gathered into one batch
    fewshot_queue_depth 12.0                          texts waiting now
    fewshot_request_latency_seconds_bucket{le="0.05"} 1490.0
"""

from __future__ import annotations

from typing import Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ServeMetrics:
    """Requests by status, texts, batch sizes (texts and requests), batch and request latency, queue depth."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, queue_depth: Callable[[], float]):
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("fewshot_requests", "POST /v1/predict requests by HTTP status", ["status"], registry=r)
        self.texts = Counter("fewshot_texts", "Texts predicted", registry=r)
        self.batch_texts = Histogram("fewshot_batch_texts", "Texts per onnxruntime batch", buckets=SIZE_BUCKETS, registry=r)
        self.batch_requests = Histogram("fewshot_batch_requests", "Requests gathered into one batch",
                                        buckets=SIZE_BUCKETS, registry=r)
        self.batch_seconds = Histogram("fewshot_batch_seconds", "Inference time of one batch",
                                       buckets=LATENCY_BUCKETS, registry=r)
        self.latency = Histogram("fewshot_request_latency_seconds", "POST /v1/predict time, body read to response",
                                 buckets=LATENCY_BUCKETS, registry=r)
        self.queue_depth = Gauge("fewshot_queue_depth", "Texts waiting for a batch", registry=r)
        self.queue_depth.set_function(queue_depth)

    def observe_batch(self, texts: int, requests: int, seconds: float) -> None:
        """Record one batch (the batcher's ``on_batch``)."""
        self.texts.inc(texts)
        self.batch_texts.observe(texts)
        self.batch_requests.observe(requests)
        self.batch_seconds.observe(seconds)

    def observe_request(self, status: int, seconds: float) -> None:
        """Record one answered ``POST /v1/predict``; latency only for answered (200) requests."""
        self.requests.labels(status=str(status)).inc()
        if status == 200:
            self.latency.observe(seconds)

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)
