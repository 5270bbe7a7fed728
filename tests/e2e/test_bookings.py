"""The Bookings section of the contract (API.md), through the real HTTP path on real PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest

from goticket.kit.auth import Role
from tests.bookings_support import (
    BOOKING_FIELDS,
    DB,
    assert_booked,
    assert_invariant,
    available_spots,
    booking_rows,
    walk,
)
from tests.support import Actor, Api, assert_problem


def bookings_of(event: dict[str, Any]) -> str:
    return f"/events/{event['id']}/bookings"


def past_window(**shift: float) -> dict[str, Any]:
    end = datetime.now(UTC) - timedelta(**shift)
    return {"startAt": (end - timedelta(hours=2)).isoformat(), "endAt": end.isoformat()}


# ------------------------------------------------------------------------------------ create


async def test_create_answers_201_with_location_and_the_booking(api: Api, db: DB) -> None:
    event = await api.event(price=2500, currency="USD", capacity=10)
    fan = await api.user()
    before = datetime.now(UTC)

    response = await api.book(fan, event["id"], quantity=3)

    body = assert_booked(response)
    assert response.headers["content-type"].startswith("application/json")
    uuid.UUID(body["id"])
    assert body["eventId"] == event["id"]
    assert body["userId"] == str(fan.id)
    assert body["quantity"] == 3
    assert body["status"] == "confirmed"
    assert body["totalPrice"] == 2500 * 3
    assert body["currency"] == "USD"
    created = datetime.fromisoformat(body["createdAt"])
    assert created.tzinfo is not None
    assert before - timedelta(seconds=5) <= created <= datetime.now(UTC) + timedelta(seconds=5)
    assert body["updatedAt"] == body["createdAt"]
    assert await available_spots(api, event["id"]) == 7
    assert await booking_rows(db) == 1
    await assert_invariant(db)

    fetched = await api.http.get(response.headers["location"], headers=fan.headers)
    assert fetched.status_code == 200
    assert fetched.json() == body


@pytest.mark.parametrize(
    ("price", "currency", "quantity"),
    [(0, "EUR", 10), (1, "JPY", 7), (10**12, "EUR", 10), (2500, None, 1)],
)
async def test_total_price_is_price_times_quantity(
    api: Api, price: int, currency: str | None, quantity: int
) -> None:
    event = await api.event(price=price, currency=currency if currency else ..., capacity=20)
    body = assert_booked(await api.book(await api.user(), event["id"], quantity=quantity))
    assert body["totalPrice"] == price * quantity
    assert body["currency"] == (currency or "EUR")


@pytest.mark.parametrize("how", ["empty object", "no body", "empty body with json type"])
async def test_quantity_defaults_to_one(api: Api, db: DB, how: str) -> None:
    event = await api.event(price=1200, capacity=5)
    fan = await api.user()
    url = bookings_of(event)
    if how == "empty object":
        response = await api.book(fan, event["id"], quantity=None)
    elif how == "no body":
        response = await api.http.post(url, headers=fan.headers)
    else:
        headers = {**fan.headers, "Content-Type": "application/json"}
        response = await api.http.post(url, content=b"", headers=headers)
    body = assert_booked(response)
    assert body["quantity"] == 1
    assert body["totalPrice"] == 1200
    assert await available_spots(api, event["id"]) == 4
    assert await booking_rows(db) == 1


@pytest.mark.parametrize("quantity", [1, 10])
async def test_quantity_bounds_are_inclusive(api: Api, quantity: int) -> None:
    event = await api.event(capacity=10)
    body = assert_booked(await api.book(await api.user(), event["id"], quantity=quantity))
    assert body["quantity"] == quantity
    assert await available_spots(api, event["id"]) == 10 - quantity


@pytest.mark.parametrize("written", [b"2.0", b"2e0", b"0.2e1", b"2.000"])
async def test_an_integral_quantity_written_with_a_fraction_or_exponent_is_that_integer(
    api: Api, written: bytes
) -> None:
    # JSON Schema (and so the OpenAPI document) counts 2.0 as the integer 2.
    event = await api.event(capacity=10)
    fan = await api.user()
    response = await api.http.post(
        bookings_of(event),
        content=b'{"quantity": ' + written + b"}",
        headers={**fan.headers, "Content-Type": "application/json"},
    )
    assert assert_booked(response)["quantity"] == 2
    assert await available_spots(api, event["id"]) == 8


@pytest.mark.parametrize(
    "quantity", [0, -1, 11, 1000, "2", 1.5, 10.5, 11.0, True, None, [1], {"n": 1}]
)
async def test_quantity_outside_1_to_10_or_not_an_integer_is_422(
    api: Api, db: DB, quantity: Any
) -> None:
    event = await api.event(capacity=50)
    fan = await api.user()
    response = await api.http.post(
        bookings_of(event), json={"quantity": quantity}, headers=fan.headers
    )
    body = assert_problem(response, 422, "validation")
    assert [e["field"] for e in body["errors"]] == ["quantity"]
    assert await booking_rows(db) == 0
    assert await available_spots(api, event["id"]) == 50


@pytest.mark.parametrize("field", ["seats", "Quantity", "id", "eventId", "userId", "status"])
async def test_unknown_body_field_is_422_and_listed(api: Api, db: DB, field: str) -> None:
    event = await api.event()
    fan = await api.user()
    response = await api.http.post(
        bookings_of(event), json={"quantity": 1, field: 2}, headers=fan.headers
    )
    body = assert_problem(response, 422, "validation")
    assert field in [e["field"] for e in body["errors"]]
    assert await booking_rows(db) == 0


async def test_every_offending_field_is_listed(api: Api) -> None:
    event = await api.event()
    response = await api.http.post(
        bookings_of(event), json={"quantity": 0, "seats": 1}, headers=(await api.user()).headers
    )
    body = assert_problem(response, 422, "validation")
    assert {e["field"] for e in body["errors"]} == {"quantity", "seats"}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer not-a-jwt"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer"},
    ],
)
async def test_booking_without_a_valid_token_is_401(
    api: Api, db: DB, headers: dict[str, str]
) -> None:
    event = await api.event()
    response = await api.http.post(bookings_of(event), json={"quantity": 1}, headers=headers)
    assert_problem(response, 401, "unauthorized")
    assert response.headers["www-authenticate"].lower().startswith("bearer")
    assert await booking_rows(db) == 0


async def test_booking_with_a_token_signed_by_another_key_is_401(api: Api) -> None:
    event = await api.event()
    fan = await api.user()
    claims = jwt.decode(fan.token, options={"verify_signature": False})
    forged = jwt.encode(claims, "another-secret-" + "y" * 40, algorithm="HS256")
    response = await api.http.post(
        bookings_of(event), json={}, headers={"Authorization": f"Bearer {forged}"}
    )
    assert_problem(response, 401, "unauthorized")


async def test_booking_an_unknown_event_is_404(api: Api, db: DB) -> None:
    fan = await api.user()
    response = await api.book(fan, str(uuid.uuid4()))
    assert_problem(response, 404, "not-found")
    assert await booking_rows(db) == 0


@pytest.mark.parametrize("event_id", ["not-a-uuid", "123", "00000000-0000-0000-0000-00000000000g"])
async def test_booking_a_malformed_event_id_is_404(api: Api, event_id: str) -> None:
    fan = await api.user()
    response = await api.http.post(
        f"/events/{event_id}/bookings", json={"quantity": 1}, headers=fan.headers
    )
    assert response.status_code == 404, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_sold_out_is_409_with_the_spots_left(api: Api, db: DB) -> None:
    event = await api.event(capacity=3)
    fan, other = await api.user(), await api.user()
    assert_booked(await api.book(fan, event["id"], quantity=2))

    body = assert_problem(await api.book(other, event["id"], quantity=2), 409, "sold-out")
    assert body["available"] == 1
    assert_booked(await api.book(other, event["id"], quantity=1))
    body = assert_problem(await api.book(other, event["id"], quantity=1), 409, "sold-out")
    assert body["available"] == 0

    assert await available_spots(api, event["id"]) == 0
    assert await booking_rows(db) == 2
    await assert_invariant(db)


async def test_asking_more_than_capacity_is_sold_out(api: Api) -> None:
    event = await api.event(capacity=5)
    body = assert_problem(
        await api.book(await api.user(), event["id"], quantity=6), 409, "sold-out"
    )
    assert body["available"] == 5
    assert await available_spots(api, event["id"]) == 5


async def test_per_user_limit_counts_the_callers_confirmed_spots(api: Api, db: DB) -> None:
    event = await api.event(capacity=50, maxPerUser=3)
    fan, other = await api.user(), await api.user()
    assert_booked(await api.book(fan, event["id"], quantity=2))
    assert_problem(await api.book(fan, event["id"], quantity=2), 409, "per-user-limit")
    assert_booked(await api.book(fan, event["id"], quantity=1))
    assert_problem(await api.book(fan, event["id"], quantity=1), 409, "per-user-limit")
    # The limit is per person: someone else still gets their own three.
    assert_booked(await api.book(other, event["id"], quantity=3))
    assert await available_spots(api, event["id"]) == 50 - 6
    assert await booking_rows(db) == 3
    await assert_invariant(db)


async def test_one_request_above_the_per_user_limit_is_409(api: Api) -> None:
    event = await api.event(capacity=50, maxPerUser=2)
    assert_problem(await api.book(await api.user(), event["id"], quantity=3), 409, "per-user-limit")
    assert await available_spots(api, event["id"]) == 50


async def test_per_user_limit_is_per_event(api: Api) -> None:
    organizer = await api.user(Role.ORGANIZER)
    first = await api.event(organizer, capacity=10, maxPerUser=1)
    second = await api.event(organizer, capacity=10, maxPerUser=1)
    fan = await api.user()
    assert_booked(await api.book(fan, first["id"]))
    assert_booked(await api.book(fan, second["id"]))
    assert_problem(await api.book(fan, first["id"]), 409, "per-user-limit")


async def test_an_event_that_has_ended_cannot_be_booked(api: Api, db: DB) -> None:
    event = await api.event(capacity=10, **past_window(days=1))
    assert event["availableSpots"] == 10
    response = await api.book(await api.user(), event["id"])
    assert_problem(response, 409, "event-ended")
    assert await booking_rows(db) == 0
    assert await available_spots(api, event["id"]) == 10


async def test_an_event_under_way_can_still_be_booked(api: Api) -> None:
    now = datetime.now(UTC)
    event = await api.event(
        startAt=(now - timedelta(hours=1)).isoformat(),
        endAt=(now + timedelta(hours=1)).isoformat(),
    )
    assert_booked(await api.book(await api.user(), event["id"]))


# ------------------------------------------------------------------------------- idempotency


async def test_same_key_same_request_returns_the_original_booking(api: Api, db: DB) -> None:
    event = await api.event(capacity=10)
    fan = await api.user()
    first = assert_booked(await api.book(fan, event["id"], quantity=2, key="order-42"))
    for _ in range(3):
        retry = await api.book(fan, event["id"], quantity=2, key="order-42")
        assert retry.status_code == 201, retry.text
        assert retry.json() == first
        assert retry.headers["location"] == f"/bookings/{first['id']}"
    assert await available_spots(api, event["id"]) == 8
    assert await booking_rows(db) == 1
    await assert_invariant(db)


async def test_a_retry_with_the_default_quantity_spelled_out_is_the_same_request(
    api: Api, db: DB
) -> None:
    event = await api.event(capacity=10)
    fan = await api.user()
    headers = {**fan.headers, "Idempotency-Key": "k"}
    first = assert_booked(await api.http.post(bookings_of(event), headers=headers))
    retry = assert_booked(await api.book(fan, event["id"], quantity=1, key="k"))
    assert retry == first
    assert await booking_rows(db) == 1


async def test_without_a_key_every_request_books_again(api: Api, db: DB) -> None:
    event = await api.event(capacity=10)
    fan = await api.user()
    ids = {assert_booked(await api.book(fan, event["id"]))["id"] for _ in range(3)}
    assert len(ids) == 3
    assert await booking_rows(db) == 3


@pytest.mark.parametrize("change", ["quantity", "event"])
async def test_same_key_with_another_request_is_422(api: Api, db: DB, change: str) -> None:
    organizer = await api.user(Role.ORGANIZER)
    event = await api.event(organizer, capacity=10)
    other_event = await api.event(organizer, capacity=10)
    fan = await api.user()
    assert_booked(await api.book(fan, event["id"], quantity=2, key="dup"))

    if change == "quantity":
        response = await api.book(fan, event["id"], quantity=3, key="dup")
    else:
        response = await api.book(fan, other_event["id"], quantity=2, key="dup")

    body = assert_problem(response, 422, "idempotency-key-reused")
    assert body["type"].endswith("/idempotency-key-reused")
    assert await booking_rows(db) == 1
    assert await available_spots(api, event["id"]) == 8
    assert await available_spots(api, other_event["id"]) == 10


@pytest.mark.parametrize("other", ["sold out", "ended"])
async def test_a_reused_key_is_422_whatever_the_other_event_would_answer(
    api: Api, db: DB, other: str
) -> None:
    organizer = await api.user(Role.ORGANIZER)
    event = await api.event(organizer, capacity=10)
    if other == "sold out":
        target = await api.event(organizer, capacity=1)
        assert_booked(await api.book(await api.user(), target["id"]))
    else:
        target = await api.event(organizer, capacity=1, **past_window(hours=1))
    fan = await api.user()
    assert_booked(await api.book(fan, event["id"], key="dup"))
    assert_problem(await api.book(fan, target["id"], key="dup"), 422, "idempotency-key-reused")
    assert await available_spots(api, event["id"]) == 9


@pytest.mark.parametrize(
    "key",
    [
        b"",
        b"x" * 256,
        b"abc\x01def",
        b"tab\tkey",
        b"del\x7f",
        "caf\u00e9".encode(),
        "caf\u00e9".encode("latin-1"),
    ],
    ids=["empty", "256-chars", "control", "tab", "del", "utf8", "latin1"],
)
async def test_an_invalid_idempotency_key_is_422(api: Api, db: DB, key: bytes) -> None:
    event = await api.event(capacity=10)
    fan = await api.user()
    headers = [(k.encode(), v.encode()) for k, v in fan.headers.items()]
    headers.append((b"Idempotency-Key", key))
    response = await api.http.post(bookings_of(event), json={"quantity": 1}, headers=headers)
    assert_problem(response, 422, "validation")
    assert await booking_rows(db) == 0
    assert await available_spots(api, event["id"]) == 10


@pytest.mark.parametrize(
    "key",
    ["a", "x" * 255, "Order #17: 2 seats (row 'B')", "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"],
    ids=["one-char", "255-chars", "spaces-and-punctuation", "all-punctuation"],
)
async def test_valid_idempotency_keys_are_accepted_and_replayed(api: Api, db: DB, key: str) -> None:
    event = await api.event(capacity=10)
    fan = await api.user()
    first = assert_booked(await api.book(fan, event["id"], key=key))
    assert assert_booked(await api.book(fan, event["id"], key=key)) == first
    assert await booking_rows(db) == 1


async def test_the_same_key_used_by_two_users_is_independent(api: Api, db: DB) -> None:
    event = await api.event(capacity=10)
    ada, bob = await api.user(), await api.user()
    first = assert_booked(await api.book(ada, event["id"], quantity=1, key="shared"))
    second = assert_booked(await api.book(bob, event["id"], quantity=2, key="shared"))
    assert first["id"] != second["id"]
    assert second["userId"] == str(bob.id)
    assert second["quantity"] == 2
    # Each one's retry finds each one's own booking.
    assert assert_booked(await api.book(ada, event["id"], quantity=1, key="shared")) == first
    assert assert_booked(await api.book(bob, event["id"], quantity=2, key="shared")) == second
    assert await booking_rows(db) == 2
    assert await available_spots(api, event["id"]) == 7


async def test_a_retry_after_cancelling_books_nothing_more(api: Api, db: DB) -> None:
    event = await api.event(capacity=10)
    fan = await api.user()
    first = assert_booked(await api.book(fan, event["id"], quantity=2, key="once"))
    cancel = await api.http.post(f"/bookings/{first['id']}/cancel", headers=fan.headers)
    assert cancel.status_code == 200
    retry = await api.book(fan, event["id"], quantity=2, key="once")
    assert retry.status_code == 201, retry.text
    assert retry.json()["id"] == first["id"]
    assert await booking_rows(db) == 1
    assert await available_spots(api, event["id"]) == 10
    await assert_invariant(db)


async def test_a_replay_still_answers_after_the_event_sold_out(api: Api, db: DB) -> None:
    event = await api.event(capacity=2)
    fan, other = await api.user(), await api.user()
    first = assert_booked(await api.book(fan, event["id"], key="early"))
    assert_booked(await api.book(other, event["id"]))
    assert assert_booked(await api.book(fan, event["id"], key="early")) == first
    assert await booking_rows(db) == 2


# ------------------------------------------------------------------------------ GET /bookings


async def _scene(api: Api) -> tuple[Actor, dict[str, Any], Actor, dict[str, Any]]:
    """An organizer, their event, a fan and the fan's booking of it."""
    organizer = await api.user(Role.ORGANIZER)
    event = await api.event(organizer, capacity=10, price=700)
    fan = await api.user()
    booking = assert_booked(await api.book(fan, event["id"], quantity=2))
    return organizer, event, fan, booking


