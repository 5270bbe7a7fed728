"""``POST /events/{id}/checkins`` runs on a plain ASGI handler (``CheckInAnswer.fast_route``):
every answer must be the one the framework route gives. The same script of scans runs on two
twin doors, one through the whole app (the fast route) and one through the framework alone, and
the answers are compared step by step."""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from goticket.kit.auth import Role
from tests.support import Api
from tests.tickets_support import Door

UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
TIME_RE = re.compile(r"\d{4}-\d\d-\d\dT[0-9:.]+(Z|[+-]\d\d:\d\d)")
CODE_RE = re.compile(r"GT1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


def shape(response: httpx.Response) -> tuple[Any, ...]:
    """What a client sees, with ids, times and codes (which differ between the twins) named."""
    text = TIME_RE.sub("<time>", UUID_RE.sub("<id>", CODE_RE.sub("<code>", response.text)))
    headers = {
        name: UUID_RE.sub("<id>", value)
        for name, value in response.headers.items()
        if name not in ("date", "x-request-id", "content-length")
    }
    return response.status_code, headers, text


Post = Callable[[str, bytes, dict[str, str]], Awaitable[httpx.Response]]


async def script(api: Api, post: Post) -> list[tuple[Any, ...]]:
    """Every kind of answer of the route, in order, on a door of its own."""
    door = await Door.open(api)
    other = await Door.open(api)
    fan, stranger = await api.user(), await api.user(Role.ORGANIZER)
    first, second = await door.codes(fan, 2)
    (foreign,) = await other.codes(fan)
    void_booking = await door.book(fan)
    (to_void,) = [t["code"] for t in await door.tickets(fan, void_booking["id"])]
    json = {"Content-Type": "application/json", **door.organizer.headers}
    plain = door.id.replace("-", "")

    def body(code: str) -> bytes:
        return ('{"code": "' + code + '"}').encode()

    answers = [
        await post(door.id, body(first), json),  # 200
        await post(door.id, body(first), json),  # 409 already-checked-in
        await post(door.id, body("GT1.nope.nope"), json),  # 422 invalid-ticket
        await post(door.id, body(foreign), json),  # 422 wrong-event
        await post(door.id, b"{}", json),  # 422: no code
        await post(door.id, b'{"code": "x", "extra": 1}', json),  # 422: unknown field
        await post(door.id, b'{"code": ', json),  # 400
        await post(door.id, body(second), {**json, "Content-Type": "text/plain"}),  # 415
        await post(door.id, body(second), {"Content-Type": "application/json"}),  # 401
        await post(
            door.id, body(second), {"Content-Type": "application/json", **stranger.headers}
        ),  # 403
        await post(str(uuid.uuid4()), body(second), json),  # 404
        await post(plain, body(second), json),  # another spelling: the framework route anyway
    ]
    cancelled = await api.http.post(f"/bookings/{void_booking['id']}/cancel", headers=fan.headers)
    assert cancelled.status_code == 200, cancelled.text
    answers.append(await post(door.id, body(to_void), json))  # 409 ticket-void
    return [shape(a) for a in answers]


async def test_the_fast_route_answers_every_scan_as_the_framework_does(
    api: Api, framework_only: httpx.AsyncClient
) -> None:
    def via(http: httpx.AsyncClient) -> Post:
        async def post(event: str, content: bytes, headers: dict[str, str]) -> httpx.Response:
            return await http.post(f"/events/{event}/checkins", content=content, headers=headers)

        return post

    fast = await script(api, via(api.http))
    framework = await script(api, via(framework_only))
    statuses = [answer[0] for answer in fast]
    assert statuses == [200, 409, 422, 422, 422, 422, 400, 415, 401, 403, 404, 200, 409]
    assert fast == framework


async def test_the_fast_route_takes_only_the_canonical_scan(api: Api) -> None:
    """The plain route claims POST on the canonical path only; the sync next to it and other
    methods stay the framework's."""
    door = await Door.open(api)
    sync = await api.http.post(
        f"/events/{door.id}/checkins/sync", json={"scans": []}, headers=door.organizer.headers
    )
    assert sync.status_code == 422, sync.text
    get = await api.http.get(f"/events/{door.id}/checkins", headers=door.organizer.headers)
    assert get.status_code == 405, get.text
