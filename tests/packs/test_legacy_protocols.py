"""The tls11-plus and tls12-plus packs: exact statuses on constructed facts, then real loopback servers."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from scanner.facts import ErrorClass, Facts, ProbeError, ProtocolSupport, ProtocolVersion, TargetInfo
from scanner.policy.engine import evaluate
from scanner.policy.pack import resolve_pack
from tests.helpers import openssl_server

NOW = dt.datetime(2025, 6, 1, 12, 0, tzinfo=dt.UTC)
VERSIONS = ("SSLv2", "SSLv3", "TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3")
PACKS = ("tls11-plus", "tls12-plus")


def make_facts(accepted: set[str], errors: set[str]) -> Facts:
    """A scanned endpoint accepting ``accepted`` versions; versions in ``errors`` could not be probed."""
    protocols = []
    for version in VERSIONS:
        if version in errors:
            error = ProbeError(error_class=ErrorClass.timeout, message="no answer within 5s")
            protocols.append(ProtocolSupport(version=ProtocolVersion(version), status="error", error=error))
        else:
            status = "accepted" if version in accepted else "not_accepted"
            protocols.append(ProtocolSupport(version=ProtocolVersion(version), status=status))
    return Facts(
        target=TargetInfo(input="mq.example:1414", host="mq.example", port=1414, server_name="mq.example",
                          ip_address="192.0.2.20"),
        started_at=NOW, finished_at=NOW, status="ok", protocols=protocols,
    )  # fmt: skip


FAIL, ERR = "fail", "error"
ALL_ERROR = {"tls11-plus": dict.fromkeys(("001", "002", "003", "004"), ERR),
             "tls12-plus": dict.fromkeys(("001", "002", "003", "004", "005"), ERR)}  # fmt: skip
# (name, accepted versions, unobserved versions, per pack: rule number -> status for every rule that does not pass)
CASES = [
    ("tls13-only", {"TLSv1.3"}, set(), {"tls11-plus": {}, "tls12-plus": {}}),
    ("tls12-and-13", {"TLSv1.2", "TLSv1.3"}, set(), {"tls11-plus": {}, "tls12-plus": {}}),
    ("tls12-only", {"TLSv1.2"}, set(), {"tls11-plus": {}, "tls12-plus": {}}),
    ("tls11-to-13", {"TLSv1.1", "TLSv1.2", "TLSv1.3"}, set(), {"tls11-plus": {}, "tls12-plus": {"004": FAIL}}),
    ("tls11-only", {"TLSv1.1"}, set(), {"tls11-plus": {}, "tls12-plus": {"004": FAIL, "005": FAIL}}),
    ("tls10-to-12", {"TLSv1.0", "TLSv1.1", "TLSv1.2"}, set(),
     {"tls11-plus": {"003": FAIL}, "tls12-plus": {"003": FAIL, "004": FAIL}}),
    ("tls10-only", {"TLSv1.0"}, set(),
     {"tls11-plus": {"003": FAIL, "004": FAIL}, "tls12-plus": {"003": FAIL, "005": FAIL}}),
    ("sslv3-and-tls12", {"SSLv3", "TLSv1.2"}, set(), {"tls11-plus": {"002": FAIL}, "tls12-plus": {"002": FAIL}}),
    ("sslv2-and-tls12", {"SSLv2", "TLSv1.2"}, set(), {"tls11-plus": {"001": FAIL}, "tls12-plus": {"001": FAIL}}),
    ("nothing-accepted", set(), set(), {"tls11-plus": {"004": FAIL}, "tls12-plus": {"005": FAIL}}),
    # One version that could not be probed leaves the protocol list incomplete: every rule is inconclusive.
    ("sslv2-unobserved", {"TLSv1.3"}, {"SSLv2"}, ALL_ERROR),
]  # fmt: skip
PARAMS = [
    pytest.param(pack, accepted, errors, expect[pack], id=f"{pack}-{name}")
    for name, accepted, errors, expect in CASES
    for pack in PACKS
]


def judge(pack_id: str, accepted: set[str], errors: set[str]) -> dict[str, str]:
    pack = resolve_pack(pack_id)
    return {f.rule: f.status.value for f in evaluate(make_facts(accepted, errors), [pack])}


@pytest.mark.parametrize(("pack_id", "accepted", "errors", "expect"), PARAMS)
def test_rule_statuses_on_fixture_facts(pack_id, accepted, errors, expect):
    """Every rule of the pack has exactly the status the fixture expects (pass unless listed)."""
    pack = resolve_pack(pack_id)
    numbers = {r.id.rsplit("-", 1)[1] for r in pack.rules}
    assert set(expect) <= numbers, f"no such rules: {set(expect) - numbers}"
    assert judge(pack_id, accepted, errors) == {r.id: expect.get(r.id.rsplit("-", 1)[1], "pass") for r in pack.rules}


@pytest.mark.parametrize("pack_id", PACKS)
def test_every_rule_has_passing_and_failing_fixtures(pack_id):
    """Each rule of each pack passes in some fixture and fails in another."""
    seen: dict[str, set[str]] = {}
    for _, accepted, errors, _ in CASES:
        for rule, status in judge(pack_id, accepted, errors).items():
            seen.setdefault(rule, set()).add(status)
    assert not {rule: statuses for rule, statuses in seen.items() if not {"pass", "fail"} <= statuses}


@pytest.mark.parametrize("pack_id", PACKS)
def test_pack_is_traceable(pack_id):
    """Each pack names its sources, and each rule has a rationale, a remediation and an RFC reference."""
    pack = resolve_pack(pack_id)
    assert {"document", "section", "url", "date", "note"} <= set(pack.source)
    assert "STANDARDS.md" in pack.source["document"]
    for rule in pack.rules:
        assert rule.rationale.strip() and rule.remediation.strip(), rule.id
        assert any(ref.startswith("https://www.rfc-editor.org/rfc/") for ref in rule.references), rule.id


# --- real servers through the command line -------------------------------------------------------------------


def statuses(report) -> dict[str, str]:
    (target,) = json.loads(report.read_text())["targets"]
    return {f["rule"]: f["status"] for f in target["findings"]}


# s_server options; SECLEVEL=0 lets OpenSSL 3 negotiate TLS 1.0/1.1 (SHA-1 handshake signatures).
LEGACY = ("-cipher", "DEFAULT:@SECLEVEL=0")
SERVERS = [
    pytest.param(("-tls1_3",), 0, {}, id="tls13-only"),
    pytest.param(("-no_tls1_3", "-no_tls1", *LEGACY), 1, {"TLS12PLUS-004": FAIL}, id="tls11-and-12"),
    pytest.param(("-tls1", *LEGACY), 1,
                 {"TLS11PLUS-003": FAIL, "TLS11PLUS-004": FAIL, "TLS12PLUS-003": FAIL, "TLS12PLUS-005": FAIL},
                 id="tls10-only"),
]  # fmt: skip


@pytest.mark.parametrize(("options", "code", "expect"), SERVERS)
def test_loopback_servers(options, code, expect, pki, tlsgate, tmp_path):
    """openssl s_server with each protocol range gets exactly the expected statuses from both packs."""
    report = tmp_path / "report.json"
    with openssl_server(pki.cert, pki.key, *options) as port:
        run = tlsgate("scan", f"127.0.0.1:{port}", "--pack", "tls11-plus", "--pack", "tls12-plus",
                      "--json", str(report))  # fmt: skip
    found = statuses(report)
    rules = [r.id for pack in PACKS for r in resolve_pack(pack).rules]
    assert found == {rule: expect.get(rule, "pass") for rule in rules}
    assert run.code == code, run.stderr
