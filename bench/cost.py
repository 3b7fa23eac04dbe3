"""The cost curve of a fleet scan: N = 200 ... 10,000 nginx endpoints, by the local executor and by Dask (issue 18).

For each N it starts the endpoints (bench/nginxfleet.py: one nginx per configuration profile, a ``server`` block per
endpoint, 5 endpoints on each of N / 5 loopback addresses) and scans them with tlsgate's default plan (protocols x
suites + certificate), every option at its default:

  local    tlsgate scan --targets-file F --json OUT                                     one process
  processes-2  tlsgate scan --targets-file F --json OUT --executor processes --workers 2
           two worker processes forked by tlsgate (whole hosts each), the coordinator judging and writing
  dask-2   tlsgate scan --targets-file F --json OUT --executor dask --scheduler tcp://127.0.0.1:P
           on a cluster the benchmark starts for the row: ``dask scheduler`` and two ``dask worker --no-nanny``
           processes (a thread per core each), all on this machine, warmed up by a one-target scan before the
           row is measured (a standing cluster's workers have imported tlsgate already)
  nmap     nmap -Pn -n -p PORTS --script +ssl-enum-ciphers -oX OUT HOSTS               at the comparison N only

With ``--report jsonl`` tlsgate writes only its journal (``--format jsonl=OUT``) instead of the JSON report.
The Dask rows run only when ``tlsgate scan --help`` lists ``--executor``; otherwise they are reported as not
available. Each row records:

  wall           seconds from start to exit of the tlsgate (or nmap) process
  connections    connections the endpoints accepted during the row: nginx's own ``accepts`` counters (stub_status,
                 one per profile, so also by profile), exact whatever else talks on the machine; the kernel's
                 PassiveOpens of the benchmark's network namespace is kept beside it (it also counts the Dask
                 cluster's own connections)
  coordinator    peak memory of the tlsgate process: its process tree's VmRSS sampled every 20 ms (for processes-2
                 the tree holds the two forked workers too, their shared pages counted in each), and its CPU
                 seconds (workers included: the kernel's count of the tree). Not wait4's maxrss: a forked process
                 starts with its parent's peak, here the benchmark's own
  workers        each Dask worker's peak memory (VmHWM of the process, read before it is stopped, so its start is
                 counted too) and CPU seconds during the scan; the scheduler's too
  cpu            CPU seconds of the whole scan: coordinator + workers + scheduler (not the endpoints: servers' cpu)
  load           the machine's load averages at the start and at the end of the row (other work skews timings)
  ok             targets whose facts came back complete (status ok), and at the comparison N the targets for which
                 tlsgate found the same accepted suites per version as nmap

At the comparison N (200) the local and processes rows and nmap run ``--repeat`` times each, interleaved, and the
table keeps the run with the median wall time. Beside tlsgate's connections per target it prints the least a
ClientHello-elimination enumeration needs for the same servers: for each protocol version the server accepts with k
suites, k + 1 handshakes (offer every suite, drop the one chosen, until the server refuses), plus one for each
version it refuses — computed per target from the suites tlsgate found, with the certificate read from one of those
handshakes.

It prints a Markdown table and the goals of issue 18, met or not, and writes everything to
bench/results-cost-DATE.json:

    python bench/cost.py                                   # N = 200, 1000, 5000, 10000; local and dask-2; nmap
    python bench/cost.py --sizes 200,1000 --executors local
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from nginxfleet import NGINX, PROFILES, NginxFleet
from run import (
    Suites,
    agreement,
    command_for,
    cpu_seconds,
    enter_network_namespace,
    machine_facts,
    measure,
    read_output,
    tool_path,
)
from servers import install_signal_handlers

BENCH = Path(__file__).resolve().parent
EXECUTORS = ("local", "processes", "dask")
PROCESS_WORKERS = 2
SIZES = (200, 1000, 5000, 10000)
COMPARE_AT = 200
DASK_WORKERS = 2
VERSIONS = ("SSLv2", "SSLv3", "TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3")  # what an enumeration must ask about
GOAL_FLAT = 1.2  # the largest wall per target at most 20 % above the smallest
GOAL_COORDINATOR_MB = 300
GOAL_COORDINATOR_AT = 5000
GOAL_NMAP_RATIO = 0.5


@dataclass
class Row:
    tool: str  # "local", "processes-2", "dask-2" or "nmap"
    n: int
    run: int
    available: bool = True
    note: str = ""
    report: str = "json"  # what tlsgate wrote: json (--json, the whole report) or jsonl (--format jsonl, the journal)
    wall_s: float = 0.0
    connections: int = 0  # accepted by the endpoints (nginx)
    connections_by_profile: dict[str, int] = field(default_factory=dict)
    passive_opens: int = 0  # the namespace's kernel counter: also the Dask cluster's own connections
    coordinator_peak_mb: float = 0.0
    coordinator_cpu_s: float = 0.0
    worker_peaks_mb: list[float] = field(default_factory=list)
    worker_cpu_s: list[float] = field(default_factory=list)
    scheduler_peak_mb: float | None = None
    scheduler_cpu_s: float | None = None
    cpu_s: float = 0.0  # coordinator + workers + scheduler
    servers_cpu_s: float = 0.0
    machine_busy_pct: float = 0.0
    load_start: tuple[float, float, float] = (0.0, 0.0, 0.0)
    load_end: tuple[float, float, float] = (0.0, 0.0, 0.0)
    exit_code: int | None = None
    targets_ok: int = 0
    same_suites_as_nmap: int | None = None
    wall_runs: list[float] | None = None

    @property
    def wall_ms_per_target(self) -> float:
        return 1000 * self.wall_s / self.n

    @property
    def connections_per_target(self) -> float:
        return self.connections / self.n

    @property
    def cpu_ms_per_target(self) -> float:
        return 1000 * self.cpu_s / self.n


# --- the Dask cluster --------------------------------------------------------------------------------------------


def dask_available() -> bool:
    """True when this tlsgate has the Dask executor (``--executor`` in ``tlsgate scan --help``)."""
    result = subprocess.run(
        [tool_path("tlsgate"), "scan", "--help"], capture_output=True, text=True, check=False, timeout=120
    )
    return "--executor" in result.stdout


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def peak_mb(pid: int) -> float:
    """The kernel's high-water mark of the process's resident memory (VmHWM), MB."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


