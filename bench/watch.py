"""``tlsgate watch`` over a fleet for several cycles: CPU and memory per cycle stay flat, and /metrics stays small
and fast (issue 16's goals: no growth across cycles; /metrics for 1,000 targets under 1 MB and under 100 ms).

One nginx process serves N TLS endpoints (one ``server`` block each, SERVICES_PER_HOST ports on each of N / 5
loopback addresses, the layout of bench/servers.py, with its certificates: leaf + intermediate, CA given with
--ca-file). An inventory lists the N endpoints with ``every: INTERVAL``; ``tlsgate watch`` runs as a real process
with a SQLite store, ``--listen`` and JSON logs (and ``--site``, ``--notify`` to a loopback webhook receiver unless
turned off). The benchmark samples the process every 0.5 s (resident memory, CPU time from /proc) and, in each
cycle (one interval: the targets' jitter spreads a cycle's scans over the first tenth of it), GETs /metrics R
times twice: 3 s into the cycle, while it scans, and at 85 % of it, when it is idle.

A cycle's figures: CPU seconds the process used in it, its resident memory at the end and its peak, the runs
stored, and /metrics' size and median time. "Flat" is judged from the second cycle on (the first loads the
packs, the trust store and sslyze, and fills the store): the last cycle's end memory against the second's, and the
CPU of each cycle against the median.

    python bench/watch.py -n 1000 --cycles 6 --every 150 [--pack essentials] [--out bench/results-watch-DATE.json]

The default pack is a certificate pack (trust, name, validity and expiry: what expiry exporters watch), so that a
cycle is one handshake a target; ``--pack essentials`` watches the full default plan (every protocol and suite).
"""

from __future__ import annotations

import argparse
import http.server
import ipaddress
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from servers import SERVICES_PER_HOST, _free_base_port, host_of, make_pki

ROOT = Path(__file__).resolve().parent.parent
CERTIFICATE_PACK = """\
id: bench-certificate
title: Certificate watch (bench/watch.py)
version: "1.0.0"
source:
  {document: "RFC 5280 and RFC 9525", section: "6; 6", url: "https://www.rfc-editor.org/rfc/rfc5280", date: "2008-05"}
description: The certificate of each target is trusted, for its name, valid now and not expiring within 30 days.
rules:
  - {id: CERT-1, title: trusted, severity: critical, fact: certificate.trust, some: {trusted: true}}
  - {id: CERT-2, title: name, severity: critical, fact: certificate.hostname_match, equals: true,
     when: {fact: certificate.trust_name, exists: true}}
  - {id: CERT-3, title: not expired, severity: critical, fact: certificate.leaf.not_after, after: scan_time}
  - {id: CERT-4, title: not expiring, severity: medium, fact: certificate.leaf.days_remaining, min: 30,
     when: {fact: certificate.leaf.not_after, after: scan_time}}
"""


def nginx_config(directory: Path, pki: dict[str, tuple[Path, Path, Path]], endpoints: list[tuple[str, int]]) -> str:
    """One nginx worker serving every endpoint (RSA and ECDSA leaves alternating, TLS 1.2 and 1.3)."""
    blocks = []
    for index, (host, port) in enumerate(endpoints):
        cert, key, chain = pki["rsa" if index % 2 == 0 else "ecdsa"]
        full = directory / f"{cert.stem}-full.pem"
        if not full.exists():
            full.write_bytes(cert.read_bytes() + chain.read_bytes())
        blocks.append(
            f"    server {{ listen {host}:{port} ssl; ssl_certificate {full}; ssl_certificate_key {key};"
            f" ssl_protocols TLSv1.2 TLSv1.3; location / {{ return 200; }} }}"
        )
    d = directory
    servers = "\n".join(blocks)
    return f"""\
user root;
daemon off;
master_process off;
worker_processes 1;
worker_rlimit_nofile 65536;
pid {d}/nginx.pid;
lock_file {d}/nginx.lock;
error_log {d}/error.log warn;
events {{ worker_connections 16384; }}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    ssl_session_cache shared:bench:10m;
{servers}
}}
"""


