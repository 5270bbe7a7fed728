"""The served OpenAPI document is the contract: schemathesis generates requests from it (valid and
invalid) against the in-process app and checks every answer against it.

Checks: never a 5xx; every status code, content type, header and body is documented. Requests
carry a real admin's access token (issued by ``POST /auth/login``), so the authenticated
operations run past authentication.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import httpx
import hypothesis
import psycopg
import pytest
import schemathesis
from schemathesis import checks as st_checks

from goticket.accounts.repository import PgAccountsUnitOfWork
from goticket.accounts.security import Argon2Hasher
from goticket.accounts.service import AccountService
from goticket.app import create_app
from goticket.config import Settings
from goticket.kit.auth import Role
from goticket.kit.clock import SystemClock
from goticket.kit.db import Database
from goticket.kit.tokens import TokenCodec
from tests.support import PASSWORD, event_body

ADMIN_EMAIL = "contract-admin@example.com"

# Every built-in check but two, which judge what JSON Schema cannot express:
# - positive_data_acceptance expects every schema-valid request to succeed, but some are refused
#   by rules that span fields or need state (endAt after startAt, maxPerUser <= capacity, a cursor
#   the server issued, ids that exist), and the contract wants 422/404 for those;
# - allow_header_conformance judges the `Allow` header of Litestar's automatic OPTIONS answer,
#   which is not part of the contract (405 answers do list every method; that is checked).
CHECKS = [
    st_checks.not_a_server_error,
    st_checks.status_code_conformance,
    st_checks.content_type_conformance,
    st_checks.response_headers_conformance,
    st_checks.response_schema_conformance,
    st_checks.negative_data_rejection,
    st_checks.missing_required_header,
    st_checks.unsupported_method,
    st_checks.use_after_free,
    st_checks.ensure_resource_availability,
    st_checks.ignored_auth,
]


async def _create_admin(settings: Settings, database_url: str) -> None:
    database = Database(database_url, min_size=1, max_size=1)
    await database.open()
    try:
        await AccountService(
            partial(PgAccountsUnitOfWork, database),
            Argon2Hasher(
                time_cost=settings.argon2_time_cost,
                memory_kib=settings.argon2_memory_kib,
                parallelism=settings.argon2_parallelism,
            ),
            TokenCodec(settings.resolved_jwt_secret(), issuer="i", audience="a", ttl_seconds=60),
            SystemClock(),
        ).register(ADMIN_EMAIL, PASSWORD, "Contract Admin", Role.ADMIN)
    finally:
        await database.close()


def _run(coroutine: Any) -> Any:
    """Run a coroutine on a loop of its own, away from the test session's loop."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result(timeout=60)


def _served_document() -> dict[str, Any]:
    """``GET /openapi.json`` as the app serves it. Schemathesis generates its tests when pytest
    collects them, before any fixture runs, so this app never opens its (unused) database; the
    fixture below checks that the app under test serves the very same document."""
    app = create_app(
        Settings(
            database_url="postgresql://127.0.0.1:1/unused",  # type: ignore[arg-type]
            jwt_secret="collection-only-" + "x" * 40,  # type: ignore[arg-type]
        )
    )

    async def fetch() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://goticket.test") as http:
            return await http.get("/openapi.json")

    response: httpx.Response = _run(fetch())
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()
    return document


class AppUnderTest:
    """The ASGI app schemathesis calls. Its tests are generated when pytest collects them,
    before any fixture runs, so this stands in for the app until the ``admin_token`` fixture
    builds the real one (on the test database). Schemathesis runs it, lifespan included, on an
    event loop of its own."""

    def __init__(self) -> None:
        self.target: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self.target is None:
            raise RuntimeError("the admin_token fixture has not installed the app under test")
        await self.target(scope, receive, send)


APP = AppUnderTest()


class Seed:
    """The data every workflow scenario starts from: the admin and one event, kept as copies."""

    database_url = ""
    event_id = ""

    def remember(self, database_url: str, event_id: str) -> None:
        self.database_url, self.event_id = database_url, event_id
        with psycopg.connect(database_url, autocommit=True) as connection:
            connection.execute("DROP TABLE IF EXISTS seed_event, seed_inventory")
            connection.execute(
                "CREATE TABLE seed_event AS SELECT * FROM events WHERE id = %s", (event_id,)
            )
            connection.execute(
                "CREATE TABLE seed_inventory AS SELECT * FROM event_inventory WHERE event_id = %s",
                (event_id,),
            )


