"""The checkout scenarios' own data: the mass expiry's holds (seeded in SQL, all due in the same
second) and the watch that times their expiry, and the check-in's tickets (issued by the
database's trigger on confirmed bookings) with their codes, signed here with the key the server
is given (``GOTICKET_TICKET_SIGNING_KEY``)."""

from __future__ import annotations

import http.client
import json
import secrets
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bench import BenchFailure
from bench.seeding import PRICE, Database
from goticket.tickets.domain import b64url
from goticket.tickets.keyring import parse_variable
from goticket.tickets.service import TicketSigning

POLL_S = 0.1  # the expiry watch counts the pending holds this often
TICKETS_PER_BOOKING = 10  # the schema's largest quantity: fewer rows for the trigger to expand
BENCH_KID = "bench"


def new_ticket_key() -> str:
    """A fresh ``GOTICKET_TICKET_SIGNING_KEY`` (``kid:seed``) for the run's servers."""
    return f"{BENCH_KID}:{b64url(secrets.token_bytes(32))}"


def ticket_signing(key: str) -> TicketSigning:
    """Signs codes exactly as a server given ``key`` does (its first key signs)."""
    ring = parse_variable(key)
    return TicketSigning(ring.current, [k.public() for k in ring.keys])


def _cycle(users: Sequence[uuid.UUID], count: int) -> list[uuid.UUID]:
    return [users[i % len(users)] for i in range(count)]


def seed_holds(
    db: Database, event: uuid.UUID, users: Sequence[uuid.UUID], count: int, due: datetime
) -> None:
    """``count`` pending holds of one spot on ``event``, all expiring at ``due``, their spots
    taken from its inventory in the same transaction (as a hold takes them)."""
    now = datetime.now(UTC)
    with db.connect() as conn, conn.transaction():
        conn.execute(
            """INSERT INTO bookings (id, event_id, user_id, quantity, status, total_price,
                                     currency, created_at, updated_at, expires_at, payment_id,
                                     payment_provider, payment_status)
               SELECT h.id, %(event)s, h.user_id, 1, 'pending', %(price)s, 'EUR', %(now)s,
                      %(now)s, %(due)s, h.id, 'fake', 'requires_payment'
               FROM (SELECT gen_random_uuid() AS id, u AS user_id
                     FROM unnest(%(users)s::uuid[]) AS u) h""",
            {"event": event, "price": PRICE, "now": now, "due": due, "users": _cycle(users, count)},
        )
        conn.execute(
            "UPDATE event_inventory SET available = available - %s WHERE event_id = %s",
            [count, event],
        )


def pending_holds(db: Database, event: uuid.UUID) -> int:
    """The event's pending holds (every booking of a payment event, until it expires)."""
    with db.connect() as conn:
        row = conn.execute(
            "SELECT count(*) FROM bookings WHERE event_id = %s AND status = 'pending'", [event]
        ).fetchone()
    return int(row[0]) if row else 0


@dataclass(frozen=True)
class ExpiryTimes:
    """Seconds after the due instant: the first count below all the holds, and zero left."""

    started_after_s: float | None
    expired_after_s: float | None
    left: int  # holds still pending when the watch ended


def expiry_times(samples: Sequence[tuple[float, int]], due: float, holds: int) -> ExpiryTimes:
    """From the watch's samples (epoch seconds, pending count), oldest first."""
    started = next((t for t, n in samples if n < holds), None)
    done = next((t for t, n in samples if n == 0), None)
    return ExpiryTimes(
        None if started is None else round(max(0.0, started - due), 2),
        None if done is None else round(max(0.0, done - due), 2),
        samples[-1][1] if samples else holds,
    )


@dataclass
class ExpiryWatch:
    """Counts the event's pending holds every ``POLL_S`` from the due instant until none is
    left or ``wait`` seconds have passed, on a thread of its own (the load runs meanwhile)."""

    db: Database
    event: uuid.UUID
    due: float  # epoch seconds
    wait: float
    samples: list[tuple[float, int]] = field(default_factory=list)
    error: BaseException | None = None
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="expiry-watch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            time.sleep(max(0.0, self.due - time.time()))
            with self.db.connect() as conn:
                while True:
                    row = conn.execute(
                        "SELECT count(*) FROM bookings WHERE event_id = %s AND status = 'pending'",
                        [self.event],
                    ).fetchone()
                    now = time.time()
                    self.samples.append((now, int(row[0]) if row else 0))
                    if self.samples[-1][1] == 0 or now > self.due + self.wait:
                        return
                    time.sleep(POLL_S)
        except BaseException as exc:  # noqa: BLE001 -- reported by join()
            self.error = exc

    def join(self) -> list[tuple[float, int]]:
        if self._thread is not None:
            self._thread.join(timeout=self.wait + max(0.0, self.due - time.time()) + 30)
        if self.error is not None:
            raise BenchFailure(f"the expiry watch failed: {self.error}")
        return self.samples


