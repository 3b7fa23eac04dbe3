"""Turn cryptography's certificates into facts: one certificate, the served chain, the name it is for.

Certificates found on the network are often odd. cryptography parses all extensions of a certificate at once and
raises if any one of them is malformed, so when that happens the extensions are re-read one by one: a broken
extension degrades the field it feeds (null or empty) and every other fact is still reported.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any, TypeVar

import idna
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from scanner.facts import (
    BasicConstraints,
    Certificate,
    DnFields,
    ErrorClass,
    ExtendedKeyUsage,
    HostnameMismatch,
    Observed,
    ProbeError,
    PublicKey,
    observed,
    unobserved,
)
from scanner.probe.pki.paths import CHECKS_CACHED
from scanner.probe.wire import der

SOURCE = "tlsgate"

T = TypeVar("T")
E = TypeVar("E", bound=x509.ExtensionType)

_EKU_NAMES = {
    ExtendedKeyUsageOID.SERVER_AUTH.dotted_string: "serverAuth",
    ExtendedKeyUsageOID.CLIENT_AUTH.dotted_string: "clientAuth",
    ExtendedKeyUsageOID.CODE_SIGNING.dotted_string: "codeSigning",
    ExtendedKeyUsageOID.EMAIL_PROTECTION.dotted_string: "emailProtection",
    ExtendedKeyUsageOID.TIME_STAMPING.dotted_string: "timeStamping",
    ExtendedKeyUsageOID.OCSP_SIGNING.dotted_string: "OCSPSigning",
    ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE.dotted_string: "anyExtendedKeyUsage",
}

# KeyUsage attribute -> RFC 5280 name, in the order of the bit string.
_KEY_USAGE_NAMES = (
    ("digital_signature", "digitalSignature"),
    ("content_commitment", "contentCommitment"),
    ("key_encipherment", "keyEncipherment"),
    ("data_encipherment", "dataEncipherment"),
    ("key_agreement", "keyAgreement"),
    ("key_cert_sign", "keyCertSign"),
    ("crl_sign", "cRLSign"),
)

_DN_ATTRIBUTES = {
    "common_name": NameOID.COMMON_NAME,
    "organization": NameOID.ORGANIZATION_NAME,
    "organizational_unit": NameOID.ORGANIZATIONAL_UNIT_NAME,
    "country": NameOID.COUNTRY_NAME,
    "state": NameOID.STATE_OR_PROVINCE_NAME,
    "locality": NameOID.LOCALITY_NAME,
    "email": NameOID.EMAIL_ADDRESS,
    "serial_number": NameOID.SERIAL_NUMBER,
}

# An extension's parsed value, or None when it is present but cryptography cannot parse it.
Extensions = dict[x509.ObjectIdentifier, x509.ExtensionType | None]


def _safe(read: Callable[[], T], default: Callable[[], T]) -> T:
    """One fact of an odd certificate that cannot be read degrades to ``default()`` instead of losing the rest."""
    try:
        return read()
    except Exception:  # cryptography raises ValueError, TypeError, UnsupportedAlgorithm... on odd input
        return default()


# --- extensions, robust to a malformed one ---------------------------------------------------------------------


def _raw_extensions(cert: x509.Certificate) -> list[tuple[x509.ObjectIdentifier, bytes]]:
    """(OID, extnValue contents) of each extension, read from the DER of the TBSCertificate."""
    _, tbs, _ = der.element(cert.tbs_certificate_bytes)
    for tag, contents in der.children(tbs):
        if tag == 0xA3:  # [3] EXPLICIT Extensions
            _, sequence, _ = der.element(contents)
            found = []
            for _, extension in der.children(sequence):
                fields = der.children(extension)
                value = next((c for t, c in fields if t == der.OCTET_STRING), None)  # extnValue
                if fields and fields[0][0] == der.OID and value is not None:
                    found.append((x509.ObjectIdentifier(der.oid(fields[0][1])), value))
            return found
    return []


@cache
def _scratch_key() -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.generate()


def _parse_one(oid: x509.ObjectIdentifier, value: bytes) -> x509.ExtensionType | None:
    """Parse one extension on its own, by wrapping it in a throwaway certificate that holds nothing else."""
    key = _scratch_key()
    name = x509.Name([])
    epoch = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
    try:
        scratch = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(1)
            .not_valid_before(epoch)
            .not_valid_after(epoch + dt.timedelta(days=1))
            .add_extension(x509.UnrecognizedExtension(oid, value), critical=False)
            .sign(key, None)
        )
        return scratch.extensions.get_extension_for_oid(oid).value
    except Exception:  # this extension is malformed or of an unsupported shape: report it as unreadable
        return None


def _extensions(cert: x509.Certificate) -> Extensions:
    """Every extension by OID; one that cannot be parsed maps to None (present, unreadable)."""
    with contextlib.suppress(Exception):  # one bad extension (or a duplicate): read them one by one below
        return {ext.oid: ext.value for ext in cert.extensions}
    found: Extensions = {}
    try:
        raw = _raw_extensions(cert)
    except Exception:  # the extensions field itself is unreadable: no extension facts at all
        return found
    for oid, value in raw:
        if oid in found:  # RFC 5280 4.2 forbids duplicates: which one counts is ambiguous, so neither does
            found[oid] = None
        else:
            found[oid] = _parse_one(oid, value)
    return found


def _get(extensions: Extensions, kind: type[E]) -> E | None:
    value = extensions.get(kind.oid)
    return value if isinstance(value, kind) else None


# --- one certificate --------------------------------------------------------------------------------------------


def _public_key(cert: x509.Certificate) -> PublicKey:
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        return PublicKey(type="RSA", size=key.key_size)
    if isinstance(key, ec.EllipticCurvePublicKey):
        return PublicKey(type="EC", size=key.curve.key_size, curve=key.curve.name)
    if isinstance(key, dsa.DSAPublicKey):
        return PublicKey(type="DSA", size=key.key_size)
    if isinstance(key, ed25519.Ed25519PublicKey):
        return PublicKey(type="Ed25519", size=256, curve="Ed25519")
    if isinstance(key, ed448.Ed448PublicKey):
        return PublicKey(type="Ed448", size=456, curve="Ed448")
    return PublicKey(type="unknown", size=None)


def _signature_hash(cert: x509.Certificate) -> str | None:
    try:
        algorithm = cert.signature_hash_algorithm
    except UnsupportedAlgorithm:
        return None
    return algorithm.name if algorithm is not None else None


def _text(value: Any) -> str:
    return value if isinstance(value, str) else bytes(value).hex()


def _dn_fields(name: x509.Name) -> DnFields:
    values: dict[str, str | None] = {}
    for field, oid in _DN_ATTRIBUTES.items():
        attributes = name.get_attributes_for_oid(oid)
        values[field] = _text(attributes[0].value) if attributes else None
    return DnFields(**values)


def _sans(extensions: Extensions) -> list[str]:
    ext = _get(extensions, x509.SubjectAlternativeName)
    if ext is None:
        return []
    names = [f"DNS:{n}" for n in ext.get_values_for_type(x509.DNSName)]
    names += [f"IP:{ip}" for ip in ext.get_values_for_type(x509.IPAddress)]
    return names


def _key_usage(extensions: Extensions) -> list[str] | None:
    ext = _get(extensions, x509.KeyUsage)
    if ext is None:
        return None
    names = [name for attribute, name in _KEY_USAGE_NAMES if getattr(ext, attribute)]
    # cryptography raises for encipher_only/decipher_only unless key_agreement is set (RFC 5280 4.2.1.3).
    if ext.key_agreement:
        names += [name for attribute, name in (("encipher_only", "encipherOnly"), ("decipher_only", "decipherOnly"))
                  if getattr(ext, attribute)]  # fmt: skip
    return names


def _eku(extensions: Extensions) -> list[ExtendedKeyUsage] | None:
    ext = _get(extensions, x509.ExtendedKeyUsage)
    if ext is None:
        return None
    return [
        ExtendedKeyUsage(name=_EKU_NAMES.get(oid.dotted_string, oid.dotted_string), oid=oid.dotted_string)
        for oid in ext
    ]


def _basic_constraints(extensions: Extensions) -> BasicConstraints | None:
    ext = _get(extensions, x509.BasicConstraints)
    return None if ext is None else BasicConstraints(ca=ext.ca, path_length=ext.path_length)


def _uris(names: Any) -> list[str]:
    return [n.value for n in names or () if isinstance(n, x509.UniformResourceIdentifier)]


def _aia(extensions: Extensions, method: x509.ObjectIdentifier) -> list[str]:
    ext = _get(extensions, x509.AuthorityInformationAccess)
    if ext is None:
        return []
    return _uris(d.access_location for d in ext if d.access_method == method)


def _crl_urls(extensions: Extensions) -> list[str]:
    ext = _get(extensions, x509.CRLDistributionPoints)
    return [] if ext is None else [url for point in ext for url in _uris(point.full_name)]


def _policies(extensions: Extensions) -> list[str]:
    ext = _get(extensions, x509.CertificatePolicies)
    return [] if ext is None else [p.policy_identifier.dotted_string for p in ext]


def _sct_count(extensions: Extensions) -> int | None:
    ext = _get(extensions, x509.PrecertificateSignedCertificateTimestamps)
    return None if ext is None else len(ext)


def _must_staple(extensions: Extensions) -> bool:
    ext = _get(extensions, x509.TLSFeature)
    return ext is not None and x509.TLSFeatureType.status_request in ext


def _legacy_verify(cert: x509.Certificate, issuer: x509.Certificate) -> None:
    """Check a signature cryptography's verifier refuses to look at (SHA-1, for one) with the key's own primitive."""
    key = issuer.public_key()
    signature, data = cert.signature, cert.tbs_certificate_bytes
    parameters = cert.signature_algorithm_parameters
    if isinstance(key, rsa.RSAPublicKey) and isinstance(parameters, padding.PKCS1v15 | padding.PSS):
        algorithm = cert.signature_hash_algorithm
        if algorithm is None:
            raise InvalidSignature
        key.verify(signature, data, parameters, algorithm)
    elif isinstance(key, ec.EllipticCurvePublicKey) and isinstance(parameters, ec.ECDSA):
        key.verify(signature, data, parameters)
    elif isinstance(key, dsa.DSAPublicKey) and cert.signature_hash_algorithm is not None:
        key.verify(signature, data, cert.signature_hash_algorithm)
    else:
        raise InvalidSignature


@lru_cache(maxsize=CHECKS_CACHED)  # see paths.CHECKS_CACHED
def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """``cert`` names ``issuer`` as its issuer and ``issuer``'s key verifies its signature.

    cryptography's ``verify_directly_issued_by`` refuses legacy signature hashes such as SHA-1 ("unsupported
    signature algorithm") rather than checking them; a SHA-1 chain is still an ordered chain, so those are checked
    directly with the issuer's key.
    """
    try:
        if cert.issuer != issuer.subject:
            return False
        try:
            cert.verify_directly_issued_by(issuer)
        except InvalidSignature:
            return False
        except (ValueError, TypeError, UnsupportedAlgorithm):
            _legacy_verify(cert, issuer)
    except Exception:  # InvalidSignature, or a key/algorithm that cannot verify anything
        return False
    return True


def _utc(moment: dt.datetime | None) -> dt.datetime:
    if moment is None:
        return dt.datetime.now(dt.UTC)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


def _days(delta: dt.timedelta) -> float:
    return round(delta.total_seconds() / 86400, 2)


def _name_facts(read: Callable[[], x509.Name]) -> tuple[x509.Name | None, str, DnFields]:
    """A distinguished name, its RFC 4514 text and its common fields; an unreadable name is reported as such."""
    try:
        name = read()
    except Exception:  # a malformed Name is parsed lazily and raises on first access
        return None, "(unreadable name)", DnFields()
    return name, _safe(name.rfc4514_string, lambda: "(unreadable name)"), _safe(lambda: _dn_fields(name), DnFields)


def certificate_facts(cert: x509.Certificate, now: dt.datetime | None = None) -> Certificate:
    """The facts of one certificate; ``days_remaining`` counts from ``now`` (default: the current time, UTC).

    Never raises for an odd certificate: a field that cannot be read is null or empty, the rest is reported.
    """
    not_before, not_after = cert.not_valid_before_utc, cert.not_valid_after_utc
    oid = cert.signature_algorithm_oid
    extensions = _extensions(cert)
    subject, subject_text, subject_fields = _name_facts(lambda: cert.subject)
    issuer, issuer_text, issuer_fields = _name_facts(lambda: cert.issuer)
    return Certificate(
        subject=subject_text,
        issuer=issuer_text,
        subject_fields=subject_fields,
        issuer_fields=issuer_fields,
        serial=format(cert.serial_number, "x"),
        sha256=cert.fingerprint(hashes.SHA256()).hex(),
        public_key=_safe(lambda: _public_key(cert), lambda: PublicKey(type="unknown", size=None)),
        signature_algorithm=getattr(oid, "_name", None) or oid.dotted_string,
        signature_hash=_signature_hash(cert),
        not_before=not_before,
        not_after=not_after,
        validity_days=_days(not_after - not_before),
        days_remaining=_days(not_after - _utc(now)),
        subject_alt_names=_safe(lambda: _sans(extensions), list),
        key_usage=_safe(lambda: _key_usage(extensions), lambda: None),
        extended_key_usage=_safe(lambda: _eku(extensions), lambda: None),
        basic_constraints=_safe(lambda: _basic_constraints(extensions), lambda: None),
        ocsp_urls=_safe(lambda: _aia(extensions, AuthorityInformationAccessOID.OCSP), list),
        ca_issuer_urls=_safe(lambda: _aia(extensions, AuthorityInformationAccessOID.CA_ISSUERS), list),
        crl_urls=_safe(lambda: _crl_urls(extensions), list),
        policies=_safe(lambda: _policies(extensions), list),
        sct_count=_safe(lambda: _sct_count(extensions), lambda: None),
        must_staple=_safe(lambda: _must_staple(extensions), lambda: False),
        self_signed=subject is not None and subject == issuer and _issued_by(cert, cert),
    )


# --- the name the certificate is for ----------------------------------------------------------------------------


def _dns_form(name: str) -> str | None:
    """A DNS name as lower-case A-labels without the trailing dot; None when it cannot be one."""
    name = name.strip().removesuffix(".")
    if not name:
        return None
    if not name.isascii():
        try:
            name = idna.encode(name, uts46=True).decode("ascii")
        except (idna.IDNAError, UnicodeError):
            return None
    labels = name.lower().split(".")
    return None if any(not label for label in labels) else ".".join(labels)


def _ip_form(name: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    literal = name.strip()
    if literal.startswith("[") and literal.endswith("]"):
        literal = literal[1:-1]
    try:
        return ipaddress.ip_address(literal.split("%", 1)[0])  # an IPv6 zone names our interface, not the peer
    except ValueError:
        return None


def _dns_id_matches(presented: str, reference: str) -> bool:
    """RFC 9525 6.3: exact label match, or ``*`` as the whole left-most label standing for exactly one label."""
    pattern = _dns_form(presented)
    if pattern is None:
        return False
    if pattern == reference:
        return True
    labels = pattern.split(".")
    if labels[0] != "*" or "*" in ".".join(labels[1:]):
        return False
    # No wildcard over a public-suffix-like name: "*.com" would match every .com host.
    if len(labels) < 3:
        return False
    head, _, rest = reference.partition(".")
    return bool(head) and rest == ".".join(labels[1:])


@dataclass(frozen=True)
class NameCheck:
    """The leaf against the target name: whether it matches, why not, and whether its common name alone would."""

    match: Observed[bool]
    mismatch: HostnameMismatch | None
    cn_only: Observed[bool]


def hostname_matches(cert: x509.Certificate, name: str) -> bool:
    """Whether ``cert`` is for ``name`` (RFC 9525 server identity), by its subjectAltName only.

    DNS names are compared case-insensitively as IDNA A-labels, a trailing dot ignored; a wildcard is honoured only
    as the complete left-most label of a name of three labels or more, and stands for exactly one label. An IP
    address (v4 or v6, brackets and zone allowed) matches only iPAddress SAN entries, compared as addresses.

    The subject common name is never consulted, not even when there is no subjectAltName: RFC 9525 dropped the
    CN-ID fallback of RFC 6125 section 6.4.4, RFC 9110 4.3.4 forbids it for HTTPS, the CA/B Baseline Requirements
    make the subjectAltName mandatory, and browsers (Chrome 58, Firefox 48), Go and cryptography ignore the CN.
    :func:`common_name_matches` tells whether the legacy fallback would have matched.
    """
    return _mismatch(cert, name) is None


def _mismatch(cert: x509.Certificate, name: str) -> HostnameMismatch | None:
    if "*" in name:
        return "no_matching_name"  # a reference identifier is never a pattern
    extensions = _extensions(cert)
    san = _get(extensions, x509.SubjectAlternativeName)
    if san is None:
        present = x509.SubjectAlternativeName.oid in extensions
        return "unreadable_subject_alt_name" if present else "no_subject_alt_name"
    address = _ip_form(name)
    if address is not None:
        ips = san.get_values_for_type(x509.IPAddress)
        matched = any(ip == address for ip in ips if isinstance(ip, ipaddress.IPv4Address | ipaddress.IPv6Address))
    else:
        reference = _dns_form(name)
        matched = reference is not None and any(
            _dns_id_matches(p, reference) for p in san.get_values_for_type(x509.DNSName)
        )
    return None if matched else "no_matching_name"


def common_name_matches(cert: x509.Certificate, name: str) -> bool | None:
    """Whether the subject common name alone matches ``name`` as a DNS-ID would, for a leaf without any
    subjectAltName extension (the legacy CN-ID fallback, RFC 6125 6.4.4); None when the leaf has one, since no
    client, legacy or not, consults the CN then. An IP address never matches a CN."""
    if x509.SubjectAlternativeName.oid in _extensions(cert):
        return None
    reference = _dns_form(name) if "*" not in name and _ip_form(name) is None else None
    if reference is None:
        return False
    names: list[str] = _safe(
        lambda: [_text(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)], list
    )
    return any(_dns_id_matches(n, reference) for n in names)


def name_check(cert: x509.Certificate, name: str | None) -> NameCheck:
    """The name facts of the leaf ``cert`` for the target ``name``; without a name, not_probed (not_applicable)."""
    if name is None:
        missing = _not_applicable("no name to check the certificate for")
        return NameCheck(missing, None, missing)
    mismatch = _mismatch(cert, name)
    cn = common_name_matches(cert, name)
    cn_only = (
        observed(cn, SOURCE)
        if cn is not None
        else _not_applicable("the leaf has a subjectAltName extension: no client consults its common name")
    )
    return NameCheck(observed(mismatch is None, SOURCE), mismatch, cn_only)


def _not_applicable(message: str) -> Observed[bool]:
    return Observed[bool](
        status="not_probed", error=ProbeError(error_class=ErrorClass.not_applicable, message=message), source=SOURCE
    )


# --- the served chain -------------------------------------------------------------------------------------------


def chain_order_valid(chain: list[x509.Certificate]) -> bool:
    """Whether each certificate is issued by the next one (issuer name and signature); one certificate is ordered."""
    return all(_issued_by(cert, issuer) for cert, issuer in itertools.pairwise(chain))


def chain_facts(
    chain: list[x509.Certificate], name: str | None, now: dt.datetime | None = None
) -> tuple[list[Certificate], Observed[bool], Observed[bool]]:
    """Facts of the served chain (leaf first): each certificate's facts, whether the leaf matches ``name``, and
    whether the chain is in order. Without a name the match is not_probed with a not_applicable reason."""
    facts = [certificate_facts(cert, now) for cert in chain]
    if not chain:
        missing = unobserved(ErrorClass.probe_failed, "the server sent no certificate", SOURCE)
        return facts, missing, missing
    return facts, name_check(chain[0], name).match, observed(chain_order_valid(chain), SOURCE)
