"""The run's database and what it holds before any load: users, their tokens, the events."""

from __future__ import annotations

import contextlib
import secrets
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from argon2 import PasswordHasher

from bench import BenchFailure
from bench.options import BOOKS, READS, Kind, Mode, Options
from goticket.config import Settings
from goticket.kit.auth import Principal, Role
from goticket.kit.embedded import EmbeddedPostgres
from goticket.kit.migrate import upgrade
from goticket.kit.tokens import TokenCodec
from testbed.databases import fresh_database

HOT_CAPACITY = 10_000_000  # the schema's upper bound: never sells out within a run
SPREAD_CAPACITY = 1_000_000
HOLD_SECONDS = 3600  # the schema's longest hold: none of the holds scenario's expires in a run
PRICE = 4_500
LIST_PATH = "/events?limit=20"


@dataclass
class Database:
    """The benchmark's database: a fresh one inside the embedded server, or the configured one."""

    url: str
    pgdata: Path | None  # the embedded server's data folder (None: configured server)

    def connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.url, autocommit=True, connect_timeout=10)


@contextlib.contextmanager
def open_database(options: Options) -> Iterator[Database]:
    configured = Settings().database_url
    if configured is not None:
        url = configured.get_secret_value()
        upgrade(url)
        yield Database(url, None)
        return
    socket_path = (options.data_dir / "pg16").resolve() / ".s.PGSQL.5432"
    if len(str(socket_path).encode()) > 107:
        raise BenchFailure(f"--data-dir too long for a Unix socket path: {socket_path}")
    embedded = EmbeddedPostgres(options.data_dir)
    server_url = embedded.start()
    try:
        with fresh_database(server_url, "goticket_bench", keep=options.keep_db) as url:
            upgrade(url)
            if options.keep_db:
                print(f"the database stays afterwards (--keep-db): {url}")
            yield Database(url, embedded.pgdata)
    finally:
        embedded.stop()


@dataclass(frozen=True)
class EventSet:
    warmup: uuid.UUID
    hot: uuid.UUID
    storm: uuid.UUID
    spread: tuple[uuid.UUID, ...]
    sold_out: uuid.UUID
    holds: uuid.UUID  # checkout "payment": every booking is a hold
    expiry: uuid.UUID  # checkout "payment": the mass expiry's holds, seeded in SQL
    checkin: uuid.UUID  # the tickets scanned at the door

    def of(self, kind: Kind) -> tuple[uuid.UUID, ...]:
        """The events a scenario books (or reads, or checks in)."""
        if kind == "warmup":
            return (self.warmup,)
        if kind in ("hot", "expiry"):  # the mass expiry's load books the hot event
            return (self.hot,)
        if kind == "holds":
            return (self.holds,)
        if kind == "checkin":
            return (self.checkin,)
        if kind == "storm":
            return (self.storm,)
        if kind == "refuse":
            return (self.sold_out,)
        return self.spread

    def targets(self, kind: Kind) -> list[str]:
        """The lines of a scenario's wrk input: event ids to book, or paths to GET."""
        if kind == "healthz":
            return ["/healthz"]
        if kind == "list":
            return [LIST_PATH]
        if kind == "read":
            return [f"/events/{event}" for event in self.spread]
        return [str(event) for event in self.of(kind)]


def write_targets(events: EventSet, folder: Path, mode: Mode) -> dict[Kind, Path]:
    """Every scenario's but the check-in's (its codes are signed when its turn comes)."""
    files: dict[Kind, Path] = {}
    for kind in (*BOOKS, *READS):
        files[kind] = folder / f"targets-{mode}-{kind}.txt"
        files[kind].write_text("\n".join(events.targets(kind)) + "\n")
    return files


def create_users(
    db: Database, count: int, prefix: str = "bench"
) -> tuple[uuid.UUID, list[uuid.UUID]]:
    """``count`` users (emails ``<prefix>-NNNNNN@...``) and the organizer, written straight into
    the table. Nobody logs in: the tokens are minted here, so one Argon2 hash of a throwaway
    password serves them all."""
    password_hash = PasswordHasher().hash(secrets.token_urlsafe(16))
    now = datetime.now(UTC)
    emails = [f"{prefix}-{i:06d}@bench.goticket.invalid" for i in range(count)]
    organizer = "bench-organizer@bench.goticket.invalid"
    with db.connect() as conn:
        conn.execute(
            """INSERT INTO users (id, email, password_hash, name, role, created_at, updated_at)
               SELECT gen_random_uuid(), u.email, %(hash)s, NULL, u.role, %(now)s, %(now)s
               FROM unnest(%(emails)s::text[], %(roles)s::text[]) AS u(email, role)
               ON CONFLICT ((lower(email))) DO NOTHING""",
            {
                "hash": password_hash,
                "now": now,
                "emails": [organizer, *emails],
                "roles": ["organizer"] + ["user"] * count,
            },
        )
        rows = conn.execute(
            "SELECT id, email FROM users WHERE lower(email) = ANY(%s::text[])",
            [[organizer, *emails]],
        ).fetchall()
    ids = {email: user_id for user_id, email in rows}
    return ids[organizer], [ids[email] for email in emails]


