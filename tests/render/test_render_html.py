"""The HTML report: self-contained, well-formed, complete and escaped."""

from __future__ import annotations

import base64
import hashlib
import html
import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import Any, Literal

import pytest

from scanner.facts import (
    NOT_PROBED,
    BasicConstraints,
    Behaviours,
    Certificate,
    CertificateFacts,
    CipherSuite,
    ClientAuthEnforcement,
    ClientAuthFacts,
    DnFields,
    ErrorClass,
    ExtendedKeyUsage,
    Facts,
    GroupFacts,
    NamedGroup,
    Observed,
    OcspResponseFacts,
    ProbeError,
    ProtocolSupport,
    ProtocolVersion,
    PublicKey,
    RevocationResult,
    SessionAgeCheck,
    SessionFacts,
    TargetInfo,
    TrustResult,
    observed,
    unobserved,
)
from scanner.findings import Evidence, Finding, Status
from scanner.policy.engine import evaluate
from scanner.policy.pack import resolve_pack
from scanner.render import html as html_render
from scanner.report import PackInfo, Report, ScanOptions, TargetReport, summarise
from tests.helpers import decided_report, target_report

START = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
EVIL_SUBJECT = "CN=<script>alert(1)</script>,O=Evil & Co"
EVIL_CA = "CN=<b>x</b>"
DASH = "\u2013"  # the page's placeholder for a missing value
FAIL_RULE = "TLS13ONLY-001"

# Void elements never have an end tag; every other element the template writes must be closed.
_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


def _target(host: str, ip: str | None) -> TargetInfo:
    return TargetInfo(input=f"{host}:443", host=host, port=443, server_name=host, ip_address=ip)


def _certificate(subject: str) -> Certificate:
    return Certificate(
        subject=subject,
        issuer="CN=Test CA",
        serial="0a1b",
        sha256="ab" * 32,
        public_key=PublicKey(type="EC", size=256, curve="secp256r1"),
        signature_algorithm="ecdsa-with-SHA256",
        signature_hash="sha256",
        not_before=START - timedelta(days=10),
        not_after=START + timedelta(days=80),
        validity_days=90.0,
        subject_alt_names=["DNS:good.example", "IP:192.0.2.1"],
        extended_key_usage=[ExtendedKeyUsage(name="serverAuth", oid="1.3.6.1.5.5.7.3.1")],
        self_signed=False,
    )


def _suite(name: str, code: str, kx: str, auth: str, encryption: str, mac: str, bits: int) -> CipherSuite:
    """A suite as the scan reports it, its key exchanged over x25519."""
    return CipherSuite(
        name=name,
        code=code,
        key_exchange=kx,
        authentication=auth,
        encryption=encryption,
        mac=mac,
        key_bits=bits,
        ephemeral_key="ECDH x25519 253",
    )


def _protocols(*accepted: ProtocolVersion) -> list[ProtocolSupport]:
    suites = {
        ProtocolVersion.TLSv1_2: [
            _suite("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "0xC02F", "ECDHE", "RSA", "AES_128_GCM", "SHA256", 128)
        ],
        ProtocolVersion.TLSv1_3: [
            _suite("TLS_AES_256_GCM_SHA384", "0x1302", "any", "any", "AES_256_GCM", "SHA384", 256)
        ],
    }
    orders: dict[ProtocolVersion, Literal["server", "client"]] = {ProtocolVersion.TLSv1_3: "server"}
    return [
        ProtocolSupport(
            version=v,
            status="accepted" if v in accepted else "not_accepted",
            cipher_suites=suites.get(v, []) if v in accepted else [],
            cipher_order=orders.get(v) if v in accepted else None,
        )
        for v in ProtocolVersion
    ]


TIMEOUT = ProbeError(error_class=ErrorClass.timeout, message="read timed out")


def _not_probed(reason: str) -> Observed[Any]:
    return Observed[Any](status="not_probed", error=ProbeError(error_class=ErrorClass.not_applicable, message=reason))


def _groups() -> GroupFacts:
    x25519 = NamedGroup(name="x25519", code="0x001D", kind="ecdhe")
    hybrid = NamedGroup(name="X25519MLKEM768", code="0x11EC", kind="hybrid_pq")
    p256 = NamedGroup(name="secp256r1", code="0x0017", kind="ecdhe")
    return GroupFacts(
        status="ok",
        tls13=observed([hybrid, x25519, p256], "tlsgate"),
        tls12=observed([x25519, p256], "tlsgate"),
        preferred=observed(None, "tlsgate"),
        dh_parameter_bits=unobserved(ErrorClass.timeout, "read timed out", "tlsgate"),
        hybrid_pq_accepted=observed(True, "tlsgate"),
    )


def _behaviours() -> Behaviours:
    return Behaviours(
        status="ok",
        secure_renegotiation=observed(True, "sslyze"),
        client_renegotiation=observed(False, "sslyze"),
        alpn=observed(["h2", "http/1.1"], "tlsgate"),
        heartbleed=unobserved(ErrorClass.reset, "connection reset <by peer>", "sslyze"),
        robot=_not_probed("no RSA key exchange is accepted"),
    )


def _sessions() -> SessionFacts:
    return SessionFacts(
        status="ok",
        session_id_resumption=observed(True, "tlsgate"),
        tls12_ticket_lifetime=observed(7200, "tlsgate"),
        session_id_resumed_after=observed(SessionAgeCheck(age_seconds=3600.0, resumed=False), "tlsgate"),
    )


def _client_auth() -> ClientAuthFacts:
    return ClientAuthFacts(
        status="ok",
        requirement=observed("optional", "tlsgate"),
        ca_names=observed([EVIL_CA, "CN=Corp CA,O=Corp"], "tlsgate"),
        throwaway_certificate_accepted=observed(False, "tlsgate"),
        provided_certificate_accepted=NOT_PROBED,
        enforcement=observed(
            ClientAuthEnforcement(
                at="application",
                http_basis="the server selected ALPN http/1.1",
                status_line="HTTP/1.1 400 Bad Request",
                detail="the HTTP request without a client certificate was refused: HTTP/1.1 400 Bad Request",
            ),
            "tlsgate",
        ),
        untrusted_enforcement=observed(ClientAuthEnforcement(at="handshake", detail="refused"), "tlsgate"),
    )


def _cells(section: str, fact: str) -> tuple[str, list[str]]:
    """The observation status and the text of each cell (label, value, source) of one facts-table row."""
    row = re.search(rf'<tr data-observed="(\w+)" data-fact="{fact}">(.*?)</tr>', section, re.S)
    assert row is not None, fact
    cells = re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row.group(2), re.S)
    texts = [html.unescape(" ".join(re.sub(r"<[^>]+>", " ", cell).split())) for cell in cells]
    return row.group(1), texts


def _section(page: str, index: int) -> str:
    return page.split(f'id="target-{index}"', 1)[1].split("</section>", 1)[0]


def _finding(status: Status, message: str, evidence: Evidence | dict[str, object]) -> Finding:
    return Finding(
        pack="tls13-only",
        rule=FAIL_RULE,
        title="No protocol version other than TLS 1.3 is accepted",
        severity="high",
        status=status,
        message=message,
        evidence=evidence,
        rationale="Older versions keep weaker handshakes.",
        remediation="Set the minimum protocol version to TLS 1.3.",
        references=["https://www.rfc-editor.org/rfc/rfc8446", "javascript:alert(2)"],
    )


def _evidence(facts: Facts, rule: str, pack: str = "tls13-only") -> Evidence:
    """The evidence the engine records for one rule of a built-in pack on these facts."""
    (finding,) = [f for f in evaluate(facts, [resolve_pack(pack)]) if f.rule == rule]
    return finding.evidence


