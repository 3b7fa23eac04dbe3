"""The TLS 1.3 key schedule, as far as reading a server's encrypted handshake needs it (RFC 8446, section 7).

Given the server handshake traffic secret (from OpenSSL's key log of our own connection), the server's
EncryptedExtensions .. Finished decrypt, so that a TLS 1.3 CertificateRequest can be read like a TLS 1.2 one.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESCCM, AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

from scanner.probe.wire.codes import CONTENT_APPLICATION_DATA, CONTENT_HANDSHAKE, HS_FINISHED
from scanner.probe.wire.cursor import ParseError
from scanner.probe.wire.messages import handshake_messages
from scanner.probe.wire.records import Record

# TLS 1.3 suites: (AEAD, key length, hash).
_TLS13_SUITES: dict[int, tuple[str, int, hashes.HashAlgorithm]] = {
    0x1301: ("aes-gcm", 16, hashes.SHA256()),
    0x1302: ("aes-gcm", 32, hashes.SHA384()),
    0x1303: ("chacha20", 32, hashes.SHA256()),
    0x1304: ("aes-ccm", 16, hashes.SHA256()),
    0x1305: ("aes-ccm8", 16, hashes.SHA256()),
}


def hkdf_expand_label(secret: bytes, label: str, length: int, hash_algorithm: hashes.HashAlgorithm) -> bytes:
    full = b"tls13 " + label.encode()
    info = length.to_bytes(2, "big") + bytes([len(full)]) + full + b"\x00"
    return HKDFExpand(algorithm=hash_algorithm, length=length, info=info).derive(secret)


def server_handshake_secret(keylog: Path) -> bytes:
    """SERVER_HANDSHAKE_TRAFFIC_SECRET from an NSS-format key log (what OpenSSL writes for one connection)."""
    try:
        lines = keylog.read_text().splitlines()
    except OSError as exc:
        raise ParseError(f"no TLS 1.3 key log: {exc.strerror}") from None
    for line in lines:
        fields = line.split()
        if len(fields) == 3 and fields[0] == "SERVER_HANDSHAKE_TRAFFIC_SECRET":
            return bytes.fromhex(fields[2])
    raise ParseError("OpenSSL logged no server handshake secret")


def decrypt_server_handshake(records: Sequence[Record], suite: int, secret: bytes) -> bytes:
    """The server's encrypted handshake messages (EncryptedExtensions .. Finished), decrypted."""
    if suite not in _TLS13_SUITES:
        raise ParseError(f"TLS 1.3 cipher suite 0x{suite:04X} is not one this probe can decrypt")
    aead_name, key_length, hash_algorithm = _TLS13_SUITES[suite]
    key = hkdf_expand_label(secret, "key", key_length, hash_algorithm)
    iv = hkdf_expand_label(secret, "iv", 12, hash_algorithm)
    aead: AESGCM | ChaCha20Poly1305 | AESCCM
    if aead_name == "aes-gcm":
        aead = AESGCM(key)
    elif aead_name == "chacha20":
        aead = ChaCha20Poly1305(key)
    else:
        aead = AESCCM(key, tag_length=8 if aead_name == "aes-ccm8" else 16)
    plaintext = bytearray()
    encrypted = [record for record in records if record.type == CONTENT_APPLICATION_DATA]
    for sequence, record in enumerate(encrypted):
        nonce = bytes(a ^ b for a, b in zip(iv, sequence.to_bytes(12, "big"), strict=True))
        try:
            inner = aead.decrypt(nonce, record.payload, record.header).rstrip(b"\x00")
        except (InvalidTag, ValueError):
            raise ParseError(f"encrypted handshake record {sequence} does not decrypt") from None
        if not inner or inner[-1] != CONTENT_HANDSHAKE:
            continue
        plaintext += inner[:-1]
        if any(kind == HS_FINISHED for kind, _ in handshake_messages(bytes(plaintext))):
            break
    return bytes(plaintext)
