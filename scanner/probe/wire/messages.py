"""The server's handshake messages as typed values, and their parsers.

A parser reads one message body and raises ``ParseError`` when it does not parse; the record reader turns that
into a ``Malformed`` end of the exchange.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

from scanner.facts import ProbeError, ProtocolVersion
from scanner.probe import iana
from scanner.probe.wire.codes import (
    ALERT_NAMES,
    EXT_ALPN,
    EXT_CERTIFICATE_AUTHORITIES,
    EXT_COOKIE,
    EXT_KEY_SHARE,
    EXT_SUPPORTED_VERSIONS,
    HRR_RANDOM,
    VERSIONS_BY_CODE,
    describe_group,
)
from scanner.probe.wire.cursor import Cursor
from scanner.probe.wire.der import describe_name

# --- typed replies --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Extension:
    type: int
    data: bytes


@dataclass(frozen=True)
class ServerHello:
    legacy_version: int
    random: bytes
    session_id: bytes
    cipher_suite: int
    compression_method: int
    extensions: tuple[Extension, ...]
    supported_version: int | None  # from the supported_versions extension (TLS 1.3)
    key_share_group: int | None  # TLS 1.3
    alpn: str | None

    @property
    def version(self) -> int:
        """The negotiated version: supported_versions when present, else the legacy field."""
        return self.supported_version if self.supported_version is not None else self.legacy_version

    @property
    def protocol(self) -> ProtocolVersion | None:
        return VERSIONS_BY_CODE.get(self.version)

    def extension(self, ext_type: int) -> bytes | None:
        return next((e.data for e in self.extensions if e.type == ext_type), None)


@dataclass(frozen=True)
class HelloRetryRequest:
    cipher_suite: int
    selected_version: int | None
    selected_group: int | None
    cookie: bytes | None
    extensions: tuple[Extension, ...]
    legacy_version: int = 0x0303

    @property
    def version(self) -> int:
        return self.selected_version if self.selected_version is not None else self.legacy_version

    @property
    def protocol(self) -> ProtocolVersion | None:
        return VERSIONS_BY_CODE.get(self.selected_version) if self.selected_version is not None else None


@dataclass(frozen=True)
class Certificate:
    """The server's chain as sent (TLS 1.2 and older; TLS 1.3 encrypts it), leaf first, DER."""

    certificates: tuple[bytes, ...]


@dataclass(frozen=True)
class ServerKeyExchange:
    key_exchange: str  # the suite's key exchange (ECDHE, DHE, RSA for export RSA, ...)
    named_group: int | None = None  # ECDHE with a named curve
    explicit_curve: bool = False  # ECDHE with explicit curve parameters (a finding in itself)
    dh_prime_bits: int | None = None  # DHE: size of the prime p
    rsa_modulus_bits: int | None = None  # export RSA: size of the temporary key
    raw: bytes = b""

    @property
    def ephemeral_key(self) -> str | None:
        """The facts' wording, e.g. 'ECDH secp256r1 256', 'ECDH x25519 253', 'DH 2048', 'RSA 512'."""
        if self.named_group is not None:
            return describe_group(self.named_group)
        if self.dh_prime_bits is not None:
            return f"DH {self.dh_prime_bits}"
        if self.rsa_modulus_bits is not None:
            return f"RSA {self.rsa_modulus_bits}"
        if self.explicit_curve:
            return "ECDH explicit"
        return None


@dataclass(frozen=True)
class CertificateRequest:
    """What client certificates the server asks for."""

    certificate_types: tuple[int, ...]  # before TLS 1.3
    signature_algorithms: tuple[int, ...]  # TLS 1.2 only
    ca_names_der: tuple[bytes, ...]
    ca_names: tuple[str, ...]  # RFC 4514, or "der:<hex>" when a name does not decode


@dataclass(frozen=True)
class ServerHelloDone:
    pass


@dataclass(frozen=True)
class OtherHandshake:
    msg_type: int
    body: bytes


ServerMessage = (
    ServerHello
    | HelloRetryRequest
    | Certificate
    | ServerKeyExchange
    | CertificateRequest
    | ServerHelloDone
    | OtherHandshake
)


@dataclass(frozen=True)
class Alert:
    level: int
    description: int

    @property
    def name(self) -> str:
        return ALERT_NAMES.get(self.description, f"alert_{self.description}")

    @property
    def fatal(self) -> bool:
        return self.level == 2


