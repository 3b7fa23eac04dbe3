"""Building a certification path ourselves: issuer candidates, signatures, the checks that explain a refusal.

cryptography gives the verdict; a path we build gives the reason when it says no (see ``trust``).
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID

from scanner.probe.pki.storefiles import certificate_der

MAX_PATH_LENGTH = 10

MAX_PATH_STEPS = 200  # certificates looked at while building one path

WEAK_SIGNATURE_HASHES = frozenset({"md2", "md4", "md5", "sha1"})

# Signature OIDs cryptography cannot name a hash for (it refuses MD2/MD4), still worth reporting as weak.
_LEGACY_SIGNATURE_HASHES = {
    "1.2.840.113549.1.1.2": "md2",
    "1.2.840.113549.1.1.3": "md4",
    "1.2.840.113549.1.1.4": "md5",
}

_E = TypeVar("_E", bound=x509.ExtensionType)

# The same signatures and names are checked again and again: for each target by trust (path building, then the
# diagnosis), revocation (finding the issuer), the chain's facts (its order) and the lints; and a fleet's targets
# share intermediates, often leaves. cryptography verifies a signature, or parses a name, anew at each call, so
# these answers (pure functions of the certificates, which hash and compare by their DER) are cached per process.
CHECKS_CACHED = 1024


def fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()


def _spki(cert: x509.Certificate) -> bytes:
    return cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def subject_text(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string()


@functools.lru_cache(maxsize=CHECKS_CACHED)
def signed_by(child: x509.Certificate, parent: x509.Certificate) -> bool | None:
    """Whether ``parent``'s key verifies ``child``'s signature; None when that cannot be checked (unknown algorithm).

    Done by hand rather than with ``verify_directly_issued_by``, which refuses SHA-1: a SHA-1 signature that does
    verify is weak, one that does not is bad, and we want to tell which.
    """
    try:
        key = parent.public_key()
        digest = child.signature_hash_algorithm
        signature, tbs = child.signature, child.tbs_certificate_bytes
        if isinstance(key, rsa.RSAPublicKey) and digest is not None:
            params = _signature_parameters(child)
            key.verify(signature, tbs, params if isinstance(params, padding.PSS) else padding.PKCS1v15(), digest)
        elif isinstance(key, ec.EllipticCurvePublicKey) and digest is not None:
            # Built from the hash: cryptography gives no parameters for ecdsa-with-SHA1.
            key.verify(signature, tbs, ec.ECDSA(digest))
        elif isinstance(key, dsa.DSAPublicKey) and digest is not None:
            key.verify(signature, tbs, digest)
        elif isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey) and digest is None:
            key.verify(signature, tbs)
        else:
            return False  # the issuer's key type cannot have made this signature
    except InvalidSignature:
        return False
    except (UnsupportedAlgorithm, ValueError, TypeError):
        return None
    return True


def _signature_parameters(cert: x509.Certificate) -> object:
    try:
        return cert.signature_algorithm_parameters
    except (UnsupportedAlgorithm, ValueError):
        return None


def signature_hash(cert: x509.Certificate) -> str | None:
    try:
        algorithm = cert.signature_hash_algorithm
    except UnsupportedAlgorithm:
        return _LEGACY_SIGNATURE_HASHES.get(cert.signature_algorithm_oid.dotted_string)
    return algorithm.name.lower() if algorithm is not None else None


@functools.lru_cache(maxsize=CHECKS_CACHED)
def self_issued(cert: x509.Certificate) -> bool:
    return cert.subject == cert.issuer


def self_signed(cert: x509.Certificate) -> bool:
    return self_issued(cert) and signed_by(cert, cert) is not False


def extension(cert: x509.Certificate, kind: type[_E]) -> _E | None:
    """The certificate's extension of class ``kind``, None when it has none."""
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def _key_ids_agree(child: x509.Certificate, issuer: x509.Certificate) -> bool:
    """False only when both key identifiers are there and differ: then ``issuer`` is a namesake, not the issuer."""
    aki = extension(child, x509.AuthorityKeyIdentifier)
    ski = extension(issuer, x509.SubjectKeyIdentifier)
    if aki is None or aki.key_identifier is None:
        return True
    if ski is None:
        return True
    return aki.key_identifier == ski.digest