def mint_tokens(users: Sequence[uuid.UUID], secret: str, path: Path) -> None:
    """What /auth/login would hand each user, signed with the secret the servers are given."""
    settings = Settings()
    codec = TokenCodec(
        secret, issuer=settings.jwt_issuer, audience=settings.jwt_audience, ttl_seconds=86_400
    )
    now = datetime.now(UTC)
    lines = [codec.issue(Principal(user, Role.USER), now).token for user in users]
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)


def mint_organizer_token(organizer: uuid.UUID, secret: str, path: Path) -> None:
    """The token of the events' organizer, who checks tickets in at the door."""
    settings = Settings()
    codec = TokenCodec(
        secret, issuer=settings.jwt_issuer, audience=settings.jwt_audience, ttl_seconds=86_400
    )
    path.write_text(codec.issue(Principal(organizer, Role.ORGANIZER), datetime.now(UTC)).token)
    path.chmod(0o600)


def create_events(
    db: Database, organizer: uuid.UUID, label: str, options: Options, kinds: Sequence[Kind]
) -> EventSet:
    """The events of one server's run, fresh so that no run books another's. ``kinds``: the
    scenarios it runs; the checkout columns are set only for those that need them (a
    --compare-ref run may have an older schema)."""
    events = EventSet(
        warmup=uuid.uuid4(),
        hot=uuid.uuid4(),
        storm=uuid.uuid4(),
        spread=tuple(uuid.uuid4() for _ in range(options.spread_events)),
        sold_out=uuid.uuid4(),
        holds=uuid.uuid4(),
        expiry=uuid.uuid4(),
        checkin=uuid.uuid4(),
    )
    rows: list[tuple[uuid.UUID, str, int, int | None]] = [
        (events.warmup, f"Bench warm-up ({label})", HOT_CAPACITY, None),
        (events.sold_out, f"Bench sold out ({label})", 1, None),
        (events.hot, f"Bench hot event ({label})", HOT_CAPACITY, None),
        (events.holds, f"Bench hot event with holds ({label})", HOT_CAPACITY, None),
        (events.expiry, f"Bench mass expiry ({label})", 2 * options.expiry_holds, None),
        (events.checkin, f"Bench check-in ({label})", options.checkin_tickets, None),
        (events.storm, f"Bench sell-out storm ({label})", options.storm_capacity, 4),
        *(
            (e, f"Bench spread #{i} ({label})", SPREAD_CAPACITY, 4)
            for i, e in enumerate(events.spread)
        ),
    ]
    now = datetime.now(UTC)
    start = now + timedelta(days=30)
    with db.connect() as conn, conn.transaction():
        conn.execute(
            """INSERT INTO events (id, organizer_id, name, description, venue, start_at, end_at,
                                   price, currency, max_per_user, created_at, updated_at)
               SELECT e.id, %(org)s, e.name, NULL, 'Bench Arena', %(start)s, %(end)s,
                      %(price)s, 'EUR', e.max_per_user, %(now)s, %(now)s
               FROM unnest(%(ids)s::uuid[], %(names)s::text[], %(limits)s::int[])
                    AS e(id, name, max_per_user)""",
            {
                "org": organizer,
                "start": start,
                "end": start + timedelta(hours=3),
                "price": PRICE,
                "now": now,
                "ids": [r[0] for r in rows],
                "names": [r[1] for r in rows],
                "limits": [r[3] for r in rows],
            },
        )
        conn.execute(
            """INSERT INTO event_inventory (event_id, capacity, available)
               SELECT i.id, i.capacity, i.capacity
               FROM unnest(%s::uuid[], %s::int[]) AS i(id, capacity)""",
            [[r[0] for r in rows], [r[2] for r in rows]],
        )
        # The sold-out event's one spot, taken by its organizer before the run.
        conn.execute(
            """INSERT INTO bookings (id, event_id, user_id, quantity, status, total_price,
                                     currency, created_at, updated_at)
               VALUES (gen_random_uuid(), %(event)s, %(org)s, 1, 'confirmed', %(price)s, 'EUR',
                       %(now)s, %(now)s)""",
            {"event": events.sold_out, "org": organizer, "price": PRICE, "now": now},
        )
        conn.execute(
            "UPDATE event_inventory SET available = 0 WHERE event_id = %s", [events.sold_out]
        )
        if "holds" in kinds or "expiry" in kinds:
            conn.execute(
                """UPDATE events SET checkout = 'payment', hold_seconds = %s
                   WHERE id = ANY(%s::uuid[])""",
                [HOLD_SECONDS, [events.holds, events.expiry]],
            )
        conn.execute("ANALYZE users, events, event_inventory")
    return events
