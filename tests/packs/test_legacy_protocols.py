"""The tls11-plus and tls12-plus packs: exact statuses on constructed facts, then real loopback servers."""

from __future__ import annotations

import pytest

from scanner.facts import Facts
from scanner.policy.pack import resolve_pack
from tests.helpers import openssl_server
from tests.packs import harness
from tests.packs.harness import ERROR, FAIL, Case, case_test, coverage_test, statuses

PACKS = ("tls11-plus", "tls12-plus")
PREFIX = {"tls11-plus": "TLS11PLUS", "tls12-plus": "TLS12PLUS"}


def make_facts(accepted: set[str], errors: set[str]) -> Facts:
    """A scanned endpoint accepting ``accepted`` versions; versions in ``errors`` could not be probed."""
    return harness.scanned(
        harness.target("mq.example", 1414, "192.0.2.20"),
        protocols=harness.protocols(dict.fromkeys(accepted, ()), errors=errors),
    )


ALL_ERROR = {"tls11-plus": dict.fromkeys(("001", "002", "003", "004"), ERROR),
             "tls12-plus": dict.fromkeys(("001", "002", "003", "004", "005"), ERROR)}  # fmt: skip
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
TABLE = [
    Case(name, pack, make_facts(accepted, errors), {f"{PREFIX[pack]}-{n}": s for n, s in expect[pack].items()})
    for name, accepted, errors, expect in CASES
    for pack in PACKS
]
test_rule_statuses_on_fixture_facts = case_test(TABLE)
test_every_rule_has_passing_and_failing_fixtures = coverage_test(TABLE)


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
    rules = [rule for pack in PACKS for rule in harness.rule_ids(pack)]
    assert found == {rule: expect.get(rule, "pass") for rule in rules}
    assert run.code == code, run.stderr
