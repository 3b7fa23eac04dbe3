"""The diff of two reports built in memory: each kind of drift, the regressions it decides and the exit code."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import jsonschema
import pytest

from scanner.diff import (
    PROTOCOL_ORDER,
    ReportDiff,
    TargetDiff,
    diff_exit_code,
    diff_reports,
    suite_strength,
)
from scanner.exitcodes import ExitCode
from scanner.facts import (
    CertificateFacts,
    CipherSuite,
    ClientAuthEnforcement,
    ClientAuthFacts,
    ErrorClass,
    Facts,
    GroupFacts,
    NamedGroup,
    ProbeError,
    ProtocolSupport,
    SessionFacts,
    TargetInfo,
    TrustResult,
    observed,
)
from scanner.findings import Finding, Status
from scanner.render.diff import DiffFormat, render
from scanner.render.diff.terminal import summary_lines
from scanner.report import PackInfo, Report, ScanOptions, TargetReport, summarise
from scanner.schemas import schema_dir
from tests.helpers import decided_report, target_report

START = datetime(2026, 11, 1, 6, 0, tzinfo=UTC)
HOSTILE = "evil\x1b[2J <script>alert(1)</script> *x* [l](https://e.example)"
GCM = CipherSuite(name="TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", key_exchange="ECDHE", encryption="AES_128_GCM")
CBC = CipherSuite(name="TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", key_exchange="ECDHE", encryption="AES_128_CBC")
RSA_KX = CipherSuite(name="TLS_RSA_WITH_AES_128_GCM_SHA256", key_exchange="RSA", encryption="AES_128_GCM")
TRIPLE_DES = CipherSuite(name="TLS_RSA_WITH_3DES_EDE_CBC_SHA", key_exchange="RSA", encryption="3DES_EDE_CBC")
TLS13 = CipherSuite(name="TLS_AES_128_GCM_SHA256", key_exchange="any", encryption="AES_128_GCM")


def _protocols(accepted: dict[str, list[CipherSuite]]) -> list[ProtocolSupport]:
    return [
        ProtocolSupport(version=v, status="accepted", cipher_suites=accepted[v.value])
        if v.value in accepted
        else ProtocolSupport(version=v, status="not_accepted")
        for v in PROTOCOL_ORDER
    ]


def facts(host: str = "a.test", *, down: bool = False, **fields: Any) -> Facts:
    info = TargetInfo(input=f"{host}:443", host=host, port=443, server_name=host, ip_address=None)
    if down:
        error = ProbeError(error_class=ErrorClass.refused, message="connection refused")
        return Facts(target=info, started_at=START, finished_at=START, status="error", error=error)
    fields.setdefault("protocols", _protocols({"TLSv1.2": [GCM], "TLSv1.3": [TLS13]}))
    return Facts(target=info, started_at=START, finished_at=START, status="ok", **fields)


def finding(rule: str, status: Status, pack: str = "p") -> Finding:
    return Finding(pack=pack, rule=rule, title=f"title {rule}", severity="high", status=status, message="m")


def report(*targets: TargetReport, packs: tuple[str, ...] = ("p",)) -> Report:
    return decided_report(
        started_at=START,
        finished_at=START + timedelta(seconds=5),
        options=ScanOptions(timeout=5, packs=list(packs)),
        packs=[PackInfo(id=p, title=p, version="1", sha256="0" * 64, rules=3) for p in packs],
        targets=list(targets),
        summary=summarise(list(targets)),
    )


def one(before: Facts, after: Facts, old: list[Finding] | None = None, new: list[Finding] | None = None) -> ReportDiff:
    return diff_reports(report(target_report(before, old or [])), report(target_report(after, new or [])))


def only(diff: ReportDiff) -> TargetDiff:
    (target,) = diff.targets
    return target


def kinds(diff: ReportDiff) -> list[str]:
    return [r.kind for t in diff.targets for r in t.regressions]


def test_nothing_changed():
    """The same report twice: no target changed, no regression, exit 0 even when gating."""
    same = report(target_report(facts(), [finding("R1", Status.failed)]))
    diff = diff_reports(same, same)
    assert not only(diff).changed and diff.summary.targets_changed == 0
    assert [f.change for f in only(diff).findings] == ["still_failing"]
    assert not diff.regression and diff_exit_code(diff, True) == ExitCode.OK


def test_findings_new_fixed_still_and_inconclusive():
    """Each finding is classified by its status on both sides; only a newly counted failure is a regression."""
    old = [finding("NEW", Status.passed), finding("FIX", Status.failed), finding("STILL", Status.failed),
           finding("GONE", Status.failed), finding("OK", Status.passed)]  # fmt: skip
    new = [finding("NEW", Status.failed), finding("FIX", Status.passed), finding("STILL", Status.failed),
           finding("GONE", Status.error), finding("OK", Status.passed)]  # fmt: skip
    diff = one(facts(), facts(), old, new)
    assert {f.rule: f.change for f in only(diff).findings} == {
        "NEW": "new", "FIX": "fixed", "STILL": "still_failing", "GONE": "inconclusive"
    }  # fmt: skip
    assert [r.detail for r in only(diff).regressions] == ['p/NEW "title NEW" fails and counts']
    assert (diff.summary.new_failures, diff.summary.fixed) == (1, 1)
    assert diff_exit_code(diff, True) == ExitCode.POLICY_FAILED
    assert diff_exit_code(diff, False) == ExitCode.OK


def test_waived_failure_counting_again_is_a_regression_and_the_reverse_is_not():
    """A failure whose waiver lapsed counts now: a regression; a failure newly waived is still failing, no
    regression. Both decisions are on the change."""
    diff = one(facts(), facts(), [finding("R", Status.waived)], [finding("R", Status.failed)])
    (change,) = only(diff).findings
    assert change.change == "still_failing"
    assert (change.before and change.before.decision, change.after and change.after.decision) == ("waived", "counted")
    assert kinds(diff) == ["new_failure"]
    back = one(facts(), facts(), [finding("R", Status.failed)], [finding("R", Status.waived)])
    assert kinds(back) == [] and only(back).findings[0].change == "still_failing"


def test_findings_of_a_pack_only_one_report_ran_are_not_compared():
    """A pack the first run did not use cannot have new failures: its findings are left out, the pack is named."""
    before = report(target_report(facts(), [finding("R", Status.passed)]))
    after = report(
        target_report(facts(), [finding("R", Status.passed), finding("X", Status.failed, pack="q")]), packs=("p", "q")
    )
    diff = diff_reports(before, after)
    assert only(diff).findings == [] and not diff.regression
    assert [(p.id, p.before, p.after) for p in diff.packs] == [("q", None, "1")]


def test_protocol_floor_dropping_is_a_regression_adding_a_newer_one_is_not():
    """TLS 1.0 enabled below TLS 1.2: regression; TLS 1.3 added above TLS 1.2: a change only."""
    tls12 = facts(protocols=_protocols({"TLSv1.2": [GCM]}))
    with_tls10 = facts(protocols=_protocols({"TLSv1.0": [CBC], "TLSv1.2": [GCM]}))
    with_tls13 = facts(protocols=_protocols({"TLSv1.2": [GCM], "TLSv1.3": [TLS13]}))
    weaker = one(tls12, with_tls10)
    assert [v.value for v in only(weaker).protocols_added] == ["TLSv1.0"]
    assert kinds(weaker) == ["older_protocol", "weaker_suite"]  # its CBC suite is weaker than any before, too
    stronger = one(tls12, with_tls13)
    assert [v.value for v in only(stronger).protocols_added] == ["TLSv1.3"] and not stronger.regression
    back = one(with_tls10, tls12)
    assert [v.value for v in only(back).protocols_removed] == ["TLSv1.0"] and not back.regression


def test_suite_strength_order():
    """weak < no forward secrecy < forward secret CBC < forward secret AEAD; TLS 1.3 suites are the strongest."""
    assert [suite_strength(s) for s in (TRIPLE_DES, RSA_KX, CBC, GCM, TLS13)] == [0, 1, 2, 3, 3]
    assert suite_strength(CipherSuite(name="TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256")) == 3  # no parsed fields


def test_suites_added_and_removed_per_version_and_weaker_ones_regress():
    """A CBC suite added beside GCM ones is weaker (regression); a GCM one added beside CBC is not."""
    gcm_only = facts(protocols=_protocols({"TLSv1.2": [GCM]}))
    both = facts(protocols=_protocols({"TLSv1.2": [GCM, CBC]}))
    weaker = one(gcm_only, both)
    (suites,) = only(weaker).suites
    assert (suites.version.value, suites.added, suites.removed) == ("TLSv1.2", [CBC.name], [])
    assert kinds(weaker) == ["weaker_suite"]
    cbc_only = facts(protocols=_protocols({"TLSv1.2": [CBC]}))
    stronger = one(cbc_only, both)
    assert only(stronger).suites[0].added == [GCM.name] and not stronger.regression
    removed = one(both, gcm_only)
    assert only(removed).suites[0].removed == [CBC.name] and not removed.regression


def test_groups_drift():
    """Groups added and removed per kind, and the preferred group, when observed on both sides."""
    x25519 = NamedGroup(name="x25519", code="0x001D", kind="ecdhe")
    p256 = NamedGroup(name="secp256r1", code="0x0017", kind="ecdhe")
    mlkem = NamedGroup(name="X25519MLKEM768", code="0x11EC", kind="hybrid_pq")
    before = facts(groups=GroupFacts(status="ok", tls13=observed([x25519, p256]), preferred=observed("x25519")))
    after = facts(groups=GroupFacts(status="ok", tls13=observed([mlkem, x25519]), preferred=observed("X25519MLKEM768")))
    target = only(one(before, after))
    (groups,) = target.groups
    assert (groups.kind, groups.added, groups.removed) == ("tls13", ["X25519MLKEM768"], ["secp256r1"])
    assert [(f.fact, f.before, f.after) for f in target.facts] == [("groups.preferred", "x25519", "X25519MLKEM768")]
    not_probed = only(one(before, facts()))
    assert not_probed.groups == [] and not_probed.facts == []  # not observed in the second: not compared


def test_session_lifetime_changed():
    """A ticket lifetime that changed is a change, not a regression (packs judge lifetimes)."""
    before = facts(sessions=SessionFacts(status="ok", tls13_ticket_lifetime=observed(7200)))
    after = facts(sessions=SessionFacts(status="ok", tls13_ticket_lifetime=observed(86400)))
    diff = one(before, after)
    assert [(f.fact, f.before, f.after) for f in only(diff).facts] == [("sessions.tls13_ticket_lifetime", 7200, 86400)]
    assert not diff.regression


def _client_auth(requirement: str, at: str) -> ClientAuthFacts:
    enforcement = ClientAuthEnforcement(at=at, detail="d")  # type: ignore[arg-type]
    return ClientAuthFacts(status="ok", requirement=observed(requirement), enforcement=observed(enforcement))


def test_client_auth_relaxed_is_a_regression_tightened_is_not():
    """required -> optional (and enforcement moved from the handshake to the application) regresses."""
    strict, loose = _client_auth("required", "handshake"), _client_auth("optional", "application")
    diff = one(facts(client_auth=strict), facts(client_auth=loose))
    assert [(f.fact, f.before, f.after) for f in only(diff).facts] == [
        ("client_auth.requirement", "required", "optional"),
        ("client_auth.enforcement", "handshake", "application"),
    ]
    assert kinds(diff) == ["client_auth_weaker"]
    assert not one(facts(client_auth=loose), facts(client_auth=strict)).regression


def _certificate(trusted: bool, name_matches: bool) -> CertificateFacts:
    reason = None if trusted else "unknown_issuer"
    return CertificateFacts(
        status="ok",
        trust=[TrustResult(store="mozilla", trusted=trusted, reason=reason)],
        hostname_match=observed(name_matches),
        hostname_mismatch=None if name_matches else "no_matching_name",
    )


def test_trust_and_host_name_drops_are_regressions():
    """Trusted -> untrusted and name match -> mismatch, each with its reason; the way back is no regression."""
    good, bad = _certificate(True, True), _certificate(False, False)
    diff = one(facts(certificate=good), facts(certificate=bad))
    assert [(f.fact, f.before, f.after, f.note) for f in only(diff).facts] == [
        ("certificate.trust[mozilla]", True, False, "unknown_issuer"),
        ("certificate.hostname_match", True, False, "no_matching_name"),
    ]
    assert kinds(diff) == ["trust_drop", "hostname_drop"]
    assert not one(facts(certificate=bad), facts(certificate=good)).regression


def test_targets_added_removed_unreachable_and_back():
    """Paired by identity: states for each case; newly unreachable is exit 3 when gating, not a regression."""
    before = report(
        target_report(facts("stays.test"), []),
        target_report(facts("goes.test"), []),
        target_report(facts("drops.test"), []),
        target_report(facts("returns.test", down=True), []),
    )
    after = report(
        target_report(facts("returns.test"), []),
        target_report(facts("drops.test", down=True), []),
        target_report(facts("stays.test"), []),
        target_report(facts("new.test"), []),
    )
    diff = diff_reports(before, after)
    states = {t.key.host: t.state for t in diff.targets}
    assert states == {"stays.test": "compared", "goes.test": "removed", "drops.test": "newly_unreachable",
                      "returns.test": "reachable_again", "new.test": "added"}  # fmt: skip
    dropped = next(t for t in diff.targets if t.key.host == "drops.test")
    assert (dropped.before_error, dropped.after_error) == (None, ErrorClass.refused)
    assert not diff.regression and diff.unchecked
    assert diff_exit_code(diff, True) == ExitCode.NOT_CHECKED
    assert diff_exit_code(diff, False) == ExitCode.OK


@pytest.mark.parametrize("fmt", list(DiffFormat))
def test_every_target_state_renders(fmt):
    """Added, removed, newly unreachable and reachable again, with their findings, in every format."""
    before = report(
        target_report(facts("goes.test"), []),
        target_report(facts("drops.test"), [finding("R", Status.failed)]),
        target_report(facts("returns.test", down=True), []),
    )
    after = report(
        target_report(facts("returns.test"), [finding("R", Status.failed)]),
        target_report(facts("drops.test", down=True), [finding("R", Status.error)]),
        target_report(facts("new.test"), []),
    )
    text = render(diff_reports(before, after), fmt)
    for name in ("goes.test", "drops.test", "returns.test", "new.test"):
        assert name in text
    if fmt is not DiffFormat.json:
        assert "newly unreachable" in text and "reachable again" in text and "now inconclusive" in text


def test_pairing_modes():
    """auto pairs two single-target reports whatever their names; identity does not; order pairs by position."""
    prod, staging = report(target_report(facts("prod.test"), [])), report(target_report(facts("staging.test"), []))
    assert [t.state for t in diff_reports(prod, staging).targets] == ["compared"]
    assert [t.state for t in diff_reports(prod, staging, match="identity").targets] == ["removed", "added"]
    two = report(target_report(facts("a.test"), []), target_report(facts("b.test"), []))
    assert [t.state for t in diff_reports(two, prod, match="order").targets] == ["compared", "removed"]


@pytest.mark.parametrize("fmt", list(DiffFormat))
def test_every_format_renders_and_escapes_what_servers_say(fmt):
    """Every DiffFormat renders; a hostile certificate subject reaches no format raw (controls, HTML, Markdown)."""
    cert = _certificate(False, True).model_copy(update={"trust": [TrustResult(store=HOSTILE, trusted=False)]})
    before = facts(
        certificate=_certificate(True, True).model_copy(update={"trust": [TrustResult(store=HOSTILE, trusted=True)]})
    )
    text = render(one(before, facts(certificate=cert)), fmt)
    assert "\x1b" not in text
    if fmt is DiffFormat.html:
        assert "<script>" not in text and "&lt;script&gt;" in text
    if fmt is DiffFormat.markdown:
        assert "<script>" not in text and "[l](https" not in text
    if fmt is DiffFormat.json:
        data = json.loads(text)
        jsonschema.validate(data, json.loads((schema_dir() / "diff.schema.json").read_text()))
        assert data["targets"][0]["regressions"][0]["kind"] == "trust_drop"


def test_terminal_lines_say_what_changed_printably():
    """The terminal summary names the change and the regression, controls shown escaped."""
    cert = _certificate(False, True).model_copy(update={"trust": [TrustResult(store=HOSTILE, trusted=False)]})
    before = _certificate(True, True).model_copy(update={"trust": [TrustResult(store=HOSTILE, trusted=True)]})
    lines = [line.plain for line in summary_lines(one(facts(certificate=before), facts(certificate=cert)))]
    assert any(line.strip().startswith("REGRESSION: no longer trusted by evil\\x1b[2J") for line in lines)
    assert all("\x1b" not in line for line in lines)


def test_schema_file_is_current():
    """reports/schema/diff.schema.json is what the model generates (python -m scanner.schemas)."""
    from scanner.diff import diff_schema  # noqa: PLC0415
    from scanner.schemas import schema_text  # noqa: PLC0415

    assert (schema_dir() / "diff.schema.json").read_text() == schema_text(diff_schema())
