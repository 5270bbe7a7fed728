"""The booking promises under concurrency: many requests at once through the in-process app, the
invariant checked in SQL after each burst (capacity = available + Σ confirmed quantity).

Every scenario over HTTP runs twice: with the reservation engine (group commit) and without it
(one transaction per request); the promises are the same."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from functools import partial
from typing import Any
from uuid import UUID

import httpx
import pytest

from goticket.app import CatalogTerms
from goticket.booking.direct import DirectReserver
from goticket.booking.domain import Booking, BookingTerms, BookRequest, RequestInProgress
from goticket.booking.ports import Reserver
from goticket.booking.repository import PgBookingUnitOfWork
from goticket.booking.service import BookingService
from goticket.booking.writer import BatchWriter
from goticket.config import Settings
from goticket.kit.auth import Principal, Role
from goticket.kit.clock import SystemClock
from goticket.kit.db import Database
from goticket.kit.problems import domain_reply
from tests.bookings_support import (
    DB,
    assert_booked,
    assert_invariant,
    available_spots,
    booking_rows,
    users,
)
from tests.support import Actor, Api, assert_problem, serving

Send = Callable[[Actor, str, int, str | None], Awaitable[httpx.Response]]
ENGINE_ON_AND_OFF = pytest.mark.parametrize(
    "engine_mode", ["on", "off"], ids=["engine-on", "engine-off"], indirect=True
)


@pytest.fixture
def api(api_in_mode: Api) -> Api:
    """Requests of this module go to the app of ``engine_mode`` (on, unless a test runs both)."""
    return api_in_mode


def problem_code(response: httpx.Response) -> str:
    code: str = response.json()["type"].rsplit("/", 1)[-1]
    return code


def outcome(response: httpx.Response) -> str:
    """``201`` or ``<status> <problem code>``: the shape every answer is tallied by."""
    if response.status_code == 201:
        return "201"
    return f"{response.status_code} {problem_code(response)}"


async def confirmed_by_user(db: DB, event_id: str) -> dict[str, int]:
    rows = await db.fetch(
        """SELECT user_id::text AS user_id, sum(quantity) AS spots FROM bookings
           WHERE event_id = $1 AND status = 'confirmed' GROUP BY user_id""",
        event_id,
    )
    return {r["user_id"]: int(r["spots"]) for r in rows}


@ENGINE_ON_AND_OFF
async def test_200_buyers_for_100_spots_get_exactly_100(api: Api, db: DB) -> None:
    event = await api.event(capacity=100)
    buyers = await users(api, 200)

    responses = await asyncio.gather(*(api.book(b, event["id"]) for b in buyers))

    tally = Counter(outcome(r) for r in responses)
    assert tally == {"201": 100, "409 sold-out": 100}, tally
    for response in responses:
        if response.status_code == 409:
            assert response.json()["available"] == 0
    winners = [assert_booked(r) for r in responses if r.status_code == 201]
    assert len({w["id"] for w in winners}) == 100
    assert len({w["userId"] for w in winners}) == 100
    assert await booking_rows(db, event["id"]) == 100
    assert await available_spots(api, event["id"]) == 0
    assert await db.fetchval("SELECT count(DISTINCT user_id) FROM bookings") == 100
    await assert_invariant(db)


@ENGINE_ON_AND_OFF
async def test_mixed_quantities_never_oversell(api: Api, db: DB) -> None:
    event = await api.event(capacity=50)
    buyers = await users(api, 60)
    rng = random.Random(7)
    quantities = [rng.randint(1, 4) for _ in buyers]

    responses = await asyncio.gather(
        *(api.book(b, event["id"], quantity=q) for b, q in zip(buyers, quantities, strict=True))
    )

    granted = 0
    for response, quantity in zip(responses, quantities, strict=True):
        if response.status_code == 201:
            assert response.json()["quantity"] == quantity
            granted += quantity
        else:
            body = assert_problem(response, 409, "sold-out")
            assert body["available"] < quantity
    left = await available_spots(api, event["id"])
    assert granted + left == 50
    # Nobody was refused while enough spots were left for them at the end.
    assert all(q > left for r, q in zip(responses, quantities, strict=True) if r.status_code == 409)
    await assert_invariant(db)


@ENGINE_ON_AND_OFF
async def test_one_user_firing_50_requests_gets_max_per_user(api: Api, db: DB) -> None:
    event = await api.event(capacity=100, maxPerUser=4)
    fan = await api.user()

    responses = await asyncio.gather(*(api.book(fan, event["id"]) for _ in range(50)))

    tally = Counter(outcome(r) for r in responses)
    assert tally == {"201": 4, "409 per-user-limit": 46}, tally
    assert await confirmed_by_user(db, event["id"]) == {str(fan.id): 4}
    assert await available_spots(api, event["id"]) == 96
    await assert_invariant(db)


@ENGINE_ON_AND_OFF
async def test_many_users_each_firing_many_requests_respect_the_limit(api: Api, db: DB) -> None:
    event = await api.event(capacity=100, maxPerUser=3)
    fans = await users(api, 8)

    responses = await asyncio.gather(
        *(api.book(fan, event["id"], quantity=1 + i % 2) for fan in fans for i in range(6))
    )

    assert {outcome(r) for r in responses} <= {"201", "409 per-user-limit"}
    held = await confirmed_by_user(db, event["id"])
    assert set(held) == {str(f.id) for f in fans}
    assert all(2 <= spots <= 3 for spots in held.values()), held
    assert await available_spots(api, event["id"]) == 100 - sum(held.values())
    await assert_invariant(db)


async def _check_single_booking_answers(
    api: Api, fan: Actor, event_id: str, key: str, responses: list[httpx.Response]
) -> str:
    """Every answer is the one booking's 201, or 409 request-in-progress whose retry returns it."""
    ids: set[str] = {assert_booked(r)["id"] for r in responses if r.status_code == 201}
    assert len(ids) == 1, ids
    (booking_id,) = ids
    for response in responses:
        if response.status_code == 201:
            continue
        assert_problem(response, 409, "request-in-progress")
        assert int(response.headers["retry-after"]) >= 0
        retry = await api.book(fan, event_id, quantity=2, key=key)
        assert assert_booked(retry)["id"] == booking_id
    bodies = [r.json() for r in responses if r.status_code == 201]
    assert all(b == bodies[0] for b in bodies)
    return booking_id


