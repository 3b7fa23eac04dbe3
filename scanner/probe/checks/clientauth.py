"""Client authentication (mTLS): does the server ask for a certificate, from which CAs, and which does it take.

Three kinds of handshake, each on its own connection, each driven through memory BIOs so that every byte the
server sends is seen:

1. **No certificate.** Whether a CertificateRequest arrives, with its acceptable CA names, and what the server
   does with the empty Certificate we answer: carry on (``optional``) or abort (``required``).
2. **A throwaway certificate**, issued on the fly by a CA key that exists only for this probe. When the server
   names acceptable CAs, the throwaway CA borrows the first name, so that a server matching issuer names
   without checking signatures is caught too. A server that verifies client certificates refuses it.
3. **The scan's own certificate**, when one was given (``Endpoint.credentials``): is it accepted?
4. **Where the refusal happens.** A client the handshake refused (no certificate, or the throwaway one) was
   refused there. One it let through may still be refused by the application (nginx ``ssl_verify_client on``
   answers HTTP 400): ``enforcement`` makes one more connection as that client and, for an HTTP service only,
   one request.

Where a verdict shows: in TLS 1.2 the server judges the client's certificate before its Finished, so the
handshake either completes or fails. In TLS 1.3 the client's handshake is over before the server has even read
the certificate; the verdict comes after it, as an alert (refused) or as a NewSessionTicket or data (accepted).
A server that says nothing within the timeout has kept the connection open, which a refusing server does not
do, so that counts as accepted.

TLS 1.2 sends the CertificateRequest in the clear. TLS 1.3 encrypts it, so the handshake records are decrypted
here with the connection's own handshake secret (from OpenSSL's key log, written to a private temporary
directory that is removed when the probe ends). That gives the CA names as the server encoded them (DER),
which are reported as RFC 4514 strings. (nassl's ``get_client_CA_list()`` only offers OpenSSL's lossy
"oneline" form, and empties the list as it reads it.)
"""

from __future__ import annotations

import contextlib
import datetime as dt
import socket
import ssl
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from scanner.facts import (
    ClientAuthEnforcement,
    ClientAuthFacts,
    ErrorClass,
    Observed,
    ProbeError,
    observed,
    unobserved,
)
from scanner.probe.checks.enforcement import probe_enforcement, refused_in_handshake, starttls_service
from scanner.probe.connect.deadline import Deadline
from scanner.probe.connect.endpoint import Endpoint, connect_failure
from scanner.probe.connect.starttls import StartTlsError
from scanner.probe.wire.codes import (
    CONTENT_CHANGE_CIPHER_SPEC,
    CONTENT_HANDSHAKE,
    HS_CERTIFICATE_REQUEST,
    HS_FINISHED,
    HS_SERVER_HELLO,
    HS_SERVER_HELLO_DONE,
    MAX_RECORD_PAYLOAD,
)
from scanner.probe.wire.cursor import ParseError
from scanner.probe.wire.der import DistinguishedName, distinguished_name
from scanner.probe.wire.keyschedule import decrypt_server_handshake, server_handshake_secret
from scanner.probe.wire.messages import handshake_messages, parse_certificate_request, parse_server_hello
from scanner.probe.wire.records import MAX_FLIGHT_BYTES, split_records

SOURCE = "tlsgate"

# Facts that do not apply to a target carry their reason in a ProbeError; ErrorClass has no member for
# "not applicable" (yet), and this is the closest honest one: the probe was not run on purpose.
_NOT_APPLICABLE = ErrorClass.not_applicable

_TLS13 = 0x0304
_READ_SIZE = MAX_RECORD_PAYLOAD + 256  # one record, its header and expansion

# Record-layer errors OpenSSL reports when the peer's bytes are not TLS at all.
_NOT_TLS_REASONS = ("WRONG_VERSION_NUMBER", "PACKET_LENGTH_TOO_LONG", "RECORD_LAYER_FAILURE", "UNEXPECTED_RECORD")


# --------------------------------------------------------------------------------------------------------------
# Reading the server's handshake


@dataclass(frozen=True)
class _ServerFlight:
    version: int | None  # from the ServerHello; None when none arrived
    requested: bool | None  # a CertificateRequest arrived; None when that cannot be told
    ca_names: list[DistinguishedName] | None
    problem: str | None = None  # why requested/ca_names are unknown


