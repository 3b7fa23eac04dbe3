"""Session resumption and ticket lifetimes against real servers on loopback (nginx, Python ssl)."""

from __future__ import annotations

import ssl
import time

import pytest
from cryptography.x509.oid import ExtendedKeyUsageOID

from scanner.facts import ErrorClass, SessionFacts
from scanner.probe.checks.sessions import probe_sessions
from scanner.probe.connect.endpoint import ClientCredentials
from tests.helpers import (
    ServerFiles,
    free_port,
    gnutls_server,
    issue_certificate,
    loopback_endpoint,
    openssl_server,
    python_tls_server,
    server_context,
)
from tests.nginx import nginx_binary, nginx_server

needs_nginx = pytest.mark.skipif(nginx_binary() is None, reason="nginx is not installed")

TLS12_FACTS = ("session_id_resumption", "ticket_resumption", "tls12_ticket_lifetime")
TLS13_FACTS = ("tls13_resumption", "tls13_ticket_lifetime")


def _values(facts: SessionFacts, *names: str) -> dict[str, object]:
    for name in names:
        fact = getattr(facts, name)
        assert fact.status == "ok", f"{name}: {fact.error}"
    return {name: getattr(facts, name).value for name in names}


def _assert_values(facts: SessionFacts, **expected: object) -> None:
    """Each named fact is observed (status ok) and holds the expected value."""
    assert _values(facts, *expected) == expected


def _assert_refused(facts: SessionFacts, names: tuple[str, ...], version: str) -> None:
    for name in names:
        fact = getattr(facts, name)
        assert fact.status == "error", name
        assert fact.value is None
        assert fact.error is not None
        assert fact.error.error_class == ErrorClass.no_common_protocol
        assert f"{version} not accepted" in fact.error.message


@needs_nginx
def test_tls13_ticket_lifetimes_300_and_86400_are_told_apart(pki: ServerFiles):
    """Two TLS 1.3 nginx servers with ssl_session_timeout 300s and 86400s announce those lifetimes, and the facts
    differ exactly there."""
    seen = {}
    for timeout in (300, 86400):
        with nginx_server(pki.cert, pki.key, protocols=["TLSv1.3"], session_timeout=f"{timeout}s") as server:
            facts = probe_sessions(loopback_endpoint(server.port))
        assert facts.status == "ok", facts.error
        _assert_values(facts, tls13_ticket_lifetime=timeout, ticket_lifetime=timeout, tls13_resumption=True)
        seen[timeout] = facts
    assert seen[300].tls13_ticket_lifetime.value != seen[86400].tls13_ticket_lifetime.value
    assert seen[300].model_dump(exclude={"tls13_ticket_lifetime", "ticket_lifetime"}) == seen[86400].model_dump(
        exclude={"tls13_ticket_lifetime", "ticket_lifetime"}
    )


@needs_nginx
def test_tls12_ticket_lifetime_hint_and_ticket_resumption(pki: ServerFiles):
    """A TLS 1.2-only nginx with tickets announces ticket_lifetime_hint = ssl_session_timeout and resumes by
    ticket; its TLS 1.3 facts say TLS 1.3 is not accepted."""
    with nginx_server(pki.cert, pki.key, protocols=["TLSv1.2"], session_timeout="600s") as server:
        facts = probe_sessions(loopback_endpoint(server.port))
    _assert_values(
        facts, tls12_ticket_lifetime=600, ticket_lifetime=600, ticket_resumption=True, session_id_resumption=True
    )
    _assert_refused(facts, TLS13_FACTS, "TLS 1.3")


@needs_nginx
def test_session_id_resumption_with_tickets_off_and_a_cache(pki: ServerFiles):
    """nginx with tickets off and a shared session cache resumes by session ID, not by ticket, and announces no
    TLS 1.2 ticket lifetime."""
    with nginx_server(pki.cert, pki.key, session_tickets=False, session_cache="shared:ids:1m") as server:
        facts = probe_sessions(loopback_endpoint(server.port))
    assert facts.status == "ok", facts.error
    _assert_values(facts, session_id_resumption=True, ticket_resumption=False, tls12_ticket_lifetime=None)
    # TLS 1.3 resumes through stateful tickets backed by the same cache.
    _assert_values(facts, tls13_resumption=True)


