"""Keyed booking load for the fault tests: a few asyncio clients book one spot each, in a loop,
each request with an Idempotency-Key of its own, and every outcome is recorded with its times.
Afterwards every key is retried until it settles, and the database is checked against them."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field

import httpx
import psycopg

CLIENTS = 4
PAUSE_S = 0.05  # between one client's requests: a modest rate, not a benchmark
REQUEST_TIMEOUT_S = 20.0  # far past any bound asserted: a hang shows as a slow answer
SETTLE_TRIES = 20


@dataclass(frozen=True)
class Outcome:
    key: str
    started: float  # time.monotonic()
    finished: float
    status: int | None  # None: no HTTP answer (the connection failed)
    retry_after: str | None
    booking_id: str | None
    error: str | None = None

    @property
    def latency(self) -> float:
        return self.finished - self.started


@dataclass
class BookingLoad:
    base_url: str
    event_id: str
    headers: dict[str, str]
    outcomes: list[Outcome] = field(default_factory=list)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def book(self, http: httpx.AsyncClient, key: str) -> Outcome:
        started = time.monotonic()
        try:
            response = await http.post(
                f"/events/{self.event_id}/bookings",
                json={"quantity": 1},
                headers={**self.headers, "Idempotency-Key": key},
            )
        except httpx.HTTPError as exc:
            return Outcome(key, started, time.monotonic(), None, None, None, repr(exc))
        booking_id = response.json().get("id") if response.status_code == 201 else None
        return Outcome(
            key,
            started,
            time.monotonic(),
            response.status_code,
            response.headers.get("Retry-After"),
            booking_id,
            None if response.status_code in (201, 503) else response.text,
        )

    async def _client(self) -> None:
        async with httpx.AsyncClient(base_url=self.base_url, timeout=REQUEST_TIMEOUT_S) as http:
            while not self._stop.is_set():
                self.outcomes.append(await self.book(http, f"fault-{uuid.uuid4()}"))
                await asyncio.sleep(PAUSE_S)

    def start(self) -> list[asyncio.Task[None]]:
        return [asyncio.create_task(self._client()) for _ in range(CLIENTS)]

    async def stop(self, tasks: list[asyncio.Task[None]]) -> None:
        self._stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), REQUEST_TIMEOUT_S + 5)

    async def settle(self) -> dict[str, str]:
        """Retry every key once more (an acknowledged one must answer the same booking) and the
        unanswered ones until they book: each key's booking id."""
        settled: dict[str, str] = {}
        async with httpx.AsyncClient(base_url=self.base_url, timeout=REQUEST_TIMEOUT_S) as http:
            for key in dict.fromkeys(outcome.key for outcome in self.outcomes):
                for _ in range(SETTLE_TRIES):
                    retried = await self.book(http, key)
                    if retried.status == 201 and retried.booking_id is not None:
                        settled[key] = retried.booking_id
                        break
                    assert retried.status in (None, 503), retried
                    await asyncio.sleep(0.2)
                else:
                    raise AssertionError(f"key {key} never settled")
        return settled


async def settle_and_check(load: BookingLoad, url: str) -> None:
    """Every key retried until it settles; then every acknowledged booking is in the database,
    each key booked exactly once, and the inventory invariant holds: capacity = available +
    Σ quantity of confirmed bookings."""
    settled = await load.settle()
    event_id = load.event_id
    for outcome in load.outcomes:
        if outcome.status == 201:
            assert settled[outcome.key] == outcome.booking_id, outcome
    with psycopg.connect(url, connect_timeout=10) as connection:
        rows = connection.execute(
            "SELECT idempotency_key, id::text, quantity, status FROM bookings WHERE event_id = %s",
            (event_id,),
        ).fetchall()
        capacity, available = connection.execute(
            "SELECT capacity, available FROM event_inventory WHERE event_id = %s",
            (event_id,),
        ).fetchone() or (None, None)
    by_key = {key: booking_id for key, booking_id, _, _ in rows}
    assert len(by_key) == len(rows), "a key booked twice"
    assert by_key == settled
    assert all(status == "confirmed" for *_, status in rows)
    assert capacity == available + sum(quantity for _, _, quantity, _ in rows)
