"""Catalog changes notify: every insert, update or delete of an event row sends NOTIFY
goticket_events with the event id, in the writer's own transaction (delivered on commit only).

The API workers listen and drop their cached copy of that event. A trigger rather than a call in
the application: every writer is covered (the service, the CLI, an operator's psql). The hot
inventory row has none on purpose: NOTIFY serialises commits, bookings run at thousands per
second, and the read cache shows them within its 1 s bound instead.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    CREATE FUNCTION goticket_events_notify() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'DELETE' THEN
            PERFORM pg_notify('goticket_events', OLD.id::text);
        ELSE
            PERFORM pg_notify('goticket_events', NEW.id::text);
        END IF;
        RETURN NULL;
    END
    $$;
    CREATE TRIGGER events_notify AFTER INSERT OR UPDATE OR DELETE ON events
        FOR EACH ROW EXECUTE FUNCTION goticket_events_notify();
    """)


def downgrade() -> None:
    op.execute("""
    DROP TRIGGER events_notify ON events;
    DROP FUNCTION goticket_events_notify();
    """)
