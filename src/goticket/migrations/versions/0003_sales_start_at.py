"""Events may have an on-sale time: bookings before ``sales_start_at`` are refused (none: no
restriction). Nullable with no default, so adding it rewrites no row and existing events stay on
sale (revision 0003, after 0002).
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE events ADD COLUMN sales_start_at timestamptz")


def downgrade() -> None:
    op.execute("ALTER TABLE events DROP COLUMN sales_start_at")
