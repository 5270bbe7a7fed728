"""The read cache across two real worker processes: an edit, a booking and a deletion are seen by
every worker within the 1 s bound, also while their LISTEN connections are being killed."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from testbed.processes import wait_until
from tests.e2e.test_process import (
    HTTP_TIMEOUT,
    PASSWORD,
    Served,
    environment,
    event_body,
    fresh_database,
    login,
    run_cli,
    workdir,
)

pytestmark = pytest.mark.slow
__all__ = ["workdir"]  # a fixture of test_process, used here too

SERVER = {"jwt_secret": "process-test-" + "r" * 40, "db_pool_min": "1", "db_pool_max": "4"}
LISTENERS = (
    "FROM pg_stat_activity"
    " WHERE datname = current_database() AND application_name = 'goticket-listen'"
)
BOUND = 1.0  # GOTICKET_READ_CACHE_MAX_AGE's default, which the server runs with here
WATCH = BOUND + 0.6  # how long each change is watched: past the bound, on both workers


@dataclass(frozen=True)
class Seen:
    sent: float  # time.monotonic() when the request left (the server sees it later)
    worker: str  # the X-Request-ID prefix: random per worker process
    status: int
    body: dict[str, Any]


def read(base_url: str, path: str) -> Seen:
    # A fresh connection each time: the kernel spreads them over both workers.
    with httpx.Client(base_url=base_url, timeout=HTTP_TIMEOUT) as http:
        sent = time.monotonic()
        response = http.get(path)
    return Seen(sent, response.headers["x-request-id"][:16], response.status_code, response.json())


def watch(base_url: str, path: str, seconds: float = WATCH) -> list[Seen]:
    seen: list[Seen] = []
    deadline = time.monotonic() + seconds
    with ThreadPoolExecutor(max_workers=6) as pool:
        while time.monotonic() < deadline:
            seen += pool.map(lambda _: read(base_url, path), range(6))
    return seen


def assert_current_after_the_bound(
    seen: list[Seen], changed_at: float, current: Callable[[Seen], bool], what: str
) -> None:
    """Every read sent once the change was older than the bound shows it, on both workers."""
    late = [s for s in seen if s.sent >= changed_at + BOUND]
    assert len({s.worker for s in late}) == 2, f"{what}: not both workers answered after the bound"
    stale = [s for s in late if not current(s)]
    assert not stale, f"{what}: stale {len(stale)} of {len(late)} after {BOUND} s: {stale[:3]}"


def seen_everywhere(
    change: httpx.Response, status: int, server: Served, path: str, current: Callable[[Seen], bool]
) -> None:
    """``change`` succeeded; from the bound on, both workers show it at ``path``."""
    assert change.status_code == status, change.text
    changed_at = time.monotonic()
    seen = watch(server.base_url, path)
    what = f"{change.request.method} {change.request.url.path}"
    assert_current_after_the_bound(seen, changed_at, current, what)


def warm(base_url: str, path: str) -> None:
    """Both workers hold the path in their cache."""
    for _ in range(50):
        if len({s.worker for s in watch(base_url, path, 0.2)}) == 2:
            return
    raise AssertionError("the reads never reached both workers")


def test_changes_reach_every_worker_within_the_bound(server_url: str, workdir: Path) -> None:
    with fresh_database(server_url) as url:
        env = environment(database_url=url, data_dir=str(workdir / "data"), **SERVER)
        created = run_cli(
            "users", "create", "--email", "org@example.com", "--password", PASSWORD,
            "--role", "organizer", env=env, cwd=workdir,
        )  # fmt: skip
        assert created.returncode == 0, created.stdout + created.stderr
        with Served(env, workdir, workers=2) as server:
            server.wait_for_workers(2)
            organizer = login(server.http, "org@example.com")
            body = event_body(capacity=10)
            event = server.http.post("/events", json=body, headers=organizer)
            assert event.status_code == 201, event.text
            path = f"/events/{event.json()['id']}"
            registered = server.http.post(
                "/auth/register", json={"email": "fan@example.com", "password": PASSWORD}
            )
            assert registered.status_code == 201, registered.text
            fan = login(server.http, "fan@example.com")
            warm(server.base_url, path)

            # An edit: the notification carries it (the bound would too).
            edited = server.http.put(path, json={**body, "name": "Edited"}, headers=organizer)
            seen_everywhere(edited, 200, server, path, lambda s: s.body["name"] == "Edited")

            # A booking sends no notification: the age bound alone makes it visible.
            booked = server.http.post(f"{path}/bookings", json={"quantity": 3}, headers=fan)
            seen_everywhere(booked, 201, server, path, lambda s: s.body["availableSpots"] == 7)

            # Kill both workers' LISTEN connections, then edit at once: nothing stale may
            # outlive the bound while they reconnect, and they do reconnect.
            with psycopg.connect(url, autocommit=True, connect_timeout=10) as admin:
                killed = admin.execute(f"SELECT count(pg_terminate_backend(pid)) {LISTENERS}")
                assert killed.fetchone() == (2,)
                edited = server.http.put(path, json={**body, "name": "Again"}, headers=organizer)
                seen_everywhere(edited, 200, server, path, lambda s: s.body["name"] == "Again")
                wait_until(
                    lambda: admin.execute(f"SELECT count(*) {LISTENERS}").fetchone() == (2,),
                    10,
                    "both workers to listen again",
                )

            # A deletion, once they listen again.
            cancelled = server.http.post(f"/bookings/{booked.json()['id']}/cancel", headers=fan)
            assert cancelled.status_code == 200, cancelled.text
            deleted = server.http.delete(path, headers=organizer)
            seen_everywhere(deleted, 204, server, path, lambda s: s.status == 404)
            assert server.terminate() == 0, server.log
