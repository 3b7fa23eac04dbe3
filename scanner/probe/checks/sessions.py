"""Session resumption and ticket lifetimes, observed with the OpenSSL that Python's ``ssl`` module links.

What is measured, per version, each fact on its own so one failure never hides the others:

- TLS 1.2: resumption by session ID (tickets disabled on our side), resumption by session ticket, and the
  ticket's ``ticket_lifetime_hint``;
- TLS 1.3: PSK resumption with a ticket from NewSessionTicket, and that message's ``ticket_lifetime``;
- below TLS 1.2, only when the server accepts neither 1.2 nor 1.3: the same three facts in the version it chooses
  from a TLS 1.0 to 1.3 offer (``legacy_*``);
- opt-in: is a session-ID session older than N seconds still resumed?

A version the server does not accept makes its facts an error saying so, never ``false``. Some servers (GnuTLS)
refuse a ClientHello that offers only a version they lack with a handshake_failure alert instead of
protocol_version; one handshake offering every version tells the two apart: the server's choice from it is the
highest version it accepts. A server that issues no ticket has an observed lifetime of ``None``: nothing was
announced.

The handshakes use the scanning TLS client of ``scanner.probe.connect.tlsclient``.
"""

from __future__ import annotations

import ssl
import time
from dataclasses import dataclass
from typing import Any

from scanner.facts import (
    NOT_PROBED,
    ErrorClass,
    ObservationStatus,
    Observed,
    ProbeError,
    SessionAgeCheck,
    SessionFacts,
    observed,
    unobserved,
)
from scanner.probe.connect.endpoint import Endpoint
from scanner.probe.connect.starttls import StartTlsError
from scanner.probe.connect.tlsclient import SOURCE, client_context, handshake_error, ssl_reason, tls_connect

# TLS 1.3 tickets come after the handshake. A server sends them as soon as it has our Finished, so they are here
# about one round trip after the handshake; we wait a few handshake durations, at least this long.
MIN_TICKET_WAIT = 0.5
_POLL = 0.05

_VERSION_NAMES = {
    ssl.TLSVersion.TLSv1: "TLS 1.0",
    ssl.TLSVersion.TLSv1_1: "TLS 1.1",
    ssl.TLSVersion.TLSv1_2: "TLS 1.2",
    ssl.TLSVersion.TLSv1_3: "TLS 1.3",
}
# by the names SSLSocket.version() gives
_NEGOTIATED = {
    "TLSv1": ssl.TLSVersion.TLSv1,
    "TLSv1.1": ssl.TLSVersion.TLSv1_1,
    "TLSv1.2": ssl.TLSVersion.TLSv1_2,
    "TLSv1.3": ssl.TLSVersion.TLSv1_3,
}

# Errors that say the target itself cannot be reached, whatever version we would offer.
_UNREACHABLE = frozenset({ErrorClass.refused, ErrorClass.unreachable, ErrorClass.dns, ErrorClass.starttls_failed})
# Refusals that may depend on the version offered: only these are worth one more handshake offering them all.
_VERSION_DEPENDENT = frozenset({ErrorClass.no_common_protocol, ErrorClass.handshake_failed})


# --- sessions -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Handshake:
    session: ssl.SSLSession | None
    reused: bool
    version: ssl.TLSVersion | None  # the version negotiated
    finished_at: float  # time.monotonic() when the handshake (and any ticket wait) was over


def _await_ticket(tls: ssl.SSLSocket, endpoint: Endpoint, handshake_seconds: float) -> None:
    """Read until a TLS 1.3 ticket has arrived, the server closes, or the wait is over.

    Application data the server sends first (a banner) is read and dropped. An alert (a server that wants a
    client certificate says so only now in TLS 1.3) is raised as the SSLError it is.
    """
    deadline = time.monotonic() + min(endpoint.timeout, max(MIN_TICKET_WAIT, 4 * handshake_seconds))
    tls.settimeout(_POLL)
    while True:
        session = tls.session
        if session is not None and session.has_ticket:
            return
        if time.monotonic() >= deadline:
            return
        try:
            if not tls.recv(4096):
                return
        except TimeoutError:
            continue
        except (ssl.SSLEOFError, ssl.SSLZeroReturnError, ConnectionResetError):
            return


