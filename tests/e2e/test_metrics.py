"""``GET /metrics``: behind the metrics bearer token, Prometheus' text format, and the counts of
what the API just did. The session app is shared, so counters are compared before and after."""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import Message
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from goticket.config import Settings
from goticket.kit.asgi import RequestContext
from goticket.kit.auth import Role
from tests.bookings_support import DB, assert_booked, available_spots
from tests.support import Api, assert_problem, serving

BOOK_ROUTE = "/events/{event_id}/bookings"
Labels = frozenset[tuple[str, str]]


@dataclass(frozen=True)
class Scrape:
    """One exposition, parsed: family types by name, sample values by (name, labels)."""

    types: dict[str, str]
    samples: dict[tuple[str, Labels], float]

    @classmethod
    def parse(cls, text: str) -> Scrape:
        types: dict[str, str] = {}
        samples: dict[tuple[str, Labels], float] = {}
        for family in text_string_to_metric_families(text):
            types[family.name] = family.type
            for sample in family.samples:
                key = (sample.name, frozenset(sample.labels.items()))
                assert key not in samples, f"duplicate series {key}"
                samples[key] = sample.value
        return cls(types, samples)

    def get(self, name: str, **labels: str) -> float:
        """The sample's value; 0 when the series does not exist (yet)."""
        return self.samples.get((name, frozenset(labels.items())), 0.0)

    def series(self, name: str) -> Iterator[tuple[dict[str, str], float]]:
        for (sample, labels), number in self.samples.items():
            if sample == name:
                yield dict(labels), number

    def has(self, name: str, **labels: str) -> bool:
        return (name, frozenset(labels.items())) in self.samples

    def total(self, name: str, **match: str) -> float:
        """The sum over every series of ``name`` whose labels include ``match``."""
        return sum(n for labels, n in self.series(name) if match.items() <= labels.items())


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def scrape(http: httpx.AsyncClient, settings: Settings) -> Scrape:
    response = await http.get("/metrics", headers=bearer(settings.resolved_metrics_token()))
    assert response.status_code == 200, response.text
    return Scrape.parse(response.text)


def delta(before: Scrape, after: Scrape, name: str, **labels: str) -> float:
    return after.get(name, **labels) - before.get(name, **labels)


def requests_of(route: str, method: str, status: int) -> dict[str, str]:
    return {"route": route, "method": method, "status": str(status)}


def content_type_parts(header: str) -> tuple[str, list[tuple[str, str]]]:
    """The media type and its parameters, in order (repeats kept)."""
    message = Message()
    message["content-type"] = header
    params = message.get_params() or []
    media_type, *rest = params
    return media_type[0], [(k.lower(), v) for k, v in rest]


# -------------------------------------------------------------------------------- access


def metrics_leak(response: httpx.Response, token: str) -> list[str]:
    text = response.text
    return [word for word in ("goticket_", "# HELP", "# TYPE", token) if word in text]


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer wrong-token",
        "Bearer ",
        "Bearer",
        "Token {token}",
        "Basic {basic}",
        "{token}",
        "Bearer {token}x",
        "Bearer {token} {token}",
    ],
    ids=[
        "none",
        "wrong",
        "empty",
        "scheme-only",
        "other-scheme",
        "basic",
        "no-scheme",
        "longer",
        "twice",
    ],
)
async def test_metrics_without_the_token_is_a_401_problem(
    api: Api, settings: Settings, authorization: str | None
) -> None:
    token = settings.resolved_metrics_token()
    headers: dict[str, str] = {}
    if authorization is not None:
        basic = base64.b64encode(f"metrics:{token}".encode()).decode()
        headers["Authorization"] = authorization.format(token=token, basic=basic)

    response = await api.http.get("/metrics", headers=headers)

    assert_problem(response, 401, "unauthorized")
    assert response.headers["www-authenticate"].lower().startswith("bearer")
    assert metrics_leak(response, token) == []


async def test_an_api_access_token_does_not_open_the_metrics(api: Api, settings: Settings) -> None:
    admin = await api.user(Role.ADMIN)
    response = await api.http.get("/metrics", headers=admin.headers)
    assert_problem(response, 401, "unauthorized")
    assert metrics_leak(response, settings.resolved_metrics_token()) == []


