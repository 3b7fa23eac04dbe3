"""Certificate facts: every field of real served chains, host name matching, chain order, and odd certificates."""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, x25519
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID, NameOID

from scanner.facts import ErrorClass, Facts, Observed
from scanner.probe.options import ConnectOptions, ProbeOptions
from scanner.probe.pki import certchain
from scanner.probe.pki.certificates import (
    certificate_facts,
    chain_facts,
    chain_order_valid,
    common_name_matches,
    hostname_matches,
    name_check,
)
from scanner.probe.run import probe_targets
from scanner.targets import parse_target
from tests.helpers import openssl_server
from tests.pki import CLIENT_AUTH, NOW, SERVER_AUTH, Issued, hierarchy, issue, name, new_key

OCSP = "http://ocsp.tlsgate.test/"
CA_ISSUERS = "http://pki.tlsgate.test/intermediate.der"
CRL = "http://pki.tlsgate.test/intermediate.crl"


# --- end to end: real servers, the chain sslyze receives -------------------------------------------------------


@pytest.fixture
def received(monkeypatch: pytest.MonkeyPatch) -> list[x509.Certificate]:
    """The certificates sslyze received, in order, as the probe hands them to chain_facts."""
    seen: list[x509.Certificate] = []
    real = certchain.chain_facts

    def record(chain: list[x509.Certificate], *args: Any, **kwargs: Any) -> Any:
        seen.extend(chain)
        return real(chain, *args, **kwargs)

    monkeypatch.setattr(certchain, "chain_facts", record)
    return seen


def _scan(port: int) -> Facts:
    (facts,) = probe_targets([(parse_target(f"127.0.0.1:{port}"), ConnectOptions())], ProbeOptions(timeout=3))
    assert facts.status == "ok", facts.error
    assert facts.certificate.status == "ok", facts.certificate.error
    return facts


def _pem_chain(path: Path, *certs: Issued) -> Path:
    path.write_bytes(b"".join(c.pem for c in certs))
    return path


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Any]:
    """Serve ``leaf`` with ``chain`` after it from openssl s_server; yield a function returning the port."""
    with contextlib.ExitStack() as servers:

        def start(leaf: Issued, *chain: Issued) -> int:
            cert, key = leaf.write(tmp_path, "leaf")
            extra = _pem_chain(tmp_path / "chain.pem", *chain) if chain else None
            return servers.enter_context(openssl_server(cert, key, chain=extra))

        yield start


def _assert_observed(fact: Observed[bool], expected: bool) -> None:
    assert (fact.status, fact.value) == ("ok", expected)


def _same_facts(a: Any, b: Any) -> None:
    assert a.model_dump(exclude={"days_remaining"}) == b.model_dump(exclude={"days_remaining"})


