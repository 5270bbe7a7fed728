from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from goticket.events.domain import (
    CAPACITY_MAX,
    DEFAULT_CURRENCY,
    DEFAULT_HOLD_SECONDS,
    EARLIEST,
    HOLD_SECONDS_MAX,
    HOLD_SECONDS_MIN,
    LATEST,
    NAME_MAX,
    PRICE_MAX,
    CapacityBelowBooked,
    Checkout,
    CheckoutChangeWithHolds,
    Event,
    EventDraft,
    EventHasBookings,
    NotEventManager,
    Stock,
    ensure_can_create,
    ensure_can_delete,
    ensure_can_manage,
    ensure_checkout_can_change,
    representable,
)
from goticket.kit.auth import Principal, Role
from goticket.kit.errors import Conflict, InvalidInput, PermissionDenied

NOW = datetime(2030, 1, 1, tzinfo=UTC)
START = datetime(2030, 3, 1, 19, 0, tzinfo=UTC)


def make_draft(**overrides: Any) -> EventDraft:
    fields: dict[str, Any] = {
        "name": "Flash Sale Live",
        "start_at": START,
        "end_at": START + timedelta(hours=3),
        "price": 2500,
        "capacity": 100,
    }
    fields.update(overrides)
    return EventDraft(**fields)


def error_fields(draft: EventDraft) -> list[str]:
    try:
        draft.check()
    except InvalidInput as exc:
        return [e.field for e in exc.errors]
    return []


@pytest.mark.parametrize(
    ("overrides", "fields"),
    [
        ({}, []),
        # schedule
        ({"end_at": START}, ["endAt"]),
        ({"end_at": START - timedelta(seconds=1)}, ["endAt"]),
        ({"end_at": START + timedelta(microseconds=1)}, []),
        # naive timestamps, each reported under its own name
        ({"start_at": START.replace(tzinfo=None)}, ["startAt"]),
        ({"end_at": (START + timedelta(hours=1)).replace(tzinfo=None)}, ["endAt"]),
        (
            {"start_at": START.replace(tzinfo=None), "end_at": START.replace(tzinfo=None)},
            ["startAt", "endAt"],
        ),
        # only instants whose UTC date lies in years 1..9999 can be stored and read back
        ({"start_at": EARLIEST}, []),
        ({"start_at": datetime(1, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=1)))}, ["startAt"]),
        ({"end_at": LATEST}, []),
        ({"end_at": datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-5)))}, ["endAt"]),
        # an offset other than UTC is compared as the instant it is
        ({"end_at": (START + timedelta(hours=1)).astimezone(timezone(timedelta(hours=2)))}, []),
        ({"end_at": START.replace(tzinfo=timezone(timedelta(hours=2)))}, ["endAt"]),
        # name
        ({"name": ""}, ["name"]),
        ({"name": "x"}, []),
        ({"name": "x" * NAME_MAX}, []),
        ({"name": "x" * (NAME_MAX + 1)}, ["name"]),
        # price
        ({"price": -1}, ["price"]),
        ({"price": 0}, []),
        ({"price": PRICE_MAX}, []),
        ({"price": PRICE_MAX + 1}, ["price"]),
        # capacity
        ({"capacity": 0}, ["capacity"]),
        ({"capacity": 1}, []),
        ({"capacity": CAPACITY_MAX}, []),
        ({"capacity": CAPACITY_MAX + 1}, ["capacity"]),
        # per-user limit
        ({"max_per_user": None}, []),
        ({"max_per_user": 0}, ["maxPerUser"]),
        ({"max_per_user": 1}, []),
        ({"max_per_user": 100}, []),
        ({"max_per_user": 101}, ["maxPerUser"]),
        # hold length
        ({"hold_seconds": HOLD_SECONDS_MIN - 1}, ["holdSeconds"]),
        ({"hold_seconds": HOLD_SECONDS_MIN}, []),
        ({"hold_seconds": HOLD_SECONDS_MAX}, []),
        ({"hold_seconds": HOLD_SECONDS_MAX + 1}, ["holdSeconds"]),
        ({"checkout": Checkout.PAYMENT}, []),
    ],
)
def test_draft_rules(overrides: dict[str, Any], fields: list[str]) -> None:
    assert error_fields(make_draft(**overrides)) == fields


