"""The server's Prometheus metrics (``prometheus_client``), in a registry of its own per app.

    fewshot_requests_total{route="/v1/predict",status="200"} 1520.0    every answered request, 500s included
    fewshot_request_duration_seconds_bucket{route="/v1/predict",le="0.05"} 1490.0
    fewshot_tokenization_duration_seconds_bucket{le="0.001"} 1500.0   per request
    fewshot_queue_duration_seconds_bucket{le="0.01"} 1400.0           per request, queued to its first batch
    fewshot_inference_duration_seconds_bucket{le="0.025"} 1450.0      per request, in its batches
    fewshot_batch_texts_bucket{le="32.0"} 97.0                        texts per onnxruntime batch
    fewshot_batch_requests_bucket{le="8.0"} 97.0                      requests gathered into one batch
    fewshot_batch_seconds_bucket{le="0.05"} 97.0                      one batch's inference
    fewshot_queue_depth 12.0                                          texts waiting now
    fewshot_cancelled_texts_total 64.0                                queued texts dropped: their client went away
"""

from __future__ import annotations

from typing import Callable, Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ServeMetrics:
    """Requests by route and status, their stages' durations, batch sizes, queue depth and cancelled texts."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, queue_depth: Callable[[], float], cancelled_texts: Callable[[], float] = lambda: 0.0):
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("fewshot_requests", "Answered requests by route and HTTP status (errors included)",
                                ["route", "status"], registry=r)
        self.texts = Counter("fewshot_texts", "Texts predicted", registry=r)
        self.batch_texts = Histogram("fewshot_batch_texts", "Texts per onnxruntime batch", buckets=SIZE_BUCKETS, registry=r)
        self.batch_requests = Histogram("fewshot_batch_requests", "Requests gathered into one batch",
                                        buckets=SIZE_BUCKETS, registry=r)
        self.batch_seconds = Histogram("fewshot_batch_seconds", "Inference time of one batch",
                                       buckets=LATENCY_BUCKETS, registry=r)
        self.request_seconds = Histogram("fewshot_request_duration_seconds", "Successful requests, body read to answer",
                                         ["route"], buckets=LATENCY_BUCKETS, registry=r)
        self.tokenization_seconds = Histogram("fewshot_tokenization_duration_seconds", "Encoding one request's texts",
                                              buckets=LATENCY_BUCKETS, registry=r)
        self.queue_seconds = Histogram("fewshot_queue_duration_seconds",
                                       "One request's wait from queued to the start of its first batch",
                                       buckets=LATENCY_BUCKETS, registry=r)
        self.inference_seconds = Histogram("fewshot_inference_duration_seconds",
                                           "Inference time of the batches that ran one request's texts",
                                           buckets=LATENCY_BUCKETS, registry=r)
        self.queue_depth = Gauge("fewshot_queue_depth", "Texts waiting for a batch", registry=r)
        self.queue_depth.set_function(queue_depth)
        r.register(_CallbackCounter("fewshot_cancelled_texts", "Queued texts dropped because their client went away",
                                    cancelled_texts))

    def observe_batch(self, texts: int, requests: int, seconds: float) -> None:
        """Record one batch (the batcher's ``on_batch``)."""
        self.texts.inc(texts)
        self.batch_texts.observe(texts)
        self.batch_requests.observe(requests)
        self.batch_seconds.observe(seconds)

    def observe_stages(self, tokenization: float, queue: float, inference: float) -> None:
        """Record where one classified request's time went (seconds)."""
        self.tokenization_seconds.observe(tokenization)
        self.queue_seconds.observe(queue)
        self.inference_seconds.observe(inference)

    def observe_request(self, route: str, status: int, seconds: float) -> None:
        """Record one answered request; its duration only when it succeeded (2xx)."""
        self.requests.labels(route=route, status=str(status)).inc()
        if 200 <= status < 300:
            self.request_seconds.labels(route=route).observe(seconds)

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)


class _CallbackCounter(Collector):
    """A counter whose value another object keeps (the batcher's count), read at each scrape."""

    def __init__(self, name: str, documentation: str, value: Callable[[], float]):
        self.name, self.documentation, self.value = name, documentation, value

    def collect(self) -> Iterator[CounterMetricFamily]:
        yield CounterMetricFamily(self.name, self.documentation, value=self.value())
