"""Liveness and readiness."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Response, get

from goticket.kit.db import CONNECTION_ERRORS, Database
from goticket.kit.errors import Unavailable
from goticket.kit.problems import problem_reply


class Health(msgspec.Struct):
    status: str


def health_handlers(database: Database, schema_head: str) -> list[Any]:
    @get("/healthz", tags=["operations"])
    async def healthz() -> Health:
        """200 while the process runs."""
        return Health("ok")

    @get("/readyz", tags=["operations"], responses={})
    async def readyz() -> Response[Health] | Response[bytes]:
        """200 when the database answers and its schema is current, else 503."""
        try:
            connection = await database.acquire()
            try:
                current = await connection.fetchval("SELECT version_num FROM alembic_version")
            finally:
                await database.release(connection)
        except Unavailable:
            return _not_ready("the database does not answer")
        except CONNECTION_ERRORS:
            return _not_ready("the database does not answer")
        except Exception:  # noqa: BLE001 -- e.g. no alembic_version table yet: not ready
            current = None
        if current != schema_head:
            return _not_ready("the database schema is not current")
        return Response(Health("ready"))

    return [healthz, readyz]


def _not_ready(detail: str) -> Response[bytes]:
    return problem_reply(503, detail, headers={"Retry-After": "1"}).response()
