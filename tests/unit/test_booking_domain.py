from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from goticket.booking.domain import (
    IDEMPOTENCY_KEY_MAX,
    MAX_QUANTITY,
    Booking,
    BookingStatus,
    BookingTerms,
    BookRequest,
    EventEnded,
    IdempotencyKeyReused,
    NotEventManager,
    PerUserLimitExceeded,
    RequestInProgress,
    SoldOut,
    can_see,
    check_allocation,
    check_idempotency_key,
    check_on_sale,
    check_quantity,
    ensure_can_list,
    new_booking,
    replay,
)
from goticket.kit.auth import Principal, Role
from goticket.kit.errors import Conflict, InvalidInput, PermissionDenied

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
EVENT_ID = uuid.uuid4()
ORGANIZER_ID = uuid.uuid4()
USER_ID = uuid.uuid4()


def make_terms(**overrides: Any) -> BookingTerms:
    fields: dict[str, Any] = {
        "event_id": EVENT_ID,
        "organizer_id": ORGANIZER_ID,
        "end_at": NOW + timedelta(days=1),
        "price": 2500,
        "currency": "EUR",
        "max_per_user": None,
    }
    fields.update(overrides)
    return BookingTerms(**fields)


def make_request(**overrides: Any) -> BookRequest:
    fields: dict[str, Any] = {"event_id": EVENT_ID, "user_id": USER_ID, "quantity": 1}
    fields.update(overrides)
    return BookRequest(**fields)


def make_booking(request: BookRequest | None = None, **terms: Any) -> Booking:
    return new_booking(uuid.uuid4(), request or make_request(), make_terms(**terms), NOW)


@pytest.mark.parametrize(
    ("quantity", "valid"),
    [(-1, False), (0, False), (1, True), (MAX_QUANTITY, True), (MAX_QUANTITY + 1, False)],
)
def test_check_quantity(quantity: int, valid: bool) -> None:
    if valid:
        check_quantity(quantity)
    else:
        with pytest.raises(InvalidInput) as caught:
            check_quantity(quantity)
        assert [e.field for e in caught.value.errors] == ["quantity"]


@pytest.mark.parametrize(
    ("now", "ended"),
    [
        (NOW - timedelta(days=30), False),
        (NOW - timedelta(microseconds=1), False),
        (NOW, True),  # the end instant itself is no longer bookable
        (NOW + timedelta(microseconds=1), True),
    ],
)
def test_check_on_sale_at_the_boundary(now: datetime, ended: bool) -> None:
    terms = make_terms(end_at=NOW)
    if ended:
        with pytest.raises(EventEnded) as caught:
            check_on_sale(terms, now)
        assert isinstance(caught.value, Conflict)
        assert caught.value.code == "event-ended"
    else:
        check_on_sale(terms, now)


@pytest.mark.parametrize(
    ("max_per_user", "user_active", "quantity", "available", "outcome"),
    [
        # no per-user limit: only availability counts
        (None, 0, 1, 1, None),
        (None, 50, 10, 10, None),
        (None, 0, 2, 1, SoldOut),
        (None, 0, 1, 0, SoldOut),
        # a per-user limit, spots to spare
        (4, 0, 4, 100, None),
        (4, 3, 1, 100, None),
        (4, 3, 2, 100, PerUserLimitExceeded),
        (4, 4, 1, 100, PerUserLimitExceeded),
        (4, 0, 5, 100, PerUserLimitExceeded),
        # within the limit but not enough spots left
        (4, 0, 3, 2, SoldOut),
        # over the limit AND sold out: the limit is reported (it holds whatever comes back)
        (4, 4, 1, 0, PerUserLimitExceeded),
    ],
)
def test_check_allocation(
    max_per_user: int | None,
    user_active: int,
    quantity: int,
    available: int,
    outcome: type[Exception] | None,
) -> None:
    terms = make_terms(max_per_user=max_per_user)
    request = make_request(quantity=quantity)
    if outcome is None:
        check_allocation(terms, request, available=available, user_active=user_active)
    else:
        with pytest.raises(outcome):
            check_allocation(terms, request, available=available, user_active=user_active)


def test_sold_out_tells_how_many_are_left() -> None:
    with pytest.raises(SoldOut) as caught:
        check_allocation(make_terms(), make_request(quantity=3), available=2, user_active=0)
    assert caught.value.extra == {"available": 2}
    assert caught.value.code == "sold-out"
    assert "2" in caught.value.detail


def test_per_user_limit_tells_the_limit() -> None:
    with pytest.raises(PerUserLimitExceeded) as caught:
        check_allocation(
            make_terms(max_per_user=2), make_request(quantity=2), available=9, user_active=1
        )
    assert caught.value.extra == {"limit": 2}
    assert caught.value.code == "per-user-limit"
    assert "you already hold 1" in caught.value.detail


def test_request_hash_is_stable_and_short() -> None:
    request = make_request(quantity=2)
    assert request.request_hash == make_request(quantity=2).request_hash
    assert len(request.request_hash) == 32
    int(request.request_hash, 16)  # hex


@pytest.mark.parametrize(
    "other",
    [
        {"event_id": uuid.uuid4()},
        {"quantity": 2},
        {"event_id": uuid.uuid4(), "quantity": 2},
    ],
)
def test_request_hash_differs_by_event_and_quantity(other: dict[str, Any]) -> None:
    assert make_request().request_hash != make_request(**other).request_hash


