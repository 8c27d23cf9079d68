"""What the service tells its operators: Prometheus metrics (one registry per app, since tests
build many apps in one process), and one access-log line per request, both fed by a pure ASGI
middleware (BaseHTTPMiddleware would buffer streamed bodies and costs more per request).

Storage and reports know nothing of Prometheus: the writer and the report service call back
with plain numbers (`EventStore.on_commit`, `ReportService(observer=...)`) and `Metrics` turns
them into series. Label values are bounded: the route *template* (never the raw path), the
method, the status, the api and the write key's name (never a secret)."""

from __future__ import annotations

import copy
import logging
import re
import secrets
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.ingest import EventApi
from app.storage import EventStore, WriteResult

METRICS_CONTENT_TYPE = CONTENT_TYPE_LATEST
ACCESS_LOGGER = "landed.access"
REQUEST_ID_HEADER = "X-Request-ID"
# An incoming request id is kept only if it is short and plain, so it can be logged as is.
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:/+=-]{1,128}$")
UNMATCHED_ROUTE = "<unmatched>"

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_COMMIT_EVENT_BUCKETS = (1, 10, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000)
_COMMIT_SECONDS_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)
_REPORT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class Metrics:
    """The service's metrics in a registry of its own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        # The process's CPU, memory and file descriptors, and Python's GC, as Prometheus' client
        # libraries export them everywhere (they read /proc at scrape time only).
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        GCCollector(registry=registry)
        by_source = ("api", "source")
        self.events_accepted = Counter(
            "landed_events_accepted",
            "Events accepted (inserted plus duplicates), by api and write key name",
            by_source,
            registry=registry,
        )
        self.events_inserted = Counter(
            "landed_events_inserted", "Events stored for the first time", by_source, registry=registry
        )
        self.events_duplicate = Counter(
            "landed_events_duplicate",
            "Events already stored (same source and messageId), not stored again",
            by_source,
            registry=registry,
        )
        self.events_rejected = Counter(
            "landed_events_rejected",
            "Events refused one by one and kept in rejected_events",
            by_source,
            registry=registry,
        )
        self.request_seconds = Histogram(
            "landed_http_request_duration_seconds",
            "Time from request to the end of the response, by route template, method and status",
            ("route", "method", "status"),
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.commit_events = Histogram(
            "landed_writer_commit_events",
            "Events in one group commit of the writer",
            buckets=_COMMIT_EVENT_BUCKETS,
            registry=registry,
        )
        self.commit_seconds = Histogram(
            "landed_writer_commit_duration_seconds",
            "Time one group commit of the writer took",
            buckets=_COMMIT_SECONDS_BUCKETS,
            registry=registry,
        )
        self.queue_depth = Gauge(
            "landed_writer_queue_depth",
            "Ingest requests and other writes waiting for the writer",
            registry=registry,
        )
        self.report_seconds = Histogram(
            "landed_report_compute_duration_seconds",
            "Time to compute a report or readiness check that was not cached",
            ("kind",),
            buckets=_REPORT_BUCKETS,
            registry=registry,
        )
        self.report_cache = Counter(
            "landed_report_cache_lookups",
            "Report and readiness lookups, by whether the cache held them (result: hit or miss)",
            ("kind", "result"),
            registry=registry,
        )
        self.refresh_seconds = Histogram(
            "landed_refresh_duration_seconds",
            "Time one background refresh of the pages' results computed ahead took",
            buckets=_REPORT_BUCKETS,
            registry=registry,
        )
        self.snapshot_age = Gauge(
            "landed_snapshot_oldest_age_seconds",
            "Age of the oldest result computed ahead that pages show (0 before any)",
            registry=registry,
        )
        # Labelled children looked up once: `labels()` validates and locks on every call, and
        # the ingest path records on every request.
        self._event_children: dict[tuple[str, str], tuple[Any, ...]] = {}
        self._request_children: dict[tuple[str, str, int], Any] = {}

    def record_events(self, api: EventApi, source: str, result: WriteResult) -> None:
        children = self._event_children.get((api, source))
        if children is None:
            families = (
                self.events_accepted,
                self.events_inserted,
                self.events_duplicate,
                self.events_rejected,
            )
            children = tuple(family.labels(api, source) for family in families)
            self._event_children[(api, source)] = children
        counts = (result.accepted, result.inserted, result.duplicates, result.rejected)
        for child, count in zip(children, counts, strict=True):
            child.inc(count)

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        child = self._request_children.get(key)
        if child is None:
            child = self.request_seconds.labels(route, method, str(status))
            self._request_children[key] = child
        child.observe(seconds)

    def observe_commit(self, events: int, seconds: float) -> None:
        self.commit_events.observe(events)
        self.commit_seconds.observe(seconds)

    def report_lookup(self, kind: str, hit: bool) -> None:
        self.report_cache.labels(kind, "hit" if hit else "miss").inc()

    def report_computed(self, kind: str, seconds: float) -> None:
        self.report_seconds.labels(kind).observe(seconds)

    def refreshed(self, seconds: float) -> None:
        self.refresh_seconds.observe(seconds)

    def watch_snapshots(self, oldest_age: Callable[[], float]) -> None:
        """Report the age of the oldest snapshot pages show, read at each scrape."""
        self.snapshot_age.set_function(oldest_age)

    def watch(self, storage: EventStore) -> None:
        """Feed the writer's commits and queue depth into these metrics."""
        storage.on_commit = self.observe_commit
        self.queue_depth.set_function(lambda: float(storage.queue_depth()))

    def unwatch(self, storage: EventStore) -> None:
        if storage.on_commit == self.observe_commit:
            storage.on_commit = None

    def exposition(self) -> bytes:
        """The metrics in Prometheus' text format."""
        return generate_latest(self.registry)


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            text = value.decode("latin-1")
            return text if _SANE_REQUEST_ID.match(text) else None
    return None


class RequestObserver:
    """Per request: a request id (the caller's X-Request-ID when it is sane, else a new one),
    echoed as X-Request-ID; the latency histogram by route template; and one access-log line
    with the id, method, route template, status and duration, never a key, cookie or body."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics, log_level: str) -> None:
        self.app = app
        self.metrics = metrics
        self.level = logging.getLevelName(log_level)
        self.log = logging.getLogger(ACCESS_LOGGER)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = _incoming_request_id(scope) or secrets.token_hex(8)
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500
        id_header = (b"x-request-id", request_id.encode("latin-1"))

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message["headers"] = [*message.get("headers", ()), id_header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", None) or UNMATCHED_ROUTE
            method = scope["method"]
            self.metrics.observe_request(route, method, status, seconds)
            if self.log.isEnabledFor(self.level):
                self.log.log(
                    self.level,
                    "request_id=%s method=%s route=%s status=%d duration_ms=%.1f",
                    request_id,
                    method,
                    route,
                    status,
                    seconds * 1000,
                )


def serve_log_config() -> dict[str, Any]:
    """uvicorn's logging configuration plus the service's own loggers (`landed.*`, the access
    log among them) on stderr at INFO, for `landed serve` and `landed demo`."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["formatters"]["landed"] = {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}
    config["handlers"]["landed"] = {
        "class": "logging.StreamHandler",
        "formatter": "landed",
        "stream": "ext://sys.stderr",
    }
    config["loggers"]["landed"] = {"handlers": ["landed"], "level": "INFO", "propagate": False}
    return config