class Receiver(http.server.ThreadingHTTPServer):
    """A loopback webhook receiver counting what it is sent."""

    received = 0


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", "0")))
        assert isinstance(self.server, Receiver)
        self.server.received += 1
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _proc(pid: int) -> tuple[float, int, int]:
    """CPU seconds (user + system), resident and peak resident bytes of ``pid``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return cpu, int(status["VmRSS"].split()[0]) * 1024, int(status["VmHWM"].split()[0]) * 1024


@dataclass
class Watch:
    """The watch process, its JSON log lines as they come, and its resources sampled twice a second."""

    process: subprocess.Popen[str]
    lines: list[dict[str, Any]] = field(default_factory=list)
    samples: list[tuple[float, float, int]] = field(default_factory=list)  # (time, cpu s, rss bytes)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._sample, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for raw in self.process.stderr:
            try:
                line = json.loads(raw)
            except ValueError:
                line = {"message": raw.rstrip(), "kind": "text"}
            with self.lock:
                self.lines.append(line)

    def _sample(self) -> None:
        while self.process.poll() is None:
            try:
                cpu, rss, _ = _proc(self.process.pid)
            except (OSError, KeyError, IndexError):
                return
            with self.lock:
                self.samples.append((time.monotonic(), cpu, rss))
            time.sleep(0.5)

    def wait_for(self, kind: str, count: int = 1, timeout: float = 3600) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                found = [line for line in self.lines if line.get("kind") == kind]
            if len(found) >= count:
                return found
            if self.process.poll() is not None:
                raise RuntimeError(f"watch exited ({self.process.returncode}): {self.lines[-5:]}")
            time.sleep(0.2)
        raise TimeoutError(f"no {count} {kind!r} lines in {timeout} s")

    def runs(self) -> list[dict[str, Any]]:
        with self.lock:
            return [line for line in self.lines if line.get("kind") == "run"]


def _metrics(url: str, rounds: int) -> dict[str, float]:
    times, size = [], 0
    with httpx.Client(timeout=10) as client:
        for _ in range(rounds):
            started = time.perf_counter()
            response = client.get(url, headers={"Accept-Encoding": "identity"})
            times.append(time.perf_counter() - started)
            size = len(response.content)
    return {"bytes": size, "median_ms": statistics.median(times) * 1000, "max_ms": max(times) * 1000}


def _files(args: argparse.Namespace, work: Path, endpoints: list[tuple[str, int]], hook: str) -> list[str]:
    """Write the inventory, the pack and the routing file; the watch command line."""
    pack = args.pack
    if pack == "certificate":
        (work / "certificate.yaml").write_text(CERTIFICATE_PACK)
        pack = str(work / "certificate.yaml")
    targets = [{"target": f"{h}:{p}"} for h, p in endpoints]
    inventory = work / "inventory.yaml"
    inventory.write_text(json.dumps({"defaults": {"packs": [pack], "every": f"{args.every}s"}, "targets": targets}))
    command = [sys.executable, "-m", "scanner.cli", "watch", "--inventory", str(inventory), "--store",
               f"sqlite:///{work / 'history.db'}", "--ca-file", str(work / "ca.pem"), "--listen", "127.0.0.1:0",
               "--log-format", "json", "--spool", str(work / "spool"), "--timeout", "5"]  # fmt: skip
    if not args.no_site:
        command += ["--site", str(work / "site")]
    if not args.no_notify:
        channel = {"kind": "webhook", "url_env": "BENCH_HOOK", "rate": "1000/s"}
        routes = {"channels": {"hook": channel}, "routes": [{"channels": ["hook"]}]}
        (work / "notify.yaml").write_text(json.dumps(routes))
        command += ["--notify", str(work / "notify.yaml")]
    os.environ["BENCH_HOOK"] = hook
    return command


def _sleep_until(watch: Watch, moment: float) -> None:
    while time.monotonic() < moment:
        time.sleep(0.2)
        if watch.process.poll() is not None:
            raise RuntimeError(f"watch exited ({watch.process.returncode}): {watch.lines[-5:]}")


def _cycles(watch: Watch, args: argparse.Namespace) -> list[dict[str, Any]]:
    port = watch.wait_for("listen", timeout=120)[0]["port"]
    url = f"http://127.0.0.1:{port}/metrics"
    started = time.monotonic()
    cycles: list[dict[str, Any]] = []
    taken = 0
    for k in range(args.cycles):
        begin, end = started + k * args.every, started + (k + 1) * args.every
        _sleep_until(watch, begin + 3.0)  # the cycle's scans are under way (due from its start, jitter after)
        busy = _metrics(url, args.rounds)
        _sleep_until(watch, begin + 0.85 * args.every)  # they are done (the interval is chosen so)
        idle = _metrics(url, args.rounds)
        _sleep_until(watch, end)
        runs = watch.runs()
        cycles.append(_cycle(watch, runs[taken:], begin, end, {"idle": idle, "while_scanning": busy}, k))
        taken = len(runs)
        print(json.dumps(cycles[-1]), flush=True)
    return cycles


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    hosts = [host_of(i) for i in range(0, args.n, SERVICES_PER_HOST)]
    base = _free_base_port(hosts, 30000)
    endpoints = [(host_of(i), base + i % SERVICES_PER_HOST) for i in range(args.n)]
    pki = make_pki(work, tuple(ipaddress.IPv4Address(h) for h in hosts))
    config = work / "nginx.conf"
    config.write_text(nginx_config(work, pki, endpoints))
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(65536, hard), hard))
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    nginx = subprocess.Popen([binary, "-p", str(work), "-e", str(work / "error.log"), "-c", str(config)])
    receiver = Receiver(("127.0.0.1", 0), _Handler)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    try:
        time.sleep(1.0)
        if nginx.poll() is not None:
            raise RuntimeError((work / "error.log").read_text()[-2000:])
        command = _files(args, work, endpoints, f"http://127.0.0.1:{receiver.server_port}/")
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        process = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env)
        watch = Watch(process)
        watch.start()
        try:
            cycles = _cycles(watch, args)
        finally:
            process.terminate()
            process.wait(timeout=120)
    finally:
        nginx.terminate()
        nginx.wait(timeout=30)
        receiver.shutdown()
    return {"cycles": cycles, "notifications_received": receiver.received, **_verdict(cycles)}


def _cycle(
    watch: Watch, mine: list[dict[str, Any]], begin: float, end: float, metrics: dict[str, Any], k: int
) -> dict[str, Any]:
    """The figures of cycle ``k`` (``mine``: the runs that finished in it)."""
    with watch.lock:
        inside = [s for s in watch.samples if begin <= s[0] <= end]
        before = [s for s in watch.samples if s[0] < begin]
    cpu_start = before[-1][1] if before else 0.0
    return {
        "cycle": k + 1,
        "runs": len(mine),
        "targets_scanned": sum(r["targets"] for r in mine),
        "scan_seconds": round(sum(r["duration_s"] for r in mine), 1),
        "events_sent": sum(r["events_sent"] for r in mine),
        "cpu_seconds": round(inside[-1][1] - cpu_start, 2),
        "rss_end_mb": round(inside[-1][2] / 2**20, 1),
        "rss_peak_mb": round(max(s[2] for s in inside) / 2**20, 1),
        "metrics": {when: {key: round(v, 1) for key, v in m.items()} for when, m in metrics.items()},
        "load": [round(x, 2) for x in os.getloadavg()],
    }


def _verdict(cycles: list[dict[str, Any]]) -> dict[str, Any]:
    steady = cycles[1:]
    if len(steady) < 2:
        return {}
    cpu = [c["cpu_seconds"] for c in steady]
    growth = steady[-1]["rss_end_mb"] - steady[0]["rss_end_mb"]
    worst = max(c["metrics"]["idle"]["median_ms"] for c in cycles)
    biggest = max(c["metrics"]["idle"]["bytes"] for c in cycles)
    return {
        "memory_growth_mb_cycle2_to_last": round(growth, 1),
        "memory_flat": abs(growth) <= 0.05 * steady[0]["rss_end_mb"],
        "cpu_seconds_steady": cpu,
        "cpu_flat": max(cpu) <= 1.2 * statistics.median(cpu),
        "metrics_under_1mb": biggest < 2**20,
        "metrics_under_100ms_idle": worst < 100,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=1000, help="targets (default 1000)")
    parser.add_argument("--cycles", type=int, default=6)
    parser.add_argument("--every", type=int, default=150, help="the interval, seconds (a cycle must fit in it)")
    parser.add_argument("--pack", default="certificate", help="'certificate' (default), or a pack id or file")
    parser.add_argument("--rounds", type=int, default=20, help="GETs of /metrics after each cycle")
    parser.add_argument("--no-site", action="store_true")
    parser.add_argument("--no-notify", action="store_true")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tlsgate-bench-watch-") as tmp:
        result = run(args, Path(tmp))
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")), platform.processor())  # fmt: skip
    document = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": {"cpus": os.cpu_count(), "cpu": cpu, "python": platform.python_version()},
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        **result,
    }
    text = json.dumps(document, indent=2)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