@dataclass(frozen=True)
class Closed:
    """The server closed the connection: ``reset`` for a TCP RST, otherwise an orderly end of stream (FIN)."""

    reset: bool
    detail: str = ""
    received: int = 0  # bytes received before it closed: more than none is a reply cut off mid-message


@dataclass(frozen=True)
class TimedOut:
    seconds: float
    received: int  # bytes received before the silence


@dataclass(frozen=True)
class ConnectFailed:
    error: ProbeError


@dataclass(frozen=True)
class NotTls:
    preview: bytes
    ssl2: bool = False  # an SSL 2.0 record (an SSLv2-only server answering)

    def describe(self) -> str:
        if self.ssl2:
            return "an SSL 2.0 record"
        text = self.preview[:40]
        if text and all(32 <= b < 127 or b in (9, 10, 13) for b in text):
            lines = text.decode("ascii").splitlines()
            return f"plain text {lines[0] if lines else ''!r}"
        return f"bytes {text[:8].hex(' ')}"


@dataclass(frozen=True)
class Malformed:
    reason: str


_M = TypeVar("_M")


class _FirstOf(Generic[_M]):
    """A reply's first message of one kind, None when the server sent none."""

    def __init__(self, kind: type[_M]) -> None:
        self._kind = kind

    def __get__(self, reply: ServerReply, owner: type[ServerReply]) -> _M | None:
        return next((m for m in reply.messages if isinstance(m, self._kind)), None)


ReplyEnd = Alert | Closed | TimedOut | ConnectFailed | NotTls | Malformed
ReadUntil = Literal["server_hello", "server_hello_done"]


@dataclass(frozen=True)
class ServerReply:
    """What the server sent in answer to one ClientHello, and why reading stopped.

    ``end`` is None when we stopped because we had what we asked for; otherwise it says what ended the
    exchange: an alert, the connection closing, a timeout, a failed connect, or something that is not TLS.
    """

    messages: tuple[ServerMessage, ...] = ()
    end: ReplyEnd | None = None
    warnings: tuple[Alert, ...] = ()  # warning-level alerts that did not end the exchange
    hello_length: int = 0  # bytes of the ClientHello sent
    elapsed: float = 0.0

    server_hello = _FirstOf(ServerHello)
    hello_retry_request = _FirstOf(HelloRetryRequest)
    certificate = _FirstOf(Certificate)
    server_key_exchange = _FirstOf(ServerKeyExchange)
    certificate_request = _FirstOf(CertificateRequest)

    @property
    def server_hello_done(self) -> bool:
        return any(isinstance(m, ServerHelloDone) for m in self.messages)

    @property
    def alert(self) -> Alert | None:
        return self.end if isinstance(self.end, Alert) else None

    @property
    def _hello(self) -> ServerHello | HelloRetryRequest | None:
        """The ServerHello or, lacking one, the HelloRetryRequest: either says what the server picked."""
        hello = self.server_hello
        return hello if hello is not None else self.hello_retry_request

    @property
    def selected_suite(self) -> int | None:
        """The suite the server picked, from its ServerHello or HelloRetryRequest."""
        hello = self._hello
        return hello.cipher_suite if hello is not None else None

    @property
    def selected_version(self) -> ProtocolVersion | None:
        hello = self._hello
        return hello.protocol if hello is not None else None


def _extensions(cursor: Cursor) -> tuple[Extension, ...]:
    if cursor.left == 0:
        return ()
    block = Cursor(cursor.vec16())
    found = []
    while block.left:
        ext_type = block.u16()
        found.append(Extension(ext_type, block.vec16()))
    return tuple(found)


def _find(extensions: tuple[Extension, ...], ext_type: int) -> bytes | None:
    return next((e.data for e in extensions if e.type == ext_type), None)


