"""``goticket``: serve the API, migrate the database, manage users."""

from __future__ import annotations

import asyncio
import json
import math
import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated
from uuid import UUID

import typer
import uvicorn
from pydantic import ValidationError

from goticket.accounts.domain import User
from goticket.app import account_service, signing_from, ticket_keys, ticket_signing, token_codec
from goticket.config import Settings, describe
from goticket.kit.auth import Role
from goticket.kit.clock import SystemClock
from goticket.kit.db import Database
from goticket.kit.embedded import EmbeddedPostgres
from goticket.kit.errors import DomainError
from goticket.kit.logging import configure_logging, get_logger
from goticket.kit.metrics import MULTIPROC_ENV, prepare_multiprocess_dir
from goticket.kit.migrate import upgrade
from goticket.tickets.domain import InvalidTicketCode, PublicKey, b64url, verify_code
from goticket.tickets.keyring import ENV_NAME, KeyRing, KeyRingFile, existing_ring, new_ring
from goticket.tickets.service import TicketSigning
from goticket.tickets.signing import BadKey, public_keys_from_jwks

cli = typer.Typer(
    help="GoTicket: an open ticketing backend that never oversells.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
users = typer.Typer(help="Manage user accounts.", no_args_is_help=True)
cli.add_typer(users, name="users")
tickets = typer.Typer(help="Ticket codes and the keys that sign them.", no_args_is_help=True)
cli.add_typer(tickets, name="tickets")
log = get_logger("goticket.cli")


def load_settings() -> Settings:
    """The settings, or one line on stderr saying which variable is wrong (no traceback)."""
    try:
        return Settings()
    except ValidationError as exc:
        print(f"error: {describe(exc)}", file=sys.stderr)
        raise typer.Exit(2) from None


@contextmanager
def database_url(settings: Settings) -> Iterator[str]:
    """The configured database, else the embedded PostgreSQL in the data folder (started if
    needed, and stopped on exit unless another process still holds it)."""
    if settings.database_url is not None:
        yield settings.database_url.get_secret_value()
        return
    embedded = EmbeddedPostgres(settings.data_dir)
    try:
        yield embedded.start()
    finally:
        embedded.stop()


@cli.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind [GOTICKET_HOST]")] = None,
    port: Annotated[int | None, typer.Option(help="Port to bind [GOTICKET_PORT]")] = None,
    workers: Annotated[
        int | None, typer.Option(help="Worker processes [GOTICKET_WORKERS, default: cores]")
    ] = None,
) -> None:
    """Serve the HTTP API (migrating the database first)."""
    settings = load_settings()
    configure_logging(settings.log_level)
    host = host or settings.host
    port = port if port is not None else settings.port
    workers = workers or settings.workers
    # uvicorn (one worker) re-raises a captured SIGTERM once it has shut down gracefully: with
    # the default action that kills this process (exit -15) before the embedded PostgreSQL is
    # stopped. SIGTERM behaves like SIGINT instead: uvicorn.run returns, the cleanup runs, exit 0.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    settings.resolved_jwt_secret()  # create them once, before the workers race to
    settings.resolved_metrics_token()
    settings.resolved_payment_webhook_secret()
    local_signing(settings)
    if workers > 1:
        # One metrics view for all workers: each writes its samples to files in this folder.
        folder = os.environ.get(MULTIPROC_ENV) or settings.data_dir / f"metrics-{port}"
        prepare_multiprocess_dir(Path(folder).resolve())
    with database_url(settings) as url:
        upgrade(url)
        os.environ["GOTICKET_DATABASE_URL"] = url  # the workers build their app from the env
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104
        base = f"http://{shown}:{port}"
        # One JSON line like every other (a banner of plain text would break log shippers).
        log.info(
            f"GoTicket serving on {base} with {workers} worker(s)",
            url=base,
            workers=workers,
            database="embedded PostgreSQL" if settings.database_url is None else "configured",
            docs=f"{base}/docs",
            openapi=f"{base}/openapi.json",
            metrics=f"{base}/metrics with 'Authorization: Bearer <token>' (GOTICKET_METRICS_TOKEN)",
            metrics_token_file=(
                str(settings.data_dir / "metrics-token") if settings.metrics_token is None else None
            ),
            first_admin=f"{sys.argv[0]} users create --email admin@example.com --role admin",
        )
        uvicorn.run(
            "goticket.app:app_from_env",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            loop="uvloop",
            http="httptools",
            lifespan="on",
            access_log=False,
            log_config=None,
            # uvicorn takes whole seconds and reads 0 as "wait forever": round up, at least 1 s.
            timeout_graceful_shutdown=max(1, math.ceil(settings.shutdown_grace)),
            server_header=False,
        )


@cli.command()
def migrate() -> None:
    """Migrate the database schema to the latest revision."""
    settings = load_settings()
    configure_logging(settings.log_level)
    with database_url(settings) as url:
        upgrade(url)
    print("database schema is current")