async def _viewer(api: Api, who: str, organizer: Actor, fan: Actor) -> Actor:
    if who == "owner":
        return fan
    if who == "organizer":
        return organizer
    if who == "admin":
        return await api.user(Role.ADMIN)
    if who == "other user":
        return await api.user()
    assert who == "other organizer"
    return await api.user(Role.ORGANIZER)


@pytest.mark.parametrize(
    ("who", "status"),
    [
        ("owner", 200),
        ("organizer", 200),
        ("admin", 200),
        ("other user", 404),
        ("other organizer", 404),
    ],
)
async def test_who_may_see_a_booking(api: Api, who: str, status: int) -> None:
    organizer, _, fan, booking = await _scene(api)
    viewer = await _viewer(api, who, organizer, fan)
    response = await api.http.get(f"/bookings/{booking['id']}", headers=viewer.headers)
    if status == 200:
        assert response.status_code == 200, response.text
        assert response.json() == booking
    else:
        body = assert_problem(response, 404, "not-found")
        assert booking["id"] not in response.text
        assert "userId" not in body


async def test_an_unknown_booking_is_404(api: Api) -> None:
    for actor in (await api.user(), await api.user(Role.ADMIN)):
        response = await api.http.get(f"/bookings/{uuid.uuid4()}", headers=actor.headers)
        assert_problem(response, 404, "not-found")


