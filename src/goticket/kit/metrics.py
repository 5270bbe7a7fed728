"""Prometheus metrics: the families, and ``GET /metrics`` behind a bearer token.

With several worker processes (``goticket serve --workers N``) every process writes its samples
to memory-mapped files in ``PROMETHEUS_MULTIPROC_DIR`` and a scrape, whichever worker answers it,
sums them: one view of the whole server. ``serve`` sets that folder up before the workers start;
without it (one process, the tests) each app keeps its samples in its own registry.
"""

from __future__ import annotations

import hmac
import os
import re
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from litestar import Request, Response, get
from litestar.handlers import HTTPRouteHandler
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from goticket.kit.errors import AuthenticationFailed

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Litestar appends the charset to text/* itself: naming it here too would repeat it.
_MEDIA_TYPE = CONTENT_TYPE_LATEST.removesuffix("; charset=utf-8")
_BEARER = re.compile(r"^\s*bearer\s+(\S+)\s*$", re.IGNORECASE)
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
# Label values come from a closed set: an unknown method is "OTHER", an unrouted path "unmatched".
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def multiprocess_mode() -> bool:
    """Whether this process writes its samples to the shared folder. prometheus_client decides
    that once, when it is first imported, from the environment."""
    return bool(getattr(values.ValueClass, "_multiprocess", False))


def prepare_multiprocess_dir(folder: Path) -> None:
    """Start a server's metrics folder empty (files of an earlier run would be summed in) and
    point the workers about to start at it."""
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.db"):  # only prometheus_client's files: the folder may be shared
        stale.unlink(missing_ok=True)
    os.environ[MULTIPROC_ENV] = str(folder)


def forget_process() -> None:
    """This worker is stopping: its live gauges (pool, queue depth) leave the sums."""
    if multiprocess_mode():
        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


@dataclass(frozen=True, slots=True)
class EventStock:
    event_id: str
    available: int
    capacity: int


StockReader = Callable[[int], Awaitable[Sequence[EventStock]]]


class Metrics:
    """Every family GoTicket exposes. Methods are cheap enough for the hot path: a labelled
    child is looked up once and kept."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.http_requests = Counter(
            "goticket_http_requests",
            "HTTP requests answered, by route template, method and status",
            ["route", "method", "status"],
            registry=r,
        )
        self.http_duration = Histogram(
            "goticket_http_request_duration_seconds",
            "Time from the request's arrival to its last response byte",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.bookings_confirmed = Counter(
            "goticket_bookings_confirmed", "Bookings committed (replays not counted)", registry=r
        )
        self.spots_sold = Counter(
            "goticket_spots_sold", "Spots sold by committed bookings", registry=r
        )
        self.bookings_rejected = Counter(
            "goticket_bookings_rejected",
            "Booking requests refused, by reason (the problem type's last segment)",
            ["reason"],
            registry=r,
        )
        self.batch_size = Histogram(
            "goticket_engine_batch_size",
            "Requests decided by one booking transaction",
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.commit_seconds = Histogram(
            "goticket_engine_commit_seconds",
            "Duration of one booking transaction, lock to commit",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.queue_depth = Gauge(
            "goticket_engine_queue_depth",
            "Booking requests waiting for a transaction (sampled every second)",
            multiprocess_mode="livesum",
            registry=r,
        )
        self.sold_out_fast = Counter(
            "goticket_engine_sold_out_fast",
            "Booking requests refused as sold out from memory, without the database",
            registry=r,
        )
        self.shed = Counter(
            "goticket_shed",
            "Requests answered 503 + Retry-After, by reason",
            ["reason"],
            registry=r,
        )
        self.holds_total = Counter(
            "goticket_holds",
            "Payment holds by what happened: created, converted (paid), expired, cancelled",
            ["outcome"],
            registry=r,
        )
        self.refunds_total = Counter(
            "goticket_refunds",
            "Payments given back, by reason: late (hold expired, spots gone), cancelled, mismatch",
            ["reason"],
            registry=r,
        )
        self.pool = Gauge(
            "goticket_db_pool_connections",
            "Database pool connections by state (sampled every second)",
            ["state"],
            multiprocess_mode="livesum",
            registry=r,
        )
        self.checkins = Counter(
            "goticket_checkins",
            "Ticket scans decided, by outcome (checked-in, already-checked-in, void, invalid,"
            " wrong-event) and by way (scan: online; sync: an offline scanner's batch)",
            ["outcome", "via"],
            registry=r,
        )
        self.payments = Counter(
            "goticket_payments",
            "Payment outcomes: succeeded and failed as the provider's webhooks report them, and"
            " refunds issued",
            ["outcome"],
            registry=r,
        )
        self.payment_webhooks = Counter(
            "goticket_payment_webhooks",
            "Payment provider webhooks received, by result (accepted, duplicate, ignored,"
            " invalid-signature, invalid-body)",
            ["result"],
            registry=r,
        )
        self._http: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._checkins: dict[tuple[str, str], Any] = {}
        self._rejected: dict[str, Any] = {}
        self._shed: dict[str, Any] = {}
        self._in_use = self.pool.labels("in_use")
        self._idle = self.pool.labels("idle")

    # -- HTTP ------------------------------------------------------------------------------

    def request(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        children = self._http.get(key)
        if children is None:
            if method not in METHODS:
                method = "OTHER"
            children = self._http[key] = (
                self.http_requests.labels(route, method, str(status)),
                self.http_duration.labels(route, method),
            )
        children[0].inc()
        children[1].observe(seconds)

    # -- bookings (the booking context's ``BookingMetrics``) -------------------------------

    def committed(self, bookings: int, spots: int) -> None:
        self.bookings_confirmed.inc(bookings)
        self.spots_sold.inc(spots)

    def rejected(self, reason: str) -> None:
        child = self._rejected.get(reason)
        if child is None:
            child = self._rejected[reason] = self.bookings_rejected.labels(reason)
        child.inc()

    def batch(self, size: int, seconds: float) -> None:
        self.batch_size.observe(size)
        self.commit_seconds.observe(seconds)

    def refused_from_memory(self) -> None:
        self.sold_out_fast.inc()  # the refusal itself is counted where it is answered

    def shedding(self, reason: str, count: int = 1) -> None:
        child = self._shed.get(reason)
        if child is None:
            child = self._shed[reason] = self.shed.labels(reason)
        child.inc(count)

    def holds(self, outcome: str, count: int = 1) -> None:
        self.holds_total.labels(outcome).inc(count)

    def refunded(self, reason: str) -> None:
        self.refunds_total.labels(reason).inc()

    # -- tickets (the tickets context's ``CheckInMetrics``) ----------------------------------

    def checked_in(self, outcome: str, via: str, count: int = 1) -> None:
        child = self._checkins.get((outcome, via))
        if child is None:
            child = self._checkins[(outcome, via)] = self.checkins.labels(outcome, via)
        child.inc(count)

    # -- payments (the payments context's ``PaymentMetrics``) -----------------------------

    def payment(self, outcome: str) -> None:
        self.payments.labels(outcome).inc()

    def webhook(self, result: str) -> None:
        self.payment_webhooks.labels(result).inc()

    # -- sampled ---------------------------------------------------------------------------

    def sample(self, *, pool_size: int, pool_idle: int, queued: int) -> None:
        self._in_use.set(pool_size - pool_idle)
        self._idle.set(pool_idle)
        self.queue_depth.set(queued)


class _StockCollector(Collector):
    """Per-event stock read from the database at scrape time: the truth, whatever process
    sold the spots, and at most ``limit`` events (bounded label cardinality)."""

    def __init__(self, stock: Sequence[EventStock]) -> None:
        self._stock = stock

    def collect(self) -> Iterable[GaugeMetricFamily]:
        available = GaugeMetricFamily(
            "goticket_event_available", "Spots left, per event on sale", labels=["event_id"]
        )
        capacity = GaugeMetricFamily(
            "goticket_event_capacity", "Capacity, per event on sale", labels=["event_id"]
        )
        for row in self._stock:
            available.add_metric([row.event_id], row.available)
            capacity.add_metric([row.event_id], row.capacity)
        return [available, capacity]


def metrics_handler(
    metrics: Metrics, token: str, stock: StockReader, events_limit: int
) -> HTTPRouteHandler:
    """``GET /metrics`` in Prometheus' text format, for a caller presenting the metrics token."""
    expected = token.encode()

    @get("/metrics", include_in_schema=False)
    async def scrape(request: Request[Any, Any, Any]) -> Response[bytes]:
        match = _BEARER.match(request.headers.get("authorization", ""))
        presented = match.group(1).encode() if match else b""
        if not hmac.compare_digest(presented, expected):
            raise AuthenticationFailed("the metrics endpoint needs the metrics bearer token")
        if multiprocess_mode():
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        else:
            registry = metrics.registry
        rows = await stock(events_limit) if events_limit else ()
        body = generate_latest(registry) + generate_latest(_single(_StockCollector(rows)))
        return Response(body, media_type=_MEDIA_TYPE)

    return scrape


def _single(collector: Collector) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(collector)
    return registry