def _target_report(name: str, facts: Facts, findings: list[Finding]) -> TargetReport:
    return target_report(facts, findings, name)


@pytest.fixture(scope="module")
def report() -> Report:
    end = START + timedelta(seconds=3)
    good = Facts(
        target=_target("good.example", "192.0.2.1").model_copy(update={"starttls": "smtp"}),
        started_at=START,
        finished_at=end,
        status="ok",
        protocols=_protocols(ProtocolVersion.TLSv1_3),
        certificate=CertificateFacts(status="ok", leaf=_certificate("CN=good.example"), chain=[]),
        groups=_groups(),
        behaviours=_behaviours(),
        sessions=SessionFacts(status="error", error=ProbeError(error_class=ErrorClass.reset, message="peer hung up")),
        client_auth=_client_auth(),
    )
    bad = Facts(
        target=_target("legacy.example", "192.0.2.2"),
        started_at=START,
        finished_at=end,
        status="ok",
        protocols=_protocols(ProtocolVersion.TLSv1_2, ProtocolVersion.TLSv1_3),
        certificate=CertificateFacts(status="ok", leaf=_certificate(EVIL_SUBJECT)),
    )
    missing = Facts(
        target=_target("missing.invalid", None),
        started_at=START,
        finished_at=end,
        status="error",
        error=ProbeError(error_class=ErrorClass.dns, message="missing.invalid does not resolve"),
    )
    targets = [
        _target_report(
            "good.example:443", good, [_finding(Status.passed, "Only TLSv1.3 is accepted.", _evidence(good, FAIL_RULE))]
        ),
        _target_report(
            "legacy.example:443",
            bad,
            [_finding(Status.failed, "TLSv1.2 is accepted.", _evidence(bad, FAIL_RULE))],
        ),
        _target_report(
            "missing.invalid:443",
            missing,
            [
                _finding(
                    Status.error, "Protocols were not observed.", {"unobserved": "missing.invalid does not resolve"}
                )
            ],
        ),
    ]
    return decided_report(
        started_at=START,
        finished_at=end,
        options=ScanOptions(timeout=5.0, packs=["tls13-only"]),
        packs=[
            PackInfo(id="tls13-only", title="TLS 1.3 only", version="1.0.0", sha256="0123456789abcdef" * 4, rules=2)
        ],
        targets=targets,
        summary=summarise(targets),
    )


@pytest.fixture(scope="module")
def page(report: Report) -> str:
    return html_render.render(report)


class _Checker(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.problems: list[str] = []
        self.ids: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.ids += [value for name, value in attrs if name == "id" and value]
        if tag not in _VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"unexpected </{tag}> at {self.getpos()}, open: {self.stack[-3:]}")
            return
        self.stack.pop()


def test_page_is_self_contained(page: str) -> None:
    """The page loads nothing from elsewhere: no scripts, stylesheets links or src attributes."""
    _assert_self_contained(page)


def _assert_self_contained(page: str) -> None:
    """No external resource of any kind; the two scripts are inline and the only ones the page's CSP runs."""
    lowered = page.lower()
    for external in ("<link", "src=", "@import", "url(", "<img", "<iframe", "<object", "<embed", "fetch(", "xmlhttp"):
        assert external not in lowered, external
    assert not re.search(r"<[a-z][^>]*\son[a-z]+=", lowered), "inline event handler"
    assert "<style>" in lowered
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", page, re.S)
    assert len(scripts) == lowered.count("<script") == 2
    assert all(attributes == "" for attributes, _ in scripts)
    csp = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]*)">', page)
    assert csp is not None
    assert page.index("Content-Security-Policy") < page.index("<script>") < page.index("<style>")
    digests = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()}'" for _, script in scripts
    )
    assert csp.group(1) == (
        f"default-src 'none'; style-src 'unsafe-inline'; script-src {digests}; base-uri 'none'; form-action 'none'"
    )


def test_page_parses_with_balanced_tags(page: str) -> None:
    """The page parses with html.parser, every element is closed and every id is unique."""
    _assert_parses(page)


def _assert_parses(page: str) -> None:
    checker = _Checker()
    checker.feed(page)
    checker.close()
    assert checker.problems == []
    assert checker.stack == []
    assert len(checker.ids) == len(set(checker.ids))
    assert page.startswith("<!DOCTYPE html>")


def test_overview_lists_every_target_with_its_verdict(page: str) -> None:
    """The overview table has one row per target, linking to its section, with its verdict."""
    overview = page.split('<section id="overview">', 1)[1].split("</section>", 1)[0]
    for index, (name, verdict) in enumerate(
        [("good.example:443", "pass"), ("legacy.example:443", "fail"), ("missing.invalid:443", "error")], 1
    ):
        assert f'<a href="#target-{index}">{name}</a>' in overview
        assert f'<tr data-target="{index}" data-verdict="{verdict}">' in overview
        assert f'<section class="target" id="target-{index}" data-verdict="{verdict}">' in page


def test_failing_finding_shows_rule_and_evidence(page: str) -> None:
    """The failed finding's row carries its status and severity, its rule id, its evidence in words (the
    offending version named once) and its remediation, visible (not folded); the anchor the overview links to."""
    section = page.split('id="target-2"', 1)[1].split("</section>", 1)[0]
    row = re.search(
        rf'<tr id="target-2.tls13-only.{FAIL_RULE}" data-status="fail" data-severity="high"[^>]*>.*?</tr>',
        section,
        re.S,
    )
    assert row is not None
    assert FAIL_RULE in row.group(0)
    assert "<details" not in row.group(0) and "<pre" not in row.group(0)
    evidence = re.search(r'<dl class="evidence">(.*?)</dl>', row.group(0), re.S)
    assert evidence is not None
    assert _text(evidence.group(1)) == (
        "Fact protocols Rule demands each version = TLSv1.3 Of the elements where status = accepted Offending TLSv1.2"
    )
    fix = re.search(r'<td class="wrap fix">(.*?)</td>', row.group(0), re.S)
    assert fix is not None and "Set the minimum protocol version to TLS 1.3." in fix.group(1)
    assert "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256" in section  # in the folded fact tables


def test_unscanned_target_shows_error_class(page: str) -> None:
    """A target that could not be scanned shows one block with its error class and message: no row per rule and
    no empty fact tables; the overview says the same instead of a count of inconclusive rules."""
    section = page.split('id="target-3"', 1)[1].split("</section>", 1)[0]
    block = re.search(r'<div class="alert not-scanned" role="note" data-error-class="dns">(.*?)</div>', section, re.S)
    assert block is not None
    assert _text(block.group(1)) == (
        f"Not scanned: dns {DASH} missing.invalid does not resolve None of the 1 rules of its packs could be checked."
    )
    assert "<table" not in section and "<details" not in section
    row = _overview(page).split('<tr data-target="3"', 1)[1].split("</tr>", 1)[0]
    assert f'data-error-class="dns">not scanned: <code>dns</code> {DASH} missing.invalid does not resolve</td>' in row
    assert 'class="cell' not in row
    failed = page.split('<section id="failed-rules">', 1)[1].split("</section>", 1)[0]
    assert '<li data-error-class="dns">' in failed and "missing.invalid does not resolve" in failed


def test_untrusted_text_is_escaped(page: str) -> None:
    """Markup in a certificate subject is escaped, and only http(s) references become links."""
    assert "<script>alert(1)</script>" not in page
    assert "CN=&lt;script&gt;alert(1)&lt;/script&gt;,O=Evil &amp; Co" in page
    assert 'href="javascript:' not in page
    assert "javascript:alert(2)" in page


