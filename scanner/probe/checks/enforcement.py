"""Where client certificates are enforced: in the handshake, or by the application behind it.

Many servers finish the TLS handshake without a client certificate (or with one they do not trust) and refuse the
request afterwards: nginx with ``ssl_verify_client on`` answers ``400 No required SSL certificate was sent``, an
application behind ``optional`` verification answers 403. The TLS-level probe (``clientauth``) sees such a server
as "optional, any certificate accepted". So after a handshake that let a client through, this module opens one
more connection as that client and, when the service is HTTP, sends one harmless request (``GET /``,
``Connection: close``) and reads the status line of the answer.

When is a service HTTP? Sending a request line to an MQ channel, an LDAP or an SMTP server would at best be
ignored and at worst confuse it, so only when there is a reason to believe it:

1. the server selects ALPN ``http/1.1``, which this connection offers (and nothing else: h2 is not spoken here);
2. otherwise, when the server selects no ALPN protocol, the target was written ``https://`` or its port is 443 or
   8443, where HTTPS is the convention.

A server that refuses ALPN ``http/1.1`` (a no_application_protocol alert) is not HTTP; neither is a STARTTLS
target, which is not connected to at all. Such services keep the TLS-level answer, marked ``not_http``.

What counts as refused: an answer 400, 401, 403 (what nginx, Apache and applications send) or nginx's own 495 and
496; or the connection closed without any answer. Any other status (200, a redirect, 404, a 5xx from a backend)
means the request got past the certificate check. A TLS alert instead of an answer is a refusal in the handshake
(TLS 1.3 servers judge the client's certificate after the client's handshake is over).

Every step (the handshake, the answer however slowly it trickles in) is bounded as a whole by the endpoint's timeout
and by the target's time left, and at most a few KiB of the answer are read.
"""

from __future__ import annotations

import re
import socket
import ssl
import time
from urllib.parse import urlsplit

from scanner import __version__
from scanner.facts import ClientAuthEnforcement, ErrorClass, Observed, observed, unobserved
from scanner.probe.connect.endpoint import Endpoint

SOURCE = "tlsgate"

ALPN_HTTP = "http/1.1"
HTTPS_PORTS = frozenset({443, 8443})
REFUSING_STATUSES = frozenset({400, 401, 403, 495, 496})
_MAX_ANSWER = 4096  # the status line is all we need; a server's error page may be long
_MAX_STATUS_LINE = 200  # what is kept of a (hostile or broken) first line
_STATUS_LINE = re.compile(r"HTTP/\d(?:\.\d)? (\d{3})(?: .*)?")
_ALERT_TEXT = re.compile(r"alert ([a-z ]+?) \(")


def _handshake_refusal(detail: str) -> ClientAuthEnforcement:
    return ClientAuthEnforcement(at="handshake", detail=detail)


def refused_in_handshake(detail: str) -> Observed[ClientAuthEnforcement]:
    """The TLS-level probe saw the handshake refuse the client; ``detail`` says how."""
    return observed(_handshake_refusal(detail), SOURCE)


def _not_http(basis: str, detail: str) -> Observed[ClientAuthEnforcement]:
    return observed(ClientAuthEnforcement(at="not_http", http_basis=basis, detail=detail), SOURCE)


def _http_basis(endpoint: Endpoint, selected: str | None) -> tuple[bool, str]:
    """Whether the service is taken for HTTP, and why."""
    if selected == ALPN_HTTP:
        return True, f"the server selected ALPN {ALPN_HTTP}"
    if selected is not None:
        return False, f"the server selected ALPN {selected!r}, not {ALPN_HTTP}"
    if urlsplit(endpoint.target.input.strip()).scheme.lower() == "https":
        return True, "the target was given as https:// (the server selected no ALPN protocol)"
    if endpoint.port in HTTPS_PORTS:
        return True, f"port {endpoint.port} is an HTTPS port (the server selected no ALPN protocol)"
    ports = ", ".join(str(p) for p in sorted(HTTPS_PORTS))
    return False, f"the server selected no ALPN protocol and port {endpoint.port} is not an HTTPS port ({ports})"


def _request(endpoint: Endpoint) -> bytes:
    host = endpoint.server_name or endpoint.target.host  # as browsers do: the Host is the name sent as SNI
    authority = f"[{host}]" if ":" in host else host
    if endpoint.port != 443:
        authority += f":{endpoint.port}"
    lines = ["GET / HTTP/1.1", f"Host: {authority}", f"User-Agent: tlsgate/{__version__}", "Accept: */*",
             "Connection: close"]  # fmt: skip
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


def _alert(exc: ssl.SSLError) -> str | None:
    """The alert the server sent, by its name in RFC 8446 (``certificate_required``), if ``exc`` is one."""
    reason = str(exc.reason or "")
    if "_ALERT_" in reason:
        return reason.split("_ALERT_", 1)[1].lower()
    # Python knows no reason code for alerts newer than its table (no_application_protocol): OpenSSL's text has it
    words = _ALERT_TEXT.search(str(exc))
    return words.group(1).replace(" ", "_") if words else None


def _first_line(answer: bytes) -> str:
    line = answer.split(b"\n", 1)[0].rstrip(b"\r").decode("latin-1")
    printable = "".join(c if c.isprintable() else "?" for c in line)
    return printable[:_MAX_STATUS_LINE]


