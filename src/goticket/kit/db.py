"""The connection pool and the unit of work: the one place a transaction begins and commits."""

from __future__ import annotations

import contextlib
from types import TracebackType
from typing import Any, Self, TypeAlias

import asyncpg
import asyncpg.pool

from goticket.kit.errors import Unavailable
from goticket.kit.logging import get_logger

log = get_logger("goticket.db")

Connection: TypeAlias = "asyncpg.pool.PoolConnectionProxy[asyncpg.Record]"

# Errors after which nobody knows whether the transaction committed, or the database is out of
# reach: the client gets 503 + Retry-After and retries with its idempotency key.
# Errors of a transaction that lost to another one (a lock wait past lock_timeout, a deadlock
# PostgreSQL broke, a serialization failure): rolled back, so the client may simply retry.
CONTENTION_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.exceptions.LockNotAvailableError,
    asyncpg.exceptions.DeadlockDetectedError,
    asyncpg.exceptions.SerializationError,
)
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.OperatorInterventionError,  # admin or crash shutdown, cancelled session
    asyncpg.exceptions.ReadOnlySQLTransactionError,  # a failover left us on a standby
    asyncpg.exceptions.QueryCanceledError,
    # A rotated database password: new connections fail until the service restarts with it.
    asyncpg.exceptions.InvalidAuthorizationSpecificationError,
    ConnectionError,
    TimeoutError,
    OSError,
)


class Database:
    def __init__(
        self,
        dsn: str,
        *,
        min_size: int = 2,
        max_size: int = 16,
        lock_timeout_ms: int = 5000,
        acquire_timeout: float = 10.0,
        command_timeout: float = 30.0,
    ) -> None:
        self._dsn = dsn
        self._min_size = min_size
        self._max_size = max_size
        self._lock_timeout_ms = lock_timeout_ms
        self._acquire_timeout = acquire_timeout
        self._command_timeout = command_timeout
        self._pool: asyncpg.Pool[asyncpg.Record] | None = None

    async def open(self) -> None:
        try:
            self._pool = await self._create_pool(min(self._min_size, self._max_size))
        except CONNECTION_ERRORS as exc:
            # A worker that replaces a dead one while the database is down must still start:
            # a failed startup makes uvicorn stop the whole service. With no connection made
            # up front it answers 503 until the database is back, then connects on demand.
            log.warning(
                "database unreachable at startup; serving 503 until it answers", error=repr(exc)
            )
            self._pool = await self._create_pool(0)

    async def _create_pool(self, min_size: int) -> asyncpg.Pool[asyncpg.Record]:
        return await asyncpg.create_pool(
            self._dsn,
            min_size=min_size,
            max_size=self._max_size,
            # asyncpg's default reset sends "RESET ALL; UNLISTEN *; ..." on every release: a
            # round trip per request. Sessions here never change state (no SET, LISTEN or
            # session advisory locks), and an open transaction is still rolled back by asyncpg.
            reset=_keep_session,
            # A stalled server or network must not hang a request (or a whole engine lane):
            # past this, the query fails and the client gets 503 + Retry-After.
            command_timeout=self._command_timeout,
            server_settings={
                "application_name": "goticket",
                "jit": "off",
                # A transaction never waits forever behind a row lock: it fails, and the
                # client is told to retry (503) or that its duplicate is still in progress (409).
                "lock_timeout": str(self._lock_timeout_ms),
                "idle_in_transaction_session_timeout": "60000",
            },
        )

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    @property
    def pool(self) -> asyncpg.Pool[asyncpg.Record]:
        if self._pool is None:
            raise RuntimeError("the database pool is not open")
        return self._pool

    async def acquire(self) -> Connection:
        try:
            return await self.pool.acquire(timeout=self._acquire_timeout)
        except CONNECTION_ERRORS as exc:
            raise Unavailable("the database is busy or unreachable, retry shortly") from exc

    async def release(self, connection: Connection) -> None:
        await self.pool.release(connection)