def test_partial_observations_render(report: Report) -> None:
    """Per-version probe errors, a certificate error and an empty report all render without failing."""
    probe_error = ProbeError(error_class=ErrorClass.timeout, message="read timed out")
    facts = Facts(
        target=TargetInfo(input="192.0.2.9:8443", host="192.0.2.9", port=8443, server_name=None, ip_address=None),
        started_at=START.replace(tzinfo=None),
        finished_at=(START + timedelta(minutes=2)).replace(tzinfo=None),
        status="ok",
        protocols=[ProtocolSupport(version=ProtocolVersion.TLSv1_3, status="error", error=probe_error)],
        certificate=CertificateFacts(status="error", error=probe_error),
    )
    target = _target_report("192.0.2.9:8443", facts, [])
    partial = report.model_copy(update={"targets": [target], "summary": summarise([target])})
    page = html_render.render(partial)
    assert "<code>timeout</code>: read timed out" in page
    assert "Certificate not observed" in page
    assert "No findings." in page
    empty = report.model_copy(update={"targets": [], "packs": [], "summary": summarise([])})
    assert "No targets were scanned." in html_render.render(empty)


def test_cipher_suite_details_and_order(page: str) -> None:
    """Each suite shows its code and components; each accepted version its cipher order."""
    good, legacy = _section(page, 1), _section(page, 2)
    row = re.search(r"<tr>\s*<th scope=\"row\" class=\"mono\">TLS_AES_256_GCM_SHA384.*?</tr>", good, re.S)
    assert row is not None
    cells = [
        " ".join(re.sub(r"<[^>]+>", " ", c).split())
        for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row.group(0), re.S)
    ]
    assert cells == [
        "TLS_AES_256_GCM_SHA384",
        "0x1302",
        "any",
        "any",
        "AES_256_GCM",
        "256",
        "SHA384",
        "ECDH x25519 253",
    ]
    assert "<td>server order</td>" in good
    assert "TLSv1.3 cipher suites" in good
    assert "0xC02F" in legacy
    assert '<span class="muted">unknown</span>' in legacy  # TLS 1.2 without an observed order
    assert "<dt>STARTTLS</dt><dd>smtp</dd>" in good


def test_fact_groups_render_rows(page: str) -> None:
    """Groups, behaviours and client authentication show one row per fact with value and source."""
    good = _section(page, 1)
    for heading in ("Key exchange groups", "Behaviours", "Client authentication", "Sessions"):
        assert f"<h3>{heading}</h3>" in good
    assert _cells(good, "tls13") == (
        "ok",
        ["TLS 1.3 groups (server order)", "X25519MLKEM768, x25519, secp256r1", "tlsgate"],
    )
    assert _cells(good, "tls12")[1][1] == "x25519, secp256r1"
    assert _cells(good, "preferred") == ("ok", ["Preferred group", "none announced", "tlsgate"])
    assert _cells(good, "hybrid_pq_accepted")[1][1] == "yes"
    assert _cells(good, "secure_renegotiation") == ("ok", ["Secure renegotiation (RFC 5746)", "yes", "sslyze"])
    assert _cells(good, "client_renegotiation")[1][1] == "no"
    assert _cells(good, "alpn")[1][1] == "h2, http/1.1"
    assert _cells(good, "requirement")[1][1] == "optional"
    assert _cells(good, "ca_names")[1][1] == f"{EVIL_CA} CN=Corp CA,O=Corp"
    assert _cells(good, "throwaway_certificate_accepted")[1][1] == "no"
    assert _cells(good, "enforcement")[1][1] == "application (HTTP/1.1 400 Bad Request)"
    assert _cells(good, "untrusted_enforcement")[1][1] == "handshake"
    # Every Observed field of a group has a row, so a new fact cannot be silently left out of the report.
    for group, rows in [
        (GroupFacts, html_render.GROUP_ROWS),
        (Behaviours, html_render.BEHAVIOUR_ROWS),
        (SessionFacts, html_render.SESSION_ROWS),
        (ClientAuthFacts, html_render.CLIENT_AUTH_ROWS),
    ]:
        assert [r.field for r in rows] == [name for name in group.model_fields if name not in {"status", "error"}]


def test_observed_renderings(page: str) -> None:
    """Observed facts render as their value, as greyed "not probed" (with a reason) or as the error."""
    good = _section(page, 1)
    assert _cells(good, "dh_parameter_bits") == (
        "error",
        ["DH parameter size", "could not determine: timeout: read timed out", "tlsgate"],
    )
    status, cells = _cells(good, "heartbleed")
    assert status == "error"
    assert cells[1] == "could not determine: reset: connection reset <by peer>"
    assert "connection reset &lt;by peer&gt;" in good
    assert _cells(good, "robot") == ("not_probed", ["ROBOT", "not probed (no RSA key exchange is accepted)", DASH])
    assert '<span class="muted">not probed (no RSA key exchange is accepted)</span>' in good
    assert _cells(good, "early_data")[1][1] == "not probed"
    assert _cells(good, "provided_certificate_accepted") == (
        "not_probed",
        ["Provided certificate accepted", "not probed", DASH],
    )


def test_group_error_and_not_probed_groups(page: str) -> None:
    """A group that failed shows its error and no empty table; groups not probed get one line, no table."""
    good, legacy, missing = _section(page, 1), _section(page, 2), _section(page, 3)
    assert f'<p class="alert">Sessions not observed {DASH} <code>reset</code>: peer hung up</p>' in good
    assert '<table class="facts sessions">' not in good
    assert "Not probed:" not in good
    for section in (legacy, missing):
        assert '<table class="facts' not in section
        assert "<h3>Behaviours</h3>" not in section
    assert "Not probed: key exchange groups, behaviours, sessions, client authentication." in legacy
    assert "Not probed:" not in missing  # not scanned: one block says why, no fact tables


def test_sessions_table_and_ca_name_escaping(report: Report) -> None:
    """The sessions table shows lifetimes and the aged-session check; CA names are escaped, one per item."""
    facts = report.targets[0].facts.model_copy(update={"sessions": _sessions()})
    target = _target_report("good.example:443", facts, [])
    page = html_render.render(report.model_copy(update={"targets": [target], "summary": summarise([target])}))
    section = _section(page, 1)
    assert _cells(section, "session_id_resumption")[1][1] == "yes"
    assert _cells(section, "tls12_ticket_lifetime") == ("ok", ["Ticket lifetime hint (TLS 1.2)", "7200 s", "tlsgate"])
    assert _cells(section, "session_id_resumed_after")[1][1] == "not resumed after 3600 s"
    assert _cells(section, "tls13_resumption")[0] == "not_probed"
    assert "<b>x</b>" not in page
    assert "<li>CN=&lt;b&gt;x&lt;/b&gt;</li><li>CN=Corp CA,O=Corp</li>" in page
    _assert_parses(page)
    _assert_self_contained(page)


# --- Certificate details: chain, trust, stapling, revocation, expiry --------------------------------------------------

LEAF_SHA, INTERMEDIATE_SHA, ROOT_SHA = "1f" * 32, "2e" * 32, "3d" * 32
EVIL_URL = "http://ocsp.example/<img onerror=x>"
EVIL_DETAIL = "issuer <i>unknown</i> & untrusted"


def _chain_certificate(subject: str, issuer: str, sha: str, **update: Any) -> Certificate:
    return _certificate(subject).model_copy(update={"issuer": issuer, "sha256": sha, **update})


