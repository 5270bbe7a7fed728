"""``POST /events/{id}/bookings`` runs on a plain ASGI handler (``BookingAnswer.fast_route``): every
answer must be the one the framework route gives. Each case runs twice, once through the fast
handler and once through the framework alone, on twin events, and the answers are compared."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, cast

import httpx
import pytest

from goticket.kit.asgi import RequestContext
from tests.support import Actor, Api

TOKEN = "Bearer {token}"
UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
TIME_RE = re.compile(r"\d{4}-\d\d-\d\dT[0-9:.]+(Z|[+-]\d\d:\d\d)")


def _shape(response: httpx.Response, names: dict[str, str]) -> tuple[Any, ...]:
    """What a client sees, with ids and times (which differ between the twin events) named."""
    text = response.text
    for real, alias in names.items():
        text = text.replace(real, alias)
    text = TIME_RE.sub("<time>", UUID_RE.sub("<id>", text))
    headers = {
        name: UUID_RE.sub("<id>", value)
        for name, value in response.headers.items()
        if name not in ("date", "x-request-id", "content-length")
    }
    return response.status_code, headers, text


Case = Callable[[httpx.AsyncClient, str, Actor], Any]


def _post(
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    *,
    auth: bool = True,
    path: str = "/events/{event}/bookings",
    spell: Callable[[str], str] = str,
) -> Case:
    async def run(http: httpx.AsyncClient, event: str, actor: Actor) -> httpx.Response:
        sent = dict(headers or {})
        if auth:
            sent.setdefault("Authorization", TOKEN.format(token=actor.token))
        return await http.post(path.format(event=spell(event)), content=body, headers=sent)

    return run


def _raw(headers: Callable[[str], list[tuple[str, str | bytes]]]) -> Case:
    """Headers as sent, repeats and raw bytes included (the caller's token filled in)."""

    async def run(http: httpx.AsyncClient, event: str, actor: Actor) -> httpx.Response:
        sent = [(name, value) for name, value in headers(actor.token)]
        return await http.post(
            f"/events/{event}/bookings",
            content=b'{"quantity": 1}',
            headers=cast(list[tuple[str, str]], sent),
        )

    return run


JSON = {"Content-Type": "application/json"}
CASES: dict[str, list[Case]] = {
    "book one": [_post(b'{"quantity": 1}', JSON)],
    "book with no body": [_post()],
    "book with an empty object": [_post(b"{}", JSON)],
    "no token": [_post(b'{"quantity": 1}', JSON, auth=False)],
    "bad token": [_post(b"{}", {**JSON, "Authorization": "Bearer nope"})],
    "basic auth": [_post(b"{}", {**JSON, "Authorization": "Basic dXNlcjpwYXNz"})],
    "text body": [_post(b"quantity=1", {"Content-Type": "text/plain"})],
    "body without content type": [_post(b'{"quantity": 1}')],
    "broken json": [_post(b'{"quantity": ', JSON)],
    "json array": [_post(b"[1, 2]", JSON)],
    "quantity zero and unknown field": [_post(b'{"quantity": 0, "seat": "A1"}', JSON)],
    "quantity as a string": [_post(b'{"quantity": "2"}', JSON)],
    "NUL in a string": [_post(b'{"quantity": 1, "x": "a\\u0000"}', JSON)],
    "too large": [_post(b'{"quantity": 1, "pad": "' + b"x" * 70_000 + b'"}', JSON)],
    "bad idempotency key": [_post(b"{}", {**JSON, "Idempotency-Key": "tab\tkey"})],
    "empty idempotency key": [_post(b"{}", {**JSON, "Idempotency-Key": ""})],
    "keyed, then replayed, then reused": [
        _post(b'{"quantity": 2}', {**JSON, "Idempotency-Key": "k-1"}),
        _post(b'{"quantity": 2}', {**JSON, "Idempotency-Key": "k-1"}),
        _post(b'{"quantity": 3}', {**JSON, "Idempotency-Key": "k-1"}),
    ],
    "over the per-user limit": [
        _post(b'{"quantity": 4}', JSON),
        _post(b'{"quantity": 1}', JSON),
    ],
    "sold out": [_post(b'{"quantity": 4}', JSON)] * 3 + [_post(b'{"quantity": 1}', JSON)] * 2,
    "unknown event": [_post(b"{}", JSON, path="/events/00000000-0000-4000-8000-000000000000/x")],
    "no such event": [
        _post(b"{}", JSON, path="/events/00000000-0000-4000-8000-000000000000/bookings")
    ],
    "not a uuid": [_post(b"{}", JSON, path="/events/not-a-uuid/bookings")],
    # Other spellings of an id go through the framework's route on both sides: one answer.
    "id without hyphens": [_post(b"{}", JSON, spell=lambda e: e.replace("-", ""))],
    "upper-case id": [_post(b"{}", JSON, spell=str.upper)],
    "trailing slash": [_post(b"{}", JSON, path="/events/{event}/bookings/")],
    "two idempotency keys": [
        _raw(
            lambda token: [
                ("Authorization", f"Bearer {token}"),
                ("Content-Type", "application/json"),
                ("Idempotency-Key", "a"),
                ("Idempotency-Key", "b"),
            ]
        )
    ],
    "two content types": [
        _raw(
            lambda token: [
                ("Authorization", f"Bearer {token}"),
                ("Content-Type", "application/json"),
                ("Content-Type", "text/plain"),
            ]
        )
    ],
    "bad then good authorization": [
        _raw(
            lambda token: [
                ("Authorization", "Bearer nope"),
                ("Authorization", f"Bearer {token}"),
                ("Content-Type", "application/json"),
            ]
        )
    ],
    "good then bad authorization": [
        _raw(
            lambda token: [
                ("Authorization", f"Bearer {token}"),
                ("Authorization", "Bearer nope"),
                ("Content-Type", "application/json"),
            ]
        )
    ],
    "latin-1 idempotency key": [
        _raw(
            lambda token: [
                ("Authorization", f"Bearer {token}"),
                ("Content-Type", "application/json"),
                ("Idempotency-Key", "caf\xe9".encode("latin-1")),
            ]
        )
    ],
    "charset and upper-case media type": [
        _raw(
            lambda token: [
                ("Authorization", f"Bearer {token}"),
                ("Content-Type", "Application/JSON; charset=utf-8"),
            ]
        )
    ],
}


@pytest.mark.parametrize("name", list(CASES))
async def test_fast_handler_answers_like_the_framework(
    name: str, api: Api, framework_only: httpx.AsyncClient
) -> None:
    organizer = await api.user("organizer")
    answers = []
    for http in (api.http, framework_only):
        actor = await api.user()
        event = await api.event(organizer, capacity=10, maxPerUser=4)
        names = {event["id"]: "<event>", str(actor.id): "<user>"}
        shapes = [_shape(await case(http, event["id"], actor), names) for case in CASES[name]]
        answers.append(shapes)
    fast, framework = answers
    assert fast == framework


async def test_the_fast_handler_takes_only_its_route(app: RequestContext, api: Api) -> None:
    """It serves POST on the booking path, and records the route template for logs/metrics."""
    event = await api.event()
    actor = await api.user()
    booked = await api.book(actor, event["id"])
    assert booked.status_code == 201, booked.text
    assert booked.headers["location"] == f"/bookings/{booked.json()['id']}"
    listed = await api.http.get(f"/events/{event['id']}/bookings", headers=actor.headers)
    assert listed.status_code == 403  # GET is the framework's list route, for the organizer
    head = await api.http.request("PUT", f"/events/{event['id']}/bookings", headers=actor.headers)
    assert head.status_code == 405


async def test_every_spelling_of_an_id_books_alike(api: Api) -> None:
    """The canonical form takes the fast handler, the others the framework's route: both call
    the one ``BookingAnswer``, so the answers differ in nothing but the new ids."""
    organizer = await api.user("organizer")
    shapes = []
    for spell in (str, lambda e: e.replace("-", ""), str.upper):
        actor = await api.user()
        event = await api.event(organizer, capacity=10)
        response = await _post(b'{"quantity": 2}', JSON, spell=spell)(api.http, event["id"], actor)
        assert response.status_code == 201, response.text
        shapes.append(_shape(response, {event["id"]: "<event>", str(actor.id): "<user>"}))
    assert shapes[0] == shapes[1] == shapes[2]