class DaskCluster:
    """A scheduler and ``workers`` worker processes on loopback, started for one row and stopped after it."""

    def __init__(self, workers: int, log_dir: Path) -> None:
        self.address = f"tcp://127.0.0.1:{_free_port()}"
        self.count = workers
        self.log_dir = log_dir
        self.scheduler: subprocess.Popen[bytes] | None = None
        self.workers: list[subprocess.Popen[bytes]] = []

    def _start(self, name: str, command: list[str]) -> subprocess.Popen[bytes]:
        with (self.log_dir / f"{name}.log").open("wb") as log:
            return subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def __enter__(self) -> DaskCluster:
        dask = tool_path("dask")
        port = self.address.rsplit(":", 1)[1]
        try:
            self.scheduler = self._start(
                "scheduler", [dask, "scheduler", "--host", "127.0.0.1", "--port", port, "--no-dashboard"]
            )
            for index in range(self.count):
                self.workers.append(
                    self._start(
                        f"worker-{index}",
                        [dask, "worker", self.address, "--no-nanny", "--no-dashboard", "--name", f"bench-{index}"],
                    )
                )
            self._wait_for_workers()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_for_workers(self, seconds: float = 120) -> None:
        """Until every worker has registered with the scheduler (its log says so)."""
        deadline = time.monotonic() + seconds
        logs = [self.log_dir / f"worker-{index}.log" for index in range(self.count)]
        while not all("Registered to" in log.read_text(errors="replace") for log in logs):
            if any(w.poll() is not None for w in self.workers) or time.monotonic() > deadline:
                raise RuntimeError(f"the Dask workers did not register with {self.address}: see {self.log_dir}")
            time.sleep(0.2)

    def pids(self) -> list[int]:
        return [w.pid for w in self.workers]

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        for process in [*self.workers, *([self.scheduler] if self.scheduler else [])]:
            if process.poll() is None:
                process.terminate()
        for process in [*self.workers, *([self.scheduler] if self.scheduler else [])]:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


# --- one row -----------------------------------------------------------------------------------------------------