def _full_chain() -> list[Certificate]:
    leaf = _chain_certificate(
        "CN=shop.example,O=Shop",
        "CN=Issuing CA,O=Corp",
        LEAF_SHA,
        subject_fields=DnFields(common_name="shop.example", organization="Shop"),
        days_remaining=80.0,
        key_usage=["digitalSignature", "keyEncipherment"],
        basic_constraints=BasicConstraints(ca=False),
        ocsp_urls=[EVIL_URL],
        ca_issuer_urls=["http://ca.example/issuing.cer"],
        crl_urls=["http://crl.example/issuing.crl"],
        subject_alt_names=["DNS:shop.example", "DNS:<b>evil</b>.example"],
        sct_count=2,
        must_staple=True,
    )
    intermediate = _chain_certificate(
        "CN=Issuing CA,O=Corp",
        "CN=Root CA,O=Corp",
        INTERMEDIATE_SHA,
        subject_fields=DnFields(common_name="Issuing CA", organization="Corp"),
        public_key=PublicKey(type="RSA", size=2048),
        signature_algorithm="sha256WithRSAEncryption",
        not_before=START - timedelta(days=1000),
        not_after=START + timedelta(days=20),
        validity_days=1020.0,
        days_remaining=20.0,
        key_usage=["keyCertSign", "cRLSign"],
        extended_key_usage=None,
        basic_constraints=BasicConstraints(ca=True, path_length=0),
        subject_alt_names=[],
    )
    root = _chain_certificate(
        "CN=Root CA,O=Corp",
        "CN=Root CA,O=Corp",
        ROOT_SHA,
        public_key=PublicKey(type="RSA", size=4096),
        not_before=START - timedelta(days=3000),
        not_after=START + timedelta(days=3000),
        validity_days=6000.0,
        days_remaining=3000.0,
        basic_constraints=BasicConstraints(ca=True),
        extended_key_usage=None,
        subject_alt_names=[],
        self_signed=True,
    )
    return [leaf, intermediate, root]


def _full_certificate_facts() -> CertificateFacts:
    chain = _full_chain()
    revoked_at = datetime(2024, 4, 20, 8, 30, tzinfo=UTC)
    return CertificateFacts(
        status="ok",
        leaf=chain[0],
        chain=chain,
        hostname_match=observed(True, "tlsgate"),
        chain_order_valid=observed(False, "tlsgate"),
        chain_complete=unobserved(ErrorClass.timeout, "AIA fetch timed out", "tlsgate"),
        trust=[
            TrustResult(
                store="mozilla",
                trusted=True,
                anchor="CN=Root CA,O=Corp",
                path=[LEAF_SHA, INTERMEDIATE_SHA, ROOT_SHA],
                completed_via_aia=True,
            ),
            TrustResult(
                store="file:/etc/<corp>.pem",
                trusted=False,
                reason="unknown_issuer",
                detail=EVIL_DETAIL,
            ),
        ],
        ocsp_stapled=observed(
            OcspResponseFacts(
                status="revoked",
                produced_at=START - timedelta(hours=1),
                this_update=START - timedelta(hours=2),
                next_update=START + timedelta(days=6),
                revoked_at=revoked_at,
                revocation_reason="keyCompromise",
            ),
            "tlsgate",
        ),
        revocation=[
            RevocationResult(
                certificate=LEAF_SHA, subject="CN=shop.example,O=Shop", source="ocsp", url=EVIL_URL, status="good"
            ),
            RevocationResult(
                certificate=LEAF_SHA,
                subject="CN=shop.example,O=Shop",
                source="crl",
                url="http://crl.example/issuing.crl",
                status="revoked",
                revoked_at=revoked_at,
                reason="keyCompromise",
            ),
            RevocationResult(
                certificate=INTERMEDIATE_SHA,
                subject="CN=Issuing CA,O=Corp",
                source="stapled_ocsp",
                status="not_checked",
                detail=EVIL_DETAIL,
            ),
        ],
    )


def _tls13_target(host: str, ip: str, certificate: CertificateFacts) -> Facts:
    """A target scanned in two seconds, accepting TLS 1.3 only, with these certificate facts."""
    return Facts(
        target=_target(host, ip),
        started_at=START,
        finished_at=START + timedelta(seconds=2),
        status="ok",
        protocols=_protocols(ProtocolVersion.TLSv1_3),
        certificate=certificate,
    )


def _valid_between(subject: str, first_day: int, last_day: int) -> Certificate:
    """The test certificate, valid from ``first_day`` to ``last_day`` counted from START (negative: before)."""
    update = {
        "not_before": START + timedelta(days=first_day),
        "not_after": START + timedelta(days=last_day),
        "days_remaining": float(last_day),
    }
    return _certificate(subject).model_copy(update=update)


@pytest.fixture(scope="module")
def cert_report(report: Report) -> Report:
    shop = _tls13_target("shop.example", "192.0.2.10", _full_certificate_facts())
    expired_leaf = _valid_between("CN=old.example", -95, -5)
    expired = _tls13_target(
        "old.example",
        "192.0.2.11",
        CertificateFacts(
            status="ok",
            leaf=expired_leaf,
            chain=[expired_leaf],
            trust=[TrustResult(store="mozilla", trusted=False, reason="expired", detail="certificate has expired")],
            ocsp_stapled=observed(None, "tlsgate"),
        ),
    )
    file_leaf = _valid_between("CN=file.example", -80, 10)
    from_file = Facts(
        target=TargetInfo(
            input="certs/<file>.pem", host="<file>.pem", port=0, server_name=None, ip_address=None, source="file"
        ),
        started_at=START,
        finished_at=START,
        status="ok",
        certificate=CertificateFacts(status="ok", leaf=file_leaf, chain=[file_leaf]),
    )
    targets = [
        _target_report("shop.example:443", shop, []),
        _target_report("old.example:443", expired, []),
        _target_report("certs/<file>.pem", from_file, []),
    ]
    return report.model_copy(update={"targets": targets, "summary": summarise(targets)})


@pytest.fixture(scope="module")
def cert_page(cert_report: Report) -> str:
    return html_render.render(cert_report)


def _text(fragment: str) -> str:
    return html.unescape(" ".join(re.sub(r"<[^>]+>", " ", fragment).split()))


def _row_texts(table: str) -> list[list[str]]:
    """The text of each cell of each body row of a table."""
    body = table.split("<tbody>", 1)[1]
    return [
        [_text(cell) for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)]
        for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)
    ]


def _table(section: str, cls: str) -> str:
    match = re.search(rf'<table class="{cls}"[^>]*>.*?</table>', section, re.S)
    assert match is not None, cls
    return match.group(0)


def test_certificate_page_parses_and_is_self_contained(cert_page: str) -> None:
    _assert_parses(cert_page)
    _assert_self_contained(cert_page)


