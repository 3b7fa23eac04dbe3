"""Benchmark tlsgate against sslyze and nmap on N loopback TLS endpoints of mixed configurations.

For each N (default 50 and 200) it starts the endpoints (bench/servers.py), then runs, one after another on the
same endpoints:

  tlsgate-full   tlsgate scan TARGETS --all-facts --json FILE   every version, every suite, certificate, sessions ...
  tlsgate-enum   tlsgate scan TARGETS --json FILE               the default plan: protocols x suites + certificate
  sslyze         sslyze TARGETS --json_out=FILE                 sslyze's CLI default scan commands: its full scan
  nmap           nmap -Pn -n -p PORTS --script +ssl-enum-ciphers -oX FILE HOSTS

and measures for each:

  wall       seconds from start to exit of the tool's process
  conns      TCP connections the endpoints accepted during the run: the kernel's Tcp PassiveOpens counter
             (/proc/net/snmp) read before and after. The whole benchmark runs in a network namespace of its own
             (``unshare --net``), so nothing else on the machine adds to the counter, and no proxy sits between
             the tools and the servers. ``attempts`` is ActiveOpens: connects the tool started (refused ones too).
  peak MB    peak resident memory of the tool's whole process tree, sampled from /proc every 20 ms (sum of VmRSS
             over the tree); ``maxrss`` is the kernel's own peak for the largest single process (wait4), a check
             on the sampling
  cpu s      user + system CPU seconds of the tool (wait4)
  servers' cpu s  CPU seconds the endpoints spent during the run: the load the tool put on the servers
  machine busy    share of all CPUs busy during the run (tool, endpoints and anything else on the machine; the
             1-minute load average before each run is recorded too: other work skews the figures)
  ok         targets the tool reported on completely (tlsgate: facts status ok; sslyze: scan COMPLETED;
             nmap: an ssl-enum-ciphers result for the host and port)
  same suites    targets (host, port) for which the tool found the same number of accepted suites per protocol
             version as sslyze / nmap did: a fast run that missed suites would be no win

The endpoints form a fleet, not one machine: S = 5 services (ports) on each of N / 5 hosts, the loopback
addresses 127.0.0.2, 127.0.0.3 ... (N=50: 10 hosts x 5 services; N=200: 40 hosts x 5). TARGETS are the N
``host:port`` endpoints; nmap gets the hosts and, as PORTS, the 5 ports every host listens on: each tool scans
exactly the N endpoints. The spread matters because scanners are polite to one host: tlsgate holds at most
``per_host`` connections to one IP address whatever the port (and at most ``max_connections`` in all), and its
defaults stay on. With every endpoint on 127.0.0.1 the benchmark would measure one machine with 200 services,
throttled by that per-host cap, instead of a fleet.

With --repeat R each tool runs R times per N (interleaved with the others) and the table shows the run with the
median wall time, with the highest peak memory of all runs. It prints a Markdown table with the ratios against
sslyze and nmap, checks the goals of issue 7, and writes every run to bench/results-DATE.json. Nothing of tlsgate
is tuned: its default options (ProbeOptions: concurrency, max_connections, the politeness caps per_host and
per_server_connections, timeout) are read and recorded, never changed.

    python bench/run.py                # N = 50 and 200, all four tools
    python bench/run.py -n 50 --tools tlsgate-full,sslyze
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from servers import PROFILES, SERVICES_PER_HOST, Fleet, install_signal_handlers

BENCH = Path(__file__).resolve().parent
NETNS_MARK = "TLSGATE_BENCH_NETNS"
TOOLS = ("tlsgate-full", "tlsgate-enum", "sslyze", "nmap")
GOAL_MEMORY_MB = 300


# --- measuring -------------------------------------------------------------------------------------------------


def tcp_counters() -> dict[str, int]:
    """The kernel's TCP MIB counters of this network namespace."""
    lines = [line.split() for line in Path("/proc/net/snmp").read_text().splitlines() if line.startswith("Tcp:")]
    header, values = lines[0][1:], lines[1][1:]
    return {name: int(value) for name, value in zip(header, values, strict=True)}


