"""Payment holds on the real database, below HTTP: the writer and the engine hold spots, the
checkout service settles payments and the sweeper expires holds — each change under the event's
inventory row lock, the invariant (capacity = available + Σ pending + Σ confirmed, and a
confirmed booking's tickets) checked after every step and every race."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any
from uuid import UUID

import pytest

from goticket.app import CatalogTerms
from goticket.booking.checkout import CheckoutService
from goticket.booking.direct import DirectReserver
from goticket.booking.domain import (
    Booking,
    BookingStatus,
    BookingTerms,
    BookRequest,
    SoldOut,
)
from goticket.booking.engine import ReservationEngine
from goticket.booking.ports import Reserver
from goticket.booking.repository import PgBookingUnitOfWork
from goticket.booking.writer import BatchWriter
from goticket.kit.db import Connection, Database
from goticket.kit.errors import DomainError
from tests.bookings_support import DB, assert_invariant
from tests.support import Api

HOLD_SECONDS = 60


class MovableClock:
    """The system's time, moved forward by the test to make holds due."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset


class HoldTerms(CatalogTerms):
    """The catalog's terms with every event on payment checkout (the event fields that say so
    are the events context's; here the booking path is under test)."""

    def __init__(self, connection: Connection) -> None:
        super().__init__(connection)

    async def terms(self, event_ids: Sequence[UUID]) -> dict[UUID, BookingTerms]:
        found = await super().terms(event_ids)
        return {e: replace(t, hold_seconds=HOLD_SECONDS) for e, t in found.items()}


class RecordingRefunds:
    def __init__(self) -> None:
        self.refunded: list[UUID] = []
        self.amounts: list[tuple[int, str]] = []

    async def refund(self, payment_id: UUID, provider: str, amount: int, currency: str) -> None:
        self.refunded.append(payment_id)
        self.amounts.append((amount, currency))


class Checkout:
    """A booking path with holds on the test database, in one engine mode."""

    def __init__(self, database: Database, engine: bool) -> None:
        self.clock = MovableClock()
        self.uow = uow = partial(PgBookingUnitOfWork, database, HoldTerms)
        writer = BatchWriter(uow, self.clock, payment_provider="fake")
        self.reserver: Reserver = ReservationEngine(writer) if engine else DirectReserver(writer)
        self.refunds = RecordingRefunds()
        self.service = CheckoutService(uow, self.reserver, self.refunds, self.clock, sweep_batch=50)

    async def hold(self, event_id: UUID, user_id: UUID, quantity: int = 1) -> Booking | DomainError:
        try:
            return await self.reserver.reserve(BookRequest(event_id, user_id, quantity))
        except DomainError as error:  # the outcomes are tallied by the test
            return error

    async def expire_all(self) -> int:
        """Sweep until no hold is due; how many this side expired. Another sweeper (the session
        app's, every second) may hold the lock for a moment: then this one tries again."""
        total = 0
        for _ in range(200):
            total += await self.service.expire_due()
            async with self.uow() as uow:
                if not await uow.bookings.due_holds(self.clock.now(), 1):
                    return total
            await asyncio.sleep(0.01)
        raise AssertionError("due holds are left after 200 sweeps")


@pytest.fixture(params=["on", "off"], ids=["engine-on", "engine-off"])
async def checkout(request: pytest.FixtureRequest, database: Database) -> AsyncIterator[Checkout]:
    made = Checkout(database, engine=request.param == "on")
    yield made
    await made.reserver.close()


async def make_event(api: Api, capacity: int, **extra: Any) -> UUID:
    return UUID((await api.event(capacity=capacity, price=4500, **extra))["id"])


async def make_users(db: DB, count: int) -> list[UUID]:
    rows = await db.fetch(
        """INSERT INTO users (id, email, password_hash, role, created_at, updated_at)
           SELECT gen_random_uuid(), 'fan' || g || '-' || gen_random_uuid() || '@example.com',
                  'x', 'user', now(), now()
           FROM generate_series(1, $1) AS g RETURNING id""",
        count,
    )
    return [row["id"] for row in rows]


async def statuses(db: DB, event_id: UUID) -> dict[str, int]:
    rows = await db.fetch(
        "SELECT status, sum(quantity)::int AS spots FROM bookings WHERE event_id = $1"
        " GROUP BY status",
        event_id,
    )
    return {row["status"]: row["spots"] for row in rows}


async def state(db: DB, booking_id: UUID) -> tuple[str, str | None]:
    """A booking's status and its payment's."""
    row = await db.fetchrow("SELECT status, payment_status FROM bookings WHERE id = $1", booking_id)
    assert row is not None
    return row["status"], row["payment_status"]


async def available(db: DB, event_id: UUID) -> int:
    value: int = await db.fetchval(
        "SELECT available FROM event_inventory WHERE event_id = $1", event_id
    )
    return value