def test_chain_is_shown_in_order_with_details(cert_page: str) -> None:
    """Each served certificate gets a card, leaf first, with key, usages, constraints, URLs and fingerprint."""
    shop = _section(cert_page, 1)
    cards = re.findall(r'<table class="cert" data-position="(\d)"[^>]*>(.*?)</table>', shop, re.S)
    assert [position for position, _ in cards] == ["0", "1", "2"]
    captions = [_text(re.search(r"<caption>(.*?)</caption>", card, re.S).group(1)) for _, card in cards]  # type: ignore[union-attr]
    assert captions == ["1. Leaf: shop.example", "2. Intermediate: Issuing CA", "3. Root self-signed"]
    assert "Chain as served" in shop and "(3 certificates, leaf first)" in shop
    leaf, intermediate, root = ({row[0]: row[1] for row in _row_texts(card)} for _, card in cards)
    # Compared row by row as one mapping, so a failure shows every row that differs.
    leaf_rows = {
        "Subject": "CN=shop.example,O=Shop",
        "Issuer": "CN=Issuing CA,O=Corp",
        "Key": "EC 256 bits (secp256r1)",
        "Signature algorithm": "ecdsa-with-SHA256",
        "Key usage": "digitalSignature, keyEncipherment",
        "Extended key usage": "serverAuth",
        "Basic constraints": "not a CA",
        "AIA and CRL": (
            f"OCSP: {EVIL_URL} CA issuers: http://ca.example/issuing.cer CRL: http://crl.example/issuing.crl"
        ),
        "Subject alternative names": "DNS:shop.example DNS:<b>evil</b>.example",
        "Other": "2 embedded SCTs; OCSP must-staple",
        "SHA-256": f"{LEAF_SHA[:16]}\u2026 {LEAF_SHA}",
    }
    assert {name: leaf[name] for name in leaf_rows} == leaf_rows
    assert leaf["Validity"].startswith("2024-04-21 12:00:00 UTC to 2024-07-20 12:00:00 UTC (90 days)")
    assert leaf["Validity"].endswith("80 days remaining")
    assert f'<summary title="{LEAF_SHA}">{LEAF_SHA[:16]}\u2026</summary><code>{LEAF_SHA}</code>' in shop
    intermediate_rows = {
        "Key": "RSA 2048 bits",
        "Key usage": "keyCertSign, cRLSign",
        "Extended key usage": "no EKU extension",
        "Basic constraints": "CA, path length at most 0",
        "AIA and CRL": "none",
        "Subject alternative names": "none",
    }
    assert {name: intermediate[name] for name in intermediate_rows} == intermediate_rows
    assert root["Basic constraints"] == "CA"
    assert "Other" not in root and "Other" not in intermediate
    # The validity bar: its filled width is the elapsed share, its colour class and text say how close the end is.
    assert '<span class="vbar valid" aria-hidden="true"><span style="width: 11.1%"></span></span>' in cards[0][1]
    assert '<span class="vbar expiring" aria-hidden="true"><span style="width: 98.0%"></span></span>' in cards[1][1]
    assert '<span class="days expiring">20 days remaining</span>' in cards[1][1]


def test_certificate_summary_line(cert_page: str) -> None:
    """Host name match, chain order and completeness use the Observed rendering; a "no" is marked."""
    shop = _section(cert_page, 1)
    summary = re.search(r'<ul class="inline cert-summary">(.*?)</ul>', shop, re.S)
    assert summary is not None
    items = re.findall(r"<li([^>]*)>(.*?)</li>", summary.group(1), re.S)
    assert [_text(body) for _, body in items] == [
        "Host name match: yes",
        "Chain order: no",
        "Chain complete: could not determine: timeout: AIA fetch timed out",
    ]
    assert [attrs.strip() for attrs, _ in items] == [
        'data-observed="ok"',
        'data-observed="ok" class="negative"',
        'data-observed="error"',
    ]


def test_trust_table(cert_page: str) -> None:
    """One row per trust store, with a verdict badge in words, the anchor, reason, detail, AIA flag and path."""
    shop = _section(cert_page, 1)
    rows = _row_texts(_table(shop, "trust"))
    assert rows == [
        ["mozilla", "Trusted", "CN=Root CA,O=Corp", DASH, DASH, "yes", "3"],
        ["file:/etc/<corp>.pem", "Not trusted", DASH, "unknown issuer", EVIL_DETAIL, "no", "0"],
    ]
    assert '<tr data-status="pass" data-store="mozilla">' in shop
    assert '<tr data-status="fail" data-store="file:/etc/&lt;corp&gt;.pem">' in shop
    assert '<span class="badge pass">Trusted</span>' in shop
    assert '<span class="badge fail">Not trusted</span>' in shop
    assert f'title="{LEAF_SHA} \u2192 {INTERMEDIATE_SHA} \u2192 {ROOT_SHA}"' in shop
    assert _row_texts(_table(_section(cert_page, 2), "trust")) == [
        ["mozilla", "Not trusted", DASH, "expired", "certificate has expired", "no", "0"]
    ]


def test_stapling_and_revocation(cert_page: str) -> None:
    """The stapled response and every revocation check are listed; a revocation is red, with reason and time."""
    shop, old = _section(cert_page, 1), _section(cert_page, 2)
    stapled = re.search(r'<p class="ocsp-stapled" data-observed="ok">(.*?)</p>', shop, re.S)
    assert stapled is not None
    assert _text(stapled.group(1)) == (
        "OCSP stapling: Revoked keyCompromise at 2024-04-20 08:30:00 UTC produced 2024-05-01 11:00:00 UTC,"
        " this update 2024-05-01 10:00:00 UTC, next update 2024-05-07 12:00:00 UTC (tlsgate)"
    )
    assert _text(re.search(r'<p class="ocsp-stapled"[^>]*>(.*?)</p>', old, re.S).group(1)) == (  # type: ignore[union-attr]
        "OCSP stapling: no response stapled (tlsgate)"
    )
    table = _table(shop, "revocation")
    assert _row_texts(table) == [
        ["CN=shop.example,O=Shop", "OCSP", "Good", EVIL_URL, DASH],
        [
            "CN=shop.example,O=Shop",
            "CRL",
            "Revoked keyCompromise at 2024-04-20 08:30:00 UTC",
            "http://crl.example/issuing.crl",
            DASH,
        ],
        ["CN=Issuing CA,O=Corp", "stapled OCSP", "Not checked", DASH, EVIL_DETAIL],
    ]
    revoked = re.search(r'<tr data-revocation="revoked">.*?</tr>', table, re.S)
    assert revoked is not None and '<span class="badge fail">Revoked</span>' in revoked.group(0)
    assert '<span class="badge pass">Good</span>' in table
    assert '<span class="badge neutral">Not checked</span>' in table
    assert "Revocation was not checked." in old


def test_expiry_in_overview_and_list(cert_page: str, page: str, report: Report) -> None:
    """The overview shows each leaf's expiry; certificates expiring within 30 days (or expired) are listed."""
    overview = cert_page.split('<section id="overview">', 1)[1].split("</section>", 1)[0]
    assert '<th scope="col">Certificate expires</th>' in overview
    cells = re.findall(r'<td class="cert-expiry ([a-z_]+)" data-validity="\1">(.*?)</td>', overview, re.S)
    assert [(state, _text(body)) for state, body in cells] == [
        ("valid", "2024-07-20 12:00:00 UTC 80 days remaining"),
        ("expired", "2024-04-26 12:00:00 UTC expired 5 days ago"),
        ("expiring", "2024-05-11 12:00:00 UTC 10 days remaining"),
    ]
    listing = re.search(r'<div class="alert expiring-list" role="note">(.*?)</div>', overview, re.S)
    assert listing is not None
    assert "<h3>Certificates expiring within 30 days</h3>" in listing.group(1)
    items = [
        html.unescape(" ".join(re.sub(r"<[^>]+>", "", item).split()))
        for item in re.findall(r"<li[^>]*>(.*?)</li>", listing.group(1), re.S)
    ]
    assert items == [
        f"shop.example:443: intermediate CN=Issuing CA,O=Corp {DASH} not after 2024-05-21 12:00:00 UTC,"
        " 20 days remaining",
        f"old.example:443: leaf CN=old.example {DASH} not after 2024-04-26 12:00:00 UTC, expired 5 days ago",
        f"certs/<file>.pem: leaf CN=file.example {DASH} not after 2024-05-11 12:00:00 UTC, 10 days remaining",
    ]
    assert '<a href="#target-2">old.example:443</a>' in listing.group(1)
    old = _section(cert_page, 2)
    assert '<span class="vbar expired" aria-hidden="true"><span style="width: 100.0%"></span></span>' in old
    assert '<span class="days expired">expired 5 days ago</span>' in old
    # Without anything close to expiry there is no list; a scanned target without a certificate shows a dash.
    assert 'class="alert expiring-list"' not in page
    assert '<td class="cert-expiry"><span class="muted">\u2013</span></td>' not in page
    bare = report.targets[1].model_copy(
        update={"facts": report.targets[1].facts.model_copy(update={"certificate": CertificateFacts(status="ok")})}
    )
    without = html_render.render(report.model_copy(update={"targets": [bare], "summary": summarise([bare])}))
    assert re.search(r'<td class="cert-expiry"><span class="muted">\u2013</span></td>', without)


