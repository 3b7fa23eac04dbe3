"""N loopback TLS endpoints served by nginx: many ``server`` blocks over many loopback addresses, for the cost curve.

One nginx per configuration profile (five in all, one worker process each) serves every endpoint of that profile:
a ``server`` block per endpoint, ``listen 127.0.0.X:PORT ssl``. That is far cheaper than one process per endpoint
(bench/servers.py's ``openssl s_server``), so N = 10,000 fits on a small machine, and nginx serves many
connections at once as a real web server does. The layout is servers.py's: endpoint i listens on host
``127.0.0.(2 + i // 5)`` (carrying over into 127.0.1.x ...) at port ``base + i % 5``, and has profile ``i % 5``,
so each host runs one endpoint of each profile, the same profile on the same port of every host.

Each nginx also answers ``stub_status`` on 127.0.0.1 (a plain HTTP port of its own): its ``accepts`` counter is
the connections that profile's endpoints accepted, which gives the connections per target by profile.

Certificates are made once (servers.make_pki: one root, one intermediate, an RSA-2048 and an ECDSA P-256 leaf for
``localhost``); every endpoint serves leaf + intermediate. The leaves name no address, so a scan's name check fails:
that costs a scan nothing and keeps the certificates small whatever N is.

Run alone to try it out: ``python bench/nginxfleet.py 50`` starts 50 endpoints and waits for Ctrl-C.
"""

from __future__ import annotations

import argparse
import http.client
import ipaddress
import re
import resource
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from servers import SERVICES_PER_HOST, host_of, install_signal_handlers, make_pki

NGINX = "/usr/sbin/nginx"
# Mozilla's "intermediate" TLS 1.2 suites without the DHE ones (nginx offers DHE only with an ssl_dhparam file).
INTERMEDIATE = (
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
)


@dataclass(frozen=True)
class NginxProfile:
    name: str
    key: str  # "rsa" or "ecdsa": which leaf the endpoint serves
    protocols: str  # ssl_protocols
    ciphers: str  # ssl_ciphers (TLS 1.2 and below; TLS 1.3 keeps OpenSSL's three suites)
    description: str


PROFILES: tuple[NginxProfile, ...] = (
    NginxProfile("intermediate-rsa", "rsa", "TLSv1.2 TLSv1.3", INTERMEDIATE,
                 "TLS 1.2 + 1.3, Mozilla intermediate suites, RSA-2048"),
    NginxProfile("intermediate-ecdsa", "ecdsa", "TLSv1.2 TLSv1.3", INTERMEDIATE,
                 "TLS 1.2 + 1.3, Mozilla intermediate suites, ECDSA P-256"),
    NginxProfile("tls13-only", "ecdsa", "TLSv1.3", INTERMEDIATE, "TLS 1.3 only, ECDSA P-256"),
    NginxProfile("legacy", "rsa", "TLSv1 TLSv1.1 TLSv1.2", "ALL:!aNULL:!eNULL:@SECLEVEL=0",
                 "TLS 1.0-1.2 at @SECLEVEL=0: CBC, RSA key exchange, 3DES, SHA-1 suites; RSA-2048"),
    NginxProfile("tls12-strict", "ecdsa", "TLSv1.2", "ECDHE+AESGCM:ECDHE+CHACHA20",
                 "TLS 1.2 only, ECDHE with AEAD suites only, ECDSA P-256"),
)  # fmt: skip
assert len(PROFILES) == SERVICES_PER_HOST  # one endpoint of each profile on every host


def _conf(
    profile: NginxProfile, directory: Path, status_port: int, listens: list[str], chain: Path, key: Path, fd_limit: int
) -> str:
    servers = "\n".join(f'    server {{ listen {where} ssl; return 200 "ok\\n"; }}' for where in listens)
    return f"""\
worker_processes 1;
worker_rlimit_nofile {fd_limit};
pid {directory}/{profile.name}.pid;
error_log {directory}/{profile.name}-error.log error;
daemon off;
events {{ worker_connections 16384; }}
http {{
    access_log off;
    ssl_certificate {chain};
    ssl_certificate_key {key};
    ssl_protocols {profile.protocols};
    ssl_ciphers {profile.ciphers};
    ssl_session_cache shared:{profile.name}:4m;
    server {{ listen 127.0.0.1:{status_port}; location / {{ stub_status; }} }}
{servers}
}}
"""


