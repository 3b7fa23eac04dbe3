"""The HTML report: self-contained, well-formed, complete and escaped."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import Any, Literal

import pytest

from scanner.facts import (
    NOT_PROBED,
    Behaviours,
    Certificate,
    CertificateFacts,
    CipherSuite,
    ClientAuthFacts,
    ErrorClass,
    ExtendedKeyUsage,
    Facts,
    GroupFacts,
    NamedGroup,
    Observed,
    ProbeError,
    ProtocolSupport,
    ProtocolVersion,
    PublicKey,
    SessionAgeCheck,
    SessionFacts,
    TargetInfo,
    observed,
    unobserved,
)
from scanner.findings import Finding, Status
from scanner.render import html as html_render
from scanner.report import PackInfo, Report, ScanOptions, TargetReport, summarise, target_verdict

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


def _protocols(*accepted: ProtocolVersion) -> list[ProtocolSupport]:
    suites = {
        ProtocolVersion.TLSv1_2: [
            CipherSuite(
                name="TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
                code="0xC02F",
                key_exchange="ECDHE",
                authentication="RSA",
                encryption="AES_128_GCM",
                mac="SHA256",
                key_bits=128,
                ephemeral_key="ECDH x25519 253",
            )
        ],
        ProtocolVersion.TLSv1_3: [
            CipherSuite(
                name="TLS_AES_256_GCM_SHA384",
                code="0x1302",
                key_exchange="any",
                authentication="any",
                encryption="AES_256_GCM",
                mac="SHA384",
                key_bits=256,
                ephemeral_key="ECDH x25519 253",
            )
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


def _finding(status: Status, message: str, evidence: dict[str, object]) -> Finding:
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


def _target_report(name: str, facts: Facts, findings: list[Finding]) -> TargetReport:
    return TargetReport(target=name, verdict=target_verdict(facts, findings), facts=facts, findings=findings)


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
        _target_report("good.example:443", good, [_finding(Status.passed, "Only TLSv1.3 is accepted.", {})]),
        _target_report(
            "legacy.example:443",
            bad,
            [_finding(Status.failed, "TLSv1.2 is accepted.", {"offending_versions": ["TLSv1.2"]})],
        ),
        _target_report(
            "missing.invalid:443",
            missing,
            [_finding(Status.error, "Protocols were not observed.", {"error_class": "dns"})],
        ),
    ]
    return Report(
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
    lowered = page.lower()
    assert "<script" not in lowered
    assert "<link" not in lowered
    assert "src=" not in lowered
    assert "@import" not in lowered
    assert "url(" not in lowered
    assert "<style>" in lowered


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
        assert f'<tr data-verdict="{verdict}">' in overview
        assert f'<section class="target" id="target-{index}">' in page


def test_failing_finding_shows_rule_and_evidence(page: str) -> None:
    """The failed finding's row carries its status and severity, its rule id and its evidence."""
    section = page.split('id="target-2"', 1)[1].split("</section>", 1)[0]
    row = re.search(r'<tr data-status="fail" data-severity="high"[^>]*>.*?</tr>', section, re.S)
    assert row is not None
    assert FAIL_RULE in row.group(0)
    assert "<details>" in row.group(0)
    text = html.unescape(row.group(0))
    assert '"offending_versions": [\n    "TLSv1.2"\n  ]' in text
    assert "Set the minimum protocol version to TLS 1.3." in text
    assert "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256" in section


def test_unscanned_target_shows_error_class(page: str) -> None:
    """A target that could not be scanned shows its error class and message instead of facts."""
    section = page.split('id="target-3"', 1)[1].split("</section>", 1)[0]
    assert "<code>dns</code>: missing.invalid does not resolve" in section
    assert "No protocol information was collected." in section


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
        assert "Not probed: key exchange groups, behaviours, sessions, client authentication." in section


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
