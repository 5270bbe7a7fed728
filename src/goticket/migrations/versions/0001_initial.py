"""Initial schema: users, events, the hot inventory row apart from the catalog, bookings.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    CREATE TABLE users (
        id            uuid PRIMARY KEY,
        email         text NOT NULL CHECK (char_length(email) BETWEEN 3 AND 254),
        password_hash text NOT NULL,
        name          text,
        role          text NOT NULL CHECK (role IN ('user', 'organizer', 'admin')),
        created_at    timestamptz NOT NULL,
        updated_at    timestamptz NOT NULL
    );
    -- Emails compare case-insensitively.
    CREATE UNIQUE INDEX users_email_lower_key ON users (lower(email));

    CREATE TABLE events (
        id           uuid PRIMARY KEY,
        organizer_id uuid NOT NULL REFERENCES users (id),
        name         text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
        description  text CHECK (char_length(description) <= 5000),
        venue        text CHECK (char_length(venue) <= 200),
        start_at     timestamptz NOT NULL,
        end_at       timestamptz NOT NULL,
        price        bigint NOT NULL CHECK (price BETWEEN 0 AND 1000000000000),
        currency     char(3) NOT NULL,
        max_per_user integer CHECK (max_per_user >= 1),
        created_at   timestamptz NOT NULL,
        updated_at   timestamptz NOT NULL,
        CHECK (start_at < end_at)
    );
    CREATE INDEX events_start_at_id_idx ON events (start_at, id);
    CREATE INDEX events_organizer_id_idx ON events (organizer_id);

    -- The hot row lives apart from the catalog row: editing an event's description never waits
    -- behind a flash sale. The CHECK is the database's own last line against overselling.
    CREATE TABLE event_inventory (
        event_id  uuid PRIMARY KEY REFERENCES events (id) ON DELETE CASCADE,
        capacity  integer NOT NULL CHECK (capacity BETWEEN 1 AND 10000000),
        available integer NOT NULL,
        CHECK (0 <= available AND available <= capacity)
    );

    CREATE TABLE bookings (
        id              uuid PRIMARY KEY,
        event_id        uuid NOT NULL REFERENCES events (id) ON DELETE CASCADE,
        user_id         uuid NOT NULL REFERENCES users (id),
        quantity        integer NOT NULL CHECK (quantity BETWEEN 1 AND 10),
        status          text NOT NULL CHECK (status IN ('confirmed', 'cancelled')),
        total_price     bigint NOT NULL CHECK (total_price >= 0),
        currency        char(3) NOT NULL,
        idempotency_key text CHECK (char_length(idempotency_key) BETWEEN 1 AND 255),
        request_hash    text,
        created_at      timestamptz NOT NULL,
        updated_at      timestamptz NOT NULL,
        CONSTRAINT bookings_user_idempotency_key UNIQUE (user_id, idempotency_key)
    );
    CREATE INDEX bookings_user_created_idx ON bookings (user_id, created_at DESC, id DESC);
    CREATE INDEX bookings_event_created_idx ON bookings (event_id, created_at DESC, id DESC);
    -- The per-user limit sums a user's confirmed quantity for one event.
    CREATE INDEX bookings_event_user_confirmed_idx ON bookings (event_id, user_id)
        WHERE status = 'confirmed';
    """)


def downgrade() -> None:
    op.execute("""
    DROP TABLE bookings;
    DROP TABLE event_inventory;
    DROP TABLE events;
    DROP TABLE users;
    """)