@pytest.mark.parametrize(
    ("instant", "fits"),
    [
        (START, True),
        (START.replace(tzinfo=None), False),
        (EARLIEST, True),
        (LATEST, True),
        (datetime(1, 1, 1, 1, 0, tzinfo=timezone(timedelta(hours=1))), True),
        (datetime(1, 1, 1, 0, 59, tzinfo=timezone(timedelta(hours=1))), False),
        (datetime(9999, 12, 31, 19, tzinfo=timezone(timedelta(hours=-4))), True),
        (datetime(9999, 12, 31, 20, tzinfo=timezone(timedelta(hours=-4))), False),
    ],
)
def test_representable(instant: datetime, fits: bool) -> None:
    assert representable(instant) is fits


def test_draft_reports_every_error_at_once() -> None:
    draft = make_draft(
        end_at=START - timedelta(hours=1), name="", price=-5, capacity=0, max_per_user=3
    )
    with pytest.raises(InvalidInput) as caught:
        draft.check()
    assert [e.field for e in caught.value.errors] == [
        "endAt",
        "name",
        "price",
        "capacity",
        "maxPerUser",
    ]
    assert "capacity: must be between 1 and" in caught.value.detail


def test_draft_defaults() -> None:
    draft = make_draft()
    assert (draft.currency, draft.description, draft.venue, draft.max_per_user) == (
        DEFAULT_CURRENCY,
        None,
        None,
        None,
    )
    assert (draft.checkout, draft.hold_seconds) == (Checkout.INSTANT, 600)
    assert DEFAULT_HOLD_SECONDS == 600


def test_create_and_replace_carry_checkout_and_hold_seconds() -> None:
    event = Event.create(
        uuid.uuid4(), uuid.uuid4(), make_draft(checkout=Checkout.PAYMENT, hold_seconds=90), NOW
    )
    assert (event.checkout, event.hold_seconds) == (Checkout.PAYMENT, 90)
    # A replace without them goes back to the defaults.
    cleared = event.replaced(make_draft(), NOW + timedelta(hours=1))
    assert (cleared.checkout, cleared.hold_seconds) == (Checkout.INSTANT, DEFAULT_HOLD_SECONDS)


def test_create_copies_the_draft_and_stamps_now() -> None:
    event_id, organizer_id = uuid.uuid4(), uuid.uuid4()
    draft = make_draft(description="d", venue="v", currency="PLN", max_per_user=4)
    event = Event.create(event_id, organizer_id, draft, NOW)
    assert event == Event(
        event_id,
        organizer_id,
        "Flash Sale Live",
        "d",
        "v",
        START,
        START + timedelta(hours=3),
        2500,
        "PLN",
        4,
        NOW,
        NOW,
    )


def test_create_refuses_an_invalid_draft() -> None:
    with pytest.raises(InvalidInput):
        Event.create(uuid.uuid4(), uuid.uuid4(), make_draft(price=-1), NOW)


def test_replaced_keeps_identity_owner_and_creation_time() -> None:
    original = Event.create(uuid.uuid4(), uuid.uuid4(), make_draft(), NOW)
    later = NOW + timedelta(days=2)
    draft = make_draft(name="Renamed", price=10, venue="Hall", max_per_user=2)
    updated = original.replaced(draft, later)
    assert (updated.id, updated.organizer_id, updated.created_at) == (
        original.id,
        original.organizer_id,
        NOW,
    )
    assert updated.updated_at == later
    assert (updated.name, updated.price, updated.venue, updated.max_per_user) == (
        "Renamed",
        10,
        "Hall",
        2,
    )


def test_replaced_validates_the_new_draft() -> None:
    original = Event.create(uuid.uuid4(), uuid.uuid4(), make_draft(), NOW)
    with pytest.raises(InvalidInput) as caught:
        original.replaced(make_draft(name=""), NOW)
    assert [e.field for e in caught.value.errors] == ["name"]


@pytest.mark.parametrize(
    ("capacity", "available", "booked"), [(10, 10, 0), (10, 3, 7), (10, 0, 10), (1, 1, 0)]
)
def test_stock_booked(capacity: int, available: int, booked: int) -> None:
    assert Stock(capacity, available).booked == booked


@pytest.mark.parametrize(
    ("stock", "capacity", "expected"),
    [
        (Stock(10, 4), 20, Stock(20, 14)),  # growing adds free spots
        (Stock(10, 4), 6, Stock(6, 0)),  # shrinking down to exactly what is booked
        (Stock(10, 4), 10, Stock(10, 4)),
        (Stock(10, 10), 1, Stock(1, 1)),
    ],
)
def test_stock_resized(stock: Stock, capacity: int, expected: Stock) -> None:
    resized = stock.resized(capacity)
    assert resized == expected
    assert resized.booked == stock.booked


