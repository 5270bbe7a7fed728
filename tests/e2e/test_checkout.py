"""Checkout through HTTP (API.md "Checkout: holds and payments (v2)"): a booking on a
``checkout: "payment"`` event is a hold with its payment; its spots leave availableSpots at once;
cancelling it gives them back; instant events answer as in v1. Engine on and off."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.bookings_support import BOOKING_FIELDS, DB, assert_booked, assert_invariant
from tests.support import Actor, Api, assert_problem

BOTH_MODES = pytest.mark.parametrize("engine_mode", ["on", "off"], indirect=True)


@pytest.fixture
def api(api_in_mode: Api) -> Api:
    return api_in_mode


async def paid_event(api: Api, **fields: Any) -> dict[str, Any]:
    return await api.event(checkout="payment", holdSeconds=300, price=4500, **fields)


async def event_spots(api: Api, event_id: str) -> int:
    response = await api.http.get(f"/events/{event_id}")
    assert response.status_code == 200, response.text
    spots: int = response.json()["availableSpots"]
    return spots


@BOTH_MODES
async def test_a_booking_on_a_payment_event_is_a_hold_with_its_payment(api: Api, db: DB) -> None:
    event = await paid_event(api, capacity=10)
    fan = await api.user()
    before = datetime.now(UTC)
    booking = assert_booked(await api.book(fan, event["id"], 3))
    after = datetime.now(UTC)
    assert set(booking) == BOOKING_FIELDS
    assert booking["status"] == "pending"
    deadline = datetime.fromisoformat(booking["expiresAt"])
    assert before + timedelta(seconds=300) <= deadline <= after + timedelta(seconds=300)
    assert booking["payment"] == {
        "id": booking["id"],
        "provider": "fake",
        "status": "requires_payment",
        "amount": 13500,
        "currency": "EUR",
        "checkoutUrl": f"/payments/fake/{booking['id']}/complete",
    }
    assert booking["totalPrice"] == 13500
    assert await event_spots(api, event["id"]) == 7  # held spots leave at once
    fetched = await api.http.get(f"/bookings/{booking['id']}", headers=fan.headers)
    assert fetched.json() == booking
    await assert_invariant(db)


@BOTH_MODES
async def test_a_hold_replays_with_its_key_and_counts_for_the_per_user_limit(
    api: Api, db: DB
) -> None:
    event = await paid_event(api, capacity=10, maxPerUser=3)
    fan = await api.user()
    first = assert_booked(await api.book(fan, event["id"], 2, key="hold-1"))
    again = assert_booked(await api.book(fan, event["id"], 2, key="hold-1"))
    assert again == first
    refused = await api.book(fan, event["id"], 2)
    body = assert_problem(refused, 409, "per-user-limit")
    assert body["limit"] == 3
    assert await event_spots(api, event["id"]) == 8
    await assert_invariant(db)


@BOTH_MODES
async def test_holds_sell_out_like_bookings(api: Api, db: DB) -> None:
    event = await paid_event(api, capacity=2)
    fans = [await api.user() for _ in range(3)]
    assert_booked(await api.book(fans[0], event["id"], 2))
    body = assert_problem(await api.book(fans[1], event["id"], 1), 409, "sold-out")
    assert body["available"] == 0
    await assert_invariant(db)


async def test_cancelling_a_hold_gives_its_spots_back_and_is_final(api: Api, db: DB) -> None:
    event = await paid_event(api, capacity=5)
    fan = await api.user()
    booking = assert_booked(await api.book(fan, event["id"], 2))
    cancelled = await api.http.post(f"/bookings/{booking['id']}/cancel", headers=fan.headers)
    assert cancelled.status_code == 200, cancelled.text
    body = cancelled.json()
    assert body["status"] == "cancelled"
    assert body["payment"]["status"] == "requires_payment"  # nothing was paid, nothing refunded
    assert body["expiresAt"] == booking["expiresAt"]  # kept once decided
    assert await event_spots(api, event["id"]) == 5
    again = await api.http.post(f"/bookings/{booking['id']}/cancel", headers=fan.headers)
    assert again.json() == body
    await assert_invariant(db)


async def test_an_instant_booking_reads_as_in_v1_with_its_tickets(api: Api, db: DB) -> None:
    event = await api.event(capacity=5)
    fan: Actor = await api.user()
    booking = assert_booked(await api.book(fan, event["id"], 2))
    assert booking["status"] == "confirmed"
    assert (booking["expiresAt"], booking["payment"]) == (None, None)
    tickets = await db.fetchval(
        "SELECT count(*) FROM tickets WHERE booking_id = $1::uuid", booking["id"]
    )
    assert tickets == 2
    await assert_invariant(db)
