"""Which cipher suites a server accepts, per protocol version, found at the ClientHello level.

sslyze can only offer the suites its OpenSSL builds implement. This enumerator offers every suite of the IANA
registry (``scanner/data``), reads the one the ServerHello picks, takes it out of the offer and asks again, until
the server refuses: about (accepted + 1) connections per version instead of one handshake per candidate. It
never completes a handshake, so it needs no implementation of the suites it finds (ARIA, Camellia-GCM, CCM_8,
GOST, anonymous, NULL, export ...).

Robustness, in order of how often it matters:

- A server refuses with a fatal alert, or by closing the connection (FIN or RST): both end a version's
  enumeration. An alert proves the server parsed the hello; a close does not.
- Some servers choke on long ClientHellos (the full offer is about 900 bytes) and close or hang instead of
  answering. When a hello longer than any the server has answered fails that way, a shorter hello with the most
  common suites first is tried (128, then 32 suites); if the server answers it, the rest of the offer is split into
  hellos of a length the server has shown it handles, and the results merged. What was learned holds for the
  other versions of the same endpoint.
- A server may answer a version lower than offered: that version is then not accepted (with the rest of the
  offer, if suites were already found). Network failures make the version's status ``error``, never
  ``not_accepted``.

With two or more suites accepted, one more hello offers them in reverse order: a server that still picks its first
choice enforces its own order (``cipher_order="server"``, and the suites are listed in that order); one that
follows ours does not (``"client"``).
"""

from __future__ import annotations

import functools
import itertools
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from scanner.facts import CipherOrder, CipherSuite, ErrorClass, ProbeError, ProtocolSupport, ProtocolVersion
from scanner.probe import iana
from scanner.probe.connect.endpoint import Endpoint
from scanner.probe.wire.codes import VERSION_CODES, describe_group
from scanner.probe.wire.hello import build_client_hello
from scanner.probe.wire.messages import Alert, Closed, ConnectFailed, Malformed, NotTls, ServerReply, TimedOut
from scanner.probe.wire.records import exchange

ENUMERABLE_VERSIONS: tuple[ProtocolVersion, ...] = (
    ProtocolVersion.SSLv3,
    ProtocolVersion.TLSv1_0,
    ProtocolVersion.TLSv1_1,
    ProtocolVersion.TLSv1_2,
    ProtocolVersion.TLSv1_3,
)
# Suites per hello when a long hello seems to choke the server: tried in turn on the most common suites, each
# only if it makes the hello markedly shorter (padding keeps hellos of 256-511 bytes at 512).
SPLIT_LADDER: tuple[int, ...] = (128, 32)
_MARKEDLY_SHORTER = 64  # bytes
# The fewest suites per hello once a server is known to choke, whatever it answered before: a hello for another
# version may have been shorter than any this version can send.
_MIN_SUITES_PER_HELLO = 16
# Alerts that mean "I understood your hello and share nothing with it". Any other alert to a hello longer than
# the server has answered before may be the server failing to parse a long hello, and earns a shorter retry.
_REFUSAL_ALERTS = frozenset({40, 70, 71, 86})  # handshake_failure, protocol_version, insufficient_security,
# inappropriate_fallback
_UNRECOGNIZED_NAME = 112
# enumerate_all asks the versions most servers accept first: what a server answers there shows which hello
# lengths it handles, which saves retries on the versions it refuses.
_PROBE_ORDER = (
    ProtocolVersion.TLSv1_2,
    ProtocolVersion.TLSv1_3,
    ProtocolVersion.TLSv1_1,
    ProtocolVersion.TLSv1_0,
    ProtocolVersion.SSLv3,
)