def scan_command(
    targets_file: Path, out: Path, scheduler: str | None, report: str = "json", processes: int | None = None
) -> list[str]:
    """tlsgate's default plan over the targets; ``report`` json (the whole report, --json) or jsonl (the journal);
    on a Dask ``scheduler``, or on ``processes`` worker processes of its own."""
    output = ["--json", str(out)] if report == "json" else ["--format", f"jsonl={out}"]
    command = [tool_path("tlsgate"), "scan", "--targets-file", str(targets_file), *output]
    if scheduler:
        command += ["--executor", "dask", "--scheduler", scheduler]
    if processes:
        command += ["--executor", "processes", "--workers", str(processes)]
    return command


def read_journal(journal: Path) -> Path:
    """The journal's targets as a JSON report holding only them (what run.read_output reads), beside it."""
    targets = []
    with journal.open() as lines:
        for line in lines:
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if isinstance(entry, dict) and "facts" in entry:
                    targets.append(entry)
    report = journal.with_suffix(".report.json")
    report.write_text(json.dumps({"targets": targets}))
    return report


def warm_up(cluster: DaskCluster, fleet: NginxFleet, work: Path) -> None:
    """One target through the cluster before the row: its workers have imported tlsgate, as a standing cluster's
    have (the row then measures scanning, not a worker's first import of sslyze and the rest)."""
    one = work / "warm-up-target.txt"
    one.write_text(fleet.targets[0] + "\n")
    command = [*scan_command(one, work / "warm-up.json", cluster.address), "--quiet"]
    with (work / "warm-up.log").open("wb") as log:
        subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, check=False, timeout=300)


def run_row(
    tool: str, fleet: NginxFleet, run: int, work: Path, timeout: float, report: str = "json"
) -> tuple[Row, Suites]:
    """Scan the fleet once with ``tool`` (local, processes-2, dask-2 or nmap) and measure it."""
    n = fleet.count
    name = f"{tool}-{n}-{run}"
    out = work / (f"{name}.xml" if tool == "nmap" else f"{name}.{report}")
    targets_file = work / f"targets-{n}.txt"
    targets_file.write_text("\n".join(fleet.targets) + "\n")
    row = Row(tool, n, run, report=report if tool != "nmap" else "xml")
    cluster = DaskCluster(DASK_WORKERS, work) if tool.startswith("dask") else None
    with cluster if cluster else contextlib.nullcontext():
        if tool == "nmap":
            command = command_for("nmap", fleet, out)  # type: ignore[arg-type]  # the same hosts and ports
        else:
            processes = PROCESS_WORKERS if tool.startswith("processes") else None
            command = scan_command(targets_file, out, cluster.address if cluster else None, report, processes)
        if cluster:
            warm_up(cluster, fleet, work)
        time.sleep(2)  # let the previous row's connections close
        row.load_start = os.getloadavg()
        cluster_pids = ([cluster.scheduler.pid] if cluster and cluster.scheduler else []) + (
            cluster.pids() if cluster else []
        )
        cpu_before = {pid: cpu_seconds([pid]) for pid in cluster_pids}
        accepts_before = fleet.accepts()
        raw = measure(command, work / f"{name}.log", timeout, fleet.pids())
        accepts_after = fleet.accepts()
        row.load_end = os.getloadavg()
        if cluster and cluster.scheduler:
            row.worker_peaks_mb = [round(peak_mb(pid), 1) for pid in cluster.pids()]
            row.worker_cpu_s = [round(cpu_seconds([pid]) - cpu_before[pid], 2) for pid in cluster.pids()]
            row.scheduler_peak_mb = round(peak_mb(cluster.scheduler.pid), 1)
            row.scheduler_cpu_s = round(cpu_seconds([cluster.scheduler.pid]) - cpu_before[cluster.scheduler.pid], 2)
    # each status read is an accepted connection too: the second read's own
    row.connections_by_profile = {p: accepts_after[p] - accepts_before[p] - 1 for p in accepts_before}
    row.connections = sum(row.connections_by_profile.values())
    row.wall_s = round(raw.wall, 2)
    row.passive_opens = raw.connections
    # The sampled tree, not wait4's maxrss: a forked child starts with its parent's peak (this benchmark's own, after
    # it read the previous row's outputs), which Linux carries into the child's ru_maxrss.
    row.coordinator_peak_mb = round(raw.peak_mb, 1)
    row.coordinator_cpu_s = round(raw.cpu, 2)
    row.cpu_s = round(raw.cpu + sum(row.worker_cpu_s) + (row.scheduler_cpu_s or 0), 2)
    row.servers_cpu_s = round(raw.server_cpu, 2)
    row.machine_busy_pct = round(raw.machine_busy_pct)
    row.exit_code = raw.exit_code
    if report == "jsonl" and tool != "nmap":
        out = read_journal(out)
    row.targets_ok, suites = read_output("nmap" if tool == "nmap" else "tlsgate-enum", out)
    workers = f"  workers {row.worker_peaks_mb} MB" if row.worker_peaks_mb else ""
    print(
        f"{tool:7} N={n:<6} run {run}  wall {row.wall_s:7.1f} s  conns {row.connections:7} "
        f"({row.connections_per_target:.1f}/target)  coordinator {row.coordinator_peak_mb:5.0f} MB{workers}  "
        f"cpu {row.cpu_s:6.1f} s  load {row.load_start[0]:.1f}->{row.load_end[0]:.1f}  "
        f"ok {row.targets_ok}/{n}  exit {row.exit_code}",
        file=sys.stderr,
    )
    return row, suites


