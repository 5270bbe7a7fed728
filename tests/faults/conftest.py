"""The fault suite: real ``goticket serve`` processes on a private PostgreSQL cluster that the
tests stop, start and break at will. Every test is marked ``fault`` and bounded by a hard alarm,
and whatever it started (server, workers, cluster) is stopped on teardown even when it failed."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
import pytest

from testbed.cluster import PrivateCluster
from tests.e2e.test_process import (
    PASSWORD,
    Served,
    create_user,
    environment,
    event_body,
    login,
)

HARD_LIMIT_S = 90  # a fault test that runs longer is stuck: it fails, and teardown still runs
CAPACITY = 100_000
ENGINE_DEADLINE_S = 3  # the longest a booking may wait in the engine before its 503


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.path).parents:
            item.add_marker(pytest.mark.fault)
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def hard_time_limit() -> Iterator[None]:
    def expire(signum: int, frame: FrameType | None) -> None:
        raise TimeoutError(f"fault test still running after {HARD_LIMIT_S} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(HARD_LIMIT_S)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def cluster() -> Iterator[PrivateCluster]:
    private = PrivateCluster()
    try:
        private.start()
        yield private
    finally:
        private.destroy()


@dataclass(frozen=True)
class Service:
    server: Served
    database_url: str
    event_id: str
    fan: dict[str, str]  # the Authorization header of the user who books


@pytest.fixture
def service(cluster: PrivateCluster, tmp_path: Path) -> Iterator[Service]:
    """``goticket serve --workers 2`` on the private cluster, with one event on sale and a fan."""
    env = environment(
        database_url=cluster.url,
        data_dir=str(tmp_path / "data"),
        jwt_secret="fault-test-" + "s" * 40,
        engine_deadline=str(ENGINE_DEADLINE_S),
    )
    with Served(env, tmp_path, workers=2) as server:
        server.wait_for_workers(2)
        create_user("org@example.com", "organizer", env=env, cwd=tmp_path)
        event = server.http.post(
            "/events",
            json=event_body(CAPACITY),
            headers=login(server.http, "org@example.com"),
        )
        assert event.status_code == 201, event.text
        registered = server.http.post(
            "/auth/register", json={"email": "fan@example.com", "password": PASSWORD}
        )
        assert registered.status_code == 201, registered.text
        yield Service(
            server, cluster.url, event.json()["id"], login(server.http, "fan@example.com")
        )


def status_of(base_url: str, path: str) -> int | None:
    try:
        return httpx.get(base_url + path, timeout=5.0).status_code
    except httpx.HTTPError:
        return None


def logged(service: Service, event: str) -> list[tuple[float, dict[str, Any]]]:
    """The server's log records of ``event``, by when they were written on this test's
    ``time.monotonic()`` clock (what the load's outcomes are timed with)."""
    offset = time.monotonic() - time.time()
    return [
        (datetime.fromisoformat(record["timestamp"]).timestamp() + offset, record)
        for record in service.server.log_records()
        if record.get("event") == event
    ]


def report(capsys: pytest.CaptureFixture[str], fault: str, measured: str) -> None:
    """The figures of a fault test, shown even without ``-s`` (docs/operations.md quotes them)."""
    with capsys.disabled():
        print(f"\n[fault: {fault}] {measured}")