def test_complete_chain_reports_every_field(serve, received):
    """A leaf and its intermediate served by openssl: every field of both, as built, and a matching ordered chain."""
    pki = hierarchy(
        "full",
        sans=("localhost", "www.full.test", "127.0.0.1", "::1"),
        eku=SERVER_AUTH + CLIENT_AUTH,
        ocsp_url=OCSP,
        ca_issuer_url=CA_ISSUERS,
        crl_url=CRL,
    )
    facts = _scan(serve(pki.leaf, pki.intermediate))

    chain = facts.certificate.chain
    assert [c.sha256 for c in chain] == [pki.leaf.sha256, pki.intermediate.sha256]
    assert [c.fingerprint(hashes.SHA256()).hex() for c in received] == [pki.leaf.sha256, pki.intermediate.sha256]
    leaf, intermediate = chain
    assert facts.certificate.leaf == leaf
    assert leaf.subject == "CN=localhost,O=tlsgate tests"
    assert leaf.issuer == "CN=full intermediate CA,O=tlsgate tests"
    assert (leaf.subject_fields.common_name, leaf.subject_fields.organization) == ("localhost", "tlsgate tests")
    assert leaf.subject_fields.country is None and leaf.subject_fields.organizational_unit is None
    assert leaf.issuer_fields.common_name == "full intermediate CA"
    assert leaf.serial == format(pki.leaf.cert.serial_number, "x")
    assert (leaf.public_key.type, leaf.public_key.size, leaf.public_key.curve) == ("EC", 256, "secp256r1")
    assert (leaf.signature_algorithm, leaf.signature_hash) == ("ecdsa-with-SHA256", "sha256")
    assert leaf.validity_days == 90
    assert leaf.days_remaining is not None and 89.9 < leaf.days_remaining <= 90
    assert leaf.subject_alt_names == ["DNS:localhost", "DNS:www.full.test", "IP:127.0.0.1", "IP:::1"]
    assert leaf.key_usage == ["digitalSignature"]
    assert [(e.name, e.oid) for e in leaf.extended_key_usage or []] == [
        ("serverAuth", "1.3.6.1.5.5.7.3.1"),
        ("clientAuth", "1.3.6.1.5.5.7.3.2"),
    ]
    assert leaf.basic_constraints is not None and not leaf.basic_constraints.ca
    assert (leaf.ocsp_urls, leaf.ca_issuer_urls, leaf.crl_urls) == ([OCSP], [CA_ISSUERS], [CRL])
    assert (leaf.policies, leaf.sct_count, leaf.must_staple, leaf.self_signed) == ([], None, False, False)

    assert intermediate.subject == leaf.issuer and intermediate.issuer == "CN=full root CA,O=tlsgate tests"
    assert intermediate.basic_constraints is not None
    assert (intermediate.basic_constraints.ca, intermediate.basic_constraints.path_length) == (True, 0)
    assert intermediate.key_usage == ["digitalSignature", "keyCertSign", "cRLSign"]
    assert intermediate.extended_key_usage is None and intermediate.subject_alt_names == []
    assert intermediate.public_key.type == "EC" and intermediate.signature_hash == "sha256"
    assert intermediate.validity_days == 1825 and not intermediate.self_signed

    for served in (received, [pki.leaf.cert, pki.intermediate.cert]):
        certs, match, ordered = chain_facts(served, "127.0.0.1")
        assert (match.status, match.value, ordered.status, ordered.value) == ("ok", True, "ok", True)
        for mine, adapters in zip(certs, chain, strict=True):
            _same_facts(mine, adapters)
        assert chain_facts(served, "www.full.test")[1].value is True
        assert chain_facts(served, "other.full.test")[1].value is False
    _assert_observed(facts.certificate.hostname_match, True)
    _assert_observed(facts.certificate.chain_order_valid, True)


def test_chain_served_out_of_order(serve, received):
    """openssl serving leaf, root, intermediate: the chain is reported as served and its order as invalid."""
    pki = hierarchy("order")
    facts = _scan(serve(pki.leaf, pki.root, pki.intermediate))

    assert [c.subject for c in facts.certificate.chain] == [
        "CN=localhost,O=tlsgate tests",
        "CN=order root CA,O=tlsgate tests",
        "CN=order intermediate CA,O=tlsgate tests",
    ]
    assert facts.certificate.chain[1].self_signed
    _, match, ordered = chain_facts(received, "127.0.0.1")
    assert (match.value, ordered.status, ordered.value) == (True, "ok", False)
    assert not chain_order_valid([pki.leaf.cert, pki.root.cert, pki.intermediate.cert])
    assert chain_order_valid([pki.leaf.cert, pki.intermediate.cert, pki.root.cert])
    _assert_observed(facts.certificate.chain_order_valid, False)


def test_self_signed_rsa4096_730_days(serve, received):
    """A self-signed RSA 4096 certificate valid 730 days (the industrial-kernel shape) is reported as such."""
    kernel = issue(name("kernel.test"), key=new_key("rsa4096"), days=730, sans=("kernel.test", "127.0.0.1"))
    facts = _scan(serve(kernel))

    (cert,) = facts.certificate.chain
    assert (cert.public_key.type, cert.public_key.size) == ("RSA", 4096)
    assert cert.validity_days == 730
    assert cert.self_signed and cert.subject == cert.issuer == "CN=kernel.test,O=tlsgate tests"
    assert (cert.signature_algorithm, cert.signature_hash) == ("sha256WithRSAEncryption", "sha256")
    assert cert.key_usage == ["digitalSignature", "keyEncipherment"]
    _, match, ordered = chain_facts(received, "kernel.test")
    assert (match.value, ordered.value) == (True, True)


def test_expired_leaf_has_negative_days_remaining(serve, received):
    """A leaf that expired 70 days ago is still reported, with days_remaining about -70."""
    pki = hierarchy("expired", leaf_days=30, not_before=NOW - dt.timedelta(days=100))
    facts = _scan(serve(pki.leaf, pki.intermediate))

    leaf = facts.certificate.leaf
    assert leaf is not None and leaf.days_remaining is not None
    assert -70.1 < leaf.days_remaining < -69.9
    assert leaf.validity_days == 30
    at_issue = chain_facts(received, "localhost", now=leaf.not_before)[0][0]
    assert at_issue.days_remaining == 30