@ENGINE_ON_AND_OFF
async def test_20_requests_with_one_idempotency_key_book_once(api: Api, db: DB) -> None:
    event = await api.event(capacity=50)
    fan = await api.user()

    responses = await asyncio.gather(
        *(api.book(fan, event["id"], quantity=2, key="checkout-1") for _ in range(20))
    )

    booking_id = await _check_single_booking_answers(
        api, fan, event["id"], "checkout-1", list(responses)
    )
    rows = await db.fetch("SELECT id::text AS id FROM bookings")
    assert [r["id"] for r in rows] == [booking_id]
    assert await available_spots(api, event["id"]) == 48
    await assert_invariant(db)


@ENGINE_ON_AND_OFF
async def test_many_users_each_retrying_their_key_book_once_each(api: Api, db: DB) -> None:
    event = await api.event(capacity=100)
    fans = await users(api, 10)

    responses = await asyncio.gather(
        *(api.book(fan, event["id"], quantity=2, key="same-key") for fan in fans for _ in range(5))
    )

    by_user: dict[str, set[str]] = {}
    for response in responses:
        body = assert_booked(response)
        by_user.setdefault(body["userId"], set()).add(body["id"])
    assert {u: len(ids) for u, ids in by_user.items()} == {str(f.id): 1 for f in fans}
    assert await booking_rows(db) == 10
    assert await available_spots(api, event["id"]) == 80
    await assert_invariant(db)


