"""The rule engine on real-shaped facts: each operator passing and failing; unobserved is never a pass."""

from __future__ import annotations

import itertools
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

from scanner.facts import (
    Certificate,
    CertificateFacts,
    CipherSuite,
    ErrorClass,
    ExtendedKeyUsage,
    Facts,
    ProbeError,
    ProtocolSupport,
    ProtocolVersion,
    PublicKey,
    TargetInfo,
)
from scanner.findings import Finding, Status
from scanner.policy.engine import evaluate
from scanner.policy.pack import RulePack, load_pack, resolve_pack

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
_names = itertools.count()


def write_pack(tmp_path: Path, rules: str, pack_id: str = "engine-test") -> RulePack:
    """Write a pack with the given rules (YAML list items) to a fresh file and load it."""
    path = tmp_path / f"pack-{next(_names)}.yaml"
    head = f'id: {pack_id}\ntitle: Engine test\nversion: "1"\nrules:\n'
    path.write_text(head + textwrap.indent(textwrap.dedent(rules), "  "))
    return load_pack(path)


def one_rule(tmp_path: Path, constraint: str, fact: str, where: str | None = None) -> RulePack:
    """A pack with a single rule R-1 on ``fact`` with ``constraint`` (and ``where``)."""
    lines = ["- id: R-1", "  title: rule under test", "  severity: high", f"  fact: {fact}"]
    if where is not None:
        lines.append(f"  where: {where}")
    lines.append(f"  {constraint}")
    return write_pack(tmp_path, "\n".join(lines) + "\n")


def judge(tmp_path: Path, facts: Facts, constraint: str, fact: str, where: str | None = None) -> Finding:
    (finding,) = evaluate(facts, [one_rule(tmp_path, constraint, fact, where)])
    return finding


def suite(name: str) -> CipherSuite:
    return CipherSuite(name=name, key_bits=256)


def protocol(version: str, status: str = "accepted", message: str | None = None) -> ProtocolSupport:
    suites = [suite(f"SUITE_FOR_{version}")] if status == "accepted" else []
    error = ProbeError(error_class=ErrorClass.probe_failed, message=message) if message else None
    return ProtocolSupport(version=ProtocolVersion(version), status=status, cipher_suites=suites, error=error)


def certificate(
    subject: str = "CN=www.example.com",
    key: PublicKey | None = None,
    sans: tuple[str, ...] = ("DNS:www.example.com", "DNS:example.com"),
    eku: list[ExtendedKeyUsage] | None = None,
) -> Certificate:
    return Certificate(
        subject=subject,
        issuer="CN=Example CA",
        serial="0a1b",
        sha256="ab" * 32,
        public_key=key or PublicKey(type="RSA", size=2048),
        signature_algorithm="sha256WithRSAEncryption",
        signature_hash="sha256",
        not_before=datetime(2024, 1, 1, tzinfo=UTC),
        not_after=datetime(2024, 12, 31, tzinfo=UTC),
        validity_days=365.0,
        subject_alt_names=list(sans),
        extended_key_usage=eku,
        self_signed=False,
    )


def facts(
    protocols: list[ProtocolSupport] | None = None,
    cert: CertificateFacts | None = None,
    leaf: Certificate | None = None,
) -> Facts:
    """Facts of a scanned endpoint: TLS 1.2 and 1.3 accepted, older versions not, and a certificate."""
    if protocols is None:
        protocols = [
            protocol("SSLv2", "not_accepted"),
            protocol("SSLv3", "not_accepted"),
            protocol("TLSv1.0", "not_accepted"),
            protocol("TLSv1.1", "not_accepted"),
            protocol("TLSv1.2"),
            protocol("TLSv1.3"),
        ]
    if cert is None:
        leaf = leaf or certificate()
        cert = CertificateFacts(status="ok", leaf=leaf, chain=[leaf])
    return Facts(
        target=TargetInfo(
            input="www.example.com", host="www.example.com", port=443,
            server_name="www.example.com", ip_address="192.0.2.10",
        ),
        started_at=NOW, finished_at=NOW, status="ok", protocols=protocols, certificate=cert,
    )  # fmt: skip


