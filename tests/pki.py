"""A test PKI built with cryptography: roots, intermediates and leaves with whatever defect a test needs."""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PEM = serialization.Encoding.PEM
NOW = dt.datetime.now(dt.UTC)


def new_key(kind: str = "p256") -> Any:
    if kind.startswith("rsa"):
        return rsa.generate_private_key(public_exponent=65537, key_size=int(kind[3:]))
    if kind == "p256":
        return ec.generate_private_key(ec.SECP256R1())
    if kind == "p384":
        return ec.generate_private_key(ec.SECP384R1())
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    raise ValueError(kind)


def name(common_name: str, organization: str | None = "tlsgate tests", country: str | None = None) -> x509.Name:
    """C, O, CN in that order; ``organization=None`` leaves O out."""
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        attributes.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    if country:
        attributes.insert(0, x509.NameAttribute(NameOID.COUNTRY_NAME, country))
    return x509.Name(attributes)


@dataclass
class Issued:
    cert: x509.Certificate
    key: Any
    issuer: Issued | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(PEM)

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())

    @property
    def sha256(self) -> str:
        return self.cert.fingerprint(hashes.SHA256()).hex()

    def write(self, directory: Path, stem: str, *, chain: list[Issued] | None = None) -> tuple[Path, Path]:
        """Write ``stem.pem`` (this certificate, then ``chain``) and ``stem-key.pem``; return both paths."""
        directory.mkdir(parents=True, exist_ok=True)
        cert_path, key_path = directory / f"{stem}.pem", directory / f"{stem}-key.pem"
        cert_path.write_bytes(self.pem + b"".join(c.pem for c in chain or []))
        key_path.write_bytes(self.key_pem)
        return cert_path, key_path


def _ca_extensions(
    builder: x509.CertificateBuilder,
    key: Any,
    issuer: Issued | None,
    ca: bool,
    path_length: int | None,
    bc_critical: bool | None,
    ku_critical: bool | None,
    key_ids: bool,
) -> x509.CertificateBuilder:
    """basicConstraints, keyUsage, SKI and AKI: present and critical as RFC 5280 asks, unless told otherwise."""
    if bc_critical is not None:
        constraints = x509.BasicConstraints(ca=ca, path_length=path_length if ca else None)
        builder = builder.add_extension(constraints, critical=bc_critical)
    if key_ids:
        builder = builder.add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    if issuer is not None and key_ids:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), critical=False
        )
    if ku_critical is None:
        return builder
    usage = x509.KeyUsage(
        digital_signature=True, content_commitment=False,
        key_encipherment=not ca and isinstance(key, rsa.RSAPrivateKey), data_encipherment=False,
        key_agreement=False, key_cert_sign=ca, crl_sign=ca, encipher_only=False, decipher_only=False,
    )  # fmt: skip
    return builder.add_extension(usage, critical=ku_critical)


