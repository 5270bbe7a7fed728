"""The Prometheus families (``kit.metrics.Metrics``) and what the booking path reports to them:
``BatchWriter`` on the in-memory fakes, the reservation engine on its fake writer, and each
answer's outcome (a rejection, a 503) counted once, by ``BookingService.book``, where it leaves."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from uuid import UUID

import pytest

from goticket.booking.direct import DirectReserver
from goticket.booking.domain import (
    Booking,
    BookingFailed,
    BookingTerms,
    BookRequest,
    EventEnded,
    EventNotFound,
    IdempotencyKeyReused,
    Overloaded,
    PerUserLimitExceeded,
    SoldOut,
)
from goticket.booking.ports import BookingMetrics, Reserver
from goticket.booking.service import BookingService
from goticket.booking.writer import BatchWriter
from goticket.kit.auth import Principal, Role
from goticket.kit.errors import InvalidInput, Unavailable
from goticket.kit.metrics import Metrics
from tests.unit.fakes import NOW, FakeBookingUow, FakeCatalog, FakeClock
from tests.unit.test_engine import (
    EVENT,
    FakeWriter,
    eventually,
    hold_first_batch,
    make_engine,
    req,
    sell_out,
    settle,
    start,
    within,
)

ORGANIZER = uuid.UUID("00000000-0000-4000-8000-0000000000aa")


def value(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


@dataclass
class RecordingMetrics:
    """A ``BookingMetrics`` that writes down every call."""

    batches: list[tuple[int, float]] = field(default_factory=list)
    commits: list[tuple[int, int]] = field(default_factory=list)
    rejections: list[str] = field(default_factory=list)
    from_memory: int = 0
    shed: list[tuple[str, int]] = field(default_factory=list)
    hold_outcomes: list[tuple[str, int]] = field(default_factory=list)
    refunds: list[str] = field(default_factory=list)

    def holds(self, outcome: str, count: int = 1) -> None:
        self.hold_outcomes.append((outcome, count))

    def refunded(self, reason: str) -> None:
        self.refunds.append(reason)

    def committed(self, bookings: int, spots: int) -> None:
        self.commits.append((bookings, spots))

    def rejected(self, reason: str) -> None:
        self.rejections.append(reason)

    def batch(self, size: int, seconds: float) -> None:
        self.batches.append((size, seconds))

    def refused_from_memory(self) -> None:
        self.from_memory += 1

    def shedding(self, reason: str, count: int = 1) -> None:
        self.shed.append((reason, count))

    @property
    def sizes(self) -> list[int]:
        return [size for size, _ in self.batches]

    @property
    def shed_by_reason(self) -> Counter[str]:
        totals: Counter[str] = Counter()
        for reason, count in self.shed:
            totals[reason] += count
        return totals


# -------------------------------------------------------------------------- the families


def test_request_counts_by_route_method_and_status_and_times_by_route_and_method() -> None:
    metrics = Metrics()
    route = "/events/{event_id}/bookings"

    metrics.request(route, "POST", 201, 0.003)
    metrics.request(route, "POST", 201, 0.2)
    metrics.request(route, "POST", 409, 0.004)

    assert (
        value(metrics, "goticket_http_requests_total", route=route, method="POST", status="201")
        == 2
    )
    assert (
        value(metrics, "goticket_http_requests_total", route=route, method="POST", status="409")
        == 1
    )
    # The histogram has no status label: all three land in one series.
    labels = {"route": route, "method": "POST"}
    assert value(metrics, "goticket_http_request_duration_seconds_count", **labels) == 3
    assert value(metrics, "goticket_http_request_duration_seconds_sum", **labels) == pytest.approx(
        0.207
    )
    assert (
        value(metrics, "goticket_http_request_duration_seconds_bucket", le="0.0025", **labels) == 0
    )
    assert (
        value(metrics, "goticket_http_request_duration_seconds_bucket", le="0.005", **labels) == 2
    )
    assert value(metrics, "goticket_http_request_duration_seconds_bucket", le="0.25", **labels) == 3


@pytest.mark.parametrize("method", ["BREW", "PROPFIND", "get", "TRACE", "CONNECT"])
def test_a_method_outside_the_known_set_is_labelled_other(method: str) -> None:
    metrics = Metrics()

    metrics.request("unmatched", method, 405, 0.001)
    metrics.request("unmatched", method, 405, 0.001)
    metrics.request("unmatched", "GET", 404, 0.001)

    other = {"route": "unmatched", "method": "OTHER"}
    assert value(metrics, "goticket_http_requests_total", status="405", **other) == 2
    assert value(metrics, "goticket_http_request_duration_seconds_count", **other) == 2
    assert (
        value(
            metrics, "goticket_http_requests_total", route="unmatched", method=method, status="405"
        )
        is None
    )
    assert (
        value(
            metrics, "goticket_http_requests_total", route="unmatched", method="GET", status="404"
        )
        == 1
    )


@pytest.mark.parametrize("method", ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
def test_a_known_method_keeps_its_label(method: str) -> None:
    metrics = Metrics()
    metrics.request("/events", method, 200, 0.01)
    assert (
        value(metrics, "goticket_http_requests_total", route="/events", method=method, status="200")
        == 1
    )
    assert (
        value(
            metrics, "goticket_http_requests_total", route="/events", method="OTHER", status="200"
        )
        is None
    )


def test_booking_outcomes_land_in_their_families() -> None:
    metrics = Metrics()

    metrics.committed(3, 7)
    metrics.committed(1, 2)
    metrics.rejected("sold-out")
    metrics.rejected("per-user-limit")
    metrics.rejected("sold-out")
    metrics.batch(5, 0.004)
    metrics.batch(300, 0.03)

    assert value(metrics, "goticket_bookings_confirmed_total") == 4
    assert value(metrics, "goticket_spots_sold_total") == 9
    assert value(metrics, "goticket_bookings_rejected_total", reason="sold-out") == 2
    assert value(metrics, "goticket_bookings_rejected_total", reason="per-user-limit") == 1
    assert value(metrics, "goticket_engine_batch_size_count") == 2
    assert value(metrics, "goticket_engine_batch_size_sum") == 305
    assert value(metrics, "goticket_engine_batch_size_bucket", le="4.0") == 0
    assert value(metrics, "goticket_engine_batch_size_bucket", le="8.0") == 1
    assert value(metrics, "goticket_engine_batch_size_bucket", le="256.0") == 1
    assert value(metrics, "goticket_engine_batch_size_bucket", le="512.0") == 2
    assert value(metrics, "goticket_engine_commit_seconds_count") == 2
    assert value(metrics, "goticket_engine_commit_seconds_sum") == pytest.approx(0.034)
    assert value(metrics, "goticket_engine_commit_seconds_bucket", le="0.005") == 1
    # Nothing else moved.
    assert value(metrics, "goticket_engine_sold_out_fast_total") == 0


def test_refused_from_memory_counts_the_fast_path_only() -> None:
    """The refusal itself is a rejection counted where it is answered, not here again."""
    metrics = Metrics()

    metrics.refused_from_memory()
    metrics.refused_from_memory()
    metrics.rejected("sold-out")

    assert value(metrics, "goticket_engine_sold_out_fast_total") == 2
    assert value(metrics, "goticket_bookings_rejected_total", reason="sold-out") == 1


def test_shedding_counts_by_reason() -> None:
    metrics = Metrics()
    assert value(metrics, "goticket_shed_total", reason="queue-full") is None  # no series yet

    metrics.shedding("queue-full")
    metrics.shedding("deadline")
    metrics.shedding("database-unavailable", 12)
    metrics.shedding("queue-full")

    assert value(metrics, "goticket_shed_total", reason="queue-full") == 2
    assert value(metrics, "goticket_shed_total", reason="deadline") == 1
    assert value(metrics, "goticket_shed_total", reason="database-unavailable") == 12


def test_holds_and_refunds_count_by_outcome_and_reason() -> None:
    metrics = Metrics()
    metrics.holds("created", 5)
    metrics.holds("expired", 3)
    metrics.holds("converted")
    metrics.holds("created")
    metrics.refunded("late")
    metrics.refunded("cancelled")
    metrics.refunded("late")

    assert value(metrics, "goticket_holds_total", outcome="created") == 6
    assert value(metrics, "goticket_holds_total", outcome="expired") == 3
    assert value(metrics, "goticket_holds_total", outcome="converted") == 1
    assert value(metrics, "goticket_refunds_total", reason="late") == 2
    assert value(metrics, "goticket_refunds_total", reason="cancelled") == 1


def test_sample_sets_the_pool_and_queue_gauges() -> None:
    metrics = Metrics()

    metrics.sample(pool_size=10, pool_idle=3, queued=42)
    assert value(metrics, "goticket_db_pool_connections", state="in_use") == 7
    assert value(metrics, "goticket_db_pool_connections", state="idle") == 3
    assert value(metrics, "goticket_engine_queue_depth") == 42

    metrics.sample(pool_size=4, pool_idle=4, queued=0)  # a gauge is set, not added to
    assert value(metrics, "goticket_db_pool_connections", state="in_use") == 0
    assert value(metrics, "goticket_db_pool_connections", state="idle") == 4
    assert value(metrics, "goticket_engine_queue_depth") == 0


def test_each_metrics_object_has_its_own_registry() -> None:
    first, second = Metrics(), Metrics()
    first.committed(1, 1)
    assert value(first, "goticket_bookings_confirmed_total") == 1
    assert value(second, "goticket_bookings_confirmed_total") == 0


# -------------------------------------------------------------------------- the batch writer


class Writer:
    """``BatchWriter`` on the fake unit of work, reporting to a recorder."""

    def __init__(self) -> None:
        self.catalog = FakeCatalog()
        self.uow = FakeBookingUow(self.catalog)
        self.metrics = RecordingMetrics()
        self.writer = BatchWriter(self.uow, FakeClock(), self.metrics)

    def event(
        self, capacity: int = 10, *, max_per_user: int | None = None, ended: bool = False
    ) -> UUID:
        event_id = uuid.uuid4()
        end = NOW - timedelta(hours=1) if ended else NOW + timedelta(days=1)
        self.catalog.terms[event_id] = BookingTerms(
            event_id, ORGANIZER, end, 2500, "EUR", max_per_user
        )
        self.uow.bookings.available[event_id] = capacity
        return event_id


def ask(
    event_id: UUID, quantity: int = 1, key: str | None = None, user: UUID | None = None
) -> BookRequest:
    return BookRequest(event_id, user or uuid.uuid4(), quantity, key)


async def test_writer_reports_the_batch_and_what_it_committed() -> None:
    w = Writer()
    event = w.event(capacity=10)
    batch = [ask(event, 2), ask(event, 3, key="k"), ask(event, 1)]

    outcomes = await w.writer.commit(event, batch)

    assert all(isinstance(o, Booking) for o in outcomes)
    assert w.metrics.sizes == [3]
    assert w.metrics.batches[0][1] >= 0
    assert w.metrics.commits == [(3, 6)]
    assert w.metrics.rejections == []
    assert w.metrics.shed == []


async def test_writer_does_not_count_a_replayed_key_as_confirmed() -> None:
    w = Writer()
    event = w.event(capacity=10)
    fan = uuid.uuid4()
    original = ask(event, 2, key="once", user=fan)
    (first,) = await w.writer.commit(event, [original])

    replay = ask(event, 2, key="once", user=fan)
    (again,) = await w.writer.commit(event, [replay])
    assert again == first
    # A replay in a batch with a new booking: only the new one is confirmed.
    replayed, fresh = await w.writer.commit(event, [replay, ask(event, 3)])
    assert replayed == first
    assert isinstance(fresh, Booking)

    assert w.metrics.sizes == [1, 1, 2]
    assert w.metrics.commits == [(1, 2), (1, 3)]  # nothing for the replay-only batch
    assert w.metrics.rejections == []
    assert w.uow.bookings.available[event] == 5


async def test_writer_leaves_counting_refusals_to_whoever_answers_them() -> None:
    w = Writer()
    event = w.event(capacity=4, max_per_user=2)
    fan = uuid.uuid4()
    await w.writer.commit(event, [ask(event, 1, key="mine", user=fan)])

    outcomes = await w.writer.commit(
        event,
        [
            ask(event, 2, user=fan),  # 1 held + 2 > 2: over the per-user limit
            ask(event, 2, key="mine", user=fan),  # the key with another quantity
            ask(event, 2),  # fits: 1 left
            ask(event, 2),  # 2 > 1 left: sold out
            ask(event, 1),  # the last spot
            ask(event, 1),  # sold out
        ],
    )

    kinds = [type(o) for o in outcomes]
    assert kinds == [
        PerUserLimitExceeded,
        IdempotencyKeyReused,
        Booking,
        SoldOut,
        Booking,
        SoldOut,
    ]
    assert w.metrics.sizes == [1, 6]
    assert w.metrics.commits == [(1, 1), (2, 3)]
    assert w.metrics.rejections == []


async def test_writer_decides_unknown_and_ended_events_without_counting_them() -> None:
    w = Writer()
    ended = w.event(ended=True)

    outcomes = await w.writer.commit(ended, [ask(ended), ask(ended, 2)])
    missing = uuid.uuid4()
    (nothing,) = await w.writer.commit(missing, [ask(missing)])

    assert [type(o) for o in outcomes] == [EventEnded, EventEnded]
    assert isinstance(nothing, EventNotFound)
    assert w.metrics.rejections == []
    assert w.metrics.sizes == [2, 1]
    assert w.metrics.commits == []


def lose_the_connection(w: Writer, monkeypatch: pytest.MonkeyPatch) -> None:
    async def connection_lost(
        event_ids: Sequence[UUID], *, skip_locked: bool = False
    ) -> dict[UUID, int]:
        raise Unavailable("the database connection was lost", retry_after=2)

    monkeypatch.setattr(w.uow.bookings, "lock_inventories", connection_lost)


async def test_writer_leaves_counting_an_unavailable_batch_to_whoever_answers_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The engine may have answered some of the batch at their deadline already: it counts the
    503s it gives, so the writer counts none."""
    w = Writer()
    event = w.event(capacity=10)
    lose_the_connection(w, monkeypatch)

    with pytest.raises(Unavailable):
        await w.writer.commit(event, [ask(event), ask(event, 2), ask(event, 3)])

    assert w.metrics.shed == []
    assert w.metrics.batches == []  # no transaction decided anything
    assert w.metrics.commits == []
    assert w.metrics.rejections == []
    assert w.uow.bookings.available[event] == 10