@ENGINE_ON_AND_OFF
async def test_concurrent_cancels_and_books_keep_the_invariant(api: Api, db: DB) -> None:
    organizer = await api.user(Role.ORGANIZER)
    event = await api.event(organizer, capacity=20)
    fans = await users(api, 12)
    owner_of = {str(f.id): f for f in fans}
    rng = random.Random(20261125)
    confirmed: dict[str, dict[str, Any]] = {}  # booking id -> booking

    for round_no in range(8):
        # (booking id to cancel or None for a new booking, the request), in a shuffled order.
        work: list[tuple[str | None, Awaitable[httpx.Response]]] = [
            (None, api.book(rng.choice(fans), event["id"], quantity=rng.randint(1, 3)))
            for _ in range(10)
        ]
        to_cancel = rng.sample(sorted(confirmed), min(len(confirmed), rng.randint(2, 6)))
        for booking_id in to_cancel:
            owner = owner_of[confirmed[booking_id]["userId"]]
            # The same booking cancelled three times at once: by its owner twice and its organizer.
            for actor in (owner, organizer, owner):
                url = f"/bookings/{booking_id}/cancel"
                work.append((booking_id, api.http.post(url, headers=actor.headers)))
        rng.shuffle(work)

        answers = await asyncio.gather(*(request for _, request in work))

        cancelled_at: dict[str, set[str]] = {}
        for (target, _), response in zip(work, answers, strict=True):
            if target is None and response.status_code == 201:
                body = assert_booked(response)
                confirmed[body["id"]] = body
            elif target is None:
                assert_problem(response, 409, "sold-out")
            else:
                assert response.status_code == 200, (round_no, response.text)
                assert response.json()["status"] == "cancelled"
                cancelled_at.setdefault(target, set()).add(response.json()["updatedAt"])
        # Each booking was cancelled once: every answer saw the same single cancellation.
        assert all(len(stamps) == 1 for stamps in cancelled_at.values()), cancelled_at
        assert set(cancelled_at) == set(to_cancel)
        for booking_id in to_cancel:
            del confirmed[booking_id]

        await assert_invariant(db)
        in_db = await db.fetch(
            "SELECT id::text AS id FROM bookings WHERE event_id = $1 AND status = 'confirmed'",
            event["id"],
        )
        assert {r["id"] for r in in_db} == set(confirmed), round_no
        booked = sum(b["quantity"] for b in confirmed.values())
        assert await available_spots(api, event["id"]) == 20 - booked, round_no


@ENGINE_ON_AND_OFF
@pytest.mark.parametrize("same_event", [False, True], ids=["two-events", "two-quantities"])
async def test_one_key_sent_at_once_with_two_requests_books_one(
    api: Api, db: DB, same_event: bool
) -> None:
    organizer = await api.user(Role.ORGANIZER)
    first = await api.event(organizer, capacity=10)
    second = first if same_event else await api.event(organizer, capacity=10)
    fan = await api.user()

    for attempt in range(10):
        key = f"race-{attempt}"
        a, b = await asyncio.gather(
            api.book(fan, first["id"], quantity=1, key=key),
            api.book(fan, second["id"], quantity=1 if not same_event else 2, key=key),
        )
        assert sorted([a.status_code, b.status_code]) == [201, 422], (a.text, b.text)
        loser = a if a.status_code == 422 else b
        assert_problem(loser, 422, "idempotency-key-reused")
        assert (
            await db.fetchval("SELECT count(*) FROM bookings WHERE idempotency_key = $1", key) == 1
        )

    assert await booking_rows(db) == 10
    await assert_invariant(db)


@ENGINE_ON_AND_OFF
async def test_one_key_sent_at_once_to_the_same_event_twice_is_one_booking(
    api: Api, db: DB
) -> None:
    event = await api.event(capacity=10)
    fan = await api.user()
    a, b = await asyncio.gather(
        api.book(fan, event["id"], quantity=3, key="twin"),
        api.book(fan, event["id"], quantity=3, key="twin"),
    )
    assert assert_booked(a) == assert_booked(b)
    assert await booking_rows(db) == 1
    assert await available_spots(api, event["id"]) == 7
    await assert_invariant(db)


# ------------------------------------------------- two API processes sharing one database
#
# Each app instance stands for one `goticket serve` worker process: its own pool and its own
# in-process de-duplication. What keeps them honest is the database alone.


@pytest.fixture
async def second_process(
    settings: Settings, db: DB, engine_mode: str
) -> AsyncIterator[httpx.AsyncClient]:
    async with serving(settings.model_copy(update={"engine": engine_mode})) as application:
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://second.test") as http:
            yield http


def sender(http: httpx.AsyncClient) -> Send:
    async def send(actor: Actor, event_id: str, quantity: int, key: str | None) -> httpx.Response:
        headers = dict(actor.headers)
        if key is not None:
            headers["Idempotency-Key"] = key
        return await http.post(
            f"/events/{event_id}/bookings", json={"quantity": quantity}, headers=headers
        )

    return send


