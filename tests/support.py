"""Test helpers: factories with keyword overrides that go through the real HTTP path."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx

from goticket.app import account_service, create_app, token_codec
from goticket.config import Settings
from goticket.kit.asgi import RequestContext
from goticket.kit.auth import Role
from goticket.kit.clock import SystemClock
from goticket.kit.db import Database

_counter = itertools.count(1)


@asynccontextmanager
async def serving(settings: Settings, **options: Any) -> AsyncIterator[RequestContext]:
    """``create_app(settings, **options)`` with its lifespan running, like one worker process.

    The lifespan must be entered and left in one task (anyio's rule), and fixture setup and
    teardown may run in different ones: a task of its own holds it open.
    """
    application = create_app(settings, **options)
    started, stop = asyncio.Event(), asyncio.Event()

    async def run_lifespan() -> None:
        async with application.lifespan():
            started.set()
            await stop.wait()

    task = asyncio.create_task(run_lifespan())
    await asyncio.wait({task, asyncio.create_task(started.wait())}, return_when="FIRST_COMPLETED")
    if task.done():
        task.result()
    try:
        yield application
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


PASSWORD = "correct horse battery"


@dataclass(frozen=True)
class Actor:
    id: UUID
    email: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


# An event's members as v1 reads them.
_V1_EVENT_MEMBERS = (
    "id organizerId name description venue startAt endAt price currency capacity maxPerUser"
    " availableSpots createdAt updatedAt"
)
V1_EVENT_FIELDS = set(_V1_EVENT_MEMBERS.split())
# Every event has these v2 members, with their defaults when not set (instant, 600).
ALWAYS_V2_EVENT_FIELDS = {"checkout", "holdSeconds"}
# An event without the optional v2 fields (salesStartAt, ...) has just these.
EVENT_FIELDS = V1_EVENT_FIELDS | ALWAYS_V2_EVENT_FIELDS


def event_body(**overrides: Any) -> dict[str, Any]:
    start = datetime.now(UTC) + timedelta(days=30)
    body: dict[str, Any] = {
        "name": "Flash Sale Live",
        "startAt": start.isoformat(),
        "endAt": (start + timedelta(hours=3)).isoformat(),
        "price": 2500,
        "capacity": 100,
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not ...}


class Api:
    """Drives the service over HTTP the way a client would."""

    def __init__(self, client: httpx.AsyncClient, settings: Settings, database_url: str) -> None:
        self.http = client
        self._settings = settings
        self._database_url = database_url

    async def register(self, email: str | None = None, **extra: Any) -> httpx.Response:
        email = email or f"user{next(_counter)}@example.com"
        return await self.http.post(
            "/auth/register", json={"email": email, "password": PASSWORD, **extra}
        )

    async def login(self, email: str, password: str = PASSWORD) -> httpx.Response:
        return await self.http.post("/auth/login", json={"email": email, "password": password})

    async def user(self, role: Role | str = Role.USER, email: str | None = None) -> Actor:
        """A logged-in user with ``role``; admins are made the way the CLI makes them."""
        role = Role(role)
        email = email or f"{role.value}{next(_counter)}@example.com"
        if role is Role.ADMIN:
            await self._create_admin(email)
        else:
            response = await self.register(email)
            assert response.status_code == 201, response.text
            if role is not Role.USER:
                admin = await self.user(Role.ADMIN)
                user_id = response.json()["id"]
                promoted = await self.http.put(
                    f"/users/{user_id}/role", json={"role": role.value}, headers=admin.headers
                )
                assert promoted.status_code == 200, promoted.text
        login = await self.login(email)
        assert login.status_code == 200, login.text
        me = await self.http.get(
            "/auth/me", headers={"Authorization": f"Bearer {login.json()['accessToken']}"}
        )
        return Actor(UUID(me.json()["id"]), email, login.json()["accessToken"])

    async def _create_admin(self, email: str) -> None:
        s = self._settings
        database = Database(self._database_url, min_size=1, max_size=1)
        await database.open()
        try:
            service = account_service(s, database, token_codec(s), SystemClock())
            await service.register(email, PASSWORD, "Admin", Role.ADMIN)
        finally:
            await database.close()

    async def event(self, organizer: Actor | None = None, **overrides: Any) -> dict[str, Any]:
        organizer = organizer or await self.user(Role.ORGANIZER)
        response = await self.http.post(
            "/events", json=event_body(**overrides), headers=organizer.headers
        )
        assert response.status_code == 201, response.text
        data: dict[str, Any] = response.json()
        return data

    async def book(
        self,
        actor: Actor,
        event_id: str,
        quantity: int | None = 1,
        key: str | None = None,
    ) -> httpx.Response:
        headers = dict(actor.headers)
        if key is not None:
            headers["Idempotency-Key"] = key
        body = {} if quantity is None else {"quantity": quantity}
        return await self.http.post(f"/events/{event_id}/bookings", json=body, headers=headers)


PROBLEM_JSON = "application/problem+json"


def assert_problem(response: httpx.Response, status: int, name: str) -> dict[str, Any]:
    """``response`` is an RFC 9457 problem with ``status`` whose type URI ends in ``name``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON), response.headers
    body: dict[str, Any] = response.json()
    assert body["status"] == status, body
    assert body["type"].startswith("https://"), body
    assert body["type"].endswith("/" + name), body
    assert isinstance(body["title"], str), body
    assert body["title"], body
    return body


def error_fields(body: dict[str, Any]) -> set[str]:
    return {error["field"] for error in body.get("errors", [])}
