"""Build raw TLS ClientHello messages and read the first record of the reply.

The preflight uses this to tell "speaks TLS" from "speaks something else" with one connection and one
bounded read, before any heavier probing.
"""

from __future__ import annotations

import os
import struct

# A broad offer: TLS 1.3 suites, ECDHE/DHE/RSA with AES-GCM, ChaCha20, AES-CBC, 3DES; enough that any
# TLS server from the last twenty years picks one or answers with an alert.
DEFAULT_SUITES: tuple[int, ...] = (
    0x1301, 0x1302, 0x1303,
    0xC02B, 0xC02F, 0xC02C, 0xC030, 0xCCA9, 0xCCA8, 0xC009, 0xC013, 0xC00A, 0xC014,
    0x009E, 0x009F, 0xCCAA, 0x0033, 0x0039,
    0x009C, 0x009D, 0x002F, 0x0035, 0x000A, 0x003C, 0x003D, 0xC023, 0xC027, 0xC024, 0xC028,
)  # fmt: skip
_GROUPS = (
    0x001D,
    0x0017,
    0x0018,
    0x0019,
    0x001E,
    0x0100,
    0x0101,
)  # x25519 P-256 P-384 P-521 x448 ffdhe2048/3072
_SIGALGS = (
    0x0403,
    0x0503,
    0x0603,
    0x0804,
    0x0805,
    0x0806,
    0x0401,
    0x0501,
    0x0601,
    0x0807,
    0x0808,
    0x0201,
    0x0203,
)
_VERSIONS = (0x0304, 0x0303, 0x0302, 0x0301)

RECORD_ALERT = 0x15
RECORD_HANDSHAKE = 0x16


def _ext(ext_type: int, body: bytes) -> bytes:
    return struct.pack("!HH", ext_type, len(body)) + body


def _u16_list(values: tuple[int, ...]) -> bytes:
    return b"".join(struct.pack("!H", v) for v in values)


def build_client_hello(server_name: str | None, suites: tuple[int, ...] = DEFAULT_SUITES) -> bytes:
    """A TLS 1.2-framed ClientHello that also offers TLS 1.3 (with no key share, so a 1.3 server retries)."""
    extensions = b""
    if server_name:
        name = server_name.encode("idna")
        entry = b"\x00" + struct.pack("!H", len(name)) + name
        extensions += _ext(0x0000, struct.pack("!H", len(entry)) + entry)
    groups = _u16_list(_GROUPS)
    extensions += _ext(0x000A, struct.pack("!H", len(groups)) + groups)
    extensions += _ext(0x000B, b"\x01\x00")  # ec_point_formats: uncompressed
    sigalgs = _u16_list(_SIGALGS)
    extensions += _ext(0x000D, struct.pack("!H", len(sigalgs)) + sigalgs)
    extensions += _ext(0xFF01, b"\x00")  # renegotiation_info, empty
    versions = _u16_list(_VERSIONS)
    extensions += _ext(0x002B, bytes([len(versions)]) + versions)
    extensions += _ext(0x0033, b"\x00\x00")  # key_share with no shares: a TLS 1.3 server sends HelloRetryRequest
    cipher_bytes = _u16_list(suites)
    session_id = os.urandom(32)
    body = (
        b"\x03\x03"
        + os.urandom(32)
        + bytes([len(session_id)])
        + session_id
        + struct.pack("!H", len(cipher_bytes))
        + cipher_bytes
        + b"\x01\x00"  # compression: null only
        + struct.pack("!H", len(extensions))
        + extensions
    )
    handshake = b"\x01" + struct.pack("!I", len(body))[1:] + body
    return struct.pack("!BHH", RECORD_HANDSHAKE, 0x0301, len(handshake)) + handshake


def looks_like_tls(reply: bytes) -> bool:
    """True when the first bytes of a reply are a TLS record or an SSL 2.0 server message."""
    if len(reply) >= 2 and reply[0] in (RECORD_ALERT, RECORD_HANDSHAKE) and reply[1] == 0x03:
        return True
    # SSL 2.0: two-byte header with the high bit set, then SERVER-HELLO (4) or ERROR (0).
    return len(reply) >= 3 and reply[0] & 0x80 != 0 and reply[2] in (0x00, 0x04)


def describe_reply(reply: bytes) -> str:
    """A short, printable description of a non-TLS reply for an error message."""
    text = reply[:40]
    if all(32 <= b < 127 or b in (9, 10, 13) for b in text):
        first_line = text.decode("ascii").splitlines()[0] if text.strip() else ""
        return f"plain text {first_line!r}"
    return f"bytes {text[:8].hex(' ')}"