@pytest.mark.parametrize("booking_id", ["nope", "1", "00000000-0000-0000-0000-0000000000zz"])
async def test_a_malformed_booking_id_is_404(api: Api, booking_id: str) -> None:
    fan = await api.user()
    response = await api.http.get(f"/bookings/{booking_id}", headers=fan.headers)
    assert response.status_code == 404, response.text
    cancel = await api.http.post(f"/bookings/{booking_id}/cancel", headers=fan.headers)
    assert cancel.status_code == 404, cancel.text


async def test_reading_a_booking_needs_a_token(api: Api) -> None:
    _, _, _, booking = await _scene(api)
    response = await api.http.get(f"/bookings/{booking['id']}")
    assert_problem(response, 401, "unauthorized")
    assert booking["id"] not in response.text


# ----------------------------------------------------------------------------------- cancel


async def test_owner_cancels_and_the_spots_go_back_on_sale(api: Api, db: DB) -> None:
    _, event, fan, booking = await _scene(api)
    assert await available_spots(api, event["id"]) == 8

    response = await api.http.post(f"/bookings/{booking['id']}/cancel", headers=fan.headers)

    assert response.status_code == 200, response.text
    cancelled = response.json()
    assert set(cancelled) == BOOKING_FIELDS
    assert cancelled["status"] == "cancelled"
    unchanged = ("id", "eventId", "userId", "quantity", "totalPrice", "currency", "createdAt")
    assert {k: cancelled[k] for k in unchanged} == {k: booking[k] for k in unchanged}
    updated = datetime.fromisoformat(cancelled["updatedAt"])
    assert updated >= datetime.fromisoformat(booking["createdAt"])
    assert await available_spots(api, event["id"]) == 10
    await assert_invariant(db)

    again = await api.http.post(f"/bookings/{booking['id']}/cancel", headers=fan.headers)
    assert again.status_code == 200, again.text
    assert again.json() == cancelled  # nothing changed, not even updatedAt
    assert await available_spots(api, event["id"]) == 10
    await assert_invariant(db)

    fetched = await api.http.get(f"/bookings/{booking['id']}", headers=fan.headers)
    assert fetched.json() == cancelled