def access_urls(cert: x509.Certificate, method: x509.ObjectIdentifier) -> list[str]:
    """The URLs of the certificate's Authority Information Access entries for ``method`` (CA issuers, OCSP)."""
    aia = extension(cert, x509.AuthorityInformationAccess)
    if aia is None:
        return []
    return [
        d.access_location.value
        for d in aia
        if d.access_method == method and isinstance(d.access_location, x509.UniformResourceIdentifier)
    ]


def ca_issuer_urls(cert: x509.Certificate) -> list[str]:
    return access_urls(cert, AuthorityInformationAccessOID.CA_ISSUERS)


def san_names(cert: x509.Certificate) -> list[x509.GeneralName]:
    san = extension(cert, x509.SubjectAlternativeName)
    if san is None:
        return []
    return [n for n in san if isinstance(n, x509.DNSName | x509.IPAddress)]


def describe(cert: x509.Certificate, position: int, anchor: bool) -> str:
    role = "trust anchor" if anchor else "leaf" if position == 0 else "intermediate"
    return f"{role} {subject_text(cert)}"


class Anchors:
    """A store's certificates, indexed for issuer lookup; a served certificate with an anchor's name and key is it."""

    def __init__(self, certs: Sequence[x509.Certificate]) -> None:
        self.certs = list(certs)
        self.by_der = {certificate_der(c): c for c in certs}
        self.by_name_key = {(c.subject.public_bytes(), _spki(c)): c for c in certs}
        self.by_subject: dict[bytes, list[x509.Certificate]] = {}
        for cert in certs:
            self.by_subject.setdefault(cert.subject.public_bytes(), []).append(cert)

    def match(self, cert: x509.Certificate) -> x509.Certificate | None:
        found = self.by_der.get(certificate_der(cert))
        return found or self.by_name_key.get((cert.subject.public_bytes(), _spki(cert)))

    def issuers(self, cert: x509.Certificate) -> list[x509.Certificate]:
        return self.by_subject.get(cert.issuer.public_bytes(), [])


@dataclass
class BuiltPath:
    path: list[x509.Certificate]  # leaf first; ends with the anchor when one was reached
    anchor: x509.Certificate | None = None


def build_path(leaf: x509.Certificate, pool: Sequence[x509.Certificate], anchors: Anchors) -> BuiltPath:
    """Our own path building, by names and key identifiers: it goes as far as it can, so that where it stops says
    why a chain is not trusted. Signatures only order the candidates; a link whose signature fails is still taken
    (and reported as a bad signature) when there is no other."""

    def ranked(cert: x509.Certificate, candidates: list[x509.Certificate]) -> list[x509.Certificate]:
        matching = [c for c in candidates if c.subject == cert.issuer and _key_ids_agree(cert, c)]
        return sorted(matching, key=lambda c: signed_by(cert, c) is not True)

    budget = [MAX_PATH_STEPS]  # a hostile server may send many namesakes: bound the search, not just its depth

    def walk(path: list[x509.Certificate]) -> BuiltPath:
        cert = path[-1]
        anchor = anchors.match(cert)
        if anchor is not None:
            return BuiltPath([*path[:-1], anchor], anchor)
        budget[0] -= 1
        if len(path) >= MAX_PATH_LENGTH or budget[0] <= 0 or self_signed(cert):
            return BuiltPath(path)
        in_path = {certificate_der(c) for c in path}
        from_store = ranked(cert, anchors.issuers(cert))
        if from_store:
            return BuiltPath([*path, from_store[0]], from_store[0])
        best = BuiltPath(path)
        for issuer in ranked(cert, [c for c in pool if certificate_der(c) not in in_path]):
            found = walk([*path, issuer])
            if found.anchor is not None:
                return found
            if len(found.path) > len(best.path):
                best = found
        return best

    return walk([leaf])


