"""One of two workers is killed with SIGKILL while bookings keep arriving: uvicorn's supervisor
starts a replacement, and no booking is lost or made twice."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import psutil
import pytest

from testbed.cluster import PrivateCluster
from testbed.processes import wait_until
from tests.faults.conftest import Service, logged, report, status_of
from tests.faults.load import CLIENTS, BookingLoad, settle_and_check

REPLACEMENT_BOUND_S = 5.0


def clients_of(pid: int, port: int) -> list[object]:
    return [
        connection
        for connection in psutil.Process(pid).net_connections(kind="tcp")
        if connection.laddr and connection.laddr.port == port and connection.raddr
    ]


async def test_a_killed_worker_is_replaced_and_no_booking_is_lost(
    service: Service, capsys: pytest.CaptureFixture[str]
) -> None:
    server = service.server
    workers = server.started_workers()
    assert len(workers) == 2
    load = BookingLoad(server.base_url, service.event_id, service.fan)
    async with asyncio.timeout(60):
        tasks = load.start()
        await asyncio.sleep(1.5)
        assert any(outcome.status == 201 for outcome in load.outcomes), load.outcomes
        # The worker that serves the most of the clients' connections: the kill must hit some.
        victim = max(workers, key=lambda pid: len(clients_of(pid, server.port)))
        held = len(clients_of(victim, server.port))
        assert held > 0

        os.kill(victim, signal.SIGKILL)
        killed = time.monotonic()
        while not (server.started_workers() - workers):
            assert time.monotonic() - killed < REPLACEMENT_BOUND_S, server.log_tail()
            await asyncio.sleep(0.05)
        (replacement,) = server.started_workers() - workers
        await asyncio.sleep(1.5)  # bookings go on with the replacement serving
        await load.stop(tasks)

    replaced = max(when for when, record in logged(service, "worker started")) - killed
    assert replaced < REPLACEMENT_BOUND_S
    assert psutil.pid_exists(replacement)
    assert replacement in {child.pid for child in server.children()}
    assert not psutil.pid_exists(victim) or psutil.Process(victim).status() == "zombie"
    assert status_of(server.base_url, "/healthz") == 200

    # A client whose keep-alive connection (or request in flight) was on the dead worker gets
    # no answer, once per client at most on each side of the kill; nothing else fails.
    unanswered = [o for o in load.outcomes if o.status is None]
    assert len(unanswered) <= 2 * CLIENTS, unanswered
    assert {o.status for o in load.outcomes} <= {201, 503, None}
    assert all(o.status == 201 for o in load.outcomes if o.started > killed + replaced), [
        o for o in load.outcomes if o.started > killed + replaced and o.status != 201
    ]

    await settle_and_check(load, service.database_url)
    report(
        capsys,
        "worker killed",
        f"replacement worker started {replaced * 1000:.0f} ms after"
        f" SIGKILL of a worker holding {held} client connections;"
        f" {len(unanswered)} of {len(load.outcomes)} requests unanswered"
        f" ({sum(o.status == 503 for o in load.outcomes)} 503), all settled by keyed retry",
    )


def test_a_worker_that_dies_while_the_database_is_down_is_replaced(
    service: Service, cluster: PrivateCluster
) -> None:
    """The replacement starts with no database to open its pool on: it must still serve (503s
    until the database is back), not fail its startup, which makes uvicorn stop the service."""
    server = service.server
    workers = server.started_workers()
    cluster.stop("fast")
    os.kill(min(workers), signal.SIGKILL)
    killed = time.monotonic()
    wait_until(
        lambda: bool(server.started_workers() - workers) or server.process.poll() is not None,
        REPLACEMENT_BOUND_S,
        "a replacement worker",
    )
    assert server.process.poll() is None, server.log_tail()
    assert status_of(server.base_url, "/readyz") == 503
    cluster.start()
    wait_until(
        lambda: status_of(server.base_url, "/readyz") == 200,
        REPLACEMENT_BOUND_S,
        "ready again",
    )
    assert time.monotonic() - killed < 3 * REPLACEMENT_BOUND_S
