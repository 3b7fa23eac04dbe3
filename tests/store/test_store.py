"""The store against real databases: an SQLite file in a temp dir and a PostgreSQL server the suite starts itself
(tests/postgres.py); scans of real loopback servers whose configuration changes between runs."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest
from alembic.command import upgrade
from alembic.config import Config
from sqlalchemy import create_engine, text

from scanner.findings import Finding, Status
from scanner.gate import run_outcome
from scanner.report import Report, ScanOptions, summarise
from scanner.schemas import schema_dir
from scanner.store import MIGRATIONS, Store, StoreError, _engine_url, encode_target, open_store
from tests.helpers import (
    client_pki,
    free_port,
    issue_certificate,
    protocol_facts,
    run_tlsgate,
    server_process,
    target_report,
    tlsgate_command,
)
from tests.postgres import fresh_database, postgres_url  # noqa: F401 - the session fixture

NOW = dt.datetime.now(dt.UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A new empty store: an SQLite file, or a new database on the session's PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'history.db'}"
    server = request.getfixturevalue("postgres_url")
    return fresh_database(server, f"t_{abs(hash(request.node.name)) % 10**8}")


@contextlib.contextmanager
def openssl_on(port: int, cert: Path, key: Path, *args: str) -> Iterator[None]:
    """``openssl s_server`` on a given loopback port: the same target from run to run, its configuration changed."""
    openssl = shutil.which("openssl")
    assert openssl
    command = [openssl, "s_server", "-accept", f"127.0.0.1:{port}", "-cert", str(cert), "-key", str(key),
               "-quiet", "-www", *args]  # fmt: skip
    with server_process(command, port, "openssl s_server"):
        yield


def scan(store: str, ca: Path, report: Path, *targets: str) -> str:
    run = run_tlsgate("scan", *targets, "--store", store, "--ca-file", str(ca), "--offline", "--json", str(report))
    assert run.code in (1, 3), run.stderr
    assert report.exists()
    return run.stderr


def test_three_scans_of_changing_servers(store_url: str, tmp_path: Path) -> None:
    """Run 1: A and B up; run 2: A's certificate re-issued (expiring in 10 days); run 3: B stopped. history shows
    each change per target, expiring lists A's new certificate (B's latest run has none), the summary warns."""
    old = issue_certificate(tmp_path, "a-old", days=400)
    new = issue_certificate(tmp_path, "a-new", days=10)
    b = issue_certificate(tmp_path, "b", days=20)
    ca = tmp_path / "cas.pem"
    ca.write_bytes(old.ca.read_bytes() + new.ca.read_bytes() + b.ca.read_bytes())
    port_a, port_b = free_port(), free_port()
    a_name, b_name = f"127.0.0.1:{port_a}", f"127.0.0.1:{port_b}"
    with openssl_on(port_a, old.cert, old.key), openssl_on(port_b, b.cert, b.key):
        first = scan(store_url, ca, tmp_path / "1.json", a_name, b_name)
    with openssl_on(port_a, new.cert, new.key), openssl_on(port_b, b.cert, b.key):
        second = scan(store_url, ca, tmp_path / "2.json", a_name, b_name)
    with openssl_on(port_a, new.cert, new.key):
        scan(store_url, ca, tmp_path / "3.json", a_name, b_name)
    assert "1 certificate expires within 30 days" in first  # b's
    assert "2 certificates expire within 30 days" in second  # a's new one and b's

    shown = run_tlsgate("history", "--store", store_url, "--format", "json")
    assert shown.code == 0, shown.stderr
    document = json.loads(shown.stdout)
    jsonschema.validate(document, json.loads((schema_dir() / "history.schema.json").read_text()))
    assert [r["status"] for r in document["runs"]] == ["finished"] * 3
    assert [r["targets"] for r in document["runs"]] == [2, 2, 2]
    timelines = {t["target"]: t["timeline"] for t in document["targets"]}
    a_line, b_line = timelines[a_name], timelines[b_name]
    fingerprints = [e["certificate"] for e in a_line]
    assert fingerprints[0] != fingerprints[1] == fingerprints[2]
    assert [e["issuer"] for e in a_line] == ["CN=a-old test CA", "CN=a-new test CA", "CN=a-new test CA"]
    assert [e["error_class"] for e in b_line][:2] == [None, None]
    assert b_line[2]["error_class"] is not None and b_line[2]["verdict"] == "error"
    assert b_line[2]["certificate"] is None

    one = run_tlsgate("history", a_name, "--store", store_url)
    assert one.code == 0 and a_name in one.stdout and b_name not in one.stdout
    for form, mark in (("markdown", "| run |"), ("html", "<table>")):
        rendered = run_tlsgate("history", "--store", store_url, "--format", form)
        assert rendered.code == 0 and mark in rendered.stdout

    expiring = run_tlsgate("expiring", "--within", "30d", "--store", store_url, "--format", "json")
    assert expiring.code == 1, expiring.stderr
    jsonschema.validate(json.loads(expiring.stdout), json.loads((schema_dir() / "expiring.schema.json").read_text()))
    listed = json.loads(expiring.stdout)["certificates"]
    assert [(c["target"], c["issuer"], c["leaf"]) for c in listed] == [(a_name, "CN=a-new test CA", True)]
    quiet = run_tlsgate("expiring", "--within", "5d", "--store", store_url)
    assert quiet.code == 0 and "no certificate expires" in quiet.stdout

    # diff from the store: by default the newest run against the one before it (B stopped); by ids, runs 1 and 2
    # (A's certificate re-issued).
    latest = run_tlsgate("diff", "--store", store_url, "--format", "json", "--fail-on-regression")
    assert latest.code == 3, latest.stderr  # nothing weakened, but B could not be scanned
    states = {t["after"] or t["before"]: t for t in json.loads(latest.stdout)["targets"]}
    assert states[b_name]["state"] == "newly_unreachable" and states[a_name]["certificates"] == []
    ids = [str(r["id"]) for r in document["runs"]][::-1]  # oldest first
    rotated = run_tlsgate("diff", "--store", store_url, ids[0], ids[1], "--format", "json")
    assert rotated.code == 0, rotated.stderr
    changed = {t["after"]: t for t in json.loads(rotated.stdout)["targets"]}
    (change,) = changed[a_name]["certificates"]
    assert (change["before"]["issuer"], change["after"]["issuer"]) == ("CN=a-old test CA", "CN=a-new test CA")
    assert changed[b_name]["certificates"] == [] and changed[b_name]["state"] == "compared"
    assert run_tlsgate("diff", "--store", store_url, "999", "1000").code == 2

    store = open_store(store_url)
    try:
        runs = store.runs()
        saved = Report.model_validate_json((tmp_path / "2.json").read_text())
        rebuilt = store.report(runs[1].id)
        assert [t.target for t in rebuilt.targets] == [t.target for t in saved.targets]
        assert [t.facts for t in rebuilt.targets] == [t.facts for t in saved.targets]
        assert [t.findings for t in rebuilt.targets] == [t.findings for t in saved.targets]
        assert rebuilt.exit_code == saved.exit_code and rebuilt.packs == saved.packs
        assert [r.id for r in store.latest_runs_covering([a_name, b_name])] == [runs[0].id, runs[1].id]
    finally:
        store.close()


def test_concurrent_scans_lose_nothing(store_url: str, tmp_path: Path) -> None:
    """Two real `tlsgate scan` processes create and write one store at once: both runs whole."""
    url = store_url
    issued = issue_certificate(tmp_path, "c")
    ports = [free_port() for _ in range(6)]
    with contextlib.ExitStack() as stack:
        for port in ports:
            stack.enter_context(openssl_on(port, issued.cert, issued.key))
        names = [f"127.0.0.1:{p}" for p in ports]
        procs = [
            subprocess.Popen(
                [
                    *tlsgate_command(
                        "scan",
                        *group,
                        "--store",
                        url,
                        "--ca-file",
                        str(issued.ca),
                        "--offline",
                        "--concurrency",
                        "1",
                        "--json",
                        str(tmp_path / f"{i}.json"),
                    )
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
            )
            for i, group in enumerate((names[:3], names[3:]))
        ]
        for proc in procs:
            _, err = proc.communicate(timeout=300)
            assert proc.returncode in (0, 1), err.decode()
    store = open_store(url)
    try:
        runs = store.runs()
        assert [(r.status, r.targets) for r in runs] == [("finished", 3), ("finished", 3)]
        assert sorted(e.target for e in store.timeline()) == sorted(names)
    finally:
        store.close()


@pytest.mark.parametrize(("signum", "left"), [(signal.SIGKILL, "running"), (signal.SIGTERM, "interrupted")])
def test_killed_scan_is_interrupted_with_finished_targets_kept(tmp_path: Path, signum: int, left: str) -> None:
    """Killed mid-scan: SIGTERM marks the run interrupted itself; after SIGKILL it is left running and the next
    open marks it interrupted. Either way the target that had finished is kept, and only it."""
    url = f"sqlite:///{tmp_path / 'history.db'}"
    issued = issue_certificate(tmp_path, "k")
    port = free_port()
    release = []
    with socket.socket() as silent, openssl_on(port, issued.cert, issued.key):
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # accepts (the kernel does) and never answers
        hang = f"127.0.0.1:{silent.getsockname()[1]}"
        proc = subprocess.Popen(
            tlsgate_command("scan", f"127.0.0.1:{port}", hang, "--store", url, "--ca-file", str(issued.ca),
                            "--offline", "--timeout", "120"),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                with contextlib.suppress(sqlite3.Error):
                    db = sqlite3.connect(tmp_path / "history.db", timeout=5)
                    count = db.execute("SELECT count(*) FROM run_targets").fetchone()[0]
                    db.close()
                    if count == 1:
                        break
                time.sleep(0.2)
            else:
                pytest.fail("the finished target never reached the store")
            proc.send_signal(signum)
            assert proc.wait(timeout=60) == (130 if signum == signal.SIGTERM else -signal.SIGKILL)
        finally:
            release.append(True)
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    db = sqlite3.connect(tmp_path / "history.db")
    assert db.execute("SELECT status FROM runs").fetchall() == [(left,)]
    db.close()
    store = open_store(url)
    try:
        (run,) = store.runs()
        assert (run.status, run.targets) == ("interrupted", 1)
        report = store.report(run.id)
        assert [t.target for t in report.targets] == [f"127.0.0.1:{port}"] and report.options.interrupted
    finally:
        store.close()


def _report_of(verdicts: dict[str, bool], at: dt.datetime) -> list:
    items = []
    for name, failing in verdicts.items():
        status = Status.failed if failing else Status.passed
        finding = Finding(pack="p", rule="P-1", title="t", severity="high", status=status, message="m")
        items.append(target_report(protocol_facts(name, ["TLSv1.2"], at), [finding]))
    return items


def test_migrations_upgrade_an_older_store(store_url: str) -> None:
    """A store made at the first revision, with a run in it, is upgraded in place on open; the new failures
    table is filled from the findings it already held."""
    engine = create_engine(_engine_url(store_url))
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    (item,) = _report_of({"old.example:443": True}, NOW)
    encoded = encode_target(0, item)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        upgrade(config, "0001")
        tables = ["runs", "targets", "facts", "findings", "run_targets"]
        assert all(connection.execute(text(f"SELECT count(*) FROM {t}")).scalar() == 0 for t in tables)  # noqa: S608
        ids = {}
        ids["run"] = connection.execute(
            text("INSERT INTO runs (started, finished, status, version, command, options, packs, hostname, pid) "
                 "VALUES (:t, :t, 'finished', '0.old', 'scan', :o, '[]', 'h', 1) RETURNING id"),
            {"t": NOW.timestamp(), "o": ScanOptions(timeout=5, packs=["p"]).model_dump_json()},
        ).scalar_one()  # fmt: skip
        ids["target"] = connection.execute(
            text("INSERT INTO targets (label, host, port, sni, starttls) "
                 "VALUES ('old.example:443', 'old.example', 443, '', '') RETURNING id")
        ).scalar_one()  # fmt: skip
        for table, sha, doc in (("facts", encoded.facts_sha, encoded.facts_doc),
                                ("findings", encoded.findings_sha, encoded.findings_doc)):  # fmt: skip
            ids[table] = connection.execute(
                text(f"INSERT INTO {table} (sha256, document) VALUES (:s, :d) RETURNING id"),  # noqa: S608
                {"s": sha, "d": doc},
            ).scalar_one()
        ids["rt"] = connection.execute(
            text("INSERT INTO run_targets (run_id, target_id, position, started, finished, verdict, gate_verdict, "
                 "facts_id, findings_id) VALUES (:run, :target, 0, :t, :t, 'fail', 'fail', :facts, :findings) "
                 "RETURNING id"),
            {"t": NOW.timestamp(), **ids},
        ).scalar_one()  # fmt: skip
    engine.dispose()
    store = open_store(store_url)
    try:
        (entry,) = store.timeline(["old.example"])
        assert entry.failed_rules == ("p/P-1",)
        assert store.latest() == [(ids["target"], ids["rt"])]  # the pointer 0002 added, filled in
        assert store.report(ids["run"]).targets == [item]
        store.record_report("evaluate", _whole_report(_report_of({"old.example:443": False}, NOW)))
        assert [e.failed_rules for e in store.timeline(["old.example"])] == [("p/P-1",), ()]
    finally:
        store.close()


def _whole_report(items: list) -> Report:
    verdict, code = run_outcome(items)
    return Report(
        started_at=NOW, finished_at=NOW, options=ScanOptions(timeout=5, packs=["p"]), packs=[], targets=items,
        summary=summarise(items), verdict=verdict, exit_code=code,
    )  # fmt: skip


def test_a_newer_store_is_exit_2_before_scanning(tmp_path: Path, refused_port: int) -> None:
    url = f"sqlite:///{tmp_path / 'history.db'}"
    open_store(url).close()
    db = sqlite3.connect(tmp_path / "history.db")
    db.execute("UPDATE alembic_version SET version_num = '9999'")
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="newer than this tlsgate"):
        open_store(url)
    report = tmp_path / "r.json"
    run = run_tlsgate("scan", f"127.0.0.1:{refused_port}", "--store", url, "--json", str(report))
    assert run.code == 2
    assert "schema revision 9999, newer than this tlsgate" in run.stderr
    assert "refused" not in run.stderr and not report.exists()  # nothing was scanned
    assert run_tlsgate("history", "--store", url).code == 2


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("sqlite:////nonexistent-dir/h.db", "does not exist"),
        ("mysql://u@localhost/db", "unsupported database"),
        ("postgresql://nobody@127.0.0.1:1/none", "cannot open store postgresql://nobody@127.0.0.1:1/none"),
        ("junk", None),
    ],
)
def test_a_store_that_cannot_be_opened_is_exit_2(tmp_path: Path, refused_port: int, url: str, said: str | None) -> None:
    if url == "junk":
        garbage = tmp_path / "junk.db"
        garbage.write_bytes(b"this is not a database" * 100)
        url, said = str(garbage), "cannot open store"
    run = run_tlsgate("scan", f"127.0.0.1:{refused_port}", "--store", url, "--json", str(tmp_path / "r.json"))
    assert run.code == 2, run.stderr
    assert said in run.stderr and "Traceback" not in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1


def test_store_from_environment_and_evaluate(tmp_path: Path) -> None:
    """TLSGATE_STORE without --store; evaluate records its re-judged report whole."""
    url = f"sqlite:///{tmp_path / 'history.db'}"
    saved = tmp_path / "saved.json"
    saved.write_text(_whole_report(_report_of({"e.example:443": True}, NOW)).model_dump_json())
    run = run_tlsgate("evaluate", str(saved), env={**os.environ, "TLSGATE_STORE": url})
    assert run.code in (0, 1, 3), run.stderr
    store = open_store(url)
    try:
        (entry,) = store.runs()
        assert (entry.command, entry.status, entry.targets) == ("evaluate", "finished", 1)
    finally:
        store.close()


def test_prune_by_age_and_count(store_url: str) -> None:
    """Old runs go, and the facts only they used; facts a kept run shares stay."""
    store = open_store(store_url)
    try:
        ages = [400, 200, 10, 1]  # days ago
        for days in ages:
            at = NOW - dt.timedelta(days=days)
            items = _report_of({"shared.example:443": False, f"only{days}.example:443": True}, at)
            run = store.start_run("scan", ScanOptions(timeout=5, packs=["p"]), [], at)
            store.write_targets(run, [encode_target(i, t) for i, t in enumerate(items)])
            store.finish_run(run, "finished")
        assert len(store.runs(since=NOW - dt.timedelta(days=50))) == 2
        done = store.prune(keep=dt.timedelta(days=180))
        assert (done.runs, done.facts) == (2, 2)
        assert len(store.runs()) == 2
        assert len(store.latest()) == 3  # the pruned-only targets have no latest state; the others point to kept rows
        assert {e.target for e in store.timeline()} == {"shared.example:443", "only10.example:443", "only1.example:443"}
        assert store.report(store.runs()[1].id).targets[0].target == "shared.example:443"
        assert store.prune(keep_runs=1).runs == 1
        assert _count(store, "facts") == 2
    finally:
        store.close()
    url_run = run_tlsgate("history", "prune", "--keep", "1d", "--store", store_url)
    assert url_run.code == 0 and "pruned" in url_run.stdout
    assert run_tlsgate("history", "prune", "--store", store_url).code == 2


def _count(store: Store, table: str) -> int:
    with store.engine.connect() as connection:
        return int(connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())  # noqa: S608


def test_options_keep_no_secrets(tmp_path: Path) -> None:
    """The store keeps the report's options: a client key's password (given by environment) never reaches it."""
    url = f"sqlite:///{tmp_path / 'history.db'}"
    issued = issue_certificate(tmp_path, "s")
    client = client_pki(tmp_path / "client", password="hunter2-very-secret")  # noqa: S106 - a test PKI
    port = free_port()
    env = {**os.environ, "TLSGATE_TEST_SECRET": client.password}
    with openssl_on(port, issued.cert, issued.key, "-verify", "1", "-CAfile", str(client.ca)):
        run = run_tlsgate("scan", f"127.0.0.1:{port}", "--store", url, "--ca-file", str(issued.ca), "--offline",
                          "--client-p12", str(client.p12), "--client-password-env", "TLSGATE_TEST_SECRET",
                          env=env)  # fmt: skip
    assert run.code in (0, 1), run.stderr
    db = sqlite3.connect(tmp_path / "history.db")
    (options,) = db.execute("SELECT options FROM runs").fetchone()
    db.close()
    assert set(json.loads(options)) == set(ScanOptions.model_fields)
    for path in tmp_path.glob("history.db*"):
        assert b"hunter2" not in path.read_bytes()


def test_a_request_that_cannot_run_leaves_no_running_run(tmp_path: Path, refused_port: int) -> None:
    """A --resume file that is not saved facts is exit 2 after the store was opened: the run is not left running."""
    url = f"sqlite:///{tmp_path / 'history.db'}"
    bad = tmp_path / "resume.json"
    bad.write_text("not facts")
    run = run_tlsgate("scan", f"127.0.0.1:{refused_port}", "--store", url, "--resume", str(bad))
    assert run.code == 2, run.stderr
    db = sqlite3.connect(tmp_path / "history.db")
    assert db.execute("SELECT status, (SELECT count(*) FROM run_targets) FROM runs").fetchall() == [("interrupted", 0)]
    db.close()


def test_a_store_failing_mid_scan_keeps_the_reports(tmp_path: Path) -> None:
    """The store breaks after the first target was recorded (its run_targets table dropped by another process): the
    scan goes on, its report holds every target, and the command says so and exits 4."""
    url = f"sqlite:///{tmp_path / 'history.db'}"
    issued = issue_certificate(tmp_path, "f")
    port = free_port()
    report = tmp_path / "report.json"
    with socket.socket() as silent, openssl_on(port, issued.cert, issued.key):
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        hang = f"127.0.0.1:{silent.getsockname()[1]}"
        proc = subprocess.Popen(
            tlsgate_command("scan", f"127.0.0.1:{port}", hang, "--store", url, "--ca-file", str(issued.ca),
                            "--offline", "--timeout", "8", "--json", str(report)),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with contextlib.suppress(sqlite3.Error):
                db = sqlite3.connect(tmp_path / "history.db", timeout=5)
                if db.execute("SELECT count(*) FROM run_targets").fetchone()[0] == 1:
                    db.execute("DROP TABLE run_targets")
                    db.commit()
                    db.close()
                    break
                db.close()
            time.sleep(0.1)
        else:
            proc.kill()
            pytest.fail("the first target never reached the store")
        _, err = proc.communicate(timeout=300)
    assert proc.returncode == 4, err
    assert "cannot record the run in store" in err and "(the reports were written)" in err
    assert [t.target for t in Report.model_validate_json(report.read_text()).targets] == [f"127.0.0.1:{port}", hang]