async def test_the_token_is_generated_once_in_the_data_folder(settings: Settings) -> None:
    if settings.metrics_token is not None:
        pytest.skip("GOTICKET_METRICS_TOKEN is set in this environment")
    token = settings.resolved_metrics_token()
    assert len(token) >= 32
    assert (settings.data_dir / "metrics-token").read_text().strip() == token
    assert (settings.data_dir / "metrics-token").stat().st_mode & 0o077 == 0
    assert settings.resolved_metrics_token() == token


async def test_refused_scrapes_are_counted_as_401(api: Api, settings: Settings) -> None:
    before = await scrape(api.http, settings)
    for _ in range(3):
        assert (await api.http.get("/metrics", headers=bearer("nope"))).status_code == 401
    after = await scrape(api.http, settings)

    name = "goticket_http_requests_total"
    assert delta(before, after, name, **requests_of("/metrics", "GET", 401)) == 3
    assert delta(before, after, name, **requests_of("/metrics", "GET", 200)) == 1  # `before`


# -------------------------------------------------------------------------------- format


async def test_the_exposition_is_prometheus_text(api: Api, settings: Settings) -> None:
    response = await api.http.get("/metrics", headers=bearer(settings.resolved_metrics_token()))

    assert response.status_code == 200, response.text
    media_type, params = content_type_parts(response.headers["content-type"])
    assert media_type == "text/plain"
    assert dict(params).get("version") in ("0.0.4", "1.0.0"), params
    assert dict(params).get("charset", "").lower() == "utf-8", params
    assert response.headers["x-request-id"]
    parsed = Scrape.parse(response.text)
    expected = {
        "goticket_http_requests": "counter",
        "goticket_http_request_duration_seconds": "histogram",
        "goticket_bookings_confirmed": "counter",
        "goticket_spots_sold": "counter",
        "goticket_bookings_rejected": "counter",
        "goticket_engine_batch_size": "histogram",
        "goticket_engine_commit_seconds": "histogram",
        "goticket_engine_queue_depth": "gauge",
        "goticket_engine_sold_out_fast": "counter",
        "goticket_shed": "counter",  # declared even before any shed: no series until then
        "goticket_db_pool_connections": "gauge",
        "goticket_event_available": "gauge",
        "goticket_event_capacity": "gauge",
    }
    assert {name: parsed.types.get(name) for name in expected} == expected


async def test_the_scheme_is_case_insensitive(api: Api, settings: Settings) -> None:
    token = settings.resolved_metrics_token()
    response = await api.http.get("/metrics", headers={"Authorization": f"bearer  {token}"})
    assert response.status_code == 200, response.text


async def test_the_content_type_names_each_parameter_once(api: Api, settings: Settings) -> None:
    response = await api.http.get("/metrics", headers=bearer(settings.resolved_metrics_token()))
    _, params = content_type_parts(response.headers["content-type"])
    names = [name for name, _ in params]
    assert len(names) == len(set(names)), response.headers["content-type"]


async def test_the_pool_and_queue_are_sampled(api: Api, settings: Settings) -> None:
    parsed = await scrape(api.http, settings)

    states = {labels["state"]: n for labels, n in parsed.series("goticket_db_pool_connections")}
    assert set(states) == {"idle", "in_use"}
    assert all(n >= 0 for n in states.values())
    assert 1 <= sum(states.values()) <= settings.db_pool_max  # the pool holds min 2 at start
    (depth,) = [n for _, n in parsed.series("goticket_engine_queue_depth")]
    assert depth >= 0


# -------------------------------------------------------------------------------- what it counts