def tls13_only() -> list[ProtocolSupport]:
    return [protocol(v, "not_accepted") for v in ("SSLv2", "SSLv3", "TLSv1.0", "TLSv1.1", "TLSv1.2")] + [
        protocol("TLSv1.3")
    ]


# --- list operators on protocols (objects) ---------------------------------------------------------


def test_each_with_where_passes(tmp_path):
    """'each' over accepted protocols passes when only TLS 1.3 is accepted."""
    finding = judge(tmp_path, facts(tls13_only()), "each: {version: TLSv1.3}", "protocols", "{status: accepted}")
    assert finding.status == Status.passed
    assert finding.message == "protocols: all match"
    assert finding.evidence.recorded() == {
        "fact": "protocols",
        "expected": {"each": {"version": "TLSv1.3"}},
        "where": {"status": "accepted"},
        "observed": ["TLSv1.3"],
    }


def test_each_with_where_fails_with_offending_protocol(tmp_path):
    """'each' fails when TLS 1.2 is accepted, and the evidence carries the whole TLS 1.2 entry."""
    finding = judge(tmp_path, facts(), "each: {version: TLSv1.3}", "protocols", "{status: accepted}")
    assert finding.status == Status.failed
    assert finding.message == "protocols: TLSv1.2: version must equal TLSv1.3"
    assert finding.evidence.observed == ["TLSv1.2", "TLSv1.3"]
    (offending,) = finding.evidence.offending
    assert (offending["version"], offending["status"]) == ("TLSv1.2", "accepted")
    assert [(c["name"], c["key_bits"]) for c in offending["cipher_suites"]] == [("SUITE_FOR_TLSv1.2", 256)]
    tls12 = next(p for p in facts().protocols if p.version == "TLSv1.2")
    assert offending == tls12.model_dump(mode="json")


def test_each_without_where_fails_on_not_accepted_versions(tmp_path):
    """Without 'where', 'each' judges every protocol entry, not only the accepted ones."""
    finding = judge(tmp_path, facts(tls13_only()), "each: {status: accepted}", "protocols")
    assert finding.status == Status.failed
    assert [p["version"] for p in finding.evidence.offending] == [
        "SSLv2", "SSLv3", "TLSv1.0", "TLSv1.1", "TLSv1.2",
    ]  # fmt: skip


def test_some_passes(tmp_path):
    """'some' passes when one entry has TLS 1.3 accepted."""
    finding = judge(tmp_path, facts(), "some: {version: TLSv1.3, status: accepted}", "protocols")
    assert finding.status == Status.passed
    assert finding.message == "protocols: at least one matches"
    assert "offending" not in finding.evidence.recorded()


def test_some_fails(tmp_path):
    """'some' fails when TLS 1.3 is not accepted, saying what was looked for."""
    protocols = [protocol("TLSv1.2"), protocol("TLSv1.3", "not_accepted")]
    finding = judge(tmp_path, facts(protocols), "some: {version: TLSv1.3, status: accepted}", "protocols")
    assert finding.status == Status.failed
    assert finding.message == ("protocols: none found where version must equal TLSv1.3, status must equal accepted")
    assert finding.evidence.offending == []


def test_none_passes(tmp_path):
    """'none' passes when no legacy version is accepted."""
    finding = judge(
        tmp_path,
        facts(),
        "none: {version: {in: [SSLv2, SSLv3, TLSv1.0, TLSv1.1]}, status: accepted}",
        "protocols",
    )
    assert finding.status == Status.passed
    assert finding.message == "protocols: none match"


def test_none_fails_with_offending(tmp_path):
    """'none' fails naming each accepted legacy version, with their entries as evidence."""
    protocols = [
        protocol("SSLv3"),
        protocol("TLSv1.0"),
        protocol("TLSv1.1", "not_accepted"),
        protocol("TLSv1.3"),
    ]
    finding = judge(
        tmp_path,
        facts(protocols),
        "none: {version: {in: [SSLv2, SSLv3, TLSv1.0, TLSv1.1]}, status: accepted}",
        "protocols",
    )
    assert finding.status == Status.failed
    assert finding.message == "protocols: forbidden: SSLv3, TLSv1.0"
    assert [p["version"] for p in finding.evidence.offending] == ["SSLv3", "TLSv1.0"]