def test_file_target(cert_page: str) -> None:
    """A certificate file is labelled as such, with no host details and no empty protocol or probe sections."""
    section = _section(cert_page, 3)
    assert '<span class="badge large kind">Certificate file</span>' in section
    assert '<dt>File</dt><dd class="mono">certs/&lt;file&gt;.pem</dd>' in section
    for absent in ("<dt>Port</dt>", "<dt>SNI</dt>", "<h3>Protocols</h3>", "No protocol information", "Not probed:"):
        assert absent not in section
    assert "Certificates in the file" in section
    assert '<table class="cert" data-position="0"' in section
    assert '<p class="ocsp-stapled"' not in section  # not probed for a file: no line
    assert "<h4>Trust</h4>" not in section and "<h4>Revocation</h4>" not in section
    overview = cert_page.split('<section id="overview">', 1)[1].split("</section>", 1)[0]
    assert '<a href="#target-3">certs/&lt;file&gt;.pem</a> <span class="muted">(certificate file)</span>' in overview
    assert "<h3>Protocols</h3>" in _section(cert_page, 1)


def test_certificate_values_are_escaped(cert_page: str) -> None:
    """Values from certificates, stores and responders reach the page escaped, and URLs never become links."""
    for raw in ("<img onerror=x>", "<b>evil</b>", "<i>unknown</i>", "<corp>", "<file>"):
        assert raw not in cert_page
    assert html.escape(EVIL_URL, quote=False) in cert_page
    assert "issuer &lt;i&gt;unknown&lt;/i&gt; &amp; untrusted" in cert_page
    assert 'href="http://ocsp.example' not in cert_page
    assert 'href="http://crl.example' not in cert_page


def test_certificate_validity_edge_cases() -> None:
    """Remaining days come from the scan time when the facts lack them; naive times count as UTC."""
    cert = _certificate("CN=x").model_copy(update={"days_remaining": None})
    now = START.replace(tzinfo=None)
    valid = html_render.certificate_validity(cert, now)
    assert (valid.state, valid.days_remaining, valid.text) == ("valid", 80.0, "80 days remaining")
    assert valid.elapsed_percent == pytest.approx(100 / 9)
    soon = html_render.certificate_validity(cert, START + timedelta(days=79, hours=12))
    assert (soon.state, soon.text) == ("expiring", "less than a day remaining")
    assert html_render.certificate_validity(cert, START + timedelta(days=80, hours=1)).text == "expired today"
    early = html_render.certificate_validity(cert, START - timedelta(days=12))
    assert (early.state, early.elapsed_percent, early.text) == (
        "not_yet_valid",
        0.0,
        "not yet valid (starts in 2 days)",
    )
    one = html_render.certificate_validity(cert.model_copy(update={"days_remaining": 1.5}), START)
    assert one.text == "1 day remaining"
    empty = cert.model_copy(update={"not_before": cert.not_after})
    assert html_render.certificate_validity(empty, START).elapsed_percent == 100.0


def _overview(page: str) -> str:
    return page.split('<section id="overview">', 1)[1].split("</section>", 1)[0]


def test_overview_matrix_and_severity_counts(page: str, report: Report) -> None:
    """The overview opens with the targets by verdict, failed findings by severity and a targets x packs matrix."""
    overview = _overview(page)
    assert overview.index('class="verdicts"') < overview.index('class="overview pack-matrix"')
    assert _row_texts(_table(overview, "verdicts")) == [["3", "1", "1", "1"]]
    severities = _table(overview, "severity-counts")
    assert re.findall(r'<th scope="col" class="sev sev-(\w+)">', severities) == list(html_render.SEVERITIES)
    assert _row_texts(severities) == [["0", "1", "0", "0", "0"]]
    assert '<td data-severity="high" data-count="1" class="sev-high nonzero">1</td>' in severities
    matrix = _table(overview, "overview pack-matrix")
    assert re.findall(r'<th scope="col" data-pack="([^"]+)"><code>\1</code></th>', matrix) == ["tls13-only"]
    grades = [row[1] for row in _row_texts(matrix)]
    assert [row[:1] + row[2:4] for row in _row_texts(matrix)] == [
        ["good.example:443", "Pass", "Pass 1 pass"],
        ["legacy.example:443", "Fail", "Fail 1 fail"],
        ["missing.invalid:443", "Error", f"not scanned: dns {DASH} missing.invalid does not resolve"],
    ]
    assert re.findall(r'<td class="cell (\w+)" data-pack="tls13-only" data-status="\1">', matrix) == ["pass", "fail"]
    assert grades[2] == DASH  # not scanned: no grade
    assert grades[:2] == [t.grade for t in report.targets[:2]] and all(grades[:2])  # the report's grades, shown
    assert '<a href="#target-2">legacy.example:443</a>' in matrix


def test_pack_matrix_cells() -> None:
    """A cell is fail over error over pass; its counts list each status once; a pack with no finding is "none"."""

    def finding(pack: str, status: Status) -> Finding:
        return Finding(pack=pack, rule="R-1", title="t", severity="low", status=status, message="m")

    findings = [
        finding("a", Status.passed),
        finding("a", Status.error),
        finding("a", Status.passed),
        finding("b", Status.not_applicable),
        finding("b", Status.passed),
        finding("c", Status.error),
        finding("c", Status.failed),
        finding("d", Status.not_applicable),
    ]
    assert html_render.pack_cell("a", findings) == ("a", "error", (("error", 1), ("pass", 2)))
    assert html_render.pack_cell("b", findings).status == "pass"
    assert html_render.pack_cell("c", findings) == ("c", "fail", (("fail", 1), ("error", 1)))
    assert html_render.pack_cell("d", findings).status == "not_applicable"
    assert html_render.pack_cell("e", findings) == ("e", "none", ())


def _policy_facts() -> Facts:
    """TLS 1.2 with a GCM suite (Mozilla intermediate allows it) and a CBC one (it does not), and TLS 1.3."""
    cbc = CipherSuite(name="TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256", code="0xC027", key_exchange="ECDHE")
    protocols = [
        p.model_copy(update={"cipher_suites": [*p.cipher_suites, cbc]}) if p.version == ProtocolVersion.TLSv1_2 else p
        for p in _protocols(ProtocolVersion.TLSv1_2, ProtocolVersion.TLSv1_3)
    ]
    return Facts(
        target=_target("legacy.example", "192.0.2.2"),
        started_at=START,
        finished_at=START,
        status="ok",
        protocols=protocols,
        certificate=CertificateFacts(status="ok", leaf=_certificate("CN=legacy.example")),
    )


