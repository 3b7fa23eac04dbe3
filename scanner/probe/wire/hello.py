"""Building a ClientHello: any version, any suites, groups, signature schemes and extensions a probe offers."""

from __future__ import annotations

import os
import struct
from collections.abc import Sequence

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, x448, x25519

from scanner.facts import ProtocolVersion
from scanner.probe.wire.codes import (
    CONTENT_HANDSHAKE,
    DEFAULT_GROUPS,
    DEFAULT_SIGNATURE_ALGORITHMS,
    EXT_ALPN,
    EXT_EC_POINT_FORMATS,
    EXT_EXTENDED_MASTER_SECRET,
    EXT_KEY_SHARE,
    EXT_PADDING,
    EXT_PSK_KEY_EXCHANGE_MODES,
    EXT_RENEGOTIATION_INFO,
    EXT_SERVER_NAME,
    EXT_SIGNATURE_ALGORITHMS,
    EXT_SUPPORTED_GROUPS,
    EXT_SUPPORTED_VERSIONS,
    GROUP_SECP256R1,
    GROUP_SECP384R1,
    GROUP_SECP521R1,
    GROUP_X448,
    GROUP_X25519,
    HS_CLIENT_HELLO,
    MAX_RECORD_PAYLOAD,
    VERSION_CODES,
)


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
