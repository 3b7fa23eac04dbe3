"""SSL 2.0: one CLIENT-HELLO offering every SSL 2.0 cipher kind, and the SERVER-HELLO's answer.

An SSL 2.0 server answers a CLIENT-HELLO with a SERVER-HELLO that lists the cipher kinds it shares with the
client (SSL 2.0 spec, draft-hickman-netscape-ssl-00, section "Client/Server Protocol Messages"), so one
connection says whether SSL 2.0 is accepted and with which ciphers — where sslyze's SSL 2.0 plugin spends a
connectivity test and a handshake per cipher. A server without SSL 2.0 answers with a TLS alert, an SSL 2.0
ERROR message, or by closing the connection: all of them "not accepted". Silence is not an answer: the version
is then an error (timeout), never "not accepted".
"""

from __future__ import annotations

import contextlib
import os
import socket
import struct
from dataclasses import dataclass

from scanner.facts import CipherSuite, ErrorClass, ProbeError, ProtocolSupport, ProtocolVersion
from scanner.probe.connect.deadline import Deadline
from scanner.probe.connect.endpoint import Endpoint
from scanner.probe.connect.starttls import StartTlsError
from scanner.probe.wire.records import connect_error

MSG_ERROR = 0
MSG_CLIENT_HELLO = 1
MSG_SERVER_HELLO = 4
SSL2_VERSION = 0x0002
CHALLENGE_BYTES = 16
MAX_RECORD = 0x7FFF  # a two-byte header's length field


@dataclass(frozen=True)
class Ssl2Cipher:
    kind: int  # the three-byte CIPHER-KIND
    name: str  # as sslyze and OpenSSL's SSL 2.0 list name it
    openssl_name: str
    encryption: str
    key_bits: int  # secret key bits (export kinds: 40)
    export: bool


# The seven cipher kinds SSL 2.0 defines (spec, Appendix A "Cipher Kind Values").
CIPHERS: tuple[Ssl2Cipher, ...] = (
    Ssl2Cipher(0x010080, "SSL_CK_RC4_128_WITH_MD5", "RC4-MD5", "RC4_128", 128, False),
    Ssl2Cipher(0x020080, "SSL_CK_RC4_128_EXPORT40_WITH_MD5", "EXP-RC4-MD5", "RC4_40", 40, True),
    Ssl2Cipher(0x030080, "SSL_CK_RC2_128_CBC_WITH_MD5", "RC2-CBC-MD5", "RC2_CBC_128", 128, False),
    Ssl2Cipher(0x040080, "SSL_CK_RC2_128_CBC_EXPORT40_WITH_MD5", "EXP-RC2-CBC-MD5", "RC2_CBC_40", 40, True),
    Ssl2Cipher(0x050080, "SSL_CK_IDEA_128_CBC_WITH_MD5", "IDEA-CBC-MD5", "IDEA_CBC", 128, False),
    Ssl2Cipher(0x060040, "SSL_CK_DES_64_CBC_WITH_MD5", "DES-CBC-MD5", "DES_CBC", 56, False),
    Ssl2Cipher(0x0700C0, "SSL_CK_DES_192_EDE3_CBC_WITH_MD5", "DES-CBC3-MD5", "3DES_EDE_CBC", 168, False),
)
_BY_KIND = {cipher.kind: cipher for cipher in CIPHERS}


def client_hello(challenge: bytes | None = None) -> bytes:
    """An SSL 2.0 CLIENT-HELLO record offering every cipher kind, no session id, a random challenge."""
    challenge = challenge if challenge is not None else os.urandom(CHALLENGE_BYTES)
    specs = b"".join(cipher.kind.to_bytes(3, "big") for cipher in CIPHERS)
    body = struct.pack("!BHHHH", MSG_CLIENT_HELLO, SSL2_VERSION, len(specs), 0, len(challenge)) + specs + challenge
    return struct.pack("!H", 0x8000 | len(body)) + body


