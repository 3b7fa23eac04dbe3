"""The one DER reader: elements, object identifiers, and distinguished names rendered as RFC 4514 text.

cryptography reads whole certificates, CRLs and OCSP responses; this is for the pieces it has no loader for: a
bare ``Name`` (a CertificateRequest's CA names), one extension's raw value, the first element of a blob.

Names render the way the certificate facts render a certificate's subject and issuer (cryptography's
``Name.rfc4514_string()``): each attribute value is decoded here and handed to cryptography, which escapes and
joins. cryptography cannot load a bare ``Name`` (wrapping it in a CRL to borrow its parser was tried: it refuses
T61String holding Latin-1 and PrintableString outside its alphabet, which tlsgate has always read). A value that is no
character string is written as ``oid=#<hex of its DER>`` (RFC 4514, section 2.4). (cryptography itself writes the
one non-string attribute it reads, a BIT STRING x500UniqueIdentifier, as ``#<hex of the contents>``.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.x509.oid import ObjectIdentifier

from scanner.probe.wire.cursor import Cursor, ParseError

SEQUENCE, SET, OID, OCTET_STRING = 0x30, 0x31, 0x06, 0x04

# Character strings in names: UTF8String, Numeric, Printable, T61 (read as Latin-1), IA5, Visible, Universal, BMP.
_STRING_CODECS = {
    0x0C: "utf-8",
    0x12: "ascii",
    0x13: "ascii",
    0x14: "latin-1",
    0x16: "ascii",
    0x1A: "ascii",
    0x1C: "utf-32-be",
    0x1E: "utf-16-be",
}


def element(data: bytes, offset: int = 0) -> tuple[int, bytes, int]:
    """The DER element at ``offset``: (tag, contents, offset just past it)."""
    cursor = Cursor(data)
    cursor.pos = offset
    tag = cursor.u8()
    length = cursor.u8()
    if length & 0x80:
        count = length & 0x7F
        if not 1 <= count <= 4:
            raise ParseError("unsupported DER length")
        length = cursor.uint(count)
    contents = cursor.take(length)
    return tag, contents, cursor.pos


def children(data: bytes) -> list[tuple[int, bytes]]:
    """(tag, contents) of each element of a concatenation, e.g. the contents of a SEQUENCE."""
    found, offset = [], 0
    while offset < len(data):
        tag, contents, offset = element(data, offset)
        found.append((tag, contents))
    return found


def first_element(data: bytes) -> bytes:
    """The whole encoding of the first element of ``data`` (what follows it is left out)."""
    return data[: element(data)[2]]


def oid(contents: bytes) -> str:
    """Dotted text of an OBJECT IDENTIFIER's contents."""
    arcs: list[int] = []
    value = 0
    for byte in contents:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    if not arcs or contents[-1] & 0x80:
        raise ParseError("malformed OID")
    first = min(arcs[0] // 40, 2)  # the first subidentifier packs two arcs: 40 * X + Y
    return ".".join(str(arc) for arc in (first, arcs[0] - 40 * first, *arcs[1:]))


@dataclass(frozen=True)
class DistinguishedName:
    text: str  # RFC 4514
    name: x509.Name | None  # None when an attribute could only be written as #hex


def _attribute(member: bytes) -> tuple[x509.NameAttribute[Any] | None, str]:
    """One AttributeTypeAndValue: cryptography's attribute (None when it cannot hold the value) and its text."""
    seq_tag, pair, _ = element(member)
    if seq_tag != SEQUENCE:
        raise ParseError("an attribute is not a SEQUENCE")
    oid_tag, oid_contents, value_start = element(pair)
    if oid_tag != OID:
        raise ParseError("an attribute type is not an OID")
    value_tag, value, value_end = element(pair, value_start)
    dotted = ObjectIdentifier(oid(oid_contents))
    try:
        attribute = x509.NameAttribute(dotted, value.decode(_STRING_CODECS[value_tag]))
    except (KeyError, UnicodeDecodeError, ValueError):
        return None, f"{dotted.dotted_string}=#{pair[value_start:value_end].hex()}"
    return attribute, attribute.rfc4514_string()


def distinguished_name(der: bytes) -> DistinguishedName:
    """A DER ``Name`` as RFC 4514 text (most specific RDN first), and as cryptography's Name when it can hold it.

    Raises ``ParseError`` when the DER is not a Name at all.
    """
    tag, contents, _ = element(der)
    if tag != SEQUENCE:
        raise ParseError("a distinguished name is not a SEQUENCE")
    rdns: list[x509.RelativeDistinguishedName] = []
    parts: list[str] = []
    exact = True
    for set_tag, members in children(contents):
        if set_tag != SET:
            raise ParseError("a relative distinguished name is not a SET")
        attributes: list[x509.NameAttribute[Any]] = []
        texts: list[str] = []
        offset = 0
        while offset < len(members):
            _, _, next_offset = element(members, offset)
            attribute, text = _attribute(members[offset:next_offset])
            offset = next_offset
            texts.append(text)
            if attribute is None:
                exact = False
            else:
                attributes.append(attribute)
        if attributes and len(attributes) == len(texts):
            rdns.append(x509.RelativeDistinguishedName(attributes))
        parts.append("+".join(texts))
    return DistinguishedName(",".join(reversed(parts)), x509.Name(rdns) if exact else None)


def describe_name(der: bytes) -> str:
    """RFC 4514 text of a DER Name; ``der:<hex>`` when it is not a Name at all."""
    try:
        return distinguished_name(der).text
    except ParseError:
        return f"der:{der.hex()}"
