"""The first store: runs, targets, content-addressed facts and findings, run_targets, certificates.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("started", sa.Float, nullable=False),
        sa.Column("finished", sa.Float),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("version", sa.String(40), nullable=False),
        sa.Column("command", sa.String(16), nullable=False),
        sa.Column("options", sa.Text, nullable=False),
        sa.Column("packs", sa.Text, nullable=False),
        sa.Column("gate", sa.Text),
        sa.Column("hostname", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
    )
    op.create_index("ix_runs_started", "runs", ["started"])
    op.create_table(
        "targets",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("label", sa.String(512), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("port", sa.Integer, nullable=False),
        sa.Column("sni", sa.String(255), nullable=False),
        sa.Column("starttls", sa.String(32), nullable=False),
        sa.UniqueConstraint("label", "host", "port", "sni", "starttls", name="uq_targets_identity"),
    )
    for name in ("facts", "findings"):
        op.create_table(
            name,
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("sha256", sa.String(64), nullable=False, unique=True),
            sa.Column("document", sa.LargeBinary, nullable=False),
        )
    op.create_table(
        "run_targets",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("target_id", sa.Integer, sa.ForeignKey("targets.id"), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("started", sa.Float, nullable=False),
        sa.Column("finished", sa.Float, nullable=False),
        sa.Column("verdict", sa.String(8), nullable=False),
        sa.Column("gate_verdict", sa.String(8), nullable=False),
        sa.Column("grade", sa.String(4)),
        sa.Column("error_class", sa.String(32)),
        sa.Column("facts_id", sa.Integer, sa.ForeignKey("facts.id"), nullable=False),
        sa.Column("findings_id", sa.Integer, sa.ForeignKey("findings.id"), nullable=False),
    )
    op.create_index("ix_run_targets_run", "run_targets", ["run_id"])
    op.create_index("ix_run_targets_target_run", "run_targets", ["target_id", "run_id"])
    op.create_table(
        "certificates",
        sa.Column("facts_id", sa.Integer, sa.ForeignKey("facts.id", ondelete="CASCADE"), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("issuer", sa.Text, nullable=False),
        sa.Column("not_after", sa.Float, nullable=False),
    )
    op.create_index("ix_certificates_facts", "certificates", ["facts_id"])
    op.create_index("ix_certificates_not_after", "certificates", ["not_after"])


def downgrade() -> None:
    for name in ("certificates", "run_targets", "findings", "facts", "targets", "runs"):
        op.drop_table(name)