@dataclass(frozen=True)
class ServerHello:
    version: int
    certificate: bytes  # DER, as sent
    cipher_kinds: tuple[int, ...]


def parse_server_hello(body: bytes) -> ServerHello:
    """The SERVER-HELLO message (its type byte first); raises ValueError when it does not add up."""
    if len(body) < 11 or body[0] != MSG_SERVER_HELLO:
        raise ValueError("not a SERVER-HELLO")
    _, _hit, _cert_type, version, cert_len, specs_len, conn_len = struct.unpack("!BBBHHHH", body[:11])
    if specs_len % 3 or 11 + cert_len + specs_len + conn_len != len(body):
        raise ValueError("SERVER-HELLO lengths do not add up")
    certificate = body[11 : 11 + cert_len]
    specs = body[11 + cert_len : 11 + cert_len + specs_len]
    kinds = tuple(int.from_bytes(specs[i : i + 3], "big") for i in range(0, len(specs), 3))
    return ServerHello(version, certificate, kinds)


def _read_exact(sock: socket.socket, count: int, deadline: Deadline) -> bytes | None:
    """``count`` bytes, None when the peer closed first; TimeoutError when the deadline passed."""
    data = deadline.recv_exactly(sock, count)
    return data if len(data) == count else None


def _suite(cipher: Ssl2Cipher) -> CipherSuite:
    return CipherSuite(
        name=cipher.name,
        openssl_name=cipher.openssl_name,
        key_exchange="RSA",
        authentication="RSA",
        encryption=cipher.encryption,
        mac="MD5",
        key_bits=cipher.key_bits,
        export=cipher.export,
    )


def _answer(sock: socket.socket, deadline: Deadline) -> ProtocolSupport:
    version = ProtocolVersion.SSLv2
    not_accepted = ProtocolSupport(version=version, status="not_accepted")
    header = _read_exact(sock, 2, deadline)
    if header is None or not header[0] & 0x80:
        # Closed, or a TLS record (an alert, most often): no SSL 2.0 here.
        return not_accepted
    body = _read_exact(sock, ((header[0] & 0x7F) << 8) | header[1], deadline)
    if body is None or not body or body[0] == MSG_ERROR:
        return not_accepted
    try:
        hello = parse_server_hello(body)
    except ValueError as exc:
        error = ProbeError(error_class=ErrorClass.probe_failed, message=f"SSL 2.0 answer not understood: {exc}")
        return ProtocolSupport(version=version, status="error", error=error)
    suites = [_suite(_BY_KIND[kind]) for kind in hello.cipher_kinds if kind in _BY_KIND]
    # A SERVER-HELLO with no cipher in common is SSL 2.0 spoken but nothing accepted.
    return ProtocolSupport(version=version, status="accepted" if suites else "not_accepted", cipher_suites=suites)


def probe_sslv2(endpoint: Endpoint) -> ProtocolSupport:
    """Whether ``endpoint`` accepts SSL 2.0, and with which ciphers: one connection."""
    try:
        sock = endpoint.connect()
    except (OSError, StartTlsError) as exc:
        return ProtocolSupport(version=ProtocolVersion.SSLv2, status="error", error=connect_error(endpoint, exc))
    with contextlib.closing(sock):
        try:
            deadline = endpoint.deadline()
            deadline.sendall(sock, client_hello())
            return _answer(sock, deadline)
        except TimeoutError:
            # Silence, or an answer trickling in too slowly to finish within the timeout.
            error = ProbeError(
                error_class=ErrorClass.timeout,
                message=f"{endpoint.display} did not answer an SSL 2.0 CLIENT-HELLO within {endpoint.timeout:g}s",
            )
        except (ConnectionResetError, BrokenPipeError):
            return ProtocolSupport(version=ProtocolVersion.SSLv2, status="not_accepted")
        except OSError as exc:
            error = connect_error(endpoint, exc)
    return ProtocolSupport(version=ProtocolVersion.SSLv2, status="error", error=error)