def parse_server_hello(body: bytes) -> ServerHello | HelloRetryRequest:
    cursor = Cursor(body)
    legacy_version = cursor.u16()
    random = cursor.take(32)
    session_id = cursor.vec8()
    suite = cursor.u16()
    compression = cursor.u8()
    extensions = _extensions(cursor)
    supported = _find(extensions, EXT_SUPPORTED_VERSIONS)
    supported_version = int(struct.unpack("!H", supported)[0]) if supported and len(supported) == 2 else None
    key_share = _find(extensions, EXT_KEY_SHARE)
    if random == HRR_RANDOM:
        cookie = _find(extensions, EXT_COOKIE)
        return HelloRetryRequest(
            cipher_suite=suite,
            selected_version=supported_version,
            selected_group=int(struct.unpack("!H", key_share[:2])[0]) if key_share and len(key_share) >= 2 else None,
            cookie=Cursor(cookie).vec16() if cookie else None,
            extensions=extensions,
            legacy_version=legacy_version,
        )
    alpn_data = _find(extensions, EXT_ALPN)
    alpn = None
    if alpn_data:
        protocols = Cursor(Cursor(alpn_data).vec16())
        alpn = protocols.vec8().decode("ascii", "replace")
    return ServerHello(
        legacy_version=legacy_version,
        random=random,
        session_id=session_id,
        cipher_suite=suite,
        compression_method=compression,
        extensions=extensions,
        supported_version=supported_version,
        key_share_group=int(struct.unpack("!H", key_share[:2])[0]) if key_share and len(key_share) >= 2 else None,
        alpn=alpn,
    )


def parse_certificate(body: bytes) -> Certificate:
    chain = Cursor(Cursor(body).vec24())
    certificates = []
    while chain.left:
        certificates.append(chain.vec24())
    return Certificate(tuple(certificates))


def parse_server_key_exchange(body: bytes, suite: int) -> ServerKeyExchange:
    """Read the (EC)DH parameters of a ServerKeyExchange; its signature is not checked (nor needed)."""
    info = iana.cipher_suite(suite)
    kx = info.key_exchange if info is not None else "unknown"
    cursor = Cursor(body)
    if kx in ("DHE_PSK", "ECDHE_PSK", "PSK", "RSA_PSK"):
        cursor.vec16()  # psk_identity_hint comes first
    if kx in ("ECDHE", "ECDHE_PSK"):
        curve_type = cursor.u8()
        if curve_type == 3:
            return ServerKeyExchange(kx, named_group=cursor.u16(), raw=body)
        return ServerKeyExchange(kx, explicit_curve=True, raw=body)
    if kx in ("DHE", "DHE_PSK"):
        prime = cursor.vec16()
        return ServerKeyExchange(kx, dh_prime_bits=int.from_bytes(prime, "big").bit_length(), raw=body)
    if kx == "RSA" and info is not None and info.export:
        modulus = cursor.vec16()
        return ServerKeyExchange(kx, rsa_modulus_bits=int.from_bytes(modulus, "big").bit_length(), raw=body)
    return ServerKeyExchange(kx, raw=body)


def parse_certificate_request(body: bytes, version: int) -> CertificateRequest:
    """A CertificateRequest as TLS 1.2 and older send it in the clear, or as TLS 1.3 does inside the encryption
    (its CA names then come in the certificate_authorities extension)."""
    cursor = Cursor(body)
    types: tuple[int, ...] = ()
    sigalgs: tuple[int, ...] = ()
    authorities = b""
    if version >= 0x0304:
        cursor.vec8()  # certificate_request_context
        authorities = Cursor(_find(_extensions(cursor), EXT_CERTIFICATE_AUTHORITIES) or b"\0\0").vec16()
    else:
        types = tuple(cursor.vec8())
        if version >= 0x0303:
            raw = cursor.vec16()
            sigalgs = tuple(int(struct.unpack("!H", raw[i : i + 2])[0]) for i in range(0, len(raw) - 1, 2))
        authorities = cursor.vec16()
    entries = Cursor(authorities)
    names = []
    while entries.left:
        names.append(entries.vec16())
    return CertificateRequest(
        certificate_types=types,
        signature_algorithms=sigalgs,
        ca_names_der=tuple(names),
        ca_names=tuple(describe_name(n) for n in names),
    )


def handshake_messages(data: bytes) -> Iterator[tuple[int, bytes]]:
    """(type, body) of each whole handshake message in a concatenation of handshake-record payloads."""
    cursor = Cursor(data)
    while cursor.left >= 4:
        kind = cursor.u8()
        length = cursor.u24()
        if cursor.left < length:
            return  # the rest has not arrived
        yield kind, cursor.take(length)