@pytest.mark.parametrize(
    ("who", "status"),
    [("organizer", 200), ("admin", 200), ("other user", 404), ("other organizer", 404)],
)
async def test_who_may_cancel_a_booking(api: Api, db: DB, who: str, status: int) -> None:
    organizer, event, fan, booking = await _scene(api)
    actor = await _viewer(api, who, organizer, fan)
    response = await api.http.post(f"/bookings/{booking['id']}/cancel", headers=actor.headers)
    if status == 200:
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "cancelled"
        assert response.json()["userId"] == str(fan.id)
        assert await available_spots(api, event["id"]) == 10
    else:
        assert_problem(response, 404, "not-found")
        still = await api.http.get(f"/bookings/{booking['id']}", headers=fan.headers)
        assert still.json()["status"] == "confirmed"
        assert await available_spots(api, event["id"]) == 8
    await assert_invariant(db)


async def test_cancelling_an_unknown_booking_is_404(api: Api) -> None:
    response = await api.http.post(
        f"/bookings/{uuid.uuid4()}/cancel", headers=(await api.user()).headers
    )
    assert_problem(response, 404, "not-found")


async def test_cancelling_needs_a_token(api: Api, db: DB) -> None:
    _, event, _, booking = await _scene(api)
    response = await api.http.post(f"/bookings/{booking['id']}/cancel")
    assert_problem(response, 401, "unauthorized")
    assert await available_spots(api, event["id"]) == 8