def _judge_answer(answer: bytes, basis: str, who: str) -> ClientAuthEnforcement:
    if not answer:
        detail = f"the server closed the connection {who} without answering the HTTP request"
        return ClientAuthEnforcement(at="application", http_basis=basis, detail=detail)
    line = _first_line(answer)
    match = _STATUS_LINE.fullmatch(line)
    if match is None:
        detail = f"the answer to the HTTP request {who} is not HTTP: {line!r}"
        return ClientAuthEnforcement(at="not_http", http_basis=basis, detail=detail)
    status = int(match.group(1))
    if status in REFUSING_STATUSES:
        detail = f"the HTTP request {who} was refused: {line}"
        return ClientAuthEnforcement(at="application", http_basis=basis, status_line=line, detail=detail)
    detail = f"the HTTP request {who} was answered: {line}"
    return ClientAuthEnforcement(at="not_enforced", http_basis=basis, status_line=line, detail=detail)


def _within(endpoint: Endpoint) -> float:
    """Seconds the next step may take: the endpoint's timeout, or less when the target's time runs out first."""
    left = endpoint.stop.remaining() if endpoint.stop is not None else None
    return endpoint.timeout if left is None else max(0.001, min(endpoint.timeout, left))


def _exchange(endpoint: Endpoint, tls: ssl.SSLSocket, basis: str, who: str) -> Observed[ClientAuthEnforcement]:
    """Send the request and read the first line of the answer, within one timeout: a server that trickles its
    answer a byte at a time is cut off at the deadline, whatever each read does."""
    deadline = time.monotonic() + _within(endpoint)
    answer = bytearray()
    try:
        tls.sendall(_request(endpoint))
        while b"\n" not in answer and len(answer) < _MAX_ANSWER:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            tls.settimeout(remaining)
            chunk = tls.recv(_MAX_ANSWER - len(answer))
            if not chunk:
                break
            answer += chunk
    except TimeoutError:
        message = f"{endpoint.display}: no answer to the HTTP request {who} within {endpoint.timeout:g}s"
        return unobserved(ErrorClass.timeout, message, SOURCE)
    except ssl.SSLError as exc:
        alert = _alert(exc)
        if alert is not None:
            return observed(_handshake_refusal(f"the server sent alert {alert} {who} after the handshake"), SOURCE)
        if not isinstance(exc, ssl.SSLZeroReturnError | ssl.SSLEOFError):
            message = f"{endpoint.display}: TLS error after the HTTP request {who}: {exc.reason or exc}"
            return unobserved(ErrorClass.handshake_failed, message, SOURCE)
    except OSError:
        pass  # a reset: the server dropped the connection, which counts as closing it unanswered
    return observed(_judge_answer(bytes(answer), basis, who), SOURCE)


def starttls_service(endpoint: Endpoint, who: str) -> Observed[ClientAuthEnforcement]:
    """A STARTTLS target is not HTTP: nothing is sent to it, the TLS-level answer stands."""
    name = endpoint.starttls.value if endpoint.starttls is not None else "STARTTLS"
    detail = f"the handshake completes {who}; no HTTP request is made to a STARTTLS service"
    return _not_http(f"STARTTLS {name}: not an HTTP service", detail)


def probe_enforcement(
    endpoint: Endpoint, sock: socket.socket, context: ssl.SSLContext, who: str
) -> Observed[ClientAuthEnforcement]:
    """Handshake on ``sock`` as the client ``context`` makes (a certificate or none) and, for an HTTP service,
    make one request.

    ``who`` says which client this is in the messages ("without a client certificate"). ``context`` is changed:
    it offers ALPN http/1.1 and nothing else. The caller closes ``sock``.
    """
    context.set_alpn_protocols([ALPN_HTTP])
    # Python's ssl bounds a whole handshake by the socket's timeout (one deadline, not one per read).
    sock.settimeout(_within(endpoint))
    try:
        tls = context.wrap_socket(sock, server_hostname=endpoint.server_name)
    except ssl.SSLError as exc:
        alert = _alert(exc)
        if alert == "no_application_protocol":
            basis = f"the server refused ALPN {ALPN_HTTP} (alert no_application_protocol)"
            return _not_http(basis, f"the handshake completes {who}; the service does not speak HTTP/1.1")
        if alert is not None:
            return observed(_handshake_refusal(f"the server sent alert {alert} {who} during the handshake"), SOURCE)
        message = f"{endpoint.display}: the handshake {who} failed: {exc.reason or exc}"
        return unobserved(ErrorClass.handshake_failed, message, SOURCE)
    except TimeoutError:
        message = f"{endpoint.display}: no answer within {endpoint.timeout:g}s during the handshake {who}"
        return unobserved(ErrorClass.timeout, message, SOURCE)
    except OSError as exc:
        message = f"{endpoint.display}: the connection broke during the handshake {who}: {exc.strerror or exc}"
        return unobserved(ErrorClass.reset, message, SOURCE)
    with tls:
        is_http, basis = _http_basis(endpoint, tls.selected_alpn_protocol())
        if not is_http:
            detail = f"the handshake completes {who}; whether the service refuses it afterwards was not tested"
            return _not_http(basis, detail)
        return _exchange(endpoint, tls, basis, who)
