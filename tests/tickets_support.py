"""Helpers for the tickets tests: a booked event, its tickets, check-ins."""

from __future__ import annotations

from typing import Any

import httpx

from goticket.kit.auth import Role
from tests.support import Actor, Api


class Door:
    """An event with its organizer, as the door sees it."""

    def __init__(self, api: Api, organizer: Actor, event: dict[str, Any]) -> None:
        self.api = api
        self.organizer = organizer
        self.event = event

    @classmethod
    async def open(cls, api: Api, **event: Any) -> Door:
        organizer = await api.user(Role.ORGANIZER)
        return cls(api, organizer, await api.event(organizer, **event))

    @property
    def id(self) -> str:
        return str(self.event["id"])

    async def book(self, fan: Actor, quantity: int = 1) -> dict[str, Any]:
        response = await self.api.book(fan, self.id, quantity)
        assert response.status_code == 201, response.text
        booking: dict[str, Any] = response.json()
        return booking

    async def tickets(self, actor: Actor, booking_id: str) -> list[dict[str, Any]]:
        response = await self.api.http.get(f"/bookings/{booking_id}/tickets", headers=actor.headers)
        assert response.status_code == 200, response.text
        assert set(response.json()) == {"items"}
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    async def codes(self, fan: Actor, quantity: int = 1) -> list[str]:
        booking = await self.book(fan, quantity)
        return [t["code"] for t in await self.tickets(fan, booking["id"])]

    async def check_in(self, code: str, actor: Actor | None = None) -> httpx.Response:
        return await self.api.http.post(
            f"/events/{self.id}/checkins",
            json={"code": code},
            headers=(actor or self.organizer).headers,
        )

    async def sync(
        self, scans: list[tuple[str, str]], actor: Actor | None = None
    ) -> httpx.Response:
        return await self.api.http.post(
            f"/events/{self.id}/checkins/sync",
            json={"scans": [{"code": code, "scannedAt": at} for code, at in scans]},
            headers=(actor or self.organizer).headers,
        )

    async def sales(self, actor: Actor | None = None) -> httpx.Response:
        return await self.api.http.get(
            f"/events/{self.id}/sales", headers=(actor or self.organizer).headers
        )
