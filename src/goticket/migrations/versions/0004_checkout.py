"""Checkout: payment holds, their payments, tickets and check-in (revision 0004, after 0003).

- ``events.checkout`` (``instant`` as in v1, or ``payment``) and ``hold_seconds``;
- bookings gain the statuses ``pending`` (a hold) and ``expired``, the hold's ``expires_at``,
  ``confirmed_at`` (set when the booking is confirmed: its tickets exist from then on), and the
  payment of a hold (``payment_id``, ``payment_provider``, ``payment_status``) on the booking row
  itself, so that a hold costs the same one insert as an instant booking;
- ``tickets``, issued by a trigger in the transaction that confirms their booking (whichever path
  confirms it) and voided by one when a confirmed booking is cancelled (a used ticket too, its
  check-in time kept); a ticket's code is derived from its row and the signing key, not stored;
- ``payment_webhooks``: the processed ``webhook-id``s.

The per-user limit counts pending and confirmed quantity: its partial index follows.
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    ALTER TABLE events
        ADD COLUMN checkout text NOT NULL DEFAULT 'instant'
            CONSTRAINT events_checkout_check CHECK (checkout IN ('instant', 'payment')),
        ADD COLUMN hold_seconds integer NOT NULL DEFAULT 600
            CONSTRAINT events_hold_seconds_check CHECK (hold_seconds BETWEEN 60 AND 3600);

    ALTER TABLE bookings DROP CONSTRAINT bookings_status_check;
    ALTER TABLE bookings
        ADD CONSTRAINT bookings_status_check
            CHECK (status IN ('pending', 'confirmed', 'cancelled', 'expired')),
        ADD COLUMN expires_at timestamptz,
        ADD COLUMN confirmed_at timestamptz,
        ADD COLUMN payment_id uuid,
        ADD COLUMN payment_provider text,
        ADD COLUMN payment_status text CONSTRAINT bookings_payment_status_check
            CHECK (payment_status IN ('requires_payment', 'failed', 'succeeded', 'refunded')),
        ADD CONSTRAINT bookings_payment_check CHECK (
            (payment_id IS NULL) = (payment_provider IS NULL)
            AND (payment_id IS NULL) = (payment_status IS NULL)),
        ADD CONSTRAINT bookings_hold_check CHECK (status <> 'pending' OR expires_at IS NOT NULL);
    -- Confirmed bookings written before holds existed were confirmed when they were made.
    UPDATE bookings SET confirmed_at = created_at WHERE status = 'confirmed';

    CREATE UNIQUE INDEX bookings_payment_id_key ON bookings (payment_id)
        WHERE payment_id IS NOT NULL;
    -- The sweeper's queue: due holds, oldest deadline first.
    CREATE INDEX bookings_pending_expires_idx ON bookings (expires_at) WHERE status = 'pending';
    DROP INDEX bookings_event_user_confirmed_idx;
    CREATE INDEX bookings_event_user_active_idx ON bookings (event_id, user_id)
        WHERE status IN ('pending', 'confirmed');

    CREATE TABLE tickets (
        id            uuid PRIMARY KEY,
        booking_id    uuid NOT NULL REFERENCES bookings (id) ON DELETE CASCADE,
        -- The booking's event (copied, for scans and counts by event). No foreign key of its
        -- own: a ticket goes with its booking, and the booking with its event; a cascade by
        -- event_id would need an index that every ticket insert pays for.
        event_id      uuid NOT NULL,
        seq           smallint NOT NULL CHECK (seq BETWEEN 1 AND 10),
        status        text NOT NULL CHECK (status IN ('valid', 'used', 'void')),
        checked_in_at timestamptz,
        created_at    timestamptz NOT NULL,
        CONSTRAINT tickets_booking_seq_key UNIQUE (booking_id, seq),
        CHECK ((status = 'used') = (checked_in_at IS NOT NULL) OR status = 'void')
    );
    -- Only used tickets are counted per event (the sales summary): a partial index, which the
    -- insert of a confirmed booking's valid tickets does not touch (a flash sale inserts them).
    CREATE INDEX tickets_event_used_idx ON tickets (event_id) WHERE status = 'used';

    -- A booking's tickets exist from the moment it is confirmed, in the same transaction,
    -- whichever path confirms it (an instant booking's batch insert, a payment, a late payment);
    -- cancelling a confirmed booking voids its tickets (a used one keeps its check-in time).
    -- Statement triggers over the transition tables: one per batch, not one per row, and no
    -- extra round trip.
    CREATE FUNCTION bookings_issue_tickets() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO tickets (id, booking_id, event_id, seq, status, created_at)
        SELECT gen_random_uuid(), n.id, n.event_id, s.seq, 'valid', n.confirmed_at
        FROM new_rows n CROSS JOIN LATERAL generate_series(1, n.quantity) AS s(seq)
        WHERE n.confirmed_at IS NOT NULL;
        RETURN NULL;
    END $$;
    CREATE TRIGGER bookings_issue_tickets_on_insert AFTER INSERT ON bookings
        REFERENCING NEW TABLE AS new_rows
        FOR EACH STATEMENT EXECUTE FUNCTION bookings_issue_tickets();

    CREATE FUNCTION bookings_update_tickets() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO tickets (id, booking_id, event_id, seq, status, created_at)
        SELECT gen_random_uuid(), n.id, n.event_id, s.seq, 'valid', n.confirmed_at
        FROM new_rows n JOIN old_rows o ON o.id = n.id
        CROSS JOIN LATERAL generate_series(1, n.quantity) AS s(seq)
        WHERE o.confirmed_at IS NULL AND n.confirmed_at IS NOT NULL;
        -- Locked in ticket id order, as a check-in sync locks them: the two never deadlock.
        UPDATE tickets SET status = 'void'
        WHERE id IN (
            SELECT t.id FROM tickets t
            JOIN new_rows n ON t.booking_id = n.id JOIN old_rows o ON o.id = n.id
            WHERE t.status <> 'void' AND o.status = 'confirmed' AND n.status <> 'confirmed'
            ORDER BY t.id FOR UPDATE OF t);
        RETURN NULL;
    END $$;
    CREATE TRIGGER bookings_update_tickets_on_update AFTER UPDATE ON bookings
        REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
        FOR EACH STATEMENT EXECUTE FUNCTION bookings_update_tickets();
    -- Confirmed bookings of before get their tickets now.
    INSERT INTO tickets (id, booking_id, event_id, seq, status, created_at)
    SELECT gen_random_uuid(), b.id, b.event_id, s.seq, 'valid', b.confirmed_at
    FROM bookings b CROSS JOIN LATERAL generate_series(1, b.quantity) AS s(seq)
    WHERE b.status = 'confirmed';

    CREATE TABLE payment_webhooks (
        provider    text NOT NULL,
        webhook_id  text NOT NULL,
        received_at timestamptz NOT NULL,
        PRIMARY KEY (provider, webhook_id)
    );
    CREATE INDEX payment_webhooks_received_idx ON payment_webhooks (received_at);
    """)


