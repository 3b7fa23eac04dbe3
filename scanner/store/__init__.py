"""The store: every run, its targets' facts (content-addressed, stored once) and findings, in SQLite or
PostgreSQL (SQLAlchemy 2 Core, Alembic migrations run on open). Only this package knows SQL.

    store = open_store("sqlite:///var/lib/tlsgate/history.db")   # StoreError: a line for the user
    store.runs()                       # newest first
    store.report(run_id)               # the run's Report, rebuilt (for diff)
    store.latest_runs_covering(["example.com"])

A scan records through ``Store.recorder``: the run row at start (status running), each target as it finishes, the
run finished (or interrupted) at the end. A run still "running" whose process is gone (killed) is marked
interrupted when a store is next opened on that host.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    and_,
    bindparam,
    create_engine,
    delete,
    event,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from scanner import __version__
from scanner.facts import Facts
from scanner.findings import Finding
from scanner.grade import grade
from scanner.report import GateInfo, PackInfo, Report, ScanOptions, TargetReport, summarise
from scanner.store import codec
from scanner.store.schema import certificates, facts, failures, findings, run_targets, runs, targets

MIGRATIONS = Path(__file__).parent / "migrations"
FAILED_STATUSES = ("fail", "error", "waived")


class StoreError(Exception):
    """The store cannot be opened or used; the message is one line for the user (no password in it)."""


@dataclass(frozen=True)
class RunInfo:
    id: int
    started: datetime
    finished: datetime | None
    status: str  # running, finished, interrupted
    version: str
    command: str
    targets: int


@dataclass(frozen=True)
class TimelineEntry:
    run_id: int
    target: str
    at: datetime
    verdict: str
    gate_verdict: str
    grade: str | None
    error_class: str | None
    certificate: str | None  # the leaf's SHA-256
    issuer: str | None
    not_after: datetime | None
    failed_rules: tuple[str, ...]  # pack/rule of every finding that failed


@dataclass(frozen=True)
class Expiry:
    target: str
    run_id: int
    position: int  # 0 = a leaf
    sha256: str
    subject: str
    issuer: str
    not_after: datetime


@dataclass(frozen=True)
class Pruned:
    runs: int
    facts: int
    findings: int


@dataclass(frozen=True)
class EncodedTarget:
    """One target of a run, ready to write: what ``Store.write_targets`` takes (the benchmark fabricates these)."""

    position: int
    label: str
    host: str
    port: int
    sni: str
    starttls: str
    started: float
    finished: float
    verdict: str
    gate_verdict: str
    error_class: str | None
    facts_sha: str  # SHA-256 of the canonical JSON (codec.canonical_facts)
    facts_doc: bytes  # that JSON compressed
    findings_sha: str
    findings_doc: bytes
    certificates: tuple[tuple[int, str, str, str, float], ...]  # (position, sha256, subject, issuer, not_after)
    failures: tuple[tuple[str, str, str, str, str | None], ...]  # (pack, rule, status, severity, decision)
    grade: str | None = None


def _target_report(row: Any, facts: Facts) -> TargetReport:
    """A stored target as a report's target: the grade is worked out again from its facts (a pure function), so a
    run recorded before grades existed has them too."""
    grading = grade(facts)
    return TargetReport(
        target=row.label,
        verdict=row.verdict,
        gate_verdict=row.gate_verdict,
        facts=facts,
        findings=codec.decode_findings(row.findings_doc),
        grade=grading.grade if grading is not None else None,
        grading=grading,
    )


def encode_target(position: int, result: TargetReport) -> EncodedTarget:
    info = result.facts.target
    facts_raw = codec.canonical_facts(result.facts)
    findings_raw = codec.canonical_findings(result.findings)
    certs: list[tuple[int, str, str, str, float]] = []
    seen: set[str] = set()
    for deployment in result.facts.deployments():
        for index, cert in enumerate(
            deployment.certificate.chain or ([deployment.certificate.leaf] if deployment.certificate.leaf else [])
        ):
            if cert is None or cert.sha256 in seen:
                continue
            seen.add(cert.sha256)
            certs.append((index, cert.sha256, cert.subject, cert.issuer, cert.not_after.timestamp()))
    return EncodedTarget(
        position=position,
        label=result.target,
        host=info.host,
        port=info.port,
        sni=info.server_name or "",
        starttls=info.starttls or "",
        started=result.facts.started_at.timestamp(),
        finished=result.facts.finished_at.timestamp(),
        verdict=result.verdict,
        gate_verdict=result.gate_verdict,
        error_class=result.facts.error.error_class.value if result.facts.error is not None else None,
        facts_sha=codec.digest(facts_raw),
        facts_doc=codec.compress(facts_raw, dictionary=True),
        findings_sha=codec.digest(findings_raw),
        findings_doc=codec.compress(findings_raw),
        certificates=tuple(certs),
        failures=tuple(
            (f.pack, f.rule, f.status.value, f.severity, f.decision.state if f.decision is not None else None)
            for f in result.findings
            if f.status.value in FAILED_STATUSES
        ),
        grade=result.grade,
    )


def _time(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def _safe(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def _engine_url(url: str) -> str:
    """``sqlite:///PATH``, a plain PATH, or ``postgresql://...`` (driven by psycopg 3)."""
    if "://" not in url:
        return f"sqlite:///{url}"
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            return "postgresql+psycopg://" + url[len(plain) :]
    return url