# --- hostname_matches ---------------------------------------------------------------------------------------------


def _cert(
    subject: x509.Name | None = None,
    *extensions: x509.ExtensionType,
    key: Any = None,
    issuer: x509.Name | None = None,
    days: float = 30,
) -> x509.Certificate:
    """A certificate with exactly the extensions given (none by default), self-signed unless ``issuer`` is named."""
    signer = key or new_key()
    subject = subject or name("odd.test")
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer or subject)
        .public_key(signer.public_key())
        .serial_number(0x1234)
        .not_valid_before(NOW)
        .not_valid_after(NOW + dt.timedelta(days=days))
    )
    for extension in extensions:
        builder = builder.add_extension(extension, critical=False)
    return builder.sign(signer, None if isinstance(signer, ed25519.Ed25519PrivateKey) else hashes.SHA256())


def _san(*names: str) -> x509.SubjectAlternativeName:
    entries: list[x509.GeneralName] = []
    for value in names:
        if value.startswith("DNS:"):
            entries.append(x509.DNSName(value.removeprefix("DNS:")))
            continue
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(value)))
        except ValueError:
            entries.append(x509.DNSName(value))
    return x509.SubjectAlternativeName(entries)


NAMES = _cert(
    name("ignored.test"),
    _san(
        "www.example.com",
        "*.wild.example.com",
        "f*.partial.example.com",
        "*.com",
        "Mixed.Case.Example",
        "xn--bcher-kva.example",
        "*.xn--caf-dma.example",
        "DNS:127.0.0.5",  # an IP address written as a DNS name: never matches an IP target
        "192.0.2.7",
        "2001:db8::1",
        "::1",
    ),
)


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("www.example.com", True),
        ("WWW.EXAMPLE.COM", True),
        ("www.example.com.", True),
        ("example.com", False),
        ("ww.example.com", False),
        ("a.wild.example.com", True),
        ("A.Wild.Example.Com.", True),
        ("wild.example.com", False),
        ("a.b.wild.example.com", False),
        ("*.wild.example.com", False),
        ("foo.partial.example.com", False),
        ("f.partial.example.com", False),
        ("example.com.com", False),
        ("anything.com", False),
        ("mixed.case.example", True),
        ("bücher.example", True),
        ("BÜCHER.example", True),
        ("xn--bcher-kva.example", True),
        ("bucher.example", False),
        ("menu.café.example", True),
        ("menu.xn--caf-dma.example", True),
        ("café.example", False),
        ("ignored.test", False),
        ("192.0.2.7", True),
        ("192.0.2.8", False),
        ("127.0.0.5", False),
        ("2001:db8::1", True),
        ("2001:DB8:0:0:0:0:0:1", True),
        ("[2001:db8::1]", True),
        ("2001:db8::2", False),
        ("::1", True),
        ("0:0:0:0:0:0:0:1", True),
        ("fe80::1%eth0", False),
        ("", False),
        ("www..example.com", False),
    ],
)
def test_hostname_matches_table(target, expected):
    """SAN DNS-IDs match case-insensitively as A-labels, wildcards only as a whole left-most label, IPs only IPs."""
    assert hostname_matches(NAMES, target) is expected


def test_common_name_is_never_matched():
    """RFC 9525: the CN is not a name, even without a SAN extension; common_name_matches tells what the legacy
    fallback (RFC 6125 6.4.4, only without any SAN extension) would have said."""
    no_san = _cert(name("legacy.example"))
    assert not hostname_matches(no_san, "legacy.example")
    assert common_name_matches(no_san, "legacy.example") is True
    assert common_name_matches(no_san, "LEGACY.example.") is True
    assert common_name_matches(no_san, "other.example") is False
    assert common_name_matches(_cert(name("10.0.0.1")), "10.0.0.1") is False  # an IP is never taken from the CN
    wildcard_cn = _cert(name("*.legacy.example"))
    assert common_name_matches(wildcard_cn, "www.legacy.example") is True
    assert common_name_matches(wildcard_cn, "legacy.example") is False
    with_san = _cert(name("legacy.example"), _san("www.example"))
    assert not hostname_matches(with_san, "legacy.example")
    assert common_name_matches(with_san, "legacy.example") is None  # a SAN is there: no client looks at the CN
    assert common_name_matches(_cert(name("legacy.example"), _san("192.0.2.1")), "legacy.example") is None


