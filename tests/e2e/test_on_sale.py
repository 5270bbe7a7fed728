"""On-sale time (API.md, v2 event field ``salesStartAt``): through the real HTTP path on real
PostgreSQL, with the reservation engine on and off, and with the read cache's copy of the event
(the booking path's early check) and without it (the session apps read exactly)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from goticket.config import Settings
from goticket.kit.asgi import RequestContext
from tests.bookings_support import DB, assert_booked, available_spots, booking_rows
from tests.support import EVENT_FIELDS, Api, assert_problem, error_fields, serving

BOTH_MODES = pytest.mark.parametrize("engine_mode", ["on", "off"], indirect=True)


def at(**shift: float) -> str:
    return (datetime.now(UTC) + timedelta(**shift)).isoformat()


def same_instant(wire: str, sent: str) -> bool:
    return datetime.fromisoformat(wire) == datetime.fromisoformat(sent)


async def replace(api: Api, event: dict[str, Any], organizer: Any, **fields: Any) -> dict[str, Any]:
    body = {k: event[k] for k in ("name", "startAt", "endAt", "price", "capacity")} | fields
    response = await api.http.put(f"/events/{event['id']}", json=body, headers=organizer.headers)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


# ------------------------------------------------------------------------------- the field


async def test_the_field_round_trips_in_utc_and_a_put_without_it_clears_it(api: Api) -> None:
    organizer = await api.user("organizer")
    sent = (datetime.now(UTC) + timedelta(hours=1)).astimezone(datetime.now().astimezone().tzinfo)
    sent_text = sent.replace(microsecond=0).isoformat()
    event = await api.event(organizer, salesStartAt=sent_text)
    assert same_instant(event["salesStartAt"], sent_text)
    assert datetime.fromisoformat(event["salesStartAt"]).utcoffset() == timedelta(0)
    fetched = (await api.http.get(f"/events/{event['id']}")).json()
    assert fetched["salesStartAt"] == event["salesStartAt"]

    moved = await replace(api, event, organizer, salesStartAt=at(hours=2))
    assert datetime.fromisoformat(moved["salesStartAt"]) > sent
    cleared = await replace(api, event, organizer)
    assert "salesStartAt" not in cleared
    assert "salesStartAt" not in (await api.http.get(f"/events/{event['id']}")).json()


async def test_an_event_without_the_field_reads_exactly_as_in_v1(api: Api) -> None:
    event = await api.event()
    assert set(event) == EVENT_FIELDS
    assert set((await api.http.get(f"/events/{event['id']}")).json()) == EVENT_FIELDS
    page = (await api.http.get("/events", params={"limit": 100})).json()
    assert all(set(item) >= EVENT_FIELDS for item in page["items"])


@pytest.mark.parametrize(
    "value",
    ["2030-01-01T10:00:00", "tomorrow", 12, "0001-01-01T00:00:00+01:00", None],
)
async def test_an_invalid_on_sale_time_is_a_422_naming_the_field(api: Api, value: Any) -> None:
    organizer = await api.user("organizer")
    response = await api.http.post(
        "/events",
        json={
            "name": "x",
            "startAt": at(days=1),
            "endAt": at(days=2),
            "price": 1,
            "capacity": 1,
            "salesStartAt": value,
        },
        headers=organizer.headers,
    )
    if value is None:  # null is the field left out: no restriction
        assert response.status_code == 201, response.text
        assert "salesStartAt" not in response.json()
        return
    body = assert_problem(response, 422, "validation")
    assert error_fields(body) == {"salesStartAt"}


# ------------------------------------------------------------------------------- bookings


@BOTH_MODES
@pytest.mark.parametrize("key", [None, "k-1"])
async def test_a_booking_before_the_on_sale_time_is_a_409_naming_it(
    api_in_mode: Api, db: DB, key: str | None
) -> None:
    api = api_in_mode
    event = await api.event(capacity=5, salesStartAt=at(minutes=10))
    response = await api.book(await api.user(), event["id"], quantity=2, key=key)
    body = assert_problem(response, 409, "sales-not-started")
    assert body["salesStartAt"] == event["salesStartAt"]
    assert "sales_start_at" not in body
    assert await booking_rows(db, event["id"]) == 0
    assert await available_spots(api, event["id"]) == 5


@BOTH_MODES
async def test_from_the_on_sale_time_on_the_event_books(api_in_mode: Api) -> None:
    event = await api_in_mode.event(capacity=5, salesStartAt=at(seconds=-1))
    assert_booked(await api_in_mode.book(await api_in_mode.user(), event["id"], quantity=2))
    assert await available_spots(api_in_mode, event["id"]) == 3


@BOTH_MODES
async def test_moving_the_on_sale_time_opens_and_closes_the_sale(api_in_mode: Api) -> None:
    api = api_in_mode
    organizer = await api.user("organizer")
    fan = await api.user()
    event = await api.event(organizer, capacity=5, salesStartAt=at(hours=1))
    assert_problem(await api.book(fan, event["id"]), 409, "sales-not-started")
    await replace(api, event, organizer, salesStartAt=at(seconds=-1))
    assert_booked(await api.book(fan, event["id"]))
    await replace(api, event, organizer, salesStartAt=at(hours=1))
    assert_problem(await api.book(fan, event["id"]), 409, "sales-not-started")
    await replace(api, event, organizer)  # left out: cleared, no restriction
    assert_booked(await api.book(fan, event["id"]))


@BOTH_MODES
async def test_an_ended_event_says_ended_even_before_its_on_sale_time(api_in_mode: Api) -> None:
    end = datetime.now(UTC) - timedelta(hours=1)
    event = await api_in_mode.event(
        startAt=(end - timedelta(hours=2)).isoformat(),
        endAt=end.isoformat(),
        salesStartAt=at(hours=1),
    )
    assert_problem(
        await api_in_mode.book(await api_in_mode.user(), event["id"]), 409, "event-ended"
    )


# ------------------------------------------------------- with the read cache's copy (early)


@pytest.fixture(scope="session", params=["on", "off"])
async def cached_app(
    settings: Settings, request: pytest.FixtureRequest
) -> AsyncIterator[RequestContext]:
    """The production read cache (1 s): a booking finds the event's copy there."""
    update = {"read_cache_max_age": 1.0, "engine": request.param}
    async with serving(settings.model_copy(update=update)) as application:
        yield application


@pytest.fixture
async def cached_api(
    cached_app: RequestContext, settings: Settings, database_url: str
) -> AsyncIterator[Api]:
    transport = httpx.ASGITransport(app=cached_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://goticket.test") as http:
        yield Api(http, settings, database_url)


async def test_the_copy_refuses_early_and_an_edit_in_this_process_is_seen_at_once(
    cached_api: Api, db: DB
) -> None:
    api = cached_api
    organizer = await api.user("organizer")
    fan = await api.user()
    event = await api.event(organizer, capacity=5, salesStartAt=at(hours=1))
    assert (await api.http.get(f"/events/{event['id']}")).status_code == 200  # the copy
    body = assert_problem(await api.book(fan, event["id"]), 409, "sales-not-started")
    assert body["salesStartAt"] == event["salesStartAt"]
    # The edit drops the copy in this process at once (others: on its notification).
    await replace(api, event, organizer, salesStartAt=at(seconds=-1))
    assert (await api.http.get(f"/events/{event['id']}")).status_code == 200
    assert_booked(await api.book(fan, event["id"]))
    assert await booking_rows(db, event["id"]) == 1
