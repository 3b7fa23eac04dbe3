"""The Dask executor against a real scheduler and worker processes on loopback: the same facts as the local
pool, zones, a worker killed mid-scan, TLS between the cluster's processes, and the command line."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from distributed import Client

from scanner.demo import LoopbackServer, tls_handler
from scanner.execute import Execution, ExecutorError, LocalExecutor
from scanner.execute.dask import DaskExecutor, SecretFiles, Share, probe_share
from scanner.exitcodes import ExitCode
from scanner.facts import Facts
from scanner.probe.connect.credentials import load_credentials
from scanner.probe.connect.endpoint import ClientCredentials
from scanner.probe.connect.limits import Stop
from scanner.probe.options import ConnectOptions, ProbeOptions
from scanner.probe.registry import ProbeKind
from scanner.probe.run import ScanItem
from scanner.targets import parse_target
from tests.cli.test_fleet import Accepts, silent_servers
from tests.execute.cluster import Cluster, cluster_tls, dask_cluster
from tests.helpers import (
    ServerFiles,
    client_pki,
    free_port,
    issue_certificate,
    openssl_server,
    run_tlsgate,
    server_context,
    tlsgate_command,
)

OPTIONS = ProbeOptions(timeout=3, offline=True)


def comparable(facts: Facts) -> Any:
    """The facts as JSON without their timestamps (when a target was scanned differs from run to run)."""

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if not k.endswith("_at")}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    return strip(json.loads(facts.model_dump_json()))


def collect(execution: Execution) -> dict[str, Facts]:
    """Every item's facts by label; each item must come out exactly once."""
    pairs = list(execution.results())
    assert sorted(index for index, _ in pairs) == list(range(len(execution.items))), "each item exactly once"
    return {execution.items[index].label: facts for index, facts in pairs}


@contextlib.contextmanager
def servers(pki: ServerFiles, hosts: Sequence[str], per_host: int = 1, delay: float = 0.0) -> Iterator[list[str]]:
    """Python TLS servers, ``per_host`` on each loopback address; ``delay`` seconds before each handshake."""
    handler = tls_handler(server_context(pki, ssl.TLSVersion.TLSv1_2))

    def slow(conn: Any) -> None:
        time.sleep(delay)
        handler(conn)

    with contextlib.ExitStack() as stack:
        started = [
            stack.enter_context(LoopbackServer(slow if delay else handler, host))
            for host in hosts
            for _ in range(per_host)
        ]
        yield [server.target for server in started]


def targets(names: Sequence[str], **options: Any) -> list[tuple[Any, ConnectOptions]]:
    return [(parse_target(name), ConnectOptions(**options)) for name in names]


HOSTS = ("127.0.0.1", "127.0.0.2", "127.0.0.3")


def test_local_runs_agree_with_themselves(pki):
    """The comparison used below is meaningful: two local runs of the same servers give equal facts."""
    with servers(pki, HOSTS) as names:
        first = collect(LocalExecutor().start(targets(names), OPTIONS, Stop(), {}))
        second = collect(LocalExecutor().start(targets(names), OPTIONS, Stop(), {}))
    assert {k: comparable(v) for k, v in first.items()} == {k: comparable(v) for k, v in second.items()}


@pytest.fixture(scope="module")
def tls_cluster(tmp_path_factory):
    """A scheduler and two workers with TLS between all of them; the second worker is in zone ``inside``."""
    directory = tmp_path_factory.mktemp("dask-tls")
    with dask_cluster(directory, workers=({}, {"zone-inside": 2}), tls=cluster_tls(directory)) as cluster:
        yield cluster


def on(cluster: Cluster) -> DaskExecutor:
    return DaskExecutor(scheduler=cluster.address, security=cluster.security())


