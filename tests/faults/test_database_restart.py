"""PostgreSQL stops (``pg_ctl stop -m fast``) and starts again while bookings keep arriving."""

from __future__ import annotations

import asyncio
import time

import pytest

from goticket.kit.db import Database
from goticket.kit.errors import Unavailable
from testbed.cluster import PrivateCluster
from testbed.processes import wait_until
from tests.faults.conftest import ENGINE_DEADLINE_S, Service, logged, report, status_of
from tests.faults.load import BookingLoad, settle_and_check

OUTAGE_S = 3.0
RECOVERY_BOUND_S = 5.0
MARGIN_S = 1.5  # scheduling noise on a shared 2-core machine


async def test_bookings_survive_a_database_restart(
    service: Service, cluster: PrivateCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    base_url = service.server.base_url
    load = BookingLoad(base_url, service.event_id, service.fan)
    async with asyncio.timeout(60):
        tasks = load.start()
        await asyncio.sleep(1.5)
        assert any(outcome.status == 201 for outcome in load.outcomes), load.outcomes

        await asyncio.to_thread(cluster.stop, "fast")
        down = time.monotonic()
        await asyncio.sleep(0.5)
        readiness = await asyncio.to_thread(status_of, base_url, "/readyz")
        await asyncio.sleep(OUTAGE_S - 0.5)
        outage_ends = time.monotonic()
        await asyncio.to_thread(cluster.start)
        up = time.monotonic()

        while not any(o.status == 201 and o.started >= up for o in load.outcomes):
            assert time.monotonic() - up < RECOVERY_BOUND_S + MARGIN_S, load.outcomes[-5:]
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)
        await load.stop(tasks)

    # During the outage: every answer a quick 503 with Retry-After; never a 500, never a hang.
    assert readiness == 503
    during = [o for o in load.outcomes if o.started >= down and o.finished <= outage_ends]
    assert during, "no request was made while the database was down"
    assert all(o.status == 503 and o.retry_after for o in during), during
    assert {o.status for o in load.outcomes} <= {201, 503}, [
        o for o in load.outcomes if o.status not in (201, 503)
    ]
    worst = max(o.latency for o in load.outcomes)
    assert worst < ENGINE_DEADLINE_S + MARGIN_S, worst

    # Back within the bound, without a restart of the service.
    first_booked = min(o.finished for o in load.outcomes if o.status == 201 and o.started >= up)
    assert first_booked - up < RECOVERY_BOUND_S
    assert service.server.process.poll() is None
    assert status_of(base_url, "/readyz") == 200
    # Each worker's LISTEN connection (the read cache's invalidations) is back too.
    wait_until(
        lambda: len(logged(service, "listening")) >= 4,
        up + RECOVERY_BOUND_S - time.monotonic(),
        "LISTEN",
    )
    relistened = max(when for when, _ in logged(service, "listening")) - up

    await settle_and_check(load, service.database_url)
    report(
        capsys,
        "database restart",
        f"{len(during)} requests during a {OUTAGE_S:.0f} s outage,"
        f" all 503; worst 503 latency {max(o.latency for o in during) * 1000:.0f} ms;"
        f" first 201 {(first_booked - up) * 1000:.0f} ms after PostgreSQL was back;"
        f" both LISTEN connections back {relistened * 1000:.0f} ms after;"
        f" {sum(o.status == 503 for o in load.outcomes)} 503s settled by retry",
    )


async def test_a_pool_opened_while_the_database_is_down_connects_once_it_is_back(
    cluster: PrivateCluster,
) -> None:
    cluster.stop("fast")
    database = Database(cluster.url, acquire_timeout=2.0)
    await database.open()  # a worker started now (a replacement) must not fail its startup
    try:
        with pytest.raises(Unavailable):
            await database.acquire()
        cluster.start()
        connection = await database.acquire()
        try:
            assert await connection.fetchval("SELECT 1") == 1
        finally:
            await database.release(connection)
    finally:
        await database.close()
