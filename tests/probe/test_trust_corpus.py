"""Differential trust corpus: tlsgate's verdict against ``openssl verify -purpose sslserver`` on generated chains.

Every chain carries one deviation or one classic failure. For each, tlsgate's trust evaluation (the function the
scan uses) must agree with OpenSSL's verifier on trusted / not trusted and on the class of the reason, except the
deliberate differences listed in ``DIFFERENCES`` (and in docs/trust.md). A few chains are also served by a real
``openssl s_server`` and scanned end to end.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtendedKeyUsageOID

from scanner.probe.pki.fetch import Fetcher
from scanner.probe.pki.lints import certificate_lints
from scanner.probe.pki.stores import TrustStoreSpec
from scanner.probe.pki.trust import evaluate_trust
from tests.helpers import openssl_server
from tests.pki import CLIENT_AUTH, NOW, SERVER_AUTH, Issued, issue, name, new_key

HOST = "www.example.test"
PAST = NOW - dt.timedelta(days=400)
FUTURE = NOW + dt.timedelta(days=30)
UNREACHABLE_AIA = "http://127.0.0.1:9/issuer.crt"  # the discard port: nothing answers, the fetch fails


@dataclass
class Chain:
    """What a test serves (leaf first), the roots the client trusts, and the name it asks for."""

    served: list[Issued]
    roots: list[Issued]
    host: str = HOST
    extra: dict[str, str] = field(default_factory=dict)


def _root(prefix: str, **options: object) -> Issued:
    return issue(name(f"{prefix} root CA"), ca=True, days=3650, key=new_key("rsa2048"), **options)  # type: ignore[arg-type]


def _intermediate(prefix: str, root: Issued, **options: object) -> Issued:
    settings: dict[str, object] = {"ca": True, "days": 1825, "key": new_key("rsa2048")}
    settings.update(options)
    return issue(name(f"{prefix} intermediate CA"), issuer=root, **settings)  # type: ignore[arg-type]


def _leaf(issuer: Issued, *sans: str, **options: object) -> Issued:
    settings: dict[str, object] = {"sans": sans or (HOST,), "eku": SERVER_AUTH, "days": 90}
    settings.update(options)
    return issue(name(sans[0] if sans else HOST), issuer=issuer, **settings)  # type: ignore[arg-type]


def three(
    prefix: str,
    root: dict[str, object] | None = None,
    intermediate: dict[str, object] | None = None,
    leaf: dict[str, object] | None = None,
    sans: tuple[str, ...] = (),
    host: str = HOST,
) -> Chain:
    """root -> intermediate -> leaf, each with the given deviations; the leaf and intermediate are served."""
    top = _root(prefix, **(root or {}))
    middle = _intermediate(prefix, top, **(intermediate or {}))
    return Chain([_leaf(middle, *sans, **(leaf or {})), middle], [top], host)


def _two(prefix: str) -> Chain:
    top = _root(prefix)
    return Chain([_leaf(top)], [top])


def _unknown_issuer(prefix: str) -> Chain:
    chain = three(prefix)
    return Chain(chain.served, [_root(f"{prefix} other")])


def _served_root_unknown(prefix: str) -> Chain:
    chain = three(prefix)
    return Chain([*chain.served, chain.roots[0]], [_root(f"{prefix} other")])


def _missing_intermediate(prefix: str, aia: str | None) -> Chain:
    chain = three(prefix, leaf={"ca_issuer_url": aia} if aia else None)
    return Chain(chain.served[:1], chain.roots)


def _self_signed_leaf(prefix: str) -> Chain:
    leaf = issue(name(HOST), sans=(HOST,), eku=SERVER_AUTH, key=new_key("rsa2048"))
    return Chain([leaf], [_root(prefix)])


def _path_length(prefix: str) -> Chain:
    top = _root(prefix)
    first = _intermediate(prefix, top, path_length=0)
    second = issue(name(f"{prefix} second intermediate CA"), issuer=first, ca=True, key=new_key("rsa2048"))
    return Chain([_leaf(second), second, first], [top])


def _bad_signature(prefix: str) -> Chain:
    """The leaf names the intermediate as its issuer but was signed by a namesake with another key."""
    chain = three(prefix)
    namesake = _intermediate(prefix, chain.roots[0])
    forged = _leaf(namesake, key_ids=False)
    return Chain([forged, chain.served[1]], chain.roots)


def _intermediate_without_constraints(prefix: str) -> Chain:
    return three(prefix, intermediate={"bc_critical": None})


def _leaf_signed(prefix: str, algorithm: hashes.HashAlgorithm) -> Chain:
    return three(prefix, leaf={"hash_algorithm": algorithm, "key": new_key("rsa2048")})


@dataclass(frozen=True)
class Case:
    id: str
    build: Callable[[str], Chain]
    openssl: str  # the class OpenSSL's verdict falls in: "trusted" or a tlsgate reason
    why: str = ""


# The reason classes OpenSSL's error codes fall in (X509_V_ERR_*); 2/20 cannot tell a missing intermediate from an
# unknown issuer, tlsgate can (an AIA CA-issuer URL says the issuer is published: the server should have sent it).
OPENSSL_CLASSES = {
    0: {"trusted"},
    2: {"unknown_issuer", "missing_intermediate"},
    20: {"unknown_issuer", "missing_intermediate"},
    19: {"unknown_issuer"},
    18: {"self_signed"},
    10: {"expired"},
    9: {"not_yet_valid"},
    62: {"name_mismatch"},
    64: {"name_mismatch"},
    7: {"bad_signature"},
    26: {"wrong_purpose"},
    24: {"not_a_ca"},
    79: {"not_a_ca"},
    25: {"path_length_exceeded"},
    47: {"name_constraints_violated"},
}

CASES = [
    # Chains every client accepts, including the RFC 5280 / CA/B deviations they tolerate.
    Case("complete-chain", three, "trusted"),
    Case("leaf-under-root", _two, "trusted"),
    Case("intermediate-bc-not-critical", lambda p: three(p, intermediate={"bc_critical": False}), "trusted"),
    Case("intermediate-ku-missing", lambda p: three(p, intermediate={"ku_critical": None}), "trusted"),
    Case("intermediate-ku-not-critical", lambda p: three(p, intermediate={"ku_critical": False}), "trusted"),
    Case(
        "intermediate-no-key-ids",
        lambda p: three(p, intermediate={"key_ids": False}, leaf={"key_ids": False}),
        "trusted",
    ),
    Case("root-bc-not-critical", lambda p: three(p, root={"bc_critical": False}), "trusted"),
    Case("root-ku-missing", lambda p: three(p, root={"ku_critical": None}), "trusted"),
    Case("intermediate-eku-server", lambda p: three(p, intermediate={"eku": SERVER_AUTH}), "trusted"),
    Case("root-no-ski", lambda p: three(p, root={"key_ids": False}), "trusted"),
    Case("leaf-no-key-ids", lambda p: three(p, leaf={"key_ids": False}), "trusted"),
    Case("leaf-ku-missing", lambda p: three(p, leaf={"ku_critical": None}), "trusted"),
    Case("leaf-ku-not-critical", lambda p: three(p, leaf={"ku_critical": False}), "trusted"),
    Case("leaf-bc-missing", lambda p: three(p, leaf={"bc_critical": None}), "trusted"),
    Case("leaf-bc-not-critical", lambda p: three(p, leaf={"bc_critical": False}), "trusted"),
    Case("leaf-eku-missing", lambda p: three(p, leaf={"eku": None}), "trusted"),
    Case("leaf-eku-server-and-client", lambda p: three(p, leaf={"eku": SERVER_AUTH + CLIENT_AUTH}), "trusted"),
    Case("name-constraints-kept", lambda p: three(p, intermediate={"permitted_dns": ("example.test",)}), "trusted"),
    Case("ip-san", lambda p: three(p, sans=("127.0.0.1",), host="127.0.0.1"), "trusted"),
    Case("wildcard", lambda p: three(p, sans=("*.example.test",)), "trusted"),
    # The classic failures.
    Case("leaf-eku-client-only", lambda p: three(p, leaf={"eku": CLIENT_AUTH}), "wrong_purpose"),
    Case(
        "leaf-eku-code-signing", lambda p: three(p, leaf={"eku": [ExtendedKeyUsageOID.CODE_SIGNING]}), "wrong_purpose"
    ),
    Case(
        "leaf-eku-any-only",
        lambda p: three(p, leaf={"eku": [ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE]}),
        "wrong_purpose",
    ),
    Case("intermediate-eku-client-only", lambda p: three(p, intermediate={"eku": CLIENT_AUTH}), "wrong_purpose"),
    Case("leaf-expired", lambda p: three(p, leaf={"not_before": PAST, "days": 90}), "expired"),
    Case("intermediate-expired", lambda p: three(p, intermediate={"not_before": PAST, "days": 90}), "expired"),
    Case("leaf-not-yet-valid", lambda p: three(p, leaf={"not_before": FUTURE}), "not_yet_valid"),
    Case("unknown-issuer", _unknown_issuer, "unknown_issuer"),
    Case("served-root-unknown", _served_root_unknown, "unknown_issuer"),
    Case("missing-intermediate", lambda p: _missing_intermediate(p, None), "unknown_issuer"),
    Case("missing-intermediate-aia", lambda p: _missing_intermediate(p, UNREACHABLE_AIA), "missing_intermediate"),
    Case("self-signed-leaf", _self_signed_leaf, "self_signed"),
    Case("wrong-host", lambda p: three(p, sans=("other.example.test",)), "name_mismatch"),
    Case("wildcard-two-labels", lambda p: three(p, sans=("*.test",)), "name_mismatch"),
    Case(
        "wildcard-deeper-name", lambda p: three(p, sans=("*.example.test",), host="a.www.example.test"), "name_mismatch"
    ),
    Case("ip-mismatch", lambda p: three(p, sans=("127.0.0.2",), host="127.0.0.1"), "name_mismatch"),
    Case("bad-signature", _bad_signature, "bad_signature"),
    Case("intermediate-ca-false", lambda p: three(p, intermediate={"ca": False}), "not_a_ca"),
    Case("intermediate-bc-missing", _intermediate_without_constraints, "not_a_ca"),
    Case("path-length-exceeded", _path_length, "path_length_exceeded"),
    Case(
        "name-constraints-violated",
        lambda p: three(p, intermediate={"permitted_dns": ("other.test",)}),
        "name_constraints_violated",
    ),
    # Deliberate differences: OpenSSL (at its default security level for `verify`) accepts these.
    Case(
        "intermediate-sha1",
        lambda p: three(p, intermediate={"hash_algorithm": hashes.SHA1()}),  # noqa: S303 - the weak hash under test
        "trusted",
        "SHA-1 below the root",
    ),
    Case("leaf-sha1", lambda p: _leaf_signed(p, hashes.SHA1()), "trusted", "SHA-1 below the root"),  # noqa: S303
    Case("leaf-md5", lambda p: _leaf_signed(p, hashes.MD5()), "trusted", "MD5 below the root"),  # noqa: S303
    Case("leaf-is-ca", lambda p: three(p, leaf={"ca": True}), "trusted", "a CA certificate as the server's"),
    Case("root-bc-missing", lambda p: three(p, root={"bc_critical": None}), "trusted", "a root without BC"),
]

# Where tlsgate is stricter than `openssl verify` by design (docs/trust.md, "Deliberate differences").
DIFFERENCES = {
    "intermediate-sha1": "weak_signature_hash",
    "leaf-sha1": "weak_signature_hash",
    "leaf-md5": "weak_signature_hash",
    "leaf-is-ca": "wrong_purpose",
    "root-bc-missing": "not_a_ca",
}


def write(directory: Path, stem: str, certs: list[Issued]) -> Path:
    path = directory / f"{stem}.pem"
    path.write_bytes(b"".join(c.pem for c in certs))
    return path


def openssl_verify(directory: Path, chain: Chain) -> tuple[int, str]:
    """OpenSSL's error code for the chain (0: verified) and its message."""
    openssl = shutil.which("openssl")
    assert openssl, "openssl is required (apt-get install openssl)"
    leaf, intermediates = chain.served[0], chain.served[1:]
    command = [openssl, "verify", "-purpose", "sslserver", "-CAfile", str(write(directory, "roots", chain.roots))]
    if intermediates:
        command += ["-untrusted", str(write(directory, "untrusted", intermediates))]
    command += ["-verify_ip" if re.fullmatch(r"[\d.]+|[0-9a-f:]+", chain.host) else "-verify_hostname", chain.host]
    command.append(str(write(directory, "leaf", [leaf])))
    done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    found = re.search(r"error (\d+) at \d+ depth lookup: (.*)", done.stdout + done.stderr)
    if done.returncode == 0 and found is None:
        return 0, "OK"
    assert found, f"no verify error in {done.stdout}{done.stderr}"
    return int(found.group(1)), found.group(2)


