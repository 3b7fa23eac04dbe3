"""The process executor (--executor processes) against real loopback servers: the same facts as the local pool,
whole hosts per worker process (--per-host exact), a worker killed mid-scan, the time budget, --resume, Ctrl-C and
the command line."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time

from scanner.execute import LocalExecutor
from scanner.execute.processes import ProcessExecutor, shares
from scanner.exitcodes import ExitCode
from scanner.probe.connect.limits import Stop
from scanner.probe.options import ProbeOptions
from scanner.probe.run import expand
from tests.cli.test_fleet import Accepts, silent_servers
from tests.execute.test_dask import (
    HOSTS,
    OPTIONS,
    _report_facts,
    cli_baseline,  # noqa: F401 - the module's fixture, shared
    collect,
    comparable,
    ctrl_c_scan,
    servers,
    targets,
)
from tests.helpers import run_tlsgate


def test_shares_keep_hosts_whole_and_balance_the_items():
    """Hosts are never split; the largest go first, each to the share with the fewest items."""
    names = [
        f"127.0.0.{host}:{port}" for host, count in ((2, 4), (3, 3), (4, 3), (5, 2)) for port in range(1, count + 1)
    ]
    items = expand(targets(names))
    parts = shares(items, list(range(len(items))), 2)
    hosts = [{items[index].target.host for index in part} for part in parts]
    assert sorted(len(part) for part in parts) == [6, 6]
    assert hosts[0].isdisjoint(hosts[1])
    assert sorted(index for part in parts for index in part) == list(range(len(items)))
    assert shares(items, [0, 1], 4) == [[0, 1]], "one host, one share: no empty shares"


def test_two_hundred_targets_give_identical_facts_through_both_executors(pki):
    """The same 200-target scan (ten servers on each of twenty addresses) through the local pool and through two
    worker processes: identical facts, timestamps aside, each target exactly once."""
    hosts = [f"127.0.2.{n}" for n in range(1, 21)]
    with servers(pki, hosts, per_host=10) as names:
        local = collect(LocalExecutor().start(targets(names), OPTIONS, Stop(), {}))
        forked = collect(ProcessExecutor(workers=2).start(targets(names), OPTIONS, Stop(), {}))
    assert len(forked) == len(local) == 200
    assert {facts.status for facts in forked.values()} == {"ok"}
    assert {k: comparable(v) for k, v in forked.items()} == {k: comparable(v) for k, v in local.items()}


def test_per_host_holds_across_the_processes():
    """Six silent servers on one address, --per-host 2, two processes: the first wave is two connections (a host
    split over both processes would let four in)."""
    accepts = Accepts()
    with silent_servers(["127.0.0.9"] * 6, accepts) as names:
        options = ProbeOptions(timeout=1, offline=True, per_host=2)
        found = collect(ProcessExecutor(workers=2).start(targets(names), options, Stop(), {}))
    assert {facts.status for facts in found.values()} == {"error"}
    assert len(accepts.times) == 6
    assert accepts.first_wave() == 2


def test_a_killed_worker_process_is_reported_and_the_others_kept(pki):
    """A worker process SIGKILLed mid-scan: its unfinished targets come out once each as probe_failed naming the
    signal, every other target is scanned; nothing is lost or duplicated."""
    hosts = [f"127.0.3.{n}" for n in range(1, 9)]
    with servers(pki, hosts, per_host=2, delay=0.05) as names:
        options = ProbeOptions(timeout=3, offline=True, concurrency=2)
        run = ProcessExecutor(workers=2).start(targets(names), options, Stop(), {})
        killed: list[int] = []

        def kill() -> None:
            children = sorted(multiprocessing.active_children(), key=lambda p: p.pid or 0)
            if children and children[0].pid is not None:
                os.kill(children[0].pid, signal.SIGKILL)
                killed.append(children[0].pid)

        killer = threading.Timer(1.0, kill)
        killer.start()
        try:
            found = collect(run)
        finally:
            killer.cancel()
    assert killed, "no worker process was running a second into the scan"
    failed = {label: facts for label, facts in found.items() if facts.status == "error"}
    assert failed, "the killed worker had targets left"
    assert {f.error.error_class for f in failed.values() if f.error} == {"probe_failed"}
    assert all("killed by signal 9" in (f.error.message if f.error else "") for f in failed.values())
    assert len(found) == len(names)
    assert sum(1 for facts in found.values() if facts.status == "ok") >= len(names) // 2


def test_time_budget_stops_the_worker_processes():
    """Silent servers and a 2 s budget: every target comes back once as time_budget, long before the 30 s reads
    would end, and no worker process is left behind."""
    accepts = Accepts()
    with silent_servers(["127.0.0.21", "127.0.0.22", "127.0.0.23"], accepts) as names:
        options = ProbeOptions(timeout=30, offline=True, time_budget=2)
        started = time.monotonic()
        found = collect(ProcessExecutor(workers=2).start(targets(names), options, Stop(), {}))
        took = time.monotonic() - started
    assert took < 25, "the budget did not cut the 30 s reads short"
    assert {facts.error.error_class for facts in found.values() if facts.error} == {"time_budget"}
    assert len(found) == 3
    assert not multiprocessing.active_children()


def test_resumed_items_are_not_probed_again(pki):
    """Facts already known (--resume) come back as they were; only the others are probed."""
    with servers(pki, HOSTS[:2]) as names:
        first = collect(LocalExecutor().start(targets(names), OPTIONS, Stop(), {}))
        known = {names[0]: first[names[0]]}
        found = collect(ProcessExecutor(workers=2).start(targets(names), OPTIONS, Stop(), known))
    assert found[names[0]] is known[names[0]]
    assert found[names[1]].status == "ok"
    assert found[names[1]].started_at > first[names[1]].started_at


def test_cli_processes_give_the_same_exit_code_and_facts(cli_baseline, tmp_path):  # noqa: F811
    """`--executor processes --workers 2` and the default executor: the same exit code and facts in the JSON
    report."""
    forked = run_tlsgate("scan", *cli_baseline.names, "--timeout", "3", "--offline", "--json",
                         str(tmp_path / "p.json"), "--executor", "processes", "--workers", "2")  # fmt: skip
    assert forked.code == cli_baseline.code == ExitCode.POLICY_FAILED, forked.stderr  # the test CA is not trusted
    assert "Traceback" not in forked.stderr
    assert _report_facts(tmp_path / "p.json") == cli_baseline.facts


def test_cli_processes_refuse_a_scheduler():
    run = run_tlsgate("scan", "127.0.0.1:1", "--executor", "processes", "--scheduler", "tcp://127.0.0.1:8786")
    assert run.code == ExitCode.USAGE
    assert "--scheduler goes with --executor dask" in run.stderr


def test_cli_ctrl_c_with_worker_processes(tmp_path):
    """Ctrl-C at a terminal (SIGINT to the whole group, the workers included) while the worker processes hold
    connections: exit 130, the report written with every target interrupted, no traceback, the workers gone."""
    ctrl_c_scan(tmp_path, ["127.0.0.41", "127.0.0.42"], ["--executor", "processes", "--workers", "2"], to_group=True)
