"""The processed webhook ids on real PostgreSQL (``payment_webhooks``, migration 0004)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from goticket.kit.db import Database
from goticket.payments.repository import PgPaymentsUnitOfWork

NOW = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)


async def remember(database: Database, provider: str, webhook_id: str, at: datetime = NOW) -> bool:
    async with PgPaymentsUnitOfWork(database) as uow:
        first = await uow.webhooks.remember(provider, webhook_id, at)
        await uow.commit()
    return first


async def seen(database: Database, provider: str, webhook_id: str) -> bool:
    async with PgPaymentsUnitOfWork(database, readonly=True) as uow:
        return await uow.webhooks.seen(provider, webhook_id)


async def test_an_id_is_remembered_once_per_provider(
    database: Database, db: asyncpg.Connection[Any]
) -> None:
    assert not await seen(database, "fake", "msg_1")
    assert await remember(database, "fake", "msg_1")
    assert await seen(database, "fake", "msg_1")
    assert not await remember(database, "fake", "msg_1", NOW + timedelta(hours=1))
    # The same id from another provider is another webhook.
    assert not await seen(database, "stripe", "msg_1")
    assert await remember(database, "stripe", "msg_1")
    rows = await db.fetch("SELECT provider, received_at FROM payment_webhooks ORDER BY provider")
    assert [(r["provider"], r["received_at"]) for r in rows] == [("fake", NOW), ("stripe", NOW)]


async def test_an_id_not_committed_is_not_remembered(database: Database) -> None:
    async with PgPaymentsUnitOfWork(database) as uow:
        assert await uow.webhooks.remember("fake", "msg_rolled_back", NOW)
    assert not await seen(database, "fake", "msg_rolled_back")


async def test_concurrent_inserts_of_one_id_let_exactly_one_win(database: Database) -> None:
    results = await asyncio.gather(*(remember(database, "fake", "msg_race") for _ in range(4)))
    assert sorted(results) == [False, False, False, True]


async def test_forget_before_drops_only_older_ids(
    database: Database, db: asyncpg.Connection[Any]
) -> None:
    week = timedelta(days=7)
    await remember(database, "fake", "old", NOW - week - timedelta(seconds=1))
    await remember(database, "fake", "edge", NOW - week)
    await remember(database, "fake", "new", NOW)
    async with PgPaymentsUnitOfWork(database) as uow:
        assert await uow.webhooks.forget_before(NOW - week) == 1
        await uow.commit()
    left = {r["webhook_id"] for r in await db.fetch("SELECT webhook_id FROM payment_webhooks")}
    assert left == {"edge", "new"}
    async with PgPaymentsUnitOfWork(database) as uow:
        assert await uow.webhooks.forget_before(NOW - week) == 0
