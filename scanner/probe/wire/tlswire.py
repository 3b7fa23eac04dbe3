"""TLS on the wire: build any ClientHello, read the server's first flight, and parse it into typed results.

The probes that need more than a TLS library will do (offering suites no local library implements, reading
exactly what a server answers to one hello) use this module. It never completes a handshake: it sends one
ClientHello and reads until it has what the caller asked for (the ServerHello, or the whole flight up to
ServerHelloDone), or until the server answers with an alert, closes, or stays silent. Every network condition
is a value (``Closed``, ``TimedOut``, ``ConnectFailed``...), never an exception.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import socket
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, TypeVar

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, x448, x25519
from cryptography.x509.oid import ObjectIdentifier

from scanner.facts import ErrorClass, ProbeError, ProtocolVersion
from scanner.probe import iana
from scanner.probe.connect.endpoint import Endpoint
from scanner.probe.connect.starttls import StartTlsError

# --- constants ------------------------------------------------------------------------------------------------

VERSION_CODES: dict[ProtocolVersion, int] = {
    ProtocolVersion.SSLv3: 0x0300,
    ProtocolVersion.TLSv1_0: 0x0301,
    ProtocolVersion.TLSv1_1: 0x0302,
    ProtocolVersion.TLSv1_2: 0x0303,
    ProtocolVersion.TLSv1_3: 0x0304,
}
VERSIONS_BY_CODE: dict[int, ProtocolVersion] = {code: version for version, code in VERSION_CODES.items()}

CONTENT_CHANGE_CIPHER_SPEC = 20
CONTENT_ALERT = 21
CONTENT_HANDSHAKE = 22
CONTENT_APPLICATION_DATA = 23
CONTENT_HEARTBEAT = 24

HS_CLIENT_HELLO = 1
HS_SERVER_HELLO = 2
HS_CERTIFICATE = 11
HS_SERVER_KEY_EXCHANGE = 12
HS_CERTIFICATE_REQUEST = 13
HS_SERVER_HELLO_DONE = 14

EXT_SERVER_NAME = 0x0000
EXT_SUPPORTED_GROUPS = 0x000A
EXT_EC_POINT_FORMATS = 0x000B
EXT_SIGNATURE_ALGORITHMS = 0x000D
EXT_ALPN = 0x0010
EXT_PADDING = 0x0015
EXT_EXTENDED_MASTER_SECRET = 0x0017
EXT_SUPPORTED_VERSIONS = 0x002B
EXT_COOKIE = 0x002C
EXT_PSK_KEY_EXCHANGE_MODES = 0x002D
EXT_KEY_SHARE = 0x0033
EXT_RENEGOTIATION_INFO = 0xFF01

GROUP_SECP256R1 = 0x0017
GROUP_SECP384R1 = 0x0018
GROUP_SECP521R1 = 0x0019
GROUP_X25519 = 0x001D
GROUP_X448 = 0x001E

# SHA-256("HelloRetryRequest"): the ServerHello.random that marks a HelloRetryRequest (RFC 8446, 4.1.3).
HRR_RANDOM = bytes.fromhex("cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c")

# Every classical group we can name, most used first: ECDHE curves, then RFC 7919 finite-field groups. A
# ClientHello for TLS 1.2 and older offers them all so that no (EC)DHE suite is skipped for want of a group.
DEFAULT_GROUPS: tuple[int, ...] = (
    0x001D, 0x0017, 0x0018, 0x0019, 0x001E,  # x25519 secp256r1 secp384r1 secp521r1 x448
    0x001A, 0x001B, 0x001C,  # brainpoolP256r1/384r1/512r1
    0x001F, 0x0020, 0x0021,  # brainpool TLS 1.3 variants
    0x0016, 0x0015, 0x0014, 0x0013, 0x0012, 0x0011, 0x0010, 0x000F,  # secp256k1 ... secp160k1
    0x000E, 0x000D, 0x000C, 0x000B, 0x000A, 0x0009, 0x0008, 0x0007, 0x0006, 0x0005, 0x0004, 0x0003, 0x0002,
    0x0001,  # sect571r1 ... sect163k1
    0x0022, 0x0023, 0x0024, 0x0025, 0x0026, 0x0027, 0x0028, 0x0029,  # GOST curves, curveSM2
    0x0100, 0x0101, 0x0102, 0x0103, 0x0104,  # ffdhe2048 ... ffdhe8192
)  # fmt: skip

# Signature schemes: everything a server certificate of the last 25 years may need, TLS 1.3 and 1.2 alike.
DEFAULT_SIGNATURE_ALGORITHMS: tuple[int, ...] = (
    0x0403, 0x0503, 0x0603,  # ecdsa_secp256r1_sha256 ... secp521r1_sha512
    0x0807, 0x0808,  # ed25519, ed448
    0x0804, 0x0805, 0x0806,  # rsa_pss_rsae_*
    0x0809, 0x080A, 0x080B,  # rsa_pss_pss_*
    0x081A, 0x081B, 0x081C,  # ecdsa_brainpool*_tls13
    0x0401, 0x0501, 0x0601,  # rsa_pkcs1_*
    0x0303, 0x0301, 0x0302,  # sha224 ecdsa / rsa / dsa
    0x0402, 0x0502, 0x0602,  # dsa sha256 / sha384 / sha512
    0x0203, 0x0201, 0x0202,  # sha1 ecdsa / rsa / dsa
    0x0708,  # sm2sig_sm3
    0x0709, 0x070A, 0x070B, 0x070C, 0x070D, 0x070E, 0x070F,  # GOST R 34.10-2012
)  # fmt: skip

ALERT_NAMES: dict[int, str] = {
    0: "close_notify", 10: "unexpected_message", 20: "bad_record_mac", 21: "decryption_failed",
    22: "record_overflow", 30: "decompression_failure", 40: "handshake_failure", 41: "no_certificate",
    42: "bad_certificate", 43: "unsupported_certificate", 44: "certificate_revoked", 45: "certificate_expired",
    46: "certificate_unknown", 47: "illegal_parameter", 48: "unknown_ca", 49: "access_denied", 50: "decode_error",
    51: "decrypt_error", 60: "export_restriction", 70: "protocol_version", 71: "insufficient_security",
    80: "internal_error", 86: "inappropriate_fallback", 90: "user_canceled", 100: "no_renegotiation",
    109: "missing_extension", 110: "unsupported_extension", 111: "certificate_unobtainable",
    112: "unrecognized_name", 113: "bad_certificate_status_response", 114: "bad_certificate_hash_value",
    115: "unknown_psk_identity", 116: "certificate_required", 120: "no_application_protocol",
    121: "ech_required",
}  # fmt: skip

MAX_RECORD_PAYLOAD = 2**14
_MAX_FLIGHT_BYTES = 1 << 20  # a first flight larger than this is not a TLS server we can reason about


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
    """TLS 1.2 and older: what client certificates the server asks for."""

    certificate_types: tuple[int, ...]
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

    def _first(self, kind: type[_M]) -> _M | None:
        return next((m for m in self.messages if isinstance(m, kind)), None)

    @property
    def server_hello(self) -> ServerHello | None:
        return self._first(ServerHello)

    @property
    def hello_retry_request(self) -> HelloRetryRequest | None:
        return self._first(HelloRetryRequest)

    @property
    def certificate(self) -> Certificate | None:
        return self._first(Certificate)

    @property
    def server_key_exchange(self) -> ServerKeyExchange | None:
        return self._first(ServerKeyExchange)

    @property
    def certificate_request(self) -> CertificateRequest | None:
        return self._first(CertificateRequest)

    @property
    def server_hello_done(self) -> bool:
        return self._first(ServerHelloDone) is not None

    @property
    def alert(self) -> Alert | None:
        return self.end if isinstance(self.end, Alert) else None

    @property
    def selected_suite(self) -> int | None:
        """The suite the server picked, from its ServerHello or HelloRetryRequest."""
        if (hello := self.server_hello) is not None:
            return hello.cipher_suite
        if (retry := self.hello_retry_request) is not None:
            return retry.cipher_suite
        return None

    @property
    def selected_version(self) -> ProtocolVersion | None:
        if (hello := self.server_hello) is not None:
            return hello.protocol
        if (retry := self.hello_retry_request) is not None:
            return retry.protocol
        return None


# --- groups ---------------------------------------------------------------------------------------------------

_GROUP_BITS = {GROUP_X25519: 253, GROUP_X448: 448, 0x0029: 256}  # as OpenSSL counts them; curveSM2


def group_bits(code: int) -> int | None:
    if code in _GROUP_BITS:
        return _GROUP_BITS[code]
    info = iana.named_group(code)
    if info is None or info.kind not in ("ecdhe", "ffdhe"):
        return None
    digits = re.search(r"(\d{3,4})", info.name)
    return int(digits.group(1)) if digits else None


def describe_group(code: int) -> str:
    """A group as the facts' ephemeral_key names it: 'ECDH secp256r1 256', 'DH ffdhe2048 2048', 'X25519MLKEM768'."""
    info = iana.named_group(code)
    name = iana.group_name(code)
    bits = group_bits(code)
    if info is not None and info.kind == "ffdhe":
        return f"DH {name} {bits}"
    if info is not None and info.kind == "ecdhe":
        return f"ECDH {name} {bits}" if bits else f"ECDH {name}"
    return name