async def test_cancelling_frees_the_per_user_limit(api: Api, db: DB) -> None:
    event = await api.event(capacity=10, maxPerUser=2)
    fan = await api.user()
    booking = assert_booked(await api.book(fan, event["id"], quantity=2))
    assert_problem(await api.book(fan, event["id"], quantity=1), 409, "per-user-limit")
    cancel = await api.http.post(f"/bookings/{booking['id']}/cancel", headers=fan.headers)
    assert cancel.status_code == 200
    assert_booked(await api.book(fan, event["id"], quantity=2))
    assert await available_spots(api, event["id"]) == 8
    await assert_invariant(db)


async def test_cancelling_makes_a_sold_out_event_bookable_again(api: Api, db: DB) -> None:
    event = await api.event(capacity=1)
    fan, other = await api.user(), await api.user()
    booking = assert_booked(await api.book(fan, event["id"]))
    assert_problem(await api.book(other, event["id"]), 409, "sold-out")
    cancel = await api.http.post(f"/bookings/{booking['id']}/cancel", headers=fan.headers)
    assert cancel.status_code == 200
    assert_booked(await api.book(other, event["id"]))
    assert_problem(await api.book(fan, event["id"]), 409, "sold-out")
    await assert_invariant(db)


# ---------------------------------------------------------------------------- /me/bookings


