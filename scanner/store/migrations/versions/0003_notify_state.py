"""The notification state of `tlsgate watch`: delivered event keys and unreachable streaks, so that each event is
sent once across restarts.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notify_delivered",
        sa.Column("key_sha256", sa.String(64), primary_key=True),
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("at", sa.Float, nullable=False),
    )
    op.create_table(
        "notify_streaks",
        sa.Column("target", sa.String(800), primary_key=True),
        sa.Column("streak", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("notify_streaks")
    op.drop_table("notify_delivered")
