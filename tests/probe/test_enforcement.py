"""Where client certificates are enforced (handshake, application, not at all, not HTTP), against real servers on
loopback: nginx, ``openssl s_server`` and Python ``ssl`` servers that record what they were sent."""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from scanner.demo import LoopbackServer
from scanner.facts import ClientAuthEnforcement, ClientAuthFacts, ErrorClass, Observed
from scanner.probe.checks.clientauth import _enforcement, probe_client_auth
from scanner.probe.checks.enforcement import _http_basis
from scanner.probe.connect.endpoint import Endpoint
from scanner.probe.connect.starttls import StartTls
from scanner.targets import parse_target
from tests.helpers import ClientPki, ServerFiles, client_pki, loopback_endpoint, openssl_server
from tests.nginx import nginx_binary, nginx_server

VERSIONS = {"TLSv1.2": ssl.TLSVersion.TLSv1_2, "TLSv1.3": ssl.TLSVersion.TLSv1_3}
S_SERVER_VERSION = {"TLSv1.2": "-tls1_2", "TLSv1.3": "-tls1_3"}
ALPN_BASIS = "the server selected ALPN http/1.1"
needs_nginx = pytest.mark.skipif(nginx_binary() is None, reason="nginx is not installed")


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> ClientPki:
    return client_pki(tmp_path_factory.mktemp("client-pki"))


def _probe(port: int, timeout: float = 3.0) -> ClientAuthFacts:
    facts = probe_client_auth(loopback_endpoint(port, timeout=timeout))
    assert facts.status == "ok", facts.error
    return facts


def _value(fact: Observed[ClientAuthEnforcement]) -> ClientAuthEnforcement:
    assert fact.status == "ok", fact.error
    assert fact.value is not None
    return fact.value


# --- nginx: the most common mTLS front end ---------------------------------------------------------------------


@needs_nginx
@pytest.mark.parametrize("version", VERSIONS)
def test_nginx_verify_client_on_refuses_after_the_handshake(pki: ServerFiles, client: ClientPki, version: str) -> None:
    """nginx with ssl_verify_client on lets any client through the handshake (optional, throwaway accepted at the
    TLS level) and answers the request with 400: both clients are refused by the application, status line kept."""
    extra = f"ssl_verify_client on; ssl_client_certificate {client.ca};"
    with nginx_server(pki.cert, pki.key, protocols=(version,), extra=extra) as nginx:
        facts = _probe(nginx.port)
    assert (facts.requirement.value, facts.throwaway_certificate_accepted.value) == ("optional", True)
    for fact in (facts.enforcement, facts.untrusted_enforcement):
        seen = _value(fact)
        assert (seen.at, seen.status_line, seen.http_basis) == ("application", "HTTP/1.1 400 Bad Request", ALPN_BASIS)
    assert "without a client certificate was refused" in _value(facts.enforcement).detail
    assert "with a certificate from an unknown CA was refused" in _value(facts.untrusted_enforcement).detail


@needs_nginx
def test_nginx_application_check_answers_403(pki: ServerFiles, client: ClientPki) -> None:
    """ssl_verify_client optional_no_ca with the check in the configuration (403 unless verified): application."""
    extra = (
        f"ssl_verify_client optional_no_ca; ssl_client_certificate {client.ca}; "
        "if ($ssl_client_verify != SUCCESS) { return 403; }"
    )
    with nginx_server(pki.cert, pki.key, extra=extra) as nginx:
        facts = _probe(nginx.port)
    assert facts.requirement.value == "optional"
    assert _value(facts.enforcement).at == "application"
    assert _value(facts.enforcement).status_line == "HTTP/1.1 403 Forbidden"
    assert _value(facts.untrusted_enforcement).status_line == "HTTP/1.1 403 Forbidden"


@needs_nginx
def test_nginx_without_client_certificates_is_not_enforced(pki: ServerFiles) -> None:
    """A server that asks for no certificate and answers the request (200) does not enforce client certificates; a
    certificate it never asks for cannot be sent, so where an untrusted one is refused does not apply."""
    with nginx_server(pki.cert, pki.key) as nginx:
        facts = _probe(nginx.port)
    assert facts.requirement.value == "not_requested"
    seen = _value(facts.enforcement)
    assert (seen.at, seen.status_line, seen.http_basis) == ("not_enforced", "HTTP/1.1 200 OK", ALPN_BASIS)
    untrusted = facts.untrusted_enforcement
    assert untrusted.status == "not_probed"
    assert untrusted.error is not None
    assert untrusted.error.error_class == ErrorClass.not_applicable


# --- openssl s_server: refusing in the handshake, ALPN, https:// ------------------------------------------------