def _children(pid: int) -> list[int]:
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                found.extend(int(c) for c in (task / "children").read_text().split())
    return found


def _rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_rss_kb(root: int) -> int:
    total, stack, seen = 0, [root], set()
    while stack:
        pid = stack.pop()
        if pid in seen:
            continue
        seen.add(pid)
        total += _rss_kb(pid)
        stack.extend(_children(pid))
    return total


@dataclass
class Measurement:
    tool: str
    n: int
    wall_s: float
    connections: int
    attempts: int
    peak_mb: float
    maxrss_mb: float
    cpu_s: float
    server_cpu_s: float  # CPU the endpoints spent meanwhile: the work the tool imposed on the servers
    machine_busy_pct: float  # all CPUs of the machine, busy share during the run
    load_before: float  # 1-minute load average before the run: other work on the machine skews the figures
    exit_code: int
    targets_ok: int
    same_suites_as_sslyze: int | None  # targets with the same accepted suites per version as sslyze found
    same_suites_as_nmap: int | None
    run: int
    command: list[str]
    wall_runs: list[float] | None = None  # in a summary: every run's wall time

    @property
    def peak(self) -> float:
        """Peak memory: the sampled tree sum, or the kernel's peak of one process when sampling missed a spike."""
        return max(self.peak_mb, self.maxrss_mb)