# --- what an elimination enumeration needs -------------------------------------------------------------------------


def elimination_minimum(accepted: dict[str, int]) -> int:
    """Handshakes a ClientHello-elimination enumeration needs: k + 1 per accepted version, 1 per refused one."""
    return sum(k + 1 for k in accepted.values()) + sum(1 for v in VERSIONS if v not in accepted)


def by_profile(fleet: NginxFleet, suites: Suites, row: Row) -> list[dict[str, object]]:
    """Per profile: the suites found, tlsgate's connections per target and the elimination minimum."""
    lines = []
    for profile in PROFILES:
        mine = [t for t in fleet.targets if fleet.profile_of(t) is profile]
        if not mine:
            continue
        found = [suites.get((t.rsplit(":", 1)[0], int(t.rsplit(":", 1)[1]))) for t in mine]
        minimum = [elimination_minimum(f) for f in found if f is not None]
        accepted = next((f for f in found if f), {})
        lines.append(
            {
                "profile": profile.name,
                "description": profile.description,
                "targets": len(mine),
                "accepted_suites": accepted,
                "tlsgate_connections_per_target": round(row.connections_by_profile[profile.name] / len(mine), 1),
                "elimination_minimum": round(statistics.mean(minimum), 1) if minimum else None,
            }
        )
    return lines


# --- summary and goals -------------------------------------------------------------------------------------------


