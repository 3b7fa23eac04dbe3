"""A test PKI built with cryptography: roots, intermediates and leaves with whatever defect a test needs."""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
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
) -> Issued:
    """One certificate; self-signed when ``issuer`` is None. Defects are parameters (past dates, SHA-1 ...)."""
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
        .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length if ca else None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), critical=False
        )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )  # fmt: skip
    else:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=isinstance(key, rsa.RSAPrivateKey),
                data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )  # fmt: skip
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
    algorithm = None if isinstance(signer_key, ed25519.Ed25519PrivateKey) else (hash_algorithm or hashes.SHA256())
    return Issued(builder.sign(signer_key, algorithm), key, issuer)


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