def downgrade() -> None:
    op.execute("""
    DROP TABLE payment_webhooks;
    DROP TRIGGER bookings_update_tickets_on_update ON bookings;
    DROP TRIGGER bookings_issue_tickets_on_insert ON bookings;
    DROP FUNCTION bookings_update_tickets();
    DROP FUNCTION bookings_issue_tickets();
    DROP TABLE tickets;
    -- v1 has no holds: pending ones give their spots back before they go.
    UPDATE event_inventory i SET available = i.available + h.spots
    FROM (SELECT event_id, sum(quantity)::int AS spots FROM bookings
          WHERE status = 'pending' GROUP BY event_id) AS h
    WHERE i.event_id = h.event_id;
    DELETE FROM bookings WHERE status IN ('pending', 'expired');
    DROP INDEX bookings_event_user_active_idx;
    CREATE INDEX bookings_event_user_confirmed_idx ON bookings (event_id, user_id)
        WHERE status = 'confirmed';
    DROP INDEX bookings_pending_expires_idx;
    DROP INDEX bookings_payment_id_key;
    ALTER TABLE bookings
        DROP CONSTRAINT bookings_hold_check,
        DROP CONSTRAINT bookings_payment_check,
        DROP COLUMN payment_status,
        DROP COLUMN payment_provider,
        DROP COLUMN payment_id,
        DROP COLUMN confirmed_at,
        DROP COLUMN expires_at,
        DROP CONSTRAINT bookings_status_check;
    ALTER TABLE bookings
        ADD CONSTRAINT bookings_status_check CHECK (status IN ('confirmed', 'cancelled'));
    ALTER TABLE events DROP COLUMN hold_seconds, DROP COLUMN checkout;
    """)