@pytest.mark.parametrize(("stock", "capacity"), [(Stock(10, 4), 5), (Stock(10, 0), 9)])
def test_stock_cannot_shrink_below_booked(stock: Stock, capacity: int) -> None:
    with pytest.raises(CapacityBelowBooked) as caught:
        stock.resized(capacity)
    assert isinstance(caught.value, Conflict)
    assert caught.value.extra == {"booked": stock.booked}
    assert caught.value.code == "capacity-below-booked"


ORGANIZER_ID = uuid.uuid4()


@pytest.mark.parametrize(
    ("role", "allowed"), [(Role.USER, False), (Role.ORGANIZER, True), (Role.ADMIN, True)]
)
def test_ensure_can_create(role: Role, allowed: bool) -> None:
    actor = Principal(uuid.uuid4(), role)
    if allowed:
        ensure_can_create(actor)
    else:
        with pytest.raises(NotEventManager) as caught:
            ensure_can_create(actor)
        assert isinstance(caught.value, PermissionDenied)


@pytest.mark.parametrize(
    ("actor", "allowed"),
    [
        (Principal(ORGANIZER_ID, Role.ORGANIZER), True),
        # The owner keeps control of their event even if their role was lowered since.
        (Principal(ORGANIZER_ID, Role.USER), True),
        (Principal(uuid.uuid4(), Role.ORGANIZER), False),
        (Principal(uuid.uuid4(), Role.USER), False),
        (Principal(uuid.uuid4(), Role.ADMIN), True),
    ],
)
def test_ensure_can_manage(actor: Principal, allowed: bool) -> None:
    event = Event.create(uuid.uuid4(), ORGANIZER_ID, make_draft(), NOW)
    if allowed:
        ensure_can_manage(actor, event)
    else:
        with pytest.raises(NotEventManager):
            ensure_can_manage(actor, event)


@pytest.mark.parametrize(
    ("stock", "allowed"), [(Stock(10, 10), True), (Stock(10, 9), False), (Stock(5, 0), False)]
)
def test_ensure_can_delete(stock: Stock, allowed: bool) -> None:
    if allowed:
        ensure_can_delete(stock)
    else:
        with pytest.raises(EventHasBookings) as caught:
            ensure_can_delete(stock)
        assert caught.value.extra == {"booked": stock.booked}
        assert caught.value.code == "event-has-bookings"


@pytest.mark.parametrize(
    ("current", "wanted", "pending", "allowed"),
    [
        (Checkout.PAYMENT, Checkout.INSTANT, 1, False),
        (Checkout.INSTANT, Checkout.PAYMENT, 3, False),
        (Checkout.PAYMENT, Checkout.INSTANT, 0, True),
        (Checkout.INSTANT, Checkout.PAYMENT, 0, True),
        (Checkout.PAYMENT, Checkout.PAYMENT, 5, True),  # unchanged: holds are no obstacle
        (Checkout.INSTANT, Checkout.INSTANT, 5, True),
    ],
)
def test_ensure_checkout_can_change(
    current: Checkout, wanted: Checkout, pending: int, allowed: bool
) -> None:
    event = Event.create(uuid.uuid4(), uuid.uuid4(), make_draft(checkout=current), NOW)
    draft = make_draft(checkout=wanted)
    if allowed:
        ensure_checkout_can_change(event, draft, pending)
    else:
        with pytest.raises(CheckoutChangeWithHolds) as caught:
            ensure_checkout_can_change(event, draft, pending)
        assert caught.value.code == "checkout-change-with-holds"
        assert isinstance(caught.value, Conflict)
        assert f"{pending} bookings are pending" in caught.value.detail


@pytest.mark.parametrize(
    ("checkout", "hold_seconds"), [(Checkout.INSTANT, None), (Checkout.PAYMENT, 90)]
)
def test_booking_terms_carry_the_hold_length_of_payment_checkout_only(
    checkout: Checkout, hold_seconds: int | None
) -> None:
    # The composition root's mapping of the catalog onto booking's terms.
    from goticket.app import terms_of

    event = Event.create(
        uuid.uuid4(), uuid.uuid4(), make_draft(checkout=checkout, hold_seconds=90), NOW
    )
    assert terms_of(event).hold_seconds == hold_seconds
