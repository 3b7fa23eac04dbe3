"""The served chain read off the wire by tlsgate itself, for when sslyze could not fetch it.

OpenSSL (and so sslyze) refuses a Certificate message over ``max_cert_list`` (100 KiB by default): a leaf with
thousands of SANs makes the whole handshake fail. Up to TLS 1.2 the Certificate message travels in the clear, so
one TLS 1.2 ClientHello of our own reads it (spanning as many records as it takes, bounded by the endpoint's
timeout and the record layer's 1 MiB flight limit). TLS 1.3 encrypts it: then the best we can do is say why.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import Sequence

from cryptography import x509
from cryptography.x509 import ocsp

from scanner.facts import ErrorClass, ProbeError, ProtocolVersion
from scanner.probe import iana
from scanner.probe.connect.endpoint import Endpoint
from scanner.probe.connect.starttls import StartTlsError
from scanner.probe.sslyze_adapter import ServedCertificates
from scanner.probe.wire.cursor import Cursor, ParseError
from scanner.probe.wire.hello import build_client_hello
from scanner.probe.wire.messages import (
    Alert,
    Closed,
    ConnectFailed,
    Malformed,
    NotTls,
    OtherHandshake,
    ReplyEnd,
    ServerReply,
    TimedOut,
)
from scanner.probe.wire.records import exchange

OPENSSL_MAX_CERT_LIST = 100 * 1024  # OpenSSL's default limit on a Certificate message a client accepts
_EXT_STATUS_REQUEST = 0x0005
_HS_CERTIFICATE_STATUS = 22
# status_request: OCSP, no responder ids, no request extensions (RFC 6066 section 8)
_OCSP_REQUEST = b"\x01\x00\x00\x00\x00"
# Why a TLS 1.3-only server's chain is not observed: more telling than the handshake failure sslyze reports.
TOO_LARGE = ProbeError(
    error_class=ErrorClass.handshake_failed,
    message=(
        f"certificate message larger than {OPENSSL_MAX_CERT_LIST} bytes: OpenSSL refuses it, and the server does"
        " not answer TLS 1.2 or older, where tlsgate reads it in the clear (TLS 1.3 encrypts it)"
    ),
)


def fetch_chain(endpoint: Endpoint) -> ServedCertificates | ProbeError:
    """The chain as the server sends it to a TLS 1.2 (or older) client, with its stapled OCSP response."""
    reply = _exchange(endpoint, None, None)
    if reply.certificate is None or not reply.certificate.certificates:
        return _unreadable(endpoint, reply)
    return _served(reply, reply.certificate.certificates)


def offered_chain_in_clear(
    endpoint: Endpoint, authentication: frozenset[str], signature_algorithms: Sequence[int]
) -> ServedCertificates | ProbeError | None:
    """The chain a TLS 1.2 client gets that offers only suites with this ``authentication`` (IANA's RSA, ECDSA,
    DSS) and these signature algorithms; None when the server refuses (an alert or a close before its hello): it
    has no certificate for that offer (pki/deployments, for chains OpenSSL refuses to read)."""
    reply = _exchange(endpoint, authentication, signature_algorithms)
    if reply.certificate is not None and reply.certificate.certificates:
        return _served(reply, reply.certificate.certificates)
    if reply.server_hello is None and isinstance(reply.end, Alert | Closed):
        return None
    return _no_handshake(reply, "the certificate chain could not be read in TLS 1.2")


def _exchange(
    endpoint: Endpoint, authentication: frozenset[str] | None, signature_algorithms: Sequence[int] | None
) -> ServerReply:
    suites = [
        info.code
        for info in iana.suites_for_version(ProtocolVersion.TLSv1_2)
        if authentication is None or info.authentication in authentication
    ]
    hello = build_client_hello(
        ProtocolVersion.TLSv1_2,
        suites,
        server_name=endpoint.server_name,
        signature_algorithms=signature_algorithms,
        extra_extensions=[(_EXT_STATUS_REQUEST, _OCSP_REQUEST)],
    )
    return exchange(endpoint, hello)


def _served(reply: ServerReply, ders: Sequence[bytes]) -> ServedCertificates | ProbeError:
    try:
        chain = [x509.load_der_x509_certificate(der) for der in ders]
    except ValueError as exc:
        return ProbeError(
            error_class=ErrorClass.probe_failed, message=f"the server's Certificate message does not parse: {exc}"
        )
    return ServedCertificates(chain, _stapled(reply))


def _stapled(reply: ServerReply) -> ocsp.OCSPResponse | None:
    status = next(
        (m for m in reply.messages if isinstance(m, OtherHandshake) and m.msg_type == _HS_CERTIFICATE_STATUS), None
    )
    if status is None:
        return None
    try:
        cursor = Cursor(status.body)
        if cursor.u8() != 1:  # only OCSP is defined
            return None
        return ocsp.load_der_ocsp_response(cursor.vec24())
    except (ParseError, ValueError):
        return None  # a stapled response that does not even parse is as good as none


def _unreadable(endpoint: Endpoint, reply: ServerReply) -> ProbeError:
    """Why our TLS 1.2 hello brought no certificate: most often a server that speaks only TLS 1.3, where the
    Certificate message is encrypted and only a TLS library (which refuses large ones) can read it."""
    if reply.certificate is not None or reply.server_hello is not None:
        return ProbeError(error_class=ErrorClass.probe_failed, message="the server sent no certificate")
    if _too_large_for_openssl(endpoint):
        return TOO_LARGE
    return _no_handshake(reply, "the certificate chain could not be fetched: no TLS 1.2 or older handshake")


def _no_handshake(reply: ServerReply, what: str) -> ProbeError:
    """The connection's own error, or ``what`` went wrong and how the reply ended."""
    if isinstance(reply.end, ConnectFailed):
        return reply.end.error
    return ProbeError(error_class=ErrorClass.handshake_failed, message=f"{what} ({_ended(reply.end)})")


def _ended(end: ReplyEnd | None) -> str:
    match end:
        case Alert():
            return f"alert {end.name}"
        case Closed():
            return "connection reset" if end.reset else "connection closed"
        case TimedOut():
            return f"no answer within {end.seconds:.1f} s"
        case NotTls():
            return f"not TLS: {end.describe()}"
        case Malformed():
            return end.reason
    return "no ServerHello"


def _too_large_for_openssl(endpoint: Endpoint) -> bool:
    """Whether an OpenSSL client handshake fails for the size of the server's Certificate message."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # only the message's size matters here, trust is judged elsewhere
    try:
        sock = endpoint.connect()
    except (OSError, StartTlsError):
        return False
    with contextlib.closing(sock):
        try:
            context.wrap_socket(sock, server_hostname=endpoint.server_name).close()
        except ssl.SSLError as exc:
            return exc.reason == "EXCESSIVE_MESSAGE_SIZE"
        except OSError:
            return False
    return False
