"""Migrations on a database with data in it, as a running v1 service has: the tests' own database
is built from empty, which would not notice a revision that only works on an empty schema."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import psycopg

from goticket.kit.migrate import downgrade, upgrade
from testbed.databases import fresh_database

NOW = datetime.now(UTC)


def seed_v1(url: str) -> dict[str, uuid.UUID]:
    """A user, an event with its inventory, a confirmed and a cancelled booking (schema 0003)."""
    ids = {name: uuid.uuid4() for name in ("user", "event", "confirmed", "cancelled")}
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO users VALUES (%s, 'v1@example.com', 'x', NULL, 'organizer', %s, %s)",
            (ids["user"], NOW, NOW),
        )
        conn.execute(
            """INSERT INTO events (id, organizer_id, name, start_at, end_at, price, currency,
                                   created_at, updated_at)
               VALUES (%s, %s, 'V1 gig', %s, %s, 1000, 'EUR', %s, %s)""",
            (
                ids["event"],
                ids["user"],
                NOW + timedelta(days=9),
                NOW + timedelta(days=10),
                NOW,
                NOW,
            ),
        )
        conn.execute("INSERT INTO event_inventory VALUES (%s, 10, 7)", (ids["event"],))
        for key, status, quantity in (("confirmed", "confirmed", 3), ("cancelled", "cancelled", 2)):
            conn.execute(
                """INSERT INTO bookings (id, event_id, user_id, quantity, status, total_price,
                                         currency, created_at, updated_at)
                   VALUES (%s, %s, %s, %s, %s, %s, 'EUR', %s, %s)""",
                (ids[key], ids["event"], ids["user"], quantity, status, 1000 * quantity, NOW, NOW),
            )
    return ids


def test_0004_upgrades_a_v1_database_with_bookings_and_goes_back(server_url: str) -> None:
    with fresh_database(server_url, "goticket_migrations") as url:
        upgrade(url, "0003")
        ids = seed_v1(url)
        upgrade(url)
        with psycopg.connect(url, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT id, status, confirmed_at FROM bookings ORDER BY quantity DESC"
            ).fetchall()
            assert [(r[0], r[1], r[2] is not None) for r in rows] == [
                (ids["confirmed"], "confirmed", True),  # confirmed when it was made
                (ids["cancelled"], "cancelled", False),
            ]
            tickets = conn.execute("SELECT booking_id, status FROM tickets ORDER BY seq").fetchall()
            assert tickets == [(ids["confirmed"], "valid")] * 3
            event = conn.execute(
                "SELECT checkout, hold_seconds FROM events WHERE id = %s", (ids["event"],)
            ).fetchone()
            assert event == ("instant", 600)
            # A hold made after the upgrade, then a way back to v1: its spots come home.
            conn.execute(
                """INSERT INTO bookings (id, event_id, user_id, quantity, status, total_price,
                                         currency, created_at, updated_at, expires_at,
                                         payment_id, payment_provider, payment_status)
                   VALUES (%(id)s, %(event)s, %(user)s, 2, 'pending', 2000, 'EUR', now(), now(),
                           now() + interval '10 minutes', %(id)s, 'fake', 'requires_payment')""",
                {"id": uuid.uuid4(), "event": ids["event"], "user": ids["user"]},
            )
            conn.execute(
                "UPDATE event_inventory SET available = 5 WHERE event_id = %s", (ids["event"],)
            )
        downgrade(url, "0003")
        with psycopg.connect(url, autocommit=True) as conn:
            stock = conn.execute(
                "SELECT capacity, available FROM event_inventory WHERE event_id = %s",
                (ids["event"],),
            ).fetchone()
            assert stock == (10, 7)
            statuses = conn.execute("SELECT status FROM bookings ORDER BY status").fetchall()
            assert statuses == [("cancelled",), ("confirmed",)]
        upgrade(url)  # and forward again