@pytest.mark.parametrize("version", S_SERVER_VERSION)
def test_required_in_the_handshake(pki: ServerFiles, client: ClientPki, version: str) -> None:
    """s_server -Verify refuses both clients in the handshake; no HTTP request is needed to know that."""
    flags = ("-Verify", "1", "-verify_return_error", "-CAfile", str(client.ca), S_SERVER_VERSION[version])
    with openssl_server(pki.cert, pki.key, *flags) as port:
        facts = _probe(port)
    assert facts.requirement.value == "required"
    for fact in (facts.enforcement, facts.untrusted_enforcement):
        seen = _value(fact)
        assert (seen.at, seen.status_line, seen.http_basis) == ("handshake", None, None)
    expected = "certificate_required" if version == "TLSv1.3" else "handshake_failure"
    assert expected in _value(facts.enforcement).detail


def test_alpn_refused_is_not_http(pki: ServerFiles) -> None:
    """A server that refuses ALPN http/1.1 (it speaks mqtt) is not HTTP: the TLS-level answer stands. It would
    answer a GET (-www), so a request sent anyway would have shown as not_enforced."""
    with openssl_server(pki.cert, pki.key, "-alpn", "mqtt") as port:
        facts = _probe(port)
    seen = _value(facts.enforcement)
    assert (seen.at, seen.status_line) == ("not_http", None)
    assert seen.http_basis == "the server refused ALPN http/1.1 (alert no_application_protocol)"


def test_https_target_without_alpn_is_http(pki: ServerFiles) -> None:
    """A server that selects no ALPN protocol is HTTP when the target was written https://, on any port."""
    with openssl_server(pki.cert, pki.key) as port:
        endpoint = Endpoint(target=parse_target(f"https://127.0.0.1:{port}"), address="127.0.0.1", server_name=None,
                            timeout=3.0)  # fmt: skip
        https = probe_client_auth(endpoint)
        plain = _probe(port)
    seen = _value(https.enforcement)
    assert (seen.at, seen.status_line) == ("not_enforced", "HTTP/1.0 200 ok")
    assert seen.http_basis == "the target was given as https:// (the server selected no ALPN protocol)"
    assert _value(plain.enforcement).at == "not_http"
    assert _value(plain.enforcement).http_basis == (
        f"the server selected no ALPN protocol and port {port} is not an HTTPS port (443, 8443)"
    )


@pytest.mark.parametrize(("port", "http"), [(443, True), (8443, True), (8883, False), (1414, False)])
def test_https_ports_without_alpn(port: int, http: bool) -> None:
    """Without ALPN, ports 443 and 8443 are taken for HTTPS and others (MQTT, MQ) are not."""
    endpoint = Endpoint(target=parse_target(f"127.0.0.1:{port}"), address="127.0.0.1", server_name=None, timeout=1)
    assert _http_basis(endpoint, None)[0] is http
    assert _http_basis(endpoint, "http/1.1")[0] is True
    assert _http_basis(endpoint, "h2")[0] is False


def test_starttls_service_is_sent_nothing(refused_port: int) -> None:
    """A STARTTLS target is not HTTP: no connection is even made (here, one would have been refused)."""
    endpoint = Endpoint(target=parse_target(f"127.0.0.1:{refused_port}"), address="127.0.0.1", server_name=None,
                        timeout=1, starttls=StartTls.smtp)  # fmt: skip
    seen = _value(_enforcement(endpoint, None, "without a client certificate"))
    assert (seen.at, seen.http_basis) == ("not_http", "STARTTLS smtp: not an HTTP service")


# --- Python ssl servers that record what they were sent ---------------------------------------------------------


@dataclass
class Recording:
    """What a recording server was sent (each connection's first read, when not empty)."""

    port: int
    received: list[bytes] = field(default_factory=list)


@contextlib.contextmanager
def recording_server(
    context: ssl.SSLContext, answer: bytes = b"", *, hold: float = 0.0, host: str = "127.0.0.1"
) -> Iterator[Recording]:
    """A TLS server that records what each client sends first, answers ``answer`` (or nothing) after ``hold``
    seconds, and closes."""
    received: list[bytes] = []
    released = threading.Event()

    def handle(conn: socket.socket) -> None:
        with context.wrap_socket(conn, server_side=True) as tls:
            tls.settimeout(3)
            data = tls.recv(4096)
            if data:
                received.append(data)
            released.wait(hold)
            if answer:
                tls.sendall(answer)

    with LoopbackServer(handle, host) as server:
        yield Recording(server.port, received)
        released.set()


def _server_context(pki: ServerFiles, version: str = "TLSv1.3", alpn: bool = True) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.cert, pki.key)
    context.minimum_version = context.maximum_version = VERSIONS[version]
    if alpn:
        context.set_alpn_protocols(["http/1.1"])
    return context


