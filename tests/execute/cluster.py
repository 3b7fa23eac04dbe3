"""A real Dask cluster on loopback for the executor's tests: a scheduler and worker processes started with
Dask's own command line, optionally with TLS between all of them (certificates made by trustme)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import trustme
from distributed import Client
from distributed.security import Security

from tests.helpers import REPO, free_port

_START = 30.0  # seconds for the scheduler and its workers to come up (imports on a busy 2-core machine)


@dataclass(frozen=True)
class ClusterTls:
    ca: Path
    cert: Path  # the scheduler's, the workers' and the client's certificate (one test identity)
    key: Path

    def security(self) -> Security:
        return Security(
            tls_ca_file=str(self.ca),
            tls_client_cert=str(self.cert),
            tls_client_key=str(self.key),
            require_encryption=True,
        )

    def arguments(self) -> list[str]:
        return ["--tls-ca-file", str(self.ca), "--tls-cert", str(self.cert), "--tls-key", str(self.key)]


def cluster_tls(directory: Path) -> ClusterTls:
    ca = trustme.CA()
    issued = ca.issue_cert("127.0.0.1", "localhost")
    files = ClusterTls(directory / "dask-ca.pem", directory / "dask.pem", directory / "dask-key.pem")
    ca.cert_pem.write_to_path(str(files.ca))
    issued.cert_chain_pems[0].write_to_path(str(files.cert))
    issued.private_key_pem.write_to_path(str(files.key))
    return files


@dataclass
class Cluster:
    address: str
    tls: ClusterTls | None
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def security(self) -> Security | None:
        return self.tls.security() if self.tls is not None else None

    def kill_worker(self, number: int) -> None:
        """SIGKILL: the worker dies mid-task, as a machine that loses power would."""
        self.workers[number].send_signal(signal.SIGKILL)
        self.workers[number].wait(timeout=10)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()  # a test cluster keeps nothing worth a graceful shutdown
    process.wait(timeout=10)


@contextlib.contextmanager
def dask_cluster(
    directory: Path, workers: Sequence[Mapping[str, int]] = ({}, {}), tls: ClusterTls | None = None
) -> Iterator[Cluster]:
    """A scheduler on 127.0.0.1 and one worker per entry of ``workers`` (its resources, e.g. {"zone-dmz": 2}),
    without nannies (a killed worker stays dead); all stopped afterwards."""
    port = free_port()
    scheme = "tls" if tls is not None else "tcp"
    address = f"{scheme}://127.0.0.1:{port}"
    secure = tls.arguments() if tls is not None else []
    log = directory / "dask.log"
    processes: list[subprocess.Popen[bytes]] = []
    with log.open("ab") as sink:

        def start(*args: str) -> subprocess.Popen[bytes]:
            process = subprocess.Popen(
                [sys.executable, *args], stdin=subprocess.DEVNULL, stdout=sink, stderr=sink, env=_env()
            )
            processes.append(process)
            return process

        try:
            start("-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", str(port),
                  "--dashboard-address", ":0", "--no-show", *secure)  # fmt: skip
            cluster = Cluster(address, tls)
            for resources in workers:
                given = " ".join(f"{name}={amount}" for name, amount in resources.items())
                extra = ["--resources", given] if given else []
                worker = ["-m", "distributed.cli.dask_worker", address, "--host", "127.0.0.1", "--nthreads", "2",
                          "--no-nanny", "--no-dashboard"]  # fmt: skip
                cluster.workers.append(start(*worker, *extra, *secure))
            _wait_for(cluster, len(workers), log)
            yield cluster
        finally:
            for process in reversed(processes):
                _stop(process)


def _wait_for(cluster: Cluster, count: int, log: Path) -> None:
    deadline = time.monotonic() + _START
    while True:
        try:
            with Client(cluster.address, security=cluster.security(), timeout=5) as client:
                client.wait_for_workers(count, timeout=max(1.0, deadline - time.monotonic()))
                return
        except (OSError, TimeoutError) as exc:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the Dask cluster did not start: {exc}\n{log.read_text(errors='replace')}") from exc
            time.sleep(0.2)