class ConnectionCounter:
    """Counts the connections the enumerator opens, per version and purpose; safe to share between threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.enumeration: dict[ProtocolVersion, int] = {}
        self.ordering: dict[ProtocolVersion, int] = {}

    def add(self, version: ProtocolVersion, *, ordering: bool = False) -> None:
        with self._lock:
            table = self.ordering if ordering else self.enumeration
            table[version] = table.get(version, 0) + 1

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self.enumeration.values()) + sum(self.ordering.values())


@dataclass
class HelloLimits:
    """What one endpoint has shown about ClientHello lengths; shared by the versions of one enumeration."""

    tolerated: int = 0  # the longest hello (bytes) the server answered with a TLS message
    chokes_at: int | None = None  # a length that failed while shorter hellos were answered


# --- candidate order ------------------------------------------------------------------------------------------

_COMMON_KX = {"ECDHE": 0, "DHE": 1, "RSA": 1}
_ENCRYPTION_TIER = (
    ("AES_128_GCM", 0), ("AES_256_GCM", 0), ("CHACHA20_POLY1305", 0), ("AES_128_CBC", 0), ("AES_256_CBC", 0),
    ("3DES_EDE_CBC", 1), ("RC4_128", 1), ("AES_128_CCM", 2), ("AES_256_CCM", 2), ("CAMELLIA", 2), ("ARIA", 2),
    ("SEED", 2), ("IDEA", 2), ("DES", 3), ("RC4_40", 3), ("RC2", 3), ("NULL", 4),
)  # fmt: skip


def _tier(info: iana.CipherSuiteInfo) -> int:
    """0 for what nearly every server offers, up to 4 for what almost none does."""
    if info.tls13:
        return 0 if 0x1301 <= info.code <= 0x1305 else 3
    kx = 4 if info.anonymous else _COMMON_KX.get(info.key_exchange, 3)
    enc = next((tier for prefix, tier in _ENCRYPTION_TIER if info.encryption.startswith(prefix)), 3)
    return max(kx, enc, 3 if info.export else 0)


def _preference(info: iana.CipherSuiteInfo) -> tuple[int, int, int, int]:
    """Common before rare; within a tier, forward-secret before static RSA, AEAD before CBC."""
    kx = {"ECDHE": 0, "DHE": 1, "RSA": 2}.get(info.key_exchange, 3)
    enc = next((i for i, (prefix, _) in enumerate(_ENCRYPTION_TIER) if info.encryption.startswith(prefix)), 99)
    return _tier(info), kx, enc, info.code


def candidate_suites(version: ProtocolVersion) -> list[int]:
    """Every IANA suite a ``version`` ClientHello can offer, the most widely deployed first.

    The order matters twice: it is our preference when the server follows the client's order, and when a
    server chokes on long hellos the first, short hello holds the suites it most likely accepts.
    """
    return list(_ordered_suites(version))


@functools.cache
def _ordered_suites(version: ProtocolVersion) -> tuple[int, ...]:
    # The registry does not change during a run: sorting it once per version, not once per hello, is most of
    # the enumerator's own CPU time saved.
    return tuple(s.code for s in sorted(iana.suites_for_version(version), key=_preference))


# --- classifying one reply ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Picked:
    suite: int
    ephemeral_key: str | None
    # False when a fatal alert followed the ServerHello before the flight ended: the server chose the suite
    # but could not go on with it (the handshake would fail), so it is not counted as accepted.
    usable: bool = True


@dataclass(frozen=True)
class _Refused:
    reason: str


@dataclass(frozen=True)
class _Ambiguous:
    """No answer that proves the server understood the hello: a close, a timeout, or a parse-error alert."""

    reason: str
    timeout: bool


@dataclass(frozen=True)
class _Failed:
    error: ProbeError
    fatal: bool = False  # the endpoint cannot be probed at all (no connection, not TLS)


_Verdict = _Picked | _Refused | _Ambiguous | _Failed


def _ephemeral_key(reply: ServerReply) -> str | None:
    if (exchange := reply.server_key_exchange) is not None:
        return exchange.ephemeral_key
    if (hello := reply.server_hello) is not None and hello.key_share_group is not None:
        return describe_group(hello.key_share_group)
    if (retry := reply.hello_retry_request) is not None and retry.selected_group is not None:
        return describe_group(retry.selected_group)
    return None


def _classify(reply: ServerReply, offer: set[int], version: ProtocolVersion, where: str) -> _Verdict:
    end = reply.end
    if isinstance(end, ConnectFailed):
        return _Failed(end.error, fatal=True)
    suite = reply.selected_suite
    if suite is not None:
        selected = reply.selected_version
        offered_code = VERSION_CODES[version]
        if selected != version:
            if selected is not None and VERSION_CODES[selected] < offered_code:
                return _Refused(f"the server answered with {selected.value}")
            got = selected.value if selected is not None else "an unknown version"
            return _Failed(
                ProbeError(
                    error_class=ErrorClass.handshake_failed,
                    message=f"{where} answered a {version.value} ClientHello with {got}",
                )
            )
        if suite not in offer:
            return _Failed(
                ProbeError(
                    error_class=ErrorClass.handshake_failed,
                    message=f"{where} selected cipher suite 0x{suite:04X}, which was not offered",
                )
            )
        return _Picked(suite, _ephemeral_key(reply), usable=not (isinstance(end, Alert) and end.fatal))
    if isinstance(end, Alert):
        if end.description == _UNRECOGNIZED_NAME:
            # A refusal of the name we sent, not of the suites: saying "not accepted" would be wrong.
            return _Failed(
                ProbeError(
                    error_class=ErrorClass.handshake_failed,
                    message=f"{where} refused the server name sent (alert unrecognized_name)",
                )
            )
        if end.description in _REFUSAL_ALERTS:
            return _Refused(f"alert {end.name}")
        return _Ambiguous(f"alert {end.name}", timeout=False)
    if isinstance(end, Closed):
        return _Ambiguous("connection reset" if end.reset else "connection closed", timeout=False)
    if isinstance(end, TimedOut):
        return _Ambiguous(f"no answer within {end.seconds:.1f}s", timeout=True)
    if isinstance(end, NotTls):
        if end.ssl2:
            return _Refused("the server answered with SSL 2.0")
        return _Failed(
            ProbeError(error_class=ErrorClass.not_tls, message=f"{where} answered a ClientHello with {end.describe()}"),
            fatal=True,
        )
    reason = end.reason if isinstance(end, Malformed) else "no ServerHello"
    return _Failed(ProbeError(error_class=ErrorClass.probe_failed, message=f"{where}: unexpected reply: {reason}"))


# --- one version ----------------------------------------------------------------------------------------------


_chains = itertools.count()


@dataclass
class _Pool:
    suites: list[int]
    # The remainder of a longer offer the server did not answer: enumerated once a shorter hello is answered
    # (which shows the server chokes on length), dropped if even the shortest hello gets no answer.
    rest: list[int] = field(default_factory=list)
    # Offers that follow from one another by removing the suite picked share a chain: within one chain the
    # server picked in its own order.
    chain: int = field(default_factory=lambda: next(_chains))


class _VersionEnumeration:
    def __init__(
        self,
        endpoint: Endpoint,
        version: ProtocolVersion,
        counter: ConnectionCounter,
        limits: HelloLimits,
        max_suites_per_hello: int | None,
    ) -> None:
        self.endpoint = endpoint
        self.version = version
        self.counter = counter
        self.limits = limits
        self.max_suites = max_suites_per_hello
        self.picks: list[_Picked] = []
        self.chains_with_picks: set[int] = set()
        self.failed_length: int | None = None  # shortest hello that got no answer and was retried shorter
        self.unusable: set[int] = set()  # picked, then a fatal alert: not accepted, but no longer offered
        self.error: _Failed | None = None

    # -- wire --

    def hello(self, suites: Sequence[int]) -> bytes:
        return build_client_hello(self.version, suites, server_name=self.endpoint.server_name)

    def ask(self, suites: Sequence[int], *, ordering: bool = False) -> tuple[int, _Verdict]:
        hello = self.hello(suites)
        self.counter.add(self.version, ordering=ordering)
        reply = exchange(self.endpoint, hello)
        verdict = _classify(reply, set(suites), self.version, self.endpoint.display)
        self.note_leaf(reply, verdict)
        return len(hello), verdict

    def note_leaf(self, reply: ServerReply, verdict: _Verdict) -> None:
        """The leaf served with a suite picked and usable, for the endpoint's log of what it showed in the clear."""
        log = self.endpoint.seen
        shown = reply.certificate
        if log is None or not isinstance(verdict, _Picked) or not verdict.usable or shown is None:
            return
        info = iana.cipher_suite(verdict.suite)
        if info is not None and shown.certificates:
            log.add(self.version, info.authentication, shown.certificates[0])

    def answered(self, length: int) -> None:
        """The server answered a hello of ``length`` bytes with TLS: it handles that length."""
        self.limits.tolerated = max(self.limits.tolerated, length)
        if self.failed_length is not None and length < self.failed_length:
            chokes = self.limits.chokes_at
            self.limits.chokes_at = self.failed_length if chokes is None else min(chokes, self.failed_length)

    def split(self, offer: list[int]) -> list[list[int]] | None:
        """The offer in hellos short enough for what we know of the server, or None when it fits as it is."""
        size = len(offer)
        if self.max_suites is not None:
            size = min(size, self.max_suites)
        if self.limits.chokes_at is not None and len(self.hello(offer[:size])) >= self.limits.chokes_at:
            base = len(self.hello([]))
            size = min(size, max(_MIN_SUITES_PER_HELLO, (self.limits.tolerated - base) // 2))
        if size >= len(offer):
            return None
        return [offer[i : i + size] for i in range(0, len(offer), size)]

    def shorter(self, offer: list[int], length: int) -> int | None:
        """How many suites to retry with when a hello of ``length`` bytes got no answer, if any."""
        for count in SPLIT_LADDER:
            if count < len(offer) and len(self.hello(offer[:count])) <= length - _MARKEDLY_SHORTER:
                return count
        return None

    # -- enumeration --

    def run(self, candidates: Sequence[int]) -> None:
        pending = [_Pool(list(candidates))]
        while pending:
            pool = pending.pop(0)
            then = [_Pool(pool.rest)] if pool.rest else []
            taken = {p.suite for p in self.picks} | self.unusable
            offer = [c for c in pool.suites if c not in taken]
            if not offer:
                pending[:0] = then
                continue
            if (chunks := self.split(offer)) is not None:
                pending[:0] = [_Pool(chunk) for chunk in chunks] + then
                continue
            length, verdict = self.ask(offer)
            if isinstance(verdict, _Picked):
                self.answered(length)
                if verdict.usable:
                    self.picks.append(verdict)
                    self.chains_with_picks.add(pool.chain)
                else:
                    self.unusable.add(verdict.suite)
                remaining = [c for c in offer if c != verdict.suite]
                pending[:0] = [_Pool(remaining, pool.rest, pool.chain)]
            elif isinstance(verdict, _Refused):
                self.answered(length)
                pending[:0] = then
            elif isinstance(verdict, _Failed):
                self.error = verdict
                return
            elif length > self.limits.tolerated and (shorter := self.shorter(offer, length)) is not None:
                # No answer to a hello longer than any this server has answered: it may be choking on the
                # length. Ask again with the first (most common) suites only; the rest waits for the verdict.
                self.failed_length = length if self.failed_length is None else min(self.failed_length, length)
                pending[:0] = [_Pool(offer[:shorter], offer[shorter:] + pool.rest)]
            elif verdict.timeout:
                self.error = _Failed(
                    ProbeError(
                        error_class=ErrorClass.timeout,
                        message=f"{self.endpoint.display} did not answer a {self.version.value} ClientHello: "
                        f"{verdict.reason}",
                    )
                )
                return
            # Otherwise a close or an odd alert at a length the server handles: a refusal, like an alert; the
            # rest of a longer offer that was never answered goes with it.

    def server_order(self) -> list[int] | None:
        """The accepted suites in the server's order: the picks themselves when they came from one offer,
        otherwise asked again from an offer of just the accepted suites."""
        codes = [p.suite for p in self.picks]
        if len(self.chains_with_picks) <= 1:
            return codes
        order: list[int] = []
        remaining = list(codes)
        while len(remaining) > 1:
            _, verdict = self.ask(remaining, ordering=True)
            if not isinstance(verdict, _Picked):
                return None
            order.append(verdict.suite)
            remaining.remove(verdict.suite)
        return order + remaining

    def cipher_order(self) -> tuple[CipherOrder | None, list[int]]:
        codes = [p.suite for p in self.picks]
        if len(codes) < 2:
            return None, codes
        reversed_offer = codes[::-1]
        if self.split(reversed_offer) is not None:
            return None, codes  # too many to offer in one hello this server handles
        _, verdict = self.ask(reversed_offer, ordering=True)
        if not isinstance(verdict, _Picked):
            return None, codes
        if verdict.suite != codes[0]:
            return "client", codes
        order = self.server_order()
        return ("server", order) if order is not None else ("server", codes)

    def result(self) -> ProtocolSupport:
        order, codes = self.cipher_order() if self.error is None else (None, [p.suite for p in self.picks])
        keys = {p.suite: p.ephemeral_key for p in self.picks}
        suites = [_fact(code, keys.get(code)) for code in codes]
        if self.error is not None:
            message = self.error.error.message
            if suites:
                message = f"{message} (after {len(suites)} accepted suites; the list may be incomplete)"
            return ProtocolSupport(
                version=self.version,
                status="error",
                cipher_suites=suites,
                error=ProbeError(error_class=self.error.error.error_class, message=message),
            )
        if not suites:
            return ProtocolSupport(version=self.version, status="not_accepted")
        return ProtocolSupport(version=self.version, status="accepted", cipher_suites=suites, cipher_order=order)


def _fact(code: int, ephemeral_key: str | None) -> CipherSuite:
    info = iana.cipher_suite(code)
    if info is None:  # only suites from the registry are offered, and a server picking another is an error
        return CipherSuite(name=f"0x{code:04X}", code=f"0x{code:04X}", ephemeral_key=ephemeral_key)
    return iana.to_fact(info, ephemeral_key)


# --- public API -----------------------------------------------------------------------------------------------


def enumerate_version(
    endpoint: Endpoint,
    version: ProtocolVersion,
    *,
    counter: ConnectionCounter | None = None,
    limits: HelloLimits | None = None,
    max_suites_per_hello: int | None = None,
    candidates: Sequence[int] | None = None,
) -> ProtocolSupport:
    """The suites ``endpoint`` accepts with ``version`` (SSLv3 to TLS 1.3), and whose order it follows.

    ``candidates`` narrows the offer (default: every IANA suite for the version, most common first);
    ``max_suites_per_hello`` caps each hello (default: none, the offer is split only if the server chokes).
    """
    if version not in VERSION_CODES:
        raise ValueError(f"{version.value} cannot be enumerated with a TLS ClientHello")
    run = _VersionEnumeration(
        endpoint, version, counter or ConnectionCounter(), limits or HelloLimits(), max_suites_per_hello
    )
    run.run(candidates if candidates is not None else candidate_suites(version))
    return run.result()


def enumerate_all(
    endpoint: Endpoint,
    versions: Sequence[ProtocolVersion] = ENUMERABLE_VERSIONS,
    *,
    counter: ConnectionCounter | None = None,
    max_suites_per_hello: int | None = None,
) -> list[ProtocolSupport]:
    """``enumerate_version`` for each of ``versions`` (results in that order), sharing what the endpoint showed
    about hello lengths. A target that cannot be connected to, or does not speak TLS, costs one attempt, not one
    per version: the versions after it carry the same error."""
    for version in versions:
        if version not in VERSION_CODES:
            raise ValueError(f"{version.value} cannot be enumerated with a TLS ClientHello")
    counter = counter or ConnectionCounter()
    limits = HelloLimits()
    results: dict[ProtocolVersion, ProtocolSupport] = {}
    fatal: ProbeError | None = None
    for version in sorted(versions, key=_PROBE_ORDER.index):
        if fatal is not None:
            results[version] = ProtocolSupport(version=version, status="error", error=fatal)
            continue
        run = _VersionEnumeration(endpoint, version, counter, limits, max_suites_per_hello)
        run.run(candidate_suites(version))
        results[version] = run.result()
        if run.error is not None and run.error.fatal:
            fatal = run.error.error
    return [results[version] for version in versions]


def highest_accepted(protocols: Mapping[ProtocolVersion, ProtocolSupport]) -> ProtocolVersion | None:
    """The highest version the enumeration found accepted, when every version above it was found refused (not
    an error); None otherwise, and for a server that speaks SSL 2.0 alone (no TLS handshake settles on it)."""
    for version in reversed(ProtocolVersion):
        found = protocols.get(version)
        if found is None or found.status == "error" or version == ProtocolVersion.SSLv2:
            return None
        if found.status == "accepted":
            return version
    return None