# --- building a ClientHello -----------------------------------------------------------------------------------


def _u8(data: bytes) -> bytes:
    return bytes([len(data)]) + data


def _u16(data: bytes) -> bytes:
    return struct.pack("!H", len(data)) + data


def _u16_list(values: Sequence[int]) -> bytes:
    return struct.pack(f"!{len(values)}H", *values)


def _ext(ext_type: int, body: bytes) -> bytes:
    return struct.pack("!HH", ext_type, len(body)) + body


def _key_share_entry(group: int) -> bytes:
    """A fresh public key for ``group``: enough for a server to answer with a real TLS 1.3 ServerHello."""
    public: bytes
    if group == GROUP_X25519:
        public = x25519.X25519PrivateKey.generate().public_key().public_bytes_raw()
    elif group == GROUP_X448:
        public = x448.X448PrivateKey.generate().public_key().public_bytes_raw()
    elif group in (GROUP_SECP256R1, GROUP_SECP384R1, GROUP_SECP521R1):
        curve: ec.EllipticCurve = {
            GROUP_SECP256R1: ec.SECP256R1(),
            GROUP_SECP384R1: ec.SECP384R1(),
            GROUP_SECP521R1: ec.SECP521R1(),
        }[group]
        public = (
            ec.generate_private_key(curve)
            .public_key()
            .public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
        )
    else:
        raise ValueError(f"cannot make a key share for group 0x{group:04X}")
    return struct.pack("!H", group) + _u16(public)


