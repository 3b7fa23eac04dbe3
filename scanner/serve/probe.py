"""Scan one target on request, blackbox-exporter style (``/probe?target=HOST:PORT&pack=ID``), within bounds.

An open prober is an SSRF tool: whoever can reach it can make it connect anywhere the server can. So a request is
scanned only when its target is allowed (``Allowed``: CIDR networks and host names the operator listed; nothing by
default), a host name is resolved here and every address it resolves to must be allowed, and the scan then
connects to the address that was checked (a name that resolves elsewhere a moment later is not followed). AIA,
OCSP and CRL fetching — URLs a certificate names — is off unless the operator turns it on. Packs are those the
server loaded at start, chosen by id: a request never names a file.

Bounds: at most ``max_probes`` scans at once (``Busy`` beyond, HTTP 503), each within ``probe_time`` seconds or the
scraper's own timeout (``X-Prometheus-Scrape-Timeout-Seconds``), whichever is shorter.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from scanner.policy.pack import RulePack
from scanner.probe.pki.certchain import CertificateOptions
from scanner.report import Report
from scanner.targets import Target, TargetError, parse_target

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
_NAME = re.compile(r"^(\*\.)?[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9])?(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9])?)*$")
_SCRAPE_MARGIN = 0.5  # seconds left to the scraper to read the answer after the scan's budget
MIN_PROBE_TIME = 1.0


class ProbeRefused(Exception):
    """A request that is not scanned: ``status`` is its HTTP status, ``str()`` one line saying why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Busy(ProbeRefused):
    def __init__(self, limit: int) -> None:
        super().__init__(503, f"{limit} probe{'s' * (limit > 1)} already running: try again later")


@dataclass(frozen=True)
class Allowed:
    """The targets /probe may scan: addresses in ``networks``, and host names in ``names`` (``*.example.com``
    allows every name under example.com). A name allowed by name is scanned wherever it resolves; any other name
    only when every address it resolves to is in ``networks``."""

    networks: tuple[IPNetwork, ...] = ()
    names: tuple[str, ...] = ()

    @classmethod
    def parse(cls, entries: Sequence[str]) -> Allowed:
        """``--allow`` entries (comma-separated lists too); raises ValueError with one line for a bad one."""
        networks: list[IPNetwork] = []
        names: list[str] = []
        for entry in (part.strip() for item in entries for part in item.split(",")):
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
                continue
            except ValueError:
                pass
            name = entry.lower().rstrip(".")
            if not _NAME.match(name):
                raise ValueError(f"--allow {entry!r}: neither an address or CIDR network nor a host name")
            names.append(name)
        return cls(tuple(networks), tuple(names))

    @property
    def empty(self) -> bool:
        return not self.networks and not self.names

    def permits_name(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        return any(host == n or (n.startswith("*.") and host.endswith(n[1:])) for n in self.names)

    def permits_address(self, address: str) -> bool:
        ip = ipaddress.ip_address(address)
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped  # ::ffff:10.0.0.1 is 10.0.0.1 to the kernel
        return any(ip in network for network in self.networks)


Resolver = Callable[[str, int], list[str]]


def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to for a TCP connection (the system resolver, its own timeouts)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True)
class ProbeSettings:
    packs: Mapping[str, RulePack]  # by id; the first is the default
    allowed: Allowed = field(default_factory=Allowed)
    timeout: float = 5.0  # each connect and read
    probe_time: float = 30.0  # the whole scan of one request
    max_probes: int = 4
    fetch: bool = False  # AIA, OCSP and CRL fetching (URLs the scanned certificate names)
    certificates: CertificateOptions = field(default_factory=CertificateOptions)


@dataclass(frozen=True)
class Checked:
    target: Target
    pack: RulePack
    address: str | None  # the address to connect to; None for a name allowed by name