def _handshake(
    endpoint: Endpoint,
    context: ssl.SSLContext,
    what: str,
    *,
    session: ssl.SSLSession | None = None,
    await_ticket: bool = False,
) -> _Handshake | ProbeError:
    started = time.monotonic()
    try:
        tls = tls_connect(endpoint, context, session)
    except (OSError, StartTlsError) as exc:
        return handshake_error(endpoint, what, exc)
    with tls:
        try:
            if await_ticket:
                _await_ticket(tls, endpoint, time.monotonic() - started)
            return _Handshake(
                session=tls.session,
                reused=bool(tls.session_reused),
                version=_NEGOTIATED.get(tls.version() or ""),
                finished_at=time.monotonic(),
            )
        except OSError as exc:
            return handshake_error(endpoint, what, exc)


def _resumable(session: ssl.SSLSession | None, *, ticket: bool) -> bool:
    if session is None:
        return False
    return session.has_ticket if ticket else bool(session.id)


@dataclass(frozen=True)
class _VersionFacts:
    resumption: Observed[bool]
    lifetime: Observed[int]


def _error(problem: ProbeError) -> Observed[Any]:
    return unobserved(problem.error_class, problem.message, SOURCE)


def _lifetime(version: ssl.TLSVersion, session: ssl.SSLSession | None) -> Observed[int]:
    if session is None or not session.has_ticket:
        return Observed[int](status="ok", value=None, source=SOURCE)  # observed: no ticket, no lifetime
    hint = int(session.ticket_lifetime_hint)
    if version != ssl.TLSVersion.TLSv1_3 and hint == 0:
        # RFC 5077 section 3.3: zero means the lifetime is unspecified, not "zero seconds".
        return unobserved(
            ErrorClass.probe_failed,
            f"the {_VERSION_NAMES[version]} session ticket's lifetime hint is 0, which means unspecified "
            "(RFC 5077 section 3.3)",
            SOURCE,
        )
    return observed(hint, SOURCE)


def _ticket_facts(endpoint: Endpoint, version: ssl.TLSVersion) -> tuple[ProbeError | None, _VersionFacts]:
    """Ticket resumption and lifetime for one version: a full handshake, then one offering its ticket.

    Returns the first handshake's error too, so the caller need not knock again on a version that is refused.
    """
    what = _VERSION_NAMES[version]
    try:
        context = client_context(endpoint, version=version)
    except OSError as exc:
        problem = _credentials_error(endpoint, exc)
        return problem, _VersionFacts(_error(problem), _error(problem))
    first = _handshake(endpoint, context, what, await_ticket=version == ssl.TLSVersion.TLSv1_3)
    if isinstance(first, ProbeError):
        return first, _VersionFacts(_error(first), _error(first))
    lifetime = _lifetime(version, first.session)
    if not _resumable(first.session, ticket=True):
        return None, _VersionFacts(observed(False, SOURCE), lifetime)
    second = _handshake(endpoint, context, f"{what} resumption", session=first.session)
    if isinstance(second, ProbeError):
        return None, _VersionFacts(_error(second), lifetime)
    return None, _VersionFacts(observed(second.reused, SOURCE), lifetime)


def _session_id_resumption(endpoint: Endpoint, version: ssl.TLSVersion) -> Observed[bool]:
    """Resumption by session ID (TLS 1.2 or older): we refuse tickets, so only the server's session cache can
    resume."""
    what = f"{_VERSION_NAMES[version]} (session ID)"
    try:
        context = client_context(endpoint, version=version, no_ticket=True)
    except OSError as exc:
        return _error(_credentials_error(endpoint, exc))
    first = _handshake(endpoint, context, what)
    if isinstance(first, ProbeError):
        return _error(first)
    if not _resumable(first.session, ticket=False):
        return observed(False, SOURCE)  # the server assigned no session ID
    second = _handshake(endpoint, context, f"{what} resumption", session=first.session)
    if isinstance(second, ProbeError):
        return _error(second)
    return observed(second.reused, SOURCE)


def _credentials_error(endpoint: Endpoint, exc: OSError) -> ProbeError:
    name = endpoint.credentials.description if endpoint.credentials else "client certificate"
    return ProbeError(error_class=ErrorClass.probe_failed, message=f"cannot load {name}: {ssl_reason(exc)}")


