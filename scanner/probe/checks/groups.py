"""Key-exchange groups: which named groups the server accepts, in its order, DH size, hybrid post-quantum.

Like the cipher enumerator, each question costs (accepted + 1) round trips instead of one per candidate:

- TLS 1.3: offer every group with an *empty* key_share; the server must answer with a HelloRetryRequest
  naming the group it wants (RFC 8446 section 4.1.4). Remove that group and ask again until it refuses.
  No key needs to be computed, so hybrid post-quantum groups (X25519MLKEM768 ...) are tested as cheaply
  as classical ones.
- TLS 1.2: offer only ECDHE suites and every curve; the ServerKeyExchange names the curve picked.
- DHE: offer only DHE suites and no FFDHE group; the ServerKeyExchange carries the server's own prime.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from scanner.facts import (
    ErrorClass,
    GroupFacts,
    NamedGroup,
    Observed,
    ProbeError,
    ProtocolVersion,
    observed,
)
from scanner.probe import iana
from scanner.probe.connect.endpoint import Endpoint
from scanner.probe.wire.hello import build_client_hello
from scanner.probe.wire.messages import Alert, Closed, ConnectFailed, NotTls, ServerReply, TimedOut
from scanner.probe.wire.records import exchange

SOURCE = "tlsgate"
# A guard against a server that keeps naming a group we did not offer or never refuses.
_MAX_ROUNDS = 64


@dataclass(frozen=True)
class _Enumeration:
    picked: list[int]
    error: ProbeError | None  # set when the enumeration ended on something other than a refusal
    refused_version: bool = False  # the server does not speak the version at all
    connections: int = 0


# RFC 8446 section 4.2.7: the binary curves, secp160/192/224 and the TLS 1.2 brainpool code points are
# obsolete_RESERVED in TLS 1.3; some stacks reject a TLS 1.3-only hello that lists them (illegal_parameter).
_TLS13_OBSOLETE = frozenset(range(0x0001, 0x0017)) | frozenset(range(0x001A, 0x001D))


def _tls13_candidates() -> list[int]:
    return [
        g.code
        for g in iana.named_groups()
        if g.kind in ("ecdhe", "ffdhe", "hybrid_pq", "pq") and not g.obsolete and g.code not in _TLS13_OBSOLETE
    ]


def _tls12_curves() -> list[int]:
    return [g.code for g in iana.named_groups() if g.kind == "ecdhe"]


def _suites(version: ProtocolVersion, key_exchange: str | None = None) -> list[int]:
    return [s.code for s in iana.suites_for_version(version) if key_exchange is None or s.key_exchange == key_exchange]


def _end_error(endpoint: Endpoint, reply: ServerReply, what: str) -> ProbeError | None:
    """None when the reply ended in a refusal (alert or close); an error for anything we cannot read as one."""
    end = reply.end
    if end is None or isinstance(end, Alert | Closed):
        return None
    if isinstance(end, ConnectFailed):
        return end.error
    if isinstance(end, TimedOut):
        return ProbeError(error_class=ErrorClass.timeout, message=f"{what}: no answer within {endpoint.timeout:g}s")
    if isinstance(end, NotTls):
        return ProbeError(error_class=ErrorClass.not_tls, message=f"{what}: the server answered {end.describe()}")
    return ProbeError(error_class=ErrorClass.probe_failed, message=f"{what}: {end.reason}")


def _enumerate(
    endpoint: Endpoint,
    candidates: list[int],
    ask: Callable[[list[int]], ServerReply],
    pick: Callable[[ServerReply], int | bool | None],
    what: str,
) -> _Enumeration:
    """Offer ``candidates``, take the pick out, repeat. ``pick`` returns a group, None (refused) or False
    (the server answered with another version: it does not speak this one)."""
    remaining = list(candidates)
    picked: list[int] = []
    connections = 0
    while remaining and connections < _MAX_ROUNDS:
        reply = ask(remaining)
        connections += 1
        choice = pick(reply)
        if choice is False:
            return _Enumeration(picked, None, refused_version=not picked, connections=connections)
        if choice is None or choice is True:
            return _Enumeration(picked, _end_error(endpoint, reply, what), connections=connections)
        if choice in picked:
            # The server went back to a group it already chose (the ECDSA certificate's curve, which we keep
            # offering): none of the remaining candidates is acceptable to it.
            return _Enumeration(picked, None, connections=connections)
        if choice not in remaining:
            message = f"{what}: the server picked group 0x{choice:04X}, which was not offered"
            error = ProbeError(error_class=ErrorClass.probe_failed, message=message)
            return _Enumeration([*picked, choice], error, connections=connections)
        picked.append(choice)
        remaining.remove(choice)
    return _Enumeration(picked, None, connections=connections)


def _tls13(endpoint: Endpoint) -> _Enumeration:
    suites = _suites(ProtocolVersion.TLSv1_3)

    def ask(groups: list[int]) -> ServerReply:
        hello = build_client_hello(
            ProtocolVersion.TLSv1_3,
            suites,
            server_name=endpoint.server_name,
            groups=groups,
            key_share_groups=(),
        )
        return exchange(endpoint, hello, until="server_hello")

    def pick(reply: ServerReply) -> int | bool | None:
        if (retry := reply.hello_retry_request) is not None:
            return retry.selected_group
        if (hello := reply.server_hello) is not None:
            # With no key share offered, only a server below TLS 1.3 answers with a ServerHello.
            return hello.key_share_group if hello.protocol == ProtocolVersion.TLSv1_3 else False
        alert = reply.alert
        if alert is not None and alert.name == "protocol_version":
            return False
        return None

    return _enumerate(endpoint, _tls13_candidates(), ask, pick, "TLS 1.3 group probe")


def _tls12(endpoint: Endpoint, key_exchange: str) -> Callable[[list[int]], ServerReply]:
    """Ask with only ``key_exchange`` suites and the given supported_groups."""
    suites = _suites(ProtocolVersion.TLSv1_2, key_exchange)

    def ask(groups: list[int]) -> ServerReply:
        hello = build_client_hello(ProtocolVersion.TLSv1_2, suites, server_name=endpoint.server_name, groups=groups)
        return exchange(endpoint, hello, until="server_hello_done")

    return ask


def _certificate_curve(reply: ServerReply) -> int | None:
    """The named group of an ECDSA leaf, from the TLS 1.2 Certificate message (sent in the clear)."""
    certificate = reply.certificate
    if certificate is None or not certificate.certificates:
        return None
    try:
        key = x509.load_der_x509_certificate(certificate.certificates[0]).public_key()
    except ValueError:
        return None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        return None
    info = iana.named_group_by_name(key.curve.name)
    return info.code if info else None


def _tls12_curves_of(endpoint: Endpoint) -> _Enumeration:
    # RFC 4492 5.1: an ECDSA certificate is usable only with its own curve in supported_groups, so once the
    # server has chosen that curve we keep offering it, last, and stop when it is chosen again.
    ask_with = _tls12(endpoint, "ECDHE")
    certificate_curve: list[int] = []

    def ask(groups: list[int]) -> ServerReply:
        extra = [c for c in certificate_curve if c not in groups]
        return ask_with(groups + extra)

    def pick(reply: ServerReply) -> int | bool | None:
        hello = reply.server_hello
        if hello is not None and hello.protocol != ProtocolVersion.TLSv1_2:
            return False
        exchange = reply.server_key_exchange
        if hello is None or exchange is None:
            return None
        if not certificate_curve and (curve := _certificate_curve(reply)) is not None:
            certificate_curve.append(curve)
        return exchange.named_group

    return _enumerate(endpoint, _tls12_curves(), ask, pick, "TLS 1.2 curve probe")


def _dh_bits(endpoint: Endpoint) -> Observed[int]:
    # Only EC curves in supported_groups: a server that knows RFC 7919 would otherwise answer with an FFDHE
    # group of our choosing instead of the parameters it is configured with.
    reply = _tls12(endpoint, "DHE")(_tls12_curves())
    hello, exchange = reply.server_hello, reply.server_key_exchange
    if hello is not None and exchange is not None and exchange.dh_prime_bits is not None:
        return observed(exchange.dh_prime_bits, SOURCE)
    error = _end_error(endpoint, reply, "DHE probe")
    if error is not None:
        return Observed[int](status="error", error=error, source=SOURCE)
    reason = "the server accepts no DHE suite with TLS 1.2"
    return Observed[int](
        status="not_probed", error=ProbeError(error_class=ErrorClass.not_applicable, message=reason), source=SOURCE
    )


def _facts_list(result: _Enumeration) -> list[NamedGroup]:
    facts = []
    for code in result.picked:
        info = iana.named_group(code)
        facts.append(
            iana.group_to_fact(info)
            if info
            else NamedGroup(name=f"unknown_0x{code:04X}", code=f"0x{code:04X}", kind="other")
        )
    return facts


def _observed_list(result: _Enumeration) -> Observed[list[NamedGroup]]:
    # A failure part-way may hide groups not yet found, so the list is not complete: an error, not a value.
    if result.error is not None:
        return Observed[list[NamedGroup]](status="error", error=result.error, source=SOURCE)
    return observed(_facts_list(result), SOURCE)


def probe_groups(endpoint: Endpoint) -> GroupFacts:
    tls13 = _tls13(endpoint)
    tls12 = _tls12_curves_of(endpoint)
    dh_bits = _dh_bits(endpoint)
    tls13_fact = _observed_list(tls13)
    tls12_fact = _observed_list(tls12)

    preferred: Observed[str]
    found = tls13.picked or tls12.picked
    if found:
        first = found[0]
        info = iana.named_group(first)
        preferred = observed(info.name if info else f"unknown_0x{first:04X}", SOURCE)
    elif tls13.error is not None or tls12.error is not None:
        preferred = Observed[str](status="error", error=tls13.error or tls12.error, source=SOURCE)
    else:
        preferred = Observed[str](
            status="not_probed",
            error=ProbeError(error_class=ErrorClass.not_applicable, message="the server accepts no named group"),
            source=SOURCE,
        )

    hybrid: Observed[bool]
    if tls13.error is not None and not any(_is_hybrid(c) for c in tls13.picked):
        hybrid = Observed[bool](status="error", error=tls13.error, source=SOURCE)
    else:
        hybrid = observed(any(_is_hybrid(c) for c in tls13.picked), SOURCE)

    errors = [f.error for f in (tls13_fact, tls12_fact) if f.status == "error" and f.error]
    status = "error" if len(errors) == 2 else "ok"
    return GroupFacts(
        status=status,
        error=errors[0] if status == "error" else None,
        tls13=tls13_fact,
        tls12=tls12_fact,
        preferred=preferred,
        dh_parameter_bits=dh_bits,
        hybrid_pq_accepted=hybrid,
    )


def _is_hybrid(code: int) -> bool:
    info = iana.named_group(code)
    return info is not None and info.kind == "hybrid_pq"