async def test_the_api_traffic_is_counted(api: Api, settings: Settings, db: DB) -> None:
    organizer = await api.user(Role.ORGANIZER)
    before = await scrape(api.http, settings)

    event = await api.event(organizer, capacity=6)
    fans = []
    for _ in range(3):
        registered = await api.register()
        assert registered.status_code == 201, registered.text
        login = await api.login(registered.json()["email"])
        assert login.status_code == 200, login.text
        fans.append({"Authorization": f"Bearer {login.json()['accessToken']}"})

    async def book(fan: dict[str, str], quantity: int, key: str | None = None) -> httpx.Response:
        headers = dict(fan)
        if key is not None:
            headers["Idempotency-Key"] = key
        return await api.http.post(
            f"/events/{event['id']}/bookings", json={"quantity": quantity}, headers=headers
        )

    # 3 bookings, 4 spots: 2 left.
    for fan, quantity in zip(fans, (1, 2, 1), strict=True):
        assert_booked(await book(fan, quantity))
    # Asking 3 of 2 left is sold out (from the database: a partial sell-out sets no flag).
    assert_problem(await book(fans[0], 3), 409, "sold-out")
    # The last 2 spots, keyed; then the same key again: the replay is not a new booking.
    first = assert_booked(await book(fans[1], 2, key="last-two"))
    assert assert_booked(await book(fans[1], 2, key="last-two")) == first
    # Keyed, so decided by the database, never from memory: sold out with none left.
    assert_problem(await book(fans[2], 1, key="too-late"), 409, "sold-out")
    # A route that does not exist, an event that does not, and a method nobody knows.
    assert (await api.http.get("/no/such/route")).status_code == 404
    assert (await api.http.get(f"/events/{uuid.uuid4()}")).status_code == 404
    assert (await api.http.request("BREW", "/healthz")).status_code in (404, 405)

    after = await scrape(api.http, settings)

    http = "goticket_http_requests_total"
    assert delta(before, after, http, **requests_of("/auth/register", "POST", 201)) == 3
    assert delta(before, after, http, **requests_of("/auth/login", "POST", 200)) == 3
    assert delta(before, after, http, **requests_of("/events", "POST", 201)) == 1
    assert delta(before, after, http, **requests_of(BOOK_ROUTE, "POST", 201)) == 5
    assert delta(before, after, http, **requests_of(BOOK_ROUTE, "POST", 409)) == 2
    assert delta(before, after, http, **requests_of("unmatched", "GET", 404)) == 1
    assert delta(before, after, http, **requests_of("/events/{event_id}", "GET", 404)) == 1
    assert delta(before, after, http, **requests_of("/metrics", "GET", 200)) == 1
    assert after.total(http, method="OTHER") - before.total(http, method="OTHER") == 1
    assert not any(labels["method"] == "BREW" for labels, _ in after.series(http))
    routes = {labels["route"] for labels, _ in after.series(http)}
    assert not [r for r in routes if "/no/" in r or event["id"] in r], "a raw path is a label"

    duration = "goticket_http_request_duration_seconds_count"
    assert delta(before, after, duration, route=BOOK_ROUTE, method="POST") == 7
    assert delta(before, after, duration, route="unmatched", method="GET") == 1

    assert delta(before, after, "goticket_bookings_confirmed_total") == 4
    assert delta(before, after, "goticket_spots_sold_total") == 6
    assert delta(before, after, "goticket_bookings_rejected_total", reason="sold-out") == 2
    assert delta(before, after, "goticket_engine_sold_out_fast_total") == 0
    # One request at a time: each booking request was a transaction of its own.
    assert delta(before, after, "goticket_engine_batch_size_count") == 7
    assert delta(before, after, "goticket_engine_batch_size_sum") == 7
    assert delta(before, after, "goticket_engine_commit_seconds_count") == 7
    assert after.total("goticket_shed_total") == before.total("goticket_shed_total")

    # Stock is read from the database at scrape time.
    stored = await db.fetchrow(
        "SELECT capacity, available FROM event_inventory WHERE event_id = $1",
        uuid.UUID(event["id"]),
    )
    assert stored is not None
    assert (stored["capacity"], stored["available"]) == (6, 0)
    assert after.get("goticket_event_available", event_id=event["id"]) == stored["available"]
    assert after.has("goticket_event_available", event_id=event["id"])
    assert after.get("goticket_event_capacity", event_id=event["id"]) == 6
    assert await available_spots(api, event["id"]) == 0


async def test_stock_lists_the_events_on_sale_and_not_the_ended_ones(
    api: Api, settings: Settings, db: DB
) -> None:
    organizer = await api.user(Role.ORGANIZER)
    now = datetime.now(UTC)
    on_sale = await api.event(organizer, capacity=40)
    under_way = await api.event(
        organizer,
        capacity=7,
        startAt=(now - timedelta(hours=1)).isoformat(),
        endAt=(now + timedelta(hours=1)).isoformat(),
    )
    ended = await api.event(
        organizer,
        capacity=9,
        startAt=(now - timedelta(days=2)).isoformat(),
        endAt=(now - timedelta(days=1)).isoformat(),
    )
    fan = await api.user()
    assert_booked(await api.book(fan, on_sale["id"], quantity=3))

    parsed = await scrape(api.http, settings)

    listed = {labels["event_id"]: n for labels, n in parsed.series("goticket_event_available")}
    capacities = {labels["event_id"]: n for labels, n in parsed.series("goticket_event_capacity")}
    assert listed == {on_sale["id"]: 37, under_way["id"]: 7}
    assert capacities == {on_sale["id"]: 40, under_way["id"]: 7}
    assert ended["id"] not in listed

    # Spots sold behind the app's back (another process) show at the next scrape.
    await db.execute(
        "UPDATE event_inventory SET available = 30 WHERE event_id = $1", uuid.UUID(on_sale["id"])
    )
    again = await scrape(api.http, settings)
    assert again.get("goticket_event_available", event_id=on_sale["id"]) == 30