async def test_200_concurrent_holds_on_100_spots_hold_exactly_100(
    api: Api, db: DB, checkout: Checkout
) -> None:
    event_id = await make_event(api, 100)
    fans = await make_users(db, 200)
    outcomes = await asyncio.gather(*(checkout.hold(event_id, fan) for fan in fans))
    held = [o for o in outcomes if isinstance(o, Booking)]
    assert len(held) == 100
    assert all(isinstance(o, SoldOut) for o in outcomes if not isinstance(o, Booking))
    assert all(b.status is BookingStatus.PENDING and b.payment_id == b.id for b in held)
    assert await statuses(db, event_id) == {"pending": 100}
    assert await available(db, event_id) == 0
    assert await db.fetchval("SELECT count(*) FROM tickets") == 0  # none until paid
    await assert_invariant(db)


async def test_the_per_user_limit_counts_pending_holds(
    api: Api, db: DB, checkout: Checkout
) -> None:
    event_id = await make_event(api, 50, maxPerUser=3)
    (fan,) = await make_users(db, 1)
    outcomes = await asyncio.gather(*(checkout.hold(event_id, fan, 1) for _ in range(6)))
    assert sum(isinstance(o, Booking) for o in outcomes) == 3
    assert await statuses(db, event_id) == {"pending": 3}
    await assert_invariant(db)


async def test_due_holds_expire_and_their_spots_go_back_on_sale(
    api: Api, db: DB, checkout: Checkout
) -> None:
    event_id = await make_event(api, 10)
    fans = await make_users(db, 10)
    for fan in fans:
        assert isinstance(await checkout.hold(event_id, fan, 1), Booking)
    assert await checkout.service.expire_due() == 0  # none is due yet
    checkout.clock.offset = timedelta(seconds=HOLD_SECONDS - 1)
    assert await checkout.service.expire_due() == 0
    checkout.clock.offset = timedelta(seconds=HOLD_SECONDS + 1)
    # Batches of 50 at most: 10 fit in one.
    assert await checkout.expire_all() == 10
    assert await statuses(db, event_id) == {"expired": 10}
    assert await available(db, event_id) == 10
    await assert_invariant(db)
    # The spots sell again at once (the engine forgot it was sold out).
    (late,) = await make_users(db, 1)
    assert isinstance(await checkout.hold(event_id, late, 2), Booking)
    await assert_invariant(db)


async def test_a_paid_hold_is_confirmed_with_its_tickets(
    api: Api, db: DB, checkout: Checkout
) -> None:
    event_id = await make_event(api, 10)
    (fan,) = await make_users(db, 1)
    hold = await checkout.hold(event_id, fan, 3)
    assert isinstance(hold, Booking)
    assert hold.payment_id is not None
    await checkout.service.payment_succeeded(hold.payment_id, 3 * 4500, "EUR")
    assert await state(db, hold.id) == ("confirmed", "succeeded")
    assert await db.fetchval("SELECT confirmed_at FROM bookings WHERE id = $1", hold.id)
    tickets = await db.fetch(
        "SELECT seq, status FROM tickets WHERE booking_id = $1 ORDER BY seq", hold.id
    )
    assert [(t["seq"], t["status"]) for t in tickets] == [(1, "valid"), (2, "valid"), (3, "valid")]
    # A second notice of the same payment changes nothing.
    await checkout.service.payment_succeeded(hold.payment_id, 3 * 4500, "EUR")
    assert await db.fetchval("SELECT count(*) FROM tickets WHERE booking_id = $1", hold.id) == 3
    assert checkout.refunds.refunded == []
    # Confirmed holds are not swept, however late.
    checkout.clock.offset = timedelta(days=1)
    assert await checkout.expire_all() == 0
    await assert_invariant(db)


async def test_a_late_payment_takes_the_spots_again_or_is_refunded(
    api: Api, db: DB, checkout: Checkout
) -> None:
    event_id = await make_event(api, 2)
    first, second, third = await make_users(db, 3)
    a = await checkout.hold(event_id, first, 2)
    assert isinstance(a, Booking)
    assert a.payment_id is not None
    checkout.clock.offset = timedelta(seconds=HOLD_SECONDS + 1)
    assert await checkout.expire_all() == 1
    # Nobody took the spots: the late payment confirms the booking again.
    await checkout.service.payment_succeeded(a.payment_id, 9000, "EUR")
    assert await statuses(db, event_id) == {"confirmed": 2}
    assert await available(db, event_id) == 0
    await assert_invariant(db)

    other = await make_event(api, 2)
    b = await checkout.hold(other, second, 2)
    assert isinstance(b, Booking)
    assert b.payment_id is not None
    checkout.clock.offset = timedelta(seconds=2 * HOLD_SECONDS + 2)
    assert await checkout.expire_all() == 1
    c = await checkout.hold(other, third, 1)  # one of the two spots is sold meanwhile
    assert isinstance(c, Booking)
    await checkout.service.payment_succeeded(b.payment_id, 9000, "EUR")
    assert await state(db, b.id) == ("expired", "refunded")
    assert checkout.refunds.refunded == [b.payment_id]
    assert await available(db, other) == 1
    await assert_invariant(db)