def open_store(url: str) -> Store:
    """The store at ``url``, created or upgraded to this tlsgate's schema; StoreError if it cannot be opened,
    is of a newer schema than this tlsgate knows, or is not a store."""
    full = _engine_url(url)
    try:
        parsed = make_url(full)
    except ArgumentError:
        raise StoreError(f"store {url!r}: not a database URL (sqlite:///PATH or postgresql://...)") from None
    backend = parsed.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise StoreError(f"store {_safe(url)}: unsupported database {backend!r} (sqlite or postgresql)")
    if backend == "sqlite":
        if not parsed.database or parsed.database == ":memory:":
            raise StoreError(f"store {url}: give a file (sqlite:///PATH)")
        path = Path(parsed.database)
        if not path.parent.is_dir():
            raise StoreError(f"store {url}: directory {path.parent} does not exist")
        if path.exists() and not path.is_file():
            raise StoreError(f"store {url}: not a file")
    try:
        engine = _create(full, backend)
        store = Store(engine, _safe(url))
        store.migrate()
        store.repair()
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot open store {_safe(url)}: {_reason(exc)}") from None
    return store


def _reason(exc: SQLAlchemyError) -> str:
    text = str(getattr(exc, "orig", None) or exc)
    return " ".join(text.split("\n", maxsplit=1)[0].split()) or type(exc).__name__


def _create(url: str, backend: str) -> Engine:
    if backend == "postgresql":
        return create_engine(url, connect_args={"connect_timeout": 10})
    engine = create_engine(url, connect_args={"timeout": 60, "isolation_level": None})

    @event.listens_for(engine, "connect")
    def _pragmas(connection: Any, _record: Any) -> None:
        cursor = connection.cursor()
        cursor.execute("PRAGMA busy_timeout = 60000")  # two scans writing at once wait for each other
        _wal(cursor)
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        # Take the write lock at the start: a deferred transaction that later wants it can fail at once (BUSY)
        # instead of waiting, when another writer committed in between.
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _wal(cursor: Any) -> None:
    """WAL mode, once per database. Switching a new file to WAL while another process opens it can fail at once
    with "database is locked" (SQLite does not wait on its busy timeout for that lock): two scans creating one
    store together did, now and then. The switch is retried for as long as the busy timeout would wait."""
    deadline = time.monotonic() + 60
    while True:
        try:
            if str(cursor.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
                cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.05)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process, alive
        return True
    return True


