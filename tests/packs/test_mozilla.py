"""The Mozilla packs: generated from the guidelines byte for byte, judged rule by rule, and in agreement with sslyze.

sslyze's checker and the packs are compared only on the guidelines fields both judge (COMPARED). The packs also
judge ``ocsp_staple`` and ``server_preferred_order``, which sslyze ignores; sslyze also reports certificate path
validation and vulnerabilities (Heartbleed, ROBOT ...), which are not guidelines fields. The loopback certificates
are not publicly trusted, so sslyze always reports ``certificate_path_validation``: the guidelines do not ask for
public trust, and neither do the packs.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from scanner.facts import (
    Behaviours,
    Certificate,
    CertificateFacts,
    ErrorClass,
    Facts,
    GroupFacts,
    NamedGroup,
    Observed,
    ProbeError,
    observed,
)
from scanner.policy.pack import RulePack, resolve_pack
from scanner.probe import iana
from tests import pki
from tests.helpers import REPO, openssl_server, sslyze_scan_result
from tests.packs import harness
from tests.packs.harness import Case, case_test, coverage_test

GENERATOR = REPO / "tools" / "generate_mozilla_packs.py"
GUIDELINES = REPO / "scanner" / "data" / "mozilla-server-side-tls-5.7.json"
PROFILES = ("modern", "intermediate", "old")
NOW = dt.datetime(2025, 6, 1, 12, 0, tzinfo=dt.UTC)

# Guidelines fields that both sslyze's checker and the packs judge: verdicts on these must agree.
COMPARED = frozenset(
    {
        "tls_versions",
        "ciphersuites",
        "ciphers.iana",
        "tls_curves",
        "certificate_types",
        "certificate_curves",
        "certificate_signatures",
        "rsa_key_size",
        "dh_param_size",
        "maximum_certificate_lifespan",
    }
)
# Judged by the packs only (sslyze's checker ignores them).
TLSGATE_ONLY = frozenset({"ocsp_staple", "server_preferred_order"})
# sslyze's issue keys -> guidelines fields. ecdh_param_size is enforced by the packs' tls_curves rules.
SSLYZE_FIELDS = {"ciphers": "ciphers.iana", "ecdh_param_size": "tls_curves"}


def field_of(pack: RulePack, rule_id: str) -> str:
    """The guidelines field a Mozilla rule judges, read from its first reference (a JSON Pointer)."""
    (rule,) = [r for r in pack.rules if r.id == rule_id]
    pointer = rule.references[0].split("#", 1)[1]
    prefix = f"/configurations/{pack.id.removeprefix('mozilla-')}/"
    assert pointer.startswith(prefix), pointer
    return pointer.removeprefix(prefix).replace("/", ".")


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("generate_mozilla_packs", GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


# --- generation and traceability ------------------------------------------------------------------------------


def test_committed_packs_match_the_generator(tmp_path):
    """Regenerating the three packs from the data file gives the committed files byte for byte."""
    proc = subprocess.run(
        [sys.executable, str(GENERATOR), "--out", str(tmp_path)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    for profile in PROFILES:
        name = f"mozilla-{profile}.yaml"
        assert (tmp_path / name).read_bytes() == (REPO / "rules" / name).read_bytes(), f"{name} is stale"


def test_generator_check_mode_reports_stale_packs(tmp_path):
    """--check exits 1 and names the pack when a committed pack differs from what the generator would write."""
    for profile in PROFILES:
        name = f"mozilla-{profile}.yaml"
        (tmp_path / name).write_bytes((REPO / "rules" / name).read_bytes())
    (tmp_path / "mozilla-old.yaml").write_text("id: mozilla-old\n")
    proc = subprocess.run(
        [sys.executable, str(GENERATOR), "--check", "--out", str(tmp_path)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 1
    assert "mozilla-old.yaml" in proc.stderr
    assert "mozilla-modern.yaml" not in proc.stderr


def test_generator_refuses_names_it_cannot_map(tmp_path):
    """A group name the generator has no IANA name for stops it instead of producing a rule that never matches."""
    guidelines = json.loads(GUIDELINES.read_text())
    guidelines["configurations"]["modern"]["tls_curves"].append("brainpoolP256r1")
    changed = tmp_path / "guidelines.json"
    changed.write_text(json.dumps(guidelines))
    proc = subprocess.run(
        [sys.executable, str(GENERATOR), "--guidelines", str(changed), "--out", str(tmp_path / "out")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "brainpoolP256r1" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_data_file_is_the_guidelines_sslyze_checks_against():
    """The carried file is Mozilla's 5.7 JSON, with the values sslyze's own checker judges by."""
    from sslyze.mozilla_tls_profile.tls_config_checker import (  # noqa: PLC0415 - only this test needs it
        MozillaTlsConfiguration,
        TlsConfigurationEnum,
    )

    data = json.loads(GUIDELINES.read_text())
    assert (data["version"], data["href"]) == (5.7, "https://ssl-config.mozilla.org/guidelines/5.7.json")
    assert "2023-05-15" in (REPO / "scanner" / "data" / "MOZILLA.md").read_text()
    for profile in PROFILES:
        theirs = MozillaTlsConfiguration.get(TlsConfigurationEnum(profile)).model_dump()
        ours = data["configurations"][profile]
        for field in ("tls_versions", "ciphersuites", "certificate_types", "certificate_signatures"):
            assert theirs[field] == set(ours[field]), (profile, field)
        assert theirs["ciphers"]["iana"] == set(ours["ciphers"]["iana"]), profile
        for field in ("rsa_key_size", "dh_param_size", "maximum_certificate_lifespan", "ocsp_staple"):
            assert theirs[field] == ours[field], (profile, field)


@pytest.mark.parametrize("profile", PROFILES)
def test_every_rule_traces_to_a_field_of_the_guidelines(profile):
    """Each rule's first reference points into the guidelines, its section names that field, its number is the
    field's, and its field is known."""
    generator = load_generator()
    data = json.loads(GUIDELINES.read_text())
    pack = resolve_pack(f"mozilla-{profile}")
    assert pack.source["url"] == data["href"]
    for rule in pack.rules:
        field = field_of(pack, rule.id)
        value: Any = data["configurations"][profile]
        for part in field.split("."):
            value = value[part]
        assert value is not None, rule.id
        assert rule.rationale and rule.remediation, rule.id
        assert rule.section == f"configurations.{profile}.{field}", rule.id
        numbers = [n for key, n in generator.FIELD_NUMBERS.items() if key.split(".tls1")[0] == field]
        assert int(rule.id.rsplit("-", 1)[1]) in numbers, rule.id
        assert field in COMPARED | TLSGATE_ONLY, f"{field} is neither compared with sslyze nor listed as ours only"