def median_row(rows: list[Row]) -> Row:
    ordered = sorted(rows, key=lambda r: r.wall_s)
    chosen = ordered[(len(ordered) - 1) // 2]
    chosen.wall_runs = [r.wall_s for r in rows]
    return chosen


def table(rows: list[Row]) -> str:
    lines = [
        "| executor | N | wall s | ms / target | conns / target | coordinator peak MB | worker peaks MB "
        "| CPU s | CPU ms / target | ok | load start → end |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        if not r.available:
            lines.append(f"| {r.tool} | {r.n} | {r.note} | | | | | | | | |")
            continue
        workers = " / ".join(f"{p:.0f}" for p in r.worker_peaks_mb) or "-"
        lines.append(
            f"| {r.tool} | {r.n:,} | {r.wall_s:.1f} | {r.wall_ms_per_target:.1f} | {r.connections_per_target:.1f} "
            f"| {r.coordinator_peak_mb:.0f} | {workers} | {r.cpu_s:.1f} | {r.cpu_ms_per_target:.1f} "
            f"| {r.targets_ok:,}/{r.n:,} | {r.load_start[0]:.1f} → {r.load_end[0]:.1f} |"
        )
    return "\n".join(lines)


def linearity(tool: str, rows: list[Row]) -> dict[str, object]:
    """Is the wall linear in N, a + b x N (a start cost, b the cost of a target), every size within 20 % of the line?

    The least-squares line through (N, wall); each size's deviation is |wall - line| / line. Wall and CPU per
    target are given beside it: a start cost of a second or two weighs at small N only.
    """
    xs, ys = [float(r.n) for r in rows], [r.wall_s for r in rows]
    mean_x, mean_y = statistics.mean(xs), statistics.mean(ys)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / sum((x - mean_x) ** 2 for x in xs)
    start = mean_y - slope * mean_x
    deviation = {r.n: abs(r.wall_s - (start + slope * r.n)) / (start + slope * r.n) for r in rows}
    worst = max(deviation, key=lambda n: deviation[n])
    per_target = ", ".join(f"{r.n:,}: {r.wall_ms_per_target:.1f}" for r in rows)
    cpu = ", ".join(f"{r.n:,}: {r.cpu_ms_per_target:.1f}" for r in rows)
    return {
        "executor": tool,
        "goal": f"cost per target flat in N: wall linear in N within {GOAL_FLAT - 1:.0%}",
        "measured": f"wall = {start:.1f} s + {1000 * slope:.1f} ms x N, largest deviation {deviation[worst]:.0%} "
        f"(N = {worst:,}); wall ms per target {per_target}; CPU ms per target {cpu}",
        "met": deviation[worst] <= GOAL_FLAT - 1,
    }


def goals(rows: list[Row]) -> list[dict[str, object]]:
    """The goals of issue 18, each met or not (or not measured)."""
    verdicts: list[dict[str, object]] = []
    for tool in dict.fromkeys(r.tool for r in rows if r.tool != "nmap"):
        mine = [r for r in rows if r.tool == tool and r.available]
        if len({r.n for r in mine}) >= 3:  # any two points lie on a line
            verdicts.append(linearity(tool, mine))
        at = next((r for r in mine if r.n == GOAL_COORDINATOR_AT), None)
        if at:
            verdicts.append(
                {"executor": tool, "goal": f"coordinator peak memory under {GOAL_COORDINATOR_MB} MB at "
                 f"N = {GOAL_COORDINATOR_AT:,}", "measured": f"{at.coordinator_peak_mb:.0f} MB",
                 "met": at.coordinator_peak_mb < GOAL_COORDINATOR_MB}
            )  # fmt: skip
    nmap = next((r for r in rows if r.tool == "nmap" and r.n == COMPARE_AT), None)
    for tool in ("local", f"processes-{PROCESS_WORKERS}"):
        local = next((r for r in rows if r.tool == tool and r.n == COMPARE_AT), None)
        if local and nmap and nmap.wall_s:
            ratio = local.wall_s / nmap.wall_s
            verdicts.append(
                {"executor": tool, "goal": f"default plan at N = {COMPARE_AT} in at most {GOAL_NMAP_RATIO}x nmap's "
                 "wall", "measured": f"{local.wall_s:.1f} s vs {nmap.wall_s:.1f} s = {ratio:.2f}x (medians)",
                 "met": ratio <= GOAL_NMAP_RATIO}
            )  # fmt: skip
    return verdicts


# --- main --------------------------------------------------------------------------------------------------------


def _csv_ints(text: str) -> list[int]:
    return [int(v.replace("_", "")) for v in text.split(",") if v.strip()]


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=_csv_ints, default=list(SIZES), help="comma-separated N (default "
                        f"{','.join(map(str, SIZES))})")  # fmt: skip
    parser.add_argument("--executors", default=",".join(EXECUTORS), help=f"subset of {','.join(EXECUTORS)}")
    parser.add_argument("--repeat", type=int, default=3, help=f"runs of local and nmap at N = {COMPARE_AT}")
    parser.add_argument("--report", choices=("json", "jsonl"), default="json", help="what tlsgate writes: json "
                        "(--json: the whole report) or jsonl (--format jsonl: only the journal)")  # fmt: skip
    parser.add_argument("--no-nmap", action="store_true", help="skip the nmap comparison")
    parser.add_argument("--timeout", type=float, default=1800, help="kill a scan still running after this (s)")
    parser.add_argument("--out", type=Path, help="results file (default bench/results-cost-DATE.json)")
    parser.add_argument("--keep", type=Path, help="keep reports, logs and the cluster's logs in this directory")
    parser.add_argument("--note", default="", help="recorded with the results: which tlsgate build was measured")
    parser.add_argument("--from", dest="source", type=Path, help="scan nothing: print a results file's tables "
                        "and recompute its goals (written back to it)")  # fmt: skip
    parser.add_argument("--no-netns", action="store_true", help="stay in this network namespace (the endpoints' "
                        "loopback ports may then collide with other work's)")  # fmt: skip
    args = parser.parse_args(argv)
    args.executors = [e.strip() for e in args.executors.split(",") if e.strip()]
    unknown = set(args.executors) - set(EXECUTORS)
    if unknown:
        parser.error(f"unknown executors: {', '.join(sorted(unknown))}")
    return args


def run_size(
    fleet: NginxFleet, args: argparse.Namespace, dask: bool, work: Path
) -> tuple[list[Row], list[dict[str, object]]]:
    """Every row of one N; at the comparison N, the nmap runs and the connections by profile too."""
    n = fleet.count
    rows: list[Row] = []
    compare = n == COMPARE_AT and not args.no_nmap and "local" in args.executors
    found: dict[str, Suites] = {}
    own = [t for t in ("local", "processes") if t in args.executors]
    for run in range(1, (args.repeat if compare else 1) + 1):
        for tool in [*own, "nmap"] if compare else own:
            name = f"processes-{PROCESS_WORKERS}" if tool == "processes" else tool
            row, found[f"{name}-{run}"] = run_row(name, fleet, run, work, args.timeout, args.report)
            rows.append(row)
    if "dask" in args.executors:
        tool = f"dask-{DASK_WORKERS}"
        if dask:
            row, found[f"{tool}-1"] = run_row(tool, fleet, 1, work, args.timeout, args.report)
            rows.append(row)
        else:
            rows.append(Row(tool, n, 1, available=False, note="not available (tlsgate scan has no --executor)"))
    if not compare:
        return rows, []
    for row in rows:
        if row.available and row.tool != "nmap":
            row.same_suites_as_nmap = agreement(found[f"{row.tool}-{row.run}"], found["nmap-1"])
    first_local = next(r for r in rows if r.tool == "local")
    first_nmap = next(r for r in rows if r.tool == "nmap")
    profiles = by_profile(fleet, found["local-1"], first_local)
    for line in profiles:
        line["nmap_connections_per_target"] = round(
            first_nmap.connections_by_profile[str(line["profile"])] / int(str(line["targets"])), 1
        )
    return rows, profiles


def print_results(
    summary: list[Row], profiles: dict[int, list[dict[str, object]]], verdicts: list[dict[str, object]]
) -> None:
    print(table(summary))
    for n, lines in profiles.items():
        print(f"\nConnections per target at N = {n} by profile (tlsgate local, first run; nmap; the least an "
              "elimination enumeration needs):")  # fmt: skip
        print("| profile | accepted suites | tlsgate | nmap | elimination minimum |\n|---|---|---:|---:|---:|")
        for line in lines:
            print(f"| {line['profile']} | {line['accepted_suites']} | {line['tlsgate_connections_per_target']} "
                  f"| {line.get('nmap_connections_per_target', '-')} | {line['elimination_minimum']} |")  # fmt: skip
    print()
    for v in verdicts:
        print(f"- {v['executor']}: {v['goal']}: {v['measured']} — {'met' if v['met'] else 'NOT met'}")


def run_facts(executors: list[str]) -> dict[str, object]:
    facts = machine_facts()
    facts["dask_executor"] = "dask" in executors and dask_available()
    facts["distributed"] = _distributed_version()
    facts["dask_workers"] = DASK_WORKERS
    facts["scanner_source"] = _scanner_source()
    nginx = subprocess.run([NGINX, "-v"], capture_output=True, text=True, check=False)
    facts["nginx"] = nginx.stderr.strip()
    return facts


def prerequisites(args: argparse.Namespace, dask: bool) -> str | None:
    """What the run needs and this machine lacks, checked before anything starts, or None."""
    if not Path(NGINX).exists():
        return f"{NGINX} is needed for the endpoints (apt-get install nginx)"
    if COMPARE_AT in args.sizes and "local" in args.executors and not args.no_nmap and not shutil.which("nmap"):
        return "nmap is needed for the comparison at N = 200 (apt-get install nmap), or pass --no-nmap"
    if dask and not (Path(sys.executable).parent / "dask").exists() and not shutil.which("dask"):
        return "the dask command is needed for the Dask rows (pip install distributed), or pass --executors local"
    return None


def _scanner_source() -> str:
    """Where the measured tlsgate's code came from: its directory, and its git commit when it is a checkout."""
    code = "import pathlib, scanner; print(pathlib.Path(scanner.__file__).parent.parent)"
    where = subprocess.run(
        [sys.executable, "-P", "-c", code], capture_output=True, text=True, check=False
    ).stdout.strip()
    git = shutil.which("git")
    commit = subprocess.run([git, "-C", where, "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            check=False).stdout.strip() if git and where else ""  # fmt: skip
    return f"{where} {commit}".strip()


def compiled_like_an_install() -> None:
    """tlsgate's modules byte-compiled before the first row, and the compiled files used, as an installed wheel's
    are: with PYTHONDONTWRITEBYTECODE set (as some shells here set it), every row would compile tlsgate's sources
    again (~0.2-0.3 s a scan), a cost no installation pays."""
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    code = "import pathlib, scanner; print(pathlib.Path(scanner.__file__).parent)"
    package = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False).stdout.strip()
    if package:
        subprocess.run([sys.executable, "-m", "compileall", "-q", package], check=False)


def _distributed_version() -> str:
    code = "import distributed; print(distributed.__version__)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    return result.stdout.strip() or "not installed"


def reprint(source: Path) -> int:
    """The tables and goals of an earlier run's results file; the goals are recomputed and written back."""
    document = json.loads(source.read_text())
    fields = set(Row.__dataclass_fields__)
    summary = [Row(**{k: v for k, v in row.items() if k in fields}) for row in document["summary"]]
    profiles = {int(n): lines for n, lines in document["connections_by_profile"].items()}
    document["goals"] = goals(summary)
    print_results(summary, profiles, document["goals"])
    source.write_text(json.dumps(document, indent=2) + "\n")
    return 0


def main(argv: list[str]) -> int:
    args = parse(argv)
    if args.source:
        return reprint(args.source)
    if not args.no_netns:
        enter_network_namespace(argv, Path(__file__))
    install_signal_handlers()
    compiled_like_an_install()
    facts = run_facts(args.executors)
    facts["note"] = args.note
    missing = prerequisites(args, bool(facts["dask_executor"]))
    if missing:
        print(f"cost.py: {missing}", file=sys.stderr)
        return 2
    print(f"# tlsgate cost curve {facts['date']}\n{json.dumps(facts, indent=2)}", file=sys.stderr)
    work = Path(tempfile.mkdtemp(prefix="tlsgate-cost-out-")) if args.keep is None else args.keep
    work.mkdir(parents=True, exist_ok=True)
    runs: list[Row] = []
    profiles: dict[int, list[dict[str, object]]] = {}
    started = time.monotonic()
    try:
        for n in sorted(args.sizes):
            with NginxFleet(n) as fleet:
                print(f"\n## N={n:,}: {len(fleet.hosts):,} hosts x {len(fleet.ports)} ports, {fleet.mix()}",
                      file=sys.stderr)  # fmt: skip
                rows, lines = run_size(fleet, args, bool(facts["dask_executor"]), work)
                runs.extend(rows)
                if lines:
                    profiles[n] = lines
    except KeyboardInterrupt:
        print("interrupted: endpoints and cluster stopped", file=sys.stderr)
        return 130
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    summary = [
        median_row([r for r in runs if (r.tool, r.n) == key]) for key in dict.fromkeys((r.tool, r.n) for r in runs)
    ]
    verdicts = goals(summary)
    print_results(summary, profiles, verdicts)
    out = args.out or BENCH / f"results-cost-{dt.date.today().isoformat()}.json"
    per_target = [
        {**asdict(r), "wall_ms_per_target": round(r.wall_ms_per_target, 2),
         "connections_per_target": round(r.connections_per_target, 2),
         "cpu_ms_per_target": round(r.cpu_ms_per_target, 2)}
        for r in summary
    ]  # fmt: skip
    document = {
        "machine": facts,
        "bench_seconds": round(time.monotonic() - started),
        "profiles": [asdict(p) for p in PROFILES],
        "summary": per_target,
        "runs": [asdict(r) for r in runs],
        "connections_by_profile": profiles,
        "goals": verdicts,
    }
    out.write_text(json.dumps(document, indent=2) + "\n")
    print(f"\nresults written to {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