def _age_check(endpoint: Endpoint, age_seconds: float, version: ssl.TLSVersion) -> Observed[SessionAgeCheck]:
    """Establish a session without tickets in ``version``, wait, try to resume it.

    In TLS 1.3 resumption always goes through a ticket (stateful when the server keeps a cache), and OpenSSL
    as a client does not even offer a ticket older than its announced lifetime.
    """
    what = f"{_VERSION_NAMES[version]} session age check"
    try:
        context = client_context(endpoint, version=version, no_ticket=True)
    except OSError as exc:
        return _error(_credentials_error(endpoint, exc))
    first = _handshake(endpoint, context, what, await_ticket=version == ssl.TLSVersion.TLSv1_3)
    if isinstance(first, ProbeError):
        return _error(first)
    time.sleep(age_seconds)
    age = time.monotonic() - first.finished_at
    second = _handshake(endpoint, context, f"{what} resumption", session=first.session)
    if isinstance(second, ProbeError):
        return _error(second)
    return observed(SessionAgeCheck(age_seconds=round(age, 3), resumed=second.reused), SOURCE)


def _refused(fact: Observed[Any]) -> bool:
    return fact.status == "error" and fact.error is not None and fact.error.error_class == ErrorClass.no_common_protocol


def _longest_lifetime(versions: list[tuple[str, Observed[int]]]) -> Observed[int]:
    """The longest lifetime announced by any version the server accepts; an error when a version it may
    accept could not be observed (its lifetime might be the longest)."""
    considered = [(name, fact) for name, fact in versions if not _refused(fact)]
    if not considered:
        return unobserved(ErrorClass.no_common_protocol, "neither TLS 1.2 nor TLS 1.3 accepted", SOURCE)
    gaps = [fact.error.message for _, fact in considered if fact.error is not None]
    if gaps:
        first_error = next(fact.error for _, fact in considered if fact.error is not None)
        return unobserved(first_error.error_class, "; ".join(gaps), SOURCE)
    lifetimes = [fact.value for _, fact in considered if fact.value is not None]
    return Observed[int](status="ok", value=max(lifetimes) if lifetimes else None, source=SOURCE)


def _chosen_version(endpoint: Endpoint) -> ssl.TLSVersion | None:
    """The version the server picks from an offer of TLS 1.0 to 1.3, i.e. the highest it accepts; None when
    that handshake fails too (the facts already say why)."""
    try:
        context = client_context(endpoint)
    except OSError:
        return None
    chosen = _handshake(endpoint, context, "TLS 1.0 to 1.3")
    return None if isinstance(chosen, ProbeError) else chosen.version


def _not_above(version: ssl.TLSVersion, chosen: ssl.TLSVersion) -> ProbeError:
    """A version refused with a handshake_failure alert, which the server passes over when offered it among
    others: it is not accepted."""
    return ProbeError(
        error_class=ErrorClass.no_common_protocol,
        message=f"{_VERSION_NAMES[version]} not accepted (offered alone, refused with a handshake_failure alert; "
        f"offered TLS 1.0 to 1.3, the server chose {_VERSION_NAMES[chosen]})",
    )


@dataclass(frozen=True)
class _Legacy:
    """The session facts below TLS 1.2, in the version the server chose."""

    version: ssl.TLSVersion
    error: ProbeError | None
    session_id: Observed[bool]
    tickets: _VersionFacts


def _overall(facts: list[Observed[Any]]) -> tuple[ObservationStatus, ProbeError | None]:
    if any(f.status == "ok" for f in facts):
        return "ok", None
    errors = [f.error for f in facts if f.error is not None]
    if not errors:
        return "error", ProbeError(error_class=ErrorClass.probe_failed, message="no session fact observed")
    messages = list(dict.fromkeys(e.message for e in errors))
    return "error", ProbeError(error_class=errors[0].error_class, message="; ".join(messages))


def _passed_over(
    version: ssl.TLSVersion, chosen: ssl.TLSVersion, problem: ProbeError | None, facts: _VersionFacts
) -> tuple[ProbeError | None, _VersionFacts]:
    """A version refused with a handshake_failure alert, which the server passes over when offered it among
    others, is not accepted; anything else stays as it was."""
    if problem is None or problem.error_class != ErrorClass.handshake_failed or chosen >= version:
        return problem, facts
    refused = _not_above(version, chosen)
    return refused, _VersionFacts(_error(refused), _error(refused))


def _age_check_in_best_version(
    endpoint: Endpoint,
    age_seconds: float,
    tls12_error: ProbeError | None,
    tls13_error: ProbeError | None,
    legacy: _Legacy | None,
) -> Observed[SessionAgeCheck]:
    """Session IDs in TLS 1.2, or in the legacy version; TLS 1.3 only when the server refuses TLS 1.2."""
    tls12_refused = tls12_error is not None and tls12_error.error_class == ErrorClass.no_common_protocol
    if legacy is not None:
        version, blocker = legacy.version, legacy.error
    elif tls12_refused:
        if tls13_error is not None and tls13_error.error_class == ErrorClass.no_common_protocol:
            return unobserved(ErrorClass.no_common_protocol, "neither TLS 1.2 nor TLS 1.3 accepted", SOURCE)
        version, blocker = ssl.TLSVersion.TLSv1_3, tls13_error
    else:
        version, blocker = ssl.TLSVersion.TLSv1_2, tls12_error
    if blocker is not None:
        return _error(blocker)
    return _age_check(endpoint, age_seconds, version)


