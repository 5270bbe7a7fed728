"""The reservation engine on a fake writer: how it forms batches, routes answers, sheds load,
keeps a deadline, fails a broken batch and refuses a sold-out event from memory."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any, Protocol, TypeVar, cast
from uuid import UUID

import pytest

from goticket.booking.domain import (
    Booking,
    BookingTerms,
    BookRequest,
    IdempotencyKeyReused,
    Outcome,
    Overloaded,
    SoldOut,
    plan_batch,
)
from goticket.booking.engine import ReservationEngine
from goticket.kit.errors import Unavailable
from goticket.kit.problems import domain_reply
from tests.unit.fakes import NOW

T = TypeVar("T")
EVENT = uuid.UUID("00000000-0000-4000-8000-00000000000a")
OTHER_EVENT = uuid.UUID("00000000-0000-4000-8000-00000000000b")
LIMIT = 2.0  # seconds: no await in these tests may take longer


async def within(awaitable: Awaitable[T], seconds: float = LIMIT) -> T:
    return await asyncio.wait_for(awaitable, seconds)


async def eventually(condition: Callable[[], bool], seconds: float = LIMIT) -> None:
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.001)

    await within(poll(), seconds)


async def settle() -> None:
    """Let every ready task run until it blocks."""
    for _ in range(20):
        await asyncio.sleep(0)


class FakeWriter:
    """Stands in for ``BatchWriter``: decides each batch with the real ``plan_batch`` over
    in-memory stock and keys, and records every batch it is given.

    ``holds[event]`` keeps that event's commits waiting (before deciding) until it is set;
    ``hold_after`` keeps every commit waiting after it decided and "committed";
    ``failures[n]`` is raised by the n-th commit (1-based) instead of deciding;
    a batch holding a request of a user in ``poisoned`` raises ``RuntimeError``.
    """

    def __init__(self, available: int = 100) -> None:
        self.initial = available
        self.available: dict[UUID, int] = {}
        self.keyed: dict[tuple[UUID, str], Booking] = {}
        self.committed: list[Booking] = []
        self.batches: list[tuple[UUID, list[BookRequest]]] = []
        self.transactions: list[dict[UUID, list[BookRequest]]] = []
        self.holds: dict[UUID, asyncio.Event] = {}
        self.hold_after: asyncio.Event | None = None
        self.failures: dict[int, BaseException] = {}
        self.poisoned: set[UUID] = set()
        self.active = 0
        self.max_active = 0

    @property
    def sizes(self) -> list[int]:
        return [len(requests) for _, requests in self.batches]

    def requests_of(self, event_id: UUID = EVENT) -> list[list[BookRequest]]:
        return [requests for event, requests in self.batches if event == event_id]

    async def commit_many(
        self, groups: Mapping[UUID, Sequence[BookRequest]]
    ) -> dict[UUID, list[Outcome]]:
        """A transaction over several events: each decided as ``commit`` does, in turn."""
        self.transactions.append(
            {event_id: list(requests) for event_id, requests in groups.items()}
        )
        return {
            event_id: await self.commit(event_id, requests) for event_id, requests in groups.items()
        }

    async def commit_free(
        self, groups: Mapping[UUID, Sequence[BookRequest]]
    ) -> tuple[dict[UUID, list[Outcome]], list[UUID]]:
        return await self.commit_many(groups), []

    async def commit(self, event_id: UUID, requests: Sequence[BookRequest]) -> list[Outcome]:
        self.batches.append((event_id, list(requests)))
        number = len(self.batches)
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            hold = self.holds.get(event_id)
            if hold is not None:
                await hold.wait()
            await asyncio.sleep(0)
            if number in self.failures:
                raise self.failures[number]
            if any(r.user_id in self.poisoned for r in requests):
                raise RuntimeError("a poisoned request broke the batch")
            available = self.available.setdefault(event_id, self.initial)
            held: dict[UUID, int] = {}
            for booking in self.committed:
                if booking.event_id == event_id:
                    held[booking.user_id] = held.get(booking.user_id, 0) + booking.quantity
            plan = plan_batch(
                BookingTerms(event_id, uuid.uuid4(), NOW + timedelta(days=1), 100, "EUR", None),
                requests,
                available=available,
                user_active=held,
                existing=self.keyed,
                now=NOW,
                new_id=uuid.uuid4,
            )
            self.available[event_id] = plan.available
            self.committed.extend(plan.created)
            for booking in plan.created:
                if booking.idempotency_key is not None:
                    self.keyed[(booking.user_id, booking.idempotency_key)] = booking
            if self.hold_after is not None:
                await self.hold_after.wait()
            return plan.outcomes
        finally:
            self.active -= 1


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_engine(writer: FakeWriter, **options: Any) -> ReservationEngine:
    return ReservationEngine(writer, **options)


def req(quantity: int = 1, *, key: str | None = None, user: UUID | None = None) -> BookRequest:
    return BookRequest(EVENT, user or uuid.uuid4(), quantity, key)


class Reserves(Protocol):
    async def reserve(self, request: BookRequest) -> Booking: ...


def start(engine: Reserves, request: BookRequest) -> asyncio.Task[Booking]:
    return asyncio.create_task(engine.reserve(request))


async def hold_first_batch(
    engine: Reserves, writer: FakeWriter, event_id: UUID = EVENT
) -> tuple[asyncio.Event, asyncio.Task[Booking], BookRequest]:
    """A first request whose commit is in flight and held until the returned gate is set."""
    gate = writer.holds[event_id] = asyncio.Event()
    first = BookRequest(event_id, uuid.uuid4(), 1)
    task = start(engine, first)
    await eventually(lambda: writer.active == 1)
    return gate, task, first


def assert_booked(booking: Booking, request: BookRequest) -> None:
    assert (booking.event_id, booking.user_id, booking.quantity) == (
        request.event_id,
        request.user_id,
        request.quantity,
    )
    assert booking.idempotency_key == request.idempotency_key


def assert_retry_later(error: object) -> None:
    """An ``Unavailable``: answered 503 with a Retry-After."""
    assert isinstance(error, Unavailable), repr(error)
    response = domain_reply(error)
    assert response.status == 503
    assert int(response.headers["Retry-After"]) >= 1


# -------------------------------------------------------------------------------- batching


async def test_light_traffic_is_a_batch_of_one_each() -> None:
    writer = FakeWriter()
    engine = make_engine(writer)
    requests = [req() for _ in range(5)]

    for request in requests:
        assert_booked(await within(engine.reserve(request)), request)

    assert writer.sizes == [1, 1, 1, 1, 1]
    assert writer.requests_of() == [[r] for r in requests]


async def test_arrivals_during_a_commit_form_one_next_batch_in_arrival_order() -> None:
    writer = FakeWriter()
    engine = make_engine(writer)
    gate, first_task, first = await hold_first_batch(engine, writer)

    arrivals = [req(1 + i % 3) for i in range(25)]
    tasks = [start(engine, r) for r in arrivals]
    await settle()
    assert writer.sizes == [1]  # nothing more starts while the first commit runs
    assert not any(t.done() for t in tasks)
    gate.set()
    results = await within(asyncio.gather(*tasks))

    assert_booked(await within(first_task), first)
    assert writer.requests_of() == [[first], arrivals]
    for booking, request in zip(results, arrivals, strict=True):
        assert_booked(booking, request)
    assert writer.max_active == 1  # one transaction at a time per event


async def test_max_batch_splits_a_long_queue_in_order() -> None:
    writer = FakeWriter()
    engine = make_engine(writer, max_batch=3)
    gate, _, first = await hold_first_batch(engine, writer)

    arrivals = [req() for _ in range(8)]
    tasks = [start(engine, r) for r in arrivals]
    await settle()
    gate.set()
    await within(asyncio.gather(*tasks))

    assert writer.requests_of() == [[first], arrivals[0:3], arrivals[3:6], arrivals[6:8]]


async def test_each_caller_gets_its_own_answer() -> None:
    writer = FakeWriter(available=6)
    engine = make_engine(writer)
    gate, _, _ = await hold_first_batch(engine, writer)  # takes 1: 5 left for the batch

    quantities = [2, 4, 3, 1, 2, 1]
    arrivals = [req(q) for q in quantities]
    tasks = [start(engine, r) for r in arrivals]
    await settle()
    gate.set()
    answers = await within(asyncio.gather(*tasks, return_exceptions=True))

    assert writer.sizes == [1, len(arrivals)]
    # Decided in arrival order: 2 fits (3 left), 4 does not, 3 fits (0 left), then nothing.
    expected: list[int | None] = [None, 3, None, 0, 0, 0]
    for answer, request, left in zip(answers, arrivals, expected, strict=True):
        if left is None:
            assert isinstance(answer, Booking), answer
            assert_booked(answer, request)
        else:
            assert isinstance(answer, SoldOut), answer
            assert answer.extra == {"available": left}
    assert len({a.id for a in answers if isinstance(a, Booking)}) == 2


async def test_a_replayed_key_is_answered_to_its_own_caller() -> None:
    writer = FakeWriter()
    engine = make_engine(writer)
    user = uuid.uuid4()
    original = await within(engine.reserve(req(2, key="k", user=user)))
    gate, _, _ = await hold_first_batch(engine, writer)

    replay = start(engine, req(2, key="k", user=user))
    reused = start(engine, req(3, key="k", user=user))
    fresh = start(engine, req(1, key="other", user=user))
    await settle()
    gate.set()

    assert await within(replay) == original
    with pytest.raises(IdempotencyKeyReused):
        await within(reused)
    assert (await within(fresh)).id != original.id
    assert len(writer.committed) == 3  # the original, the held first one, the fresh one


# ------------------------------------------------------------------------- failing batches


async def test_an_unavailable_batch_fails_only_its_own_requests() -> None:
    writer = FakeWriter()
    engine = make_engine(writer, max_batch=3)
    gate, first_task, first = await hold_first_batch(engine, writer)
    writer.failures[2] = Unavailable("the connection was lost", retry_after=2)

    doomed = [req() for _ in range(3)]
    lucky = [req() for _ in range(2)]
    doomed_tasks = [start(engine, r) for r in doomed]
    lucky_tasks = [start(engine, r) for r in lucky]
    await settle()
    gate.set()

    assert_booked(await within(first_task), first)
    for task in doomed_tasks:
        with pytest.raises(Unavailable) as caught:
            await within(task)
        assert caught.value.retry_after == 2
        assert_retry_later(caught.value)
    for task, request in zip(lucky_tasks, lucky, strict=True):
        assert_booked(await within(task), request)
    assert writer.requests_of() == [[first], doomed, lucky]
    assert {b.user_id for b in writer.committed} == {r.user_id for r in [first, *lucky]}


async def test_an_unexpected_error_is_retried_request_by_request() -> None:
    writer = FakeWriter()
    engine = make_engine(writer)
    gate, _, first = await hold_first_batch(engine, writer)
    poison = req()
    writer.poisoned.add(poison.user_id)

    before, after = req(2), req(3, key="k")
    tasks = [start(engine, r) for r in (before, poison, after)]
    await settle()
    gate.set()
    answers = await within(asyncio.gather(*tasks, return_exceptions=True))

    assert writer.requests_of() == [[first], [before, poison, after], [before], [poison], [after]]
    assert isinstance(answers[0], Booking)
    assert_booked(answers[0], before)
    assert_retry_later(answers[1])
    assert isinstance(answers[2], Booking)
    assert_booked(answers[2], after)
    # Each good request was committed once (the failed batch wrote nothing).
    assert sorted(b.quantity for b in writer.committed) == [1, 2, 3]


async def test_a_request_failing_alone_with_a_domain_error_gets_that_error() -> None:
    writer = FakeWriter()
    engine = make_engine(writer)
    gate, _, first = await hold_first_batch(engine, writer)
    good, bad = req(), req()
    writer.failures[2] = RuntimeError("the batch broke")
    writer.failures[4] = Unavailable("lost while alone")

    tasks = [start(engine, r) for r in (good, bad)]
    await settle()
    gate.set()
    answers = await within(asyncio.gather(*tasks, return_exceptions=True))

    assert writer.requests_of() == [[first], [good, bad], [good], [bad]]
    assert isinstance(answers[0], Booking)
    assert isinstance(answers[1], Unavailable)
    assert answers[1].detail == "lost while alone"


# --------------------------------------------------------------------- overload and deadline


async def test_past_the_queue_bound_the_answer_is_overloaded_at_once() -> None:
    writer = FakeWriter()
    engine = make_engine(writer, queue_limit=3)
    gate, first_task, _ = await hold_first_batch(engine, writer)

    queued = [start(engine, req()) for _ in range(3)]
    await settle()
    began = time.monotonic()
    with pytest.raises(Overloaded) as caught:
        await within(engine.reserve(req()), 0.5)
    assert time.monotonic() - began < 0.1
    assert_retry_later(caught.value)
    assert caught.value.code == "overloaded"
    assert not any(t.done() for t in queued)

    gate.set()
    await within(asyncio.gather(first_task, *queued))
    assert writer.sizes == [1, 3]  # the refused request never reached the writer
    # Once the queue drained, requests are taken again.
    await within(engine.reserve(req()))


async def test_past_the_deadline_the_answer_is_unavailable_and_a_queued_request_never_commits() -> (
    None
):
    writer = FakeWriter()
    engine = make_engine(writer, deadline=0.05)
    gate, in_flight, first = await hold_first_batch(engine, writer)
    queued = req(2, key="late")

    began = time.monotonic()
    with pytest.raises(Unavailable) as caught:
        await within(engine.reserve(queued))
    assert time.monotonic() - began < 1.0
    assert_retry_later(caught.value)
    # The request already in a transaction also timed out; it may still commit.
    with pytest.raises(Unavailable):
        await within(in_flight)

    gate.set()
    await eventually(lambda: writer.active == 0)
    later = req()
    assert_booked(await within(engine.reserve(later)), later)

    assert writer.requests_of() == [[first], [later]]  # the abandoned one was skipped
    assert all(b.user_id != queued.user_id for b in writer.committed)
    # The in-flight one did commit: a retry with its key would get it (here: it is stored).
    assert [b.user_id for b in writer.committed] == [first.user_id, later.user_id]


async def test_a_timed_out_request_that_committed_is_returned_to_its_keyed_retry() -> None:
    writer = FakeWriter()
    engine = make_engine(writer, deadline=0.05)
    writer.hold_after = asyncio.Event()
    slow = req(2, key="slow")
    with pytest.raises(Unavailable):
        await within(engine.reserve(slow))
    writer.hold_after.set()
    await eventually(lambda: writer.active == 0)

    retry = await within(engine.reserve(slow))

    assert len(writer.committed) == 1
    assert retry == writer.committed[0]


# ------------------------------------------------------------------------ the sold-out flag


async def sell_out(engine: ReservationEngine, writer: FakeWriter) -> Booking:
    """Sells the one spot with a keyed request, then learns the event is sold out."""
    writer.initial = 1
    last = await within(engine.reserve(req(1, key="last")))
    with pytest.raises(SoldOut) as caught:
        await within(engine.reserve(req()))
    assert caught.value.extra == {"available": 0}
    return last


async def test_a_sold_out_event_is_refused_without_a_commit() -> None:
    writer = FakeWriter()
    engine = make_engine(writer, sold_out_ttl=60)
    await sell_out(engine, writer)
    commits = len(writer.batches)

    for request in (req(), req(3)):
        with pytest.raises(SoldOut) as caught:
            await within(engine.reserve(request))
        assert caught.value.extra == {"available": 0}
    assert len(writer.batches) == commits

    # A keyed request is decided by the writer: it may be the retry of a booking that is
    # committing in another process right now.
    with pytest.raises(SoldOut):
        await within(engine.reserve(req(1, key="new-key")))
    assert len(writer.batches) == commits + 1


async def test_a_keyed_retry_of_a_booking_that_went_through_is_returned_while_sold_out() -> None:
    writer = FakeWriter()
    engine = make_engine(writer, sold_out_ttl=60)
    last = await sell_out(engine, writer)
    commits = len(writer.batches)

    again = await within(engine.reserve(req(1, key="last", user=last.user_id)))
    assert again == last
    with pytest.raises(IdempotencyKeyReused):
        await within(engine.reserve(req(2, key="last", user=last.user_id)))

    assert len(writer.batches) == commits + 2  # through the writer, never from memory


async def test_a_partial_sold_out_does_not_set_the_flag() -> None:
    writer = FakeWriter(available=2)
    engine = make_engine(writer, sold_out_ttl=60)
    with pytest.raises(SoldOut) as caught:
        await within(engine.reserve(req(3)))
    assert caught.value.extra == {"available": 2}

    booked = req(2)
    assert_booked(await within(engine.reserve(booked)), booked)
    assert writer.sizes == [1, 1]


async def test_released_puts_the_event_back_on_sale() -> None:
    writer = FakeWriter()
    engine = make_engine(writer, sold_out_ttl=60)
    await sell_out(engine, writer)

    writer.available[EVENT] += 1  # a cancellation committed
    engine.released(EVENT)
    buyer = req()
    assert_booked(await within(engine.reserve(buyer)), buyer)


async def test_released_during_a_sold_out_batch_is_not_overwritten_by_it() -> None:
    """A cancellation that commits while a batch that saw no stock is finishing: the batch's
    stale "sold out" must not hide the spot the cancellation just gave back."""
    writer = FakeWriter(available=0)
    engine = make_engine(writer, sold_out_ttl=60)
    writer.hold_after = asyncio.Event()
    late = start(engine, req())
    await eventually(lambda: writer.active == 1 and writer.available.get(EVENT) == 0)

    writer.available[EVENT] += 1  # the cancellation commits after the batch's lock...
    engine.released(EVENT)  # ...and says so before the batch's answer is handed out
    writer.hold_after.set()
    with pytest.raises(SoldOut):
        await within(late)
    writer.hold_after = None

    buyer = req()
    assert_booked(await within(engine.reserve(buyer)), buyer)


async def test_the_flag_expires_after_its_ttl() -> None:
    writer = FakeWriter()
    clock = FakeMonotonic()
    engine = make_engine(writer, sold_out_ttl=5.0, monotonic=clock)
    await sell_out(engine, writer)
    commits = len(writer.batches)

    clock.now += 4.9
    with pytest.raises(SoldOut):
        await within(engine.reserve(req()))
    assert len(writer.batches) == commits  # still from memory

    clock.now += 0.2
    writer.available[EVENT] += 1  # spots came back elsewhere (another process), unannounced
    buyer = req()
    assert_booked(await within(engine.reserve(buyer)), buyer)
    assert len(writer.batches) == commits + 1


async def test_the_flag_is_per_event() -> None:
    writer = FakeWriter()
    engine = make_engine(writer, sold_out_ttl=60)
    await sell_out(engine, writer)

    elsewhere = BookRequest(OTHER_EVENT, uuid.uuid4(), 1)
    assert_booked(await within(engine.reserve(elsewhere)), elsewhere)


# ----------------------------------------------------------------------------------- lanes


async def test_separate_events_run_in_separate_lanes_concurrently() -> None:
    writer = FakeWriter()
    engine = make_engine(writer)
    gate, held, first = await hold_first_batch(engine, writer, EVENT)
    queued_same = start(engine, req())

    other = [BookRequest(OTHER_EVENT, uuid.uuid4(), 1) for _ in range(3)]
    for request in other:
        assert_booked(await within(engine.reserve(request)), request)
    assert not held.done()
    assert not queued_same.done()

    other_gate = writer.holds[OTHER_EVENT] = asyncio.Event()
    other_held = start(engine, BookRequest(OTHER_EVENT, uuid.uuid4(), 1))
    await eventually(lambda: writer.active == 2)  # one commit per event, both at once
    gate.set()
    other_gate.set()
    await within(asyncio.gather(held, queued_same, other_held))
    assert writer.max_active == 2
    assert writer.requests_of(EVENT)[0] == [first]


async def test_quiet_events_waiting_together_share_one_transaction() -> None:
    """Requests for many events that arrive while a transaction is out are decided by ONE next
    transaction, each event's requests in arrival order."""
    writer = FakeWriter()
    engine = make_engine(writer)
    gate, held, first = await hold_first_batch(engine, writer, EVENT)
    events = [uuid.UUID(int=n) for n in range(100, 110)]
    waiting = [BookRequest(event_id, uuid.uuid4(), 1) for event_id in events for _ in range(2)]
    # The event held up keeps its lane: its next request waits for it, the others do not.
    tasks = [start(engine, request) for request in waiting]
    for task, request in zip(tasks, waiting, strict=True):
        assert_booked(await within(task), request)
    assert not held.done()
    merged = [t for t in writer.transactions if set(t) <= set(events)]
    assert len(merged) <= 2  # the first one started at the first arrival, the rest together
    assert sum(len(t) for t in merged) == len(events)
    assert max(len(t) for t in merged) >= len(events) - 1
    for transaction in merged:
        for event_id, requests in transaction.items():
            assert requests == [r for r in waiting if r.event_id == event_id][-len(requests) :]
    gate.set()
    assert_booked(await within(held), first)