def test_dask_over_tls_gives_the_same_facts_as_local(pki, tls_cluster):
    """Six targets on three addresses, through a TLS-secured scheduler and two workers: the local pool's facts."""
    assert tls_cluster.address.startswith("tls://")
    with servers(pki, HOSTS, per_host=2) as names:
        local = collect(LocalExecutor().start(targets(names), OPTIONS, Stop(), {}))
        remote = collect(on(tls_cluster).start(targets(names), OPTIONS, Stop(), {}))
    assert set(remote) == set(names)
    assert all(facts.status == "ok" for facts in remote.values())
    assert {k: comparable(v) for k, v in remote.items()} == {k: comparable(v) for k, v in local.items()}


def test_zone_runs_on_its_worker_and_a_zone_without_worker_is_reported(pki, tls_cluster):
    """A target of zone ``inside`` is scanned by the one worker of that zone; one of zone ``dmz`` (no worker has
    it) comes back at once as no_worker, not waited on; a target with no zone is scanned as usual."""
    options = replace(OPTIONS, per_host=7, max_connections=63)  # limits no other test uses: they mark the worker
    with servers(pki, HOSTS) as names:
        zoned = targets(names[:1], zone="inside") + targets(names[1:2], zone="dmz")
        found = collect(on(tls_cluster).start(zoned, options, Stop(), {}))
        assert found[names[0]].status == "ok"
        with Client(tls_cluster.address, security=tls_cluster.security()) as client:
            ran = client.run(_ran_with, 63, 7)
        assert sorted(ran.values()) == [False, True], "one worker (of zone inside) ran the task"
        [(address, _)] = [(a, r) for a, r in ran.items() if r]
        assert client_resources(tls_cluster, address) == {"zone-inside": 2.0}
        plain = collect(on(tls_cluster).start(targets(names[2:]), OPTIONS, Stop(), {}))
    missing = found[names[1]]
    assert missing.status == "error"
    assert missing.error is not None
    assert missing.error.error_class == "no_worker"
    assert "zone 'dmz'" in missing.error.message
    assert plain[names[2]].status == "ok"


def _ran_with(max_connections: int, per_host: int) -> bool:
    """On a worker: whether it ran a share with these limits (its process keeps one Slots per limits)."""
    from scanner.execute import dask  # noqa: PLC0415

    return (max_connections, per_host) in dask._WORKER_SLOTS


def client_resources(cluster: Cluster, address: str) -> dict[str, float]:
    with Client(cluster.address, security=cluster.security()) as client:
        return dict(client.scheduler_info(n_workers=-1)["workers"][address]["resources"])


def test_resumed_items_are_not_sent_to_the_cluster(pki, tls_cluster):
    """Facts already known (--resume) come back as they were; only the others are probed."""
    with servers(pki, HOSTS[:2]) as names:
        first = collect(LocalExecutor().start(targets(names), OPTIONS, Stop(), {}))
        known = {names[0]: first[names[0]]}
        found = collect(on(tls_cluster).start(targets(names), OPTIONS, Stop(), known))
    assert found[names[0]] is known[names[0]]
    assert found[names[1]].status == "ok"
    assert found[names[1]].started_at > first[names[1]].started_at


def test_tasks_in_flight_are_bounded(pki, tls_cluster):
    """Forty hosts, a cluster of four threads: never more than twice that in tasks sent and not yet back, so the
    coordinator holds what is in flight, not the fleet."""
    hosts = [f"127.0.2.{n}" for n in range(1, 41)]
    with servers(pki, hosts) as names:
        run = on(tls_cluster).start(targets(names), OPTIONS, Stop(), {})
        sent = 0
        most = 0
        submit = run._submit

        def counted(share: Share) -> Any:
            nonlocal sent, most
            sent += 1
            most = max(most, sent - len(done))
            return submit(share)

        run._submit = counted  # type: ignore[method-assign]
        done = []
        for pair in run.results():
            done.append(pair)
    assert sent == 40
    assert len(done) == 40
    assert 4 <= most <= 8