def _offer_extensions(
    server_name: str | None,
    groups: Sequence[int] | None,
    ec_point_formats: bool,
    signature_algorithms: Sequence[int] | None,
    alpn: Sequence[str] | None,
) -> bytes:
    extensions = b""
    if server_name:
        name = server_name.encode("idna")
        extensions += _ext(EXT_SERVER_NAME, _u16(b"\x00" + _u16(name)))
    if groups:
        extensions += _ext(EXT_SUPPORTED_GROUPS, _u16(_u16_list(groups)))
    if ec_point_formats:
        extensions += _ext(EXT_EC_POINT_FORMATS, _u8(b"\x00\x01\x02"))  # uncompressed, both compressed forms
    if signature_algorithms:
        extensions += _ext(EXT_SIGNATURE_ALGORITHMS, _u16(_u16_list(signature_algorithms)))
    if alpn:
        extensions += _ext(EXT_ALPN, _u16(b"".join(_u8(p.encode("ascii")) for p in alpn)))
    return extensions


def _version_extensions(
    version: ProtocolVersion,
    supported_versions: Sequence[int] | None,
    key_share_groups: Sequence[int],
    extended_master_secret: bool,
    renegotiation_info: bool,
) -> bytes:
    extensions = b""
    if extended_master_secret and version != ProtocolVersion.SSLv3:
        extensions += _ext(EXT_EXTENDED_MASTER_SECRET, b"")
    if renegotiation_info and version != ProtocolVersion.TLSv1_3:
        extensions += _ext(EXT_RENEGOTIATION_INFO, b"\x00")
    if supported_versions:
        extensions += _ext(EXT_SUPPORTED_VERSIONS, _u8(_u16_list(supported_versions)))
        if 0x0304 in supported_versions:
            extensions += _ext(EXT_PSK_KEY_EXCHANGE_MODES, b"\x01\x01")  # psk_dhe_ke
            shares = b"".join(_key_share_entry(g) for g in key_share_groups)
            extensions += _ext(EXT_KEY_SHARE, _u16(shares))
    return extensions


