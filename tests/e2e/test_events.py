"""The event catalog over HTTP: create, read, list, replace, delete."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import httpx
import pytest

from tests.support import EVENT_FIELDS, Actor, Api, assert_problem, error_fields, event_body

MALFORMED_IDS = [
    "nope",
    "123",
    "00000000-0000-0000-0000-00000000000",
    "zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz",
]
BASE = datetime(2031, 3, 1, 18, 0, tzinfo=UTC)


def at(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    assert parsed.tzinfo is not None, value
    return parsed


def full_body(**overrides: Any) -> dict[str, Any]:
    return event_body(
        name="Night at the Opera",
        description="Queen, live, one night only.",
        venue="Royal Albert Hall",
        startAt="2031-06-01T20:00:00+02:00",
        endAt="2031-06-01T23:30:00+02:00",
        price=25000,
        currency="GBP",
        capacity=500,
        maxPerUser=4,
        **overrides,
    )


async def create(api: Api, actor: Actor, **overrides: Any) -> httpx.Response:
    return await api.http.post("/events", json=event_body(**overrides), headers=actor.headers)


async def event_at(api: Api, organizer: Actor, start: datetime, **overrides: Any) -> dict[str, Any]:
    return await api.event(
        organizer,
        startAt=start.isoformat(),
        endAt=(start + timedelta(hours=2)).isoformat(),
        **overrides,
    )


async def get_event(api: Api, event_id: str) -> httpx.Response:
    return await api.http.get(f"/events/{event_id}")


async def cancel(api: Api, actor: Actor, booking_id: str) -> None:
    response = await api.http.post(f"/bookings/{booking_id}/cancel", headers=actor.headers)
    assert response.status_code == 200, response.text


# ---------------------------------------------------------------------------- create


async def test_create_echoes_every_field(api: Api) -> None:
    organizer = await api.user("organizer")
    before = datetime.now(UTC)
    body = full_body()
    response = await api.http.post("/events", json=body, headers=organizer.headers)
    assert response.status_code == 201, response.text
    event = response.json()
    assert set(event) == EVENT_FIELDS
    assert UUID(event["id"])
    assert response.headers["location"] == f"/events/{event['id']}"
    assert event["organizerId"] == str(organizer.id)
    for field in ("name", "description", "venue", "price", "currency", "capacity", "maxPerUser"):
        assert event[field] == body[field], field
    assert at(event["startAt"]) == at(body["startAt"])
    assert at(event["endAt"]) == at(body["endAt"])
    assert event["availableSpots"] == body["capacity"]
    assert event["createdAt"] == event["updatedAt"]
    assert abs((at(event["createdAt"]) - before).total_seconds()) < 60


async def test_created_event_is_readable_at_its_location(api: Api) -> None:
    organizer = await api.user("organizer")
    created = await api.http.post("/events", json=full_body(), headers=organizer.headers)
    fetched = await api.http.get(created.headers["location"])
    assert fetched.status_code == 200
    assert fetched.json() == created.json()


async def test_create_defaults(api: Api) -> None:
    organizer = await api.user("organizer")
    response = await create(api, organizer, capacity=7)
    assert response.status_code == 201, response.text
    event = response.json()
    assert event["currency"] == "EUR"
    assert event["description"] is None
    assert event["venue"] is None
    assert event["maxPerUser"] is None
    assert event["capacity"] == event["availableSpots"] == 7


async def test_create_is_stored(api: Api, db: asyncpg.Connection[Any]) -> None:
    organizer = await api.user("organizer")
    event = (await create(api, organizer, capacity=9, price=1234)).json()
    row = await db.fetchrow(
        "SELECT e.price, e.organizer_id, i.capacity, i.available FROM events e"
        " JOIN event_inventory i ON i.event_id = e.id WHERE e.id = $1",
        UUID(event["id"]),
    )
    assert row is not None
    assert (row["price"], row["organizer_id"], row["capacity"], row["available"]) == (
        1234,
        organizer.id,
        9,
        9,
    )


@pytest.mark.parametrize("role", ["organizer", "admin"])
async def test_organizers_and_admins_may_create(api: Api, role: str) -> None:
    actor = await api.user(role)
    response = await create(api, actor)
    assert response.status_code == 201, response.text
    assert response.json()["organizerId"] == str(actor.id)


async def test_a_plain_user_may_not_create(api: Api, db: asyncpg.Connection[Any]) -> None:
    user = await api.user()
    assert_problem(await create(api, user), 403, "forbidden")
    assert await db.fetchval("SELECT count(*) FROM events") == 0


async def test_a_plain_user_is_refused_before_its_body_is_read(
    api: Api, db: asyncpg.Connection[Any]
) -> None:
    user = await api.user()
    for body in ({"name": ""}, event_body(capacity=-1)):
        response = await api.http.post("/events", json=body, headers=user.headers)
        assert_problem(response, 403, "forbidden")
    garbage = await api.http.post(
        "/events",
        content=b"{not json",
        headers={**user.headers, "content-type": "application/json"},
    )
    assert_problem(garbage, 403, "forbidden")
    assert await db.fetchval("SELECT count(*) FROM events") == 0


async def test_anonymous_may_not_create(api: Api) -> None:
    response = await api.http.post("/events", json=event_body())
    assert_problem(response, 401, "unauthorized")
    assert response.headers["www-authenticate"].lower().startswith("bearer")


async def test_events_may_be_created_in_the_past(api: Api) -> None:
    organizer = await api.user("organizer")
    response = await create(
        api, organizer, startAt="2001-01-01T10:00:00Z", endAt="2001-01-01T12:00:00Z"
    )
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    "overrides",
    [
        {"name": "x"},
        {"name": "x" * 200},
        {"name": "Ünïcødé ✓ 🎟"},
        {"description": ""},
        {"description": "d" * 5000},
        {"venue": ""},
        {"venue": "v" * 200},
        {"price": 0},
        {"price": 10**12},
        {"currency": "USD"},
        {"capacity": 1, "maxPerUser": 1},
        {"capacity": 10_000_000},
        {"capacity": 5, "maxPerUser": 5},
        {"maxPerUser": 1},
        # JSON Schema counts 2.0 as the integer 2: the document says integer, so 2.0 is one.
        {"capacity": 2.0, "price": 1e3, "maxPerUser": 1.0},
        {"description": None, "venue": None, "maxPerUser": None},
        {"startAt": "2031-01-01T10:00:00+14:00", "endAt": "2031-01-01T10:00:00-12:00"},
        {"startAt": "2031-01-01T10:00:00.123456Z", "endAt": "2031-01-01T10:00:00.123457Z"},
        {"startAt": "2031-01-01t10:00:00z", "endAt": "2031-01-01t11:00:00z"},
    ],
    ids=lambda overrides: ",".join(sorted(overrides)),
)
async def test_create_accepts_boundary_values(api: Api, overrides: dict[str, Any]) -> None:
    organizer = await api.user("organizer")
    response = await create(api, organizer, **overrides)
    assert response.status_code == 201, response.text
    event = response.json()
    for field, value in overrides.items():
        if field in ("startAt", "endAt"):
            assert at(event[field]) == at(value.upper())
        else:
            assert event[field] == value


INVALID: list[tuple[dict[str, Any], str]] = [
    ({"name": ""}, "name"),
    ({"name": "x" * 201}, "name"),
    ({"name": None}, "name"),
    ({"name": 5}, "name"),
    ({"name": "a\u0000b"}, "name"),
    ({"description": "d" * 5001}, "description"),
    ({"description": 1}, "description"),
    ({"venue": "v" * 201}, "venue"),
    ({"venue": "a\u0000"}, "venue"),
    ({"startAt": "2031-01-01T10:00:00"}, "startAt"),
    ({"endAt": "2031-01-01T10:00:00"}, "endAt"),
    ({"startAt": "2031-01-01 10:00"}, "startAt"),
    ({"startAt": "tomorrow"}, "startAt"),
    ({"startAt": 1893456000}, "startAt"),
    ({"startAt": None}, "startAt"),
    ({"startAt": "0001-01-01T00:00:00+14:00", "endAt": "2031-01-01T00:00:00Z"}, "startAt"),
    ({"endAt": "9999-12-31T23:00:00-14:00"}, "endAt"),
    ({"price": -1}, "price"),
    ({"price": 10**12 + 1}, "price"),
    ({"price": 10**30}, "price"),
    ({"price": 1.5}, "price"),
    ({"price": "100"}, "price"),
    ({"price": True}, "price"),
    ({"price": None}, "price"),
    ({"currency": "eur"}, "currency"),
    ({"currency": "EU"}, "currency"),
    ({"currency": "EURO"}, "currency"),
    ({"currency": "E1R"}, "currency"),
    ({"currency": "EUR\n"}, "currency"),
    ({"currency": " EUR"}, "currency"),
    ({"currency": ""}, "currency"),
    ({"currency": None}, "currency"),
    ({"capacity": 0}, "capacity"),
    ({"capacity": -3}, "capacity"),
    ({"capacity": 10_000_001}, "capacity"),
    ({"capacity": 2.5}, "capacity"),
    ({"maxPerUser": 0}, "maxPerUser"),
    ({"maxPerUser": -1}, "maxPerUser"),
    ({"capacity": 5, "maxPerUser": 6}, "maxPerUser"),
    ({"maxPerUser": 10_000_001}, "maxPerUser"),
    ({"id": str(uuid4())}, "id"),
    ({"organizerId": str(uuid4())}, "organizerId"),
    ({"availableSpots": 5}, "availableSpots"),
    ({"createdAt": "2031-01-01T00:00:00Z"}, "createdAt"),
    ({"updatedAt": "2031-01-01T00:00:00Z"}, "updatedAt"),
    ({"title": "typo of name"}, "title"),
    ({"start_at": "2031-01-01T00:00:00Z"}, "start_at"),
]


@pytest.mark.parametrize(("overrides", "field"), INVALID, ids=[repr(o)[:60] for o, _ in INVALID])
async def test_create_rejects_invalid_fields(
    api: Api, db: asyncpg.Connection[Any], overrides: dict[str, Any], field: str
) -> None:
    organizer = await api.user("organizer")
    body = assert_problem(await create(api, organizer, **overrides), 422, "validation")
    assert field in error_fields(body)
    assert all(error["message"] for error in body["errors"])
    assert await db.fetchval("SELECT count(*) FROM events") == 0


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("2031-01-01T10:00:00Z", "2031-01-01T10:00:00Z"),
        ("2031-01-01T10:00:00Z", "2031-01-01T09:59:59Z"),
        # The same instant written in two offsets is not "before".
        ("2031-01-01T12:00:00+02:00", "2031-01-01T10:00:00Z"),
        ("2031-01-02T00:00:00Z", "2031-01-01T00:00:00Z"),
    ],
)
async def test_create_requires_start_before_end(api: Api, start: str, end: str) -> None:
    organizer = await api.user("organizer")
    response = await create(api, organizer, startAt=start, endAt=end)
    body = assert_problem(response, 422, "validation")
    assert error_fields(body) & {"startAt", "endAt"}


@pytest.mark.parametrize("field", ["name", "startAt", "endAt", "price", "capacity"])
async def test_create_requires_the_required_fields(api: Api, field: str) -> None:
    organizer = await api.user("organizer")
    body = assert_problem(await create(api, organizer, **{field: ...}), 422, "validation")
    assert field in error_fields(body)


async def test_create_lists_every_offending_field(api: Api) -> None:
    organizer = await api.user("organizer")
    response = await create(
        api,
        organizer,
        name="",
        description="d" * 5001,
        venue="v" * 201,
        startAt="2031-01-01T10:00:00",
        price=-1,
        currency="eur",
        capacity=0,
        maxPerUser=0,
        organizerId=str(uuid4()),
        bogus=1,
    )
    body = assert_problem(response, 422, "validation")
    assert error_fields(body) >= {
        "name",
        "description",
        "venue",
        "startAt",
        "price",
        "currency",
        "capacity",
        "maxPerUser",
        "organizerId",
        "bogus",
    }


@pytest.mark.parametrize(
    ("overrides", "fields"),
    [
        (
            {"name": "", "startAt": "2031-01-02T00:00:00Z", "endAt": "2031-01-01T00:00:00Z"},
            {"name", "endAt"},
        ),
        ({"price": -1, "capacity": 5, "maxPerUser": 6}, {"price", "maxPerUser"}),
        (
            {
                "currency": "x",
                "startAt": "0001-01-01T00:00:00+14:00",
                "endAt": "2031-01-01T00:00:00Z",
            },
            {"currency", "startAt"},
        ),
        (
            {
                "venue": "v" * 201,
                "startAt": "2031-01-01T10:00:00Z",
                "endAt": "2031-01-01T10:00:00Z",
                "capacity": 2,
                "maxPerUser": 3,
            },
            {"venue", "endAt", "maxPerUser"},
        ),
    ],
)
async def test_rules_spanning_fields_are_listed_with_the_others(
    api: Api, overrides: dict[str, Any], fields: set[str]
) -> None:
    organizer = await api.user("organizer")
    body = assert_problem(await create(api, organizer, **overrides), 422, "validation")
    assert error_fields(body) == fields


async def test_create_with_an_empty_object_lists_every_required_field(api: Api) -> None:
    organizer = await api.user("organizer")
    response = await api.http.post("/events", json={}, headers=organizer.headers)
    body = assert_problem(response, 422, "validation")
    assert error_fields(body) == {"name", "startAt", "endAt", "price", "capacity"}


# ---------------------------------------------------------------------------- read one


async def test_get_one(api: Api) -> None:
    event = await api.event(capacity=3)
    response = await get_event(api, event["id"])
    assert response.status_code == 200
    assert response.json() == event


async def test_get_one_needs_no_token_and_ignores_an_other_organizers(api: Api) -> None:
    event = await api.event()
    other = await api.user("organizer")
    response = await api.http.get(f"/events/{event['id']}", headers=other.headers)
    assert response.status_code == 200
    assert response.json()["id"] == event["id"]


async def test_get_unknown_event_is_404(api: Api) -> None:
    assert_problem(await get_event(api, str(uuid4())), 404, "not-found")


@pytest.mark.parametrize("event_id", MALFORMED_IDS)
async def test_get_malformed_id_is_404(api: Api, event_id: str) -> None:
    assert_problem(await get_event(api, event_id), 404, "not-found")


# ---------------------------------------------------------------------------- list


async def list_events(api: Api, **params: Any) -> httpx.Response:
    return await api.http.get("/events", params=params)


def ids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


async def walk(api: Api, limit: int, **params: Any) -> list[str]:
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(1000):
        query = {"limit": limit, **params}
        if cursor is not None:
            query["cursor"] = cursor
        response = await list_events(api, **query)
        page = response.json()
        assert len(page["items"]) <= limit
        seen += ids(response)
        cursor = page["nextCursor"]
        if cursor is None:
            return seen
    raise AssertionError("the cursors never ended")


async def test_list_shape_and_empty(api: Api) -> None:
    response = await list_events(api)
    assert response.status_code == 200
    assert response.json() == {"items": [], "nextCursor": None}


async def test_list_is_soonest_first(api: Api) -> None:
    organizer = await api.user("organizer")
    later = await event_at(api, organizer, BASE + timedelta(days=2))
    soonest = await event_at(api, organizer, BASE)
    middle = await event_at(api, organizer, BASE + timedelta(days=1))
    past = await event_at(api, organizer, datetime(2001, 1, 1, tzinfo=UTC))
    response = await list_events(api)
    assert ids(response) == [past["id"], soonest["id"], middle["id"], later["id"]]
    items = response.json()["items"]
    assert items[1] == soonest
    assert response.json()["nextCursor"] is None


async def test_list_items_have_every_field(api: Api) -> None:
    event = await api.event(capacity=11)
    items = (await list_events(api)).json()["items"]
    assert items == [event]
    assert set(items[0]) == EVENT_FIELDS


async def test_list_filters(api: Api) -> None:
    organizer = await api.user("organizer")
    e0 = await event_at(api, organizer, BASE)
    e1 = await event_at(api, organizer, BASE + timedelta(hours=1))
    e2 = await event_at(api, organizer, BASE + timedelta(hours=2))
    t1 = (BASE + timedelta(hours=1)).isoformat()
    t2 = (BASE + timedelta(hours=2)).isoformat()
    assert ids(await list_events(api, startsAfter=t1)) == [e1["id"], e2["id"]]
    assert ids(await list_events(api, startsBefore=t1)) == [e0["id"]]
    assert ids(await list_events(api, startsAfter=BASE.isoformat(), startsBefore=t2)) == [
        e0["id"],
        e1["id"],
    ]
    assert ids(await list_events(api, startsAfter=t1, startsBefore=t1)) == []
    assert ids(await list_events(api, startsAfter=t2, startsBefore=t1)) == []
    just_after = (BASE + timedelta(hours=2, microseconds=1)).isoformat()
    assert ids(await list_events(api, startsAfter=just_after)) == []
    assert ids(await list_events(api, startsBefore=just_after)) == [e0["id"], e1["id"], e2["id"]]


async def test_list_filters_honour_offsets(api: Api) -> None:
    organizer = await api.user("organizer")
    e0 = await event_at(api, organizer, BASE)
    e1 = await event_at(api, organizer, BASE + timedelta(hours=1))
    # BASE + 1h written as local time two hours east of UTC.
    plus_two = (BASE + timedelta(hours=1)).astimezone(timezone(timedelta(hours=2))).isoformat()
    assert "+02:00" in plus_two
    minus_five = (BASE + timedelta(hours=1)).astimezone(timezone(timedelta(hours=-5))).isoformat()
    # httpx percent-encodes the '+' (as %2B): the canonical way.
    assert ids(await list_events(api, startsAfter=plus_two)) == [e1["id"]]
    assert ids(await list_events(api, startsBefore=plus_two)) == [e0["id"]]
    assert ids(await list_events(api, startsAfter=minus_five)) == [e1["id"]]
    # A '+' typed raw into the query string (which form decoding turns into a space).
    raw = await api.http.get(f"/events?startsAfter={plus_two}")
    assert ids(raw) == [e1["id"]]
    raw_before = await api.http.get(f"/events?startsBefore={plus_two}&limit=5")
    assert ids(raw_before) == [e0["id"]]
    zulu = await api.http.get(
        "/events?startsAfter=" + (BASE + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    )
    assert ids(zulu) == [e1["id"]]


@pytest.mark.parametrize("param", ["startsAfter", "startsBefore"])
@pytest.mark.parametrize(
    "value",
    [
        "",
        "yesterday",
        "2031-03-01",
        "2031-03-01T18:00:00",
        "2031-13-01T18:00:00Z",
        "0001-01-01T00:00:00+14:00",
        "9999-12-31T23:00:00-14:00",
        "1893456000",
    ],
)
async def test_list_rejects_a_bad_timestamp_filter(api: Api, param: str, value: str) -> None:
    body = assert_problem(await list_events(api, **{param: value}), 422, "validation")
    assert param in error_fields(body)


async def test_list_limit_defaults_to_20(api: Api) -> None:
    organizer = await api.user("organizer")
    for i in range(21):
        await event_at(api, organizer, BASE + timedelta(minutes=i))
    first = await list_events(api)
    assert len(ids(first)) == 20
    assert first.json()["nextCursor"]
    second = await list_events(api, cursor=first.json()["nextCursor"])
    assert len(ids(second)) == 1
    assert second.json()["nextCursor"] is None
    assert set(ids(first)).isdisjoint(ids(second))


@pytest.mark.parametrize(("limit", "count"), [(1, 1), (2, 2), (3, 3), (100, 3)])
async def test_list_limit_in_range(api: Api, limit: int, count: int) -> None:
    organizer = await api.user("organizer")
    for i in range(3):
        await event_at(api, organizer, BASE + timedelta(minutes=i))
    response = await list_events(api, limit=limit)
    assert len(ids(response)) == count
    assert (response.json()["nextCursor"] is None) == (limit >= 3)


async def test_list_exactly_a_full_page_has_no_next_cursor(api: Api) -> None:
    organizer = await api.user("organizer")
    for i in range(2):
        await event_at(api, organizer, BASE + timedelta(minutes=i))
    response = await list_events(api, limit=2)
    assert len(ids(response)) == 2
    assert response.json()["nextCursor"] is None


@pytest.mark.parametrize("limit", ["0", "-1", "101", "1000", "abc", "1.5", ""])
async def test_list_limit_out_of_range_is_422(api: Api, limit: str) -> None:
    body = assert_problem(await api.http.get(f"/events?limit={limit}"), 422, "validation")
    assert "limit" in error_fields(body)


async def test_cursor_walk_visits_every_item_once(api: Api) -> None:
    organizer = await api.user("organizer")
    created = [
        # Several events share a start time: the walk must order ties too.
        (await event_at(api, organizer, BASE + timedelta(hours=i // 3)))["id"]
        for i in range(11)
    ]
    for limit in (1, 2, 3, 4, 10, 11, 100):
        seen = await walk(api, limit)
        assert len(seen) == len(set(seen)) == 11, limit
        assert set(seen) == set(created)
    assert await walk(api, 4) == ids(await list_events(api, limit=100))


async def test_cursor_walk_with_filters(api: Api) -> None:
    organizer = await api.user("organizer")
    inside = [
        (await event_at(api, organizer, BASE + timedelta(hours=i)))["id"] for i in range(1, 6)
    ]
    await event_at(api, organizer, BASE)
    await event_at(api, organizer, BASE + timedelta(hours=6))
    seen = await walk(
        api,
        2,
        startsAfter=(BASE + timedelta(hours=1)).isoformat(),
        startsBefore=(BASE + timedelta(hours=6)).isoformat(),
    )
    assert seen == inside


async def test_cursor_walk_while_events_are_added(api: Api) -> None:
    organizer = await api.user("organizer")
    original = [
        (await event_at(api, organizer, BASE + timedelta(hours=i // 2)))["id"] for i in range(10)
    ]
    seen: list[str] = []
    added_ahead: list[str] = []
    cursor: str | None = None
    step = 0
    while True:
        params: dict[str, Any] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = await list_events(api, **params)
        seen += ids(page)
        cursor = page.json()["nextCursor"]
        if cursor is None:
            break
        step += 1
        # Mid-walk: one event before everything, one at a start time the walk is in the middle
        # of (it may fall either side of the cursor), one after everything.
        await event_at(api, organizer, BASE - timedelta(days=step))
        await event_at(api, organizer, BASE + timedelta(hours=step))
        ahead = await event_at(api, organizer, BASE + timedelta(days=10 + step))
        added_ahead.append(ahead["id"])
    assert len(seen) == len(set(seen)), "an item was repeated"
    assert set(original) <= set(seen), "an item was skipped"
    assert set(added_ahead) <= set(seen), "an item added ahead of the cursor was skipped"
    starts = [at(e["startAt"]) for e in (await list_events(api, limit=100)).json()["items"]]
    assert starts == sorted(starts)


async def test_a_cursor_keeps_working_after_its_item_is_deleted(api: Api) -> None:
    organizer = await api.user("organizer")
    events = [await event_at(api, organizer, BASE + timedelta(hours=i)) for i in range(4)]
    first = await list_events(api, limit=2)
    deleted = await api.http.delete(f"/events/{events[1]['id']}", headers=organizer.headers)
    assert deleted.status_code == 204
    rest = await list_events(api, limit=2, cursor=first.json()["nextCursor"])
    assert ids(rest) == [events[2]["id"], events[3]["id"]]


async def test_forged_cursors_are_422(api: Api) -> None:
    organizer = await api.user("organizer")
    for i in range(3):
        await event_at(api, organizer, BASE + timedelta(hours=i))
    real = (await list_events(api, limit=1)).json()["nextCursor"]
    assert isinstance(real, str)
    flipped = real[:-3] + ("A" if real[-3] != "A" else "B") + real[-2:]
    truncated = real[: len(real) // 2]
    for cursor in (
        "garbage",
        "",
        "=",
        "%%%",
        "a" * 500,
        flipped,
        truncated,
        real + "x",
        "\u00e9t\u00e9",
    ):
        body = assert_problem(await list_events(api, cursor=cursor), 422, "validation")
        assert "cursor" in error_fields(body), cursor


async def test_a_cursor_of_another_list_is_422(api: Api) -> None:
    event = await api.event(capacity=10)
    fan = await api.user()
    for _ in range(2):
        assert (await api.book(fan, event["id"])).status_code == 201
    bookings = await api.http.get("/me/bookings", params={"limit": 1}, headers=fan.headers)
    assert bookings.status_code == 200, bookings.text
    foreign = bookings.json()["nextCursor"]
    assert isinstance(foreign, str)
    body = assert_problem(await list_events(api, cursor=foreign), 422, "validation")
    assert "cursor" in error_fields(body)


async def test_list_shows_available_spots(api: Api) -> None:
    event = await api.event(capacity=5)
    fan = await api.user()
    assert (await api.book(fan, event["id"], quantity=2)).status_code == 201
    items = (await list_events(api)).json()["items"]
    assert items[0]["availableSpots"] == 3
    assert items[0]["capacity"] == 5


# ---------------------------------------------------------------------------- replace


async def put_event(
    api: Api, actor: Actor | None, event_id: str, body: dict[str, Any]
) -> httpx.Response:
    headers = actor.headers if actor else {}
    return await api.http.put(f"/events/{event_id}", json=body, headers=headers)


async def test_owner_replaces_every_field(api: Api) -> None:
    organizer = await api.user("organizer")
    event = await api.event(organizer, capacity=10)
    body = full_body()
    response = await put_event(api, organizer, event["id"], body)
    assert response.status_code == 200, response.text
    updated = response.json()
    assert set(updated) == EVENT_FIELDS
    for field in ("name", "description", "venue", "price", "currency", "capacity", "maxPerUser"):
        assert updated[field] == body[field], field
    assert at(updated["startAt"]) == at(body["startAt"])
    assert at(updated["endAt"]) == at(body["endAt"])
    assert updated["id"] == event["id"]
    assert updated["organizerId"] == event["organizerId"]
    assert updated["createdAt"] == event["createdAt"]
    assert at(updated["updatedAt"]) > at(event["updatedAt"])
    assert updated["availableSpots"] == 500
    assert (await get_event(api, event["id"])).json() == updated


async def test_admin_may_replace_any_event(api: Api) -> None:
    event = await api.event()
    admin = await api.user("admin")
    response = await put_event(api, admin, event["id"], event_body(name="Renamed by admin"))
    assert response.status_code == 200, response.text
    assert response.json()["name"] == "Renamed by admin"
    # The event keeps its organizer.
    assert response.json()["organizerId"] == event["organizerId"]


@pytest.mark.parametrize("role", ["organizer", "user"])
async def test_others_may_not_replace(api: Api, role: str) -> None:
    event = await api.event()
    other = await api.user(role)
    response = await put_event(api, other, event["id"], event_body(name="Hijacked"))
    assert_problem(response, 403, "forbidden")
    assert (await get_event(api, event["id"])).json() == event


async def test_anonymous_may_not_replace(api: Api) -> None:
    event = await api.event()
    response = await put_event(api, None, event["id"], event_body(name="Hijacked"))
    assert_problem(response, 401, "unauthorized")
    assert response.headers["www-authenticate"].lower().startswith("bearer")
    assert (await get_event(api, event["id"])).json() == event


async def test_replace_unknown_event_is_404(api: Api) -> None:
    admin = await api.user("admin")
    assert_problem(await put_event(api, admin, str(uuid4()), event_body()), 404, "not-found")


@pytest.mark.parametrize("event_id", MALFORMED_IDS)
async def test_replace_malformed_id_is_404(api: Api, event_id: str) -> None:
    admin = await api.user("admin")
    assert_problem(await put_event(api, admin, event_id, event_body()), 404, "not-found")


async def test_replace_clears_optional_fields_left_out(api: Api) -> None:
    organizer = await api.user("organizer")
    event = (await api.http.post("/events", json=full_body(), headers=organizer.headers)).json()
    assert event["description"]
    assert event["venue"]
    assert event["maxPerUser"]
    assert event["currency"] == "GBP"
    response = await put_event(api, organizer, event["id"], event_body(capacity=500))
    assert response.status_code == 200, response.text
    updated = response.json()
    assert updated["description"] is None
    assert updated["venue"] is None
    assert updated["maxPerUser"] is None
    assert updated["currency"] == "EUR"
    assert (await get_event(api, event["id"])).json() == updated


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"name": ""}, "name"),
        ({"capacity": 5, "maxPerUser": 6}, "maxPerUser"),
        ({"startAt": "2031-01-01T10:00:00"}, "startAt"),
        ({"currency": "eur"}, "currency"),
        ({"id": "ignored"}, "id"),
        ({"availableSpots": 100}, "availableSpots"),
        ({"organizerId": str(uuid4())}, "organizerId"),
    ],
)
async def test_replace_validates_like_create(
    api: Api, overrides: dict[str, Any], field: str
) -> None:
    organizer = await api.user("organizer")
    event = await api.event(organizer)
    response = await put_event(api, organizer, event["id"], event_body(**overrides))
    assert field in error_fields(assert_problem(response, 422, "validation"))
    assert (await get_event(api, event["id"])).json() == event


async def test_replace_with_the_event_id_in_the_body_is_422(api: Api) -> None:
    organizer = await api.user("organizer")
    event = await api.event(organizer)
    response = await put_event(api, organizer, event["id"], {**event_body(), "id": event["id"]})
    assert "id" in error_fields(assert_problem(response, 422, "validation"))


async def test_raising_capacity_adds_to_available_spots(api: Api) -> None:
    organizer = await api.user("organizer")
    event = await api.event(organizer, capacity=10)
    fan = await api.user()
    assert (await api.book(fan, event["id"], quantity=3)).status_code == 201
    response = await put_event(api, organizer, event["id"], event_body(capacity=15))
    assert response.status_code == 200, response.text
    assert response.json()["capacity"] == 15
    assert response.json()["availableSpots"] == 12
    assert (await get_event(api, event["id"])).json()["availableSpots"] == 12


async def test_lowering_capacity_without_bookings(api: Api) -> None:
    organizer = await api.user("organizer")
    event = await api.event(organizer, capacity=10)
    response = await put_event(api, organizer, event["id"], event_body(capacity=4))
    assert response.status_code == 200, response.text
    assert (response.json()["capacity"], response.json()["availableSpots"]) == (4, 4)


async def test_lowering_capacity_below_booked_is_409(api: Api, db: asyncpg.Connection[Any]) -> None:
    organizer = await api.user("organizer")
    event = await api.event(organizer, capacity=10)
    fans = [await api.user(), await api.user()]
    assert (await api.book(fans[0], event["id"], quantity=3)).status_code == 201
    assert (await api.book(fans[1], event["id"], quantity=2)).status_code == 201
    response = await put_event(
        api, organizer, event["id"], event_body(capacity=4, name="Should not stick")
    )
    assert_problem(response, 409, "capacity-below-booked")
    after = (await get_event(api, event["id"])).json()
    assert (after["capacity"], after["availableSpots"], after["name"]) == (10, 5, event["name"])
    row = await db.fetchrow(
        "SELECT capacity, available FROM event_inventory WHERE event_id = $1", UUID(event["id"])
    )
    assert row is not None
    assert (row["capacity"], row["available"]) == (10, 5)


async def test_lowering_capacity_to_exactly_booked(api: Api) -> None:
    organizer = await api.user("organizer")
    event = await api.event(organizer, capacity=10)
    fan = await api.user()
    assert (await api.book(fan, event["id"], quantity=4)).status_code == 201
    response = await put_event(api, organizer, event["id"], event_body(capacity=4))
    assert response.status_code == 200, response.text
    assert (response.json()["capacity"], response.json()["availableSpots"]) == (4, 0)
    sold_out = await api.book(await api.user(), event["id"])
    assert_problem(sold_out, 409, "sold-out")


async def test_cancelled_bookings_do_not_hold_capacity(api: Api) -> None:
    organizer = await api.user("organizer")
    event = await api.event(organizer, capacity=10)
    fan = await api.user()
    booked = await api.book(fan, event["id"], quantity=5)
    assert booked.status_code == 201
    await cancel(api, fan, booked.json()["id"])
    response = await put_event(api, organizer, event["id"], event_body(capacity=1))
    assert response.status_code == 200, response.text
    assert (response.json()["capacity"], response.json()["availableSpots"]) == (1, 1)


# ---------------------------------------------------------------------------- delete


async def delete_event(api: Api, actor: Actor | None, event_id: str) -> httpx.Response:
    return await api.http.delete(f"/events/{event_id}", headers=actor.headers if actor else {})


@pytest.mark.parametrize("by", ["owner", "admin"])
async def test_delete(api: Api, db: asyncpg.Connection[Any], by: str) -> None:
    organizer = await api.user("organizer")
    event = await api.event(organizer)
    actor = organizer if by == "owner" else await api.user("admin")
    response = await delete_event(api, actor, event["id"])
    assert response.status_code == 204, response.text
    assert response.content == b""
    assert_problem(await get_event(api, event["id"]), 404, "not-found")
    assert_problem(await delete_event(api, actor, event["id"]), 404, "not-found")
    assert ids(await list_events(api)) == []
    assert await db.fetchval("SELECT count(*) FROM event_inventory") == 0


@pytest.mark.parametrize("role", ["organizer", "user"])
async def test_others_may_not_delete(api: Api, role: str) -> None:
    event = await api.event()
    other = await api.user(role)
    assert_problem(await delete_event(api, other, event["id"]), 403, "forbidden")
    assert (await get_event(api, event["id"])).status_code == 200


async def test_anonymous_may_not_delete(api: Api) -> None:
    event = await api.event()
    response = await delete_event(api, None, event["id"])
    assert_problem(response, 401, "unauthorized")
    assert response.headers["www-authenticate"].lower().startswith("bearer")
    assert (await get_event(api, event["id"])).status_code == 200


async def test_delete_unknown_event_is_404(api: Api) -> None:
    admin = await api.user("admin")
    assert_problem(await delete_event(api, admin, str(uuid4())), 404, "not-found")


@pytest.mark.parametrize("event_id", MALFORMED_IDS)
async def test_delete_malformed_id_is_404(api: Api, event_id: str) -> None:
    admin = await api.user("admin")
    assert_problem(await delete_event(api, admin, event_id), 404, "not-found")


async def test_delete_with_confirmed_bookings_is_409_until_they_are_cancelled(api: Api) -> None:
    organizer = await api.user("organizer")
    event = await api.event(organizer, capacity=10)
    fans = [await api.user(), await api.user()]
    first = await api.book(fans[0], event["id"], quantity=2)
    second = await api.book(fans[1], event["id"], quantity=1)
    assert first.status_code == second.status_code == 201
    assert_problem(await delete_event(api, organizer, event["id"]), 409, "event-has-bookings")
    admin = await api.user("admin")
    assert_problem(await delete_event(api, admin, event["id"]), 409, "event-has-bookings")
    assert (await get_event(api, event["id"])).json()["availableSpots"] == 7

    await cancel(api, fans[0], first.json()["id"])
    assert_problem(await delete_event(api, organizer, event["id"]), 409, "event-has-bookings")
    await cancel(api, fans[1], second.json()["id"])
    response = await delete_event(api, organizer, event["id"])
    assert response.status_code == 204, response.text
    assert_problem(await get_event(api, event["id"]), 404, "not-found")
