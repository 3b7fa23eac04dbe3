"""Start N loopback TLS endpoints of mixed configurations for the benchmark, spread over hosts like a fleet.

Each endpoint is one ``openssl s_server`` process (single-threaded: one connection at a time, as many appliances
and embedded stacks are). Endpoint i listens on host ``127.0.0.(2 + i // S)`` at port ``base + i % S``, with
``S = SERVICES_PER_HOST`` (5): N=50 is 10 hosts x 5 services, N=200 is 40 hosts x 5. All of 127.0.0.0/8 is
loopback on Linux (also in the benchmark's own network namespace), so every host is a distinct IP address on
this machine. The spread is what a fleet looks like, and it matters: scanners limit the connections they hold to
one host (tlsgate's ``--per-host``, one IP address whatever the port, stays at its default), and 200 services on
one address would measure "one machine with 200 services" instead. Every host listens on the same S ports, so
nmap scans exactly the N endpoints with one ``-p`` list.

The configurations cycle through ``PROFILES`` over the endpoints (endpoint i has ``PROFILES[i % len(PROFILES)]``)
so that every N holds the same mix; with S = len(PROFILES) = 5 each host runs one endpoint of each profile, the
same profile on the same port of every host. Certificates are made here with cryptography: one root and one
intermediate CA, and an RSA-2048 and an ECDSA P-256 leaf for ``localhost`` and every host's address; each
endpoint serves leaf + intermediate.

Run alone to try it out: ``python bench/servers.py 10`` starts ten endpoints, prints them, and waits for Ctrl-C.
"""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# Services (ports) per host. 5 rather than 4: both benchmark sizes, 50 and 200, are multiples of 5, so every host
# has exactly the same ports (nmap's one -p list then names no closed port), and 5 a host is a plausible server
# (https, imaps, smtps, an admin UI ...). The last host has fewer when N is not a multiple of S.
SERVICES_PER_HOST = 5
FIRST_HOST = ipaddress.IPv4Address("127.0.0.2")  # 127.0.0.1 stays out: it is "the machine itself"


@dataclass(frozen=True)
class Profile:
    name: str
    key: str  # "rsa" or "ecdsa": which leaf the endpoint serves
    args: tuple[str, ...]  # extra s_server arguments
    description: str


PROFILES: tuple[Profile, ...] = (
    Profile("modern-rsa", "rsa", (), "TLS 1.2 + 1.3, OpenSSL defaults, RSA-2048"),
    Profile("modern-ecdsa", "ecdsa", (), "TLS 1.2 + 1.3, OpenSSL defaults, ECDSA P-256"),
    Profile("tls13-only", "ecdsa", ("-tls1_3",), "TLS 1.3 only, ECDSA P-256"),
    Profile(
        "legacy-cbc",
        "rsa",
        ("-min_protocol", "TLSv1", "-max_protocol", "TLSv1.2", "-cipher", "ALL:!aNULL:!eNULL:@SECLEVEL=0"),
        "TLS 1.0-1.2 at @SECLEVEL=0: CBC, RSA key exchange, 3DES, SHA-1 suites; RSA-2048",
    ),
    Profile(
        "tls12-strict",
        "ecdsa",
        ("-min_protocol", "TLSv1.2", "-max_protocol", "TLSv1.2", "-cipher", "ECDHE+AESGCM:ECDHE+CHACHA20"),
        "TLS 1.2 only, ECDHE with AEAD suites only, ECDSA P-256",
    ),
)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "tlsgate bench"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _certificate(
    subject: str,
    key: Any,
    issuer_name: x509.Name | None,
    issuer_key: Any,
    *,
    ca: bool,
    addresses: tuple[ipaddress.IPv4Address, ...] = (),
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer_name or _name(subject))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=3650 if ca else 90))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca and issuer_name else None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer_name is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False
        )
    if not ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), *(x509.IPAddress(a) for a in addresses)]),
            critical=False,
        ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def make_pki(directory: Path, addresses: tuple[ipaddress.IPv4Address, ...]) -> dict[str, tuple[Path, Path, Path]]:
    """Write the CA files and both leaves (valid for ``addresses``); return {"rsa"|"ecdsa": (cert, key, chain)}."""
    pem = serialization.Encoding.PEM
    root_key = ec.generate_private_key(ec.SECP384R1())
    root = _certificate("tlsgate bench root CA", root_key, None, root_key, ca=True)
    inter_key = ec.generate_private_key(ec.SECP256R1())
    inter = _certificate("tlsgate bench intermediate CA", inter_key, root.subject, root_key, ca=True)
    (directory / "ca.pem").write_bytes(root.public_bytes(pem))
    chain = directory / "chain.pem"
    chain.write_bytes(inter.public_bytes(pem))
    files = {}
    for kind, key in (
        ("rsa", rsa.generate_private_key(65537, 2048)),
        ("ecdsa", ec.generate_private_key(ec.SECP256R1())),
    ):
        leaf = _certificate("localhost", key, inter.subject, inter_key, ca=False, addresses=addresses)
        cert, key_path = directory / f"{kind}.pem", directory / f"{kind}-key.pem"
        cert.write_bytes(leaf.public_bytes(pem))
        key_path.write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        files[kind] = (cert, key_path, chain)
    return files