def test_where_with_nested_operator(tmp_path):
    """'where' takes value operators too: here it keeps the accepted versions other than TLS 1.3."""
    finding = judge(
        tmp_path,
        facts(),
        "each: {version: TLSv1.3}",
        "protocols",
        "{status: accepted, version: {not_equals: TLSv1.3}}",
    )
    assert finding.status == Status.failed
    assert finding.evidence.observed == ["TLSv1.2"]
    assert [p["version"] for p in finding.evidence.offending] == ["TLSv1.2"]


def test_each_over_chain_with_dotted_field(tmp_path):
    """'each' over the certificate chain can constrain a nested field such as public_key.size."""
    weak = certificate(subject="CN=Weak CA", key=PublicKey(type="RSA", size=1024))
    leaf = certificate()
    cert = CertificateFacts(status="ok", leaf=leaf, chain=[leaf, weak])
    finding = judge(tmp_path, facts(cert=cert), "each: {public_key.size: {min: 2048}}", "certificate.chain")
    assert finding.status == Status.failed
    assert finding.message == "certificate.chain: CN=Weak CA: public_key.size must be at least 2048"
    assert [c["subject"] for c in finding.evidence.offending] == ["CN=Weak CA"]


# --- list operators on subject_alt_names (plain values) --------------------------------------------

SANS = "certificate.leaf.subject_alt_names"


# Each case: a list operator on the leaf's names (www.example.com and example.com unless the case names others), the
# finding's message after the fact path, and the names a failure gives as offending (None: the rule passes).
SAN_CASES = [
    # 'require_any' passes when one wanted name is present.
    pytest.param('require_any: ["DNS:example.com", "DNS:example.org"]', None, "present", None, id="require-any-passes"),
    # 'require_any' fails when none is present, with the wanted names as offending.
    pytest.param(
        'require_any: ["DNS:example.org", "DNS:example.net"]',
        None,
        "none of [DNS:example.org, DNS:example.net] present",
        ["DNS:example.org", "DNS:example.net"],
        id="require-any-fails-listing-wanted",
    ),
    # 'require_all' passes when every wanted name is present.
    pytest.param(
        'require_all: ["DNS:example.com", "DNS:www.example.com"]', None, "all present", None, id="require-all-passes"
    ),
    # 'require_all' fails with exactly the missing names as offending.
    pytest.param(
        'require_all: ["DNS:example.com", "DNS:api.example.com"]',
        None,
        "missing: [DNS:api.example.com]",
        ["DNS:api.example.com"],
        id="require-all-fails-listing-missing",
    ),
    # 'only' fails naming the names that are not allowed.
    pytest.param(
        'only: ["DNS:www.example.com"]',
        None,
        "not allowed: DNS:example.com",
        ["DNS:example.com"],
        id="only-fails-with-offending",
    ),
    # 'forbid' passes when no forbidden name is present.
    pytest.param('forbid: ["DNS:*.example.com"]', None, "none forbidden", None, id="forbid-passes"),
    # 'forbid' fails naming the forbidden names present.
    pytest.param(
        'forbid: ["DNS:*.example.com"]',
        ("DNS:*.example.com", "DNS:example.com"),
        "forbidden: DNS:*.example.com",
        ["DNS:*.example.com"],
        id="forbid-fails-with-offending",
    ),
]


@pytest.mark.parametrize(("constraint", "sans", "message", "offending"), SAN_CASES)
def test_list_operator_on_names(tmp_path, constraint, sans, message, offending):
    """A list operator on plain values passes or fails as the case says; a failure names what offends."""
    leaf = certificate(sans=sans) if sans else None
    finding = judge(tmp_path, facts(leaf=leaf), constraint, SANS)
    assert finding.status == (Status.passed if offending is None else Status.failed)
    assert finding.message == f"{SANS}: {message}"
    if offending is not None:
        assert finding.evidence.offending == offending


