"""SQL for the payments context's table: the processed webhook ids (``payment_webhooks``)."""

from __future__ import annotations

from datetime import datetime
from typing import Self

from goticket.kit.db import Connection, UnitOfWork


class PgProcessedWebhooks:
    def __init__(self, connection: Connection) -> None:
        self._conn = connection

    async def seen(self, provider: str, webhook_id: str) -> bool:
        found = await self._conn.fetchval(
            "SELECT true FROM payment_webhooks WHERE provider = $1 AND webhook_id = $2",
            provider,
            webhook_id,
        )
        return bool(found)

    async def remember(self, provider: str, webhook_id: str, at: datetime) -> bool:
        inserted = await self._conn.fetchval(
            """INSERT INTO payment_webhooks (provider, webhook_id, received_at)
               VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING true""",
            provider,
            webhook_id,
            at,
        )
        return bool(inserted)

    async def forget_before(self, before: datetime) -> int:
        status = await self._conn.execute(
            "DELETE FROM payment_webhooks WHERE received_at < $1", before
        )
        return int(status.split()[-1])


class PgPaymentsUnitOfWork(UnitOfWork):
    webhooks: PgProcessedWebhooks

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        self.webhooks = PgProcessedWebhooks(self.connection)
        return self
