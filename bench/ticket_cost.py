"""What issuing tickets costs the booking path, inside the hot row's lock: the booking writer's
own insert statement (a batch of instant bookings and the stock, one CTE) timed in a transaction
that holds the event's inventory row, as the engine's batches do, with the tickets trigger of
migration 0004 and without it. Each variant gets a fresh database, migrated to the head.

    PYTHONPATH=src:. python -m bench.ticket_cost [--server URL] [--batch 60] [--rounds 300]

``--server`` is a PostgreSQL server URL (default: the machine's, as the tests use it); a
database is created and dropped per variant. Durability is untouched.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import asyncpg

from goticket.booking.domain import Booking, BookingStatus
from goticket.booking.repository import PgBookingsRepository
from goticket.kit.migrate import upgrade
from testbed.databases import fresh_database

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
VARIANTS = {
    "tickets": "the schema as migrated: a confirmed booking's tickets are inserted by the trigger",
    "no-tickets": "the insert trigger dropped: the booking path as before tickets",
}


async def time_batches(url: str, variant: str, batch: int, rounds: int) -> list[float]:
    conn: asyncpg.Connection[Any] = await asyncpg.connect(url)
    try:
        if variant == "no-tickets":
            await conn.execute("DROP TRIGGER bookings_issue_tickets_on_insert ON bookings")
        user, event = uuid.uuid4(), uuid.uuid4()
        now = datetime.now(UTC)
        await conn.execute(
            "INSERT INTO users VALUES ($1, 'cost@bench.invalid', 'x', NULL, 'user', $2, $2)",
            user,
            now,
        )
        await conn.execute(
            """INSERT INTO events (id, organizer_id, name, start_at, end_at, price, currency,
                                   created_at, updated_at)
               VALUES ($1, $2, 'cost', $3, $4, 100, 'EUR', $3, $3)""",
            event,
            user,
            now + timedelta(days=1),
            now + timedelta(days=2),
        )
        available = 10_000_000
        await conn.execute("INSERT INTO event_inventory VALUES ($1, $2, $2)", event, available)
        repo = PgBookingsRepository(cast(Any, conn))  # a pool's connection, as the writer's
        times = []
        for _ in range(rounds):
            bookings = [
                Booking(
                    uuid.uuid4(),
                    event,
                    user,
                    1,
                    BookingStatus.CONFIRMED,
                    100,
                    "EUR",
                    None,
                    None,
                    now,
                    now,
                    confirmed_at=now,
                )
                for _ in range(batch)
            ]
            available -= batch
            started = time.perf_counter()
            async with conn.transaction():
                await repo.lock_inventory(event)
                assert await repo.add_many(bookings, stock={event: available}) == batch
            times.append(time.perf_counter() - started)
        return times[rounds // 5 :]  # the first fifth warms the caches
    finally:
        await conn.close()


async def main_async(server: str, batch: int, rounds: int, repeat: int) -> None:
    print(f"{batch} instant bookings per transaction, {rounds} transactions per variant")
    for round_ in range(repeat):
        for variant in VARIANTS:
            with fresh_database(server, "goticket_ticket_cost") as url:
                upgrade(url)
                times = await time_batches(url, variant, batch, rounds)
            median, mean = 1000 * statistics.median(times), 1000 * statistics.mean(times)
            print(
                f"  round {round_ + 1} {variant:<10} median {median:5.2f} ms  mean {mean:5.2f} ms"
                f"  ({VARIANTS[variant]})",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ticket_cost", description=__doc__)
    parser.add_argument("--server", default=DEFAULT_SERVER, help="PostgreSQL server URL")
    parser.add_argument("--batch", type=int, default=60, help="bookings per transaction")
    parser.add_argument("--rounds", type=int, default=300, help="transactions per variant")
    parser.add_argument("--repeat", type=int, default=2, help="alternations of the variants")
    args = parser.parse_args()
    asyncio.run(main_async(args.server, args.batch, args.rounds, args.repeat))


if __name__ == "__main__":
    main()