def probe_sessions(endpoint: Endpoint, *, age_check_seconds: float | None = None) -> SessionFacts:
    """Resumption (session ID and ticket in TLS 1.2, PSK in TLS 1.3) and announced ticket lifetimes; on a
    server that accepts neither, the same in the version below TLS 1.2 that it chooses.

    ``age_check_seconds`` opts in to the active check, which costs that many seconds: a session-ID session is
    resumed after that wait, or not. Never raises for anything the network or the server does.
    """
    if age_check_seconds is not None and age_check_seconds < 0:
        raise ValueError(f"age_check_seconds must not be negative: {age_check_seconds}")
    # A failed first handshake is not repeated: the same offer would fail the same way, and a target that
    # cannot be reached must cost about one timeout, not one per fact.
    tls12_error, tls12 = _ticket_facts(endpoint, ssl.TLSVersion.TLSv1_2)
    tls13_error: ProbeError | None
    if tls12_error is not None and tls12_error.error_class in _UNREACHABLE:
        tls13_error, tls13 = tls12_error, _VersionFacts(_error(tls12_error), _error(tls12_error))
    else:
        tls13_error, tls13 = _ticket_facts(endpoint, ssl.TLSVersion.TLSv1_3)
    legacy: _Legacy | None = None
    classes = {e.error_class for e in (tls12_error, tls13_error) if e is not None}
    # One more handshake only where a refusal is ambiguous (handshake_failure may mean "not this version") or
    # the server refuses both versions: servers that work with TLS 1.2 or 1.3, and targets that fail for other
    # reasons (a timeout, a client certificate) cost nothing more.
    if (
        classes
        and classes <= _VERSION_DEPENDENT
        and (ErrorClass.handshake_failed in classes or (tls12_error and tls13_error))
    ):
        chosen = _chosen_version(endpoint)
        if chosen is not None:
            tls12_error, tls12 = _passed_over(ssl.TLSVersion.TLSv1_2, chosen, tls12_error, tls12)
            tls13_error, tls13 = _passed_over(ssl.TLSVersion.TLSv1_3, chosen, tls13_error, tls13)
            if chosen < ssl.TLSVersion.TLSv1_2:
                legacy_error, legacy_tickets = _ticket_facts(endpoint, chosen)
                legacy_id = _error(legacy_error) if legacy_error else _session_id_resumption(endpoint, chosen)
                legacy = _Legacy(chosen, legacy_error, legacy_id, legacy_tickets)
    session_id = _error(tls12_error) if tls12_error else _session_id_resumption(endpoint, ssl.TLSVersion.TLSv1_2)
    age: Observed[SessionAgeCheck] = NOT_PROBED
    if age_check_seconds is not None:
        age = _age_check_in_best_version(endpoint, age_check_seconds, tls12_error, tls13_error, legacy)
    lifetimes = [("TLS 1.2", tls12.lifetime), ("TLS 1.3", tls13.lifetime)]
    legacy_facts: dict[str, Observed[Any]] = {}
    if legacy is not None:
        lifetimes.append((_VERSION_NAMES[legacy.version], legacy.tickets.lifetime))
        legacy_facts = {
            "legacy_version": observed(_VERSION_NAMES[legacy.version], SOURCE),
            "legacy_session_id_resumption": legacy.session_id,
            "legacy_ticket_resumption": legacy.tickets.resumption,
            "legacy_ticket_lifetime": legacy.tickets.lifetime,
        }
    longest = _longest_lifetime(lifetimes)
    status, error = _overall(
        [session_id, tls12.resumption, tls13.resumption, tls12.lifetime, tls13.lifetime, longest, age]
        + [fact for name, fact in legacy_facts.items() if name != "legacy_version"]
    )
    return SessionFacts(
        status=status,
        error=error,
        session_id_resumption=session_id,
        ticket_resumption=tls12.resumption,
        tls13_resumption=tls13.resumption,
        tls12_ticket_lifetime=tls12.lifetime,
        tls13_ticket_lifetime=tls13.lifetime,
        ticket_lifetime=longest,
        session_id_resumed_after=age,
        **legacy_facts,
    )
