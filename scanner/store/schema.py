"""The store's tables (SQLAlchemy Core): the one place that names them; migrations/ builds them revision by revision.

Times are UTC seconds since the epoch (floats): compact, and ordered the same way on SQLite and PostgreSQL.
Facts and findings repeat from run to run, so both are content-addressed (SHA-256 of their canonical JSON) and
stored once, compressed; a run_target row refers to them by integer id.
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

runs = Table(
    "runs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("started", Float, nullable=False),
    Column("finished", Float),
    Column("status", String(16), nullable=False),  # running, finished, interrupted
    Column("version", String(40), nullable=False),  # tlsgate's
    Column("command", String(16), nullable=False),  # scan, evaluate, cert
    Column("options", Text, nullable=False),  # ScanOptions JSON (no secrets: the report's own options)
    Column("packs", Text, nullable=False),  # [PackInfo] JSON: ids, versions, parameters
    Column("gate", Text),  # GateInfo JSON, once finished
    Column("hostname", String(255), nullable=False),  # with pid: a "running" run whose process is gone was killed
    Column("pid", Integer, nullable=False),
    Index("ix_runs_started", "started"),
)

targets = Table(
    "targets",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("label", String(512), nullable=False),  # the target as written (the report's `target`)
    Column("host", String(255), nullable=False),
    Column("port", Integer, nullable=False),
    Column("sni", String(255), nullable=False),  # '' for none: NULLs are never equal in a unique key
    Column("starttls", String(32), nullable=False),
    Column("latest", Integer),  # its newest run_targets.id (no foreign key: run_targets refers to targets)
    UniqueConstraint("label", "host", "port", "sni", "starttls", name="uq_targets_identity"),
)

facts = Table(
    "facts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("sha256", String(64), nullable=False, unique=True),
    Column("document", LargeBinary, nullable=False),  # zlib of the canonical facts JSON
)

findings = Table(
    "findings",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("sha256", String(64), nullable=False, unique=True),
    Column("document", LargeBinary, nullable=False),  # zlib of the findings list's JSON
)

# The findings of one findings document that did not pass: by rule, for queries ("which targets fail X").
failures = Table(
    "failures",
    metadata,
    Column("findings_id", ForeignKey("findings.id", ondelete="CASCADE"), nullable=False),
    Column("pack", String(128), nullable=False),
    Column("rule", String(128), nullable=False),
    Column("status", String(16), nullable=False),  # failed, error
    Column("severity", String(16), nullable=False),
    Column("decision", String(16)),  # the gate's state: counted, baseline, below_fail_on, waived
    Index("ix_failures_findings", "findings_id"),
    Index("ix_failures_rule", "pack", "rule"),
)

run_targets = Table(
    "run_targets",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("run_id", ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("target_id", ForeignKey("targets.id"), nullable=False),
    Column("position", Integer, nullable=False),  # order in the run's report
    Column("started", Float, nullable=False),  # the facts' own times: kept out of the shared document
    Column("finished", Float, nullable=False),
    Column("verdict", String(8), nullable=False),
    Column("gate_verdict", String(8), nullable=False),
    Column("grade", String(4)),
    Column("error_class", String(32)),
    Column("facts_id", ForeignKey("facts.id"), nullable=False),
    Column("findings_id", ForeignKey("findings.id"), nullable=False),
    Index("ix_run_targets_run", "run_id"),
    Index("ix_run_targets_target_run", "target_id", "run_id"),
)

# Certificates of one facts document (every deployment's chain, leaf first): derived from the facts, so stored
# once per facts document too. Indexed by expiry for `tlsgate expiring`.
certificates = Table(
    "certificates",
    metadata,
    Column("facts_id", ForeignKey("facts.id", ondelete="CASCADE"), nullable=False),
    Column("position", Integer, nullable=False),  # 0 = a leaf
    Column("sha256", String(64), nullable=False),
    Column("subject", Text, nullable=False),
    Column("issuer", Text, nullable=False),
    Column("not_after", Float, nullable=False),
    Index("ix_certificates_facts", "facts_id"),
    Index("ix_certificates_not_after", "not_after"),
)

# What `tlsgate watch` has notified (scanner/notify/state.py's NotifyState): each delivered event key (and
# KEY@CHANNEL for a channel that took it), so that an event is sent once across restarts; and each target's run of
# unreachable scans. Keys are indexed by their SHA-256 (an event key can be longer than an index allows).
notify_delivered = Table(
    "notify_delivered",
    metadata,
    Column("key_sha256", String(64), primary_key=True),
    Column("key", Text, nullable=False),
    Column("at", Float, nullable=False),
)

notify_streaks = Table(
    "notify_streaks",
    metadata,
    Column("target", String(800), primary_key=True),  # host:port/sni/starttls
    Column("streak", Text, nullable=False),  # the Streak's JSON
)