@pytest.mark.parametrize("version", VERSIONS)
def test_service_that_is_not_http_is_sent_nothing(pki: ServerFiles, client: ClientPki, version: str) -> None:
    """A TLS service without ALPN on another port, verifying certificates but not requiring one: the client without
    a certificate gets through the handshake, and the service is sent not one byte (not_http); the throwaway
    certificate is refused in the handshake."""
    context = _server_context(pki, version, alpn=False)
    context.verify_mode = ssl.CERT_OPTIONAL
    context.load_verify_locations(client.ca)
    with recording_server(context, b"hello\n") as server:
        facts = _probe(server.port)
    assert facts.requirement.value == "optional"
    seen = _value(facts.enforcement)
    assert (seen.at, seen.status_line) == ("not_http", None)
    assert "whether the service refuses it afterwards was not tested" in seen.detail
    assert _value(facts.untrusted_enforcement).at == "handshake"
    assert server.received == []


@pytest.mark.parametrize(
    ("answer", "at", "status_line"),
    [
        (b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n", "application", "HTTP/1.1 401 Unauthorized"),
        (b"HTTP/1.1 403 Forbidden\r\n\r\n", "application", "HTTP/1.1 403 Forbidden"),
        (b"HTTP/1.1 496 SSL Certificate Required\r\n\r\n", "application", "HTTP/1.1 496 SSL Certificate Required"),
        (b"HTTP/1.1 404 Not Found\r\n\r\n", "not_enforced", "HTTP/1.1 404 Not Found"),
        (b"HTTP/1.1 302 Found\r\nLocation: /login\r\n\r\n", "not_enforced", "HTTP/1.1 302 Found"),
        (b"HTTP/1.0 502 Bad Gateway\r\n\r\n", "not_enforced", "HTTP/1.0 502 Bad Gateway"),
        (b"", "application", None),  # closed without an answer
        (b"220 mail.example ESMTP\r\n", "not_http", None),
    ],
)
def test_answers_to_the_request(pki: ServerFiles, answer: bytes, at: str, status_line: str | None) -> None:
    """The answer decides: 400/401/403/495/496 or closing unanswered is a refusal, any other status is not, and an
    answer that is not HTTP is not_http. The request is one harmless GET with Host and Connection: close."""
    with recording_server(_server_context(pki), answer) as server:
        facts = _probe(server.port)
    seen = _value(facts.enforcement)
    assert (seen.at, seen.status_line, seen.http_basis) == (at, status_line, ALPN_BASIS)
    (request,) = server.received
    assert request.startswith(f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n".encode())
    assert b"\r\nConnection: close\r\n" in request
    assert request.endswith(b"\r\n\r\n")
    if at == "not_http":
        assert "'220 mail.example ESMTP'" in seen.detail


@pytest.mark.parametrize(("host", "server_name", "authority"), [("127.0.0.1", "localhost", "localhost"),
                                                               ("::1", None, "[::1]")])  # fmt: skip
def test_host_header_names_the_server_as_sni_does(
    pki: ServerFiles, host: str, server_name: str | None, authority: str
) -> None:
    """The Host header is the name sent as SNI, else the address (an IPv6 one in brackets), with the port."""
    context = _server_context(pki)
    with contextlib.ExitStack() as stack:
        try:
            server = stack.enter_context(recording_server(context, b"HTTP/1.1 200 OK\r\n\r\n", host=host))
        except OSError:
            pytest.skip("no IPv6 loopback on this machine")
        probe_client_auth(loopback_endpoint(server.port, host=host, server_name=server_name))
    (request,) = server.received
    assert f"\r\nHost: {authority}:{server.port}\r\n".encode() in request


def test_unanswered_request_is_bounded_by_the_timeout(pki: ServerFiles) -> None:
    """A server that reads the request and says nothing: an error of class timeout after about one timeout."""
    with recording_server(_server_context(pki), hold=10) as server:
        started = time.monotonic()
        facts = probe_client_auth(loopback_endpoint(server.port, timeout=0.5))
        elapsed = time.monotonic() - started
    assert facts.enforcement.status == "error"
    assert facts.enforcement.error is not None
    assert facts.enforcement.error.error_class == ErrorClass.timeout
    assert "no answer to the HTTP request without a client certificate within 0.5s" in facts.enforcement.error.message
    assert elapsed < 2.5


def test_answer_is_read_no_further_than_a_few_kib(pki: ServerFiles) -> None:
    """A first line that never ends is read up to 4 KiB, then judged: not HTTP, and quoted only in part."""
    with recording_server(_server_context(pki), b"x" * 100_000) as server:
        facts = _probe(server.port)
    seen = _value(facts.enforcement)
    assert seen.at == "not_http"
    assert len(seen.detail) < 400
