"""TLS code points: versions, record and handshake types, extensions, groups, alerts; and how groups are named.

Shared by the ClientHello builder, the reply parser and the record reader, so that each number has one home.
"""

from __future__ import annotations

import re

from scanner.facts import ProtocolVersion
from scanner.probe import iana

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
HS_FINISHED = 20

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
EXT_CERTIFICATE_AUTHORITIES = 0x002F
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