def test_name_check_reasons():
    """Why a name does not match: no SAN extension, or a SAN without the name; without a name, not_applicable."""
    no_san = name_check(_cert(name("legacy.example")), "legacy.example")
    assert (no_san.match.value, no_san.mismatch, no_san.cn_only.value) == (False, "no_subject_alt_name", True)
    other = name_check(_cert(name("legacy.example"), _san("www.example")), "legacy.example")
    assert (other.match.value, other.mismatch, other.cn_only.status) == (False, "no_matching_name", "not_probed")
    matched = name_check(_cert(name("x"), _san("www.example")), "www.example")
    assert (matched.match.value, matched.mismatch) == (True, None)
    unnamed = name_check(_cert(name("legacy.example")), None)
    assert unnamed.match.status == unnamed.cn_only.status == "not_probed" and unnamed.mismatch is None


# --- certificate_facts on odd certificates -----------------------------------------------------------------------


def test_certificate_without_any_extension():
    """A bare v3 certificate: every extension-derived field null or empty, the rest filled, self-signed."""
    cert = certificate_facts(_cert(name("bare.test", country="DE")), now=NOW + dt.timedelta(days=10))
    assert (cert.key_usage, cert.extended_key_usage, cert.basic_constraints, cert.sct_count) == (None, None, None, None)
    assert (cert.subject_alt_names, cert.ocsp_urls, cert.ca_issuer_urls, cert.crl_urls, cert.policies) == (
        [],
        [],
        [],
        [],
        [],
    )
    assert not cert.must_staple and cert.self_signed
    assert cert.subject == "CN=bare.test,O=tlsgate tests,C=DE"
    assert (cert.subject_fields.country, cert.issuer_fields.country) == ("DE", "DE")
    assert cert.serial == "1234"
    assert (cert.validity_days, cert.days_remaining) == (30, 20)


def test_ed25519_certificate():
    """An Ed25519 self-signed certificate: key type Ed25519, no separate signature hash, self-signed verified."""
    cert = certificate_facts(issue(name("ed.test"), key=new_key("ed25519")).cert)
    assert (cert.public_key.type, cert.public_key.size, cert.public_key.curve) == ("Ed25519", 256, "Ed25519")
    assert (cert.signature_algorithm, cert.signature_hash) == ("ed25519", None)
    assert cert.self_signed


@pytest.fixture(scope="module")
def sha1_certs(tmp_path_factory: pytest.TempPathFactory) -> list[x509.Certificate]:
    """Two SHA-1 self-signed certificates with the same name and different keys, made by openssl (cryptography
    refuses to sign with SHA-1)."""
    openssl = shutil.which("openssl")
    assert openssl, "openssl is required"
    directory = tmp_path_factory.mktemp("sha1")
    certs = []
    for index in range(2):
        out, key = directory / f"sha1-{index}.pem", directory / f"sha1-{index}-key.pem"
        subprocess.run(
            [openssl, "req", "-x509", "-sha1", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(out),
             "-days", "30", "-subj", "/CN=sha1.test/O=legacy"],
            check=True, capture_output=True,
        )  # fmt: skip
        certs.append(x509.load_pem_x509_certificate(out.read_bytes()))
    return certs


def test_sha1_signed_certificate(sha1_certs):
    """A SHA-1 signature is reported as sha1 and still verified: self-signed, and ordered only with the right key."""
    first, second = sha1_certs
    cert = certificate_facts(first)
    assert (cert.signature_algorithm, cert.signature_hash) == ("sha1WithRSAEncryption", "sha1")
    assert (cert.public_key.type, cert.public_key.size) == ("RSA", 2048)
    assert cert.self_signed
    assert cert.subject_fields.organization == "legacy"
    assert chain_order_valid([first, first])
    assert not chain_order_valid([first, second])  # same name, other key: the signature does not verify


def _sct_list(count: int) -> bytes:
    """The DER extnValue of a PrecertificateSignedCertificateTimestamps extension with ``count`` v1 SCTs."""
    signature = b"\x30\x06\x02\x01\x01\x02\x01\x01"
    sct = (
        b"\x00" + bytes(range(32)) + (1_700_000_000_000).to_bytes(8, "big") + b"\x00\x00"
        + b"\x04\x03" + len(signature).to_bytes(2, "big") + signature
    )  # fmt: skip
    body = b"".join(len(sct).to_bytes(2, "big") + sct for _ in range(count))
    tls = len(body).to_bytes(2, "big") + body
    assert len(tls) < 128
    return b"\x04" + bytes([len(tls)]) + tls