@dataclass
class Instance:
    profile: NginxProfile
    status_port: int
    endpoints: list[str]
    process: subprocess.Popen[bytes]

    def accepts(self) -> int:
        """Connections this nginx accepted so far (this status request is one of them)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.status_port, timeout=10)  # no proxy in the way
        try:
            connection.request("GET", "/")
            text = connection.getresponse().read().decode()
        finally:
            connection.close()
        match = re.search(r"^\s*(\d+)\s+\d+\s+\d+\s*$", text, re.MULTILINE)
        if not match:
            raise RuntimeError(f"unexpected stub_status answer: {text!r}")
        return int(match.group(1))

    def pids(self) -> list[int]:
        """The master and its worker."""
        found = [self.process.pid]
        try:
            children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
        except OSError:
            children = []
        return found + [int(c) for c in children]


@dataclass
class NginxFleet:
    """N endpoints over N / 5 loopback hosts, served by one nginx per profile; a context manager that stops them."""

    count: int
    base_port: int = 20000
    status_base: int = 19990
    instances: list[Instance] = field(default_factory=list)
    fd_limit: int = 20000
    _tmp: tempfile.TemporaryDirectory[str] | None = None

    def __enter__(self) -> NginxFleet:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def targets(self) -> list[str]:
        return [f"{host_of(i)}:{self.base_port + i % SERVICES_PER_HOST}" for i in range(self.count)]

    @property
    def hosts(self) -> list[str]:
        return list(dict.fromkeys(host_of(i) for i in range(self.count)))

    @property
    def ports(self) -> list[int]:
        return sorted({self.base_port + i % SERVICES_PER_HOST for i in range(self.count)})

    def profile_of(self, target: str) -> NginxProfile:
        return PROFILES[(int(target.rsplit(":", 1)[1]) - self.base_port) % len(PROFILES)]

    def mix(self) -> dict[str, int]:
        return {i.profile.name: len(i.endpoints) for i in self.instances}

    def accepts(self) -> dict[str, int]:
        return {i.profile.name: i.accepts() for i in self.instances}

    def pids(self) -> list[int]:
        return [pid for i in self.instances for pid in i.pids()]

    def start(self) -> None:
        if not Path(NGINX).exists():
            raise SystemExit(f"{NGINX} is needed (apt-get install nginx)")
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < hard:  # nginx's masters inherit it: each holds its N / 5 listening sockets plus connections
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        self.fd_limit = hard
        self._tmp = tempfile.TemporaryDirectory(prefix="tlsgate-cost-")
        directory = Path(self._tmp.name)
        directory.chmod(0o755)  # nginx's workers run as nobody
        files = make_pki(directory, ())
        chains = {}
        for kind, (cert, _key, chain) in files.items():
            chains[kind] = directory / f"{kind}-fullchain.pem"
            chains[kind].write_bytes(cert.read_bytes() + chain.read_bytes())
        targets = self.targets
        for index, profile in enumerate(PROFILES):
            listens = [t for k, t in enumerate(targets) if k % len(PROFILES) == index]
            if not listens:
                continue
            conf = directory / f"{profile.name}.conf"
            status_port = self.status_base + index
            conf.write_text(
                _conf(
                    profile, directory, status_port, listens, chains[profile.key], files[profile.key][1], self.fd_limit
                )
            )
            process = subprocess.Popen(
                [NGINX, "-p", str(directory), "-c", str(conf)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                start_new_session=True,  # a Ctrl-C in the terminal reaches the harness only; it stops them
            )  # fmt: skip
            self.instances.append(Instance(profile, status_port, listens, process))
        self._wait_ready()

    def _wait_ready(self, seconds: float = 120) -> None:
        deadline = time.monotonic() + seconds
        for instance in self.instances:
            while True:
                if instance.process.poll() is not None:
                    error = instance.process.stderr.read().decode() if instance.process.stderr else ""
                    raise RuntimeError(f"nginx for {instance.profile.name} exited: {error.strip()}")
                try:
                    instance.accepts()
                except OSError:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"nginx for {instance.profile.name} never answered") from None
                    time.sleep(0.2)
                    continue
                break  # the master binds every listening socket before it starts the worker that answers

    def stop(self) -> None:
        for instance in self.instances:
            if instance.process.poll() is None:
                instance.process.terminate()
        for instance in self.instances:
            try:
                instance.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                instance.process.kill()
                instance.process.wait()
            if instance.process.stderr:
                instance.process.stderr.close()
        self.instances.clear()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("count", type=int, nargs="?", default=50)
    parser.add_argument("--base-port", type=int, default=20000)
    args = parser.parse_args()
    install_signal_handlers()
    try:
        started = time.monotonic()
        with NginxFleet(args.count, args.base_port) as fleet:
            for instance in fleet.instances:
                print(instance.profile.name, len(instance.endpoints), f"status 127.0.0.1:{instance.status_port}")
            print(
                f"{args.count} endpoints on {len(fleet.hosts)} hosts "
                f"({ipaddress.IPv4Address(fleet.hosts[0])}-{fleet.hosts[-1]}, ports {fleet.ports}) up in "
                f"{time.monotonic() - started:.1f} s; Ctrl-C stops them",
                file=sys.stderr,
            )
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    sys.exit(main())