def test_only_passes(tmp_path):
    """'only' passes when every name is allowed."""
    finding = judge(tmp_path, facts(), 'only: ["DNS:example.com", "DNS:www.example.com", "DNS:api.example.com"]', SANS)
    assert finding.status == Status.passed
    assert finding.evidence.observed == ["DNS:www.example.com", "DNS:example.com"]


def test_each_on_plain_values_with_matches(tmp_path):
    """'each' over plain values takes a value matcher: every SAN must be a DNS name under example.com."""
    leaf = certificate(sans=("DNS:www.example.com", "IP:192.0.2.10"))
    finding = judge(tmp_path, facts(leaf=leaf), r'each: {matches: "DNS:(.+\\.)?example\\.com"}', SANS)
    assert finding.status == Status.failed
    assert finding.evidence.offending == ["IP:192.0.2.10"]
    finding = judge(tmp_path, facts(), r'each: {matches: "DNS:(.+\\.)?example\\.com"}', SANS)
    assert finding.status == Status.passed


# --- value operators -------------------------------------------------------------------------------

KEY_SIZE = "certificate.leaf.public_key.size"
SUBJECT = "certificate.leaf.subject"
KEY_TYPE = "certificate.leaf.public_key.type"


@pytest.mark.parametrize(
    ("fact", "constraint", "expected"),
    [
        (KEY_SIZE, "min: 2048", Status.passed),
        (KEY_SIZE, "min: 3072", Status.failed),
        (KEY_SIZE, "max: 4096", Status.passed),
        (KEY_SIZE, "max: 1024", Status.failed),
        (KEY_SIZE, "min: 2048.5", Status.failed),
        (KEY_SIZE, "equals: 2048", Status.passed),
        (KEY_SIZE, "equals: 4096", Status.failed),
        (KEY_SIZE, "not_equals: 1024", Status.passed),
        (KEY_SIZE, "not_equals: 2048", Status.failed),
        (KEY_SIZE, "in: [2048, 3072]", Status.passed),
        (KEY_SIZE, "in: [3072, 4096]", Status.failed),
        (KEY_SIZE, "not_in: [512, 1024]", Status.passed),
        (KEY_SIZE, "not_in: [2048]", Status.failed),
        (KEY_SIZE, "exists: true", Status.passed),
        (KEY_SIZE, "exists: false", Status.failed),
        (KEY_TYPE, "equals: RSA", Status.passed),
        (KEY_TYPE, "in: [EC, Ed25519]", Status.failed),
        (SUBJECT, 'matches: "CN=(www\\\\.)?example\\\\.com"', Status.passed),
        (SUBJECT, 'matches: "CN=example\\\\.com"', Status.failed),
        (SUBJECT, 'matches: "example"', Status.failed),  # a full match, not a search
        (SUBJECT, 'matches: ".*example.*"', Status.passed),
    ],
)
def test_value_operators(tmp_path, fact, constraint, expected):
    """Each value operator passes and fails on a 2048-bit RSA leaf for CN=www.example.com."""
    finding = judge(tmp_path, facts(), constraint, fact)
    assert finding.status == expected, finding.message
    assert "offending" not in finding.evidence.recorded()


def test_min_fail_message_and_evidence(tmp_path):
    """A failed 'min' says what was observed and what the rule demands."""
    finding = judge(tmp_path, facts(), "min: 3072", KEY_SIZE)
    assert finding.status == Status.failed
    assert finding.message == f"{KEY_SIZE} = 2048, must be at least 3072"
    assert finding.evidence.recorded() == {"fact": KEY_SIZE, "expected": {"min": 3072}, "observed": 2048}


def test_matches_fail_message(tmp_path):
    """A failed 'matches' names the subject and the pattern."""
    finding = judge(tmp_path, facts(), 'matches: "CN=api\\\\..*"', SUBJECT)
    assert finding.status == Status.failed
    assert finding.message == f"{SUBJECT} = CN=www.example.com, must match CN=api\\..*"


def test_min_on_missing_key_size_fails(tmp_path):
    """'min' on a key size that is null fails: an unknown size is not 'large enough'."""
    leaf = certificate(key=PublicKey(type="unknown", size=None))
    finding = judge(tmp_path, facts(leaf=leaf), "min: 2048", KEY_SIZE)
    assert finding.status == Status.failed
    assert finding.evidence.observed is None