def test_every_optional_extension_and_dn_field():
    """Policies, must-staple, SCTs, encipherOnly key usage and every DN attribute (first value) are reported."""
    subject = x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "GB"),
        x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "Kent"),
        x509.NameAttribute(NameOID.LOCALITY_NAME, "Canterbury"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Partner Ltd"),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Payments"),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Second unit"),
        x509.NameAttribute(NameOID.EMAIL_ADDRESS, "pki@partner.test"),
        x509.NameAttribute(NameOID.SERIAL_NUMBER, "PART-0042"),
        x509.NameAttribute(NameOID.COMMON_NAME, "partner.test"),
    ])  # fmt: skip
    usage = x509.KeyUsage(
        digital_signature=False, content_commitment=True, key_encipherment=False, data_encipherment=True,
        key_agreement=True, key_cert_sign=False, crl_sign=False, encipher_only=True, decipher_only=False,
    )  # fmt: skip
    cert = certificate_facts(
        _cert(
            subject,
            usage,
            x509.CertificatePolicies(
                [
                    x509.PolicyInformation(x509.ObjectIdentifier("2.23.140.1.2.2"), None),
                    x509.PolicyInformation(x509.ObjectIdentifier("1.3.6.1.4.1.99999.1"), ["https://cps.partner.test"]),
                ]
            ),
            x509.TLSFeature([x509.TLSFeatureType.status_request]),
            x509.UnrecognizedExtension(ExtensionOID.PRECERT_SIGNED_CERTIFICATE_TIMESTAMPS, _sct_list(2)),
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING, x509.ObjectIdentifier("1.2.3.4.5")]),
        )
    )
    fields = cert.subject_fields
    assert (fields.common_name, fields.organization, fields.organizational_unit) == (
        "partner.test",
        "Partner Ltd",
        "Payments",
    )
    assert (fields.country, fields.state, fields.locality) == ("GB", "Kent", "Canterbury")
    assert (fields.email, fields.serial_number) == ("pki@partner.test", "PART-0042")
    assert cert.issuer_fields == fields
    assert cert.key_usage == ["contentCommitment", "dataEncipherment", "keyAgreement", "encipherOnly"]
    assert cert.policies == ["2.23.140.1.2.2", "1.3.6.1.4.1.99999.1"]
    assert cert.must_staple
    assert cert.sct_count == 2
    assert [(e.name, e.oid) for e in cert.extended_key_usage or []] == [
        ("codeSigning", "1.3.6.1.5.5.7.3.3"),
        ("1.2.3.4.5", "1.2.3.4.5"),
    ]


def test_tls_feature_without_status_request_is_not_must_staple():
    """A TLS Feature extension that lists only status_request_v2 is not must-staple."""
    cert = certificate_facts(_cert(None, x509.TLSFeature([x509.TLSFeatureType.status_request_v2])))
    assert not cert.must_staple


def test_malformed_extension_degrades_only_its_field():
    """A truncated SAN extension empties the SANs but keeps key usage, EKU, AIA and the rest; no CN fallback."""
    broken = _cert(
        name("broken.test"),
        x509.UnrecognizedExtension(ExtensionOID.SUBJECT_ALTERNATIVE_NAME, b"\x30\x03\x82\x01"),
        x509.BasicConstraints(ca=False, path_length=None),
        x509.ExtendedKeyUsage(SERVER_AUTH),
        x509.AuthorityInformationAccess(
            [x509.AccessDescription(x509.oid.AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(OCSP))]
        ),
        x509.UnrecognizedExtension(ExtensionOID.CRL_DISTRIBUTION_POINTS, b"\x30\x05\xff\xff"),
        x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.99999.7"), b"\x05\x00"),
    )
    with pytest.raises(ValueError, match="parsing"):
        _ = broken.extensions  # what cryptography does with the whole set
    cert = certificate_facts(broken)
    assert (cert.subject_alt_names, cert.crl_urls) == ([], [])
    assert cert.basic_constraints is not None and not cert.basic_constraints.ca
    assert [e.name for e in cert.extended_key_usage or []] == ["serverAuth"]
    assert cert.ocsp_urls == [OCSP]
    assert cert.self_signed and cert.subject == "CN=broken.test,O=tlsgate tests"
    assert not hostname_matches(broken, "broken.test")  # a SAN is present, if unreadable: the CN is not used
    assert name_check(broken, "broken.test").mismatch == "unreadable_subject_alt_name"
    assert common_name_matches(broken, "broken.test") is None