def build_client_hello(
    version: ProtocolVersion,
    cipher_suites: Sequence[int],
    *,
    server_name: str | None = None,
    supported_versions: Sequence[int] | None = None,
    groups: Sequence[int] | None = DEFAULT_GROUPS,
    signature_algorithms: Sequence[int] | None = None,
    key_share_groups: Sequence[int] = (GROUP_X25519,),
    alpn: Sequence[str] | None = None,
    ec_point_formats: bool = True,
    renegotiation_info: bool = True,
    extended_master_secret: bool = True,
    extra_extensions: Sequence[tuple[int, bytes]] = (),
    pad: bool = True,
) -> bytes:
    """One ClientHello record (or several, for a hello over 16 KiB) offering ``version`` as the highest version.

    TLS 1.3 goes in supported_versions (default: 1.3 only) with legacy_version 1.2 and a real key share for each
    of ``key_share_groups``; older versions go in legacy_version with no supported_versions. ``groups=None``
    and ``signature_algorithms=None`` leave those extensions out (signature_algorithms defaults to ours for TLS
    1.2 and 1.3, and is never sent for older versions, as RFC 5246 asks). ``pad`` adds the RFC 7685 padding
    extension to hellos of 256 to 511 bytes, which some middleboxes and old F5 devices hang on.
    """
    if version not in VERSION_CODES:
        raise ValueError(f"cannot build a ClientHello for {version}")
    if supported_versions is None and version == ProtocolVersion.TLSv1_3:
        supported_versions = (0x0304,)
    legacy_version = min(VERSION_CODES[version], 0x0303)
    if signature_algorithms is None and VERSION_CODES[version] >= 0x0303:
        signature_algorithms = DEFAULT_SIGNATURE_ALGORITHMS

    extensions = _offer_extensions(server_name, groups, ec_point_formats, signature_algorithms, alpn)
    extensions += _version_extensions(
        version, supported_versions, key_share_groups, extended_master_secret, renegotiation_info
    )
    for ext_type, body in extra_extensions:
        extensions += _ext(ext_type, body)

    # TLS 1.3 clients send a 32-byte legacy session id (middlebox compatibility); older hellos send none.
    session_id = os.urandom(32) if supported_versions and 0x0304 in supported_versions else b""

    def body_with(exts: bytes) -> bytes:
        return (
            struct.pack("!H", legacy_version)
            + os.urandom(32)
            + _u8(session_id)
            + _u16(_u16_list(cipher_suites))
            + b"\x01\x00"  # compression: null only
            + (_u16(exts) if exts else b"")
        )

    body = body_with(extensions)
    if pad and 0xFF < len(body) + 4 < 0x200:
        padding = 0x200 - (len(body) + 4)
        padding = padding - 4 if padding >= 5 else 1
        body = body_with(extensions + _ext(EXT_PADDING, bytes(padding)))
    handshake = bytes([HS_CLIENT_HELLO]) + struct.pack("!I", len(body))[1:] + body
    record_version = 0x0300 if version == ProtocolVersion.SSLv3 else 0x0301
    return b"".join(
        struct.pack("!BHH", CONTENT_HANDSHAKE, record_version, len(chunk)) + chunk
        for chunk in (handshake[i : i + MAX_RECORD_PAYLOAD] for i in range(0, len(handshake), MAX_RECORD_PAYLOAD))
    )


# --- parsing --------------------------------------------------------------------------------------------------


class _ParseError(Exception):
    pass


class _Cursor:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise _ParseError(f"truncated: need {n} bytes at {self.pos} of {len(self.data)}")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return int(struct.unpack("!H", self.take(2))[0])

    def u24(self) -> int:
        return int.from_bytes(self.take(3), "big")

    def vec8(self) -> bytes:
        return self.take(self.u8())

    def vec16(self) -> bytes:
        return self.take(self.u16())

    def vec24(self) -> bytes:
        return self.take(self.u24())

    @property
    def left(self) -> int:
        return len(self.data) - self.pos