def _read_flight(stream: bytes, keylog: Path) -> _ServerFlight:
    try:
        records = split_records(stream)
        clear = b"".join(r.payload for r in records if r.type == CONTENT_HANDSHAKE)
        bodies = (body for kind, body in handshake_messages(clear) if kind == HS_SERVER_HELLO)
        hello = next((parse_server_hello(body) for body in bodies), None)
        if hello is None:
            return _ServerFlight(None, None, None, "no ServerHello arrived")
        if hello.version == _TLS13:
            handshake = decrypt_server_handshake(records, hello.cipher_suite, server_handshake_secret(keylog))
            complete = any(kind == HS_FINISHED for kind, _ in handshake_messages(handshake))
        else:
            # Up to the ChangeCipherSpec, a TLS 1.2 (or older) server's flight is in the clear.
            end = next((i for i, r in enumerate(records) if r.type == CONTENT_CHANGE_CIPHER_SPEC), len(records))
            handshake = b"".join(r.payload for r in records[:end] if r.type == CONTENT_HANDSHAKE)
            complete = any(kind == HS_SERVER_HELLO_DONE for kind, _ in handshake_messages(handshake))
        for kind, body in handshake_messages(handshake):
            if kind == HS_CERTIFICATE_REQUEST:
                request = parse_certificate_request(body, hello.version)
                names = [distinguished_name(der) for der in request.ca_names_der]
                return _ServerFlight(hello.version, True, names)
        if not complete:
            return _ServerFlight(hello.version, None, None, "the server's handshake flight did not arrive whole")
        return _ServerFlight(hello.version, False, None)
    except ParseError as exc:
        return _ServerFlight(None, None, None, f"cannot read the server's handshake: {exc}")


# --------------------------------------------------------------------------------------------------------------
# Driving one handshake


Ending = Literal["completed", "alert", "tls_error", "closed", "timeout"]


class _Flooded(Exception):
    """The server sent more than a handshake can hold."""