def test_per_host_holds_across_the_cluster(tls_cluster):
    """Six silent servers on one address, --per-host 2, two workers: the first wave is two connections, as on
    one machine (a host split over both workers would let four in)."""
    accepts = Accepts()
    with silent_servers(["127.0.0.9"] * 6, accepts) as names:
        options = ProbeOptions(timeout=1, offline=True, per_host=2)
        found = collect(on(tls_cluster).start(targets(names), options, Stop(), {}))
    assert {facts.status for facts in found.values()} == {"error"}
    assert len(accepts.times) == 6
    assert accepts.first_wave() == 2


def test_a_killed_worker_loses_no_target_and_duplicates_none(pki, tmp_path):
    """A worker SIGKILLed mid-scan: its tasks run again on the other worker; every target once, every one ok."""
    hosts = [f"127.0.0.{n}" for n in range(11, 19)]
    finished: list[int] = []
    at_kill: list[int] = []

    def kill(cluster: Cluster) -> None:
        at_kill.append(len(finished))
        cluster.kill_worker(0)

    with dask_cluster(tmp_path) as cluster, servers(pki, hosts, delay=0.05) as names:
        run = DaskExecutor(scheduler=cluster.address).start(targets(names), OPTIONS, Stop(), {})
        killer = threading.Timer(1.0, kill, args=(cluster,))
        killer.start()
        pairs = []
        try:
            for pair in run.results():
                finished.append(pair[0])
                pairs.append(pair)
        finally:
            killer.cancel()
        assert cluster.workers[0].poll() is not None, "the worker was killed during the scan"
    assert at_kill and at_kill[0] < len(names) // 2, "the worker died while it still had targets to scan"
    assert sorted(finished) == list(range(len(names))), "each target exactly once"
    assert {run.items[index].label for index in finished} == set(names)
    assert {facts.status for _, facts in pairs} == {"ok"}


def _report_facts(path: Path) -> dict[str, Any]:
    report = json.loads(path.read_text())
    return {t["target"]: comparable(Facts.model_validate(t["facts"])) for t in report["targets"]}


@dataclass(frozen=True)
class CliBaseline:
    names: list[str]
    code: int
    facts: dict[str, Any]


@pytest.fixture(scope="module")
def cli_baseline(pki, tmp_path_factory):
    """Three loopback servers for the module's command-line tests, and the default executor's scan of them."""
    report = tmp_path_factory.mktemp("cli-baseline") / "local.json"
    with servers(pki, HOSTS) as names:
        local = run_tlsgate("scan", *names, "--timeout", "3", "--offline", "--json", str(report))
        yield CliBaseline(names, local.code, _report_facts(report))


def test_cli_local_cluster_gives_the_same_exit_code_and_facts(cli_baseline, tmp_path):
    """`--executor dask --workers 2` (a local cluster, no scheduler given) and the default executor: the same
    exit code and the same facts in the JSON report; the run is recorded in the --store as any other."""
    store = f"sqlite:///{tmp_path / 'h.db'}"
    dask = run_tlsgate("scan", *cli_baseline.names, "--timeout", "3", "--offline", "--json",
                       str(tmp_path / "dask.json"), "--executor", "dask", "--workers", "2",
                       "--store", store)  # fmt: skip
    assert dask.code == cli_baseline.code == ExitCode.POLICY_FAILED, dask.stderr  # the test CA is not trusted
    assert "Traceback" not in dask.stderr
    assert _report_facts(tmp_path / "dask.json") == cli_baseline.facts
    history = run_tlsgate("history", "--store", store, "--format", "json")
    runs = json.loads(history.stdout)["runs"]
    assert [(r["status"], r["targets"]) for r in runs] == [("finished", len(cli_baseline.names))]