def host_of(index: int) -> str:
    """The address endpoint ``index`` listens on: SERVICES_PER_HOST endpoints a host."""
    return str(FIRST_HOST + index // SERVICES_PER_HOST)


@dataclass
class Endpoint:
    host: str
    port: int
    profile: Profile
    process: subprocess.Popen[bytes]

    @property
    def target(self) -> str:
        return f"{self.host}:{self.port}"


def _port_is_free(host: str, port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def _free_base_port(hosts: list[str], start: int) -> int:
    """The first base port from ``start`` whose SERVICES_PER_HOST ports are free on every host (all the same)."""
    base = start
    while not all(_port_is_free(h, base + k) for h in hosts for k in range(SERVICES_PER_HOST)):
        base += SERVICES_PER_HOST
        if base + SERVICES_PER_HOST > 65536:
            raise RuntimeError(f"no {SERVICES_PER_HOST} consecutive ports free on every host from {start}")
    return base


def _raise_fd_limit(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))


@dataclass
class Fleet:
    """N s_server endpoints; a context manager that stops every process it started, whatever happens."""

    count: int
    base_port: int = 20000
    endpoints: list[Endpoint] = field(default_factory=list)
    _tmp: tempfile.TemporaryDirectory[str] | None = None

    def __enter__(self) -> Fleet:
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
        return [e.target for e in self.endpoints]

    @property
    def hosts(self) -> list[str]:
        """Every host's address, in order."""
        return list(dict.fromkeys(e.host for e in self.endpoints))

    @property
    def ports(self) -> list[int]:
        """The ports the hosts listen on: the same SERVICES_PER_HOST on each (the last host may have fewer)."""
        return sorted({e.port for e in self.endpoints})

    @property
    def ca_file(self) -> Path:
        assert self._tmp is not None
        return Path(self._tmp.name) / "ca.pem"

    def mix(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for endpoint in self.endpoints:
            counts[endpoint.profile.name] = counts.get(endpoint.profile.name, 0) + 1
        return counts

    def start(self) -> None:
        openssl = shutil.which("openssl")
        if not openssl:
            raise SystemExit("openssl is required (apt-get install openssl)")
        _raise_fd_limit(4 * self.count + 256)
        self._tmp = tempfile.TemporaryDirectory(prefix="tlsgate-bench-")
        hosts = list(dict.fromkeys(host_of(index) for index in range(self.count)))
        files = make_pki(Path(self._tmp.name), tuple(ipaddress.IPv4Address(h) for h in hosts))
        base = _free_base_port(hosts, self.base_port)
        for index in range(self.count):
            host, port = host_of(index), base + index % SERVICES_PER_HOST
            profile = PROFILES[index % len(PROFILES)]
            cert, key, chain = files[profile.key]
            process = subprocess.Popen(
                [openssl, "s_server", "-accept", f"{host}:{port}", "-cert", str(cert), "-key", str(key),
                 "-cert_chain", str(chain), "-www", "-quiet", *profile.args],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                start_new_session=True,  # a Ctrl-C in the terminal reaches the harness only; it stops them
            )  # fmt: skip
            self.endpoints.append(Endpoint(host, port, profile, process))
        self._wait_listening()

    def _wait_listening(self, seconds: float = 30) -> None:
        deadline = time.monotonic() + seconds
        pending = list(self.endpoints)
        while pending:
            still = []
            for endpoint in pending:
                if endpoint.process.poll() is not None:
                    raise RuntimeError(f"s_server on {endpoint.target} ({endpoint.profile.name}) exited")
                try:
                    socket.create_connection((endpoint.host, endpoint.port), timeout=0.5).close()
                except OSError:
                    still.append(endpoint)
            pending = still
            if pending:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{len(pending)} endpoints never listened")
                time.sleep(0.1)

    def stop(self) -> None:
        for endpoint in self.endpoints:
            if endpoint.process.poll() is None:
                endpoint.process.terminate()
        deadline = time.monotonic() + 5
        for endpoint in self.endpoints:
            try:
                endpoint.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                endpoint.process.kill()
                endpoint.process.wait()
        self.endpoints.clear()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


def install_signal_handlers() -> None:
    """Turn SIGINT, SIGTERM and SIGHUP into KeyboardInterrupt, so that ``with Fleet(...)`` cleans up on each."""

    def interrupt(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, interrupt)
    # A shell starts background jobs with SIGINT ignored, and Python then keeps it ignored: take it back.
    signal.signal(signal.SIGINT, signal.default_int_handler)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("count", type=int, nargs="?", default=10)
    parser.add_argument("--base-port", type=int, default=20000)
    args = parser.parse_args()
    install_signal_handlers()
    try:
        with Fleet(args.count, args.base_port) as fleet:
            for endpoint in fleet.endpoints:
                print(endpoint.target, endpoint.profile.name, f"pid={endpoint.process.pid}")
            print(
                f"{len(fleet.endpoints)} endpoints on {len(fleet.hosts)} hosts up (CA: {fleet.ca_file}); "
                "Ctrl-C stops them",
                file=sys.stderr,
            )
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
