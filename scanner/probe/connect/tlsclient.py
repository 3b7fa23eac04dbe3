"""A TLS client on Python's ``ssl`` (the OpenSSL it links), set up for scanning: every suite, no verification,
any version; the handshake through the endpoint (STARTTLS included) and its failures told apart by OpenSSL's
reason. Shared by the probes that need a real OpenSSL handshake: sessions, ALPN, client authentication.
"""

from __future__ import annotations

import re
import ssl
import warnings

from scanner.facts import ErrorClass, ProbeError
from scanner.probe.connect.endpoint import Endpoint, connect_failure
from scanner.probe.connect.starttls import StartTlsError

SOURCE = "tlsgate"

# A scanner accepts whatever the server offers: every suite OpenSSL has, no security-level floor.
SCANNER_CIPHERS = "ALL:COMPLEMENTOFALL:@SECLEVEL=0"

# OpenSSL reasons that mean "the server does not speak this version (with us)".
_VERSION_REFUSED = frozenset(
    {
        "UNSUPPORTED_PROTOCOL",
        "TLSV1_ALERT_PROTOCOL_VERSION",
        "WRONG_VERSION_NUMBER",
        "NO_PROTOCOLS_AVAILABLE",
        "VERSION_TOO_LOW",
        "VERSION_TOO_HIGH",
        "TLSV1_ALERT_INAPPROPRIATE_FALLBACK",
    }
)
# Ways the server ends the connection mid-handshake: a closing, not a TLS error to classify by its reason.
_CLOSINGS = (ssl.SSLEOFError, ssl.SSLZeroReturnError, ConnectionResetError, BrokenPipeError)
_UNNAMED_REASON = re.compile(r"^\[SSL\] ([a-z0-9 ]+) \(_ssl\.c")
_NAMED_REASON = re.compile(r"^\[SSL: ([A-Z0-9_]+)\]")
_CLIENT_CERT = frozenset(
    {
        "TLSV13_ALERT_CERTIFICATE_REQUIRED",
        "SSLV3_ALERT_BAD_CERTIFICATE",
        "SSLV3_ALERT_CERTIFICATE_UNKNOWN",
        "TLSV1_ALERT_UNKNOWN_CA",
        "TLSV1_ALERT_ACCESS_DENIED",
    }
)


def client_context(
    endpoint: Endpoint,
    *,
    version: ssl.TLSVersion | None = None,
    no_ticket: bool = False,
) -> ssl.SSLContext:
    """A client context for scanning: no verification, every suite, ``version`` only when given (else TLS 1.0
    to 1.3), the endpoint's client certificate when it has one. Raises OSError when the credentials cannot be
    loaded."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_ciphers(SCANNER_CIPHERS)
    with warnings.catch_warnings():
        # Python deprecates TLS 1.0 and 1.1 for clients that protect data; a scanner must still reach such servers.
        warnings.simplefilter("ignore", DeprecationWarning)
        if version is not None:
            context.minimum_version = context.maximum_version = version
        else:
            context.minimum_version = ssl.TLSVersion.TLSv1
            context.maximum_version = ssl.TLSVersion.TLSv1_3
    if no_ticket:
        context.options |= ssl.OP_NO_TICKET
    if endpoint.credentials is not None:
        context.load_cert_chain(endpoint.credentials.cert_chain, endpoint.credentials.key)
    return context


def ssl_reason(exc: BaseException) -> str:
    """OpenSSL's reason code (``TLSV1_ALERT_PROTOCOL_VERSION``) or, lacking one, the exception's text.

    Python names only the reasons its own table knows; for the others (``[SSL] tlsv1 alert no application
    protocol``) OpenSSL's text is the code in lower case with spaces, so it is turned back into the code.
    """
    reason = getattr(exc, "reason", None)
    if reason:
        return str(reason)
    text = str(exc)
    unnamed = _UNNAMED_REASON.search(text)
    if unnamed:
        return unnamed.group(1).strip().upper().replace(" ", "_")
    named = _NAMED_REASON.search(text)
    if named:
        return named.group(1)
    # No library text in a message: "[Errno 104] ..." becomes its strerror, a bare exception its class in words.
    strerror = exc.strerror if isinstance(exc, OSError) else None
    return strerror or text or "unexplained failure"


def handshake_error(endpoint: Endpoint, what: str, exc: BaseException) -> ProbeError:
    """Classify a failed connect or handshake; ``what`` names the attempt, e.g. "TLS 1.2"."""
    where = endpoint.display
    if isinstance(exc, StartTlsError):
        return ProbeError(error_class=ErrorClass.starttls_failed, message=f"{what}: STARTTLS failed: {exc}")
    if isinstance(exc, ssl.SSLError) and not isinstance(exc, _CLOSINGS):
        reason = ssl_reason(exc)
        if reason in _VERSION_REFUSED:
            return ProbeError(error_class=ErrorClass.no_common_protocol, message=f"{what} not accepted ({reason})")
        if reason in _CLIENT_CERT:
            if endpoint.credentials is None:
                return ProbeError(
                    error_class=ErrorClass.client_cert_required,
                    message=f"{what}: the server requires a client certificate ({reason})",
                )
            return ProbeError(
                error_class=ErrorClass.handshake_failed,
                message=f"{what}: the server refused the client certificate "
                f"{endpoint.credentials.description} ({reason})",
            )
        if reason in ("SSLV3_ALERT_HANDSHAKE_FAILURE", "NO_SHARED_CIPHER", "NO_CIPHERS_AVAILABLE"):
            return ProbeError(
                error_class=ErrorClass.handshake_failed,
                message=f"{what}: the server refused the handshake ({reason}): no suite we offer is acceptable "
                "to it, or it requires a client certificate",
            )
        return ProbeError(error_class=ErrorClass.handshake_failed, message=f"{what}: handshake failed ({reason})")
    return connect_failure(
        where,
        exc,
        timed_out=f"{where} did not answer within {endpoint.timeout:g}s",
        prefix=f"{what}: ",
        closed="closed the connection during the handshake",
        closings=_CLOSINGS,
    )


def tls_connect(endpoint: Endpoint, context: ssl.SSLContext, session: ssl.SSLSession | None = None) -> ssl.SSLSocket:
    """Connect (through STARTTLS when the endpoint has it) and complete a handshake; raises OSError or
    StartTlsError. The handshake is one step within the probe timeout as a whole: Python's ssl bounds a
    handshake by the socket's timeout in total, not per read, so a server that trickles its flight times out."""
    sock = endpoint.connect()
    try:
        endpoint.deadline().arm(sock)
        tls = context.wrap_socket(sock, server_hostname=endpoint.server_name, session=session)
    except BaseException:
        sock.close()
        raise
    tls.settimeout(endpoint.timeout)
    return tls