def test_exists_false_on_null_field_passes(tmp_path):
    """'exists: false' on an RSA key's curve (null) passes."""
    finding = judge(tmp_path, facts(), "exists: false", "certificate.leaf.public_key.curve")
    assert finding.status == Status.passed
    assert finding.evidence.observed is None


def test_exists_true_on_null_field_fails(tmp_path):
    """'exists: true' on a null field fails."""
    finding = judge(tmp_path, facts(), "exists: true", "certificate.leaf.public_key.curve")
    assert finding.status == Status.failed


def test_exists_on_present_curve(tmp_path):
    """On an EC key the curve exists, so 'exists: true' passes and 'exists: false' fails."""
    leaf = certificate(key=PublicKey(type="EC", size=256, curve="secp256r1"))
    assert judge(tmp_path, facts(leaf=leaf), "exists: true", "certificate.leaf.public_key.curve").status == (
        Status.passed
    )
    assert judge(tmp_path, facts(leaf=leaf), "exists: false", "certificate.leaf.public_key.curve").status == (
        Status.failed
    )


def test_combined_value_operators(tmp_path):
    """A matcher with several operators is a conjunction: {min: 2048, max: 4096}."""
    finding = judge(tmp_path, facts(), "each: {public_key.size: {min: 2048, max: 4096}}", "certificate.chain")
    assert finding.status == Status.passed
    big = certificate(key=PublicKey(type="RSA", size=8192))
    cert = CertificateFacts(status="ok", leaf=big, chain=[big])
    finding = judge(tmp_path, facts(cert=cert), "each: {public_key.size: {min: 2048, max: 4096}}", "certificate.chain")
    assert finding.status == Status.failed
    assert finding.message.endswith("public_key.size must be at least 2048 and be at most 4096")


# --- dates against the scan time ------------------------------------------------------------------

NOT_AFTER, NOT_BEFORE = "certificate.leaf.not_after", "certificate.leaf.not_before"


def scanned_at(moment: datetime) -> Facts:
    """The usual facts (a leaf valid 2024-01-01 to 2024-12-31), observed at ``moment``."""
    return facts().model_copy(update={"started_at": moment, "finished_at": moment})


@pytest.mark.parametrize(
    ("fact", "constraint", "moment", "expected"),
    [
        # not expired: on or after the scan; the last moment of validity still passes (RFC 5280 is inclusive)
        (NOT_AFTER, "after: scan_time", datetime(2024, 6, 1, tzinfo=UTC), Status.passed),
        (NOT_AFTER, "after: scan_time", datetime(2024, 12, 31, tzinfo=UTC), Status.passed),
        (NOT_AFTER, "after: scan_time", datetime(2025, 1, 1, tzinfo=UTC), Status.failed),
        # already valid: notBefore before the scan
        (NOT_BEFORE, "before: scan_time", datetime(2024, 6, 1, tzinfo=UTC), Status.passed),
        (NOT_BEFORE, "before: scan_time", datetime(2023, 12, 31, tzinfo=UTC), Status.failed),
    ],
)
def test_dates_against_scan_time(tmp_path, fact, constraint, moment, expected):
    """'scan_time' is the moment the facts were observed (their started_at), not the moment they are judged."""
    finding = judge(tmp_path, scanned_at(moment), constraint, fact)
    assert finding.status == expected, finding.message
    assert finding.evidence.expected == {constraint.split(":")[0]: "scan_time"}


def test_scan_time_fail_message_names_the_moment(tmp_path):
    """A failure says when the scan was, so a reader sees why an expired certificate is expired."""
    finding = judge(
        tmp_path, scanned_at(datetime(2025, 3, 2, 8, 30, 15, 123456, tzinfo=UTC)), "after: scan_time", NOT_AFTER
    )
    assert finding.message == f"{NOT_AFTER} = 2024-12-31 00:00:00+00:00, must be on or after 2025-03-02T08:30:15+00:00"