@needs_nginx
def test_no_resumption_without_cache_or_tickets(pki: ServerFiles):
    """nginx with ssl_session_cache off and tickets off resumes nothing, in either version."""
    with nginx_server(pki.cert, pki.key, session_tickets=False, session_cache=None) as server:
        facts = probe_sessions(loopback_endpoint(server.port))
    _assert_values(facts, session_id_resumption=False, ticket_resumption=False, tls13_resumption=False)


def test_tls13_only_server_gives_errors_not_false_for_tls12(tls13_server):
    """Against a TLS 1.3-only Python server the TLS 1.2 facts are errors saying TLS 1.2 is not accepted, while
    the TLS 1.3 facts and the longest lifetime are observed."""
    facts = probe_sessions(loopback_endpoint(tls13_server.port))
    assert facts.status == "ok"
    _assert_refused(facts, TLS12_FACTS, "TLS 1.2")
    values = _values(facts, "tls13_resumption", "tls13_ticket_lifetime", "ticket_lifetime")
    assert values["tls13_resumption"] is True
    assert isinstance(values["tls13_ticket_lifetime"], int) and values["tls13_ticket_lifetime"] > 0
    assert values["ticket_lifetime"] == values["tls13_ticket_lifetime"]
    assert facts.session_id_resumed_after.status == "not_probed"


def test_tls12_only_python_server_without_tls13(pki: ServerFiles):
    """A TLS 1.2-only Python server: TLS 1.3 facts are errors, TLS 1.2 ones observed, the longest lifetime is the
    TLS 1.2 hint."""
    context = server_context(pki, ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_2)
    with python_tls_server(context) as server:
        facts = probe_sessions(loopback_endpoint(server.port))
    _assert_refused(facts, TLS13_FACTS, "TLS 1.3")
    values = _values(facts, "ticket_resumption", "tls12_ticket_lifetime", "ticket_lifetime")
    assert values["ticket_resumption"] is True
    assert values["ticket_lifetime"] == values["tls12_ticket_lifetime"]


def test_tls13_server_that_issues_no_tickets(pki: ServerFiles):
    """A TLS 1.3 server with num_tickets 0 cannot be resumed and announces no lifetime: observed as false and
    null, not as an error."""
    context = server_context(pki, ssl.TLSVersion.TLSv1_3)
    context.num_tickets = 0
    with python_tls_server(context) as server:
        facts = probe_sessions(loopback_endpoint(server.port))
    _assert_values(facts, tls13_resumption=False, tls13_ticket_lifetime=None, ticket_lifetime=None)


@needs_nginx
def test_age_check_expired_session_is_not_resumed(pki: ServerFiles):
    """With ssl_session_timeout 1s and tickets off, a session 2.5 s old is not resumed."""
    with nginx_server(pki.cert, pki.key, session_timeout="1s", session_tickets=False) as server:
        started = time.monotonic()
        facts = probe_sessions(loopback_endpoint(server.port), age_check_seconds=2.5)
        assert time.monotonic() - started < 10
    check = facts.session_id_resumed_after
    assert check.status == "ok", check.error
    assert check.value is not None
    assert check.value.resumed is False
    assert check.value.age_seconds >= 2.5
    # resumed at once, the same session would have been: the wait is what made the difference
    _assert_values(facts, session_id_resumption=True)


@needs_nginx
def test_age_check_live_session_is_resumed(pki: ServerFiles):
    """With ssl_session_timeout 300s and tickets off, a session 1 s old is still resumed."""
    with nginx_server(pki.cert, pki.key, session_timeout="300s", session_tickets=False) as server:
        facts = probe_sessions(loopback_endpoint(server.port), age_check_seconds=1)
    check = facts.session_id_resumed_after
    assert check.status == "ok", check.error
    assert check.value is not None
    assert check.value.resumed is True
    assert 1 <= check.value.age_seconds < 5