async def test_a_failed_payment_keeps_the_hold_and_an_unknown_one_changes_nothing(
    api: Api, db: DB, checkout: Checkout
) -> None:
    event_id = await make_event(api, 5)
    (fan,) = await make_users(db, 1)
    hold = await checkout.hold(event_id, fan, 1)
    assert isinstance(hold, Booking)
    assert hold.payment_id is not None
    await checkout.service.payment_failed(hold.payment_id)
    assert await state(db, hold.id) == ("pending", "failed")
    await checkout.service.payment_succeeded(hold.payment_id, 4500, "EUR")
    assert await state(db, hold.id) == ("confirmed", "succeeded")
    before = await db.fetchval("SELECT count(*) FROM bookings")
    await checkout.service.payment_succeeded(UUID(int=7), 4500, "EUR")
    await checkout.service.payment_failed(UUID(int=7))
    assert await db.fetchval("SELECT count(*) FROM bookings") == before
    await assert_invariant(db)


async def test_payments_racing_the_sweeper_never_confirm_twice_nor_oversell(
    api: Api, db: DB, checkout: Checkout
) -> None:
    """Each round: holds fill the event, their deadline passes, and for every hold a payment,
    the sweeper and a rival buyer (who takes any spot that comes free) run at the same moment.
    Every hold ends confirmed and paid, or expired and refunded — never both — and the event
    never holds more than its capacity."""
    rng = random.Random(12)
    for round_ in range(8):
        capacity = 12
        event_id = await make_event(api, capacity)
        fans = await make_users(db, capacity)
        rivals = await make_users(db, capacity)
        holds = [await checkout.hold(event_id, fan, 1) for fan in fans]
        assert all(isinstance(h, Booking) for h in holds)
        checkout.clock.offset = timedelta(seconds=(round_ + 1) * (HOLD_SECONDS + 1))
        refunded_before = len(checkout.refunds.refunded)
        work: list[Any] = [checkout.service.expire_due()]
        for hold in holds:
            assert isinstance(hold, Booking)
            assert hold.payment_id is not None
            work.append(checkout.service.payment_succeeded(hold.payment_id, 4500, "EUR"))
        work += [checkout.hold(event_id, rival, 1) for rival in rivals]
        rng.shuffle(work)
        await asyncio.gather(*work)
        await checkout.expire_all()
        rows = await db.fetch(
            "SELECT id, status, payment_status FROM bookings WHERE id = ANY($1::uuid[])",
            [h.id for h in holds if isinstance(h, Booking)],
        )
        ends = {(r["status"], r["payment_status"]) for r in rows}
        assert ends <= {("confirmed", "succeeded"), ("expired", "refunded")}, ends
        refunded_now = checkout.refunds.refunded[refunded_before:]
        expired_ids = {r["id"] for r in rows if r["status"] == "expired"}
        assert sorted(refunded_now) == sorted(expired_ids)  # one refund each, only those
        spots = await statuses(db, event_id)
        assert spots.get("confirmed", 0) + spots.get("pending", 0) <= capacity
        await assert_invariant(db)


async def test_a_mass_expiry_goes_in_batches_and_one_sweeper_at_a_time(
    api: Api, db: DB, database: Database
) -> None:
    """Two checkout services (two processes, as far as the database can tell) sweep the same
    due holds at once: the advisory lock lets one in per batch, each hold expires once, and the
    spots come back exactly."""
    first, second = Checkout(database, engine=True), Checkout(database, engine=False)
    try:
        event_id = await make_event(api, 400)
        fans = await make_users(db, 400)
        outcomes = await asyncio.gather(*(first.hold(event_id, fan, 1) for fan in fans))
        assert all(isinstance(o, Booking) for o in outcomes)
        for side in (first, second):
            side.clock.offset = timedelta(seconds=HOLD_SECONDS + 1)
        counts = await asyncio.gather(first.expire_all(), second.expire_all())
        # (The session app's sweeper runs on the real clock: these are not due for it.)
        assert sum(counts) == 400
        assert all(count % 50 == 0 for count in counts)  # whole batches: 400 = 8 x 50
        assert await statuses(db, event_id) == {"expired": 400}
        assert await available(db, event_id) == 400
        await assert_invariant(db)
    finally:
        await first.reserver.close()
        await second.reserver.close()


async def test_a_payment_that_does_not_match_its_hold_is_refunded_what_was_paid(
    api: Api, db: DB, checkout: Checkout
) -> None:
    event_id = await make_event(api, 5)
    (fan,) = await make_users(db, 1)
    hold = await checkout.hold(event_id, fan, 2)
    assert isinstance(hold, Booking)
    assert hold.payment_id is not None
    await checkout.service.payment_succeeded(hold.payment_id, 12_345, "USD")
    assert checkout.refunds.amounts == [(12_345, "USD")]  # not the hold's 9000 EUR
    assert await state(db, hold.id) == ("pending", "refunded")
    await assert_invariant(db)