# --- rule by rule, on constructed facts ------------------------------------------------------------------------

TLS13 = ["TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"]
GROUPS = ["x25519", "secp256r1", "secp384r1"]
ERROR = "error"  # stands for a fact that could not be observed
RESET = ProbeError(error_class=ErrorClass.reset, message="connection reset")


def group(name: str) -> NamedGroup:
    info = iana.named_group_by_name(name)
    assert info is not None, name
    return iana.group_to_fact(info)


def unobserved() -> Observed[Any]:
    return Observed[Any](status="error", error=ProbeError(error_class=ErrorClass.timeout, message="no answer in 5s"))


def leaf(
    key: str = "EC", size: int = 256, curve: str | None = "secp256r1", sig: str = "ecdsa-with-SHA256", days: float = 90
) -> Certificate:
    return harness.certificate(
        "CN=www.example.com", issuer="CN=Example CA", key=(key, size, curve), signature_algorithm=sig,
        signature_hash=None, days=days,
    )  # fmt: skip


def make_facts(
    accepted: dict[str, list[str]],
    order: str = "client",
    errors: tuple[str, ...] = (),
    tls13: list[str] | str = GROUPS,
    tls12: list[str] | str = GROUPS,
    dh: int | str | None = None,
    cert: Certificate | str | None = None,
    stapling: bool | str = True,
) -> Facts:
    """Facts of a scanned endpoint; ERROR in place of a value means that fact could not be observed."""
    if dh is None:
        reason = ProbeError(error_class=ErrorClass.not_applicable, message="the server accepts no DHE suite")
        dh_fact: Observed[Any] = Observed[int](status="not_probed", error=reason)
    else:
        dh_fact = unobserved() if dh == ERROR else observed(dh)
    groups = GroupFacts(
        status="ok",
        tls13=unobserved() if tls13 == ERROR else observed([group(g) for g in tls13]),
        tls12=unobserved() if tls12 == ERROR else observed([group(g) for g in tls12]),
        dh_parameter_bits=dh_fact,
    )
    if cert == ERROR:
        certificate_facts = harness.certificate_error("no certificate")
    else:
        certificate_leaf = cert if isinstance(cert, Certificate) else leaf()
        certificate_facts = CertificateFacts(status="ok", leaf=certificate_leaf, chain=[certificate_leaf])
    return harness.scanned(
        harness.target("www.example.com", 443, "192.0.2.10", input="www.example.com"),
        protocols=harness.protocols(accepted, errors=errors, error=RESET, order=order),
        groups=groups,
        certificate=certificate_facts,
        behaviours=Behaviours(status="ok", ocsp_stapling=unobserved() if stapling == ERROR else observed(stapling)),
    )