class Store:
    def __init__(self, engine: Engine, name: str) -> None:
        self.engine = engine
        self.name = name
        self._target_ids: dict[tuple[str, str, int, str, str], int] = {}
        self._ids: dict[str, dict[str, int]] = {}  # documents known to be stored: sha256 -> id, per table

    def close(self) -> None:
        self.engine.dispose()

    # --- schema -------------------------------------------------------------------------------------------

    def migrate(self) -> None:
        """Upgrade the store to this tlsgate's head revision; StoreError for a store newer than that."""
        from alembic.command import upgrade  # noqa: PLC0415 - alembic loads only with a store
        from alembic.config import Config  # noqa: PLC0415
        from alembic.runtime.migration import MigrationContext  # noqa: PLC0415
        from alembic.script import ScriptDirectory  # noqa: PLC0415
        from alembic.util import CommandError  # noqa: PLC0415

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        script = ScriptDirectory.from_config(config)
        head = script.get_current_head()
        with self.engine.begin() as connection:
            if self.engine.dialect.name == "postgresql":
                connection.exec_driver_sql("SELECT pg_advisory_xact_lock(7215)")  # one migrator at a time
            current = MigrationContext.configure(connection).get_current_heads()
            known = {rev.revision for rev in script.walk_revisions()}
            for revision in current:
                if revision not in known:
                    raise StoreError(
                        f"store {self.name} has schema revision {revision}, newer than this tlsgate {__version__} "
                        f"knows (up to {head}): use a newer tlsgate"
                    )
            if current and set(current) == {head}:
                return
            if not current:
                self._check_empty(connection)
            config.attributes["connection"] = connection
            try:
                upgrade(config, "head")
            except CommandError as exc:
                raise StoreError(f"store {self.name}: {exc}") from None

    def _check_empty(self, connection: Connection) -> None:
        from sqlalchemy import inspect  # noqa: PLC0415

        names = set(inspect(connection).get_table_names())
        if names & {"runs", "facts", "run_targets"}:
            raise StoreError(f"store {self.name}: has tables but no tlsgate schema revision: not a tlsgate store")

    def repair(self) -> None:
        """Runs of this host left "running" by a process that is gone (killed): interrupted, targets kept."""
        host = socket.gethostname()
        with self.engine.begin() as connection:
            rows = connection.execute(
                select(runs.c.id, runs.c.pid).where(runs.c.status == "running", runs.c.hostname == host)
            ).all()
            dead = [row.id for row in rows if row.pid != os.getpid() and not _process_alive(row.pid)]
            if dead:
                connection.execute(update(runs).where(runs.c.id.in_(dead)).values(status="interrupted"))

    # --- writing ------------------------------------------------------------------------------------------

    def start_run(
        self, command: str, options: ScanOptions, packs: Sequence[PackInfo], started: datetime | None = None
    ) -> int:
        at = (started or datetime.now(UTC)).timestamp()
        with self.engine.begin() as connection:
            result = connection.execute(
                insert(runs).values(
                    started=at,
                    status="running",
                    version=__version__,
                    command=command,
                    options=options.model_dump_json(),
                    packs=json.dumps([p.model_dump(mode="json") for p in packs]),
                    hostname=socket.gethostname(),
                    pid=os.getpid(),
                )
            )
            run_id = result.inserted_primary_key
            assert run_id is not None  # noqa: S101 - an insert into a table with a primary key returns one
            return int(run_id[0])

    def write_targets(self, run_id: int, items: Iterable[EncodedTarget]) -> None:
        """Targets of a run, in one transaction: each facts and findings document stored once."""
        with self.engine.begin() as connection:
            rows = []
            for item in items:
                facts_id = self._document(connection, facts, item.facts_sha, item.facts_doc, item)
                findings_id = self._document(connection, findings, item.findings_sha, item.findings_doc, item)
                rows.append(
                    {
                        "run_id": run_id,
                        "target_id": self._target(connection, item),
                        "position": item.position,
                        "started": item.started,
                        "finished": item.finished,
                        "verdict": item.verdict,
                        "gate_verdict": item.gate_verdict,
                        "grade": item.grade,
                        "error_class": item.error_class,
                        "facts_id": facts_id,
                        "findings_id": findings_id,
                    }
                )
            if not rows:
                return
            connection.execute(insert(run_targets), rows)
            # Each target's newest run_target, kept on the target: "the latest state of every target" is then one
            # join, not a scan of every run (a year of 6-hourly runs of 10,000 targets is 14.6 M rows).
            written = connection.execute(
                select(run_targets.c.id, run_targets.c.target_id).where(
                    run_targets.c.run_id == run_id, run_targets.c.position.in_([r["position"] for r in rows])
                )
            ).all()
            newer = or_(targets.c.latest.is_(None), targets.c.latest < bindparam("rt"))
            connection.execute(
                update(targets).where(targets.c.id == bindparam("tid"), newer).values(latest=bindparam("rt")),
                [{"tid": row.target_id, "rt": row.id} for row in written],
            )

    def order_run(self, run_id: int, labels: Sequence[str]) -> None:
        """The run's targets numbered in the report's order (they were written in the order they finished)."""
        where = {label: index for index, label in enumerate(labels)}
        with self.engine.begin() as connection:
            rows = connection.execute(
                select(run_targets.c.id, targets.c.label)
                .join(targets, targets.c.id == run_targets.c.target_id)
                .where(run_targets.c.run_id == run_id)
            ).all()
            changes = [{"rid": row.id, "pos": where[row.label]} for row in rows if row.label in where]
            if changes:
                connection.execute(
                    update(run_targets).where(run_targets.c.id == bindparam("rid")).values(position=bindparam("pos")),
                    changes,
                )

    def add_target(self, run_id: int, position: int, result: TargetReport) -> None:
        self.write_targets(run_id, [encode_target(position, result)])

    def finish_run(self, run_id: int, status: str, report: Report | None = None) -> None:
        values: dict[str, Any] = {"status": status, "finished": time.time()}
        if report is not None:
            values |= {
                "finished": report.finished_at.timestamp(),
                "options": report.options.model_dump_json(),
                "packs": json.dumps([p.model_dump(mode="json") for p in report.packs]),
                "gate": report.gate.model_dump_json(),
            }
        with self.engine.begin() as connection:
            connection.execute(update(runs).where(runs.c.id == run_id).values(**values))

    def record_report(self, command: str, report: Report) -> int:
        """A whole report at once (evaluate, cert): its run, targets, finished."""
        run_id = self.start_run(command, report.options, report.packs, report.started_at)
        self.write_targets(run_id, [encode_target(i, t) for i, t in enumerate(report.targets)])
        self.finish_run(run_id, "finished", report)
        return run_id

    def recorder(self, command: str, options: ScanOptions, packs: Sequence[PackInfo]) -> Recorder:
        return Recorder(self, self.start_run(command, options, packs))

    def _target(self, connection: Connection, item: EncodedTarget) -> int:
        key = (item.label, item.host, item.port, item.sni, item.starttls)
        known = self._target_ids.get(key)
        if known is not None:
            return known
        where = and_(
            targets.c.label == item.label,
            targets.c.host == item.host,
            targets.c.port == item.port,
            targets.c.sni == item.sni,
            targets.c.starttls == item.starttls,
        )
        found = connection.execute(select(targets.c.id).where(where)).scalar()
        if found is None:
            values = dict(zip(("label", "host", "port", "sni", "starttls"), key, strict=True))
            connection.execute(self.insert_ignore(targets).values(**values))
            found = connection.execute(select(targets.c.id).where(where)).scalar_one()
        self._target_ids[key] = found
        return int(found)

    def insert_ignore(self, table: Any) -> Any:
        """An INSERT that leaves an existing row with the same key as it is."""
        if self.engine.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert  # noqa: PLC0415

            return pg_insert(table).on_conflict_do_nothing()
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert  # noqa: PLC0415

        return sqlite_insert(table).on_conflict_do_nothing()

    def _document(self, connection: Connection, table: Any, sha: str, document: bytes, item: EncodedTarget) -> int:
        cache = self._ids.setdefault(table.name, {})
        known = cache.get(sha)
        if known is not None:
            return known
        found = connection.execute(select(table.c.id).where(table.c.sha256 == sha)).scalar()
        if found is not None:
            cache[sha] = int(found)
            return int(found)
        connection.execute(self.insert_ignore(table).values(sha256=sha, document=document))
        new = int(connection.execute(select(table.c.id).where(table.c.sha256 == sha)).scalar_one())
        cache[sha] = new
        if table is facts and item.certificates:
            connection.execute(
                insert(certificates),
                [
                    {"facts_id": new, "position": p, "sha256": s, "subject": sub, "issuer": iss, "not_after": end}
                    for p, s, sub, iss, end in item.certificates
                ],
            )
        if table is findings and item.failures:
            connection.execute(
                insert(failures),
                [
                    {"findings_id": new, "pack": pk, "rule": r, "status": st, "severity": sv, "decision": d}
                    for pk, r, st, sv, d in item.failures
                ],
            )
        return new

    # --- reading ------------------------------------------------------------------------------------------

    def runs(self, since: datetime | None = None) -> list[RunInfo]:
        """Every run, newest first (``since``: started at or after)."""
        count = select(run_targets.c.run_id, func.count().label("n")).group_by(run_targets.c.run_id).subquery()
        query = select(runs, count.c.n).outerjoin(count, count.c.run_id == runs.c.id).order_by(runs.c.id.desc())
        if since is not None:
            query = query.where(runs.c.started >= since.timestamp())
        with self.engine.connect() as connection:
            return [
                RunInfo(
                    row.id,
                    _time(row.started) or datetime.now(UTC),
                    _time(row.finished),
                    row.status,
                    row.version,
                    row.command,
                    row.n or 0,
                )
                for row in connection.execute(query)
            ]

    def report(self, run_id: int, only: Sequence[str] | None = None) -> Report:
        """The run's report, rebuilt from the store (as written, for a finished run; what finished, for an
        interrupted one); ``only`` keeps just those targets (by label: a diff decodes only what ``changes`` names).
        StoreError for an unknown run."""
        from scanner.gate import run_outcome  # noqa: PLC0415

        with self.engine.connect() as connection:
            run = connection.execute(select(runs).where(runs.c.id == run_id)).first()
            if run is None:
                raise StoreError(f"store {self.name}: no run {run_id}")
            rows = connection.execute(
                select(
                    run_targets,
                    targets.c.label,
                    facts.c.document.label("facts_doc"),
                    findings.c.document.label("findings_doc"),
                )
                .join(targets, targets.c.id == run_targets.c.target_id)
                .join(facts, facts.c.id == run_targets.c.facts_id)
                .join(findings, findings.c.id == run_targets.c.findings_id)
                .where(run_targets.c.run_id == run_id, *([targets.c.label.in_(list(only))] if only is not None else []))
                .order_by(run_targets.c.position)
            ).all()
        items = [_target_report(row, codec.decode_facts(row.facts_doc, row.started, row.finished)) for row in rows]
        verdict, exit_code = run_outcome(items)
        options = ScanOptions.model_validate_json(run.options)
        if run.status == "interrupted" and not options.interrupted:
            options = options.model_copy(update={"interrupted": True})
        return Report(
            started_at=_time(run.started) or datetime.now(UTC),
            finished_at=_time(run.finished)
            or _time(max((r.finished for r in rows), default=run.started))
            or datetime.now(UTC),
            options=options,
            packs=[PackInfo.model_validate(p) for p in json.loads(run.packs)],
            targets=items,
            summary=summarise(items),
            gate=GateInfo.model_validate_json(run.gate) if run.gate else GateInfo(),
            verdict=verdict,
            exit_code=exit_code,
        )

    def latest_runs_covering(self, labels: Sequence[str], count: int = 2) -> list[RunInfo]:
        """The newest ``count`` runs (newest first) that hold every one of ``labels`` (every run when empty)."""
        found = []
        with self.engine.connect() as connection:
            for run in self.runs():
                if labels:
                    have = set(
                        connection.execute(
                            select(targets.c.label)
                            .join(run_targets, run_targets.c.target_id == targets.c.id)
                            .where(run_targets.c.run_id == run.id, targets.c.label.in_(list(labels)))
                        ).scalars()
                    )
                    if have != set(labels):
                        continue
                found.append(run)
                if len(found) == count:
                    break
        return found

    def _target_ids_for(self, connection: Connection, names: Sequence[str]) -> list[int] | None:
        """Targets named by label, host or host:port; None for all."""
        if not names:
            return None
        ids = []
        for row in connection.execute(select(targets)):
            if row.label in names or row.host in names or f"{row.host}:{row.port}" in names:
                ids.append(row.id)
        return ids

    def latest_states(self) -> list[TimelineEntry]:
        """Every target's latest state (its newest run): verdict, grade, leaf certificate, failed rules."""
        leaf = certificates.alias("leaf")
        query = (
            select(run_targets, targets.c.label, leaf.c.sha256, leaf.c.issuer, leaf.c.not_after)
            .select_from(targets)
            .join(run_targets, run_targets.c.id == targets.c.latest)
            .outerjoin(leaf, and_(leaf.c.facts_id == run_targets.c.facts_id, leaf.c.position == 0))
            .order_by(targets.c.label)
        )
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
            failed = self._failed(connection, {r.findings_id for r in rows})
        entries: dict[int, TimelineEntry] = {}
        for row in rows:  # a target serving several leaves (deployments): its first
            entries.setdefault(row.id, self._entry(row, (row.sha256, row.issuer, row.not_after), failed))
        return list(entries.values())

    def labels(self, run_id: int) -> list[str]:
        """The labels of the targets a run holds, sorted."""
        query = (
            select(targets.c.label)
            .join(run_targets, run_targets.c.target_id == targets.c.id)
            .where(run_targets.c.run_id == run_id)
        )
        with self.engine.connect() as connection:
            return sorted(connection.execute(query).scalars())

    def changes(self, first: int, second: int) -> list[str]:
        """Targets whose facts or findings differ between two runs, or that are in only one of them: what a diff
        of the runs needs to decode (the others are the same documents)."""

        def documents(run_id: int) -> dict[str, tuple[int, int]]:
            query = (
                select(targets.c.label, run_targets.c.facts_id, run_targets.c.findings_id)
                .join(targets, targets.c.id == run_targets.c.target_id)
                .where(run_targets.c.run_id == run_id)
            )
            return {row.label: (row.facts_id, row.findings_id) for row in connection.execute(query)}

        with self.engine.connect() as connection:
            old, new = documents(first), documents(second)
        return sorted(label for label in old.keys() | new.keys() if old.get(label) != new.get(label))

    def timeline(self, names: Sequence[str] = (), since: datetime | None = None) -> list[TimelineEntry]:
        """Per target (by label, host or host:port; all when empty), each run's verdict, grade, leaf
        certificate and failed rules, oldest first."""
        query = (
            select(run_targets, targets.c.label, runs.c.started.label("run_started"))
            .join(targets, targets.c.id == run_targets.c.target_id)
            .join(runs, runs.c.id == run_targets.c.run_id)
            .order_by(targets.c.label, run_targets.c.run_id)
        )
        if since is not None:
            query = query.where(runs.c.started >= since.timestamp())
        with self.engine.connect() as connection:
            ids = self._target_ids_for(connection, names)
            if ids is not None:
                query = query.where(run_targets.c.target_id.in_(ids))
            return self._entries(connection, connection.execute(query).all())

    def _entries(self, connection: Connection, rows: Sequence[Any]) -> list[TimelineEntry]:
        leaves = self._leaves(connection, {r.facts_id for r in rows})
        failed = self._failed(connection, {r.findings_id for r in rows})
        return [self._entry(row, leaves.get(row.facts_id, (None, None, None)), failed) for row in rows]

    @staticmethod
    def _entry(row: Any, leaf: tuple[Any, Any, Any], failed: dict[int, tuple[str, ...]]) -> TimelineEntry:
        return TimelineEntry(
            run_id=row.run_id,
            target=row.label,
            at=_time(row.finished) or datetime.now(UTC),
            verdict=row.verdict,
            gate_verdict=row.gate_verdict,
            grade=row.grade,
            error_class=row.error_class,
            certificate=leaf[0],
            issuer=leaf[1],
            not_after=_time(leaf[2]),
            failed_rules=failed.get(row.findings_id, ()),
        )

    def _leaves(self, connection: Connection, ids: set[int]) -> dict[int, tuple[str, str, float]]:
        out: dict[int, tuple[str, str, float]] = {}
        for chunk in _chunks(sorted(ids)):
            query = select(certificates).where(certificates.c.facts_id.in_(chunk), certificates.c.position == 0)
            for row in connection.execute(query.order_by(certificates.c.facts_id)):
                out.setdefault(row.facts_id, (row.sha256, row.issuer, row.not_after))
        return out

    def _failed(self, connection: Connection, ids: set[int]) -> dict[int, tuple[str, ...]]:
        out: dict[int, list[str]] = {}
        for chunk in _chunks(sorted(ids)):
            query = select(failures).where(failures.c.findings_id.in_(chunk), failures.c.status == "fail")
            for row in connection.execute(query):
                out.setdefault(row.findings_id, []).append(f"{row.pack}/{row.rule}")
        return {key: tuple(value) for key, value in out.items()}

    def latest(self) -> list[tuple[int, int]]:
        """(target id, run_target id) of every target's latest run."""
        with self.engine.connect() as connection:
            query = select(targets.c.id, targets.c.latest).where(targets.c.latest.is_not(None))
            return [(row.id, row.latest) for row in connection.execute(query)]

    def expiring(self, within: timedelta, now: datetime | None = None) -> list[Expiry]:
        """Certificates (leaf and chain) of every target's latest run that expire before now + ``within`` (or
        have expired), soonest first. No network."""
        limit = ((now or datetime.now(UTC)) + within).timestamp()
        query = (
            select(targets.c.label, run_targets.c.run_id, certificates)
            .select_from(targets)
            .join(run_targets, run_targets.c.id == targets.c.latest)
            .join(certificates, certificates.c.facts_id == run_targets.c.facts_id)
            .where(certificates.c.not_after <= limit)
            .order_by(certificates.c.not_after, targets.c.label, certificates.c.position)
        )
        with self.engine.connect() as connection:
            return [
                Expiry(
                    row.label,
                    row.run_id,
                    row.position,
                    row.sha256,
                    row.subject,
                    row.issuer,
                    _time(row.not_after) or datetime.now(UTC),
                )
                for row in connection.execute(query)
            ]

    # --- retention ----------------------------------------------------------------------------------------

    def prune(self, keep: timedelta | None = None, keep_runs: int | None = None, now: datetime | None = None) -> Pruned:
        """Remove runs started longer than ``keep`` ago and all but the newest ``keep_runs``, then the facts and
        findings documents no remaining run refers to. Runs still running are kept."""
        with self.engine.begin() as connection:
            doomed: set[int] = set()
            if keep is not None:
                limit = ((now or datetime.now(UTC)) - keep).timestamp()
                doomed |= set(connection.execute(select(runs.c.id).where(runs.c.started < limit)).scalars())
            if keep_runs is not None:
                ordered = list(connection.execute(select(runs.c.id).order_by(runs.c.id.desc())).scalars())
                doomed |= set(ordered[keep_runs:])
            running = set(connection.execute(select(runs.c.id).where(runs.c.status == "running")).scalars())
            doomed -= running
            for chunk in _chunks(sorted(doomed)):
                connection.execute(delete(run_targets).where(run_targets.c.run_id.in_(chunk)))
                connection.execute(delete(runs).where(runs.c.id.in_(chunk)))
            stale = select(targets.c.id).where(
                targets.c.latest.is_not(None),
                ~select(run_targets.c.id).where(run_targets.c.id == targets.c.latest).exists(),
            )
            newest = select(func.max(run_targets.c.id)).where(run_targets.c.target_id == targets.c.id).scalar_subquery()
            connection.execute(update(targets).where(targets.c.id.in_(stale)).values(latest=newest))
            gone_facts = self._orphans(connection, facts, run_targets.c.facts_id, certificates.c.facts_id)
            gone_findings = self._orphans(connection, findings, run_targets.c.findings_id, failures.c.findings_id)
        self._ids.clear()
        return Pruned(len(doomed), gone_facts, gone_findings)

    def _orphans(self, connection: Connection, table: Any, used: Any, child: Any) -> int:
        unused = select(table.c.id).where(~select(used).where(used == table.c.id).exists())
        ids = list(connection.execute(unused).scalars())
        for chunk in _chunks(ids):
            connection.execute(delete(child.table).where(child.in_(chunk)))
            connection.execute(delete(table).where(table.c.id.in_(chunk)))
        return len(ids)


