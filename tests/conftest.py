"""Shared fixtures: one real PostgreSQL database per test session, migrated with the real
migrations; every test that touches it starts from empty tables."""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from goticket.config import Settings
from goticket.kit.asgi import RequestContext
from goticket.kit.db import Database
from goticket.kit.embedded import EmbeddedPostgres
from goticket.kit.migrate import upgrade
from testbed.databases import fresh_database
from tests.support import Api, serving

TABLES = "bookings, event_inventory, events, users, payment_webhooks"


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    """The machine's PostgreSQL when GOTICKET_TEST_DATABASE_URL is set, else an embedded one."""
    configured = os.environ.get("GOTICKET_TEST_DATABASE_URL")
    if configured:
        yield configured
        return
    # Short path: the embedded server's Unix socket must fit in 107 bytes.
    data_dir = Path(tempfile.mkdtemp(prefix="gtt-"))
    embedded = EmbeddedPostgres(data_dir)
    try:
        yield embedded.start()
    finally:
        embedded.stop()


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Settings as on a bare machine: no GOTICKET_* variable and no .env file may leak in; the
    data folder a fresh one (returned, not yet created)."""
    for name in list(os.environ):
        if name.startswith("GOTICKET_"):
            monkeypatch.delenv(name)
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    return tmp_path / "data"


@pytest.fixture(scope="session")
def database_url(server_url: str) -> Iterator[str]:
    """A fresh database for this session, created and migrated, dropped afterwards."""
    with fresh_database(server_url, "goticket_test") as url:
        upgrade(url)
        yield url


@pytest.fixture(scope="session")
def settings(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        database_url=database_url,  # type: ignore[arg-type]
        jwt_secret="test-secret-" + "x" * 40,  # type: ignore[arg-type]
        data_dir=tmp_path_factory.mktemp("data"),
        db_pool_max=20,
        lock_timeout_ms=5000,
        # Reads exact at once: tests check availableSpots right after a booking. The read cache's
        # bound is tested on an app of its own (tests/e2e/test_read_cache.py).
        read_cache_max_age=0,
        # Cheap Argon2 parameters: the tests exercise hashing, not its cost.
        argon2_time_cost=1,
        argon2_memory_kib=256,
        argon2_parallelism=1,
    )


@pytest.fixture(scope="session")
async def app(settings: Settings) -> AsyncIterator[RequestContext]:
    async with serving(settings) as application:
        yield application


async def _empty_tables(connection: asyncpg.Connection[Any]) -> None:
    """TRUNCATE, retried when it deadlocks with a read cache's refresh still running from a test.

    The session apps keep refreshing their read caches in the background: a refresh reads events,
    then inventory, in one transaction, while TRUNCATE locks the tables in its own order, so the
    two can deadlock and PostgreSQL aborts one of them (CI saw it abort the TRUNCATE once).
    """
    for attempt in range(5):
        try:
            await connection.execute(f"TRUNCATE {TABLES} CASCADE")
            return
        except asyncpg.DeadlockDetectedError:
            if attempt == 4:
                raise
            await asyncio.sleep(0.05 * (attempt + 1))


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection[Any]]:
    """A direct connection for assertions; the tables are emptied before each test."""
    connection: asyncpg.Connection[Any] = await asyncpg.connect(database_url)
    try:
        await _empty_tables(connection)
        yield connection
    finally:
        await connection.close()


@pytest.fixture
async def database(database_url: str, db: asyncpg.Connection[Any]) -> AsyncIterator[Database]:
    """A small pool on the emptied test database, for repository and service tests."""
    pool = Database(database_url, min_size=1, max_size=4)
    await pool.open()
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
async def client(
    app: RequestContext, db: asyncpg.Connection[Any]
) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://goticket.test") as http:
        yield http


@pytest.fixture
def api(client: httpx.AsyncClient, settings: Settings, database_url: str) -> Api:
    return Api(client, settings, database_url)


# ------------------------------------------------- the reservation engine on and off, side by side


@pytest.fixture(scope="session")
async def app_engine_off(settings: Settings) -> AsyncIterator[RequestContext]:
    """The same app as ``app`` with ``GOTICKET_ENGINE=off``: one transaction per request."""
    async with serving(settings.model_copy(update={"engine": "off"})) as application:
        yield application


@pytest.fixture
def engine_mode(request: pytest.FixtureRequest) -> str:
    """``"on"`` unless a test asks otherwise, e.g. for both modes:
    ``@pytest.mark.parametrize("engine_mode", ["on", "off"], indirect=True)``."""
    mode: str = getattr(request, "param", "on")
    assert mode in ("on", "off"), mode
    return mode


@pytest.fixture
def app_in_mode(engine_mode: str, request: pytest.FixtureRequest) -> RequestContext:
    """The session app for ``engine_mode``; the engine-off one starts only if a test needs it."""
    application: RequestContext = request.getfixturevalue(
        "app" if engine_mode == "on" else "app_engine_off"
    )
    return application


@pytest.fixture
async def api_in_mode(
    app_in_mode: RequestContext, db: asyncpg.Connection[Any], settings: Settings, database_url: str
) -> AsyncIterator[Api]:
    """Like ``api``, against the app of ``engine_mode``."""
    transport = httpx.ASGITransport(app=app_in_mode)
    async with httpx.AsyncClient(transport=transport, base_url="http://goticket.test") as http:
        yield Api(http, settings, database_url)


@pytest.fixture
async def framework_only(app: RequestContext) -> AsyncIterator[httpx.AsyncClient]:
    """The same running app without its plain ASGI routes: every request goes to Litestar (the
    fast-path tests compare the two answer for answer)."""
    plain = RequestContext(app.litestar)
    transport = httpx.ASGITransport(app=plain)
    async with httpx.AsyncClient(transport=transport, base_url="http://goticket.test") as http:
        yield http