@users.command("create")
def create_user(
    email: Annotated[str, typer.Option(help="Login email")],
    password: Annotated[
        str,
        typer.Option(prompt=True, hide_input=True, confirmation_prompt=True, help="8..128 chars"),
    ],
    role: Annotated[Role, typer.Option(help="user, organizer or admin")] = Role.USER,
    name: Annotated[str | None, typer.Option(help="Display name")] = None,
) -> None:
    """Create a user with any role (this is how the first admin is made)."""
    settings = load_settings()
    configure_logging("WARNING")
    with database_url(settings) as url:
        upgrade(url)
        try:
            user = asyncio.run(_create_user(settings, url, email, password, role, name))
        except DomainError as exc:
            print(f"error: {exc.detail}")
            raise typer.Exit(1) from None
    print(f"created {user.role.value} {user.email} ({user.id})")


async def _create_user(
    settings: Settings, url: str, email: str, password: str, role: Role, name: str | None
) -> User:
    database = Database(url, min_size=1, max_size=2)
    await database.open()
    try:
        service = account_service(settings, database, token_codec(settings), SystemClock())
        return await service.register(email, password, name, role)
    finally:
        await database.close()


@contextmanager
def usable_keys() -> Iterator[None]:
    """Unusable signing keys (a bad variable, a key ring file that is broken or cannot be read)
    are one line on stderr, exit 2 (for ``verify``, exit 1 means an invalid code)."""
    try:
        yield
    except (BadKey, OSError) as exc:
        print(f"error: ticket signing keys: {exc}", file=sys.stderr)
        raise typer.Exit(2) from None


def local_signing(settings: Settings) -> TicketSigning:
    """The signing keys this machine serves with (``serve`` makes the key ring if none)."""
    with usable_keys():
        return ticket_signing(settings, SystemClock())


def existing_signing(settings: Settings) -> TicketSigning:
    """The keys of this machine's key ring or variable; none are made here (a ring made from
    the wrong folder would print keys no server uses, and sign codes none accepts)."""
    return signing_from(_local_ring(settings))


@tickets.command("rotate-key")
def rotate_key() -> None:
    """Make a new current signing key in the data folder and print its kid (old keys stay
    published and valid). Running servers sign with it once restarted."""
    settings = load_settings()
    if settings.ticket_signing_key is not None:
        print(
            f"error: {ENV_NAME} is set: rotate by putting a new kid:seed first in it",
            file=sys.stderr,
        )
        raise typer.Exit(1)
    with usable_keys():
        print(KeyRingFile(settings.data_dir).rotate(SystemClock().now()).current.kid)


@tickets.command("new-key")
def new_key() -> None:
    """Print a fresh kid:seed pair for GOTICKET_TICKET_SIGNING_KEY (writes nothing)."""
    key = new_ring(SystemClock().now()).current
    print(f"{key.kid}:{b64url(key.seed())}")


@tickets.command("keys")
def public_keys() -> None:
    """Print the public keys (the JWK Set the API serves at /.well-known/goticket-keys.json)."""
    print(json.dumps({"keys": existing_signing(load_settings()).public_jwks()}, indent=2))


@tickets.command("sign")
def sign(
    ticket: Annotated[UUID, typer.Option(help="Ticket id (tid)")],
    event: Annotated[UUID, typer.Option(help="Event id (eid)")],
) -> None:
    """Print a code for a ticket id and an event id, signed with the current key."""
    print(existing_signing(load_settings()).issue(ticket, event))


@tickets.command("verify")
def verify(
    code: str,
    keys: Annotated[
        Path | None, typer.Option(help="A JWK Set file (default: this machine's key ring)")
    ] = None,
) -> None:
    """Verify a code offline: print its payload (exit 0), or why it is invalid (exit 1).
    Exit 2: no usable keys."""
    published = (
        _keys_file(keys) if keys is not None else dict(_local_ring(load_settings()).public_keys())
    )
    try:
        claims = verify_code(code, published)
    except InvalidTicketCode as exc:
        print(f"invalid: {exc.reason}")
        raise typer.Exit(1) from None
    print(json.dumps(claims.payload, separators=(",", ":")))


def _keys_file(path: Path) -> dict[str, PublicKey]:
    try:
        return dict(public_keys_from_jwks(json.loads(path.read_text())))
    except (OSError, ValueError) as exc:  # BadKey and JSONDecodeError are ValueErrors
        print(f"error: {path}: {exc}", file=sys.stderr)
        raise typer.Exit(2) from None


def _local_ring(settings: Settings) -> KeyRing:
    with usable_keys():
        found = existing_ring(settings.data_dir, ticket_keys(settings))
    if found is None:
        print(
            f"error: no key ring in {settings.data_dir} (goticket serve or goticket tickets "
            "rotate-key makes one; verify also takes --keys)",
            file=sys.stderr,
        )
        raise typer.Exit(2)
    return found


def main() -> None:
    cli()
