"""The use cases on in-memory fakes: what each one reads, writes and commits."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from datetime import timedelta
from typing import Any, TypeVar
from uuid import UUID

import pytest

from goticket.accounts.domain import AdminOnly, EmailTaken, InvalidCredentials, UserNotFound
from goticket.accounts.service import AccountService
from goticket.booking.direct import DirectReserver
from goticket.booking.domain import (
    Booking,
    BookingNotFound,
    BookingStatus,
    BookingTerms,
    EventEnded,
    IdempotencyKeyReused,
    PerUserLimitExceeded,
    RequestInProgress,
    SoldOut,
)
from goticket.booking.domain import EventNotFound as BookingEventNotFound
from goticket.booking.domain import NotEventManager as NotBookingsManager
from goticket.booking.service import BookingService
from goticket.booking.writer import BatchWriter
from goticket.events.domain import (
    CapacityBelowBooked,
    Checkout,
    CheckoutChangeWithHolds,
    Event,
    EventDraft,
    EventHasBookings,
    EventNotFound,
    NotEventManager,
    Stock,
)
from goticket.events.service import EventService
from goticket.kit.auth import Principal, Role
from goticket.kit.errors import InvalidInput
from goticket.kit.pagination import Position
from tests.unit.fakes import (
    NOW,
    FakeAccountsUow,
    FakeBookingsRepository,
    FakeBookingUow,
    FakeCatalog,
    FakeClock,
    FakeEventsUow,
    FakeHasher,
    FakeTokenIssuer,
)

PASSWORD = "correct horse"


def principal(role: Role = Role.USER, user_id: UUID | None = None) -> Principal:
    return Principal(user_id or uuid.uuid4(), role)


# ------------------------------------------------------------------------------------ accounts


class Accounts:
    def __init__(self) -> None:
        self.uow = FakeAccountsUow()
        self.hasher = FakeHasher()
        self.tokens = FakeTokenIssuer()
        self.clock = FakeClock()
        self.service = AccountService(self.uow, self.hasher, self.tokens, self.clock)


@pytest.fixture
def accounts() -> Accounts:
    return Accounts()


async def test_register_stores_a_hashed_password(accounts: Accounts) -> None:
    user = await accounts.service.register("Fan@Example.com", PASSWORD, "Fan")
    assert (user.email, user.name, user.role) == ("Fan@Example.com", "Fan", Role.USER)
    assert user.password_hash == "hash:" + PASSWORD
    assert (user.created_at, user.updated_at) == (NOW, NOW)
    assert accounts.uow.users.rows == {user.id: user}
    assert accounts.uow.log.commits == 1


async def test_register_with_a_role(accounts: Accounts) -> None:
    user = await accounts.service.register("boss@example.com", PASSWORD, None, Role.ADMIN)
    assert accounts.uow.users.rows[user.id].role is Role.ADMIN


@pytest.mark.parametrize("again", ["fan@example.com", "FAN@EXAMPLE.COM", "Fan@Example.Com"])
async def test_register_twice_is_email_taken(accounts: Accounts, again: str) -> None:
    first = await accounts.service.register("fan@example.com", PASSWORD)
    with pytest.raises(EmailTaken):
        await accounts.service.register(again, PASSWORD + "2")
    assert list(accounts.uow.users.rows.values()) == [first]
    assert accounts.uow.log.commits == 1


async def test_register_validates_before_hashing_or_writing(accounts: Accounts) -> None:
    with pytest.raises(InvalidInput) as caught:
        await accounts.service.register("nope", "short")
    assert [e.field for e in caught.value.errors] == ["email", "password"]
    assert accounts.hasher.hashed == []
    assert accounts.uow.log.opened == []


@pytest.mark.parametrize("email", ["fan@example.com", "FAN@example.com", "  fan@example.com  "])
async def test_login_issues_a_token(accounts: Accounts, email: str) -> None:
    user = await accounts.service.register("fan@example.com", PASSWORD)
    token = await accounts.service.login(email, PASSWORD)
    assert token.token == f"token-for-{user.id}"
    assert accounts.tokens.issued == [(user.principal, NOW)]
    assert accounts.uow.log.opened == [False, True]  # login reads in a read-only unit of work


async def test_login_with_a_wrong_password(accounts: Accounts) -> None:
    await accounts.service.register("fan@example.com", PASSWORD)
    with pytest.raises(InvalidCredentials) as caught:
        await accounts.service.login("fan@example.com", "wrong password")
    assert accounts.hasher.verified == [("hash:" + PASSWORD, "wrong password")]
    assert accounts.tokens.issued == []
    assert caught.value.detail == "the email or the password is wrong"


async def test_login_with_an_unknown_email_costs_a_verify_too(accounts: Accounts) -> None:
    with pytest.raises(InvalidCredentials) as unknown:
        await accounts.service.login("ghost@example.com", "whatever1")
    assert len(accounts.hasher.verified) == 1
    dummy_hash, password = accounts.hasher.verified[0]
    assert password == "whatever1"
    assert dummy_hash.startswith("hash:")
    assert accounts.tokens.issued == []
    # The same answer as a wrong password: nothing tells which part was wrong.
    await accounts.service.register("fan@example.com", PASSWORD)
    with pytest.raises(InvalidCredentials) as wrong:
        await accounts.service.login("fan@example.com", "whatever1")
    assert (unknown.value.code, unknown.value.detail) == (wrong.value.code, wrong.value.detail)


async def test_the_dummy_hash_is_made_once(accounts: Accounts) -> None:
    for _ in range(3):
        with pytest.raises(InvalidCredentials):
            await accounts.service.login("ghost@example.com", "whatever1")
    assert len(accounts.hasher.hashed) == 1
    assert len(accounts.hasher.verified) == 3
    assert len({h for h, _ in accounts.hasher.verified}) == 1


async def test_get_user(accounts: Accounts) -> None:
    user = await accounts.service.register("fan@example.com", PASSWORD)
    assert await accounts.service.get(user.id) == user
    with pytest.raises(UserNotFound):
        await accounts.service.get(uuid.uuid4())


async def test_admin_changes_a_role(accounts: Accounts) -> None:
    user = await accounts.service.register("fan@example.com", PASSWORD)
    accounts.clock.current = NOW + timedelta(hours=1)
    changed = await accounts.service.change_role(principal(Role.ADMIN), user.id, Role.ORGANIZER)
    assert (changed.role, changed.updated_at, changed.created_at) == (
        Role.ORGANIZER,
        NOW + timedelta(hours=1),
        NOW,
    )
    assert accounts.uow.users.rows[user.id] == changed
    assert accounts.uow.log.commits == 2


@pytest.mark.parametrize("role", [Role.USER, Role.ORGANIZER])
async def test_only_an_admin_changes_roles(accounts: Accounts, role: Role) -> None:
    user = await accounts.service.register("fan@example.com", PASSWORD)
    opened = len(accounts.uow.log.opened)
    with pytest.raises(AdminOnly):
        await accounts.service.change_role(principal(role, user.id), user.id, Role.ADMIN)
    assert accounts.uow.users.rows[user.id].role is Role.USER
    assert len(accounts.uow.log.opened) == opened  # refused before any database work


async def test_change_role_of_an_unknown_user(accounts: Accounts) -> None:
    with pytest.raises(UserNotFound):
        await accounts.service.change_role(principal(Role.ADMIN), uuid.uuid4(), Role.ADMIN)
    assert accounts.uow.log.commits == 0


# -------------------------------------------------------------------------------------- events

START = NOW + timedelta(days=30)


def make_draft(**overrides: Any) -> EventDraft:
    start = overrides.get("start_at", START)
    fields: dict[str, Any] = {
        "name": "Flash Sale Live",
        "start_at": start,
        "end_at": start + timedelta(hours=3),
        "price": 2500,
        "capacity": 10,
    }
    fields.update(overrides)
    return EventDraft(**fields)


class Catalog:
    def __init__(self) -> None:
        self.uow = FakeEventsUow()
        self.clock = FakeClock()
        self.service = EventService(self.uow, self.clock)
        self.organizer = principal(Role.ORGANIZER)

    def book_spots(self, event_id: UUID, spots: int) -> None:
        """What the booking context would have done to the shared inventory row."""
        capacity, available = self.uow.inventory.rows[event_id]
        self.uow.inventory.rows[event_id] = (capacity, available - spots)


@pytest.fixture
def catalog() -> Catalog:
    return Catalog()


@pytest.mark.parametrize("role", [Role.ORGANIZER, Role.ADMIN])
async def test_create_event(catalog: Catalog, role: Role) -> None:
    actor = principal(role)
    view = await catalog.service.create(actor, make_draft(capacity=7))
    assert view.event.organizer_id == actor.user_id
    assert view.stock == Stock(7, 7)
    assert (view.event.created_at, view.event.updated_at) == (NOW, NOW)
    assert catalog.uow.events.rows == {view.event.id: view.event}
    assert catalog.uow.inventory.rows == {view.event.id: (7, 7)}
    assert catalog.uow.log.commits == 1


async def test_a_user_cannot_create_events(catalog: Catalog) -> None:
    with pytest.raises(NotEventManager):
        await catalog.service.create(principal(Role.USER), make_draft())
    assert catalog.uow.events.rows == {}
    assert catalog.uow.log.opened == []


async def test_create_refuses_an_invalid_draft(catalog: Catalog) -> None:
    with pytest.raises(InvalidInput):
        await catalog.service.create(catalog.organizer, make_draft(capacity=0))
    assert catalog.uow.log.opened == []


async def test_get_event(catalog: Catalog) -> None:
    created = await catalog.service.create(catalog.organizer, make_draft(capacity=5))
    catalog.book_spots(created.event.id, 2)
    view = await catalog.service.get(created.event.id)
    assert view.event == created.event
    assert view.stock == Stock(5, 3)
    assert await catalog.service.find(created.event.id) == created.event
    assert catalog.uow.log.opened[1:] == [True, True]


async def test_get_missing_event(catalog: Catalog) -> None:
    with pytest.raises(EventNotFound):
        await catalog.service.get(uuid.uuid4())
    assert await catalog.service.find(uuid.uuid4()) is None


async def test_get_event_without_inventory_is_not_found(catalog: Catalog) -> None:
    created = await catalog.service.create(catalog.organizer, make_draft())
    del catalog.uow.inventory.rows[created.event.id]
    with pytest.raises(EventNotFound):
        await catalog.service.get(created.event.id)


async def test_list_pages_through_every_event_once(catalog: Catalog) -> None:
    created = [
        (await catalog.service.create(catalog.organizer, make_draft(start_at=START + d))).event
        for d in (timedelta(days=2), timedelta(0), timedelta(days=1), timedelta(0))
    ]
    expected = sorted(created, key=lambda e: (e.start_at, e.id))

    first = await catalog.service.list(limit=3)
    assert [v.event for v in first.items] == expected[:3]
    assert catalog.uow.events.list_calls[-1]["limit"] == 4  # one more, to know a next page exists
    assert first.next == Position(expected[2].start_at, expected[2].id)

    second = await catalog.service.list(after=first.next, limit=3)
    assert [v.event for v in second.items] == expected[3:]
    assert second.next is None
    assert catalog.uow.events.list_calls[-1]["after"] == first.next


async def test_list_exactly_one_page_has_no_next(catalog: Catalog) -> None:
    for _ in range(2):
        await catalog.service.create(catalog.organizer, make_draft())
    page = await catalog.service.list(limit=2)
    assert len(page.items) == 2
    assert page.next is None


async def test_list_passes_the_time_window_and_reports_stock(catalog: Catalog) -> None:
    early = await catalog.service.create(catalog.organizer, make_draft(start_at=START))
    late = await catalog.service.create(
        catalog.organizer, make_draft(start_at=START + timedelta(days=1))
    )
    catalog.book_spots(late.event.id, 4)
    page = await catalog.service.list(starts_after=START + timedelta(hours=1))
    assert [(v.event.id, v.stock) for v in page.items] == [(late.event.id, Stock(10, 6))]
    assert catalog.uow.events.list_calls[-1]["starts_after"] == START + timedelta(hours=1)
    page = await catalog.service.list(starts_before=START + timedelta(hours=1))
    assert [v.event.id for v in page.items] == [early.event.id]


@pytest.mark.parametrize("actor_role", ["owner", "admin"])
async def test_replace_event(catalog: Catalog, actor_role: str) -> None:
    created = await catalog.service.create(catalog.organizer, make_draft(capacity=10))
    catalog.book_spots(created.event.id, 4)
    catalog.clock.current = NOW + timedelta(minutes=5)
    actor = catalog.organizer if actor_role == "owner" else principal(Role.ADMIN)
    view = await catalog.service.replace(
        actor, created.event.id, make_draft(name="Renamed", capacity=6)
    )
    assert view.event.name == "Renamed"
    assert (view.event.id, view.event.organizer_id, view.event.created_at) == (
        created.event.id,
        catalog.organizer.user_id,
        NOW,
    )
    assert view.event.updated_at == NOW + timedelta(minutes=5)
    assert view.stock == Stock(6, 2)
    assert catalog.uow.events.rows[created.event.id] == view.event
    assert catalog.uow.inventory.rows[created.event.id] == (6, 2)
    assert catalog.uow.inventory.locked == [created.event.id]
    assert catalog.uow.log.commits == 2


async def test_replace_below_booked_commits_nothing(catalog: Catalog) -> None:
    created = await catalog.service.create(catalog.organizer, make_draft(capacity=10))
    catalog.book_spots(created.event.id, 4)
    with pytest.raises(CapacityBelowBooked) as caught:
        await catalog.service.replace(
            catalog.organizer, created.event.id, make_draft(name="Renamed", capacity=3)
        )
    assert caught.value.extra == {"booked": 4}
    assert catalog.uow.events.rows[created.event.id] == created.event
    assert catalog.uow.inventory.rows[created.event.id] == (10, 6)
    assert catalog.uow.log.commits == 1  # the create only


async def test_replace_cannot_switch_checkout_while_holds_are_pending(catalog: Catalog) -> None:
    created = await catalog.service.create(
        catalog.organizer, make_draft(checkout=Checkout.PAYMENT, capacity=10)
    )
    catalog.book_spots(created.event.id, 2)
    catalog.uow.inventory.holds[created.event.id] = 1
    with pytest.raises(CheckoutChangeWithHolds):
        await catalog.service.replace(
            catalog.organizer, created.event.id, make_draft(name="Renamed", capacity=10)
        )
    assert catalog.uow.events.rows[created.event.id] == created.event
    assert catalog.uow.log.commits == 1  # the create only
    # The count was taken under the inventory row lock (holds are made under it too).
    assert catalog.uow.inventory.locked == [created.event.id]

    # Keeping the checkout is fine with holds pending (a new hold length, too).
    kept = await catalog.service.replace(
        catalog.organizer,
        created.event.id,
        make_draft(checkout=Checkout.PAYMENT, hold_seconds=120, capacity=10),
    )
    assert (kept.event.checkout, kept.event.hold_seconds) == (Checkout.PAYMENT, 120)

    # Once the holds are settled, the checkout may change.
    catalog.uow.inventory.holds[created.event.id] = 0
    switched = await catalog.service.replace(
        catalog.organizer, created.event.id, make_draft(capacity=10)
    )
    assert switched.event.checkout is Checkout.INSTANT
    assert catalog.uow.events.rows[created.event.id].checkout is Checkout.INSTANT


async def test_replace_judges_the_checkout_as_it_is_under_the_lock(
    catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another replace committed between the first read and the lock: it switched the event to
    payment and holds were made since. Switching back must see them."""
    created = await catalog.service.create(catalog.organizer, make_draft())
    catalog.uow.inventory.holds[created.event.id] = 1
    lock = catalog.uow.inventory.lock

    async def switched_meanwhile(event_id: UUID) -> tuple[int, int] | None:
        row = catalog.uow.events.rows[event_id]
        catalog.uow.events.rows[event_id] = dataclasses.replace(row, checkout=Checkout.PAYMENT)
        return await lock(event_id)

    monkeypatch.setattr(catalog.uow.inventory, "lock", switched_meanwhile)
    with pytest.raises(CheckoutChangeWithHolds):
        await catalog.service.replace(catalog.organizer, created.event.id, make_draft())


