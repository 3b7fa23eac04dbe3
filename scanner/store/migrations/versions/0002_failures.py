"""Failures by rule: the findings that did not pass, one row each, so a rule can be queried; and each target's
newest run_target on the target (the latest state of every target without scanning every run). Both filled in
from what an older store already holds.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from scanner.store.codec import raw_findings

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    failures = op.create_table(
        "failures",
        sa.Column("findings_id", sa.Integer, sa.ForeignKey("findings.id", ondelete="CASCADE"), nullable=False),
        sa.Column("pack", sa.String(128), nullable=False),
        sa.Column("rule", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("decision", sa.String(16)),
    )
    op.create_index("ix_failures_findings", "failures", ["findings_id"])
    op.create_index("ix_failures_rule", "failures", ["pack", "rule"])
    with op.batch_alter_table("targets") as batch:
        batch.add_column(sa.Column("latest", sa.Integer))
    bind = op.get_bind()
    bind.execute(
        sa.text(
            "UPDATE targets SET latest = (SELECT max(id) FROM run_targets WHERE run_targets.target_id = targets.id)"
        )
    )
    for findings_id, document in bind.execute(sa.text("SELECT id, document FROM findings")):
        rows = [
            {
                "findings_id": findings_id,
                "pack": item["pack"],
                "rule": item["rule"],
                "status": item["status"],
                "severity": item["severity"],
                "decision": (item.get("decision") or {}).get("state"),
            }
            for item in raw_findings(document)
            if item["status"] in ("fail", "error", "waived")
        ]
        if rows:
            bind.execute(failures.insert(), rows)


def downgrade() -> None:
    with op.batch_alter_table("targets") as batch:
        batch.drop_column("latest")
    op.drop_table("failures")