def test_protocol_policy_reads_the_engines_evidence() -> None:
    """Versions and suites in the offending evidence of failed rules are not allowed; a rule on the cipher order
    alone marks no version; a suite accepted with a version that is not allowed is not allowed with it."""
    findings = evaluate(_policy_facts(), [resolve_pack("tls13-only"), resolve_pack("mozilla-intermediate")])
    failed = {f.rule for f in findings if f.status == Status.failed}
    assert {"TLS13ONLY-001", "MOZILLA-INTERMEDIATE-003", "MOZILLA-INTERMEDIATE-013"} <= failed
    policy = html_render.protocol_policy(findings)
    assert policy.judged
    assert {version: [r.rule for r in refs] for version, refs in policy.versions.items()} == {
        "TLSv1.2": ["TLS13ONLY-001"]
    }
    assert {name: [r.rule for r in refs] for name, refs in policy.suites.items()} == {
        "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256": ["MOZILLA-INTERMEDIATE-003"]
    }
    assert policy.version("TLSv1.3") == ("allowed", ())
    (ref,) = policy.version("TLSv1.2").rules
    assert ref == ("tls13-only", "TLS13ONLY-001", "No protocol version other than TLS 1.3 is accepted")
    cbc = policy.suite("TLSv1.2", "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256")
    assert cbc.state == "not_allowed"
    assert [r.rule for r in cbc.rules] == ["MOZILLA-INTERMEDIATE-003", "TLS13ONLY-001"]
    assert policy.suite("TLSv1.3", "TLS_AES_256_GCM_SHA384").state == "allowed"
    # Without a rule on protocols nothing is judged; a pass judges without marking anything.
    assert html_render.protocol_policy([]).version("TLSv1.2").state == "not_judged"
    tls12 = evaluate(_policy_facts(), [resolve_pack("tls12-plus")])
    assert html_render.protocol_policy(tls12).suite("TLSv1.2", "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256").state == (
        "allowed"
    )


def test_protocol_policy_plain_names_and_missing_values() -> None:
    """Names from ``protocols.version`` and ``protocols.cipher_suites.name`` mark too; what require_* lists is
    missing, not accepted, so it marks nothing; neither do errors and other facts."""

    def finding(fact: str, operator: str, offending: list[object], status: Status = Status.failed) -> Finding:
        evidence = {"fact": fact, "expected": {operator: ["x"]}, "offending": offending}
        return Finding(pack="p", rule="P-1", title="t", severity="low", status=status, message="m", evidence=evidence)

    policy = html_render.protocol_policy(
        [
            finding("protocols.version", "only", ["TLSv1.1"]),
            finding("protocols.cipher_suites.name", "forbid", ["TLS_RSA_WITH_RC4_128_SHA"]),
            finding("protocols.version", "require_all", ["TLSv1.3"]),
            finding("protocols.cipher_suites.name", "require_any", ["TLS_AES_128_GCM_SHA256"]),
            finding("protocols.version", "only", ["SSLv3"], Status.error),
            finding("groups.tls13.name", "only", ["TLSv1.0"]),
        ]
    )
    assert set(policy.versions) == {"TLSv1.1"}
    assert set(policy.suites) == {"TLS_RSA_WITH_RC4_128_SHA"}


def test_protocols_and_suites_marked_by_policy(report: Report) -> None:
    """The protocols table says which accepted version the packs allow; the protocol x suite table does the same
    per suite and version, with the rules that do not allow it."""
    facts = _policy_facts()
    findings = evaluate(facts, [resolve_pack("tls13-only"), resolve_pack("mozilla-intermediate")])
    target = _target_report("legacy.example:443", facts, findings)
    page = html_render.render(report.model_copy(update={"targets": [target], "summary": summarise([target])}))
    section = _section(page, 1)
    protocols = {row[0]: row[1:] for row in _row_texts(_table(section, "protocols"))}
    assert protocols["TLSv1.2"][-1] == "Not allowed TLS13ONLY-001"
    assert protocols["TLSv1.3"][-1] == "Allowed"
    assert protocols["TLSv1.1"][-1] == DASH
    assert '<code title="tls13-only: No protocol version other than TLS 1.3 is accepted">TLS13ONLY-001</code>' in (
        section
    )
    matrix = _table(section, "suite-matrix")
    assert re.findall(r'<th scope="col">([^<]+)</th>', matrix) == [
        "Cipher suite",
        "TLSv1.3",
        "TLSv1.2",
        "Not allowed by",
    ]
    assert _row_texts(matrix) == [
        ["TLS_AES_256_GCM_SHA384", "Allowed", DASH, DASH],
        ["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", DASH, "Not allowed", "TLS13ONLY-001"],
        ["TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256", DASH, "Not allowed", "MOZILLA-INTERMEDIATE-003 TLS13ONLY-001"],
    ]
    assert re.findall(r'<tr data-suite="[^"]+" data-policy="(\w+)">', matrix) == [
        "allowed",
        "not_allowed",
        "not_allowed",
    ]
    # Without rules on protocols, accepted suites are neither allowed nor not: they are shown as accepted.
    bare = _target_report("legacy.example:443", facts, [])
    page = html_render.render(report.model_copy(update={"targets": [bare], "summary": summarise([bare])}))
    assert {row[1] for row in _row_texts(_table(_section(page, 1), "suite-matrix"))} == {"Accepted", DASH}


def test_findings_filter_markup(page: str) -> None:
    """The filter is hidden until its script shows it; its choices are the severities and packs of the report;
    every finding row carries what it filters on; print shows every row whatever the filter."""
    form = re.search(
        r'<form class="filters" id="filters" hidden aria-label="Filter the findings">.*?</form>', page, re.S
    )
    assert form is not None
    assert '<input type="checkbox" name="failed" id="filter-failed">' in form.group(0)
    severity = re.search(r'<select name="severity" id="filter-severity">(.*?)</select>', form.group(0), re.S)
    pack = re.search(r'<select name="pack" id="filter-pack">(.*?)</select>', form.group(0), re.S)
    assert severity is not None and pack is not None
    assert re.findall(r'<option value="([^"]*)">', severity.group(1)) == ["", "high"]
    assert re.findall(r'<option value="([^"]*)">', pack.group(1)) == ["", "tls13-only"]
    rows = re.findall(r"<tr (?:id=\"[^\"]+\" )?(data-status=\"\w+\" data-severity[^>]*)>", page)
    # the pass is listed folded (in <noscript>), the fail unfolded; the unscanned target has no row per rule
    assert rows == [
        f'data-status="{status}" data-severity="high" data-pack="tls13-only" data-rule="{FAIL_RULE}"'
        for status in ("pass", "fail")
    ]
    assert page.count('<tr class="no-match" hidden>') == 2
    printed = page.split("@media print {", 1)[1].split("</style>", 1)[0]
    assert "html.failed-only details.lazy, details.lazy > :not(summary) { display: block !important; }" in printed
    assert ".filters { display: none !important; }" in printed
    assert "table.findings tbody tr[data-status][hidden] { display: table-row; }" in printed


# --- the triage view: what failed first ---------------------------------------------------------------------------


def _copies(target: TargetReport, count: int) -> list[TargetReport]:
    """``count`` copies of a target under names of their own (a fleet with one configuration)."""
    return [target.model_copy(update={"target": f"host-{i}.example:443"}) for i in range(1, count + 1)]


def _with_targets(report: Report, targets: list[TargetReport]) -> Report:
    return report.model_copy(update={"targets": targets, "summary": summarise(targets)})