def test_scan_time_in_when_and_in_fields(tmp_path):
    """scan_time works wherever a date operator does: in a 'when' condition and in a field of 'each'."""
    pack = write_pack(
        tmp_path,
        """
        - id: R-1
          title: keys of valid certificates are large
          severity: high
          fact: certificate.leaf.public_key.size
          when: {fact: certificate.leaf.not_after, after: scan_time}
          min: 2048
        - id: R-2
          title: no certificate of the chain is expired
          severity: high
          fact: certificate.chain
          each: {not_after: {after: scan_time}}
        """,
    )
    valid = {f.rule: f.status for f in evaluate(scanned_at(datetime(2024, 6, 1, tzinfo=UTC)), [pack])}
    assert valid == {"R-1": Status.passed, "R-2": Status.passed}
    expired = {f.rule: f.status for f in evaluate(scanned_at(datetime(2025, 6, 1, tzinfo=UTC)), [pack])}
    assert expired == {"R-1": Status.not_applicable, "R-2": Status.failed}


# --- absent optional lists -------------------------------------------------------------------------

EKU = "certificate.leaf.extended_key_usage"


def test_absent_eku_has_no_forbidden_usage(tmp_path):
    """A certificate without an EKU extension has no code-signing usage: 'none' passes, not fails."""
    finding = judge(tmp_path, facts(), "none: {name: codeSigning}", EKU)
    assert finding.status == Status.passed
    assert finding.evidence.observed == []


def test_absent_eku_has_no_required_usage(tmp_path):
    """A certificate without an EKU extension has no listed serverAuth: 'some' fails."""
    finding = judge(tmp_path, facts(), "some: {name: serverAuth}", EKU)
    assert finding.status == Status.failed


def test_present_eku(tmp_path):
    """With an EKU extension, 'some' and 'none' judge its entries."""
    leaf = certificate(eku=[ExtendedKeyUsage(name="serverAuth", oid="1.3.6.1.5.5.7.3.1")])
    assert judge(tmp_path, facts(leaf=leaf), "some: {name: serverAuth}", EKU).status == Status.passed
    finding = judge(tmp_path, facts(leaf=leaf), "none: {oid: 1.3.6.1.5.5.7.3.1}", EKU)
    assert finding.status == Status.failed
    assert finding.evidence.offending == [{"name": "serverAuth", "oid": "1.3.6.1.5.5.7.3.1"}]


# --- facts that were not observed: error, never pass -----------------------------------------------


def test_protocol_error_entry_makes_rule_error_even_if_where_filters_it(tmp_path):
    """A protocol entry with status error makes the rule error, though 'where' would drop that entry."""
    protocols = tls13_only()
    protocols[1] = protocol("SSLv3", "error", message="connection reset while probing")
    finding = judge(tmp_path, facts(protocols), "each: {version: TLSv1.3}", "protocols", "{status: accepted}")
    assert finding.status == Status.error
    assert finding.message == "protocols not fully observed (SSLv3: connection reset while probing)"
    assert finding.evidence.unobserved == finding.message
    assert "observed" not in finding.evidence.recorded()
    assert "offending" not in finding.evidence.recorded()


def test_protocol_error_entries_all_named(tmp_path):
    """Every protocol entry that could not be probed is named in the reason."""
    protocols = [
        protocol("TLSv1.0", "error", message="timeout"),
        protocol("TLSv1.2", "error", message="reset"),
        protocol("TLSv1.3"),
    ]
    finding = judge(tmp_path, facts(protocols), "some: {version: TLSv1.3, status: accepted}", "protocols")
    assert finding.status == Status.error
    assert finding.message == "protocols not fully observed (TLSv1.0: timeout; TLSv1.2: reset)"


def test_certificate_not_probed_is_error(tmp_path):
    """A certificate that was not probed makes certificate rules error, even 'exists: false'."""
    cert = CertificateFacts(status="not_probed")
    for constraint, fact in [
        ("min: 2048", KEY_SIZE),
        ("exists: false", "certificate.leaf.public_key.curve"),
        ('forbid: ["DNS:*.example.com"]', SANS),
    ]:
        finding = judge(tmp_path, facts(cert=cert), constraint, fact)
        assert finding.status == Status.error, constraint
        assert finding.message == "certificate could not be observed: not probed by this scan"
        assert finding.evidence.unobserved == finding.message


