"""Helpers for the booking tests: problem assertions, many users at once, the invariant in SQL."""

from __future__ import annotations

import asyncio
from typing import Any, TypeAlias

import asyncpg
import httpx

from goticket.kit.auth import Role
from tests.support import Actor, Api

DB: TypeAlias = "asyncpg.Connection[Any]"
BOOKING_FIELDS = {
    "id",
    "eventId",
    "userId",
    "quantity",
    "status",
    "totalPrice",
    "currency",
    "createdAt",
    "updatedAt",
    # v2: null for an instant booking.
    "expiresAt",
    "payment",
}


def assert_booked(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == BOOKING_FIELDS, body
    assert response.headers["location"] == f"/bookings/{body['id']}"
    return body


async def users(api: Api, count: int, role: Role = Role.USER) -> list[Actor]:
    """``count`` logged-in users, registered concurrently (hashing dominates their cost)."""
    return list(await asyncio.gather(*(api.user(role) for _ in range(count))))


async def available_spots(api: Api, event_id: str) -> int:
    response = await api.http.get(f"/events/{event_id}")
    assert response.status_code == 200, response.text
    spots: int = response.json()["availableSpots"]
    return spots


async def booking_rows(db: asyncpg.Connection[Any], event_id: str | None = None) -> int:
    if event_id is None:
        count = await db.fetchval("SELECT count(*) FROM bookings")
    else:
        count = await db.fetchval("SELECT count(*) FROM bookings WHERE event_id = $1", event_id)
    return int(count)


async def assert_invariant(db: asyncpg.Connection[Any]) -> None:
    """For every event: capacity = available + Σ quantity of its pending and confirmed bookings,
    and a confirmed booking of N has N tickets (issued in its confirming commit); no other
    booking has one that is not void."""
    rows = await db.fetch(
        """SELECT i.event_id, i.capacity, i.available,
                  coalesce(sum(b.quantity) FILTER (WHERE b.status IN ('pending', 'confirmed')), 0)
                      AS booked
           FROM event_inventory i LEFT JOIN bookings b ON b.event_id = i.event_id
           GROUP BY i.event_id, i.capacity, i.available"""
    )
    assert rows, "no inventory rows at all"
    broken = [dict(r) for r in rows if r["capacity"] != r["available"] + r["booked"]]
    assert not broken, f"invariant broken: {broken}"
    wrong_tickets = await db.fetch(
        """SELECT b.id, b.status, b.quantity
           FROM bookings b LEFT JOIN tickets t ON t.booking_id = b.id
           GROUP BY b.id
           HAVING CASE WHEN b.status = 'confirmed'
                       THEN count(t.id) FILTER (WHERE t.status <> 'void') <> b.quantity
                       ELSE count(t.id) FILTER (WHERE t.status <> 'void') <> 0 END"""
    )
    assert not wrong_tickets, f"tickets out of step: {[dict(r) for r in wrong_tickets]}"


async def walk(
    api: Api, actor: Actor, path: str, limit: int, *, max_pages: int = 100
) -> list[list[dict[str, Any]]]:
    """Every page of a cursor-paginated list, following nextCursor to its end."""
    pages: list[list[dict[str, Any]]] = []
    params: dict[str, Any] = {"limit": limit}
    for _ in range(max_pages):
        response = await api.http.get(path, params=params, headers=actor.headers)
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {"items", "nextCursor"}, body
        pages.append(body["items"])
        if body["nextCursor"] is None:
            return pages
        params = {"limit": limit, "cursor": body["nextCursor"]}
    raise AssertionError(f"{path} did not end within {max_pages} pages")