def test_cli_scheduler_over_tls_from_dask_configuration(cli_baseline, tls_cluster, tmp_path):
    """`--scheduler tls://...` with the cluster's TLS set the documented way (Dask's configuration, here its
    environment variables): scanned, journal written, same exit code and facts as the default executor."""
    assert tls_cluster.tls is not None
    env = dict(os.environ) | {
        "DASK_DISTRIBUTED__COMM__TLS__CA_FILE": str(tls_cluster.tls.ca),
        "DASK_DISTRIBUTED__COMM__TLS__CLIENT__CERT": str(tls_cluster.tls.cert),
        "DASK_DISTRIBUTED__COMM__TLS__CLIENT__KEY": str(tls_cluster.tls.key),
        "DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION": "True",
    }
    journal = tmp_path / "j.jsonl"
    dask = run_tlsgate("scan", *cli_baseline.names, "--timeout", "3", "--offline", "--json",
                       str(tmp_path / "dask.json"), "--executor", "dask", "--scheduler", tls_cluster.address,
                       "--format", f"jsonl={journal}", env=env)  # fmt: skip
    assert dask.code == cli_baseline.code, dask.stderr
    assert _report_facts(tmp_path / "dask.json") == cli_baseline.facts
    lines = journal.read_text().splitlines()
    assert sorted(json.loads(line)["target"] for line in lines) == sorted(cli_baseline.names)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--workers", "2"], "--scheduler and --workers go with --executor dask"),
        (["--executor", "dask", "--scheduler", "127.0.0.1:8786"], "give tcp://HOST:PORT or tls://HOST:PORT"),
    ],
)
def test_cli_executor_usage_errors(args, message):
    run = run_tlsgate("scan", "127.0.0.1:1", *args)
    assert run.code == ExitCode.USAGE
    assert message in run.stderr


def test_cli_unreachable_scheduler_is_a_clear_error(tmp_path):
    """Nothing listens at the scheduler's address: one line, exit 2, no traceback."""
    run = run_tlsgate("scan", "127.0.0.1:1", "--executor", "dask", "--scheduler", f"tcp://127.0.0.1:{free_port()}")
    assert run.code == ExitCode.USAGE, run.stderr
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:" in run.stderr
    assert "Traceback" not in run.stderr


def test_two_hundred_targets_give_identical_facts_through_both_executors(pki, tls_cluster):
    """The issue's acceptance check: the same 200-target scan (ten servers on each of twenty addresses) gives
    identical facts, timestamps aside, through the local pool and through the Dask cluster."""
    hosts = [f"127.0.1.{n}" for n in range(1, 21)]
    with servers(pki, hosts, per_host=10) as names:
        local = collect(LocalExecutor().start(targets(names), OPTIONS, Stop(), {}))
        remote = collect(on(tls_cluster).start(targets(names), OPTIONS, Stop(), {}))
    assert len(remote) == len(local) == 200
    assert {facts.status for facts in remote.values()} == {"ok"}
    assert {k: comparable(v) for k, v in remote.items()} == {k: comparable(v) for k, v in local.items()}


@pytest.fixture
def mtls(tmp_path):
    """openssl s_server that requires a client certificate, and the client's credentials as a scan holds them."""
    pki = client_pki(tmp_path / "client")
    server = issue_certificate(tmp_path / "server", "mtls-server", key_type="rsa2048")
    workdir = tmp_path / "credentials"
    workdir.mkdir(mode=0o700)
    credentials = load_credentials(pki.cert, pki.key, None, None, None, workdir)
    with openssl_server(
        server.cert, server.key, "-Verify", "1", "-verify_return_error", "-CAfile", str(pki.ca)
    ) as port:
        yield f"127.0.0.1:{port}", credentials


MTLS_OPTIONS = ProbeOptions(timeout=3, offline=True, plan=frozenset({ProbeKind.protocols, ProbeKind.client_auth}))


def _accepted(facts: Facts) -> bool | None:
    return facts.client_auth.provided_certificate_accepted.value


def test_credentials_cross_a_tls_cluster_and_are_used(mtls, tls_cluster):
    """Through a tls:// scheduler the client certificate reaches the worker (inside the encrypted task) and the
    mTLS server accepts it, as on one machine."""
    name, credentials = mtls
    found = collect(on(tls_cluster).start(targets([name], credentials=credentials), MTLS_OPTIONS, Stop(), {}))
    assert _accepted(found[name]) is True