def _chunks(values: Sequence[int], size: int = 500) -> Iterable[list[int]]:
    for start in range(0, len(values), size):
        yield list(values[start : start + size])


class Recorder:
    """A scan's listener that writes each finished target to the store. A store failure stops the recording
    (``failure`` says why) but never the scan: its reports are still written."""

    def __init__(self, store: Store, run_id: int) -> None:
        self.store = store
        self.name = store.name
        self.run_id = run_id
        self.position = 0
        self.written = 0
        self.failure: str | None = None

    def planned(self, total: int, kept: int = 0) -> None:
        pass

    def finished(self, result: TargetReport) -> None:
        if self.failure is not None:
            return
        try:
            self.store.add_target(self.run_id, self.position, result)
        except SQLAlchemyError as exc:
            self.failure = _reason(exc)
            return
        self.position += 1
        self.written += 1

    def close(self, report: Report | None, interrupted: bool) -> None:
        """The run finished (or interrupted); targets the stream did not write (resumed ones) written now."""
        if self.failure is not None:
            return
        try:
            if report is not None:
                if self.written < len(report.targets):
                    self._rest(report)
                self.store.order_run(self.run_id, [t.target for t in report.targets])
            self.store.finish_run(self.run_id, "interrupted" if interrupted else "finished", report)
        except SQLAlchemyError as exc:
            self.failure = _reason(exc)

    def _rest(self, report: Report) -> None:
        """The report's targets the stream did not bring (an interrupted run's unfinished ones stay out)."""
        written = self._written_labels()
        missing = [
            t
            for t in report.targets
            if t.target not in written and (t.facts.error is None or t.facts.error.error_class.value != "interrupted")
        ]
        if missing:
            self.store.write_targets(self.run_id, [encode_target(self.position + i, t) for i, t in enumerate(missing)])

    def _written_labels(self) -> set[str]:
        with self.store.engine.connect() as connection:
            return set(
                connection.execute(
                    select(targets.c.label)
                    .join(run_targets, run_targets.c.target_id == targets.c.id)
                    .where(run_targets.c.run_id == self.run_id)
                ).scalars()
            )


__all__ = [
    "EncodedTarget",
    "Expiry",
    "Facts",
    "Finding",
    "Pruned",
    "Recorder",
    "RunInfo",
    "Store",
    "StoreError",
    "TimelineEntry",
    "encode_target",
    "open_store",
]
