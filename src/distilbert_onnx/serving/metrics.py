"""What the server reports about itself: Prometheus metrics (requests by status, latency, batch
sizes in rows and tokens, queue depth) and one log line per request.

Each app has its own registry, so several apps in one process (tests, a user's own stack) do not
mix their counts. The request log is a plain ASGI middleware on the `distilbert_onnx.serve` logger
at info level: method, path, status, latency.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from .batcher import BatchStats

logger = logging.getLogger("distilbert_onnx.serve")

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
ROW_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
TOKEN_BUCKETS = (16, 64, 256, 1024, 2048, 4096, 8192, 16384, 32768, 65536)


class Metrics:
    """The server's Prometheus metrics, in a registry of their own."""

    def __init__(self):
        self.registry = CollectorRegistry()
        self.requests = Counter("distilbert_onnx_requests", "HTTP requests answered, by path and status.",
                                ["path", "status"], registry=self.registry)
        self.latency = Histogram("distilbert_onnx_request_seconds", "Time from request to response, by path.",
                                 ["path"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.batch_rows = Histogram("distilbert_onnx_batch_rows", "Rows in each model call, by model.",
                                    ["model"], buckets=ROW_BUCKETS, registry=self.registry)
        self.batch_tokens = Histogram("distilbert_onnx_batch_tokens", "Tokens (without padding) in each model call, by model.",
                                      ["model"], buckets=TOKEN_BUCKETS, registry=self.registry)
        self.batch_requests = Histogram("distilbert_onnx_batch_requests", "Requests sharing each model call, by model.",
                                        ["model"], buckets=ROW_BUCKETS, registry=self.registry)
        self.queue_rows = Gauge("distilbert_onnx_queue_rows", "Rows waiting for the model, by model.",
                                ["model"], registry=self.registry)

    def batch_observer(self, model: str) -> Callable[[BatchStats], None]:
        rows, tokens, requests = (metric.labels(model) for metric in (self.batch_rows, self.batch_tokens, self.batch_requests))

        def observe(stats: BatchStats) -> None:
            rows.observe(stats.rows)
            tokens.observe(stats.tokens)
            requests.observe(stats.requests)

        return observe

    def watch_queue(self, model: str, depth: Callable[[], int]) -> None:
        self.queue_rows.labels(model).set_function(depth)

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class RequestLog:
    """ASGI middleware: counts and times every HTTP request and logs it in one line."""

    def __init__(self, app, metrics: Metrics, paths: set[str]):
        self.app = app
        self.metrics = metrics
        self.paths = paths  # the app's own paths; anything else is counted as "other"

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        status = 500  # what the client gets if the app fails before it answers

        async def send_and_note(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            seconds = time.perf_counter() - started
            path = scope["path"] if scope["path"] in self.paths else "other"
            self.metrics.requests.labels(path, str(status)).inc()
            self.metrics.latency.labels(path).observe(seconds)
            logger.info("%s %s %d %.1f ms", scope["method"], scope["path"], status, seconds * 1000)
