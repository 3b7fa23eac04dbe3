"""Turn cryptography's certificates into facts."""

from __future__ import annotations

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from scanner.facts import Certificate, ExtendedKeyUsage, PublicKey

_EKU_NAMES = {
    ExtendedKeyUsageOID.SERVER_AUTH.dotted_string: "serverAuth",
    ExtendedKeyUsageOID.CLIENT_AUTH.dotted_string: "clientAuth",
    ExtendedKeyUsageOID.CODE_SIGNING.dotted_string: "codeSigning",
    ExtendedKeyUsageOID.EMAIL_PROTECTION.dotted_string: "emailProtection",
    ExtendedKeyUsageOID.TIME_STAMPING.dotted_string: "timeStamping",
    ExtendedKeyUsageOID.OCSP_SIGNING.dotted_string: "OCSPSigning",
    ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE.dotted_string: "anyExtendedKeyUsage",
}


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


def _sans(cert: x509.Certificate) -> list[str]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    names = [f"DNS:{n}" for n in ext.get_values_for_type(x509.DNSName)]
    names += [f"IP:{ip}" for ip in ext.get_values_for_type(x509.IPAddress)]
    return names


def _eku(cert: x509.Certificate) -> list[ExtendedKeyUsage] | None:
    try:
        ext = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return None
    return [
        ExtendedKeyUsage(name=_EKU_NAMES.get(oid.dotted_string, oid.dotted_string), oid=oid.dotted_string)
        for oid in ext
    ]


def certificate_facts(cert: x509.Certificate) -> Certificate:
    not_before, not_after = cert.not_valid_before_utc, cert.not_valid_after_utc
    oid = cert.signature_algorithm_oid
    return Certificate(
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        serial=format(cert.serial_number, "x"),
        sha256=cert.fingerprint(hashes.SHA256()).hex(),
        public_key=_public_key(cert),
        signature_algorithm=getattr(oid, "_name", None) or oid.dotted_string,
        signature_hash=_signature_hash(cert),
        not_before=not_before,
        not_after=not_after,
        validity_days=round((not_after - not_before).total_seconds() / 86400, 2),
        subject_alt_names=_sans(cert),
        extended_key_usage=_eku(cert),
        self_signed=cert.subject == cert.issuer,
    )