async def _keep_session(_: asyncpg.Connection[asyncpg.Record]) -> None:
    return None


class UnitOfWork:
    """``async with SomeUnitOfWork(db) as uow: ...; await uow.commit()``.

    Leaving the block without ``commit()`` rolls back. Repositories are bound to ``uow.connection``.
    ``readonly=True`` reads one snapshot: a ``REPEATABLE READ, READ ONLY`` transaction, so the
    statements of one answer (an event and its counts, a page and its stock) agree with each
    other; it costs the BEGIN and the ROLLBACK round trips, and nothing can be written in it.
    """

    def __init__(
        self, database: Database, *, readonly: bool = False, autocommit: bool = False
    ) -> None:
        self._database = database
        self._readonly = readonly
        # Each statement its own transaction (no BEGIN/COMMIT round trips): for a use case whose
        # one write is one statement, e.g. a conditional UPDATE that decides by itself.
        self._autocommit = autocommit
        self._connection: Connection | None = None
        self._transaction: Any = None
        self._committed = False

    @property
    def connection(self) -> Connection:
        assert self._connection is not None, "use the unit of work in an 'async with' block"
        return self._connection

    async def __aenter__(self) -> Self:
        self._connection = await self._database.acquire()
        if self._autocommit:
            return self
        try:
            self._transaction = (
                self._connection.transaction(isolation="repeatable_read", readonly=True)
                if self._readonly
                else self._connection.transaction()
            )
            await self._transaction.start()
        except BaseException as exc:
            await self._database.release(self._connection)
            self._connection = None
            if isinstance(exc, CONNECTION_ERRORS):
                raise Unavailable("the database connection was lost, retry shortly") from exc
            raise
        return self

    async def commit(self) -> None:
        if self._autocommit:
            self._committed = True  # each statement committed as it ran
            return
        if self._readonly:
            # Nothing to keep (the snapshot ends with a ROLLBACK): a commit here is a bug, as
            # the unit-test fakes say too.
            raise RuntimeError("commit() in a read-only unit of work")
        try:
            await self._transaction.commit()
        except Exception as exc:
            # Whatever failed, the COMMIT may or may not have reached the disk: the honest
            # answer is "unknown", and nobody may decide these requests again in its place.
            self._committed = True  # nothing left to roll back on this connection
            raise Unavailable(
                "the outcome is unknown; retry with the same Idempotency-Key"
            ) from exc
        self._committed = True

    async def rollback(self) -> None:
        if self._autocommit:
            raise RuntimeError("an autocommit unit of work has nothing to roll back")
        if not self._committed:
            self._committed = True
            await self._transaction.rollback()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        connection = self._connection
        self._connection = None
        if connection is None:
            return
        try:
            if not self._committed and not self._autocommit:
                # The server rolls back by itself a transaction whose connection died. Even
                # asking is_closed() fails then: the pool has already detached a lost connection.
                with contextlib.suppress(*CONNECTION_ERRORS):
                    if not connection.is_closed():
                        await self._transaction.rollback()
        finally:
            await self._release(connection)
        # A standby answers reads, so a write refused inside a read-only unit of work is our
        # bug (a 500), not a failover (a 503 with Retry-After).
        refused_write = self._readonly and isinstance(
            exc, asyncpg.exceptions.ReadOnlySQLTransactionError
        )
        if isinstance(exc, CONNECTION_ERRORS) and not refused_write:
            raise Unavailable("the database connection was lost, retry shortly") from exc
        if isinstance(exc, CONTENTION_ERRORS):
            # Rolled back, nothing written: another transaction held what this one needed.
            raise Unavailable("this is contended right now; retry shortly") from exc

    async def _release(self, connection: Connection) -> None:
        # Once a COMMIT went through, nothing may turn the outcome into an error: a caller that
        # saw one could decide the same requests again. A connection the pool cannot reset is
        # replaced by the pool; the unit of work's own outcome stands.
        try:
            await self._database.release(connection)
        except Exception:
            log.warning("could not return a connection to the pool", exc_info=True)