async def _book_many(api: Api, fan: Actor, count: int) -> list[dict[str, Any]]:
    """``count`` bookings of ``fan``, made one after the other (oldest first)."""
    organizer = await api.user(Role.ORGANIZER)
    events = [await api.event(organizer, capacity=100) for _ in range(2)]
    return [
        assert_booked(await api.book(fan, events[i % 2]["id"], quantity=1 + i % 3))
        for i in range(count)
    ]


async def test_my_bookings_newest_first_and_only_mine(api: Api) -> None:
    fan, other = await api.user(), await api.user()
    mine = await _book_many(api, fan, 5)
    await _book_many(api, other, 2)
    cancel = await api.http.post(f"/bookings/{mine[1]['id']}/cancel", headers=fan.headers)
    assert cancel.status_code == 200

    response = await api.http.get("/me/bookings", headers=fan.headers)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["nextCursor"] is None
    assert [b["id"] for b in body["items"]] == [b["id"] for b in reversed(mine)]
    assert {b["userId"] for b in body["items"]} == {str(fan.id)}
    created = [datetime.fromisoformat(b["createdAt"]) for b in body["items"]]
    assert created == sorted(created, reverse=True)
    assert [b["status"] for b in body["items"]].count("cancelled") == 1
    assert all(set(b) == BOOKING_FIELDS for b in body["items"])


async def test_my_bookings_is_empty_for_a_new_user(api: Api) -> None:
    response = await api.http.get("/me/bookings", headers=(await api.user()).headers)
    assert response.status_code == 200
    assert response.json() == {"items": [], "nextCursor": None}


@pytest.mark.parametrize("limit", [1, 2, 3, 7, 8, 100])
async def test_my_bookings_pages_walk_every_booking_exactly_once(api: Api, limit: int) -> None:
    fan = await api.user()
    mine = await _book_many(api, fan, 7)
    pages = await walk(api, fan, "/me/bookings", limit)
    assert all(len(page) == limit for page in pages[:-1])
    assert 1 <= len(pages[-1]) <= limit
    seen = [b["id"] for page in pages for b in page]
    assert seen == [b["id"] for b in reversed(mine)]


async def test_my_bookings_default_page_is_20(api: Api) -> None:
    fan = await api.user()
    event = await api.event(capacity=100)
    for _ in range(21):
        assert_booked(await api.book(fan, event["id"]))
    response = await api.http.get("/me/bookings", headers=fan.headers)
    body = response.json()
    assert len(body["items"]) == 20
    assert body["nextCursor"] is not None


async def test_walking_my_bookings_while_booking_never_repeats_or_skips(api: Api) -> None:
    fan = await api.user()
    event = await api.event(capacity=100)
    existing = [assert_booked(await api.book(fan, event["id"])) for _ in range(6)]
    seen: list[str] = []
    params: dict[str, Any] = {"limit": 2}
    while True:
        response = await api.http.get("/me/bookings", params=params, headers=fan.headers)
        body = response.json()
        seen += [b["id"] for b in body["items"]]
        assert_booked(await api.book(fan, event["id"]))  # a newer booking appears meanwhile
        if body["nextCursor"] is None:
            break
        params = {"limit": 2, "cursor": body["nextCursor"]}
    assert seen == [b["id"] for b in reversed(existing)]


