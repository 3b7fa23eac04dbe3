"""The grade of real servers on loopback equals the grade worked out by hand from the SSL Labs rating guide.

Each case starts a server (openssl s_server, gnutls-serv or Python ssl) with certificates made here, scans it with the
real command line (trusting the test CA with --ca-file), and compares the grade and the three category scores with
the computation written beside it. The tables (docs/grade.md): protocol SSL 3.0 80, TLS 1.0 90, TLS 1.1 95, TLS 1.2
and 1.3 100, (best + worst) / 2; key exchange by the weakest strength in RSA bits (EC by NIST SP 800-57: x25519 and
P-256 = 3072, P-384 = 7680): < 1024 40, < 2048 80, < 4096 90, else 100; cipher (strongest + weakest) / 2 with 128
and 168 bits = 80, 256 bits = 100; score = 0.3 protocol + 0.3 key exchange + 0.4 cipher; A >= 80, B >= 65, C >= 50.

What the local OpenSSL cannot offer: OpenSSL 3.0 here is built without RC4 and 3DES (``openssl ciphers RC4:3DES``
finds none), so those two cases run on gnutls-serv, which still offers both with TLS 1.2. SSL 2.0 and SSL 3.0 are
offered by none of the three servers on this machine: their caps (F, B, C for POODLE) are tested on constructed
facts in test_grade_rules.py.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dh

from scanner.report import TargetReport
from tests import pki
from tests.helpers import gnutls_server, openssl_server, python_tls_server, run_tlsgate

# RFC 2409 section 6.2, the second Oakley group: a well-known 1024-bit MODP prime (generator 2).
OAKLEY_GROUP_2 = int(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DD"
    "EF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED"
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE65381FFFFFFFFFFFFFFFF",
    16,
)
# Mozilla Server Side TLS 5.7, "intermediate": TLS 1.2 suites (OpenSSL names); TLS 1.3 suites as OpenSSL's default.
MOZILLA_INTERMEDIATE = (
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305"
)


@dataclass(frozen=True)
class Pki:
    ca: Path
    rsa2048: tuple[Path, Path]
    rsa4096: tuple[Path, Path]
    p256: tuple[Path, Path]
    expired: tuple[Path, Path]
    self_signed: tuple[Path, Path]
    wrong_host: tuple[Path, Path]
    dh1024: Path


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """One test CA and the leaves the cases serve (names localhost and 127.0.0.1 unless the case is about names)."""
    directory = tmp_path_factory.mktemp("grade-pki")
    now = dt.datetime.now(dt.UTC)
    ca = pki.issue(pki.name("grade test CA"), ca=True, not_before=now - dt.timedelta(days=1), days=3650)
    (directory / "ca.pem").write_bytes(ca.pem)
    names = ("localhost", "127.0.0.1")

    def leaf(stem: str, key: str, **options: object) -> tuple[Path, Path]:
        issued = pki.issue(
            pki.name(stem), issuer=options.pop("issuer", ca), key=pki.new_key(key),  # type: ignore[arg-type]
            not_before=options.pop("not_before", now - dt.timedelta(minutes=5)),  # type: ignore[arg-type]
            sans=options.pop("sans", names), **options,  # type: ignore[arg-type]
        )  # fmt: skip
        return issued.write(directory, stem, chain=[ca] if issued.issuer is not None else [])

    self_signed = pki.issue(pki.name("self-signed"), key=pki.new_key("rsa2048"), sans=names)
    dh_file = directory / "dh1024.pem"
    dh_file.write_bytes(
        dh.DHParameterNumbers(OAKLEY_GROUP_2, 2)
        .parameters()
        .parameter_bytes(serialization.Encoding.PEM, serialization.ParameterFormat.PKCS3)
    )
    return Pki(
        ca=directory / "ca.pem",
        rsa2048=leaf("rsa2048", "rsa2048"),
        rsa4096=leaf("rsa4096", "rsa4096"),
        p256=leaf("p256", "p256"),
        expired=leaf("expired", "rsa2048", not_before=now - dt.timedelta(days=400), days=30),
        self_signed=self_signed.write(directory, "self-signed"),
        wrong_host=leaf("wrong-host", "rsa2048", sans=("wrong.example",)),
        dh1024=dh_file,
    )


def _graded(port: int, ca: Path, tmp_path: Path) -> TargetReport:
    """Scan 127.0.0.1:PORT with the real command line (the CA trusted) and read the target back from the report."""
    out = tmp_path / f"report-{port}.json"
    run = run_tlsgate("scan", f"127.0.0.1:{port}", "--ca-file", str(ca), "--json", str(out), "--quiet")
    assert run.code in (0, 1), run.stderr
    return TargetReport.model_validate(json.loads(out.read_text())["targets"][0])


def _check(target: TargetReport, grade: str, protocol: int, key_exchange: int, cipher: int, score: int) -> None:
    grading = target.grading
    assert grading is not None, target.facts.model_dump_json()
    worked = (grading.grade, grading.protocol_score, grading.key_exchange_score, grading.cipher_score, grading.score)
    assert worked == (grade, protocol, key_exchange, cipher, score), grading.model_dump_json(indent=1)
    assert target.grade == grade


@contextlib.contextmanager
def _python(cert: tuple[Path, Path], minimum: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2) -> Iterator[int]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*cert)
    context.minimum_version = minimum
    with python_tls_server(context) as server:
        yield server.port


def test_tls13_only(certs: Pki, tmp_path: Path) -> None:
    """Python ssl, TLS 1.3 only, RSA 2048.
    protocol (100 + 100) / 2 = 100; key exchange min(RSA 2048, x25519 = 3072) = 2048 < 4096 -> 90;
    cipher AES-256 / ChaCha20 (100) and AES-128 (80) -> 90; score 30 + 27 + 36 = 93 -> A; no cap applies -> A."""
    with _python(certs.rsa2048, ssl.TLSVersion.TLSv1_3) as port:
        _check(_graded(port, certs.ca, tmp_path), "A", 100, 90, 90, 93)


def test_tls13_only_ecdsa_p256(certs: Pki, tmp_path: Path) -> None:
    """Python ssl, TLS 1.3 only, ECDSA P-256.
    key exchange min(P-256 = 3072, x25519 = 3072) = 3072 < 4096 -> 90; the rest as TLS 1.3 only: 93 -> A."""
    with _python(certs.p256, ssl.TLSVersion.TLSv1_3) as port:
        _check(_graded(port, certs.ca, tmp_path), "A", 100, 90, 90, 93)


def test_mozilla_intermediate(certs: Pki, tmp_path: Path) -> None:
    """openssl s_server, TLS 1.2 + 1.3 with Mozilla's intermediate suites (ECDHE and DHE, AES-GCM and ChaCha20),
    RSA 2048 and DH 2048 (OpenSSL's automatic DH for a 2048-bit key).
    protocol 100; key exchange min(RSA 2048, DH 2048, x25519 3072) = 2048 -> 90; cipher (100 + 80) / 2 = 90;
    93 -> A; DH is not below 2048, forward secrecy and AEAD everywhere: no cap -> A."""
    cert, key = certs.rsa2048
    with openssl_server(cert, key, "-min_protocol", "TLSv1.2", "-cipher", MOZILLA_INTERMEDIATE) as port:
        _check(_graded(port, certs.ca, tmp_path), "A", 100, 90, 90, 93)


def test_tls10_to_12_with_cbc(certs: Pki, tmp_path: Path) -> None:
    """openssl s_server, TLS 1.0 to 1.2, ECDHE with AES-CBC (and one GCM suite), RSA 2048.
    protocol (TLS 1.2 100 + TLS 1.0 90) / 2 = 95; key exchange 2048 -> 90; cipher (100 + 80) / 2 = 90;
    28.5 + 27 + 36 = 91.5 -> 92 -> A; cap: TLS 1.0 and 1.1 accepted -> B (2009q, January 2020) -> B."""
    cert, key = certs.rsa2048
    suites = "ECDHE-RSA-AES128-SHA:ECDHE-RSA-AES256-SHA:ECDHE-RSA-AES128-GCM-SHA256:@SECLEVEL=0"
    args = ("-min_protocol", "TLSv1", "-max_protocol", "TLSv1.2", "-cipher", suites)
    with openssl_server(cert, key, *args) as port:
        target = _graded(port, certs.ca, tmp_path)
    _check(target, "B", 95, 90, 90, 92)
    assert [c.rule for c in target.grading.caps] == ["tls10-tls11"]  # type: ignore[union-attr]


def test_tls11_only(certs: Pki, tmp_path: Path) -> None:
    """openssl s_server, TLS 1.1 only, ECDHE with AES-CBC, RSA 2048.
    protocol (95 + 95) / 2 = 95; key exchange 90; cipher (100 + 80) / 2 = 90; 28.5 + 27 + 36 = 91.5 -> 92 -> A;
    caps: no TLS 1.2 -> C (2009j), TLS 1.1 -> B, no AEAD suite -> B (March 2018): the lowest, C."""
    cert, key = certs.rsa2048
    args = (
        "-min_protocol",
        "TLSv1.1",
        "-max_protocol",
        "TLSv1.1",
        "-cipher",
        "ECDHE-RSA-AES128-SHA:ECDHE-RSA-AES256-SHA:@SECLEVEL=0",
    )
    with openssl_server(cert, key, *args) as port:
        target = _graded(port, certs.ca, tmp_path)
    _check(target, "C", 95, 90, 90, 92)
    assert {c.rule for c in target.grading.caps} == {"no-tls12", "tls10-tls11", "no-aead"}  # type: ignore[union-attr]


def test_rc4(certs: Pki, tmp_path: Path) -> None:
    """gnutls-serv, TLS 1.2, ECDHE and RSA key exchange with AES-128-GCM and RC4-128, RSA 2048.
    protocol 100; key exchange min(RSA 2048, x25519 3072) = 2048 -> 90; cipher (80 + 80) / 2 = 80;
    30 + 27 + 32 = 89 -> A; caps: RC4 -> B (2009i), RC4 with TLS 1.1+ -> C (2009j) -> C."""
    cert, key = certs.rsa2048
    priority = "NORMAL:-VERS-ALL:+VERS-TLS1.2:-CIPHER-ALL:+AES-128-GCM:+ARCFOUR-128:+SHA1:+AEAD:-KX-ALL:+ECDHE-RSA:+RSA"
    with gnutls_server(cert, key, "--priority", priority) as port:
        target = _graded(port, certs.ca, tmp_path)
    _check(target, "C", 100, 90, 80, 89)
    assert {"rc4", "rc4-modern"} <= {c.rule for c in target.grading.caps}  # type: ignore[union-attr]


def test_3des(certs: Pki, tmp_path: Path) -> None:
    """gnutls-serv, TLS 1.2, ECDHE with AES-128-GCM and 3DES-EDE-CBC, RSA 2048.
    protocol 100; key exchange 2048 -> 90; cipher (AES 128: 80 + 3DES 168: 80) / 2 = 80; 89 -> A;
    cap: a 64-bit block cipher with TLS 1.1+ -> C (January 2017) -> C."""
    cert, key = certs.rsa2048
    priority = "NORMAL:-VERS-ALL:+VERS-TLS1.2:-CIPHER-ALL:+AES-128-GCM:+3DES-CBC:+SHA1:+AEAD:-KX-ALL:+ECDHE-RSA"
    with gnutls_server(cert, key, "--priority", priority) as port:
        target = _graded(port, certs.ca, tmp_path)
    _check(target, "C", 100, 90, 80, 89)
    assert [c.rule for c in target.grading.caps] == ["64-bit-block"]  # type: ignore[union-attr]


def test_no_forward_secrecy(certs: Pki, tmp_path: Path) -> None:
    """openssl s_server, TLS 1.2 only, RSA key exchange with AES-GCM, RSA 2048.
    protocol 100; key exchange RSA 2048 -> 90; cipher (100 + 80) / 2 = 90; 93 -> A;
    cap: no suite with forward secrecy -> B (March 2018) -> B."""
    cert, key = certs.rsa2048
    args = ("-min_protocol", "TLSv1.2", "-max_protocol", "TLSv1.2", "-cipher", "AES128-GCM-SHA256:AES256-GCM-SHA384")
    with openssl_server(cert, key, *args) as port:
        target = _graded(port, certs.ca, tmp_path)
    _check(target, "B", 100, 90, 90, 93)
    assert [c.rule for c in target.grading.caps] == ["no-forward-secrecy"]  # type: ignore[union-attr]


def test_dh_1024(certs: Pki, tmp_path: Path) -> None:
    """openssl s_server, TLS 1.2 only, DHE with AES-128-GCM and the 1024-bit Oakley group 2, RSA 2048.
    protocol 100; key exchange min(RSA 2048, DH 1024) = 1024 < 2048 -> 80; cipher (80 + 80) / 2 = 80;
    30 + 24 + 32 = 86 -> A; cap: DH parameters below 2048 bits -> B (2009j) -> B."""
    cert, key = certs.rsa2048
    args = ("-min_protocol", "TLSv1.2", "-max_protocol", "TLSv1.2", "-dhparam", str(certs.dh1024),
            "-cipher", "DHE-RSA-AES128-GCM-SHA256:@SECLEVEL=0")  # fmt: skip
    with openssl_server(cert, key, *args) as port:
        target = _graded(port, certs.ca, tmp_path)
    _check(target, "B", 100, 80, 80, 86)
    assert [c.rule for c in target.grading.caps] == ["weak-dh"]  # type: ignore[union-attr]


def test_rsa_2048(certs: Pki, tmp_path: Path) -> None:
    """openssl s_server, TLS 1.2 + 1.3, ECDHE with AES-GCM on x25519 only, RSA 2048.
    protocol 100; key exchange min(RSA 2048, x25519 3072) = 2048 < 4096 -> 90; cipher 90; 93 -> A."""
    cert, key = certs.rsa2048
    args = (
        "-min_protocol",
        "TLSv1.2",
        "-groups",
        "x25519",
        "-cipher",
        "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384",
    )
    with openssl_server(cert, key, *args) as port:
        _check(_graded(port, certs.ca, tmp_path), "A", 100, 90, 90, 93)


def test_rsa_4096(certs: Pki, tmp_path: Path) -> None:
    """The same server with RSA 4096 and P-384 only: key exchange min(RSA 4096, P-384 = 7680) = 4096 -> 100;
    30 + 30 + 36 = 96 -> A (with x25519, 3072 bits, it would stay at 90: the weaker part counts)."""
    cert, key = certs.rsa4096
    args = (
        "-min_protocol",
        "TLSv1.2",
        "-groups",
        "secp384r1",
        "-cipher",
        "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384",
    )
    with openssl_server(cert, key, *args) as port:
        _check(_graded(port, certs.ca, tmp_path), "A", 100, 100, 90, 96)


def test_expired(certs: Pki, tmp_path: Path) -> None:
    """Python ssl, TLS 1.2 + 1.3, a certificate from the test CA that expired a year ago: its scores are those of a
    good server (100, 90, 90: 93 -> A) but an expired certificate is not trusted -> T (Certificate Inspection)."""
    with _python(certs.expired) as port:
        target = _graded(port, certs.ca, tmp_path)
    _check(target, "T", 100, 90, 90, 93)
    assert target.grading.caps[0].rule == "untrusted" and "expired" in target.grading.caps[0].reason  # type: ignore[union-attr]


def test_self_signed(certs: Pki, tmp_path: Path) -> None:
    """Python ssl, TLS 1.2 + 1.3, a self-signed RSA 2048 certificate no store trusts: 93 -> A, untrusted -> T."""
    with _python(certs.self_signed) as port:
        target = _graded(port, certs.ca, tmp_path)
    _check(target, "T", 100, 90, 90, 93)


def test_wrong_host(certs: Pki, tmp_path: Path) -> None:
    """Python ssl, TLS 1.2 + 1.3, a trusted certificate for wrong.example scanned as 127.0.0.1: 93 -> A, the name
    does not match -> M (2009q, Methodology Overview)."""
    with _python(certs.wrong_host) as port:
        target = _graded(port, certs.ca, tmp_path)
    _check(target, "M", 100, 90, 90, 93)