@dataclass
class _Connection:
    """One TLS client connection over memory BIOs, keeping a copy of every byte the server sent."""

    sock: socket.socket
    tls: ssl.SSLObject
    incoming: ssl.MemoryBIO
    outgoing: ssl.MemoryBIO
    deadline: Deadline  # the whole handshake, however the server paces its bytes
    received: bytearray = field(default_factory=bytearray)

    def flush(self) -> None:
        data = self.outgoing.read()
        if data:
            self.deadline.sendall(self.sock, data)

    def receive(self) -> bool:
        if len(self.received) > MAX_FLIGHT_BYTES:
            raise _Flooded
        data = self.deadline.recv(self.sock, _READ_SIZE)
        if not data:
            self.incoming.write_eof()
            return False
        self.received += data
        self.incoming.write(data)
        return True

    def handshake(self) -> tuple[Ending, str]:
        while True:
            try:
                self.tls.do_handshake()
            except ssl.SSLWantReadError:
                try:
                    self.flush()
                    if not self.receive():
                        return "closed", "the server closed the connection during the handshake"
                except TimeoutError:
                    return "timeout", "the handshake did not complete within the timeout"
                except _Flooded:
                    return "tls_error", f"the server sent more than {MAX_FLIGHT_BYTES // 1024} KiB during the handshake"
                except OSError as exc:
                    return "closed", f"the connection broke during the handshake: {exc.strerror or exc}"
                continue
            except ssl.SSLError as exc:
                with contextlib.suppress(OSError):
                    self.flush()  # our own alert, if OpenSSL has one to send
                return _classify(exc, "during the handshake")
            try:
                self.flush()  # our last flight (Certificate, Finished)
            except OSError as exc:
                return "closed", f"the connection broke at the end of the handshake: {exc.strerror or exc}"
            return "completed", "the handshake completed"

    def verdict(self, timeout: float) -> tuple[Ending, str]:
        """TLS 1.3: wait for what the server makes of our last flight: an alert, a ticket, data or silence."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                if not self.tls.read(1):
                    return "closed", "the server closed the connection right after the handshake"
                return "completed", "the server sent data after the handshake"
            except ssl.SSLWantReadError:
                session = self.tls.session
                if session is not None and session.has_ticket:
                    return "completed", "the server sent a session ticket after the handshake"
            except ssl.SSLError as exc:
                return _classify(exc, "after the handshake")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return "completed", f"the server kept the connection open for {timeout:g}s without refusing"
            self.sock.settimeout(remaining)
            try:
                if not self.receive():
                    return "closed", "the server closed the connection right after the handshake"
            except TimeoutError:
                return "completed", f"the server kept the connection open for {timeout:g}s without refusing"
            except OSError as exc:
                return "closed", f"the connection broke right after the handshake: {exc.strerror or exc}"


def _classify(exc: ssl.SSLError, when: str) -> tuple[Ending, str]:
    if isinstance(exc, ssl.SSLZeroReturnError | ssl.SSLEOFError):
        return "closed", f"the server closed the connection {when}"
    reason = str(exc.reason or "")
    if "_ALERT_" in reason:
        alert = reason.split("_ALERT_", 1)[1].lower()
        return "alert", f"the server sent alert {alert} {when}"
    return "tls_error", f"TLS error {when}: {exc.reason or exc}"


def _context(chain: tuple[Path, Path] | None, keylog: Path | None = None) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the server's certificate is another probe's business
    context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    context.set_ciphers("ALL:@SECLEVEL=0")
    if chain is not None:
        # An empty password: never let OpenSSL prompt on the terminal for an encrypted key.
        context.load_cert_chain(chain[0], chain[1], password="")
    if keylog is not None:
        context.keylog_filename = str(keylog)
    return context


@dataclass(frozen=True)
class _Attempt:
    flight: _ServerFlight
    accepted: bool | None  # None: no verdict, see error
    detail: str
    error: ProbeError | None = None


def _failed_handshake(endpoint: Endpoint, ending: Ending, detail: str) -> ProbeError:
    if ending == "timeout":
        return ProbeError(error_class=ErrorClass.timeout, message=f"{endpoint.display}: {detail}")
    if ending == "closed":
        return ProbeError(error_class=ErrorClass.reset, message=f"{endpoint.display}: {detail}")
    if ending == "tls_error" and any(reason in detail for reason in _NOT_TLS_REASONS):
        return ProbeError(error_class=ErrorClass.not_tls, message=f"{endpoint.display} does not speak TLS: {detail}")
    return ProbeError(error_class=ErrorClass.handshake_failed, message=f"{endpoint.display}: {detail}")


def _open(endpoint: Endpoint) -> socket.socket | ProbeError:
    """A connection ready for a ClientHello, or why there is none."""
    try:
        return endpoint.connect()
    except StartTlsError as exc:
        return ProbeError(error_class=ErrorClass.starttls_failed, message=str(exc))
    except OSError as exc:
        where = endpoint.display
        timed_out = f"connecting to {where} timed out"
        return connect_failure(where, exc, timed_out=timed_out, reason=exc.strerror or str(exc))


def _attempt(endpoint: Endpoint, chain: tuple[Path, Path] | None, workdir: Path, label: str) -> _Attempt:
    keylog = workdir / f"{label}.keylog"
    unknown = _ServerFlight(None, None, None)
    try:
        context = _context(chain, keylog)
    except (ssl.SSLError, OSError) as exc:
        what = "the client certificate or key" if chain is not None else "the TLS client"
        return _Attempt(
            unknown, None, "", ProbeError(error_class=ErrorClass.probe_failed, message=f"cannot set up {what}: {exc}")
        )
    sock = _open(endpoint)
    if isinstance(sock, ProbeError):
        return _Attempt(unknown, None, "", sock)
    with sock:
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = context.wrap_bio(incoming, outgoing, server_side=False, server_hostname=endpoint.server_name)
        connection = _Connection(sock, tls, incoming, outgoing, endpoint.deadline())
        ending, detail = connection.handshake()
        flight = _read_flight(bytes(connection.received), keylog)
        if ending == "completed" and flight.version == _TLS13 and flight.requested is not False:
            ending, detail = connection.verdict(endpoint.timeout)
    if ending == "completed":
        return _Attempt(flight, True, detail)
    if flight.requested and ending in ("alert", "closed"):
        return _Attempt(flight, False, detail)  # the server's answer to the certificate we sent, or did not
    return _Attempt(flight, None, detail, _failed_handshake(endpoint, ending, detail))


# --------------------------------------------------------------------------------------------------------------
# The throwaway certificate


def _throwaway_certificate(workdir: Path, issuer: x509.Name | None) -> tuple[Path, Path]:
    """A client certificate (EC P-256, EKU clientAuth) signed by a CA key that exists only for this probe."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    key = ec.generate_private_key(ec.SECP256R1())
    issuer = issuer or x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "tlsgate"),
            x509.NameAttribute(NameOID.COMMON_NAME, "tlsgate throwaway client CA"),
        ]
    )
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "tlsgate"),
            x509.NameAttribute(NameOID.COMMON_NAME, "tlsgate throwaway client certificate"),
        ]
    )
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    cert_path, key_path = workdir / "throwaway.pem", workdir / "throwaway-key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


# --------------------------------------------------------------------------------------------------------------
# The probe


def _not_applicable(reason: str) -> Observed[Any]:
    return Observed[Any](
        status="not_probed", error=ProbeError(error_class=_NOT_APPLICABLE, message=reason), source=SOURCE
    )