async def test_a_cursor_of_another_list_or_not_issued_is_422(api: Api) -> None:
    organizer = await api.user(Role.ORGANIZER)
    event = await api.event(organizer, capacity=100)
    fan = await api.user()
    for _ in range(3):
        assert_booked(await api.book(fan, event["id"]))
    mine = (await api.http.get("/me/bookings?limit=1", headers=fan.headers)).json()
    theirs = (await api.http.get(f"{bookings_of(event)}?limit=1", headers=organizer.headers)).json()
    assert mine["nextCursor"]
    assert theirs["nextCursor"]

    cross = await api.http.get(
        "/me/bookings", params={"cursor": theirs["nextCursor"]}, headers=fan.headers
    )
    assert_problem(cross, 422, "validation")
    back = await api.http.get(
        bookings_of(event), params={"cursor": mine["nextCursor"]}, headers=organizer.headers
    )
    assert_problem(back, 422, "validation")
    for forged in ("garbage", "", mine["nextCursor"][:-2] + "AA", "eyJ0eXBlIjogMX0"):
        response = await api.http.get(
            "/me/bookings", params={"cursor": forged}, headers=fan.headers
        )
        assert_problem(response, 422, "validation")


@pytest.mark.parametrize("limit", ["0", "101", "-1", "ten"])
async def test_limit_outside_1_to_100_is_422(api: Api, limit: str) -> None:
    organizer = await api.user(Role.ORGANIZER)
    event = await api.event(organizer)
    fan = await api.user()
    for path, actor in (("/me/bookings", fan), (bookings_of(event), organizer)):
        response = await api.http.get(path, params={"limit": limit}, headers=actor.headers)
        assert_problem(response, 422, "validation")


async def test_my_bookings_needs_a_token(api: Api) -> None:
    response = await api.http.get("/me/bookings")
    assert_problem(response, 401, "unauthorized")


# ----------------------------------------------------------------------- /events/{id}/bookings


@pytest.mark.parametrize("who", ["organizer", "admin"])
async def test_event_bookings_for_its_organizer_and_admins(api: Api, who: str) -> None:
    organizer = await api.user(Role.ORGANIZER)
    event = await api.event(organizer, capacity=100)
    elsewhere = await api.event(organizer, capacity=100)
    fans = [await api.user() for _ in range(3)]
    made = [assert_booked(await api.book(fans[i % 3], event["id"])) for i in range(5)]
    assert_booked(await api.book(fans[0], elsewhere["id"]))
    cancel = await api.http.post(f"/bookings/{made[0]['id']}/cancel", headers=fans[0].headers)
    assert cancel.status_code == 200
    viewer = organizer if who == "organizer" else await api.user(Role.ADMIN)

    response = await api.http.get(bookings_of(event), headers=viewer.headers)

    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert [b["id"] for b in items] == [b["id"] for b in reversed(made)]
    assert {b["eventId"] for b in items} == {event["id"]}
    assert items[-1]["status"] == "cancelled"
    pages = await walk(api, viewer, bookings_of(event), 2)
    assert [b["id"] for page in pages for b in page] == [b["id"] for b in reversed(made)]


@pytest.mark.parametrize("who", ["other organizer", "plain user", "a fan who booked it"])
async def test_event_bookings_are_403_for_anyone_else(api: Api, who: str) -> None:
    organizer = await api.user(Role.ORGANIZER)
    event = await api.event(organizer, capacity=10)
    fan = await api.user()
    assert_booked(await api.book(fan, event["id"]))
    if who == "other organizer":
        viewer = await api.user(Role.ORGANIZER)
    elif who == "plain user":
        viewer = await api.user()
    else:
        viewer = fan
    response = await api.http.get(bookings_of(event), headers=viewer.headers)
    assert_problem(response, 403, "forbidden")
    assert str(fan.id) not in response.text


@pytest.mark.parametrize("role", [Role.ORGANIZER, Role.ADMIN])
async def test_event_bookings_of_an_unknown_event_is_404(api: Api, role: Role) -> None:
    actor = await api.user(role)
    response = await api.http.get(f"/events/{uuid.uuid4()}/bookings", headers=actor.headers)
    assert_problem(response, 404, "not-found")
    malformed = await api.http.get("/events/not-a-uuid/bookings", headers=actor.headers)
    assert malformed.status_code == 404, malformed.text


async def test_event_bookings_need_a_token(api: Api) -> None:
    event = await api.event()
    response = await api.http.get(bookings_of(event))
    assert_problem(response, 401, "unauthorized")


async def test_event_with_no_bookings_lists_nothing(api: Api) -> None:
    organizer = await api.user(Role.ORGANIZER)
    event = await api.event(organizer)
    response = await api.http.get(bookings_of(event), headers=organizer.headers)
    assert response.status_code == 200
    assert response.json() == {"items": [], "nextCursor": None}


# --------------------------------------------------------------------- bodies and overload