def path_complete(built: BuiltPath) -> bool:
    return built.anchor is not None or self_signed(built.path[-1])


# --- the constraints a client enforces along a path (what explains a refusal beyond names and signatures) --------


def ca_leaf(cert: x509.Certificate) -> bool:
    """A leaf that asserts cA: OpenSSL accepts it as a server certificate, Firefox and cryptography do not."""
    constraints = extension(cert, x509.BasicConstraints)
    return constraints is not None and constraints.ca


def first_non_ca(path: Sequence[x509.Certificate]) -> tuple[int, x509.Certificate] | None:
    """The first issuer of the path that is not a CA: basicConstraints absent or cA false (RFC 5280 6.1.4 (k))."""
    for position, cert in enumerate(path[1:], start=1):
        constraints = extension(cert, x509.BasicConstraints)
        if constraints is None or not constraints.ca:
            return position, cert
    return None


def path_length_violation(path: Sequence[x509.Certificate]) -> tuple[int, x509.Certificate, int] | None:
    """The first CA whose pathLenConstraint is exceeded, and how many intermediates follow it (RFC 5280 6.1.4 (l),
    (m)): self-issued intermediates do not count."""
    for position, cert in enumerate(path[1:], start=1):
        constraints = extension(cert, x509.BasicConstraints)
        below = sum(1 for c in path[1:position] if not self_issued(c))
        if constraints is not None and constraints.path_length is not None and below > constraints.path_length:
            return position, cert, below
    return None


def lacks_server_auth(cert: x509.Certificate) -> bool:
    """An extendedKeyUsage that does not name serverAuth restricts the key to other purposes; none means any.
    anyExtendedKeyUsage alone does not do for a server, as in OpenSSL's ``sslserver`` purpose."""
    usage = extension(cert, x509.ExtendedKeyUsage)
    return usage is not None and ExtendedKeyUsageOID.SERVER_AUTH not in usage


def _in_dns_subtree(name: str, base: str) -> bool:
    """RFC 5280 4.2.1.10: the name is the base or below it; a base with a leading dot means strictly below."""
    name, base = name.lower().rstrip("."), base.lower().rstrip(".")
    if not base:
        return True
    if base.startswith("."):
        return name.endswith(base)
    return name == base or name.endswith("." + base)


def _in_subtree(name: x509.GeneralName, base: x509.GeneralName) -> bool | None:
    """Whether ``name`` lies in ``base``; None when the subtree is of another type (it does not constrain it)."""
    if isinstance(name, x509.DNSName) and isinstance(base, x509.DNSName):
        return _in_dns_subtree(name.value, base.value)
    if isinstance(name, x509.IPAddress) and isinstance(base, x509.IPAddress):
        network = base.value
        address = name.value
        if isinstance(network, ipaddress.IPv4Network | ipaddress.IPv6Network) and not isinstance(
            address, ipaddress.IPv4Network | ipaddress.IPv6Network
        ):
            return address.version == network.version and address in network
    return None


def _constraint_breach(name: x509.GeneralName, constraints: x509.NameConstraints) -> str | None:
    for base in constraints.excluded_subtrees or []:
        if _in_subtree(name, base):
            return f"{name.value} is in the excluded subtree {base.value}"
    permitted = [(base, _in_subtree(name, base)) for base in constraints.permitted_subtrees or []]
    relevant = [inside for _, inside in permitted if inside is not None]
    if relevant and not any(relevant):
        allowed = ", ".join(str(base.value) for base, inside in permitted if inside is not None)
        return f"{name.value} is outside the permitted subtrees {allowed}"
    return None


def name_constraint_violation(path: Sequence[x509.Certificate]) -> tuple[x509.Certificate, str] | None:
    """The first CA whose name constraints the leaf's DNS / IP names break, and how (RFC 5280 4.2.1.10)."""
    names = san_names(path[0])
    for cert in path[1:]:
        constraints = extension(cert, x509.NameConstraints)
        if constraints is None:
            continue
        for general in names:
            breach = _constraint_breach(general, constraints)
            if breach is not None:
                return cert, breach
    return None