def _acceptance(endpoint: Endpoint, chain: tuple[Path, Path], workdir: Path, label: str) -> Observed[bool]:
    attempt = _attempt(endpoint, chain, workdir, label)
    if attempt.error is not None:
        return unobserved(attempt.error.error_class, attempt.error.message, SOURCE)
    if attempt.flight.requested is False:
        return unobserved(
            ErrorClass.probe_failed,
            "the server did not request a client certificate on this connection, though it did on the first",
            SOURCE,
        )
    return observed(bool(attempt.accepted), SOURCE)


def probe_client_auth(endpoint: Endpoint) -> ClientAuthFacts:
    """Whether the server requests a client certificate, the CA names it sends, and which certificates it takes.

    Never raises: whatever goes wrong becomes ClientAuthFacts with status error and the reason.
    """
    try:
        return _probe(endpoint)
    except Exception as exc:  # a bug or a reply nobody foresaw must not end the scan of other targets
        return ClientAuthFacts(
            status="error",
            error=ProbeError(
                error_class=ErrorClass.probe_failed,
                message=f"the client-certificate probe broke: {type(exc).__name__}: {exc}",
            ),
        )


def _enforcement(endpoint: Endpoint, chain: tuple[Path, Path] | None, who: str) -> Observed[ClientAuthEnforcement]:
    """Where a client the handshake let through is refused: one more connection and, for HTTP, one request."""
    if endpoint.starttls is not None:
        return starttls_service(endpoint, who)
    try:
        context = _context(chain)
        sock = _open(endpoint)
        if isinstance(sock, ProbeError):
            return unobserved(sock.error_class, sock.message, SOURCE)
        with sock:
            return probe_enforcement(endpoint, sock, context, who)
    except Exception as exc:  # an answer nobody foresaw must not cost the facts the handshakes already gave
        return unobserved(ErrorClass.probe_failed, f"the HTTP check {who} broke: {type(exc).__name__}: {exc}", SOURCE)


_WITHOUT = "without a client certificate"
_UNTRUSTED = "with a certificate from an unknown CA"


def _untrusted_enforcement(
    endpoint: Endpoint, chain: tuple[Path, Path], throwaway: Observed[bool]
) -> Observed[ClientAuthEnforcement]:
    """Where the throwaway certificate is refused: in the handshake, as the TLS-level probe saw, or later."""
    if throwaway.status != "ok":  # no verdict on the throwaway certificate: none on where it is refused either
        return Observed[ClientAuthEnforcement](status=throwaway.status, error=throwaway.error, source=SOURCE)
    if throwaway.value is False:
        return refused_in_handshake(f"{_UNTRUSTED}: the handshake was refused")
    return _enforcement(endpoint, chain, _UNTRUSTED)


def _probe(endpoint: Endpoint) -> ClientAuthFacts:
    with tempfile.TemporaryDirectory(prefix="tlsgate-mtls-") as temporary:
        workdir = Path(temporary)
        bare = _attempt(endpoint, None, workdir, "none")
        if bare.error is not None:
            return ClientAuthFacts(status="error", error=bare.error)
        flight = bare.flight
        if flight.requested is None:
            return ClientAuthFacts(
                status="error",
                error=ProbeError(
                    error_class=ErrorClass.probe_failed,
                    message=f"cannot tell whether the server requests a client certificate: {flight.problem}",
                ),
            )
        if not flight.requested:
            reason = "the server does not request a client certificate"
            return ClientAuthFacts(
                status="ok",
                requirement=observed("not_requested", SOURCE),
                ca_names=_not_applicable(reason),
                throwaway_certificate_accepted=_not_applicable(reason),
                provided_certificate_accepted=_not_applicable(reason),
                enforcement=_enforcement(endpoint, None, _WITHOUT),
                untrusted_enforcement=_not_applicable(f"{reason}, so none can be sent"),
            )
        names = flight.ca_names or []
        chain = _throwaway_certificate(workdir, names[0].name if names else None)
        throwaway = _acceptance(endpoint, chain, workdir, "throwaway")
        credentials = endpoint.credentials
        provided = (
            _acceptance(endpoint, (credentials.cert_chain, credentials.key), workdir, "provided")
            if credentials is not None
            else _not_applicable("no client certificate was given for the scan")
        )
        enforcement = (
            _enforcement(endpoint, None, _WITHOUT)
            if bare.accepted
            else refused_in_handshake(f"{_WITHOUT}: {bare.detail}")
        )
        untrusted = _untrusted_enforcement(endpoint, chain, throwaway)
    return ClientAuthFacts(
        status="ok",
        requirement=observed("optional" if bare.accepted else "required", SOURCE),
        ca_names=observed([name.text for name in names], SOURCE),
        throwaway_certificate_accepted=throwaway,
        provided_certificate_accepted=provided,
        enforcement=enforcement,
        untrusted_enforcement=untrusted,
    )
