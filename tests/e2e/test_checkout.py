"""Checkout through HTTP (API.md "Checkout: holds and payments (v2)"): a booking on a
``checkout: "payment"`` event is a hold with its payment; its spots leave availableSpots at once;
cancelling it gives them back; instant events answer as in v1. Engine on and off."""

from __future__ import annotations

import asyncio
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


async def pay(api: Api, fan: Actor, booking: dict[str, Any], outcome: str = "succeeded") -> None:
    """Play the buyer at the fake checkout: its signed webhook reaches the service before the
    in-process client call returns."""
    response = await api.http.post(
        booking["payment"]["checkoutUrl"], json={"outcome": outcome}, headers=fan.headers
    )
    assert response.status_code == 202, response.text


async def get_booking(api: Api, actor: Actor, booking_id: str) -> dict[str, Any]:
    response = await api.http.get(f"/bookings/{booking_id}", headers=actor.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@BOTH_MODES
async def test_hold_pay_tickets_check_in_then_cancel_refunds_and_voids(api: Api, db: DB) -> None:
    organizer = await api.user("organizer")
    event = await paid_event(api, organizer=organizer, capacity=10)
    fan = await api.user()
    booking = assert_booked(await api.book(fan, event["id"], 2))
    none_yet = await api.http.get(f"/bookings/{booking['id']}/tickets", headers=fan.headers)
    assert none_yet.json() == {"items": []}

    await pay(api, fan, booking, "failed")
    failed = await get_booking(api, fan, booking["id"])
    assert (failed["status"], failed["payment"]["status"]) == ("pending", "failed")

    await pay(api, fan, booking)  # the buyer tries again, and it goes through
    paid = await get_booking(api, fan, booking["id"])
    assert (paid["status"], paid["payment"]["status"]) == ("confirmed", "succeeded")
    assert paid["expiresAt"] == booking["expiresAt"]
    tickets = (
        await api.http.get(f"/bookings/{booking['id']}/tickets", headers=fan.headers)
    ).json()["items"]
    assert [t["status"] for t in tickets] == ["valid", "valid"]
    assert await event_spots(api, event["id"]) == 8
    await assert_invariant(db)

    scanned = await api.http.post(
        f"/events/{event['id']}/checkins",
        json={"code": tickets[0]["code"]},
        headers=organizer.headers,
    )
    assert scanned.status_code == 200, scanned.text
    assert scanned.json()["firstCheckIn"] is True

    cancelled = await api.http.post(f"/bookings/{booking['id']}/cancel", headers=fan.headers)
    assert cancelled.status_code == 200, cancelled.text
    assert (cancelled.json()["status"], cancelled.json()["payment"]["status"]) == (
        "cancelled",
        "refunded",
    )
    after = (await api.http.get(f"/bookings/{booking['id']}/tickets", headers=fan.headers)).json()[
        "items"
    ]
    assert [t["status"] for t in after] == ["void", "void"]  # the used one too
    assert sum(t["checkedInAt"] is not None for t in after) == 1  # its scan stays history
    void = await api.http.post(
        f"/events/{event['id']}/checkins",
        json={"code": tickets[1]["code"]},
        headers=organizer.headers,
    )
    assert_problem(void, 409, "ticket-void")
    assert await event_spots(api, event["id"]) == 10
    sales = await api.http.get(f"/events/{event['id']}/sales", headers=organizer.headers)
    assert sales.json()["cancelled"] == 2
    assert sales.json()["confirmed"] == 0
    await assert_invariant(db)


async def test_only_the_payer_reaches_the_fake_checkout(api: Api) -> None:
    event = await paid_event(api, capacity=5)
    fan, other = await api.user(), await api.user()
    booking = assert_booked(await api.book(fan, event["id"], 1))
    response = await api.http.post(
        booking["payment"]["checkoutUrl"], json={"outcome": "succeeded"}, headers=other.headers
    )
    assert_problem(response, 404, "not-found")
    assert (await get_booking(api, fan, booking["id"]))["status"] == "pending"


@BOTH_MODES
async def test_200_concurrent_holds_over_http_on_100_spots_hold_exactly_100(
    api: Api, db: DB
) -> None:
    event = await paid_event(api, capacity=100)
    fans = [await api.user() for _ in range(200)]
    answers = await asyncio.gather(*(api.book(fan, event["id"], 1) for fan in fans))
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [201] * 100 + [409] * 100
    assert all(a.json()["status"] == "pending" for a in answers if a.status_code == 201)
    assert all(a.json()["type"].endswith("/sold-out") for a in answers if a.status_code == 409)
    assert await event_spots(api, event["id"]) == 0
    await assert_invariant(db)