async def test_writer_gives_up_on_the_batch_when_keys_keep_colliding(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every attempt's insert loses a key to another transaction: after the last one the batch
    is answered "retry" (Unavailable), and nothing is counted as confirmed."""
    w = Writer()
    event = w.event(capacity=10)

    async def nothing_stored(bookings: object, *, stock: object = None) -> int:
        return 0

    monkeypatch.setattr(w.uow.bookings, "add_many", nothing_stored)
    with pytest.raises(Unavailable):
        await w.writer.commit(event, [ask(event, key="a"), ask(event, key="b")])

    assert w.metrics.shed == []  # counted by whoever answers the 503s
    assert w.metrics.commits == []
    assert w.metrics.batches == []
    assert w.uow.log.commits == 0


async def test_writer_leaves_an_unexpected_error_to_its_caller(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Not a shed: the engine retries the batch's requests one by one, and those report."""
    w = Writer()
    event = w.event(capacity=10)

    async def broken(event_ids: Sequence[UUID], *, skip_locked: bool = False) -> dict[UUID, int]:
        raise RuntimeError("a bug")

    monkeypatch.setattr(w.uow.bookings, "lock_inventories", broken)
    with pytest.raises(RuntimeError):
        await w.writer.commit(event, [ask(event), ask(event)])

    assert w.metrics == RecordingMetrics()


async def test_writer_reports_to_the_real_families() -> None:
    catalog = FakeCatalog()
    uow = FakeBookingUow(catalog)
    metrics = Metrics()
    reporter: BookingMetrics = metrics
    writer = BatchWriter(uow, FakeClock(), reporter)
    event = uuid.uuid4()
    catalog.terms[event] = BookingTerms(event, ORGANIZER, NOW + timedelta(days=1), 1, "EUR", None)
    uow.bookings.available[event] = 5

    await writer.commit(event, [ask(event, 2), ask(event, 2), ask(event, 2)])

    assert value(metrics, "goticket_bookings_confirmed_total") == 2
    assert value(metrics, "goticket_spots_sold_total") == 4
    assert value(metrics, "goticket_bookings_rejected_total", reason="sold-out") is None
    assert value(metrics, "goticket_engine_batch_size_count") == 1
    assert value(metrics, "goticket_engine_batch_size_sum") == 3
    assert value(metrics, "goticket_engine_commit_seconds_count") == 1


# -------------------------------------------------------------------------- the engine


class Counted:
    """A reserver behind ``BookingService.book``: where every answer leaves, and is counted."""

    def __init__(self, reserver: Reserver, metrics: BookingMetrics) -> None:
        catalog = FakeCatalog()
        self.service = BookingService(
            FakeBookingUow(catalog), catalog, reserver, FakeClock(), metrics=metrics
        )

    async def reserve(self, request: BookRequest) -> Booking:
        actor = Principal(request.user_id, Role.USER)
        return await self.service.book(
            actor, request.event_id, request.quantity, request.idempotency_key
        )


async def test_engine_reports_a_keyless_request_refused_from_memory() -> None:
    writer = FakeWriter()
    metrics = RecordingMetrics()
    engine = make_engine(writer, sold_out_ttl=60, metrics=metrics)
    await sell_out(engine, writer)  # the writer said "sold out": not from memory
    assert metrics.from_memory == 0
    commits = len(writer.batches)

    for request in (req(), req(2)):
        with pytest.raises(SoldOut):
            await within(engine.reserve(request))
    assert metrics.from_memory == 2
    assert len(writer.batches) == commits

    # A keyed request goes to the writer: not refused from memory.
    with pytest.raises(SoldOut):
        await within(engine.reserve(req(1, key="new")))
    assert metrics.from_memory == 2
    assert len(writer.batches) == commits + 1
    assert metrics.shed == []


async def test_a_refusal_from_memory_is_one_sold_out_rejection() -> None:
    writer = FakeWriter()
    metrics = Metrics()
    engine = make_engine(writer, sold_out_ttl=60, metrics=metrics)
    await sell_out(engine, writer)

    with pytest.raises(SoldOut):
        await within(Counted(engine, metrics).reserve(req()))

    # The fake writer reports nothing itself: the engine counts its fast path, the service
    # the answer.
    assert value(metrics, "goticket_engine_sold_out_fast_total") == 1
    assert value(metrics, "goticket_bookings_rejected_total", reason="sold-out") == 1


async def test_each_refusal_is_counted_once_by_its_reason() -> None:
    w = Writer()
    event = w.event(capacity=1, max_per_user=1)
    fan = uuid.uuid4()
    front = Counted(DirectReserver(w.writer), w.metrics)
    await front.reserve(ask(event, 1, key="mine", user=fan))
    for request, error in [
        (ask(event, 1, user=fan), PerUserLimitExceeded),
        (ask(event, 2, key="mine", user=fan), IdempotencyKeyReused),
        (ask(event, 1), SoldOut),
        (ask(uuid.uuid4(), 1), EventNotFound),
    ]:
        with pytest.raises(error):
            await front.reserve(request)

    reasons = ["per-user-limit", "idempotency-key-reused", "sold-out", "not-found"]
    assert w.metrics.rejections == reasons
    assert w.metrics.shed == []


async def test_queue_full_past_the_queue_bound_is_counted_per_answer() -> None:
    writer = FakeWriter()
    metrics = RecordingMetrics()
    engine = make_engine(writer, queue_limit=3, metrics=metrics)
    gate, first, _ = await hold_first_batch(engine, writer)
    queued = [start(engine, req()) for _ in range(3)]
    await settle()
    assert metrics.shed == []  # up to the bound, nothing is shed

    for _ in range(2):
        with pytest.raises(Overloaded):
            await within(Counted(engine, metrics).reserve(req()))
    assert metrics.shed == [("queue-full", 1), ("queue-full", 1)]

    gate.set()
    await within(asyncio.gather(first, *queued))
    assert metrics.shed_by_reason == Counter({"queue-full": 2})
    assert metrics.from_memory == 0


async def test_each_request_past_its_deadline_is_counted() -> None:
    writer = FakeWriter()
    metrics = RecordingMetrics()
    engine = make_engine(writer, deadline=0.05, metrics=metrics)
    front = Counted(engine, metrics)
    gate, in_flight, _ = await hold_first_batch(front, writer)

    with pytest.raises(Unavailable):
        await within(front.reserve(req(2, key="late")))  # queued behind the held batch
    with pytest.raises(Unavailable):
        await within(in_flight)  # in its transaction when the deadline passed

    assert metrics.shed == [("deadline", 1), ("deadline", 1)]
    gate.set()
    await within(engine.reserve(req()))
    assert metrics.shed_by_reason == Counter({"deadline": 2})


async def test_a_503_of_the_direct_reserver_is_counted_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    w = Writer()
    event = w.event(capacity=10)
    lose_the_connection(w, monkeypatch)

    with pytest.raises(Unavailable):
        await Counted(DirectReserver(w.writer), w.metrics).reserve(ask(event))

    assert w.metrics.shed == [("database-unavailable", 1)]


async def test_each_503_is_counted_once_even_when_the_deadline_answered_it_first() -> None:
    writer = FakeWriter()
    metrics = RecordingMetrics()
    engine = make_engine(writer, deadline=0.2, metrics=metrics)
    front = Counted(engine, metrics)
    gate, expired, _ = await hold_first_batch(front, writer)
    writer.failures[1] = Unavailable("the connection was lost", retry_after=2)
    with pytest.raises(Unavailable):
        await within(expired)  # its deadline passed while its transaction was held
    gate.set()  # ... and then that transaction failed: the caller already had its 503
    await eventually(lambda: writer.active == 0)
    await settle()
    assert metrics.shed == [("deadline", 1)]

    writer.failures[2] = Unavailable("the connection was lost again", retry_after=2)
    failed = await within(
        asyncio.gather(front.reserve(req()), front.reserve(req()), return_exceptions=True)
    )
    assert [type(error) for error in failed] == [Unavailable, Unavailable]
    assert len(writer.batches) == 2, "both in the second transaction"
    assert metrics.shed_by_reason == Counter({"deadline": 1, "database-unavailable": 2})


async def test_an_unexpected_failure_counts_as_failed_not_as_the_database() -> None:
    writer = FakeWriter()
    metrics = RecordingMetrics()
    engine = make_engine(writer, metrics=metrics)
    front = Counted(engine, metrics)
    poisoned = req()
    writer.poisoned.add(poisoned.user_id)
    gate, first, _ = await hold_first_batch(front, writer)
    fine, broken = start(front, req()), start(front, poisoned)
    await settle()
    gate.set()

    results = await within(asyncio.gather(first, fine, broken, return_exceptions=True))

    assert [type(result) for result in results] == [Booking, Booking, BookingFailed]
    assert metrics.shed == [("failed", 1)]


class BrokenShedding(RecordingMetrics):
    def shedding(self, reason: str, count: int = 1) -> None:
        raise RuntimeError("the metrics folder is full")


async def test_a_failing_metric_never_leaves_a_request_unanswered() -> None:
    writer = FakeWriter()
    engine = make_engine(writer, deadline=0.05, queue_limit=1)
    front = Counted(engine, BrokenShedding())
    gate, in_flight, _ = await hold_first_batch(front, writer)
    writer.failures[2] = Unavailable("the connection was lost", retry_after=2)

    with pytest.raises(Unavailable):
        await within(front.reserve(req()))  # past its deadline
    with pytest.raises(Unavailable):
        await within(in_flight)
    queued = start(front, req(key="queued"))
    await settle()
    with pytest.raises(Overloaded):
        await within(front.reserve(req()))  # past the queue bound
    gate.set()
    with pytest.raises(Unavailable):
        await within(queued)  # its batch failed


async def test_engine_reports_nothing_on_the_happy_path() -> None:
    writer = FakeWriter()
    metrics = RecordingMetrics()
    engine = make_engine(writer, metrics=metrics)

    for _ in range(3):
        await within(engine.reserve(req()))

    assert metrics == RecordingMetrics()  # the writer, not the engine, reports commits
    assert engine.queued() == 0
    assert writer.sizes == [1, 1, 1]
    assert EVENT in {event for event, _ in writer.batches}


async def test_malformed_input_is_not_counted_as_a_refusal() -> None:
    w = Writer()
    event = w.event(capacity=5)
    front = Counted(DirectReserver(w.writer), w.metrics)
    for request in (ask(event, 0), ask(event, 11), ask(event, 1, key="tab\tkey")):
        with pytest.raises(InvalidInput):
            await front.reserve(request)
    assert w.metrics == RecordingMetrics()