@pytest.mark.parametrize("role", [Role.ORGANIZER, Role.USER])
async def test_replace_by_someone_else(catalog: Catalog, role: Role) -> None:
    created = await catalog.service.create(catalog.organizer, make_draft())
    with pytest.raises(NotEventManager):
        await catalog.service.replace(principal(role), created.event.id, make_draft(name="Mine"))
    assert catalog.uow.events.rows[created.event.id] == created.event
    assert catalog.uow.log.commits == 1


async def test_replace_missing_event(catalog: Catalog) -> None:
    with pytest.raises(EventNotFound):
        await catalog.service.replace(catalog.organizer, uuid.uuid4(), make_draft())
    assert catalog.uow.log.commits == 0


async def test_replace_event_whose_inventory_vanished(catalog: Catalog) -> None:
    created = await catalog.service.create(catalog.organizer, make_draft())
    del catalog.uow.inventory.rows[created.event.id]
    with pytest.raises(EventNotFound):
        await catalog.service.replace(catalog.organizer, created.event.id, make_draft(name="X"))
    assert catalog.uow.events.rows[created.event.id].name == "Flash Sale Live"


async def test_replace_event_deleted_meanwhile(
    catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    created = await catalog.service.create(catalog.organizer, make_draft(capacity=10))

    async def row_gone(event: Event) -> bool:
        return False  # UPDATE ... RETURNING found no row: another request deleted it

    monkeypatch.setattr(catalog.uow.events, "update", row_gone)
    with pytest.raises(EventNotFound):
        await catalog.service.replace(catalog.organizer, created.event.id, make_draft(capacity=20))
    assert catalog.uow.inventory.rows[created.event.id] == (10, 10)
    assert catalog.uow.log.commits == 1


async def test_replace_with_an_invalid_draft(catalog: Catalog) -> None:
    created = await catalog.service.create(catalog.organizer, make_draft())
    with pytest.raises(InvalidInput):
        await catalog.service.replace(catalog.organizer, created.event.id, make_draft(price=-1))
    assert catalog.uow.events.rows[created.event.id] == created.event
    assert catalog.uow.log.commits == 1


async def test_delete_event(catalog: Catalog) -> None:
    created = await catalog.service.create(catalog.organizer, make_draft())
    await catalog.service.delete(catalog.organizer, created.event.id)
    assert catalog.uow.events.rows == {}
    assert catalog.uow.inventory.locked == [created.event.id]
    assert catalog.uow.log.commits == 2


async def test_delete_event_with_bookings(catalog: Catalog) -> None:
    created = await catalog.service.create(catalog.organizer, make_draft())
    catalog.book_spots(created.event.id, 1)
    with pytest.raises(EventHasBookings) as caught:
        await catalog.service.delete(catalog.organizer, created.event.id)
    assert caught.value.extra == {"booked": 1}
    assert created.event.id in catalog.uow.events.rows
    assert catalog.uow.log.commits == 1


async def test_delete_by_someone_else(catalog: Catalog) -> None:
    created = await catalog.service.create(catalog.organizer, make_draft())
    with pytest.raises(NotEventManager):
        await catalog.service.delete(principal(Role.ORGANIZER), created.event.id)
    assert created.event.id in catalog.uow.events.rows


async def test_delete_missing_event(catalog: Catalog) -> None:
    with pytest.raises(EventNotFound):
        await catalog.service.delete(catalog.organizer, uuid.uuid4())
    created = await catalog.service.create(catalog.organizer, make_draft())
    del catalog.uow.inventory.rows[created.event.id]
    with pytest.raises(EventNotFound):
        await catalog.service.delete(catalog.organizer, created.event.id)
    assert created.event.id in catalog.uow.events.rows


# ------------------------------------------------------------------------------------- booking

ORGANIZER_ID = uuid.uuid4()
T = TypeVar("T")


async def within(awaitable: Awaitable[T], seconds: float = 2.0) -> T:
    """A concurrency regression fails the test instead of hanging it."""
    return await asyncio.wait_for(awaitable, seconds)


class Bookings:
    def __init__(self, *, in_progress_wait: float = 10.0) -> None:
        self.catalog = FakeCatalog()
        self.uow = FakeBookingUow(self.catalog)
        self.clock = FakeClock()
        self.reserver = DirectReserver(BatchWriter(self.uow, self.clock))
        self.service = BookingService(
            self.uow, self.catalog, self.reserver, self.clock, in_progress_wait=in_progress_wait
        )
        self.organizer = principal(Role.ORGANIZER, ORGANIZER_ID)
        self.fan = principal(Role.USER)
        self._tasks: list[asyncio.Task[Booking]] = []

    def event(
        self, *, capacity: int = 10, max_per_user: int | None = None, price: int = 2500
    ) -> UUID:
        event_id = uuid.uuid4()
        self.catalog.terms[event_id] = BookingTerms(
            event_id, ORGANIZER_ID, NOW + timedelta(days=1), price, "EUR", max_per_user
        )
        self.uow.bookings.available[event_id] = capacity
        return event_id

    def spawn(self, coro: Coroutine[Any, Any, Booking]) -> asyncio.Task[Booking]:
        self._tasks.append(asyncio.ensure_future(coro))
        return self._tasks[-1]

    async def stop(self) -> None:
        """Nothing a failed test left running may leak into the next one (one loop for all)."""
        if self.catalog.gate is not None:
            self.catalog.gate.set()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    @property
    def repo(self) -> FakeBookingsRepository:
        return self.uow.bookings


@pytest.fixture
async def make_bookings() -> AsyncIterator[Callable[..., Bookings]]:
    made: list[Bookings] = []

    def make(**kwargs: Any) -> Bookings:
        made.append(Bookings(**kwargs))
        return made[-1]

    yield make
    for each in made:
        await each.stop()


@pytest.fixture
def bookings(make_bookings: Callable[..., Bookings]) -> Bookings:
    return make_bookings()


async def test_book(bookings: Bookings) -> None:
    event_id = bookings.event(capacity=5, price=1000)
    booking = await bookings.service.book(bookings.fan, event_id, 2, "key-1")
    assert (booking.event_id, booking.user_id, booking.quantity) == (
        event_id,
        bookings.fan.user_id,
        2,
    )
    assert (booking.status, booking.total_price, booking.currency) == (
        BookingStatus.CONFIRMED,
        2000,
        "EUR",
    )
    assert (booking.idempotency_key, booking.created_at) == ("key-1", NOW)
    assert bookings.repo.rows == {booking.id: booking}
    assert bookings.repo.available[event_id] == 3
    assert bookings.uow.log.commits == 1


async def test_book_without_a_key(bookings: Bookings) -> None:
    event_id = bookings.event(capacity=5)
    first = await bookings.service.book(bookings.fan, event_id, 1)
    second = await bookings.service.book(bookings.fan, event_id, 1)
    assert first.id != second.id  # no key: two requests are two bookings
    assert bookings.repo.available[event_id] == 3
    assert bookings.uow.log.commits == 2


async def test_book_the_last_spots(bookings: Bookings) -> None:
    event_id = bookings.event(capacity=3)
    await bookings.service.book(bookings.fan, event_id, 3)
    assert bookings.repo.available[event_id] == 0


async def test_sold_out(bookings: Bookings) -> None:
    event_id = bookings.event(capacity=3)
    await bookings.service.book(bookings.fan, event_id, 2)
    with pytest.raises(SoldOut) as caught:
        await bookings.service.book(principal(), event_id, 2)
    assert caught.value.extra == {"available": 1}
    assert bookings.repo.available[event_id] == 1
    assert len(bookings.repo.rows) == 1
    assert bookings.uow.log.commits == 1


async def test_per_user_limit(bookings: Bookings) -> None:
    event_id = bookings.event(capacity=10, max_per_user=3)
    await bookings.service.book(bookings.fan, event_id, 2)
    with pytest.raises(PerUserLimitExceeded) as caught:
        await bookings.service.book(bookings.fan, event_id, 2)
    assert caught.value.extra == {"limit": 3}
    await bookings.service.book(principal(), event_id, 3)  # someone else has their own limit
    await bookings.service.book(bookings.fan, event_id, 1)  # up to the limit exactly
    assert bookings.repo.available[event_id] == 4
    assert bookings.uow.log.commits == 3


async def test_cancelled_bookings_do_not_count_toward_the_limit(bookings: Bookings) -> None:
    event_id = bookings.event(max_per_user=2)
    first = await bookings.service.book(bookings.fan, event_id, 2)
    await bookings.service.cancel(bookings.fan, first.id)
    again = await bookings.service.book(bookings.fan, event_id, 2)
    assert again.is_confirmed


@pytest.mark.parametrize("after_end", [timedelta(0), timedelta(hours=1)])
async def test_event_ended(bookings: Bookings, after_end: timedelta) -> None:
    event_id = bookings.event()
    bookings.clock.current = bookings.catalog.terms[event_id].end_at + after_end
    with pytest.raises(EventEnded):
        await bookings.service.book(bookings.fan, event_id, 1)
    assert bookings.repo.rows == {}
    assert bookings.repo.available[event_id] == 10


async def test_unknown_event(bookings: Bookings) -> None:
    with pytest.raises(BookingEventNotFound):
        await bookings.service.book(bookings.fan, uuid.uuid4(), 1)
    assert bookings.uow.log.commits == 0
    assert bookings.repo.rows == {}


async def test_event_known_to_the_catalog_without_inventory(bookings: Bookings) -> None:
    event_id = bookings.event()
    del bookings.repo.available[event_id]
    with pytest.raises(BookingEventNotFound):
        await bookings.service.book(bookings.fan, event_id, 1)
    assert bookings.repo.rows == {}


@pytest.mark.parametrize(("quantity", "key"), [(0, None), (11, None), (1, ""), (1, "a\tb")])
async def test_book_validates_before_anything_else(
    bookings: Bookings, quantity: int, key: str | None
) -> None:
    event_id = bookings.event()
    with pytest.raises(InvalidInput):
        await bookings.service.book(bookings.fan, event_id, quantity, key)
    assert bookings.catalog.calls == 0
    assert bookings.uow.log.opened == []


async def test_idempotent_replay(bookings: Bookings) -> None:
    event_id = bookings.event(capacity=5)
    first = await bookings.service.book(bookings.fan, event_id, 2, "key-1")
    replayed = await bookings.service.book(bookings.fan, event_id, 2, "key-1")
    assert replayed == first
    # Keys are not read before the first insert: the taken key makes it come up short, the
    # transaction is rolled back, and the second attempt reads the key and replays.
    assert bookings.repo.insert_attempts == 2
    assert bookings.repo.available[event_id] == 3
    assert bookings.uow.log.commits == 1


async def test_replay_after_the_event_ended_still_returns_the_booking(bookings: Bookings) -> None:
    event_id = bookings.event()
    first = await bookings.service.book(bookings.fan, event_id, 1, "key-1")
    bookings.clock.current = NOW + timedelta(days=2)
    assert await bookings.service.book(bookings.fan, event_id, 1, "key-1") == first


async def test_same_key_for_another_user_is_another_booking(bookings: Bookings) -> None:
    event_id = bookings.event()
    mine = await bookings.service.book(bookings.fan, event_id, 1, "key-1")
    theirs = await bookings.service.book(principal(), event_id, 1, "key-1")
    assert mine.id != theirs.id
    assert bookings.repo.available[event_id] == 8


@pytest.mark.parametrize("change", ["quantity", "event"])
async def test_key_reused_for_another_request(bookings: Bookings, change: str) -> None:
    event_id = bookings.event()
    other_event = bookings.event()
    await bookings.service.book(bookings.fan, event_id, 1, "key-1")
    with pytest.raises(IdempotencyKeyReused):
        if change == "quantity":
            await bookings.service.book(bookings.fan, event_id, 2, "key-1")
        else:
            await bookings.service.book(bookings.fan, other_event, 1, "key-1")
    assert len(bookings.repo.rows) == 1
    assert (bookings.repo.available[event_id], bookings.repo.available[other_event]) == (9, 10)
    assert bookings.uow.log.commits == 1


async def test_key_conflict_found_only_by_the_insert_replays(
    bookings: Bookings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another transaction (another event, so another row lock) committed the same key between our
    # keys read and our insert: the unique constraint catches it and the booking is replayed.
    event_id = bookings.event()
    first = await bookings.service.book(bookings.fan, event_id, 1, "key-1")
    real_by_keys = bookings.repo.by_keys
    reads = 0

    async def stale_first_read(
        slots: Sequence[tuple[UUID, str]],
    ) -> dict[tuple[UUID, str], Booking]:
        nonlocal reads
        reads += 1
        return {} if reads == 1 else await real_by_keys(slots)

    monkeypatch.setattr(bookings.repo, "by_keys", stale_first_read)
    assert await bookings.service.book(bookings.fan, event_id, 1, "key-1") == first
    # unread keys, then a stale read, then the truth: three inserts, one commit (the first)
    assert bookings.repo.insert_attempts == 3
    assert bookings.repo.available[event_id] == 9
    assert bookings.uow.log.commits == 1


async def test_concurrent_duplicates_wait_for_the_first(bookings: Bookings) -> None:
    event_id = bookings.event(capacity=5)
    gate = bookings.catalog.gate = asyncio.Event()
    tasks = [
        bookings.spawn(bookings.service.book(bookings.fan, event_id, 2, "key-1")) for _ in range(3)
    ]
    for _ in range(10):
        await asyncio.sleep(0)
    # The first is held in the catalog; the duplicates wait for it instead of racing it.
    assert bookings.catalog.calls == 1
    assert not any(t.done() for t in tasks)
    gate.set()
    results = await within(asyncio.gather(*tasks))
    assert results[0] == results[1] == results[2]
    assert bookings.catalog.max_active == 1
    # One booking; each duplicate then replays it (its unread key makes one insert come up short).
    assert bookings.repo.insert_attempts == 3
    assert bookings.repo.available[event_id] == 3
    assert bookings.uow.log.commits == 1
    assert bookings.service._in_flight == {}


async def test_concurrent_duplicate_key_for_another_request_is_refused(
    bookings: Bookings,
) -> None:
    event_id = bookings.event(capacity=5)
    gate = bookings.catalog.gate = asyncio.Event()
    first = bookings.spawn(bookings.service.book(bookings.fan, event_id, 1, "key-1"))
    second = bookings.spawn(bookings.service.book(bookings.fan, event_id, 3, "key-1"))
    for _ in range(10):
        await asyncio.sleep(0)
    assert bookings.catalog.calls == 1
    gate.set()
    outcomes = await within(asyncio.gather(first, second, return_exceptions=True))
    assert outcomes[0] == next(iter(bookings.repo.rows.values()))
    assert isinstance(outcomes[1], IdempotencyKeyReused)
    assert bookings.repo.available[event_id] == 4


async def test_concurrent_requests_with_different_keys_do_not_wait(bookings: Bookings) -> None:
    event_id = bookings.event(capacity=5)
    gate = bookings.catalog.gate = asyncio.Event()
    tasks = [
        bookings.spawn(bookings.service.book(bookings.fan, event_id, 1, key))
        for key in ("key-1", "key-2")
    ]
    for _ in range(10):
        await asyncio.sleep(0)
    # Neither waits on the other's key: both are in flight (the second one queued behind the
    # first's transaction, as behind the row lock), and neither is told "in progress".
    assert bookings.catalog.active == 1
    assert not any(task.done() for task in tasks)
    gate.set()
    first, second = await within(asyncio.gather(*tasks))
    assert first.id != second.id
    assert bookings.repo.available[event_id] == 3


async def test_a_failed_first_request_lets_the_duplicate_try_itself(
    bookings: Bookings,
) -> None:
    event_id = bookings.event(capacity=1)
    gate = bookings.catalog.gate = asyncio.Event()
    first = bookings.spawn(bookings.service.book(bookings.fan, event_id, 2, "key-1"))
    for _ in range(5):
        await asyncio.sleep(0)
    second = bookings.spawn(bookings.service.book(bookings.fan, event_id, 2, "key-1"))
    gate.set()
    outcomes = await within(asyncio.gather(first, second, return_exceptions=True))
    assert [type(o) for o in outcomes] == [SoldOut, SoldOut]
    assert bookings.catalog.calls == 2
    assert bookings.service._in_flight == {}


async def test_request_in_progress_when_the_first_takes_too_long(
    make_bookings: Callable[..., Bookings],
) -> None:
    bookings = make_bookings(in_progress_wait=0.01)
    event_id = bookings.event()
    gate = bookings.catalog.gate = asyncio.Event()
    first = bookings.spawn(bookings.service.book(bookings.fan, event_id, 1, "key-1"))
    await asyncio.sleep(0)
    with pytest.raises(RequestInProgress) as caught:
        await within(bookings.service.book(bookings.fan, event_id, 1, "key-1"))
    assert caught.value.retry_after == 1
    assert not first.done()
    gate.set()
    booking = await within(first)
    assert bookings.repo.rows == {booking.id: booking}
    # Once the first is done, a retry is a plain replay.
    assert await bookings.service.book(bookings.fan, event_id, 1, "key-1") == booking


async def test_get_booking_visibility(bookings: Bookings) -> None:
    event_id = bookings.event()
    booking = await bookings.service.book(bookings.fan, event_id, 1)
    assert await bookings.service.get(bookings.fan, booking.id) == booking
    assert await bookings.service.get(bookings.organizer, booking.id) == booking
    assert await bookings.service.get(principal(Role.ADMIN), booking.id) == booking
    for stranger in (principal(Role.USER), principal(Role.ORGANIZER)):
        with pytest.raises(BookingNotFound):
            await bookings.service.get(stranger, booking.id)
    with pytest.raises(BookingNotFound):
        await bookings.service.get(bookings.fan, uuid.uuid4())
    assert set(bookings.uow.log.opened[1:]) == {True}  # every read is read-only


async def test_organizer_loses_sight_when_the_event_is_gone(bookings: Bookings) -> None:
    event_id = bookings.event()
    booking = await bookings.service.book(bookings.fan, event_id, 1)
    del bookings.catalog.terms[event_id]
    with pytest.raises(BookingNotFound):
        await bookings.service.get(bookings.organizer, booking.id)
    assert await bookings.service.get(bookings.fan, booking.id) == booking


async def test_cancel_returns_the_spots_once(bookings: Bookings) -> None:
    event_id = bookings.event(capacity=5)
    booking = await bookings.service.book(bookings.fan, event_id, 2)
    bookings.clock.current = NOW + timedelta(minutes=1)
    cancelled = await bookings.service.cancel(bookings.fan, booking.id)
    assert (cancelled.id, cancelled.status, cancelled.updated_at) == (
        booking.id,
        BookingStatus.CANCELLED,
        NOW + timedelta(minutes=1),
    )
    assert bookings.repo.available[event_id] == 5
    assert bookings.uow.log.commits == 2

    again = await bookings.service.cancel(bookings.fan, booking.id)
    assert again == cancelled
    assert bookings.repo.available[event_id] == 5
    assert bookings.uow.log.commits == 2


async def test_organizer_and_admin_may_cancel(bookings: Bookings) -> None:
    event_id = bookings.event(capacity=5)
    one = await bookings.service.book(bookings.fan, event_id, 1)
    two = await bookings.service.book(bookings.fan, event_id, 1)
    assert (await bookings.service.cancel(bookings.organizer, one.id)).is_confirmed is False
    assert (await bookings.service.cancel(principal(Role.ADMIN), two.id)).is_confirmed is False
    assert bookings.repo.available[event_id] == 5


async def test_a_stranger_cannot_cancel(bookings: Bookings) -> None:
    event_id = bookings.event(capacity=5)
    booking = await bookings.service.book(bookings.fan, event_id, 1)
    with pytest.raises(BookingNotFound):
        await bookings.service.cancel(principal(), booking.id)
    assert bookings.repo.rows[booking.id].is_confirmed
    assert bookings.repo.available[event_id] == 4


async def test_cancel_raced_by_another_cancel_returns_spots_once(bookings: Bookings) -> None:
    event_id = bookings.event(capacity=5)
    booking = await bookings.service.book(bookings.fan, event_id, 2)

    def another_process_cancels_first(readonly: bool) -> None:
        # Between our visibility read and our write transaction, another process cancelled
        # the same booking and committed.
        if not readonly:
            bookings.repo.rows[booking.id] = booking.cancelled(NOW)
            bookings.repo.available[event_id] += booking.quantity

    bookings.uow.log.before_enter = another_process_cancels_first
    result = await bookings.service.cancel(bookings.fan, booking.id)
    assert result.status is BookingStatus.CANCELLED
    assert bookings.repo.available[event_id] == 5  # not 7
    assert bookings.uow.log.commits == 1  # the booking's only


async def test_cancel_of_a_booking_that_vanished(bookings: Bookings) -> None:
    event_id = bookings.event()
    booking = await bookings.service.book(bookings.fan, event_id, 1)
    del bookings.repo.available[event_id]
    with pytest.raises(BookingNotFound):
        await bookings.service.cancel(bookings.fan, booking.id)
    assert bookings.repo.rows[booking.id].is_confirmed


async def test_list_mine_pages(bookings: Bookings) -> None:
    event_id = bookings.event()
    made = []
    for minute in range(3):
        bookings.clock.current = NOW + timedelta(minutes=minute)
        made.append(await bookings.service.book(bookings.fan, event_id, 1))
    await bookings.service.book(principal(), event_id, 1)  # not mine
    first = await bookings.service.list_mine(bookings.fan, None, 2)
    assert first.items == [made[2], made[1]]  # newest first, as the API documents
    assert first.next == Position(made[1].created_at, made[1].id)
    second = await bookings.service.list_mine(bookings.fan, first.next, 2)
    assert second.items == [made[0]]
    assert second.next is None


@pytest.mark.parametrize("who", ["organizer", "admin"])
async def test_list_for_event(bookings: Bookings, who: str) -> None:
    event_id = bookings.event()
    other_event = bookings.event()
    mine = await bookings.service.book(bookings.fan, event_id, 1)
    await bookings.service.book(bookings.fan, other_event, 1)
    actor = bookings.organizer if who == "organizer" else principal(Role.ADMIN)
    page = await bookings.service.list_for_event(actor, event_id, None, 10)
    assert page.items == [mine]
    assert page.next is None


@pytest.mark.parametrize("role", [Role.ORGANIZER, Role.USER])
async def test_list_for_event_by_someone_else(bookings: Bookings, role: Role) -> None:
    event_id = bookings.event()
    await bookings.service.book(bookings.fan, event_id, 1)
    opened = len(bookings.uow.log.opened)
    with pytest.raises(NotBookingsManager):
        await bookings.service.list_for_event(principal(role), event_id, None, 10)
    assert len(bookings.uow.log.opened) == opened


async def test_list_for_an_unknown_event(bookings: Bookings) -> None:
    with pytest.raises(BookingEventNotFound):
        await bookings.service.list_for_event(bookings.organizer, uuid.uuid4(), None, 10)


def test_fakes_satisfy_the_ports() -> None:
    # mypy checks these assignments against the Protocols; at runtime they must construct.
    from goticket.accounts.service import UnitOfWorkFactory as AccountsUowFactory
    from goticket.booking.ports import EventCatalog, Reserver
    from goticket.booking.ports import UnitOfWorkFactory as BookingUowFactory
    from goticket.events.service import UnitOfWorkFactory as EventsUowFactory

    accounts_uow: AccountsUowFactory = FakeAccountsUow()
    events_uow: EventsUowFactory = FakeEventsUow()
    booking_uow: BookingUowFactory = FakeBookingUow()
    catalog: EventCatalog = FakeCatalog()
    reserver: Reserver = DirectReserver(BatchWriter(booking_uow, FakeClock()))
    assert all(callable(f) for f in (accounts_uow, events_uow, booking_uow, catalog))
    assert isinstance(reserver, DirectReserver)
