"""The v2 event fields ``checkout`` and ``holdSeconds`` (API.md, "Events" and "Checkout"): through
the real HTTP path on real PostgreSQL. Pending bookings (holds) are written with SQL here, as the
booking context writes them: the row and its spots taken from the inventory at once."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import pytest

from tests.bookings_support import DB
from tests.support import (
    ALWAYS_V2_EVENT_FIELDS,
    V1_EVENT_FIELDS,
    Actor,
    Api,
    assert_problem,
    error_fields,
    event_body,
)

# The v1 members every event had, with the values this file's events are created with.
V1_BODY = {"name": "Flash Sale Live", "price": 2500, "capacity": 100}


async def put(api: Api, actor: Actor, event: dict[str, Any], **fields: Any) -> httpx.Response:
    body = {k: event[k] for k in ("name", "startAt", "endAt", "price", "capacity")} | fields
    return await api.http.put(f"/events/{event['id']}", json=body, headers=actor.headers)


async def replaced(api: Api, actor: Actor, event: dict[str, Any], **fields: Any) -> dict[str, Any]:
    response = await put(api, actor, event, **fields)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


async def read(api: Api, event_id: str) -> dict[str, Any]:
    response = await api.http.get(f"/events/{event_id}")
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


async def listed(api: Api, event_id: str) -> dict[str, Any]:
    page = (await api.http.get("/events", params={"limit": 100})).json()
    (item,) = [item for item in page["items"] if item["id"] == event_id]
    return dict(item)


async def add_booking(
    db: DB, event_id: str, user: UUID, *, status: str = "pending", quantity: int = 2
) -> UUID:
    """A booking row as the booking context writes a hold (``pending``: its spots leave the
    inventory at once) or one that ended (``expired``: its spots went back)."""
    booking_id = uuid.uuid4()
    now = datetime.now(UTC)
    expires_at = now + (timedelta(minutes=10) if status == "pending" else -timedelta(minutes=1))
    async with db.transaction():
        await db.execute(
            """INSERT INTO bookings (id, event_id, user_id, quantity, status, total_price,
                   currency, created_at, updated_at, expires_at, payment_id, payment_provider,
                   payment_status)
               VALUES ($1, $2, $3, $4, $5, $6, 'EUR', $7, $7, $8, $1, 'fake',
                       'requires_payment')""",
            booking_id,
            UUID(event_id),
            user,
            quantity,
            status,
            2500 * quantity,
            now,
            expires_at,
        )
        if status == "pending":
            await db.execute(
                "UPDATE event_inventory SET available = available - $2 WHERE event_id = $1",
                UUID(event_id),
                quantity,
            )
    return booking_id


# ---------------------------------------------------------------------------- create and read


async def test_the_fields_round_trip_on_create_read_and_list(api: Api) -> None:
    organizer = await api.user("organizer")
    event = await api.event(organizer, checkout="payment", holdSeconds=900)
    assert (event["checkout"], event["holdSeconds"]) == ("payment", 900)
    for shown in (await read(api, event["id"]), await listed(api, event["id"])):
        assert (shown["checkout"], shown["holdSeconds"]) == ("payment", 900)
        assert shown == event


@pytest.mark.parametrize("hold_seconds", [60, 3600])
async def test_the_hold_length_bounds_are_inclusive(api: Api, hold_seconds: int) -> None:
    event = await api.event(checkout="payment", holdSeconds=hold_seconds)
    assert event["holdSeconds"] == hold_seconds


async def test_without_the_fields_an_event_is_the_v1_body_plus_their_defaults(api: Api) -> None:
    organizer = await api.user("organizer")
    event = await api.event(organizer)
    assert set(event) == V1_EVENT_FIELDS | ALWAYS_V2_EVENT_FIELDS
    assert (event["checkout"], event["holdSeconds"]) == ("instant", 600)
    assert {k: event[k] for k in V1_BODY} == V1_BODY
    assert event["organizerId"] == str(organizer.id)
    assert event["availableSpots"] == 100
    assert (event["description"], event["venue"], event["maxPerUser"]) == (None, None, None)
    assert event["currency"] == "EUR"
    for shown in (await read(api, event["id"]), await listed(api, event["id"])):
        assert shown == event


async def test_an_instant_event_books_as_in_v1(api: Api) -> None:
    event = await api.event(checkout="instant", holdSeconds=120)
    buyer = await api.user()
    booking = await api.book(buyer, event["id"], 2)
    assert booking.status_code == 201, booking.text
    assert booking.json()["status"] == "confirmed"
    assert (await read(api, event["id"]))["availableSpots"] == 98


# ---------------------------------------------------------------------------------- 422s


@pytest.mark.parametrize(
    ("fields", "offending"),
    [
        ({"checkout": "card"}, {"checkout"}),
        ({"checkout": "INSTANT"}, {"checkout"}),
        ({"checkout": ""}, {"checkout"}),
        ({"checkout": 1}, {"checkout"}),
        ({"checkout": None}, {"checkout"}),
        ({"checkout": ["payment"]}, {"checkout"}),
        ({"holdSeconds": 59}, {"holdSeconds"}),
        ({"holdSeconds": 3601}, {"holdSeconds"}),
        ({"holdSeconds": 0}, {"holdSeconds"}),
        ({"holdSeconds": -600}, {"holdSeconds"}),
        ({"holdSeconds": "600"}, {"holdSeconds"}),
        ({"holdSeconds": 600.5}, {"holdSeconds"}),
        ({"holdSeconds": None}, {"holdSeconds"}),
        ({"holdSeconds": True}, {"holdSeconds"}),
        ({"holdSeconds": 10**30}, {"holdSeconds"}),
        # every offending field at once, with the others
        (
            {"checkout": "later", "holdSeconds": 30, "price": -1},
            {"checkout", "holdSeconds", "price"},
        ),
        # snake_case is not the wire name: an unknown field
        ({"hold_seconds": 600}, {"hold_seconds"}),
    ],
)
async def test_invalid_fields_are_a_422_naming_each(
    api: Api, fields: dict[str, Any], offending: set[str]
) -> None:
    organizer = await api.user("organizer")
    created = await api.http.post("/events", json=event_body(**fields), headers=organizer.headers)
    assert error_fields(assert_problem(created, 422, "validation")) == offending
    event = await api.event(organizer)
    replacing = await put(api, organizer, event, **fields)
    assert error_fields(assert_problem(replacing, 422, "validation")) == offending
    assert await read(api, event["id"]) == event


# ---------------------------------------------------------------------------------- PUT


async def test_put_sets_the_fields_and_a_put_without_them_clears_them(api: Api) -> None:
    organizer = await api.user("organizer")
    event = await api.event(organizer)
    updated = await replaced(api, organizer, event, checkout="payment", holdSeconds=300)
    assert (updated["checkout"], updated["holdSeconds"]) == ("payment", 300)
    assert await read(api, event["id"]) == updated
    assert await listed(api, event["id"]) == updated

    cleared = await replaced(api, organizer, event)
    assert (cleared["checkout"], cleared["holdSeconds"]) == ("instant", 600)
    assert await read(api, event["id"]) == cleared
    assert await listed(api, event["id"]) == cleared


async def test_a_put_without_the_fields_keeps_the_v1_members_as_sent(api: Api) -> None:
    organizer = await api.user("organizer")
    event = await api.event(organizer, checkout="payment", holdSeconds=120)
    updated = await replaced(api, organizer, event, name="Renamed", capacity=50)
    assert set(updated) == V1_EVENT_FIELDS | ALWAYS_V2_EVENT_FIELDS
    assert (updated["name"], updated["capacity"], updated["availableSpots"]) == ("Renamed", 50, 50)
    assert (updated["checkout"], updated["holdSeconds"]) == ("instant", 600)


# ------------------------------------------------------------------ the rule on pending holds


async def test_changing_checkout_with_a_pending_booking_is_a_409(api: Api, db: DB) -> None:
    organizer = await api.user("organizer")
    buyer = await api.user()
    event = await api.event(organizer, checkout="payment", holdSeconds=900, capacity=10)
    await add_booking(db, event["id"], buyer.id, quantity=2)
    before = await read(api, event["id"])
    assert before["availableSpots"] == 8

    refused = await put(api, organizer, event, checkout="instant", name="Renamed")
    problem = assert_problem(refused, 409, "checkout-change-with-holds")
    assert "pending" in problem["detail"]
    # Nothing changed: not the checkout, not the other fields sent with it.
    assert await read(api, event["id"]) == before
    # Leaving checkout out also changes it (back to the default): the same 409.
    assert_problem(await put(api, organizer, event), 409, "checkout-change-with-holds")

    # Keeping the checkout is fine while holds are pending, a new hold length included.
    kept = await replaced(api, organizer, event, checkout="payment", holdSeconds=60, name="Kept")
    assert (kept["checkout"], kept["holdSeconds"], kept["name"]) == ("payment", 60, "Kept")
    assert kept["availableSpots"] == 8


async def test_the_409_holds_for_an_admin_and_the_other_direction_too(api: Api, db: DB) -> None:
    admin = await api.user("admin")
    buyer = await api.user()
    event = await api.event(checkout="instant")
    await add_booking(db, event["id"], buyer.id, quantity=1)
    assert_problem(
        await put(api, admin, event, checkout="payment"), 409, "checkout-change-with-holds"
    )
    assert (await read(api, event["id"]))["checkout"] == "instant"


async def test_checkout_may_change_once_no_booking_is_pending(api: Api, db: DB) -> None:
    organizer = await api.user("organizer")
    buyer = await api.user()
    event = await api.event(organizer, capacity=10)
    # A confirmed instant booking, then an expired and a cancelled hold: none is pending.
    booked = await api.book(buyer, event["id"], 3)
    assert booked.status_code == 201, booked.text
    await add_booking(db, event["id"], buyer.id, status="expired")
    hold = await add_booking(db, event["id"], buyer.id, quantity=1)
    async with db.transaction():
        await db.execute("UPDATE bookings SET status = 'cancelled' WHERE id = $1", hold)
        await db.execute(
            "UPDATE event_inventory SET available = available + 1 WHERE event_id = $1",
            UUID(event["id"]),
        )

    switched = await replaced(api, organizer, event, checkout="payment", holdSeconds=120)
    assert (switched["checkout"], switched["holdSeconds"]) == ("payment", 120)
    assert switched["availableSpots"] == 7
    back = await replaced(api, organizer, event)
    assert (back["checkout"], back["holdSeconds"]) == ("instant", 600)


async def test_a_hold_that_commits_while_the_put_waits_for_the_lock_is_seen(
    api: Api, db: DB
) -> None:
    """The PUT decides under the inventory row lock, which holds are made under too: a hold
    whose transaction holds the row while the PUT arrives is counted once it commits."""
    organizer = await api.user("organizer")
    buyer = await api.user()
    event = await api.event(organizer, checkout="payment", capacity=10)
    event_id = UUID(event["id"])
    transaction = db.transaction()
    await transaction.start()
    try:
        await db.execute("SELECT 1 FROM event_inventory WHERE event_id = $1 FOR UPDATE", event_id)
        pending_put = asyncio.create_task(put(api, organizer, event, checkout="instant"))
        await asyncio.sleep(0.5)
        assert not pending_put.done(), "the PUT must wait for the inventory row lock"
        booking_id = uuid.uuid4()
        now = datetime.now(UTC)
        await db.execute(
            """INSERT INTO bookings (id, event_id, user_id, quantity, status, total_price,
                   currency, created_at, updated_at, expires_at, payment_id, payment_provider,
                   payment_status)
               VALUES ($1, $2, $3, 1, 'pending', 2500, 'EUR', $4, $4, $5, $1, 'fake',
                       'requires_payment')""",
            booking_id,
            event_id,
            buyer.id,
            now,
            now + timedelta(minutes=10),
        )
        await db.execute(
            "UPDATE event_inventory SET available = available - 1 WHERE event_id = $1", event_id
        )
    except BaseException:
        await transaction.rollback()
        raise
    await transaction.commit()
    response = await asyncio.wait_for(pending_put, 10)
    assert_problem(response, 409, "checkout-change-with-holds")
    assert (await read(api, event["id"]))["checkout"] == "payment"


# ---------------------------------------------------------------------------------- DELETE


async def test_a_pending_hold_blocks_delete(api: Api, db: DB) -> None:
    organizer = await api.user("organizer")
    buyer = await api.user()
    event = await api.event(organizer, checkout="payment", capacity=10)
    await add_booking(db, event["id"], buyer.id, quantity=3)
    refused = await api.http.delete(f"/events/{event['id']}", headers=organizer.headers)
    problem = assert_problem(refused, 409, "event-has-bookings")
    assert problem["booked"] == 3  # the held spots count as booked
    assert (await read(api, event["id"]))["availableSpots"] == 7


async def test_an_expired_hold_does_not_block_delete(api: Api, db: DB) -> None:
    organizer = await api.user("organizer")
    buyer = await api.user()
    event = await api.event(organizer, checkout="payment", capacity=10)
    await add_booking(db, event["id"], buyer.id, status="expired")
    deleted = await api.http.delete(f"/events/{event['id']}", headers=organizer.headers)
    assert deleted.status_code == 204, deleted.text
    assert (await api.http.get(f"/events/{event['id']}")).status_code == 404


# ---------------------------------------------------------------------------------- OpenAPI


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    node: Any = document
    for part in schema["$ref"].removeprefix("#/").split("/"):
        node = node[part]
    assert isinstance(node, dict)
    return node


async def test_the_openapi_document_states_the_fields_and_the_409(api: Api) -> None:
    document = (await api.http.get("/openapi.json")).json()
    paths = document["paths"]
    for method in ("post", "put"):
        path = "/events" if method == "post" else "/events/{event_id}"
        body = paths[path][method]["requestBody"]["content"]["application/json"]["schema"]
        request = _resolve(document, body)
        checkout = request["properties"]["checkout"]
        assert set(_resolve(document, checkout)["enum"]) == {"instant", "payment"}
        assert checkout["default"] == "instant"
        hold = request["properties"]["holdSeconds"]
        assert (hold["type"], hold["minimum"], hold["maximum"], hold["default"]) == (
            "integer",
            60,
            3600,
            600,
        )
        assert not {"checkout", "holdSeconds"} & set(request["required"])
    for path, method, status in [
        ("/events", "post", "201"),
        ("/events/{event_id}", "get", "200"),
        ("/events/{event_id}", "put", "200"),
    ]:
        content = paths[path][method]["responses"][status]["content"]["application/json"]
        response = _resolve(document, content["schema"])
        assert {"checkout", "holdSeconds"} <= set(response["required"]), (path, method)
        assert set(_resolve(document, response["properties"]["checkout"])["enum"]) == {
            "instant",
            "payment",
        }
        assert response["properties"]["holdSeconds"]["minimum"] == 60
        assert response["properties"]["holdSeconds"]["maximum"] == 3600
    put_event = paths["/events/{event_id}"]["put"]
    assert "409" in put_event["responses"]
    assert "checkout-change-with-holds" in put_event["description"]
    assert "capacity-below-booked" in put_event["description"]