@pytest.mark.parametrize(
    ("content", "content_type", "status"),
    [
        (b"{", "application/json", 400),
        (b"[1]", "application/json", 400),
        (b"1", "application/json", 400),
        (b"null", "application/json", 400),
        (b'"quantity"', "application/json", 400),
        (b'{"quantity": 1}', "text/plain", 415),
        (b"quantity=1", "application/x-www-form-urlencoded", 415),
        (b'{"quantity": 1, "pad": "' + b"x" * (64 * 1024) + b'"}', "application/json", 413),
    ],
    ids=["truncated", "array", "number", "null", "string", "text", "form", "over-64k"],
)
async def test_bad_bodies_are_refused_before_booking(
    api: Api, db: DB, content: bytes, content_type: str, status: int
) -> None:
    event = await api.event(capacity=5)
    fan = await api.user()
    headers = {**fan.headers, "Content-Type": content_type}
    response = await api.http.post(bookings_of(event), content=content, headers=headers)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert await booking_rows(db) == 0
    assert await available_spots(api, event["id"]) == 5


async def test_a_locked_inventory_row_sheds_with_503_and_the_retry_books_once(
    api: Api, db: DB
) -> None:
    """While another transaction holds the event's row past lock_timeout, the answer is 503 with
    Retry-After (not a hang, not a 500), nothing is booked, and a retry with the key then books."""
    event = await api.event(capacity=5)
    fan = await api.user()
    async with db.transaction():
        await db.execute(
            "SELECT 1 FROM event_inventory WHERE event_id = $1 FOR UPDATE", uuid.UUID(event["id"])
        )
        shed = await api.book(fan, event["id"], quantity=2, key="during-lock")
        assert_problem(shed, 503, "unavailable")
        assert int(shed.headers["retry-after"]) >= 1
    assert await booking_rows(db) == 0
    retry = assert_booked(await api.book(fan, event["id"], quantity=2, key="during-lock"))
    assert assert_booked(await api.book(fan, event["id"], quantity=2, key="during-lock")) == retry
    assert await available_spots(api, event["id"]) == 3
    await assert_invariant(db)


async def test_a_connection_lost_mid_booking_is_503_and_the_retry_tells_the_truth(
    api: Api, db: DB
) -> None:
    """The database drops the booking's connection while it waits for the row: the outcome is
    unknown to the client, so 503 + Retry-After; the retry with its key then books exactly once."""
    event = await api.event(capacity=5)
    fan = await api.user()
    waiting_pid = """SELECT pid FROM pg_stat_activity
                     WHERE datname = current_database() AND application_name = 'goticket'
                       AND wait_event_type = 'Lock'"""
    async with db.transaction():
        await db.execute(
            "SELECT 1 FROM event_inventory WHERE event_id = $1 FOR UPDATE", uuid.UUID(event["id"])
        )
        pending = asyncio.create_task(api.book(fan, event["id"], quantity=2, key="lost"))
        pid = None
        for _ in range(200):
            if pid := await db.fetchval(waiting_pid):
                break
            await asyncio.sleep(0.01)
        assert pid is not None, "the booking never queued behind the lock"
        assert await db.fetchval("SELECT pg_terminate_backend($1)", pid)
        lost = await pending
    assert_problem(lost, 503, "unavailable")
    assert int(lost.headers["retry-after"]) >= 1
    assert "asyncpg" not in lost.text
    assert await booking_rows(db) == 0

    retry = assert_booked(await api.book(fan, event["id"], quantity=2, key="lost"))
    assert assert_booked(await api.book(fan, event["id"], quantity=2, key="lost")) == retry
    assert await booking_rows(db) == 1
    assert await available_spots(api, event["id"]) == 3
    await assert_invariant(db)


async def test_a_replay_wins_over_limits_that_came_after_the_booking(api: Api, db: DB) -> None:
    """A retry returns the original booking even once the caller is at the per-user limit and the
    event has ended since; a new request is refused for those reasons."""
    organizer = await api.user(Role.ORGANIZER)
    event = await api.event(organizer, capacity=10, maxPerUser=2)
    fan = await api.user()
    first = assert_booked(await api.book(fan, event["id"], quantity=2, key="mine"))
    assert assert_booked(await api.book(fan, event["id"], quantity=2, key="mine")) == first
    assert_problem(await api.book(fan, event["id"], quantity=1, key="new"), 409, "per-user-limit")

    body = {k: event[k] for k in ("name", "price", "currency", "maxPerUser")}
    body |= {"capacity": 10, **past_window(minutes=5)}
    moved = await api.http.put(f"/events/{event['id']}", json=body, headers=organizer.headers)
    assert moved.status_code == 200, moved.text

    assert assert_booked(await api.book(fan, event["id"], quantity=2, key="mine")) == first
    other = await api.user()
    assert_problem(await api.book(other, event["id"]), 409, "event-ended")
    assert await booking_rows(db) == 1