def test_worker_uses_the_credentials_sent_not_the_coordinators_files(mtls, tmp_path):
    """A remote worker has no access to the coordinator's files: the task's copy is written to a private
    directory of its own, used, and removed."""
    name, credentials = mtls
    elsewhere = ClientCredentials(tmp_path / "absent-chain.pem", tmp_path / "absent-key.pem", "client.pem")
    item = ScanItem(parse_target(name), ConnectOptions(credentials=elsewhere), label=name)
    secret = SecretFiles(chain=credentials.cert_chain.read_bytes(), key=credentials.key.read_bytes())
    assert "BEGIN" not in repr(secret)
    [(index, facts)] = probe_share(Share((7,), (item,), secrets=(secret,)), MTLS_OPTIONS)
    assert index == 7
    assert _accepted(facts) is True
    [(_, without)] = probe_share(Share((7,), (item,)), MTLS_OPTIONS)
    assert _accepted(without) is not True  # the absent files: no certificate could be presented


def test_credentials_are_refused_over_a_plain_tcp_scheduler(mtls):
    """Over tcp:// the key would cross the network in clear: refused before anything is sent or probed."""
    name, credentials = mtls
    with pytest.raises(ExecutorError, match="in clear: give a tls:// --scheduler"):
        DaskExecutor(scheduler="tcp://127.0.0.1:1").start(
            targets([name], credentials=credentials), MTLS_OPTIONS, Stop(), {}
        )


def test_time_budget_stops_the_cluster_run(tls_cluster):
    """Silent servers and a 2 s budget: tasks in flight are cancelled and every target comes back once, as
    time_budget, long before the 30 s reads would end."""
    accepts = Accepts()
    with silent_servers(["127.0.0.21", "127.0.0.22", "127.0.0.23"], accepts) as names:
        options = ProbeOptions(timeout=30, offline=True, time_budget=2)
        started = time.monotonic()
        found = collect(on(tls_cluster).start(targets(names), options, Stop(), {}))
        took = time.monotonic() - started
    assert took < 25, "the budget did not cut the 30 s reads short"
    assert {facts.error.error_class for facts in found.values() if facts.error} == {"time_budget"}
    assert len(found) == 3


def test_cli_ctrl_c_on_a_local_cluster(tmp_path):
    """SIGINT while the workers hold connections: exit 130, the report written with every target interrupted, no
    traceback, and the local cluster's processes gone."""
    ctrl_c_scan(tmp_path, ["127.0.0.31", "127.0.0.32"], ["--executor", "dask", "--workers", "2"], to_group=False)


def ctrl_c_scan(tmp_path: Path, hosts: list[str], executor: list[str], *, to_group: bool) -> None:
    """A scan of silent servers on ``executor`` interrupted by SIGINT once every server has a connection (sent
    to the scan's process, or, ``to_group``, to its whole process group as a terminal's Ctrl-C is): exit 130,
    every target interrupted in the report, no traceback, and every process of the scan gone."""
    accepts = Accepts()
    report = tmp_path / "r.json"
    with silent_servers(hosts, accepts) as names:
        proc = subprocess.Popen(
            tlsgate_command("scan", *names, "--timeout", "60", "--json", str(report), *executor),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while len(accepts.times) < len(hosts) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
        assert len(accepts.times) >= len(hosts), "the workers never connected"
        if to_group:
            os.killpg(proc.pid, signal.SIGINT)
        else:
            proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == ExitCode.INTERRUPTED, stderr
    assert "Traceback" not in stderr
    targets = {t["target"]: t for t in json.loads(report.read_text())["targets"]}
    assert {targets[name]["facts"]["error"]["error_class"] for name in names} == {"interrupted"}
    assert _group_gone(proc.pid, within=30), "a process of the scan outlived it"


def _group_gone(group: int, within: float) -> bool:
    """Whether every process of the group has exited (the workers shut down as the scan ends)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False
