"""The HTML report: self-contained, well-formed, complete and escaped."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

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
from scanner.render import html as html_render
from scanner.report import PackInfo, Report, ScanOptions, TargetReport, summarise, target_verdict

START = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
EVIL_SUBJECT = "CN=<script>alert(1)</script>,O=Evil & Co"
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
            CipherSuite(name="TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", key_bits=128, ephemeral_key="ECDH x25519 253")
        ],
        ProtocolVersion.TLSv1_3: [
            CipherSuite(name="TLS_AES_256_GCM_SHA384", key_bits=256, ephemeral_key="ECDH x25519 253")
        ],
    }
    return [
        ProtocolSupport(
            version=v,
            status="accepted" if v in accepted else "not_accepted",
            cipher_suites=suites.get(v, []) if v in accepted else [],
        )
        for v in ProtocolVersion
    ]


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
        target=_target("good.example", "192.0.2.1"),
        started_at=START,
        finished_at=end,
        status="ok",
        protocols=_protocols(ProtocolVersion.TLSv1_3),
        certificate=CertificateFacts(status="ok", leaf=_certificate("CN=good.example"), chain=[]),
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
    lowered = page.lower()
    assert "<script" not in lowered
    assert "<link" not in lowered
    assert "src=" not in lowered
    assert "@import" not in lowered
    assert "url(" not in lowered
    assert "<style>" in lowered


def test_page_parses_with_balanced_tags(page: str) -> None:
    """The page parses with html.parser, every element is closed and every id is unique."""
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