def issue(
    subject: x509.Name,
    *,
    issuer: Issued | None = None,
    key: Any = None,
    ca: bool = False,
    path_length: int | None = None,
    not_before: dt.datetime | None = None,
    days: float = 365,
    sans: tuple[str, ...] = (),
    eku: list[x509.ObjectIdentifier] | None = None,
    ocsp_url: str | None = None,
    ca_issuer_url: str | None = None,
    crl_url: str | None = None,
    hash_algorithm: Any = None,
    serial: int | None = None,
    bc_critical: bool | None = True,
    ku_critical: bool | None = True,
    key_ids: bool = True,
    permitted_dns: tuple[str, ...] = (),
) -> Issued:
    """One certificate; self-signed when ``issuer`` is None. Defects are parameters (past dates, SHA-1 ...).

    The deviations clients tolerate are parameters too: ``bc_critical`` / ``ku_critical`` False mark basic
    constraints / key usage non-critical and None leaves them out; ``key_ids`` False leaves out SKI and AKI.
    ``permitted_dns`` adds a critical name constraint permitting only those DNS subtrees."""
    key = key or new_key()
    start = not_before or NOW - dt.timedelta(hours=1)
    signer_key = issuer.key if issuer else key
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(serial or x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=days))
    )
    builder = _ca_extensions(builder, key, issuer, ca, path_length, bc_critical, ku_critical, key_ids)
    if permitted_dns:
        subtrees: list[x509.GeneralName] = [x509.DNSName(d) for d in permitted_dns]
        builder = builder.add_extension(x509.NameConstraints(subtrees, None), critical=True)
    if sans:
        names: list[x509.GeneralName] = []
        for san in sans:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(san)))
            except ValueError:
                names.append(x509.DNSName(san))
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    if eku is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    access = []
    if ocsp_url:
        access.append(
            x509.AccessDescription(
                x509.oid.AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(ocsp_url)
            )
        )
    if ca_issuer_url:
        access.append(
            x509.AccessDescription(
                x509.oid.AuthorityInformationAccessOID.CA_ISSUERS, x509.UniformResourceIdentifier(ca_issuer_url)
            )
        )
    if access:
        builder = builder.add_extension(x509.AuthorityInformationAccess(access), critical=False)
    if crl_url:
        builder = builder.add_extension(
            x509.CRLDistributionPoints(
                [x509.DistributionPoint([x509.UniformResourceIdentifier(crl_url)], None, None, None)]
            ),
            critical=False,
        )
    if isinstance(hash_algorithm, hashes.SHA1 | hashes.MD5):
        modern = builder.sign(signer_key, hashes.SHA256())
        return Issued(_legacy_signed(modern, signer_key, hash_algorithm), key, issuer)
    algorithm = None if isinstance(signer_key, ed25519.Ed25519PrivateKey) else (hash_algorithm or hashes.SHA256())
    return Issued(builder.sign(signer_key, algorithm), key, issuer)


# AlgorithmIdentifier DER of the RSA PKCS#1 v1.5 signatures: all the same length, so one can replace another.
_RSA_SIGNATURE_ALGORITHMS = {
    "sha256": bytes.fromhex("300d06092a864886f70d01010b0500"),
    "sha1": bytes.fromhex("300d06092a864886f70d0101050500"),
    "md5": bytes.fromhex("300d06092a864886f70d0101040500"),
}


def _der(tag: int, contents: bytes) -> bytes:
    size = len(contents)
    if size < 0x80:
        return bytes([tag, size]) + contents
    width = (size.bit_length() + 7) // 8
    return bytes([tag, 0x80 | width]) + size.to_bytes(width, "big") + contents


def _legacy_signed(cert: x509.Certificate, signer_key: Any, algorithm: hashes.HashAlgorithm) -> x509.Certificate:
    """``cert`` re-signed by an RSA ``signer_key`` with SHA-1 or MD5, which cryptography refuses to sign with."""
    if not isinstance(signer_key, rsa.RSAPrivateKey):
        raise ValueError("SHA-1 and MD5 certificates are made with an RSA issuer key")
    legacy = _RSA_SIGNATURE_ALGORITHMS[algorithm.name]
    tbs = cert.tbs_certificate_bytes.replace(_RSA_SIGNATURE_ALGORITHMS["sha256"], legacy, 1)
    signature = signer_key.sign(tbs, padding.PKCS1v15(), algorithm)
    return x509.load_der_x509_certificate(_der(0x30, tbs + legacy + _der(0x03, b"\x00" + signature)))


SERVER_AUTH = [ExtendedKeyUsageOID.SERVER_AUTH]
CLIENT_AUTH = [ExtendedKeyUsageOID.CLIENT_AUTH]


@dataclass
class Hierarchy:
    """root -> intermediate -> leaf for localhost/127.0.0.1, the usual shape of a public chain."""

    root: Issued
    intermediate: Issued
    leaf: Issued


def hierarchy(prefix: str = "test", *, leaf_days: float = 90, **leaf_options: Any) -> Hierarchy:
    root = issue(name(f"{prefix} root CA"), ca=True, days=3650, key=new_key("p384"))
    intermediate = issue(name(f"{prefix} intermediate CA"), issuer=root, ca=True, path_length=0, days=1825)
    options: dict[str, Any] = {"sans": ("localhost", "127.0.0.1"), "eku": SERVER_AUTH}
    options.update(leaf_options)
    leaf = issue(name("localhost"), issuer=intermediate, days=leaf_days, **options)
    return Hierarchy(root, intermediate, leaf)