@pytest.mark.parametrize("other", [{"idempotency_key": "k2"}, {"user_id": uuid.uuid4()}])
def test_request_hash_ignores_key_and_user(other: dict[str, Any]) -> None:
    # The key is scoped to its user already; the hash is what was asked, not who asked.
    assert make_request(idempotency_key="k1").request_hash == make_request(**other).request_hash


def test_new_booking() -> None:
    request = make_request(quantity=3, idempotency_key="k")
    booking_id = uuid.uuid4()
    booking = new_booking(booking_id, request, make_terms(price=1250, currency="PLN"), NOW)
    assert booking == Booking(
        id=booking_id,
        event_id=EVENT_ID,
        user_id=USER_ID,
        quantity=3,
        status=BookingStatus.CONFIRMED,
        total_price=3750,
        currency="PLN",
        idempotency_key="k",
        request_hash=request.request_hash,
        created_at=NOW,
        updated_at=NOW,
        confirmed_at=NOW,
    )
    assert booking.is_confirmed


def test_cancelled() -> None:
    booking = make_booking()
    later = NOW + timedelta(minutes=5)
    cancelled = booking.cancelled(later)
    assert (cancelled.status, cancelled.updated_at, cancelled.created_at) == (
        BookingStatus.CANCELLED,
        later,
        NOW,
    )
    assert not cancelled.is_confirmed
    assert booking.is_confirmed  # the original is untouched
    assert (cancelled.id, cancelled.quantity, cancelled.total_price) == (
        booking.id,
        booking.quantity,
        booking.total_price,
    )


def test_replay_returns_the_original_booking() -> None:
    request = make_request(quantity=2, idempotency_key="k")
    original = make_booking(request)
    assert replay(original, make_request(quantity=2, idempotency_key="k")) is original


@pytest.mark.parametrize("other", [{"quantity": 3}, {"event_id": uuid.uuid4()}])
def test_replay_with_another_request_is_refused(other: dict[str, Any]) -> None:
    original = make_booking(make_request(quantity=2, idempotency_key="k"))
    retry = make_request(**({"quantity": 2, "idempotency_key": "k"} | other))
    with pytest.raises(IdempotencyKeyReused) as caught:
        replay(original, retry)
    assert isinstance(caught.value, InvalidInput)
    assert [e.field for e in caught.value.errors] == ["Idempotency-Key"]
    assert caught.value.code == "idempotency-key-reused"


def test_request_in_progress_carries_retry_after() -> None:
    error = RequestInProgress("busy", retry_after=3)
    assert isinstance(error, Conflict)
    assert (error.retry_after, error.detail, error.code) == (3, "busy", "request-in-progress")
    assert RequestInProgress("busy").retry_after == 1


STRANGER_ID = uuid.uuid4()


@pytest.mark.parametrize(
    ("actor", "organizer_id", "visible"),
    [
        (Principal(USER_ID, Role.USER), ORGANIZER_ID, True),
        (Principal(USER_ID, Role.USER), None, True),
        (Principal(ORGANIZER_ID, Role.ORGANIZER), ORGANIZER_ID, True),
        (Principal(ORGANIZER_ID, Role.ORGANIZER), None, False),  # event gone: no organizer
        (Principal(uuid.uuid4(), Role.ORGANIZER), ORGANIZER_ID, False),
        (Principal(STRANGER_ID, Role.USER), ORGANIZER_ID, False),
        (Principal(STRANGER_ID, Role.ADMIN), ORGANIZER_ID, True),
        (Principal(STRANGER_ID, Role.ADMIN), None, True),
    ],
)
def test_can_see(actor: Principal, organizer_id: uuid.UUID | None, visible: bool) -> None:
    assert can_see(actor, make_booking(), organizer_id) is visible


@pytest.mark.parametrize(
    ("actor", "allowed"),
    [
        (Principal(ORGANIZER_ID, Role.ORGANIZER), True),
        (Principal(uuid.uuid4(), Role.ORGANIZER), False),
        (Principal(USER_ID, Role.USER), False),  # a buyer does not list everyone's bookings
        (Principal(uuid.uuid4(), Role.ADMIN), True),
    ],
)
def test_ensure_can_list(actor: Principal, allowed: bool) -> None:
    if allowed:
        ensure_can_list(actor, make_terms())
    else:
        with pytest.raises(NotEventManager) as caught:
            ensure_can_list(actor, make_terms())
        assert isinstance(caught.value, PermissionDenied)


@pytest.mark.parametrize(
    ("key", "valid"),
    [
        (None, True),
        ("", False),
        ("a", True),
        ("k" * IDEMPOTENCY_KEY_MAX, True),
        ("k" * (IDEMPOTENCY_KEY_MAX + 1), False),
        ("3f1c2a9e-0b7d-4c1e-9a55-1d2e3f4a5b6c", True),
        ("a b", True),  # space is printable ASCII
        (" ", True),
        ("~!@#$%^&*()_+{}|:<>?", True),
        ("a\tb", False),
        ("a\nb", False),
        ("a\x00b", False),
        ("a\x7fb", False),  # DEL
        ("clé", False),
        ("ключ", False),
        ("😀", False),
    ],
)
def test_check_idempotency_key(key: str | None, valid: bool) -> None:
    if valid:
        check_idempotency_key(key)
    else:
        with pytest.raises(InvalidInput) as caught:
            check_idempotency_key(key)
        assert [e.field for e in caught.value.errors] == ["Idempotency-Key"]