@needs_nginx
def test_age_check_falls_back_to_tls13(pki: ServerFiles):
    """On a TLS 1.3-only server the age check resumes a TLS 1.3 session instead of reporting an error."""
    with nginx_server(pki.cert, pki.key, protocols=["TLSv1.3"], session_tickets=False) as server:
        facts = probe_sessions(loopback_endpoint(server.port), age_check_seconds=0.5)
    check = facts.session_id_resumed_after
    assert check.status == "ok", check.error
    assert check.value is not None
    assert check.value.resumed is True


def test_client_certificate_required(tmp_path, pki: ServerFiles):
    """A server that requires a client certificate: without one every fact is an error naming that; with the
    scan's credentials the sessions are observed."""
    client = issue_certificate(tmp_path, "client", key_type="p384", eku=[ExtendedKeyUsageOID.CLIENT_AUTH])
    context = server_context(pki, ssl.TLSVersion.TLSv1_3)
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(client.ca)
    with python_tls_server(context) as server:
        without = probe_sessions(loopback_endpoint(server.port))
        credentials = ClientCredentials(cert_chain=client.cert, key=client.key, description="client.pem")
        with_credentials = probe_sessions(loopback_endpoint(server.port, credentials=credentials))
    assert without.tls13_resumption.error is not None
    assert without.tls13_resumption.error.error_class == ErrorClass.client_cert_required
    assert without.status == "error"
    assert without.error is not None
    assert _values(with_credentials, "tls13_resumption")["tls13_resumption"] is True


def test_nothing_listening_is_an_error_not_an_exception():
    """A port with nothing listening yields session facts with status error (refused), never an exception."""
    facts = probe_sessions(loopback_endpoint(free_port(), timeout=1), age_check_seconds=0)
    assert facts.status == "error"
    assert facts.error is not None
    assert facts.error.error_class == ErrorClass.refused
    for name in (*TLS12_FACTS, *TLS13_FACTS, "ticket_lifetime", "session_id_resumed_after"):
        fact = getattr(facts, name)
        assert fact.status == "error", name
        assert fact.error is not None and fact.error.error_class == ErrorClass.refused, name


# --- servers that refuse TLS 1.3 with handshake_failure, and servers below TLS 1.2 ---------------------------


def test_gnutls_tls12_only_refusing_tls13_with_handshake_failure(pki: ServerFiles):
    """gnutls-serv without TLS 1.3 answers a TLS 1.3-only ClientHello with a handshake_failure alert, not
    protocol_version. Offered TLS 1.2 and 1.3 it picks 1.2, so TLS 1.3 is not accepted, and the longest lifetime
    is the TLS 1.2 hint (GnuTLS's default: 6 hours)."""
    with gnutls_server(pki.cert, pki.key, "--priority", "NORMAL:-VERS-TLS1.3") as port:
        facts = probe_sessions(loopback_endpoint(port))
    assert facts.status == "ok", facts.error
    _assert_values(facts, ticket_resumption=True, session_id_resumption=True)
    _assert_refused(facts, TLS13_FACTS, "TLS 1.3")
    hint = _values(facts, "tls12_ticket_lifetime")["tls12_ticket_lifetime"]
    assert isinstance(hint, int) and hint > 0
    _assert_values(facts, ticket_lifetime=hint)
    assert facts.legacy_version.status == "not_probed"


def test_gnutls_server_with_tls13_keeps_its_tls13_facts(pki: ServerFiles):
    """The same gnutls-serv with TLS 1.3 enabled: its TLS 1.3 facts are observed, nothing is relabelled."""
    with gnutls_server(pki.cert, pki.key, "--priority", "NORMAL") as port:
        facts = probe_sessions(loopback_endpoint(port))
    _assert_values(facts, tls13_resumption=True, ticket_resumption=True)
    lifetimes = _values(facts, "tls12_ticket_lifetime", "tls13_ticket_lifetime", "ticket_lifetime")
    assert lifetimes["ticket_lifetime"] == max(lifetimes["tls12_ticket_lifetime"], lifetimes["tls13_ticket_lifetime"])  # type: ignore[type-var]