async def test_a_poisoned_event_fails_alone_not_the_events_batched_with_it() -> None:
    writer = FakeWriter()
    engine = make_engine(writer)
    gate, held, _ = await hold_first_batch(engine, writer, EVENT)
    poison = BookRequest(OTHER_EVENT, uuid.uuid4(), 1)
    writer.poisoned.add(poison.user_id)
    neighbour = BookRequest(OTHER_EVENT, uuid.uuid4(), 1)
    elsewhere = [BookRequest(uuid.UUID(int=n), uuid.uuid4(), 1) for n in range(200, 203)]
    # Queued behind a held drain of their own so that they are taken as one batch.
    second_gate = writer.holds[elsewhere[0].event_id] = asyncio.Event()
    blocker = start(engine, elsewhere[0])
    await eventually(lambda: writer.active == 2)
    tasks = [start(engine, r) for r in (poison, neighbour, *elsewhere[1:])]
    await settle()
    second_gate.set()
    results = await within(asyncio.gather(*tasks, return_exceptions=True))
    assert_retry_later(results[0])
    assert_booked(cast(Booking, results[1]), neighbour)
    for result, request in zip(results[2:], elsewhere[1:], strict=True):
        assert_booked(cast(Booking, result), request)
    assert_booked(await within(blocker), elsewhere[0])
    assert any(len(t) > 1 for t in writer.transactions)  # they were batched together first
    gate.set()
    await within(held)