def expiry_outcome(db: Database, event: uuid.UUID) -> tuple[dict[str, int], int, int]:
    """The holds event's bookings by status, its capacity and its available spots."""
    with db.connect() as conn:
        rows = conn.execute(
            "SELECT status, count(*) FROM bookings WHERE event_id = %s GROUP BY status", [event]
        ).fetchall()
        inventory = conn.execute(
            "SELECT capacity, available FROM event_inventory WHERE event_id = %s", [event]
        ).fetchone()
    if inventory is None:
        raise BenchFailure(f"the expiry event {event} has no inventory row")
    return {str(s): int(n) for s, n in rows}, int(inventory[0]), int(inventory[1])


def seed_tickets(
    db: Database, event: uuid.UUID, users: Sequence[uuid.UUID], count: int
) -> list[uuid.UUID]:
    """Confirmed bookings of ``event`` for ``count`` spots (up to 10 a booking), whose tickets
    the database's trigger issues; their ids."""
    quantities = [TICKETS_PER_BOOKING] * (count // TICKETS_PER_BOOKING)
    if count % TICKETS_PER_BOOKING:
        quantities.append(count % TICKETS_PER_BOOKING)
    now = datetime.now(UTC)
    with db.connect() as conn, conn.transaction():
        conn.execute(
            """INSERT INTO bookings (id, event_id, user_id, quantity, status, total_price,
                                     currency, created_at, updated_at, confirmed_at)
               SELECT gen_random_uuid(), %(event)s, b.user_id, b.quantity, 'confirmed',
                      %(price)s * b.quantity, 'EUR', %(now)s, %(now)s, %(now)s
               FROM unnest(%(users)s::uuid[], %(quantities)s::int[]) AS b(user_id, quantity)""",
            {
                "event": event,
                "price": PRICE,
                "now": now,
                "users": _cycle(users, len(quantities)),
                "quantities": quantities,
            },
        )
        conn.execute(
            "UPDATE event_inventory SET available = available - %s WHERE event_id = %s",
            [count, event],
        )
        rows = conn.execute(
            "SELECT id FROM tickets WHERE event_id = %s AND status = 'valid' ORDER BY id", [event]
        ).fetchall()
        conn.execute("ANALYZE bookings, tickets")
    if len(rows) != count:
        raise BenchFailure(f"the trigger issued {len(rows):,} tickets for {count:,} spots")
    return [row[0] for row in rows]


def checkin_lines(path: str, codes: Sequence[str]) -> list[str]:
    """checkin.lua's input: the path first, then one code a line."""
    return [path, *codes]


def write_checkin_targets(
    file: Path, event: uuid.UUID, tickets: Sequence[uuid.UUID], signing: TicketSigning
) -> None:
    codes = [signing.issue(ticket, event) for ticket in tickets]
    file.write_text("\n".join(checkin_lines(f"/events/{event}/checkins", codes)) + "\n")


def used_tickets(db: Database, event: uuid.UUID) -> int:
    with db.connect() as conn:
        row = conn.execute(
            "SELECT count(*) FROM tickets WHERE event_id = %s AND status = 'used'", [event]
        ).fetchone()
    return int(row[0]) if row else 0


def probe_checkin(port: int, event: uuid.UUID, token: str) -> None:
    """One scan of a code that cannot verify: a server with check-in answers 422
    (``invalid-ticket``, checked before anything else); anything else stops the run here,
    before seeding and signing the tickets."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(
            "POST",
            f"/events/{event}/checkins",
            body=json.dumps({"code": "GT1.not.signed"}),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        response = connection.getresponse()
        body = response.read().decode(errors="replace")[:300]
    finally:
        connection.close()
    if response.status != 422:
        raise BenchFailure(
            f"check-in: POST /events/{{id}}/checkins answered {response.status} to an unsigned "
            f"code where 422 invalid-ticket was expected: is the check-in endpoint (the tickets "
            f"branch) in this checkout? ({body})"
        )