def test_what_failed_groups_a_rule_across_targets(report: Report) -> None:
    """A rule that failed on several targets is one entry atop the page, before the overview, with its severity,
    title, count, one-line remediation and a link per target to that target's finding; a fleet shows three
    targets and the rest folded behind "all N targets"."""
    targets = [report.targets[0], *_copies(report.targets[1], 2), report.targets[2]]
    page = html_render.render(_with_targets(report, targets))
    failed = page.split('<section id="failed-rules">', 1)[1].split("</section>", 1)[0]
    assert page.index('<section id="failed-rules">') < page.index('<section id="overview">')
    (entry,) = re.findall(r'<ol class="failed-rules failures">\s*<li[^>]*>(.*?)</li>\s*</ol>', failed, re.S)
    assert _text(entry.split("</div>", 1)[0]) == (
        f"high No protocol version other than TLS 1.3 is accepted {DASH} 2 targets {FAIL_RULE} tls13-only"
    )
    assert '<p class="fix"><strong>Fix:</strong> Set the minimum protocol version to TLS 1.3.</p>' in entry
    links = re.findall(r'<a href="#([^"]+)">(host-\d\.example:443)</a>', entry)
    assert links == [(f"target-{i}.tls13-only.{FAIL_RULE}", f"host-{i - 1}.example:443") for i in (2, 3)]
    assert all(f'<tr id="{anchor}" data-status="fail"' in page for anchor, _ in links)
    # the unscanned target is listed by its error class, with its message, not as a failed rule
    assert '<li data-error-class="dns">' in failed and "missing.invalid does not resolve" in failed

    fleet = html_render.render(_with_targets(report, _copies(report.targets[1], 12)))
    entry = fleet.split('<ol class="failed-rules failures">', 1)[1].split("</ol>", 1)[0]
    assert f"{DASH} 12 targets" in entry
    inline, folded = entry.split('<details class="rule-targets">', 1)
    assert len(re.findall(r'<a href="#target-', inline)) == 3  # the first three, then all of them folded
    assert "<summary>all 12 targets</summary>" in folded and len(re.findall(r'<a href="#target-', folded)) == 12


def test_nothing_failed_says_so(report: Report) -> None:
    page = html_render.render(_with_targets(report, [report.targets[0]]))
    assert '<p class="nothing-failed">Nothing failed' in page
    assert '<ol class="failed-rules' not in page


def test_grade_in_overview_and_target_header(report: Report) -> None:
    """A target's grade (when the report has one) is a column of the overview and a badge beside its verdict; a
    target without one shows a dash, and a report without any grade has no grade column."""
    graded = [
        report.targets[0].model_copy(update={"grade": "A+"}),
        report.targets[1].model_copy(update={"grade": "T"}),
        report.targets[2],
    ]
    page = html_render.render(_with_targets(report, graded))
    matrix = _table(_overview(page), "overview pack-matrix")
    assert '<th scope="col">Grade</th>' in matrix
    assert [row[:2] for row in _row_texts(matrix)] == [
        ["good.example:443", "A+"],
        ["legacy.example:443", "T"],
        ["missing.invalid:443", DASH],
    ]
    assert '<td class="grade" data-grade="T"><span class="badge grade">T</span></td>' in matrix
    head = _section(page, 1).split("</div>", 1)[0]
    assert '<span class="badge large grade" data-grade="A+"' in head and "Grade: A+</span>" in head
    assert "data-grade" not in _section(page, 3).split("</div>", 1)[0]


def test_evidence_names_each_suite_once_with_its_versions() -> None:
    """A suite accepted with three versions is listed once under the three versions, not three times; the engine's
    own evidence (mozilla-intermediate's suite rule) on facts where TLS 1.0, 1.1 and 1.2 accept the same CBC suite."""
    cbc = _suite("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "0xC013", "ECDHE", "RSA", "AES_128_CBC", "SHA1", 128)
    cbc256 = _suite("TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384", "0xC028", "ECDHE", "RSA", "AES_256_CBC", "SHA384", 256)
    gcm = _suite("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "0xC02F", "ECDHE", "RSA", "AES_128_GCM", "SHA256", 128)
    accepted = {
        ProtocolVersion.TLSv1_0: [cbc],
        ProtocolVersion.TLSv1_1: [cbc],
        ProtocolVersion.TLSv1_2: [gcm, cbc, cbc256],
    }
    facts = Facts(
        target=_target("cbc.example", "192.0.2.9"),
        started_at=START,
        finished_at=START + timedelta(seconds=1),
        status="ok",
        protocols=[
            ProtocolSupport(
                version=v, status="accepted" if v in accepted else "not_accepted", cipher_suites=accepted.get(v, [])
            )
            for v in ProtocolVersion
        ],
    )
    (finding,) = [
        f for f in evaluate(facts, [resolve_pack("mozilla-intermediate")]) if f.rule == "MOZILLA-INTERMEDIATE-003"
    ]
    assert finding.status == Status.failed
    lines = {line.label: line.items for line in html_render.evidence_lines(finding, facts) if line.items}
    assert lines == {
        "Offending with TLSv1.2, TLSv1.1, TLSv1.0": (cbc.name,),
        "Offending with TLSv1.2": (cbc256.name,),
    }
    target = _target_report("cbc.example:443", facts, [finding])
    page = html_render.render(
        decided_report(
            started_at=START,
            finished_at=START,
            options=ScanOptions(timeout=5.0, packs=["mozilla-intermediate"]),
            packs=[],
            targets=[target],
            summary=summarise([target]),
        )
    )
    row = page.split('<tr id="target-1.mozilla-intermediate.MOZILLA-INTERMEDIATE-003"', 1)[1].split("</tr>", 1)[0]
    evidence = row.split('<dl class="evidence">', 1)[1].split("</dl>", 1)[0]
    assert '<dt>Of the elements where</dt><dd class="mono">key_exchange not_equals any</dd>' in evidence
    offending = evidence.split("<dt>Offending", 1)[1]
    assert offending.count(cbc.name) == 1 and offending.count(cbc256.name) == 1 and gcm.name not in offending


def test_hostile_text_cannot_leave_the_folded_facts(report: Report) -> None:
    """The fact tables wait inside <noscript> as text: a certificate subject or error message that says
    ``</noscript><script>`` is escaped like any other, so it can neither end that element nor start a script."""
    evil = "</noscript><script>alert(3)</script><noscript>"
    good = report.targets[0]
    leaf = _certificate(f"CN={evil}")
    facts = good.facts.model_copy(update={"certificate": CertificateFacts(status="ok", leaf=leaf, chain=[])})
    missing = report.targets[2]
    error = ProbeError(error_class=ErrorClass.not_tls, message=f"server said {evil}")
    gone = missing.model_copy(
        update={"target": f"{evil}:443", "facts": missing.facts.model_copy(update={"error": error})}
    )
    page = html_render.render(_with_targets(report, [good.model_copy(update={"facts": facts}), gone]))
    assert "<script>alert(3)" not in page and "</noscript><script>" not in page
    assert page.count("<noscript") == page.count("</noscript>")
    assert "CN=&lt;/noscript&gt;&lt;script&gt;alert(3)&lt;/script&gt;&lt;noscript&gt;" in page
    assert "server said &lt;/noscript&gt;&lt;script&gt;" in page.split('<section id="failed-rules">', 1)[1]
    _assert_parses(page)
    _assert_self_contained(page)


def test_a_fleets_rows_wait_as_text(report: Report) -> None:
    """Above EAGER_TARGETS targets, a target's finding rows are <noscript> markup (shown as they are without a
    script), and the section says what they hold so the filter can count them before they are built."""
    small = html_render.render(_with_targets(report, _copies(report.targets[1], html_render.EAGER_TARGETS)))
    assert '<div class="rows"' not in small
    fleet = html_render.render(_with_targets(report, _copies(report.targets[1], html_render.EAGER_TARGETS + 1)))
    section = _section(fleet, 1)
    holder = re.search(
        r'<div class="rows" data-listed="([^"]*)">\s*<noscript class="lazy-src">(.*?)</noscript>', section, re.S
    )
    assert holder is not None
    assert holder.group(1) == "fail high tls13-only"
    assert f'<tr id="target-1.tls13-only.{FAIL_RULE}" data-status="fail"' in holder.group(2)
    _assert_parses(fleet)