def test_duplicate_extension_is_unreadable_not_fatal():
    """A certificate with two SAN extensions reports no SAN (which one counts is ambiguous) and keeps the rest."""
    stand_in = x509.ObjectIdentifier("2.5.29.99")  # same encoded length as subjectAltName (2.5.29.17)
    other_san = _san("b.dup.test").public_bytes()
    built = _cert(
        name("dup.test"),
        _san("a.dup.test"),
        x509.UnrecognizedExtension(stand_in, other_san),
        x509.BasicConstraints(ca=False, path_length=None),
    )
    der = built.public_bytes(serialization.Encoding.DER)
    assert der.count(b"\x06\x03\x55\x1d\x63") == 1
    duplicated = x509.load_der_x509_certificate(der.replace(b"\x06\x03\x55\x1d\x63", b"\x06\x03\x55\x1d\x11"))
    with pytest.raises(x509.DuplicateExtension):
        _ = duplicated.extensions
    cert = certificate_facts(duplicated)
    assert cert.subject_alt_names == []
    assert cert.basic_constraints is not None and not cert.basic_constraints.ca
    assert not hostname_matches(duplicated, "a.dup.test") and not hostname_matches(duplicated, "dup.test")


def test_unknown_key_type_is_not_self_signed():
    """A certificate carrying an X25519 key (which cannot sign) reports an unknown key and is not self-signed."""
    signer = new_key("ed25519")
    subject = name("x25519.test")
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(x25519.X25519PrivateKey.generate().public_key())
        .serial_number(7)
        .not_valid_before(NOW)
        .not_valid_after(NOW + dt.timedelta(days=1))
        .sign(signer, None)
    )
    facts = certificate_facts(cert)
    assert (facts.public_key.type, facts.public_key.size) == ("unknown", None)
    assert not facts.self_signed


def test_self_signed_needs_own_signature():
    """Subject equal to issuer is not enough: signed by another key under its own name, it is not self-signed."""
    genuine = _cert(name("same.test"))
    resigned = (
        x509.CertificateBuilder()
        .subject_name(genuine.subject)
        .issuer_name(genuine.issuer)
        .public_key(new_key().public_key())
        .serial_number(9)
        .not_valid_before(NOW)
        .not_valid_after(NOW + dt.timedelta(days=1))
        .sign(new_key(), hashes.SHA256())
    )
    assert certificate_facts(genuine).self_signed
    assert not certificate_facts(resigned).self_signed


# --- chain_facts and chain_order_valid ----------------------------------------------------------------------------


def test_chain_facts_without_a_name():
    """Without a name to check, hostname_match is not_probed with a not_applicable reason; order is still observed."""
    pki = hierarchy("noname")
    certs, match, ordered = chain_facts([pki.leaf.cert, pki.intermediate.cert], None)
    assert len(certs) == 2
    assert match.status == "not_probed" and match.value is None
    assert match.error is not None and match.error.error_class == ErrorClass.not_applicable
    assert (ordered.status, ordered.value) == ("ok", True)


def test_chain_facts_of_an_empty_chain():
    """An empty chain yields no certificate facts and both chain facts as errors, never a value."""
    certs, match, ordered = chain_facts([], "localhost")
    assert certs == []
    assert match.status == ordered.status == "error"
    assert match.error is not None and match.error.error_class == ErrorClass.probe_failed


def test_chain_order_edge_cases():
    """One certificate is ordered; a leaf followed by an unrelated CA, or a reversed chain, is not."""
    pki, other = hierarchy("edge"), hierarchy("other")
    assert chain_order_valid([pki.leaf.cert])
    assert chain_order_valid([pki.root.cert])
    assert chain_order_valid([pki.intermediate.cert, pki.root.cert])
    assert not chain_order_valid([pki.leaf.cert, other.intermediate.cert])
    assert not chain_order_valid([pki.root.cert, pki.intermediate.cert, pki.leaf.cert])
    # An intermediate with the right name but another key: the names chain, the signature does not.
    twin = issue(pki.intermediate.cert.subject, issuer=pki.root, ca=True)
    assert not chain_order_valid([pki.leaf.cert, twin.cert])