def test_certificate_error_is_error_with_reason(tmp_path):
    """A certificate probe error makes certificate rules error with the probe's message."""
    cert = CertificateFacts(
        status="error",
        error=ProbeError(error_class=ErrorClass.probe_failed, message="the server sent no certificate"),
    )
    finding = judge(tmp_path, facts(cert=cert), "min: 2048", KEY_SIZE)
    assert finding.status == Status.error
    assert finding.message == "certificate could not be observed: the server sent no certificate"


def test_target_error_makes_every_rule_error(tmp_path):
    """A target that could not be scanned gives error on every rule with the target's message."""
    pack = write_pack(tmp_path, """\
        - id: R-1
          title: TLS 1.3 only
          severity: high
          fact: protocols
          where: {status: accepted}
          each: {version: TLSv1.3}
        - id: R-2
          title: no legacy
          severity: high
          fact: protocols
          none: {version: SSLv3}
        - id: R-3
          title: key size
          severity: medium
          fact: certificate.leaf.public_key.size
          min: 2048
        - id: R-4
          title: no curve
          severity: low
          fact: certificate.leaf.public_key.curve
          exists: false
        """)  # fmt: skip
    failed = Facts(
        target=TargetInfo(input="db.example.com:5432", host="db.example.com", port=5432,
                          server_name="db.example.com", ip_address=None),
        started_at=NOW, finished_at=NOW, status="error",
        error=ProbeError(error_class=ErrorClass.refused, message="connection refused"),
    )  # fmt: skip
    findings = evaluate(failed, [pack])
    assert [(f.rule, f.status) for f in findings] == [
        ("R-1", Status.error), ("R-2", Status.error), ("R-3", Status.error), ("R-4", Status.error),
    ]  # fmt: skip
    for finding in findings:
        assert finding.message == "not scanned: connection refused"
        assert finding.evidence.unobserved == "connection refused"


# --- findings as a whole ---------------------------------------------------------------------------


def test_findings_carry_rule_metadata_in_pack_order(tmp_path):
    """evaluate returns one finding per rule, packs then rules in order, with the rule's metadata."""
    first = write_pack(tmp_path, """\
        - id: A-1
          title: TLS 1.3 accepted
          severity: critical
          fact: protocols
          some: {version: TLSv1.3, status: accepted}
          rationale: >
            Needed.
          remediation: Enable it.
          references: ["https://www.rfc-editor.org/rfc/rfc8446"]
        - id: A-2
          title: key size
          severity: low
          fact: certificate.leaf.public_key.size
          min: 4096
        """, pack_id="first")  # fmt: skip
    second = write_pack(tmp_path, """\
        - id: B-1
          title: RSA key
          severity: info
          fact: certificate.leaf.public_key.type
          equals: RSA
        """, pack_id="second")  # fmt: skip
    findings = evaluate(facts(), [first, second])
    assert [(f.pack, f.rule, f.severity, f.status) for f in findings] == [
        ("first", "A-1", "critical", Status.passed),
        ("first", "A-2", "low", Status.failed),
        ("second", "B-1", "info", Status.passed),
    ]
    assert findings[0].title == "TLS 1.3 accepted"
    assert findings[0].rationale == "Needed."
    assert findings[0].remediation == "Enable it."
    assert findings[0].references == ["https://www.rfc-editor.org/rfc/rfc8446"]


def test_builtin_pack_on_tls12_and_13(tmp_path):
    """The built-in tls13-only pack fails rule 001 and passes rule 002 on a TLS 1.2+1.3 endpoint."""
    findings = evaluate(facts(), [resolve_pack("tls13-only")])
    assert [(f.rule, f.status) for f in findings] == [
        ("TLS13ONLY-001", Status.failed),
        ("TLS13ONLY-002", Status.passed),
    ]
    assert [p["version"] for p in findings[0].evidence.offending] == ["TLSv1.2"]
    findings = evaluate(facts(tls13_only()), [resolve_pack("tls13-only")])
    assert [f.status for f in findings] == [Status.passed, Status.passed]
