"""The store at estate scale: a synthetic history of 10,000 targets scanned every 6 hours, written through the store's
own API (``Store.start_run`` / ``write_targets`` / ``finish_run``) into SQLite, then the queries people ask.

Facts documents are fabricated from a real one (bench/store-template.json: the facts and findings of a loopback
``openssl s_server`` scanned with the default pack) with realistic churn: most targets' facts are identical run to
run; ``--churn`` of them change per run (a cipher suite dropped or restored); each target's certificate is re-issued
every 60-90 days (its own period); ``--unreachable`` of targets are not reachable in a run. Findings follow the
facts (a target fails one rule while its suite is dropped).

Measured: the store's size on disk, the time to write one 10,000-target run (through ``write_targets``: encoded
targets; and the recorder's path, ``add_target`` of full TargetReports one transaction each, on 1,000 targets),
and the time of "the latest state of every target", one target's timeline, and the two runs a diff compares (the
targets whose documents differ, then both runs' reports rebuilt whole).

    python bench/store.py --days 365 --db /tmp/store-bench.db      # a year: 1,460 runs, 14.6 M run_targets
    python bench/store.py --days 30                                 # shorter; the size is extrapolated linearly
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scanner.report import ScanOptions, TargetReport
from scanner.store import EncodedTarget, encode_target, open_store
from scanner.store.codec import compress, digest

TEMPLATE = Path(__file__).resolve().parent / "store-template.json"
RUN_EVERY = timedelta(hours=6)


class Fleet:
    """Each target's state: certificate generation and when it rotates, whether a suite is dropped, unreachable."""

    def __init__(self, count: int, seed: int) -> None:
        self.random = random.Random(seed)  # noqa: S311 - reproducible churn, not secrets
        template = json.loads(TEMPLATE.read_text())
        self.facts = template["facts"]
        self.findings = template["findings"]
        self.count = count
        self.period = [self.random.randint(60, 90) for _ in range(count)]  # days between certificate re-issues
        self.offset = [self.random.randint(0, p - 1) for p in self.period]
        self.dropped = [False] * count
        self.cache: dict[tuple[int, int, bool], tuple[str, bytes, tuple]] = {}
        self.findings_docs = {failing: self._findings(failing) for failing in (False, True)}
        self.error_docs: dict[int, tuple[str, bytes]] = {}

    def _findings(self, failing: bool) -> tuple[str, bytes, tuple]:
        items = copy.deepcopy(self.findings)
        for item in items:
            item["status"] = "pass"
            item["decision"] = None
        failures: tuple = ()
        if failing:
            items[3]["status"] = "fail"
            items[3]["decision"] = {"state": "counted", "waiver": None}
            failures = ((items[3]["pack"], items[3]["rule"], "fail", items[3]["severity"], "counted"),)
        raw = json.dumps(items, sort_keys=True, separators=(",", ":")).encode()
        return digest(raw), compress(raw), failures

    def label(self, index: int) -> str:
        return f"host{index:05d}.example.net:443"

    def generation(self, index: int, day: float) -> int:
        return int((day + self.offset[index]) // self.period[index])

    def facts_doc(self, index: int, generation: int, start: datetime) -> tuple[str, bytes, tuple]:
        key = (index, generation, self.dropped[index])
        found = self.cache.get(key)
        if found is not None:
            return found
        facts = copy.deepcopy(self.facts)
        host = f"host{index:05d}.example.net"
        facts["target"].update(input=self.label(index), host=host, port=443, server_name=host,
                               ip_address=f"10.{index // 65536}.{index // 256 % 256}.{index % 256}")  # fmt: skip
        issued = start + timedelta(days=generation * self.period[index] - self.offset[index])
        leaf = facts["certificate"]["leaf"]
        leaf["sha256"] = digest(f"{index}/{generation}".encode())
        leaf["serial"] = leaf["sha256"][:32]
        leaf["subject"] = f"CN={host}"
        leaf["not_before"] = issued.isoformat()
        leaf["not_after"] = (issued + timedelta(days=self.period[index] + 7)).isoformat()
        leaf["subject_alt_names"] = [f"DNS:{host}"]
        facts["certificate"]["chain"] = [leaf]
        facts["certificate_deployments"][0]["certificate"] = facts["certificate"]
        if self.dropped[index]:
            tls12 = next(p for p in facts["protocols"] if p["version"] == "TLSv1.2")
            tls12["cipher_suites"] = tls12["cipher_suites"][1:]
        raw = json.dumps(facts, sort_keys=True, separators=(",", ":")).encode()
        certs = (
            (0, leaf["sha256"], leaf["subject"], leaf["issuer"], datetime.fromisoformat(leaf["not_after"]).timestamp()),
        )
        found = self.cache[key] = (digest(raw), compress(raw, dictionary=True), certs)
        self.cache.pop((index, generation - 2, False), None)
        self.cache.pop((index, generation - 2, True), None)
        return found

    def error_doc(self, index: int) -> tuple[str, bytes]:
        if index not in self.error_docs:
            facts = {
                "schema_version": "1",
                "status": "error",
                "target": self.facts["target"] | {"input": self.label(index)},
                "error": {"error_class": "timeout", "message": "no answer within 5 s"},
            }
            raw = json.dumps(facts, sort_keys=True, separators=(",", ":")).encode()
            self.error_docs[index] = (digest(raw), compress(raw, dictionary=True))
        return self.error_docs[index]

    def run(self, at: datetime, start: datetime, churn: float, unreachable: float) -> list[EncodedTarget]:
        day = (at - start).total_seconds() / 86400
        items = []
        for index in range(self.count):
            if self.random.random() < churn:
                self.dropped[index] = not self.dropped[index]
            host = f"host{index:05d}.example.net"
            if self.random.random() < unreachable:
                sha, doc = self.error_doc(index)
                certs: tuple = ()
                findings = self.findings_docs[False]
                verdict = "error"
                error: str | None = "timeout"
            else:
                sha, doc, certs = self.facts_doc(index, self.generation(index, day), start)
                findings = self.findings_docs[self.dropped[index]]
                verdict = "fail" if self.dropped[index] else "pass"
                error = None
            items.append(
                EncodedTarget(
                    position=index,
                    label=self.label(index),
                    host=host,
                    port=443,
                    sni=host,
                    starttls="",
                    started=at.timestamp() + index * 0.01,
                    finished=at.timestamp() + index * 0.01 + 2.5,
                    verdict=verdict,
                    gate_verdict=verdict,
                    error_class=error,
                    facts_sha=sha,
                    facts_doc=doc,
                    findings_sha=findings[0],
                    findings_doc=findings[1],
                    certificates=certs,
                    failures=findings[2] if verdict != "error" else (),
                )
            )
        return items


def timed(call: object, repeat: int = 5) -> tuple[float, object]:
    times = []
    result = None
    for _ in range(repeat):
        started = time.perf_counter()
        result = call()  # type: ignore[operator]
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def _checkpointed_size(db: Path) -> int:
    checkpoint = sqlite3.connect(db)  # outside the store's BEGIN IMMEDIATE: a checkpoint cannot run in a transaction
    checkpoint.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    checkpoint.close()
    return size_of(db)


def size_of(db: Path) -> int:
    return sum(p.stat().st_size for p in db.parent.glob(db.name + "*"))


def main() -> None:  # noqa: PLR0915 - one measurement after another, in order
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--targets", type=int, default=10_000)
    parser.add_argument("--days", type=float, default=365)
    parser.add_argument("--churn", type=float, default=0.02, help="share of targets whose facts change per run")
    parser.add_argument("--unreachable", type=float, default=0.005)
    parser.add_argument("--db", type=Path, default=None)
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--every", type=int, default=40, help="print progress every N runs")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here too")
    args = parser.parse_args()
    db = args.db or Path(tempfile.mkdtemp(prefix="tlsgate-store-bench-")) / "history.db"
    db.parent.mkdir(parents=True, exist_ok=True)
    for old in db.parent.glob(db.name + "*"):
        old.unlink()
    store = open_store(f"sqlite:///{db}")
    fleet = Fleet(args.targets, args.seed)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    runs = int(args.days * 24 / 6)
    options = ScanOptions(timeout=5, packs=["essentials"])
    write_times = []
    first_size = 0
    began = time.monotonic()
    for number in range(runs):
        at = start + number * RUN_EVERY
        items = fleet.run(at, start, args.churn, args.unreachable)
        t0 = time.perf_counter()
        run_id = store.start_run("scan", options, [], at)
        store.write_targets(run_id, items)
        store.finish_run(run_id, "finished")
        write_times.append(time.perf_counter() - t0)
        if number == 0:
            first_size = _checkpointed_size(db)
        if number % args.every == 0:
            print(f"run {number + 1}/{runs}: write {write_times[-1]:.2f} s, size {size_of(db) / 1e6:.0f} MB, "
                  f"{time.monotonic() - began:.0f} s so far", flush=True)  # fmt: skip
    generated = time.monotonic() - began
    size = _checkpointed_size(db)

    # the recorder's path: full TargetReports, one transaction per target (as a scan writes them)
    reports = _target_reports(store, 1_000)
    run_id = store.start_run("scan", options, [], start + runs * RUN_EVERY)
    t0 = time.perf_counter()
    for position, item in enumerate(reports):
        store.add_target(run_id, position, item)
    per_target = (time.perf_counter() - t0) / len(reports)
    store.finish_run(run_id, "finished")
    encode_time = statistics.median(_encode_times(reports))

    all_runs = store.runs()
    full = [r for r in all_runs if r.targets == args.targets]
    latest_t, latest = timed(store.latest_states)
    one_t, one = timed(lambda: store.timeline([fleet.label(4242)]))
    changes_t, changed = timed(lambda: store.changes(full[1].id, full[0].id))
    changed_reports_t, _ = timed(
        lambda: [store.report(run.id, store.changes(full[1].id, full[0].id)) for run in full[:2]], repeat=3
    )
    reports_t, _ = timed(lambda: (store.report(full[1].id), store.report(full[0].id)), repeat=1)
    figures = {
        "date": datetime.now(UTC).date().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs (shared), {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version}",
        "targets": args.targets,
        "days": args.days,
        "runs": runs,
        "run_targets": runs * args.targets,
        "churn_per_run": args.churn,
        "generate_seconds": round(generated, 1),
        "size_bytes": size,
        "size_after_first_run_bytes": first_size,
        # the first run stores every target's facts; each later run adds its rows and the changed documents
        "size_per_year_bytes_extrapolated": int(first_size + (size - first_size) * (1460 - 1) / max(runs - 1, 1)),
        "write_run_seconds_median": round(statistics.median(write_times), 3),
        "write_run_seconds_last": round(write_times[-1], 3),
        "recorder_add_target_ms": round(per_target * 1000, 2),
        "encode_target_ms": round(encode_time * 1000, 2),
        "latest_states_ms": round(latest_t * 1000, 1),
        "latest_states_count": len(latest),  # type: ignore[arg-type]
        "timeline_ms": round(one_t * 1000, 1),
        "timeline_entries": len(one),  # type: ignore[arg-type]
        "diff_changed_targets_ms": round(changes_t * 1000, 1),
        "diff_changed_targets": len(changed),  # type: ignore[arg-type]
        "diff_changed_targets_decoded_s": round(changed_reports_t, 2),
        "diff_two_full_reports_s": round(reports_t, 2),
    }
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    store.close()


def _target_reports(store: object, count: int) -> list[TargetReport]:
    """Full TargetReports (the template's facts for other hosts), as a scan hands them to the recorder."""
    from scanner.facts import Facts  # noqa: PLC0415
    from scanner.findings import Finding  # noqa: PLC0415

    template = json.loads(TEMPLATE.read_text())
    base = Facts.model_validate(template["facts"])
    findings = [Finding.model_validate(f) for f in template["findings"]]
    items = []
    for index in range(count):
        host = f"recorded{index:05d}.example.net"
        info = base.target.model_copy(update={"input": f"{host}:443", "host": host, "port": 443})
        facts = base.model_copy(update={"target": info})
        items.append(
            TargetReport(target=f"{host}:443", verdict="fail", gate_verdict="fail", facts=facts, findings=findings)
        )
    del store
    return items


def _encode_times(items: list[TargetReport]) -> list[float]:
    times = []
    for position, item in enumerate(items[:200]):
        t0 = time.perf_counter()
        encode_target(position, item)
        times.append(time.perf_counter() - t0)
    return times


if __name__ == "__main__":
    main()