def tlsgate_verdict(directory: Path, chain: Chain) -> tuple[str, str]:
    store = TrustStoreSpec("file", write(directory, "roots", chain.roots))
    (result,), _ = evaluate_trust(
        [c.cert for c in chain.served], chain.host, [store], [], Fetcher(timeout=2), dt.datetime.now(dt.UTC)
    )
    if result.trusted:
        return "trusted", ""
    return str(result.reason), result.detail or ""


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_verdict_matches_openssl(case: Case, tmp_path: Path) -> None:
    chain = case.build(f"corpus {case.id}")
    code, message = openssl_verify(tmp_path, chain)
    assert code in OPENSSL_CLASSES, f"unmapped OpenSSL error {code}: {message}"
    assert case.openssl in OPENSSL_CLASSES[code], f"OpenSSL said {code} ({message}), the case expects {case.openssl}"
    verdict, detail = tlsgate_verdict(tmp_path, chain)
    expected = DIFFERENCES.get(case.id, case.openssl)
    assert verdict == expected, f"tlsgate said {verdict} ({detail}); OpenSSL {code} ({message})"


def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= 30
    assert set(DIFFERENCES) <= {c.id for c in CASES}


# The lints of the served chain, per case: (position as served, lint id). Roots are not served, so a root's
# deviations are not linted; chains without a deviation have none.
LINTS: dict[str, set[tuple[int, str]]] = {
    "complete-chain": set(),
    "intermediate-bc-not-critical": {(1, "ca-basic-constraints-not-critical")},
    "intermediate-ku-missing": {(1, "ca-key-usage-missing")},
    "intermediate-ku-not-critical": {(1, "ca-key-usage-not-critical")},
    "intermediate-no-key-ids": {
        (1, "ca-subject-key-identifier-missing"),
        (1, "authority-key-identifier-missing"),
        (0, "subject-key-identifier-missing"),
        (0, "authority-key-identifier-missing"),
    },
    "root-bc-not-critical": set(),
    "leaf-no-key-ids": {(0, "subject-key-identifier-missing"), (0, "authority-key-identifier-missing")},
    "leaf-ku-missing": set(),
    "leaf-ku-not-critical": {(0, "key-usage-not-critical")},
    "leaf-bc-missing": set(),
    "leaf-eku-missing": {(0, "subscriber-extended-key-usage-missing")},
}