class Prober:
    """Checks /probe requests and scans the ones allowed, ``max_probes`` at once."""

    def __init__(self, settings: ProbeSettings, resolver: Resolver = resolve) -> None:
        if not settings.packs:
            raise ValueError("a prober needs at least one pack")
        self.settings = settings
        self._resolver = resolver
        self._slots = threading.BoundedSemaphore(settings.max_probes)

    def check(self, target_text: str | None, pack_id: str | None) -> tuple[Target, RulePack]:
        """The target and pack a request names; ProbeRefused (400) when either is missing or wrong."""
        if not target_text:
            raise ProbeRefused(400, "missing target: /probe?target=HOST:PORT[&pack=ID]")
        try:
            target = parse_target(target_text)
        except TargetError as exc:
            raise ProbeRefused(400, f"bad target {exc}") from None
        packs = self.settings.packs
        if pack_id is None:
            return target, next(iter(packs.values()))
        if pack_id not in packs:
            raise ProbeRefused(400, f"unknown pack {pack_id!r}: this server scans with {', '.join(packs)}")
        return target, packs[pack_id]

    def permit(self, target: Target) -> str | None:
        """The address to connect to (None: let the scan resolve a name allowed by name); ProbeRefused (403) when
        the target is not allowed, (400) when its name does not resolve."""
        allowed = self.settings.allowed
        if allowed.empty:
            raise ProbeRefused(403, "probing is off: start tlsgate serve with --allow NETWORK|HOST")
        if target.is_ip:
            if not allowed.permits_address(target.host):
                raise ProbeRefused(403, f"target {target.display} is not in the --allow list")
            return target.host
        if allowed.permits_name(target.host):
            return None
        try:
            addresses = self._resolver(target.host, target.port)
        except (OSError, UnicodeError) as exc:
            raise ProbeRefused(400, f"target {target.display}: cannot resolve {target.host}: {exc}") from None
        refused = [a for a in addresses if not allowed.permits_address(a)]
        if not addresses or refused:
            shown = refused[0] if refused else "nothing"
            raise ProbeRefused(403, f"target {target.display} resolves to {shown}, not in the --allow list")
        return addresses[0]

    def probe(self, target_text: str | None, pack_id: str | None, scrape_timeout: float | None = None) -> Report:
        """Scan the request's target with its pack; ProbeRefused when it is not scanned (Busy at the limit)."""
        target, pack = self.check(target_text, pack_id)
        if not self._slots.acquire(blocking=False):
            raise Busy(self.settings.max_probes)
        try:
            address = self.permit(target)
            return self._scan(target, pack, address, self.budget(scrape_timeout))
        finally:
            self._slots.release()

    def budget(self, scrape_timeout: float | None) -> float:
        """Seconds the scan may take: ``probe_time``, or less to answer within the scraper's timeout."""
        budget = self.settings.probe_time
        if scrape_timeout is not None and scrape_timeout > 0:
            budget = min(budget, scrape_timeout - _SCRAPE_MARGIN)
        return max(MIN_PROBE_TIME, budget)

    def _scan(self, target: Target, pack: RulePack, address: str | None, budget: float) -> Report:
        from scanner.engine import ScanRequest, scan  # noqa: PLC0415 - the probe stage loads only when probing
        from scanner.probe.options import ConnectOptions, ProbeOptions  # noqa: PLC0415

        settings = self.settings
        probe = ProbeOptions(
            timeout=min(settings.timeout, budget),
            concurrency=1,
            time_budget=budget,
            offline=not settings.fetch,
            certificates=settings.certificates,
        )
        request = ScanRequest(
            targets=[target], packs=[pack], probe=probe, connect=ConnectOptions(connect_address=address)
        )
        return scan(request).report


PROBE_METRIC_NAMES = ("tlsgate_probe_success", "tlsgate_probe_duration_seconds")


class ProbeCollector(Collector):
    """blackbox_exporter's two answers for one probe: did it succeed, and how long it took."""

    def __init__(self, report: Report) -> None:
        self._report = report

    def collect(self) -> Iterator[Metric]:
        report = self._report
        success = all(t.facts.status == "ok" for t in report.targets)
        yield GaugeMetricFamily(
            PROBE_METRIC_NAMES[0], "1 if the probe reached the target and completed a TLS handshake, else 0.",
            value=1.0 if success else 0.0,
        )  # fmt: skip
        yield GaugeMetricFamily(
            PROBE_METRIC_NAMES[1], "How long the probe's scan took.",
            value=(report.finished_at - report.started_at).total_seconds(),
        )  # fmt: skip
