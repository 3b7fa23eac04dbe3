"""Every certificate a server serves: one handshake per kind of key a client may ask for.

Servers commonly hold an RSA and an ECDSA certificate side by side and pick one per handshake by what the client
offers: its signature algorithms (TLS 1.2 and 1.3) and the authentication of its cipher suites (TLS 1.2 and
older). The default handshake shows one of them. Here tlsgate offers only ECDSA, only RSA, and only EdDSA/DSA in
turn, each at the server's highest version: sslyze's certificate_info varies the suites (``aRSA`` against
``ALL:-aRSA``) in TLS 1.2 only, which a TLS 1.3-only server never shows; the signature algorithms reach both.

A server without a certificate of the kind offered refuses the handshake (an alert, or a close): no deployment of
that kind, not an error. A handshake that times out or breaks otherwise is an error of that offer, so a verdict
never rests on an offer that was not answered.

Some offers are answered before they are made (``answered_offers``), and cost no handshake:

- the offer of the default chain's kind of key (ECDSA, or RSA with an rsaEncryption key), when the default was had
  with the same server name: a server holds one certificate of a kind for a name and serves it to any client that
  can verify it, so that offer gets the same leaf; on a server whose highest version is TLS 1.2, whatever the
  name, when every suite of that offer's authentication the enumeration saw picked came with the default leaf
  (the enumeration's hellos send the offers' SNI);
- on a server whose highest version is TLS 1.2, an offer none of whose suites the enumeration found accepted in
  TLS 1.2: the enumeration offered every suite of that authentication (IANA's, a superset of OpenSSL's) and the
  server refused them all, with an alert or a close, which is this offer's refusal too. (With TLS 1.3 the
  certificate is chosen by signature algorithm only, which the enumeration does not vary: those offers are made.)
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import nassl._nassl
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from cryptography.x509.oid import PublicKeyAlgorithmOID
from nassl.ephemeral_key_info import OpenSslEvpPkeyEnum
from nassl.ssl_client import ClientCertificateRequested, OpenSslDigestNidEnum, OpenSslVerifyEnum, SslClient

from scanner.facts import (
    CertificateDeployment,
    CertificateFacts,
    DeploymentOffer,
    ErrorClass,
    ProbeError,
    ProtocolSupport,
    ProtocolVersion,
)
from scanner.probe.checks.ciphers import highest_accepted
from scanner.probe.connect.endpoint import Endpoint, SeenInClear, connect_failure
from scanner.probe.connect.limits import Cancelled
from scanner.probe.connect.starttls import StartTlsError
from scanner.probe.pki.wirechain import offered_chain_in_clear
from scanner.probe.sslyze_adapter import ServedCertificates

_NID_UNDEF = 0  # EdDSA signs without a separate digest
_NID_DSA = 116
_NID_ED25519 = 1087
_NID_ED448 = 1088
_TOO_LARGE = "excessive message size"  # OpenSSL's words for a Certificate message over its 100 KiB limit
_DIGESTS = (OpenSslDigestNidEnum.SHA256, OpenSslDigestNidEnum.SHA384, OpenSslDigestNidEnum.SHA512)


@dataclass(frozen=True)
class Offer:
    """What a client that can only verify one kind of server key offers (OpenSSL's (digest, key) pairs and
    cipher string)."""

    name: DeploymentOffer
    signature_algorithms: tuple[tuple[int, int], ...]
    ciphers: str  # TLS 1.2 and older; TLS 1.3 suites authenticate by signature algorithm only
    # The same offer in tlsgate's own TLS 1.2 hello (pki/wirechain): IANA signature scheme codes, suite authentication.
    wire_signature_algorithms: tuple[int, ...]
    wire_authentication: frozenset[str]


OFFERS: tuple[Offer, ...] = (
    Offer(
        "ecdsa",
        tuple((digest, OpenSslEvpPkeyEnum.EC) for digest in _DIGESTS),
        "aECDSA",
        (0x0403, 0x0503, 0x0603),
        frozenset({"ECDSA"}),
    ),
    # TLS 1.3 signs with RSA-PSS (rsa_pss_rsae_*: OpenSSL's (digest, RSA_PSS) pairs), TLS 1.2 with PKCS#1 v1.5 too.
    Offer(
        "rsa",
        tuple((d, OpenSslEvpPkeyEnum.RSA_PSS) for d in _DIGESTS) + tuple((d, OpenSslEvpPkeyEnum.RSA) for d in _DIGESTS),
        "aRSA",
        (0x0804, 0x0805, 0x0806, 0x0401, 0x0501, 0x0601),
        frozenset({"RSA"}),
    ),
    # Ed25519 and Ed448 certificates sign ECDHE_ECDSA suites in TLS 1.2 (RFC 8422); DSA certificates DHE_DSS.
    Offer(
        "other",
        ((_NID_UNDEF, _NID_ED25519), (_NID_UNDEF, _NID_ED448), (OpenSslDigestNidEnum.SHA256, _NID_DSA)),
        "aECDSA:aDSS",
        (0x0807, 0x0808, 0x0402),
        frozenset({"ECDSA", "DSS"}),
    ),
)

Offered = tuple[DeploymentOffer, ServedCertificates | ProbeError]


Answer = ServedCertificates | None  # an offer's chain, or None: the server refuses it


def answered_offers(
    default: ServedCertificates,
    protocols: Mapping[ProtocolVersion, ProtocolSupport],
    *,
    same_name: bool,
    shown: SeenInClear | None = None,
    offers: Sequence[Offer] = OFFERS,
) -> dict[DeploymentOffer, Answer]:
    """The offers whose answer is known without a handshake (see the module's note): the default chain for the
    offer of its kind of key, None for an offer a TLS 1.2 server refused every suite of. ``same_name``: the
    default chain was had with the SNI the offers send (sslyze sends the address when the endpoint sends none,
    and a server may choose its certificate by name); ``shown``: the leaves the enumeration saw in the clear,
    with the offers' SNI, which settle the offer of the default's kind on a TLS 1.2 server whatever the name."""
    known: dict[DeploymentOffer, Answer] = {}
    kind = _kind(default.chain[0])
    names = {offer.name for offer in offers}
    if highest_accepted(protocols) == ProtocolVersion.TLSv1_2:
        accepted = protocols[ProtocolVersion.TLSv1_2].cipher_suites
        for offer in offers:
            if not any(suite.authentication in offer.wire_authentication for suite in accepted):
                known[offer.name] = None
            elif offer.name == kind and shown is not None and not same_name:
                # Every suite of this offer's authentication the server picked came with the default leaf.
                leaf = default.chain[0].public_bytes(Encoding.DER)
                if shown.leaves(ProtocolVersion.TLSv1_2, offer.wire_authentication) == {leaf}:
                    known[offer.name] = default
    if same_name and kind is not None and kind in names:
        known[kind] = default
    return known


def _kind(leaf: x509.Certificate) -> DeploymentOffer | None:
    """The offer that asks for this leaf's kind of key, for the kinds a server holds one certificate of."""
    key = leaf.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "ecdsa"
    if isinstance(key, rsa.RSAPublicKey) and leaf.public_key_algorithm_oid == PublicKeyAlgorithmOID.RSAES_PKCS1_v1_5:
        return "rsa"  # not an RSASSA-PSS key, which a server may hold beside an rsaEncryption one
    return None


def discover(
    endpoint: Endpoint,
    *,
    in_clear: bool = False,
    offers: Sequence[Offer] = OFFERS,
    known: Mapping[DeploymentOffer, Answer] | None = None,
) -> list[Offered]:
    """The chain each offer got, or why it could not be had; offers the server refused are left out.

    ``in_clear``: read each chain with tlsgate's own TLS 1.2 hello, as the default one had to be (a Certificate
    message over OpenSSL's 100 KiB limit, which OpenSSL would refuse here too); an offer that gets such a chain
    when the default did not is read that way too. ``known``: the offers already answered (``answered_offers``),
    not made again."""
    found: list[Offered] = []
    known = known or {}
    for offer in offers:
        if offer.name in known:
            answer = known[offer.name]
            if answer is not None:
                found.append((offer.name, answer))
            continue
        outcome = None if in_clear else offered_chain(endpoint, offer)
        if in_clear or (isinstance(outcome, ProbeError) and _TOO_LARGE in outcome.message):
            outcome = offered_chain_in_clear(endpoint, offer.wire_authentication, offer.wire_signature_algorithms)
        if outcome is not None:
            found.append((offer.name, outcome))
    return found


def offered_chain(endpoint: Endpoint, offer: Offer) -> ServedCertificates | ProbeError | None:
    """One handshake offering ``offer`` only: the chain served, None when the server refused, or the error."""
    prefix = f"{offer.name} offer: "
    try:
        sock = endpoint.connect()
    except Cancelled:
        raise
    except StartTlsError as exc:
        return ProbeError(error_class=ErrorClass.starttls_failed, message=f"{prefix}{exc}")
    except OSError as exc:
        timed_out = f"no connection to {endpoint.display} within {endpoint.timeout:g} s"
        return connect_failure(endpoint.display, exc, timed_out=timed_out, prefix=prefix)
    with contextlib.closing(sock):
        return _handshake(sock, endpoint, offer, prefix)


def _client(sock: socket.socket, endpoint: Endpoint, offer: Offer) -> SslClient:
    credentials = endpoint.credentials
    client = SslClient(
        underlying_socket=sock,
        ssl_verify=OpenSslVerifyEnum.NONE,  # trust is judged by pki.trust on the chain, not by OpenSSL here
        client_certificate_chain=credentials.cert_chain if credentials else None,
        client_key=credentials.key if credentials else None,
        server_name_indication=endpoint.server_name,
    )
    client.set_signature_algorithms(list(offer.signature_algorithms))  # type: ignore[arg-type]  # raw NIDs
    client.set_cipher_list(offer.ciphers)
    client.set_tlsext_status_ocsp()
    return client


def _handshake(
    sock: socket.socket, endpoint: Endpoint, offer: Offer, prefix: str
) -> ServedCertificates | ProbeError | None:
    try:
        client = _client(sock, endpoint, offer)
    except nassl._nassl.OpenSSLError as exc:
        # OpenSSL without the algorithms (e.g. no DSA or EdDSA): this client cannot make the offer at all.
        return ProbeError(error_class=ErrorClass.probe_failed, message=f"{prefix}cannot be made here: {exc}")
    try:
        # The server's chain comes before its request for ours: a request is no obstacle to what we came for.
        with contextlib.suppress(ClientCertificateRequested):
            client.do_handshake()
        pems = client.get_received_chain()
        response = client.get_tlsext_status_ocsp_resp()
    except nassl._nassl.OpenSSLError as exc:
        text = str(exc)
        if "alert" in text:
            return None  # the server refused this offer with an alert: it has no certificate of this kind
        return ProbeError(error_class=ErrorClass.handshake_failed, message=f"{prefix}handshake failed: {text}")
    except TimeoutError:
        return ProbeError(error_class=ErrorClass.timeout, message=f"{prefix}no handshake within {endpoint.timeout:g} s")
    except OSError as exc:
        if isinstance(exc, Cancelled):
            raise
        # A server that closes instead of sending an alert refuses just the same (as sslyze reads it).
        return None
    if not pems:
        return ProbeError(error_class=ErrorClass.probe_failed, message=f"{prefix}the server sent no certificate")
    try:
        chain = [x509.load_pem_x509_certificate(pem.encode("ascii")) for pem in pems]
    except ValueError as exc:
        return ProbeError(error_class=ErrorClass.probe_failed, message=f"{prefix}a certificate does not parse: {exc}")
    stapled = None
    if response is not None:
        with contextlib.suppress(ValueError):  # a stapled response that does not parse is as good as none
            stapled = ocsp.load_der_ocsp_response(response.as_der_bytes())
    return ServedCertificates(chain, stapled)


def deployments(
    default: ServedCertificates, offered: Sequence[Offered], analyse: Callable[[ServedCertificates], CertificateFacts]
) -> list[CertificateDeployment]:
    """The default chain first, then every other distinct chain (by leaf SHA-256), each analysed once; an offer
    that could not be completed is a deployment of its own with that error."""
    found: dict[str, tuple[list[DeploymentOffer], CertificateFacts]] = {}
    failed: list[CertificateDeployment] = []
    for name, outcome in [("default", default), *offered]:
        if isinstance(outcome, ProbeError):
            failed.append(
                CertificateDeployment(offers=[name], certificate=CertificateFacts(status="error", error=outcome))
            )
            continue
        leaf = outcome.chain[0].fingerprint(hashes.SHA256()).hex()
        if leaf in found:
            found[leaf][0].append(name)
        else:
            found[leaf] = ([name], analyse(outcome))
    return [CertificateDeployment(offers=o, certificate=c) for o, c in found.values()] + failed