def _assert_legacy_only(facts: SessionFacts, version: str, *, lifetime: int, by_session_id: bool) -> None:
    """TLS 1.2 and 1.3 are not accepted; the session facts, the longest lifetime and the aged-session check (of a
    session 0 s old) are read in ``version``, where tickets resume."""
    assert facts.status == "ok", facts.error
    _assert_refused(facts, TLS12_FACTS, "TLS 1.2")
    _assert_refused(facts, TLS13_FACTS, "TLS 1.3")
    _assert_values(
        facts,
        legacy_version=version,
        legacy_ticket_lifetime=lifetime,
        legacy_ticket_resumption=True,
        legacy_session_id_resumption=by_session_id,
        ticket_lifetime=lifetime,
    )
    check = facts.session_id_resumed_after
    assert check.status == "ok", check.error
    assert check.value is not None and check.value.resumed is by_session_id


@pytest.mark.parametrize(("flag", "version"), [("-tls1", "TLS 1.0"), ("-tls1_1", "TLS 1.1")])
def test_legacy_only_openssl_server(pki: ServerFiles, flag: str, version: str):
    """An openssl s_server that speaks only TLS 1.0 (or 1.1): the TLS 1.2 and 1.3 facts say those versions are
    not accepted, and the session facts are read in the version it speaks, ticket lifetime included (s_server
    announces 7200 s). s_server resumes no session by ID for this client, in TLS 1.2 neither."""
    with openssl_server(pki.cert, pki.key, flag, "-cipher", "ALL:@SECLEVEL=0") as port:
        facts = probe_sessions(loopback_endpoint(port), age_check_seconds=0)
    _assert_legacy_only(facts, version, lifetime=7200, by_session_id=False)


def test_legacy_only_gnutls_server_refusing_newer_versions_with_handshake_failure(pki: ServerFiles):
    """gnutls-serv with only TLS 1.0 and 1.1 refuses a TLS 1.3-only offer with handshake_failure; it chooses TLS
    1.1 from a full offer, so TLS 1.3 is not accepted, and resumes TLS 1.1 sessions by ID and by ticket (the
    aged-session check too) with its 6-hour ticket lifetime."""
    with gnutls_server(pki.cert, pki.key, "--priority", "NORMAL:-VERS-ALL:+VERS-TLS1.1:+VERS-TLS1.0") as port:
        facts = probe_sessions(loopback_endpoint(port), age_check_seconds=0)
    _assert_legacy_only(facts, "TLS 1.1", lifetime=21600, by_session_id=True)


def test_tls12_server_has_no_legacy_facts(pki: ServerFiles):
    """A server that accepts TLS 1.2 is not asked about older versions: the legacy facts are not probed."""
    context = server_context(pki, ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_2)
    with python_tls_server(context) as server:
        facts = probe_sessions(loopback_endpoint(server.port))
    for name in (
        "legacy_version",
        "legacy_session_id_resumption",
        "legacy_ticket_resumption",
        "legacy_ticket_lifetime",
    ):
        assert getattr(facts, name).status == "not_probed", name


def test_silent_server_costs_two_timeouts_not_more(silent_server):
    """A server that never answers: every fact is a timeout, after one timeout per version tried (TLS 1.2 and
    1.3) and no extra handshake to find the version it would choose."""
    started = time.monotonic()
    facts = probe_sessions(loopback_endpoint(silent_server.port, timeout=1), age_check_seconds=0)
    elapsed = time.monotonic() - started
    assert facts.status == "error"
    for name in (*TLS12_FACTS, *TLS13_FACTS, "ticket_lifetime", "session_id_resumed_after"):
        fact = getattr(facts, name)
        assert fact.error is not None and fact.error.error_class == ErrorClass.timeout, name
    assert facts.legacy_version.status == "not_probed"
    assert 2 <= elapsed < 2.9