RSA_LEAF = leaf("RSA", 2048, None, "sha256WithRSAEncryption", 365)
BASE: dict[str, dict[str, Any]] = {
    "modern": {"accepted": {"TLSv1.3": TLS13}, "tls12": [], "cert": leaf()},
    "intermediate": {
        "accepted": {
            "TLSv1.2": [
                "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
                "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
                "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256",
            ],
            "TLSv1.3": TLS13,
        },
        "dh": 2048,
        "cert": RSA_LEAF,
    },
    "old": {
        "accepted": {
            "TLSv1.0": [
                "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
                "TLS_RSA_WITH_AES_128_CBC_SHA",
                "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
            ],
            "TLSv1.1": ["TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "TLS_RSA_WITH_AES_128_CBC_SHA"],
            "TLSv1.2": [
                "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
                "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256",
                "TLS_RSA_WITH_AES_256_CBC_SHA256",
            ],
            "TLSv1.3": TLS13,
        },
        "order": "server",
        "dh": 1024,
        "cert": leaf("RSA", 2048, None, "sha256WithRSAEncryption", 366),
    },
}


def with_accepted(profile: str, **versions: list[str]) -> dict[str, list[str]]:
    """The profile's accepted suites with some versions added or replaced (keyword TLSv1_2 -> TLSv1.2)."""
    accepted = dict(BASE[profile]["accepted"])
    accepted.update({name.replace("_", "."): suites for name, suites in versions.items()})
    return accepted


def case(profile: str, name: str, expect: dict[str, str], **changes: Any) -> Case:
    """One fixture: the profile's compliant facts with ``changes``; ``expect`` gives each rule (by number) that
    does not pass its status; every other rule of the pack must pass."""
    expected = {f"MOZILLA-{profile.upper()}-{number}": status for number, status in expect.items()}
    return Case(name, f"mozilla-{profile}", make_facts(**{**BASE[profile], **changes}), expected)


FAIL, NA, ERR = "fail", "not_applicable", "error"
# fmt: off
CASES = [
    # modern: 001-008, 011-013
    case("modern", "compliant", {}),
    case("modern", "tls12-accepted", {"001": FAIL, "003": FAIL, "005": FAIL},
         accepted=with_accepted("modern", TLSv1_2=["TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"]),
         tls12=["x25519", "secp521r1"]),
    case("modern", "ccm-suite", {"002": FAIL}, accepted={"TLSv1.3": [*TLS13, "TLS_AES_128_CCM_SHA256"]}),
    case("modern", "hybrid-and-ffdhe-groups", {"004": FAIL}, tls13=["X25519MLKEM768", "x25519", "ffdhe2048"]),
    case("modern", "groups-unobserved", {"004": ERR}, tls13=ERROR),
    case("modern", "rsa-certificate", {"006": FAIL, "007": NA, "008": FAIL},
         cert=leaf("RSA", 2048, None, "sha256WithRSAEncryption")),
    case("modern", "ed25519-certificate", {"006": FAIL, "007": NA, "008": FAIL},
         cert=leaf("Ed25519", 256, "Ed25519", "ed25519")),
    case("modern", "p384-sha384", {}, cert=leaf("EC", 384, "secp384r1", "ecdsa-with-SHA384")),
    case("modern", "p521-key", {"007": FAIL}, cert=leaf("EC", 521, "secp521r1", "ecdsa-with-SHA512")),
    case("modern", "sha1-signature", {"008": FAIL}, cert=leaf(sig="ecdsa-with-SHA1")),
    case("modern", "91-days", {"011": FAIL}, cert=leaf(days=91)),
    case("modern", "certificate-unobserved", {"006": ERR, "007": ERR, "008": ERR, "011": ERR}, cert=ERROR),
    case("modern", "no-stapling", {"012": FAIL}, stapling=False),
    case("modern", "stapling-unobserved", {"012": ERR}, stapling=ERROR),
    case("modern", "server-order", {"013": FAIL}, order="server"),
    case("modern", "single-suite-has-no-order", {}, accepted={"TLSv1.3": ["TLS_AES_128_GCM_SHA256"]}, order="server"),
    case("modern", "tls10-unobserved", {"001": ERR, "002": ERR, "003": ERR, "013": ERR}, errors=("TLSv1.0",)),
    # intermediate: 001-013
    case("intermediate", "compliant-rsa-with-dhe", {"007": NA}),
    case("intermediate", "compliant-ecdsa-without-dhe", {"009": NA, "010": NA},
         accepted=with_accepted("intermediate", TLSv1_2=["TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"]),
         dh=None, cert=leaf()),
    case("intermediate", "tls11-accepted", {"001": FAIL, "003": FAIL, "007": NA},
         accepted=with_accepted("intermediate", TLSv1_1=["TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"])),
    case("intermediate", "static-rsa-suite", {"003": FAIL, "007": NA, "010": NA},
         accepted=with_accepted("intermediate", TLSv1_2=["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
                                                         "TLS_RSA_WITH_AES_128_GCM_SHA256"]),
         dh=None),
    case("intermediate", "integrity-only-tls13-suite", {"002": FAIL, "007": NA},
         accepted=with_accepted("intermediate", TLSv1_3=[*TLS13, "TLS_SHA256_SHA256"])),
    case("intermediate", "ffdhe-in-tls13", {"004": FAIL, "007": NA}, tls13=[*GROUPS, "ffdhe2048"]),
    case("intermediate", "secp521r1-curve", {"005": FAIL, "007": NA}, tls12=[*GROUPS, "secp521r1"]),
    case("intermediate", "p521-certificate", {"007": FAIL, "009": NA}, cert=leaf("EC", 521, "secp521r1")),
    case("intermediate", "dsa-certificate", {"006": FAIL, "007": NA, "008": FAIL, "009": NA},
         cert=leaf("DSA", 2048, None, "dsa_with_SHA256")),
    case("intermediate", "sha1-rsa-signature", {"007": NA, "008": FAIL},
         cert=leaf("RSA", 2048, None, "sha1WithRSAEncryption", 365)),
    case("intermediate", "rsa-1024", {"007": NA, "009": FAIL}, cert=leaf("RSA", 1024, None, "sha256WithRSAEncryption")),
    case("intermediate", "dh-1024", {"007": NA, "010": FAIL}, dh=1024),
    case("intermediate", "dh-unobserved", {"007": NA, "010": ERR}, dh=ERROR),
    case("intermediate", "366-days", {"007": NA}, cert=leaf("RSA", 2048, None, "sha256WithRSAEncryption", 366)),
    case("intermediate", "367-days", {"007": NA, "011": FAIL},
         cert=leaf("RSA", 2048, None, "sha256WithRSAEncryption", 367)),
    case("intermediate", "no-stapling", {"007": NA, "012": FAIL}, stapling=False),
    case("intermediate", "server-order", {"007": NA, "013": FAIL}, order="server"),
    # old: 001-013
    case("old", "compliant", {"007": NA}),
    case("old", "sslv3-accepted", {"001": FAIL, "007": NA},
         accepted=with_accepted("old", SSLv3=["TLS_RSA_WITH_3DES_EDE_CBC_SHA"])),
    case("old", "sslv2-accepted", {"001": FAIL, "003": FAIL, "007": NA},
         accepted=with_accepted("old", SSLv2=["SSL_CK_RC4_128_WITH_MD5"])),
    case("old", "rc4-suite", {"003": FAIL, "007": NA},
         accepted=with_accepted("old", TLSv1_0=["TLS_RSA_WITH_AES_128_CBC_SHA", "TLS_RSA_WITH_RC4_128_SHA"])),
    case("old", "ccm8-suite", {"002": FAIL, "007": NA},
         accepted=with_accepted("old", TLSv1_3=["TLS_AES_128_CCM_8_SHA256"])),
    case("old", "x448-group", {"004": FAIL, "007": NA}, tls13=[*GROUPS, "x448"]),
    case("old", "brainpool-curve", {"005": FAIL, "007": NA}, tls12=[*GROUPS, "brainpoolP256r1"]),
    case("old", "ecdsa-certificate", {"006": FAIL, "008": FAIL, "009": NA}, cert=leaf(days=366)),
    case("old", "p521-ecdsa-certificate", {"006": FAIL, "007": FAIL, "008": FAIL, "009": NA},
         cert=leaf("EC", 521, "secp521r1", "ecdsa-with-SHA512", 366)),
    case("old", "rsa-1024", {"007": NA, "009": FAIL}, cert=leaf("RSA", 1024, None, "sha256WithRSAEncryption", 366)),
    case("old", "dh-768", {"007": NA, "010": FAIL}, dh=768),
    case("old", "no-dhe", {"007": NA, "010": NA},
         accepted=with_accepted("old", TLSv1_2=["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"]), dh=None),
    case("old", "400-days", {"007": NA, "011": FAIL}, cert=leaf("RSA", 2048, None, "sha256WithRSAEncryption", 400)),
    case("old", "no-stapling", {"007": NA, "012": FAIL}, stapling=False),
    case("old", "client-order", {"007": NA, "013": FAIL}, order="client"),
]
# fmt: on


test_rule_statuses_on_fixture_facts = case_test(CASES)
test_every_rule_has_passing_and_failing_fixtures = coverage_test(CASES)


# --- real servers: tlsgate's packs and sslyze's checker on the same endpoints ----------------------------------

INTERMEDIATE_CIPHERS = (
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305"
)
# Whether each server meets each configuration on the fields both tools judge.
COMPLIANT = {
    "modern": {"modern": True, "intermediate": True, "old": False},
    "intermediate": {"modern": False, "intermediate": True, "old": True},
    "noncompliant": {"modern": False, "intermediate": False, "old": False},
}


def stapled_response(leaf_cert: pki.Issued, ca: pki.Issued, path: Path) -> Path:
    """A good OCSP response for ``leaf_cert`` signed by its CA, in DER, for ``s_server -status_file``."""
    now = dt.datetime.now(dt.UTC)
    builder = ocsp.OCSPResponseBuilder().add_response(
        cert=leaf_cert.cert, issuer=ca.cert, algorithm=hashes.SHA1(),  # noqa: S303 - the usual CertID hash (RFC 6960)
        cert_status=ocsp.OCSPCertStatus.GOOD,
        this_update=now - dt.timedelta(hours=1), next_update=now + dt.timedelta(days=3),
        revocation_time=None, revocation_reason=None,
    )  # fmt: skip
    response = builder.responder_id(ocsp.OCSPResponderEncoding.HASH, ca.cert).sign(ca.key, hashes.SHA256())
    path.write_bytes(response.public_bytes(serialization.Encoding.DER))
    return path


@pytest.fixture(scope="module")
def servers(tmp_path_factory) -> dict[str, tuple[Path, Path, list[str]]]:
    """openssl s_server settings (certificate, key, options) of the three loopback endpoints."""
    directory = tmp_path_factory.mktemp("mozilla")
    sans = ("localhost", "127.0.0.1")
    ec_ca = pki.issue(pki.name("mozilla EC CA"), ca=True, days=3650)
    modern = pki.issue(pki.name("localhost"), issuer=ec_ca, days=90, sans=sans, eku=pki.SERVER_AUTH)
    rsa_ca = pki.issue(pki.name("mozilla RSA CA"), ca=True, days=3650, key=pki.new_key("rsa2048"))
    intermediate = pki.issue(
        pki.name("localhost"), issuer=rsa_ca, key=pki.new_key("rsa2048"), days=365, sans=sans, eku=pki.SERVER_AUTH
    )
    weak = pki.issue(
        pki.name("localhost"), issuer=rsa_ca, key=pki.new_key("rsa1024"), days=730, sans=sans, eku=pki.SERVER_AUTH
    )
    dh1024 = directory / "dh1024.pem"  # RFC 5114 group 1: a 1024-bit prime, instantly
    subprocess.run(
        ["openssl", "genpkey", "-genparam", "-algorithm", "DH", "-pkeyopt", "dh_rfc5114:1", "-out", str(dh1024)],
        check=True, capture_output=True,
    )  # fmt: skip
    groups = ["-groups", "X25519:P-256:P-384"]
    return {
        "modern": (
            *modern.write(directory, "modern", chain=[ec_ca]),
            ["-tls1_3", *groups, "-status_file", str(stapled_response(modern, ec_ca, directory / "modern.ocsp"))],
        ),
        "intermediate": (
            *intermediate.write(directory, "intermediate", chain=[rsa_ca]),
            ["-no_ssl3", "-no_tls1", "-no_tls1_1", *groups, "-cipher", INTERMEDIATE_CIPHERS,
             "-status_file", str(stapled_response(intermediate, rsa_ca, directory / "intermediate.ocsp"))],
        ),
        "noncompliant": (
            *weak.write(directory, "noncompliant", chain=[rsa_ca]),
            ["-no_tls1_3", "-cipher", "AES128-SHA:DES-CBC3-SHA:ECDHE-RSA-AES128-SHA:DHE-RSA-AES128-SHA:@SECLEVEL=0",
             "-dhparam", str(dh1024)],
        ),
    }  # fmt: skip


def sslyze_mozilla_issues(port: int) -> dict[str, set[str]]:
    """sslyze's own Mozilla checker on 127.0.0.1:port: the issue keys it reports, per configuration."""
    from sslyze.mozilla_tls_profile.tls_config_checker import (  # noqa: PLC0415 - only the comparison needs it
        SCAN_COMMANDS_NEEDED_BY_MOZILLA_CHECKER,
        MozillaTlsConfiguration,
        ServerNotCompliantWithTlsConfiguration,
        TlsConfigurationEnum,
        check_server_against_tls_configuration,
    )

    result = sslyze_scan_result(port, SCAN_COMMANDS_NEEDED_BY_MOZILLA_CHECKER)
    issues: dict[str, set[str]] = {}
    for profile in PROFILES:
        try:
            check_server_against_tls_configuration(result, MozillaTlsConfiguration.get(TlsConfigurationEnum(profile)))
        except ServerNotCompliantWithTlsConfiguration as exc:
            issues[profile] = set(exc.issues)
        else:
            issues[profile] = set()
    return issues


def findings_by_pack(report: Path) -> dict[str, dict[str, str]]:
    (target,) = json.loads(report.read_text())["targets"]
    by_pack: dict[str, dict[str, str]] = {}
    for finding in target["findings"]:
        by_pack.setdefault(finding["pack"], {})[finding["rule"]] = finding["status"]
    return by_pack


@pytest.mark.parametrize("server", list(COMPLIANT))
def test_verdicts_agree_with_sslyze_checker(server, servers, tlsgate, tmp_path):
    """On each loopback server, tlsgate fails exactly the guidelines fields sslyze's checker reports, per profile."""
    cert, key, options = servers[server]
    report = tmp_path / "report.json"
    packs = [arg for profile in PROFILES for arg in ("--pack", f"mozilla-{profile}")]
    with openssl_server(cert, key, *options) as port:
        run = tlsgate("scan", f"127.0.0.1:{port}", *packs, "--json", str(report))
        theirs_raw = sslyze_mozilla_issues(port)
    assert run.code in (0, 1), run.stderr
    by_pack = findings_by_pack(report)
    for profile in PROFILES:
        pack = resolve_pack(f"mozilla-{profile}")
        statuses = by_pack[pack.id]
        assert "error" not in statuses.values(), (profile, statuses)
        ours = {field_of(pack, rule) for rule, status in statuses.items() if status == "fail"} & COMPARED
        # certificate_path_validation and the tls_vulnerability_* keys are not guidelines fields
        theirs = {SSLYZE_FIELDS.get(key, key) for key in theirs_raw[profile]} & COMPARED
        assert ours == theirs, f"{server} server, {profile}: tlsgate {sorted(ours)}, sslyze {sorted(theirs)}"
        assert (not ours) is COMPLIANT[server][profile], f"{server} server, {profile}: {sorted(ours)}"


def test_noncompliant_server_violations_are_named(servers, tlsgate, tmp_path):
    """The TLS 1.0 / static-RSA / 1024-bit endpoint fails the intermediate pack on each field that makes it so."""
    cert, key, options = servers["noncompliant"]
    report = tmp_path / "report.json"
    with openssl_server(cert, key, *options) as port:
        run = tlsgate("scan", f"127.0.0.1:{port}", "--pack", "mozilla-intermediate", "--json", str(report))
    assert run.code == 1, run.stderr
    statuses = findings_by_pack(report)["mozilla-intermediate"]
    failed = {rule.rsplit("-", 1)[1] for rule, status in statuses.items() if status == "fail"}
    # versions, suites, curves (x448, secp521r1), RSA 1024, DH 1024, 730 days, no stapling
    assert failed == {"001", "003", "005", "009", "010", "011", "012"}, statuses


@pytest.mark.parametrize("server", ["modern", "intermediate"])
def test_compliant_server_passes_its_whole_pack(server, servers, tlsgate, tmp_path):
    """A server set up as Mozilla says passes every rule of its pack, stapling and cipher order included."""
    cert, key, options = servers[server]
    report = tmp_path / "report.json"
    with openssl_server(cert, key, *options) as port:
        run = tlsgate("scan", f"127.0.0.1:{port}", "--pack", f"mozilla-{server}", "--json", str(report))
    statuses = findings_by_pack(report)[f"mozilla-{server}"]
    # an RSA certificate has no curve (007); the intermediate server accepts DHE with OpenSSL's 2048-bit default
    expected = {rule: "not_applicable" if rule == "MOZILLA-INTERMEDIATE-007" else "pass" for rule in statuses}
    assert statuses == expected
    assert len(statuses) == len(resolve_pack(f"mozilla-{server}").rules)
    assert run.code == 0, run.stderr


def test_intermediate_server_fails_old_only_on_server_order(servers, tlsgate, tmp_path):
    """Where sslyze finds the intermediate server compliant with 'old', tlsgate differs only on what sslyze ignores."""
    cert, key, options = servers["intermediate"]
    report = tmp_path / "report.json"
    with openssl_server(cert, key, *options) as port:
        run = tlsgate("scan", f"127.0.0.1:{port}", "--pack", "mozilla-old", "--json", str(report))
    statuses = findings_by_pack(report)["mozilla-old"]
    assert {rule for rule, status in statuses.items() if status == "fail"} == {"MOZILLA-OLD-013"}
    assert run.code == 1