SEED = Seed()
DOCUMENT = _served_document()
schema = schemathesis.openapi.from_dict(copy.deepcopy(DOCUMENT))  # it adds the links it infers
schema.app = APP  # as from_asgi does: every call (checks' probes too) goes to the app in-process
# No values mined from the application's source: with them, any new string literal anywhere in
# src/ changed what the derandomized state machine drew, and a draw that depends on a true-random
# UUID then failed as FlakyStrategyDefinition. Generation now depends on the document alone.
schema.config.analysis.constants.enabled = False


# Requests made in the coverage phase are generated while pytest collects the test, before any
# fixture has logged the admin in: they carry this stand-in, which the test swaps for the token.
PENDING_TOKEN = "admin-token-pending"


@schema.auth(refresh_interval=None)
class AdminToken:
    """Schemathesis applies it to every generated request, except where it means to test a
    missing or broken credential. The ``admin_token`` fixture logs the admin in."""

    token: str | None = None

    def get(self, case: Any, context: Any) -> str:
        return AdminToken.token or PENDING_TOKEN

    def set(self, case: Any, data: str, context: Any) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


@pytest.fixture(scope="module")
def admin_token(settings: Settings, database_url: str) -> Iterator[str]:
    """Installs the app under test, and logs an admin in through it."""
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute("TRUNCATE bookings, event_inventory, events, users CASCADE")
    _run(_create_admin(settings, database_url))
    APP.target = create_app(settings)
    try:
        served = schemathesis.openapi.from_asgi("/openapi.json", APP)
        assert served.raw_schema == DOCUMENT, "the app under test serves another document"
        login = (
            schema["/auth/login"]["POST"]
            .Case(body={"email": ADMIN_EMAIL, "password": PASSWORD})
            .call()
        )
        assert login.status_code == 200, login.text
        token: str = login.json()["accessToken"]
        headers = {"Authorization": f"Bearer {token}"}
        # Something to list, read and book, so that not every generated request ends in a 404.
        created = (
            schema["/events"]["POST"]
            .Case(body=event_body(capacity=1000))
            .call(headers=dict(headers))
        )
        assert created.status_code == 201, created.text
        SEED.remember(database_url, created.json()["id"])
        AdminToken.token = token
        yield token
    finally:
        AdminToken.token = None
        from schemathesis.python import asgi

        asgi.shutdown_lifespans()  # close the app's pool before the session drops the database
        APP.target = None


@schema.parametrize()
@hypothesis.settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(hypothesis.HealthCheck),
)
@pytest.mark.usefixtures("admin_token")
def test_api_honours_its_openapi_document(case: Any) -> None:
    if case.headers and case.headers.get("Authorization") == f"Bearer {PENDING_TOKEN}":
        case.headers["Authorization"] = f"Bearer {AdminToken.token}"
    case.call_and_validate(checks=CHECKS)


class ContractWorkflow(schema.as_state_machine()):  # type: ignore[misc]
    """Sequences of calls that follow the links schemathesis infers from the document (create an
    event, read it, replace it, book it, cancel the booking, delete the event, ...), each answer
    checked like the single calls above."""

    def setup(self) -> None:
        """Every scenario starts from the same data: Hypothesis replays a scenario's draws and
        must get the same answers (a replayed register would otherwise meet its own email)."""
        with psycopg.connect(SEED.database_url, autocommit=True) as connection:
            for statement in (
                "DELETE FROM bookings",
                "DELETE FROM events WHERE id <> %(event)s",
                "UPDATE users SET role = 'admin' WHERE lower(email) = lower(%(admin)s)",
                "DELETE FROM users WHERE lower(email) <> lower(%(admin)s)",
                "UPDATE events SET (name, description, venue, start_at, end_at, price, currency,"
                " max_per_user, created_at, updated_at) = (SELECT name, description, venue,"
                " start_at, end_at, price, currency, max_per_user, created_at, updated_at"
                " FROM seed_event) WHERE id = %(event)s",
                "UPDATE event_inventory SET (capacity, available) = (SELECT capacity, available"
                " FROM seed_inventory) WHERE event_id = %(event)s",
            ):
                connection.execute(statement, {"event": SEED.event_id, "admin": ADMIN_EMAIL})

    def validate_response(
        self, response: Any, case: Any, additional_checks: Any = None, **kwargs: Any
    ) -> None:
        case.validate_response(response, checks=CHECKS, transport_kwargs=kwargs or None)


@pytest.mark.usefixtures("admin_token")
class TestContractWorkflow(ContractWorkflow.TestCase):  # type: ignore[name-defined,misc]
    settings = hypothesis.settings(
        max_examples=25,
        stateful_step_count=8,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(hypothesis.HealthCheck),
    )