def _extensions(cursor: _Cursor) -> tuple[Extension, ...]:
    if cursor.left == 0:
        return ()
    block = _Cursor(cursor.vec16())
    found = []
    while block.left:
        ext_type = block.u16()
        found.append(Extension(ext_type, block.vec16()))
    return tuple(found)


def _find(extensions: tuple[Extension, ...], ext_type: int) -> bytes | None:
    return next((e.data for e in extensions if e.type == ext_type), None)


def parse_server_hello(body: bytes) -> ServerHello | HelloRetryRequest:
    cursor = _Cursor(body)
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
            cookie=_Cursor(cookie).vec16() if cookie else None,
            extensions=extensions,
        )
    alpn_data = _find(extensions, EXT_ALPN)
    alpn = None
    if alpn_data:
        protocols = _Cursor(_Cursor(alpn_data).vec16())
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
    chain = _Cursor(_Cursor(body).vec24())
    certificates = []
    while chain.left:
        certificates.append(chain.vec24())
    return Certificate(tuple(certificates))


def parse_server_key_exchange(body: bytes, suite: int) -> ServerKeyExchange:
    """Read the (EC)DH parameters of a ServerKeyExchange; its signature is not checked (nor needed)."""
    info = iana.cipher_suite(suite)
    kx = info.key_exchange if info is not None else "unknown"
    cursor = _Cursor(body)
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


def _der(cursor: _Cursor) -> tuple[int, bytes]:
    tag = cursor.u8()
    length = cursor.u8()
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4:
            raise _ParseError("unsupported DER length")
        length = int.from_bytes(cursor.take(count), "big")
    return tag, cursor.take(length)