@ENGINE_ON_AND_OFF
async def test_two_processes_never_oversell(
    api: Api, db: DB, second_process: httpx.AsyncClient
) -> None:
    event = await api.event(capacity=30)
    buyers = await users(api, 60)
    sends = [sender(api.http), sender(second_process)]

    responses = await asyncio.gather(
        *(sends[i % 2](b, event["id"], 1, None) for i, b in enumerate(buyers))
    )

    tally = Counter(outcome(r) for r in responses)
    assert tally == {"201": 30, "409 sold-out": 30}, tally
    assert await booking_rows(db) == 30
    await assert_invariant(db)


@ENGINE_ON_AND_OFF
async def test_two_processes_one_key_same_request_book_once(
    api: Api, db: DB, second_process: httpx.AsyncClient
) -> None:
    event = await api.event(capacity=50)
    fan = await api.user()
    sends = [sender(api.http), sender(second_process)]

    responses = await asyncio.gather(
        *(sends[i % 2](fan, event["id"], 2, "cross-process") for i in range(10))
    )

    await _check_single_booking_answers(api, fan, event["id"], "cross-process", list(responses))
    assert await booking_rows(db) == 1
    assert await available_spots(api, event["id"]) == 48
    await assert_invariant(db)


@ENGINE_ON_AND_OFF
async def test_two_processes_one_key_two_events_book_once(
    api: Api, db: DB, second_process: httpx.AsyncClient
) -> None:
    organizer = await api.user(Role.ORGANIZER)
    first = await api.event(organizer, capacity=10)
    second = await api.event(organizer, capacity=10)
    fan = await api.user()
    here, there = sender(api.http), sender(second_process)

    for attempt in range(10):
        key = f"split-{attempt}"
        a, b = await asyncio.gather(
            here(fan, first["id"], 1, key), there(fan, second["id"], 1, key)
        )
        assert sorted([a.status_code, b.status_code]) == [201, 422], (a.text, b.text)
        assert_problem(a if a.status_code == 422 else b, 422, "idempotency-key-reused")

    assert await booking_rows(db) == 10
    assert await available_spots(api, first["id"]) + await available_spots(api, second["id"]) == 10
    await assert_invariant(db)


@ENGINE_ON_AND_OFF
async def test_two_processes_per_user_limit_holds(
    api: Api, db: DB, second_process: httpx.AsyncClient
) -> None:
    event = await api.event(capacity=100, maxPerUser=4)
    fan = await api.user()
    sends = [sender(api.http), sender(second_process)]

    responses = await asyncio.gather(*(sends[i % 2](fan, event["id"], 1, None) for i in range(30)))

    assert Counter(outcome(r) for r in responses) == {"201": 4, "409 per-user-limit": 26}
    assert await confirmed_by_user(db, event["id"]) == {str(fan.id): 4}
    await assert_invariant(db)


@ENGINE_ON_AND_OFF
async def test_two_processes_cancel_one_booking_once(
    api: Api, db: DB, second_process: httpx.AsyncClient
) -> None:
    organizer = await api.user(Role.ORGANIZER)
    event = await api.event(organizer, capacity=10)
    fans = await users(api, 5)
    bookings = [assert_booked(await api.book(f, event["id"], quantity=2)) for f in fans]
    clients = [api.http, second_process]

    responses = await asyncio.gather(
        *(
            clients[i % 2].post(f"/bookings/{b['id']}/cancel", headers=actor.headers)
            for b, fan in zip(bookings, fans, strict=True)
            for i, actor in enumerate((fan, organizer, fan, organizer))
        )
    )

    assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
    stamps: dict[str, set[str]] = {}
    for r in responses:
        stamps.setdefault(r.json()["id"], set()).add(r.json()["updatedAt"])
    assert all(len(s) == 1 for s in stamps.values()), stamps
    assert await available_spots(api, event["id"]) == 10
    await assert_invariant(db)