@pytest.mark.parametrize("case_id", sorted(LINTS))
def test_tolerated_deviations_are_lints(case_id: str) -> None:
    """Each tolerated deviation is reported as lints of the certificate that has it, citing its documents."""
    case = next(c for c in CASES if c.id == case_id)
    chain = case.build(f"lint {case_id}")
    lints = certificate_lints([c.cert for c in chain.served])
    assert {(lint.certificate, lint.id) for lint in lints} == LINTS[case_id]
    for lint in lints:
        served = chain.served[lint.certificate]
        assert (lint.sha256, lint.subject) == (served.sha256, served.cert.subject.rfc4514_string())
    assert {
        (lint.document, lint.section, lint.severity) for lint in lints if lint.id == "ca-basic-constraints-not-critical"
    } <= {
        ("RFC5280", "4.2.1.9", "error"),
        ("CABF-BR", "7.1.2.10.4", "error"),
    }


END_TO_END = ["intermediate-bc-not-critical", "leaf-eku-client-only", "intermediate-sha1", "path-length-exceeded"]


@pytest.mark.parametrize("case_id", END_TO_END)
def test_scan_of_a_served_chain_agrees(case_id: str, tlsgate, tmp_path: Path) -> None:
    """The same chains served by `openssl s_server` and scanned by the CLI: the verdict of the scan is the
    corpus verdict, order stays a separate fact (a SHA-1 chain is in order), lints are in the report."""
    case = next(c for c in CASES if c.id == case_id)
    chain = case.build(f"e2e {case_id}")
    code, message = openssl_verify(tmp_path, chain)
    expected = DIFFERENCES.get(case_id, case.openssl)
    leaf_pem, key_pem = chain.served[0].write(tmp_path, "served")
    intermediates = write(tmp_path, "served-chain", chain.served[1:])
    roots = write(tmp_path, "trusted-roots", chain.roots)
    report = tmp_path / "report.json"
    # SECLEVEL 0: OpenSSL 3 would not serve a SHA-1 chain otherwise.
    with openssl_server(leaf_pem, key_pem, "-cipher", "DEFAULT@SECLEVEL=0", chain=intermediates) as port:
        # The name checked is the SNI sent: the corpus host, as openssl verify was asked.
        run = tlsgate("scan", f"127.0.0.1:{port}", "--sni", HOST, "--timeout", "3", "--ca-file", str(roots),
                      "--json", str(report))  # fmt: skip
    assert run.code in (0, 1), run.stdout + run.stderr
    facts = json.loads(report.read_text())["targets"][0]["facts"]["certificate"]
    (result,) = [r for r in facts["trust"] if r["store"].startswith("file:")]
    verdict = "trusted" if result["trusted"] else result["reason"]
    assert verdict == expected, result
    assert case.openssl in OPENSSL_CLASSES[code], message
    assert facts["chain_order_valid"]["value"] is True
    assert {(lint["certificate"], lint["id"]) for lint in facts["lints"]} == LINTS.get(case_id, set())