async def test_a_client_gone_before_its_body_is_not_a_server_error(
    api: Api, app: RequestContext, settings: Settings
) -> None:
    event = await api.event(capacity=2)
    fan = await api.user()
    before = await scrape(api.http, settings)
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    async def send(message: Any) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": f"/events/{event['id']}/bookings",
        "raw_path": f"/events/{event['id']}/bookings".encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"authorization", f"Bearer {fan.token}".encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("goticket.test", 80),
        "state": {},
    }
    await app(scope, receive, send)
    after = await scrape(api.http, settings)

    assert sent == []  # nobody to answer
    name = "goticket_http_requests_total"
    assert delta(before, after, name, **requests_of(BOOK_ROUTE, "POST", 500)) == 0


# -------------------------------------------------------------------------------- an app of its own


@asynccontextmanager
async def own_app(settings: Settings, **overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A second app with other settings, its own metrics registry (so values are absolute)."""
    async with serving(settings.model_copy(update={"db_pool_max": 4, **overrides})) as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://goticket.test") as http:
            yield http


async def test_a_sold_out_event_refused_from_memory_is_counted(
    db: DB, settings: Settings, database_url: str
) -> None:
    async with own_app(settings, sold_out_ttl=60.0, metrics_events=1) as http:
        mine = Api(http, settings, database_url)
        organizer = await mine.user(Role.ORGANIZER)
        soon = await mine.event(
            organizer,
            capacity=1,
            startAt=(datetime.now(UTC) + timedelta(days=1)).isoformat(),
            endAt=(datetime.now(UTC) + timedelta(days=1, hours=2)).isoformat(),
        )
        later = await mine.event(organizer, capacity=5)  # starts in 30 days
        fan = await mine.user()
        assert_booked(await mine.book(fan, soon["id"]))
        assert_problem(await mine.book(fan, soon["id"]), 409, "sold-out")  # sets the flag
        for _ in range(4):
            assert_problem(await mine.book(fan, soon["id"]), 409, "sold-out")  # from memory

        parsed = await scrape(http, settings)

    assert parsed.get("goticket_engine_sold_out_fast_total") == 4
    assert parsed.get("goticket_bookings_rejected_total", reason="sold-out") == 5
    assert parsed.get("goticket_engine_batch_size_count") == 2  # the booking, the first refusal
    assert parsed.get("goticket_bookings_confirmed_total") == 1
    assert parsed.get("goticket_spots_sold_total") == 1
    assert parsed.get("goticket_http_requests_total", **requests_of(BOOK_ROUTE, "POST", 409)) == 5
    # metrics_events=1: only the soonest event on sale is listed.
    assert {labels["event_id"]: n for labels, n in parsed.series("goticket_event_available")} == {
        soon["id"]: 0
    }
    assert later["id"] not in {
        labels["event_id"] for labels, _ in parsed.series("goticket_event_capacity")
    }


async def test_no_stock_is_listed_when_metrics_events_is_zero(api: Api, settings: Settings) -> None:
    await api.event(capacity=3)
    async with own_app(settings, metrics_events=0) as http:
        parsed = await scrape(http, settings)
    assert list(parsed.series("goticket_event_available")) == []
    assert list(parsed.series("goticket_event_capacity")) == []
    assert parsed.types["goticket_event_available"] == "gauge"


async def test_a_configured_token_replaces_the_generated_one(api: Api, settings: Settings) -> None:
    configured = "configured-metrics-token-" + "m" * 20
    async with own_app(settings, metrics_token=SecretStr(configured)) as http:
        generated = settings.resolved_metrics_token()
        refused = await http.get("/metrics", headers=bearer(generated))
        accepted = await http.get("/metrics", headers=bearer(configured))
    assert_problem(refused, 401, "unauthorized")
    assert accepted.status_code == 200, accepted.text
    assert "goticket_http_requests_total" in accepted.text