@ENGINE_ON_AND_OFF
async def test_capacity_changes_during_a_sale_keep_the_invariant(api: Api, db: DB) -> None:
    organizer = await api.user(Role.ORGANIZER)
    event = await api.event(organizer, capacity=30)
    buyers = await users(api, 40)
    fixed = {k: event[k] for k in ("name", "startAt", "endAt", "price", "currency") if k in event}

    async def resize(capacity: int) -> httpx.Response:
        return await api.http.put(
            f"/events/{event['id']}",
            json={**fixed, "capacity": capacity},
            headers=organizer.headers,
        )

    work: list[Awaitable[httpx.Response]] = [api.book(b, event["id"]) for b in buyers]
    for position, capacity in ((5, 40), (15, 10), (25, 45), (35, 35)):
        work.insert(position, resize(capacity))
    answers = await asyncio.gather(*work)

    resizes = [r for r in answers if r.request.method == "PUT"]
    books = [r for r in answers if r.request.method == "POST"]
    assert {outcome(r) for r in books} <= {"201", "409 sold-out"}
    assert {r.status_code for r in resizes} <= {200, 409}
    for r in resizes:
        if r.status_code == 409:
            assert_problem(r, 409, "capacity-below-booked")
    await assert_invariant(db)
    row = await db.fetchrow(
        "SELECT capacity, available FROM event_inventory WHERE event_id = $1", event["id"]
    )
    assert row is not None
    assert row["capacity"] - row["available"] == sum(r.status_code == 201 for r in books)


# ------------------------------------- a duplicate that outlives the wait: request-in-progress


class GatedReserver:
    """Holds the first reservation at a gate, so that a duplicate arrives while it is in flight."""

    def __init__(self, inner: Reserver) -> None:
        self._inner = inner
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self._calls = 0

    async def reserve(self, request: BookRequest) -> Booking:
        self._calls += 1
        if self._calls == 1:
            self.entered.set()
            await self.release.wait()
        return await self._inner.reserve(request)

    def released(self, event_id: UUID) -> None:
        self._inner.released(event_id)

    def queued(self) -> int:
        return self._inner.queued()

    async def close(self) -> None:
        await self._inner.close()


async def _service(
    api: Api, database: Database, wait: float
) -> tuple[BookingService, GatedReserver, Principal, UUID]:
    event = await api.event(capacity=10, price=300)
    fan = await api.user()
    terms = BookingTerms(
        UUID(event["id"]),
        UUID(event["organizerId"]),
        datetime.fromisoformat(event["endAt"]),
        event["price"],
        event["currency"],
        None,
    )

    async def catalog(event_id: UUID) -> BookingTerms | None:
        return terms if event_id == terms.event_id else None

    uow = partial(PgBookingUnitOfWork, database, CatalogTerms)
    gate = GatedReserver(DirectReserver(BatchWriter(uow, SystemClock())))
    service = BookingService(uow, catalog, gate, SystemClock(), in_progress_wait=wait)
    return service, gate, Principal(fan.id, Role.USER), terms.event_id


async def test_a_duplicate_past_the_wait_is_request_in_progress_and_its_retry_gets_the_booking(
    api: Api, db: DB, database: Database
) -> None:
    service, gate, fan, event_id = await _service(api, database, wait=0.05)
    first = asyncio.create_task(service.book(fan, event_id, 2, "slow"))
    await gate.entered.wait()

    with pytest.raises(RequestInProgress) as in_progress:
        await service.book(fan, event_id, 2, "slow")
    assert in_progress.value.retry_after >= 1
    response = domain_reply(in_progress.value)
    assert response.status == 409
    assert int(response.headers["Retry-After"]) >= 1
    assert b"/request-in-progress" in response.body
    # Another key of the same user is not held up by it.
    other = await service.book(fan, event_id, 1, "unrelated")
    assert other.quantity == 1

    gate.release.set()
    booking = await first
    retry = await service.book(fan, event_id, 2, "slow")
    assert retry == booking
    assert await db.fetchval("SELECT count(*) FROM bookings WHERE idempotency_key = 'slow'") == 1
    await assert_invariant(db)


async def test_a_duplicate_within_the_wait_gets_the_same_booking(
    api: Api, db: DB, database: Database
) -> None:
    service, gate, fan, event_id = await _service(api, database, wait=5.0)
    first = asyncio.create_task(service.book(fan, event_id, 3, "patient"))
    await gate.entered.wait()
    duplicates = [asyncio.create_task(service.book(fan, event_id, 3, "patient")) for _ in range(5)]
    await asyncio.sleep(0.05)
    assert not any(d.done() for d in duplicates)  # they wait for the first one's outcome

    gate.release.set()
    booking = await first
    assert all(result == booking for result in await asyncio.gather(*duplicates))
    assert await db.fetchval("SELECT count(*) FROM bookings") == 1
    await assert_invariant(db)