def summarise(results: list[Measurement]) -> list[Measurement]:
    """One row per (tool, N): the run with the median wall time, with the highest peak memory of all runs."""
    rows = []
    keys = list(dict.fromkeys((m.tool, m.n) for m in results))
    for tool, n in keys:
        runs = sorted((m for m in results if (m.tool, m.n) == (tool, n)), key=lambda m: m.wall_s)
        median = runs[(len(runs) - 1) // 2]
        rows.append(
            replace(
                median,
                peak_mb=max(m.peak_mb for m in runs),
                maxrss_mb=max(m.maxrss_mb for m in runs),
                targets_ok=min(m.targets_ok for m in runs),
                wall_runs=[m.wall_s for m in results if (m.tool, m.n) == (tool, n)],
            )
        )
    return rows


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds used so far by these processes (the endpoints)."""
    ticks = 0
    for pid in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return ticks / os.sysconf("SC_CLK_TCK")


def machine_cpu() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs: how loaded the whole machine was, tool and endpoints and anything else."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


@dataclass
class Raw:
    wall: float
    connections: int
    attempts: int
    peak_mb: float
    maxrss_mb: float
    cpu: float
    server_cpu: float
    machine_busy_pct: float
    load_before: float
    exit_code: int


def measure(command: list[str], log: Path, timeout: float, server_pids: list[int]) -> Raw:
    """Run ``command`` to its end and measure it (see the module's docstring)."""
    peak = [0]
    done = threading.Event()
    load = float(Path("/proc/loadavg").read_text().split()[0])
    before, servers_before, machine_before = tcp_counters(), cpu_seconds(server_pids), machine_cpu()
    started = time.monotonic()
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], tree_rss_kb(process.pid))
            done.wait(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    timer = threading.Timer(timeout, process.kill)
    timer.start()
    try:
        _, status, usage = os.wait4(process.pid, 0)
    except BaseException:
        process.kill()
        process.wait()
        raise
    finally:
        timer.cancel()
        done.set()
    wall = time.monotonic() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    sampler.join()
    after, machine_after = tcp_counters(), machine_cpu()
    busy, total = (machine_after[0] - machine_before[0]), (machine_after[1] - machine_before[1])
    return Raw(
        wall=wall,
        connections=after["PassiveOpens"] - before["PassiveOpens"],
        attempts=after["ActiveOpens"] - before["ActiveOpens"],
        peak_mb=peak[0] / 1024,
        maxrss_mb=usage.ru_maxrss / 1024,
        cpu=usage.ru_utime + usage.ru_stime,
        server_cpu=cpu_seconds(server_pids) - servers_before,
        machine_busy_pct=100 * busy / total if total else 0.0,
        load_before=load,
        exit_code=process.returncode,
    )


# --- the tools -------------------------------------------------------------------------------------------------


def tool_path(name: str) -> str:
    """A tool beside this Python (the virtualenv's tlsgate and sslyze), else on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if not found:
        raise SystemExit(f"{name} not found (beside {sys.executable} or on PATH)")
    return found


def command_for(tool: str, fleet: Fleet, out: Path) -> list[str]:
    if tool == "tlsgate-full":
        return [tool_path("tlsgate"), "scan", *fleet.targets, "--all-facts", "--json", str(out)]
    if tool == "tlsgate-enum":
        return [tool_path("tlsgate"), "scan", *fleet.targets, "--json", str(out)]
    if tool == "sslyze":
        return [tool_path("sslyze"), *fleet.targets, f"--json_out={out}"]
    if tool == "nmap":
        # "+" runs the script on every open port, whatever its number: without it, ssl-enum-ciphers runs only on
        # ports nmap already knows as TLS ones (443, 993 ...) unless -sV service detection (slower) says so.
        # Every host listens on the same ports (servers.SERVICES_PER_HOST), so hosts x ports is exactly the fleet;
        # when N is not a multiple of it, the last host's missing ports are closed ones nmap reports no result for.
        ports = ",".join(str(p) for p in fleet.ports)
        return [
            tool_path("nmap"),
            "-Pn",
            "-n",
            "-p",
            ports,
            "--script",
            "+ssl-enum-ciphers",
            "-oX",
            str(out),
            *fleet.hosts,
        ]
    raise ValueError(tool)


Suites = dict[tuple[str, int], dict[str, int]]  # (host address, port) -> {protocol version: accepted suites}

SSLYZE_VERSIONS = {
    "ssl_2_0_cipher_suites": "SSLv2", "ssl_3_0_cipher_suites": "SSLv3", "tls_1_0_cipher_suites": "TLSv1.0",
    "tls_1_1_cipher_suites": "TLSv1.1", "tls_1_2_cipher_suites": "TLSv1.2", "tls_1_3_cipher_suites": "TLSv1.3",
}  # fmt: skip


def read_output(tool: str, out: Path) -> tuple[int, Suites]:
    """(targets the tool reported on completely, accepted suites per version per (host, port)), from its output.

    The suites let the benchmark check that every tool did the same work: a fast run that missed suites is no win.
    """
    suites: Suites = {}
    try:
        if tool.startswith("tlsgate"):
            report = json.loads(out.read_text())
            ok = 0
            for target in report["targets"]:
                facts = target["facts"]
                ok += facts["status"] == "ok"
                where = facts["target"]
                suites[(where["ip_address"] or where["host"], where["port"])] = {
                    p["version"]: len(p.get("cipher_suites") or [])
                    for p in facts["protocols"]
                    if p["status"] == "accepted"
                }
            return ok, suites
        if tool == "sslyze":
            report = json.loads(out.read_text())
            ok = 0
            for result in report["server_scan_results"]:
                ok += result["scan_status"] == "COMPLETED"
                found = {}
                for key, version in SSLYZE_VERSIONS.items():
                    accepted = len(
                        ((result["scan_result"] or {}).get(key) or {}).get("result", {})["accepted_cipher_suites"]
                    )
                    if accepted:
                        found[version] = accepted
                where = result["server_location"]
                suites[(where.get("ip_address") or where["hostname"], where["port"])] = found
            return ok, suites
        if tool == "nmap":
            root = ET.parse(out).getroot()  # noqa: S314 -- nmap's own output, written by this run
            ok = 0
            for host in root.iter("host"):
                address = host.find("address[@addrtype='ipv4']")
                if address is None:
                    address = host.find("address")
                addr = address.get("addr", "?") if address is not None else "?"
                for port in host.iter("port"):
                    script = port.find("script[@id='ssl-enum-ciphers']")
                    if script is None:
                        continue
                    ok += 1
                    suites[(addr, int(port.get("portid", "0")))] = {
                        table.get("key", "?"): len(table.findall("table[@key='ciphers']/table"))
                        for table in script.findall("table")
                    }
            return ok, suites
    except (OSError, ValueError, KeyError, TypeError, ET.ParseError):
        return 0, suites
    raise ValueError(tool)


def agreement(mine: Suites, reference: Suites) -> int:
    """Targets for which both tools found the same number of accepted suites for each protocol version."""
    return sum(1 for endpoint, found in reference.items() if mine.get(endpoint) == found)


# --- facts about the run ---------------------------------------------------------------------------------------


def _first_line(command: list[str]) -> str:
    try:
        text = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False).stdout
    except OSError:
        return "unavailable"
    return text.strip().splitlines()[0] if text.strip() else "unavailable"


def machine_facts() -> dict[str, object]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    probe = (
        "import json, ssl; from scanner import __version__ as v; from scanner.probe.options import ProbeOptions as P;"
        "o = P(); print(json.dumps({'tlsgate': v, 'openssl': ssl.OPENSSL_VERSION,"
        " 'concurrency': o.concurrency, 'max_connections': o.max_connections, 'per_host': o.per_host,"
        " 'per_server_connections': o.per_server_connections, 'timeout': o.timeout}))"
    )
    tlsgate = json.loads(
        subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    )
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "cores": os.cpu_count(),
        "nproc": _first_line(["nproc"]),
        "cpu": cpu,
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "python_openssl": tlsgate.pop("openssl"),
        "openssl_cli": _first_line(["openssl", "version"]),
        "tlsgate": tlsgate.pop("tlsgate"),
        "tlsgate_defaults": tlsgate,
        "sslyze": _sslyze_version(),
        "nmap": _first_line([tool_path("nmap"), "--version"]) if shutil.which("nmap") else "not installed",
        "network_namespace": bool(os.environ.get(NETNS_MARK)),
    }


def _sslyze_version() -> str:
    code = "from sslyze.__version__ import __version__; print(__version__)"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False).stdout.strip()


# --- output ----------------------------------------------------------------------------------------------------


def _ratio(value: float, base: float | None) -> str:
    return f"{value / base:.2f}" if base else "-"


def _same(count: int | None) -> str:
    return "-" if count is None else str(count)


def table(results: list[Measurement]) -> str:
    rows = [
        "| tool | N | wall s | conns | peak MB | cpu s | servers' cpu s | machine busy | ok "
        "| same suites as sslyze / nmap | wall ÷ sslyze "
        "| wall ÷ nmap | conns ÷ sslyze | conns ÷ nmap |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for m in results:
        same_n = {r.tool: r for r in results if r.n == m.n}
        sslyze, nmap = same_n.get("sslyze"), same_n.get("nmap")
        rows.append(
            f"| {m.tool} | {m.n} | {m.wall_s:.1f} | {m.connections} | {m.peak:.0f} | {m.cpu_s:.1f} "
            f"| {m.server_cpu_s:.1f} | {m.machine_busy_pct:.0f}% "
            f"| {m.targets_ok}/{m.n} | {_same(m.same_suites_as_sslyze)} / {_same(m.same_suites_as_nmap)} "
            f"| {_ratio(m.wall_s, sslyze.wall_s if sslyze else None)} "
            f"| {_ratio(m.wall_s, nmap.wall_s if nmap else None)} "
            f"| {_ratio(m.connections, sslyze.connections if sslyze else None)} "
            f"| {_ratio(m.connections, nmap.connections if nmap else None)} |"
        )
    return "\n".join(rows)


def goals(results: list[Measurement]) -> list[dict[str, object]]:
    """The goals of issue 7, each met or not, per N."""
    verdicts: list[dict[str, object]] = []
    for n in sorted({m.n for m in results}):
        by = {m.tool: m for m in results if m.n == n}
        if "tlsgate-full" in by and "sslyze" in by:
            full, sslyze = by["tlsgate-full"], by["sslyze"]
            verdicts.append(
                {"n": n, "goal": "full scan in at most half of sslyze's wall time",
                 "measured": f"{full.wall_s:.1f} s vs {sslyze.wall_s:.1f} s = {full.wall_s / sslyze.wall_s:.2f}x",
                 "met": full.wall_s <= 0.5 * sslyze.wall_s}
            )  # fmt: skip
        if "tlsgate-enum" in by and "nmap" in by:
            enum, nmap = by["tlsgate-enum"], by["nmap"]
            verdicts.append(
                {"n": n, "goal": "protocol x suite enumeration no slower than nmap",
                 "measured": f"{enum.wall_s:.1f} s vs {nmap.wall_s:.1f} s = {enum.wall_s / nmap.wall_s:.2f}x",
                 "met": enum.wall_s <= nmap.wall_s}
            )  # fmt: skip
        if n >= 200:
            for tool in ("tlsgate-full", "tlsgate-enum"):
                if tool in by:
                    peak = by[tool].peak
                    verdicts.append(
                        {"n": n, "goal": f"{tool}: peak memory under {GOAL_MEMORY_MB} MB",
                         "measured": f"{peak:.0f} MB", "met": peak < GOAL_MEMORY_MB}
                    )  # fmt: skip
    return verdicts


# --- main ------------------------------------------------------------------------------------------------------


def enter_network_namespace(argv: list[str], script: Path = Path(__file__)) -> None:
    """Re-run ``script`` (this one) in a fresh network namespace (own loopback, own TCP counters), unless there."""
    if os.environ.get(NETNS_MARK):
        ip = shutil.which("ip")
        if not ip:
            raise SystemExit("ip (iproute2) is needed to bring up the namespace's loopback")
        subprocess.run([ip, "link", "set", "lo", "up"], check=True)
        return
    unshare = shutil.which("unshare")
    if not unshare:
        raise SystemExit("unshare (util-linux) is needed for the network namespace; or pass --no-netns")
    prefix = [unshare, "--net"] if os.geteuid() == 0 else [unshare, "--user", "--map-root-user", "--net"]
    env = {**os.environ, NETNS_MARK: "1"}
    os.execve(prefix[0], [*prefix, "--", sys.executable, str(script.resolve()), *argv], env)  # noqa: S606


def run_tools(tools: list[str], fleet: Fleet, run: int, work: Path, timeout: float) -> list[Measurement]:
    """Each tool once against the fleet, one after another; then cross-check what they found."""
    n = len(fleet.endpoints)
    measured: list[tuple[Measurement, Suites]] = []
    for tool in tools:
        suffix = "xml" if tool == "nmap" else "json"
        out, log = work / f"{tool}-{n}-{run}.{suffix}", work / f"{tool}-{n}-{run}.log"
        command = command_for(tool, fleet, out)
        time.sleep(2)  # let the previous run's connections close
        raw = measure(command, log, timeout, [e.process.pid for e in fleet.endpoints])
        ok, suites = read_output(tool, out)
        m = Measurement(
            tool, n, round(raw.wall, 2), raw.connections, raw.attempts, round(raw.peak_mb, 1), round(raw.maxrss_mb, 1),
            round(raw.cpu, 2), round(raw.server_cpu, 2), round(raw.machine_busy_pct), raw.load_before, raw.exit_code,
            ok, None, None, run, [Path(command[0]).name, command[1], "..."],
        )  # fmt: skip
        print(
            f"{tool:13} N={n:<4} run {run}  wall {m.wall_s:7.1f} s  conns {m.connections:6}  "
            f"peak {m.peak:5.0f} MB (sampled {m.peak_mb:.0f}, maxrss {m.maxrss_mb:.0f})  cpu {m.cpu_s:5.1f} s  "
            f"servers' cpu {m.server_cpu_s:5.1f} s  machine busy {m.machine_busy_pct:3.0f}%  load {m.load_before:.1f}  "
            f"ok {ok}/{n}  exit {m.exit_code}",
            file=sys.stderr,
        )
        measured.append((m, suites))
    reference = {m.tool: suites for m, suites in measured}
    for m, suites in measured:
        if "sslyze" in reference:
            m.same_suites_as_sslyze = agreement(suites, reference["sslyze"])
        if "nmap" in reference:
            m.same_suites_as_nmap = agreement(suites, reference["nmap"])
    return [m for m, _ in measured]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--count", type=int, action="append", help="endpoints (repeatable; default 50 and 200)")
    parser.add_argument("--tools", default=",".join(TOOLS), help=f"comma-separated subset of {','.join(TOOLS)}")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each tool; the table shows the median")
    parser.add_argument("--timeout", type=float, default=3600, help="kill a tool still running after this (s)")
    parser.add_argument("--out", type=Path, help="results file (default bench/results-DATE.json)")
    parser.add_argument("--keep", type=Path, help="keep each tool's report and log in this directory")
    parser.add_argument("--no-netns", action="store_true", help="stay in this network namespace: 'conns' then "
                        "counts every TCP connection accepted on the machine meanwhile")  # fmt: skip
    args = parser.parse_args(argv)
    tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    unknown = set(tools) - set(TOOLS)
    if unknown:
        parser.error(f"unknown tools: {', '.join(sorted(unknown))}")
    if not args.no_netns:
        enter_network_namespace(argv)
    install_signal_handlers()
    counts = args.count or [50, 200]
    facts = machine_facts()
    print(f"# tlsgate benchmark {facts['date']}", file=sys.stderr)
    print(json.dumps(facts, indent=2), file=sys.stderr)
    results: list[Measurement] = []
    work = Path(tempfile.mkdtemp(prefix="tlsgate-bench-out-")) if args.keep is None else args.keep
    work.mkdir(parents=True, exist_ok=True)
    mixes: dict[int, dict[str, int]] = {}
    layouts: dict[int, dict[str, object]] = {}
    try:
        for n in counts:
            with Fleet(n) as fleet:
                mixes[n] = fleet.mix()
                layouts[n] = {"hosts": len(fleet.hosts), "services_per_host": SERVICES_PER_HOST,
                              "addresses": f"{fleet.hosts[0]}-{fleet.hosts[-1]}", "ports": fleet.ports}  # fmt: skip
                print(
                    f"\n## N={n}: {len(fleet.endpoints)} endpoints up on {len(fleet.hosts)} hosts "
                    f"({layouts[n]['addresses']}, ports {fleet.ports}): {mixes[n]}",
                    file=sys.stderr,
                )
                for run in range(1, args.repeat + 1):
                    results.extend(run_tools(tools, fleet, run, work, args.timeout))
    except KeyboardInterrupt:
        print("interrupted: endpoints stopped", file=sys.stderr)
        return 130
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    summary = summarise(results)
    verdicts = goals(summary)
    print(table(summary))
    print()
    for v in verdicts:
        print(f"- N={v['n']}: {v['goal']}: {v['measured']} — {'met' if v['met'] else 'NOT met'}")
    out = args.out or BENCH / f"results-{dt.date.today().isoformat()}.json"
    document = {
        "machine": facts,
        "profiles": [{"name": p.name, "description": p.description, "s_server_args": list(p.args)} for p in PROFILES],
        "mix": mixes,
        "fleet": layouts,
        "summary": [asdict(m) for m in summary],
        "runs": [asdict(m) for m in results],
        "goals": verdicts,
    }
    out.write_text(json.dumps(document, indent=2) + "\n")
    print(f"\nresults written to {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