def _oid(content: bytes) -> str:
    arcs: list[int] = []
    value = 0
    for byte in content:
        value = value << 7 | byte & 0x7F
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    if not arcs or value:
        raise _ParseError("bad OID")
    first = min(arcs[0] // 40, 2)  # the first subidentifier packs two arcs: 40 * X + Y
    return ".".join(str(a) for a in (first, arcs[0] - 40 * first, *arcs[1:]))


_STRING_CODECS = {0x0C: "utf-8", 0x13: "ascii", 0x16: "ascii", 0x14: "latin-1", 0x1E: "utf-16-be", 0x1C: "utf-32-be"}


def distinguished_name(der: bytes) -> str:
    """RFC 4514 text of a DER Name, as the certificate facts write names; 'der:<hex>' when it does not decode."""
    try:
        outer_tag, outer = _der(_Cursor(der))
        if outer_tag != 0x30:
            raise _ParseError("not a SEQUENCE")
        rdns = []
        names = _Cursor(outer)
        while names.left:
            _, rdn_set = _der(names)
            attributes = []
            members = _Cursor(rdn_set)
            while members.left:
                _, pair = _der(members)
                pair_cursor = _Cursor(pair)
                _, oid = _der(pair_cursor)
                value_tag, value = _der(pair_cursor)
                codec = _STRING_CODECS.get(value_tag, "latin-1")
                attributes.append(x509.NameAttribute(ObjectIdentifier(_oid(oid)), value.decode(codec)))
            rdns.append(x509.RelativeDistinguishedName(attributes))
        return x509.Name(rdns).rfc4514_string()
    except (_ParseError, ValueError, UnicodeDecodeError):
        return f"der:{der.hex()}"


def parse_certificate_request(body: bytes, version: int) -> CertificateRequest:
    cursor = _Cursor(body)
    types = tuple(cursor.vec8())
    sigalgs: tuple[int, ...] = ()
    if version >= 0x0303:
        raw = cursor.vec16()
        sigalgs = tuple(int(struct.unpack("!H", raw[i : i + 2])[0]) for i in range(0, len(raw) - 1, 2))
    authorities = _Cursor(cursor.vec16())
    names = []
    while authorities.left:
        names.append(authorities.vec16())
    return CertificateRequest(
        certificate_types=types,
        signature_algorithms=sigalgs,
        ca_names_der=tuple(names),
        ca_names=tuple(distinguished_name(n) for n in names),
    )


# --- reading a reply ------------------------------------------------------------------------------------------


@dataclass
class _Flight:
    messages: list[ServerMessage] = field(default_factory=list)
    warnings: list[Alert] = field(default_factory=list)
    version: int = 0x0303
    suite: int | None = None


def _closed(exc: OSError) -> Closed:
    reset = isinstance(exc, ConnectionResetError | ConnectionAbortedError | BrokenPipeError) or exc.errno in (
        errno.ECONNRESET,
        errno.EPIPE,
    )
    return Closed(reset=reset, detail=str(exc))


class _Stream:
    """Byte reader over a socket, bounded per read by ``timeout`` and overall by ``deadline``."""

    def __init__(self, sock: socket.socket, timeout: float, deadline: float) -> None:
        self.sock = sock
        self.timeout = timeout
        self.deadline = deadline
        self.buffer = b""
        self.received = 0
        self.started = time.monotonic()

    def fill(self, n: int) -> ReplyEnd | None:
        """Read until ``n`` bytes are buffered; the reason it could not, if any."""
        while len(self.buffer) < n:
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                return TimedOut(time.monotonic() - self.started, self.received)
            self.sock.settimeout(min(self.timeout, remaining))
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                return TimedOut(time.monotonic() - self.started, self.received)
            except OSError as exc:
                return _closed(exc)
            if not chunk:
                return Closed(reset=False, detail="end of stream")
            self.buffer += chunk
            self.received += len(chunk)
            if self.received > _MAX_FLIGHT_BYTES:
                return Malformed(f"more than {_MAX_FLIGHT_BYTES} bytes before the flight ended")
        return None

    def take(self, n: int) -> bytes:
        chunk, self.buffer = self.buffer[:n], self.buffer[n:]
        return chunk


def _handshake_message(flight: _Flight, msg_type: int, body: bytes, until: ReadUntil) -> tuple[bool, ReplyEnd | None]:
    """Record one handshake message; (done, end)."""
    if msg_type == HS_SERVER_HELLO:
        hello = parse_server_hello(body)
        flight.messages.append(hello)
        flight.suite = hello.cipher_suite
        if isinstance(hello, HelloRetryRequest):
            return True, None
        flight.version = hello.version
        # Past a TLS 1.3 ServerHello everything is encrypted.
        return until == "server_hello" or hello.version >= 0x0304, None
    if msg_type == HS_CERTIFICATE:
        flight.messages.append(parse_certificate(body))
    elif msg_type == HS_SERVER_KEY_EXCHANGE and flight.suite is not None:
        flight.messages.append(parse_server_key_exchange(body, flight.suite))
    elif msg_type == HS_CERTIFICATE_REQUEST:
        flight.messages.append(parse_certificate_request(body, flight.version))
    elif msg_type == HS_SERVER_HELLO_DONE:
        flight.messages.append(ServerHelloDone())
        return True, None
    else:
        flight.messages.append(OtherHandshake(msg_type, body))
    if flight.suite is None:
        return True, Malformed(f"handshake message {msg_type} before ServerHello")
    return False, None


def _next_record(stream: _Stream, flight: _Flight) -> tuple[int, bytes] | ReplyEnd:
    if end := stream.fill(5):
        return end
    header = stream.buffer[:5]
    content_type, major, length = header[0], header[1], int(struct.unpack("!H", header[3:5])[0])
    if content_type not in range(CONTENT_CHANGE_CIPHER_SPEC, CONTENT_HEARTBEAT + 1) or major != 3:
        if flight.messages:
            return Malformed(f"bad record header {header.hex(' ')}")
        return NotTls(stream.buffer[:64], ssl2=bool(header[0] & 0x80) and header[2] in (0x00, 0x04))
    if length > MAX_RECORD_PAYLOAD + 2048:
        return Malformed(f"record of {length} bytes")
    if end := stream.fill(5 + length):
        return end
    stream.take(5)
    return content_type, stream.take(length)


def _read_flight(stream: _Stream, flight: _Flight, until: ReadUntil) -> ReplyEnd | None:
    handshake = b""
    while True:
        record = _next_record(stream, flight)
        if not isinstance(record, tuple):
            return record
        content_type, payload = record
        if content_type == CONTENT_ALERT:
            if len(payload) < 2:
                return Malformed("short alert record")
            alert = Alert(payload[0], payload[1])
            if alert.fatal or alert.description == 0:
                return alert
            flight.warnings.append(alert)  # e.g. a warning unrecognized_name before the ServerHello
            continue
        if content_type != CONTENT_HANDSHAKE:
            # ChangeCipherSpec or application data: the plaintext part of the flight is over.
            return None if flight.messages else Malformed(f"record type {content_type} before ServerHello")
        handshake += payload
        # A record may hold several handshake messages, and a message may span several records.
        while len(handshake) >= 4:
            msg_len = int.from_bytes(handshake[1:4], "big")
            if len(handshake) < 4 + msg_len:
                break
            msg_type, body, handshake = handshake[0], handshake[4 : 4 + msg_len], handshake[4 + msg_len :]
            try:
                done, end = _handshake_message(flight, msg_type, body, until)
            except _ParseError as exc:
                return Malformed(f"handshake message {msg_type}: {exc}")
            if done or end is not None:
                return end


def read_reply(sock: socket.socket, timeout: float, *, until: ReadUntil = "server_hello_done") -> ServerReply:
    """Read the server's answer to a ClientHello already sent on ``sock``."""
    started = time.monotonic()
    # Each read waits at most ``timeout``; the whole flight at most three times that (a server that trickles
    # bytes must not hold a probe forever).
    stream = _Stream(sock, timeout, started + 3 * timeout)
    flight = _Flight()
    end = _read_flight(stream, flight, until)
    return ServerReply(
        messages=tuple(flight.messages),
        end=end,
        warnings=tuple(flight.warnings),
        elapsed=time.monotonic() - started,
    )


def send_hello(
    sock: socket.socket, hello: bytes, timeout: float, *, until: ReadUntil = "server_hello_done"
) -> ServerReply:
    """Send ``hello`` on a connected socket and read the reply."""
    started = time.monotonic()
    try:
        sock.settimeout(timeout)
        sock.sendall(hello)
    except TimeoutError:
        return ServerReply(end=TimedOut(time.monotonic() - started, 0), hello_length=len(hello))
    except OSError as exc:
        return ServerReply(end=_closed(exc), hello_length=len(hello))
    reply = read_reply(sock, timeout, until=until)
    return ServerReply(
        messages=reply.messages,
        end=reply.end,
        warnings=reply.warnings,
        hello_length=len(hello),
        elapsed=time.monotonic() - started,
    )


def connect_error(endpoint: Endpoint, exc: Exception) -> ProbeError:
    """The facts' error for a connection that could not be opened (or upgraded by STARTTLS)."""
    where = endpoint.display
    if isinstance(exc, StartTlsError):
        return ProbeError(error_class=ErrorClass.starttls_failed, message=f"{where}: {exc}")
    if isinstance(exc, ConnectionRefusedError):
        return ProbeError(error_class=ErrorClass.refused, message=f"connection to {where} refused")
    if isinstance(exc, TimeoutError):
        return ProbeError(
            error_class=ErrorClass.timeout, message=f"connecting to {where} timed out after {endpoint.timeout:g}s"
        )
    if isinstance(exc, ConnectionResetError):
        return ProbeError(error_class=ErrorClass.reset, message=f"{where} reset the connection")
    return ProbeError(error_class=ErrorClass.unreachable, message=f"cannot connect to {where}: {exc}")


def exchange(endpoint: Endpoint, hello: bytes, *, until: ReadUntil = "server_hello_done") -> ServerReply:
    """Open one connection to ``endpoint``, send ``hello``, read the reply, close. Never raises for the network."""
    started = time.monotonic()
    try:
        sock = endpoint.connect()
    except (OSError, StartTlsError) as exc:
        return ServerReply(
            end=ConnectFailed(connect_error(endpoint, exc)),
            hello_length=len(hello),
            elapsed=time.monotonic() - started,
        )
    with contextlib.closing(sock):
        reply = send_hello(sock, hello, endpoint.timeout, until=until)
    return ServerReply(
        messages=reply.messages,
        end=reply.end,
        warnings=reply.warnings,
        hello_length=len(hello),
        elapsed=time.monotonic() - started,
    )
