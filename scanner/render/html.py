"""The HTML report: one self-contained page (inline CSS and one small inline script, no external resources).

The page is rendered from ``reports/templates/report.html.j2`` with autoescaping on, so every string
that came from a scanned server (certificate names, error messages) is escaped before it reaches the page.
Its Content-Security-Policy loads nothing from anywhere and runs only the page's own filter script (named by
its SHA-256), so even a string that escaped escaping could not run or fetch anything.

What the page shows is worked out here, not in the template: the targets x packs matrix, the counts by
severity, which protocol versions and cipher suites the packs do not allow, and what the gate made of each finding
(in the baseline, below --fail-on, waived and by which waiver, failing again because its waiver expired).
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Literal, NamedTuple, TypeVar

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup
from pydantic import BaseModel

from scanner.facts import (
    BasicConstraints,
    Behaviours,
    Certificate,
    CertificateFacts,
    CipherSuite,
    ClientAuthEnforcement,
    ClientAuthFacts,
    Facts,
    GroupFacts,
    NamedGroup,
    Observed,
    SessionAgeCheck,
    SessionFacts,
)
from scanner.findings import SEVERITIES, SEVERITY_RANK, Evidence, Finding, GateState, Status, WaiverRecord
from scanner.render import gate_marks
from scanner.report import Report, TargetReport, WaiverUse
from scanner.resources import reports_dir
from scanner.textsafe import printable_lines

TEMPLATE = "report.html.j2"
_T = TypeVar("_T")

# Findings are listed most actionable first: failures, then inconclusive results, then the rest.
_STATUS_ORDER: dict[str, int] = {
    Status.failed.value: 0,
    Status.error.value: 1,
    Status.waived.value: 2,
    Status.passed.value: 3,
    Status.not_applicable.value: 4,
}
_STATUS_LABELS: dict[str, str] = {
    Status.passed.value: "Pass",
    Status.failed.value: "Fail",
    Status.error.value: "Error",
    Status.not_applicable.value: "N/A",
    Status.waived.value: "Waived",
}
_CIPHER_ORDER_LABELS: dict[str, str] = {"server": "server order", "client": "client order"}
_REVOCATION_SOURCE_LABELS: dict[str, str] = {"ocsp": "OCSP", "crl": "CRL", "stapled_ocsp": "stapled OCSP"}
# Revocation status: its label and the badge class that colours it (the label always says it in words too).
_REVOCATION_STATUS: dict[str, tuple[str, str]] = {
    "good": ("Good", "pass"),
    "revoked": ("Revoked", "fail"),
    "unknown": ("Unknown", "error"),
    "error": ("Error", "error"),
    "not_checked": ("Not checked", "neutral"),
}

# A certificate with fewer days left than this is flagged (amber bar, overview highlight, expiry list).
EXPIRY_WARNING_DAYS = 30
_DAY_SECONDS = 86400.0

ValidityState = Literal["valid", "expiring", "expired", "not_yet_valid"]


class FactRow(NamedTuple):
    """One row of a facts table: the ``Observed`` field it shows, its label and how to show the value."""

    field: str
    label: str
    unit: str | None = None
    as_list: bool = False  # one item per line (e.g. distinguished names, which contain commas)


# The facts tables, one row per Observed field of the group, in the order they are shown.
GROUP_ROWS: tuple[FactRow, ...] = (
    FactRow("tls13", "TLS 1.3 groups (server order)"),
    FactRow("tls12", "TLS 1.2 groups"),
    FactRow("preferred", "Preferred group"),
    FactRow("dh_parameter_bits", "DH parameter size", unit="bits"),
    FactRow("hybrid_pq_accepted", "Hybrid post-quantum group accepted"),
)
BEHAVIOUR_ROWS: tuple[FactRow, ...] = (
    FactRow("secure_renegotiation", "Secure renegotiation (RFC 5746)"),
    FactRow("client_renegotiation", "Client-initiated renegotiation honoured"),
    FactRow("compression", "TLS compression"),
    FactRow("fallback_scsv", "TLS_FALLBACK_SCSV honoured"),
    FactRow("extended_master_secret", "Extended master secret"),
    FactRow("ocsp_stapling", "OCSP stapling"),
    FactRow("alpn", "ALPN protocols selected"),
    FactRow("early_data", "TLS 1.3 early data (0-RTT) accepted"),
    FactRow("heartbleed", "Vulnerable to Heartbleed (CVE-2014-0160)"),
    FactRow("ccs_injection", "Vulnerable to CCS injection (CVE-2014-0224)"),
    FactRow("robot", "ROBOT"),
)
SESSION_ROWS: tuple[FactRow, ...] = (
    FactRow("session_id_resumption", "Resumption by session ID (TLS 1.2)"),
    FactRow("ticket_resumption", "Resumption by session ticket (TLS 1.2)"),
    FactRow("tls13_resumption", "PSK resumption (TLS 1.3)"),
    FactRow("tls12_ticket_lifetime", "Ticket lifetime hint (TLS 1.2)", unit="s"),
    FactRow("tls13_ticket_lifetime", "Ticket lifetime (TLS 1.3)", unit="s"),
    FactRow("ticket_lifetime", "Longest ticket lifetime", unit="s"),
    FactRow("legacy_version", "Version below TLS 1.2 probed"),
    FactRow("legacy_session_id_resumption", "Resumption by session ID (that version)"),
    FactRow("legacy_ticket_resumption", "Resumption by session ticket (that version)"),
    FactRow("legacy_ticket_lifetime", "Ticket lifetime hint (that version)", unit="s"),
    FactRow("session_id_resumed_after", "Aged session resumed"),
)
CLIENT_AUTH_ROWS: tuple[FactRow, ...] = (
    FactRow("requirement", "Client certificate"),
    FactRow("ca_names", "Acceptable CA names", as_list=True),
    FactRow("throwaway_certificate_accepted", "Throwaway certificate accepted"),
    FactRow("provided_certificate_accepted", "Provided certificate accepted"),
    FactRow("enforcement", "Client without a certificate refused at"),
    FactRow("untrusted_enforcement", "Certificate from an unknown CA refused at"),
)


class Validity(NamedTuple):
    """Where the scan time falls in a certificate's validity period, for the validity bar and its text."""

    state: ValidityState
    days_remaining: float
    elapsed_percent: float  # share of the validity period elapsed, 0 to 100: the filled width of the bar
    text: str


class ExpiringCertificate(NamedTuple):
    """One served certificate that has expired or expires within EXPIRY_WARNING_DAYS, for the list atop the page."""

    target_index: int  # the target's position in the report, 1-based (its section is #target-INDEX)
    target: str
    position: str
    certificate: Certificate
    validity: Validity


def _utc(value: datetime) -> datetime:
    """Naive timestamps are taken as UTC, so naive and aware values can be compared."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _days(count: int, unit: str = "day") -> str:
    return f"{count} {unit}{'' if count == 1 else 's'}"


def certificate_validity(cert: Certificate, now: datetime) -> Validity:
    """The validity of ``cert`` at ``now`` (the scan time); the certificate's own ``days_remaining`` wins when set."""
    total = (_utc(cert.not_after) - _utc(cert.not_before)).total_seconds() / _DAY_SECONDS
    if cert.days_remaining is not None:
        remaining = cert.days_remaining
    else:
        remaining = (_utc(cert.not_after) - _utc(now)).total_seconds() / _DAY_SECONDS
    elapsed = total - remaining
    percent = min(max(elapsed / total * 100.0, 0.0), 100.0) if total > 0 else 100.0
    state: ValidityState
    if remaining <= 0:
        state = "expired"
        ago = math.floor(-remaining)
        text = f"expired {_days(ago)} ago" if ago >= 1 else "expired today"
    elif elapsed < 0:
        state = "not_yet_valid"
        text = f"not yet valid (starts in {_days(math.ceil(-elapsed))})"
    else:
        state = "expiring" if remaining < EXPIRY_WARNING_DAYS else "valid"
        left = math.floor(remaining)
        text = f"{_days(left)} remaining" if left >= 1 else "less than a day remaining"
    return Validity(state, remaining, percent, text)


def chain_position(chain: list[Certificate], index: int) -> str:
    """What a certificate is in the served chain: the leaf first, a self-signed last one the root."""
    if index == 0:
        return "Leaf"
    if index == len(chain) - 1 and chain[index].self_signed:
        return "Root"
    return "Intermediate"


def served_chain(certificate: CertificateFacts) -> list[Certificate]:
    """The certificates as served (or read from the file), leaf first; just the leaf when no chain was recorded."""
    if certificate.chain:
        return list(certificate.chain)
    return [certificate.leaf] if certificate.leaf is not None else []


def expiring_certificates(report: Report) -> list[ExpiringCertificate]:
    """Served certificates of every target that have expired or expire within EXPIRY_WARNING_DAYS."""
    result: list[ExpiringCertificate] = []
    for index, target in enumerate(report.targets, 1):
        seen: set[str] = set()
        for deployment in target.facts.deployments():  # every certificate the target serves, each chain
            chain = served_chain(deployment.certificate)
            for position, cert in enumerate(chain):
                validity = certificate_validity(cert, target.facts.started_at)
                if cert.sha256 in seen or validity.state not in ("expired", "expiring"):
                    continue
                seen.add(cert.sha256)
                where = chain_position(chain, position)
                result.append(ExpiringCertificate(index, target.target, where, cert, validity))
    return result


def earliest_leaf(facts: Facts) -> Certificate | None:
    """The served leaf that expires first, of every certificate the target serves."""
    leaves = [d.certificate.leaf for d in facts.deployments() if d.certificate.leaf is not None]
    return min(leaves, key=lambda leaf: leaf.not_after) if leaves else None


def basic_constraints_text(value: BasicConstraints | None) -> str:
    if value is None:
        return "no basic constraints extension"
    if not value.ca:
        return "not a CA"
    return "CA" if value.path_length is None else f"CA, path length at most {value.path_length}"


def revocation_source_label(value: str) -> str:
    return _REVOCATION_SOURCE_LABELS.get(value, value)


def revocation_status(value: str) -> tuple[str, str]:
    """The label and badge class of a revocation status."""
    return _REVOCATION_STATUS.get(value, (value, "neutral"))


def code_label(value: str) -> str:
    """A machine name (``unknown_issuer``, ``keyCompromise`` stays as is) as words: underscores to spaces."""
    return value.replace("_", " ")


def short_hash(value: str, length: int = 16) -> str:
    return value if len(value) <= length else f"{value[:length]}\u2026"


def format_datetime(value: datetime) -> str:
    """A timestamp to the second; aware values are shown in UTC."""
    if value.tzinfo is None:
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def format_duration(start: datetime, end: datetime) -> str:
    seconds = max((end - start).total_seconds(), 0.0)
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s"


def pretty_json(value: object) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str, ensure_ascii=False)


def evidence_json(evidence: Evidence) -> str:
    """The evidence as the engine recorded it: only its recorded keys."""
    return pretty_json(evidence.recorded())


def status_label(value: str) -> str:
    return _STATUS_LABELS.get(str(value), str(value))


def cipher_order_label(value: str | None) -> str:
    return _CIPHER_ORDER_LABELS.get(str(value), "unknown") if value is not None else "unknown"


def fact_text(value: object, unit: str | None = None) -> str:
    """An observed value as text: booleans as yes/no, lists joined, numbers with their unit."""
    if value is None:
        return "none announced"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, NamedGroup):
        return value.name
    if isinstance(value, SessionAgeCheck):
        age = fact_text(value.age_seconds, "s")
        return f"resumed after {age}" if value.resumed else f"not resumed after {age}"
    if isinstance(value, ClientAuthEnforcement):
        seen = value.status_line or value.http_basis
        return f"{value.at} ({seen})" if seen else value.at
    if isinstance(value, list | tuple):
        return ", ".join(fact_text(item) for item in value) if value else "none"
    text = f"{value:g}" if isinstance(value, float) else str(value)
    return f"{text} {unit}" if unit and isinstance(value, int | float) else text


def fact_rows(group: BaseModel, rows: tuple[FactRow, ...]) -> list[tuple[FactRow, Observed[object]]]:
    """The rows of a facts table with the Observed each one shows."""
    result: list[tuple[FactRow, Observed[object]]] = []
    for row in rows:
        value = getattr(group, row.field)
        if not isinstance(value, Observed):
            raise TypeError(f"{type(group).__name__}.{row.field} is not an Observed fact")
        result.append((row, value))
    return result


def any_determined(group: BaseModel, rows: tuple[FactRow, ...]) -> bool:
    """Whether any fact of the group was probed (observed or failed): otherwise its table would be empty."""
    return any(obs.status != "not_probed" for _, obs in fact_rows(group, rows))


def not_probed_groups(facts: Facts) -> list[str]:
    """Titles of the fact groups the scan did not probe; the report names them in one line, with no table."""
    groups: list[tuple[str, GroupFacts | Behaviours | SessionFacts | ClientAuthFacts]] = [
        ("key exchange groups", facts.groups),
        ("behaviours", facts.behaviours),
        ("sessions", facts.sessions),
        ("client authentication", facts.client_auth),
    ]
    return [title for title, group in groups if group.status == "not_probed"]


def is_web_url(value: str) -> bool:
    """Only http(s) references become links; anything else (say ``javascript:``) stays text."""
    return value.startswith(("https://", "http://"))


def sort_findings(findings: list[Finding]) -> list[Finding]:
    return sorted(
        findings,
        key=lambda f: (
            _STATUS_ORDER.get(f.status.value, len(_STATUS_ORDER)),
            SEVERITY_RANK.get(f.severity, len(SEVERITY_RANK)),
            f.pack,
            f.rule,
        ),
    )


def count_status(findings: list[Finding], status: str) -> int:
    return sum(1 for f in findings if f.status.value == status)


def failed_by_severity(findings: list[Finding]) -> list[tuple[str, int]]:
    """Counts of failed findings per severity, most severe first, only the severities that occur."""
    counts: dict[str, int] = {}
    for f in findings:
        if f.status == Status.failed:
            counts[f.severity] = counts.get(f.severity, 0) + 1
    return sorted(counts.items(), key=lambda item: (SEVERITY_RANK.get(item[0], len(SEVERITY_RANK)), item[0]))


def severity_counts(report: Report) -> list[tuple[str, int]]:
    """Failed findings of the whole report per severity: every known severity (zeros too), most severe first."""
    counts = dict.fromkeys(SEVERITIES, 0)
    for target in report.targets:
        for f in target.findings:
            if f.status == Status.failed:
                counts[f.severity] = counts.get(f.severity, 0) + 1
    return list(counts.items())


def finding_severities(report: Report) -> list[str]:
    """The severities of the report's findings, most severe first: the choices of the severity filter."""
    present = {f.severity for t in report.targets for f in t.findings}
    return sorted(present, key=lambda s: (SEVERITY_RANK.get(s, len(SEVERITY_RANK)), s))


def pack_ids(report: Report) -> list[str]:
    """The packs of the run in the order given, then any other pack a finding names (a re-evaluated report)."""
    ids = [pack.id for pack in report.packs]
    for target in report.targets:
        for f in target.findings:
            if f.pack not in ids:
                ids.append(f.pack)
    return ids


# A matrix cell's status: the most telling status among the pack's findings on the target.
_CELL_PRECEDENCE: tuple[str, ...] = (
    Status.failed.value,
    Status.error.value,
    Status.passed.value,
    Status.waived.value,
    Status.not_applicable.value,
)


class PackCell(NamedTuple):
    """One pack's result on one target: fail if any of its rules failed, else error if any was inconclusive,
    else pass if any passed (then waived, then not applicable); ``none`` when the pack judged nothing there."""

    pack: str
    status: str
    counts: tuple[tuple[str, int], ...]  # (status, number of findings), statuses that occur, most actionable first


class MatrixRow(NamedTuple):
    target_index: int  # the target's position in the report, 1-based (its section is #target-INDEX)
    target: TargetReport
    cells: tuple[PackCell, ...]  # one per pack, in the order of pack_ids()


def pack_cell(pack: str, findings: list[Finding]) -> PackCell:
    mine = [f.status.value for f in findings if f.pack == pack]
    counts = tuple(
        (status, mine.count(status))
        for status in sorted(set(mine), key=lambda s: _STATUS_ORDER.get(s, len(_STATUS_ORDER)))
    )
    status = next((s for s in _CELL_PRECEDENCE if s in mine), "none")
    return PackCell(pack, status, counts)


def matrix_rows(report: Report) -> Iterator[MatrixRow]:
    """The targets x packs matrix of the overview, a row at a time: one row per target, one cell per pack."""
    packs = pack_ids(report)
    for index, target in enumerate(report.targets, 1):
        yield MatrixRow(index, target, tuple(pack_cell(pack, target.findings) for pack in packs))


def pack_matrix(report: Report) -> list[MatrixRow]:
    """The targets x packs matrix of the overview: one row per target, one cell per pack."""
    return list(matrix_rows(report))


def any_graded(report: Report) -> bool:
    """Whether any target has a grade (the page has a Grade column only then)."""
    return any(target.grade is not None for target in report.targets)


class RuleRef(NamedTuple):
    """A failed rule that does not allow a protocol version or cipher suite."""

    pack: str
    rule: str
    title: str


PolicyState = Literal["allowed", "not_allowed", "not_judged"]


class PolicyMark(NamedTuple):
    """What the packs say about one accepted protocol version or cipher suite."""

    state: PolicyState
    rules: tuple[RuleRef, ...] = ()  # the failed rules that do not allow it (empty unless not_allowed)


# List operators whose ``offending`` are elements the rule does not allow. For require_any/require_all it is the
# values that are missing, and ``some`` names none: those say nothing against what was accepted.
_DISALLOWING_OPERATORS = frozenset({"each", "none", "only", "forbid"})


@dataclass(frozen=True)
class ProtocolPolicy:
    """Which protocol versions and cipher suites of one target the packs do not allow.

    Read from the evidence of the target's failed list rules on ``protocols...`` facts: a protocol object in
    ``offending`` (fact ``protocols``) marks its version when the rule's constraint names ``version`` (a rule on
    ``cipher_order`` alone says how a version behaves, not that it is not allowed); a suite object (fact
    ``protocols.cipher_suites``) marks that suite; plain names do the same for ``protocols.version`` and
    ``protocols.cipher_suites.name``. A suite accepted with a version that is not allowed is not allowed with it.
    """

    judged: bool  # some rule on the target's protocols or suites passed or failed
    versions: Mapping[str, tuple[RuleRef, ...]]
    suites: Mapping[str, tuple[RuleRef, ...]]

    def version(self, version: str) -> PolicyMark:
        rules = self.versions.get(str(version), ())
        if rules:
            return PolicyMark("not_allowed", rules)
        return PolicyMark("allowed" if self.judged else "not_judged")

    def suite(self, version: str, name: str) -> PolicyMark:
        rules = tuple(dict.fromkeys((*self.suites.get(name, ()), *self.versions.get(str(version), ()))))
        if rules:
            return PolicyMark("not_allowed", rules)
        return PolicyMark("allowed" if self.judged else "not_judged")


def protocol_policy(findings: list[Finding]) -> ProtocolPolicy:
    """What the target's findings say against its protocol versions and cipher suites (see ProtocolPolicy)."""
    versions: dict[str, list[RuleRef]] = {}
    suites: dict[str, list[RuleRef]] = {}
    judged = False

    def mark(into: dict[str, list[RuleRef]], key: object, ref: RuleRef) -> None:
        refs = into.setdefault(str(key), [])
        if ref not in refs:
            refs.append(ref)

    for f in findings:
        fact = f.evidence.fact
        if fact is None or fact.split(".", 1)[0] != "protocols":
            continue
        judged = judged or f.status in (Status.passed, Status.failed)
        operator, spec, offending = f.evidence.operator, f.evidence.argument, f.evidence.offending
        if f.status != Status.failed or offending is None or operator not in _DISALLOWING_OPERATORS:
            continue
        ref = RuleRef(f.pack, f.rule, f.title)
        for element in offending:
            if isinstance(element, Mapping):
                if fact == "protocols" and "version" in element and isinstance(spec, Mapping) and "version" in spec:
                    mark(versions, element["version"], ref)
                elif fact == "protocols.cipher_suites" and "name" in element:
                    mark(suites, element["name"], ref)
            elif fact == "protocols.version":
                mark(versions, element, ref)
            elif fact == "protocols.cipher_suites.name":
                mark(suites, element, ref)
    return ProtocolPolicy(
        judged=judged,
        versions={key: tuple(refs) for key, refs in versions.items()},
        suites={key: tuple(refs) for key, refs in suites.items()},
    )


class SuiteRow(NamedTuple):
    suite: CipherSuite  # as recorded with the newest version that accepted it
    cells: tuple[PolicyMark | None, ...]  # one per column of SuiteMatrix.versions; None: not accepted with it
    rules: tuple[RuleRef, ...]  # every rule that does not allow the suite with some version


class SuiteMatrix(NamedTuple):
    versions: tuple[str, ...]  # the accepted versions, newest first
    rows: tuple[SuiteRow, ...]  # every accepted suite: newest version's first, each version's in its order


def suite_matrix(facts: Facts, policy: ProtocolPolicy) -> SuiteMatrix:
    """The protocol x cipher-suite table: which suite is accepted with which version, and whether it is allowed."""
    accepted = [p for p in reversed(facts.protocols) if p.status == "accepted" and p.cipher_suites]
    first: dict[str, CipherSuite] = {}
    for protocol in accepted:
        for suite in protocol.cipher_suites:
            first.setdefault(suite.name, suite)
    rows: list[SuiteRow] = []
    for name, suite in first.items():
        cells: list[PolicyMark | None] = []
        for protocol in accepted:
            with_it = any(s.name == name for s in protocol.cipher_suites)
            cells.append(policy.suite(protocol.version, name) if with_it else None)
        rules = tuple(dict.fromkeys(ref for cell in cells if cell is not None for ref in cell.rules))
        rows.append(SuiteRow(suite, tuple(cells), rules))
    return SuiteMatrix(tuple(p.version.value for p in accepted), tuple(rows))


class GateMark(NamedTuple):
    """What the gate made of one finding, as its row in the findings table shows it (a row the gate does not count
    carries ``data-gate``: ``baseline``, ``below_fail_on`` or ``waived``)."""

    state: GateState | None  # None: a pass or not-applicable rule, nothing for the gate to decide
    not_counted: str | None  # why it does not count ("in the baseline", "below --fail-on high"), None if it does
    waiver: WaiverRecord | None  # the waiver of a waived finding
    expired: tuple[WaiverUse, ...]  # expired waivers that covered this failure: it counts again


def gate_mark(report: Report, target: TargetReport, finding: Finding) -> GateMark:
    gate_state = gate_marks.state(finding)
    reason = gate_marks.not_counted_reason(gate_state, report.gate.fail_on) if gate_state != "waived" else None
    failed = finding.status == Status.failed
    expired = tuple(gate_marks.expired_waivers_of(report, target, finding)) if failed else ()
    return GateMark(gate_state, reason, gate_marks.waiver_of(finding), expired)


def csp_hash(script: str) -> Markup:
    """The CSP source expression that allows exactly this inline script (quotes and base64: nothing to escape)."""
    digest = hashlib.sha256(str(script).encode()).digest()
    return Markup(f"'sha256-{base64.b64encode(digest).decode()}'")  # noqa: S704 - quotes and base64, no input


def _printable(value: object) -> object:
    """What a template prints, controls shown escaped before autoescaping (markup we made is left alone)."""
    return printable_lines(value) if isinstance(value, str) and not isinstance(value, Markup) else value


@lru_cache(maxsize=1)
def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(reports_dir() / "templates"),
        autoescape=True,
        finalize=_printable,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["datetime"] = format_datetime
    env.filters["evidence_json"] = evidence_json
    env.filters["status_label"] = status_label
    env.filters["sort_findings"] = sort_findings
    env.filters["failed_by_severity"] = failed_by_severity
    env.filters["cipher_order"] = cipher_order_label
    env.filters["fact_text"] = fact_text
    env.filters["basic_constraints"] = basic_constraints_text
    env.filters["revocation_source"] = revocation_source_label
    env.filters["code_label"] = code_label
    env.filters["short_hash"] = short_hash
    env.filters["csp_hash"] = csp_hash
    env.filters["one_line"] = one_line
    env.tests["web_url"] = is_web_url
    env.globals["count_status"] = count_status
    env.globals["duration"] = format_duration
    env.globals["fact_rows"] = fact_rows
    env.globals["any_determined"] = any_determined
    env.globals["not_probed_groups"] = not_probed_groups
    env.globals["certificate_validity"] = certificate_validity
    env.globals["chain_position"] = chain_position
    env.globals["served_chain"] = served_chain
    env.globals["earliest_leaf"] = earliest_leaf
    env.globals["expiring_certificates"] = expiring_certificates
    env.globals["revocation_status"] = revocation_status
    env.globals["severity_counts"] = severity_counts
    env.globals["finding_severities"] = finding_severities
    env.globals["pack_ids"] = pack_ids
    env.globals["pack_matrix"] = matrix_rows
    env.globals["any_graded"] = any_graded
    env.globals["protocol_policy"] = protocol_policy
    env.globals["suite_matrix"] = suite_matrix
    env.globals["gate_in_use"] = gate_marks.gate_in_use
    env.globals["gate_line"] = gate_marks.gate_line
    env.globals["gate_options"] = gate_marks.gate_options
    env.globals["gate_mark"] = gate_mark
    env.globals["expired_waivers"] = gate_marks.expired_waivers
    env.globals["expired_waiver_text"] = gate_marks.expired_waiver_text
    env.globals["waiver_text"] = gate_marks.waiver_text
    env.globals["EXPIRY_WARNING_DAYS"] = EXPIRY_WARNING_DAYS
    env.globals["GROUP_ROWS"] = GROUP_ROWS
    env.globals["BEHAVIOUR_ROWS"] = BEHAVIOUR_ROWS
    env.globals["SESSION_ROWS"] = SESSION_ROWS
    env.globals["CLIENT_AUTH_ROWS"] = CLIENT_AUTH_ROWS
    env.globals.update(_TRIAGE_GLOBALS)
    return env


# Indentation at the start of a line: the template's, meaningless in HTML outside scripts (the page has no <pre>).
_INDENT = re.compile(r"\n[ \t]+")
_SCRIPT = re.compile(r"(<script>.*?</script>)", re.DOTALL)
_OPEN, _CLOSE = "<script>", "</script>"
_PIECE = 1 << 16  # what the page is written in: pieces of about 64 kB


def _without_indentation(page: str) -> str:
    """The page without the template's indentation: a fleet's page is a fifth smaller. Scripts are left as they
    are (the Content-Security-Policy names them by their hash)."""
    parts = _SCRIPT.split(page)
    return "".join(part if index % 2 else _INDENT.sub("\n", part) for index, part in enumerate(parts))


def _unindented(pieces: Iterable[str]) -> Iterator[str]:
    """``_without_indentation`` of the pieces joined, a piece at a time: text is cut before its last line break
    (an indentation run ends at a line break, and no ``<script>`` tag spans one), a script is held whole."""
    held: list[str] = []
    size = 0
    for piece in pieces:
        held.append(piece)
        size += len(piece)
        if size < _PIECE:
            continue
        done, rest = _unindent_some("".join(held))  # joined as str: a Markup piece added to text would escape it
        held, size = [rest], len(rest)
        if done:
            yield done
    yield _without_indentation("".join(held))


def _unindent_some(text: str) -> tuple[str, str]:
    """The part of ``text`` that can be written now, unindented, and the rest, to be held for more."""
    out: list[str] = []
    while True:
        start = text.find(_OPEN)
        end = text.find(_CLOSE, start + len(_OPEN)) if start >= 0 else -1
        if start >= 0 and end >= 0:  # a whole script: the text before it, then the script as it is
            end += len(_CLOSE)
            out += [_INDENT.sub("\n", text[:start]), text[start:end]]
            text = text[end:]
            continue
        cut = text.rfind("\n", 0, start if start >= 0 else len(text))
        if cut <= 0:
            return "".join(out), text
        out.append(_INDENT.sub("\n", text[:cut]))
        return "".join(out), text[cut:]


def _once(function: Callable[..., _T]) -> Callable[..., _T]:
    """A report-wide aggregate worked out once per page and arguments (the template asks for some of them twice),
    each a pass over the targets."""
    done: dict[tuple[object, ...], tuple[Report, _T]] = {}

    def cached(report: Report, *args: object) -> _T:
        key = (id(report), *args)
        if key not in done:
            done[key] = (report, function(report, *args))  # the report kept: its id stays its own
        return done[key][1]

    return cached


def chunks(report: Report) -> Iterator[str]:
    """The page in pieces: the template generated as it goes (``Template.generate``), the aggregates of the page
    (what failed, the severities, the matrix's packs, the rules ...) each worked out once, in a pass over the
    targets, and the per-target parts (the matrix's rows, the targets' sections) a target at a time."""
    aggregates = {name: _once(function) for name, function in _AGGREGATES.items()}
    yield from _unindented(_environment().get_template(TEMPLATE).generate(report=report, **aggregates))


def render(report: Report) -> str:
    return "".join(chunks(report))


def render_whole(report: Report) -> str:
    """The page rendered in one go: what ``chunks`` streams (the tests compare the two)."""
    return _without_indentation(_environment().get_template(TEMPLATE).render(report=report))


# --- the triage view: what failed, grouped by rule across targets ------------------------------------------------

# Findings listed folded per target, after the ones that need a look.
QUIET_STATUSES: tuple[str, ...] = (Status.passed.value, Status.not_applicable.value)
# Up to this many targets, every finding row is built with the page; above, a target's rows are built as its
# section nears the screen (the page of 1,000 targets stays usable within two seconds: bench/html.py).
EAGER_TARGETS = 50
# A fleet's rule lists this many targets inline; the rest wait behind "all N targets" (a <details>).
INLINE_TARGETS = 8
# The one-line remediation of the "What failed" list stops near this many characters (the whole text is in the
# target's findings and in the rule list at the end of the page).
_ONE_LINE = 200


def one_line(text: str, limit: int = _ONE_LINE) -> str:
    """A remediation as one line: whitespace collapsed, cut after the last sentence (or word) that fits."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    head = flat[:limit]
    sentence = head.rfind(". ")
    if sentence >= limit // 3:
        return head[: sentence + 1]
    return head[: head.rfind(" ")].rstrip(",;:") + "\u2026"


def finding_anchor(target_index: int, finding: Finding) -> str:
    """The id of a finding's row: pack ids have no dot, so ``target-N.PACK.RULE`` names one finding only."""
    return f"target-{target_index}.{finding.pack}.{finding.rule}"


class RuleTarget(NamedTuple):
    """One target on which a rule failed (or could not be checked), for the "What failed" list."""

    target_index: int
    target: str
    anchor: str  # the id of the finding's row in the target's section
    not_counted: str | None  # why the gate does not count it ("in the baseline" ...), None if it counts


class RuleGroup(NamedTuple):
    """A rule that failed (or could not be checked) on some targets, with those targets."""

    pack: str
    rule: str
    title: str
    severity: str
    remediation: str  # one line
    targets: tuple[RuleTarget, ...]

    @property
    def counted(self) -> bool:
        """Whether it counts for the gate on any of its targets."""
        return any(t.not_counted is None for t in self.targets)


def is_scanned(target: TargetReport) -> bool:
    return target.facts.status == "ok"


def rule_groups(report: Report, status: str = Status.failed.value) -> list[RuleGroup]:
    """The rules with findings of ``status`` on scanned targets, grouped across targets: the ones the gate counts
    first, then most severe, then on most targets. An unscanned target's rules are not listed one by one (its
    error is; see unscanned_targets)."""

    def rank(f: Finding) -> int:
        return SEVERITY_RANK.get(f.severity, len(SEVERITY_RANK))

    # per rule: its first most severe finding (what the group shows), and its targets; only that one finding is
    # kept, not every failing finding of the fleet (a report's targets are read one at a time)
    found: dict[tuple[str, str], tuple[Finding, list[RuleTarget]]] = {}
    for index, target in enumerate(report.targets, 1):
        if not is_scanned(target):
            continue
        for f in target.findings:
            if f.status.value != status:
                continue
            reason = gate_marks.not_counted_reason(gate_marks.state(f), report.gate.fail_on)
            entry = RuleTarget(index, target.target, finding_anchor(index, f), reason)
            first, entries = found.setdefault((f.pack, f.rule), (f, []))
            if rank(f) < rank(first):
                found[(f.pack, f.rule)] = (f, entries)
            entries.append(entry)
    groups = []
    for (pack, rule), (first, entries) in found.items():
        targets = tuple(sorted(entries, key=lambda e: (e.not_counted is not None, e.target_index)))
        groups.append(RuleGroup(pack, rule, first.title, first.severity, one_line(first.remediation), targets))
    return sorted(
        groups,
        key=lambda g: (
            not g.counted,
            SEVERITY_RANK.get(g.severity, len(SEVERITY_RANK)),
            -len(g.targets),
            g.pack,
            g.rule,
        ),
    )


class UnscannedTarget(NamedTuple):
    target_index: int
    target: str
    error_class: str
    message: str


class UnscannedGroup(NamedTuple):
    """Targets that could not be scanned for the same kind of reason (``timeout``, ``refused`` ...)."""

    error_class: str
    targets: tuple[UnscannedTarget, ...]


def scan_error(target: TargetReport) -> tuple[str, str]:
    """Why a target could not be scanned: its error class and message."""
    error = target.facts.error
    if error is None:
        return "error", "not scanned (no reason recorded)"
    return error.error_class.value, error.message


def unscanned_groups(report: Report) -> list[UnscannedGroup]:
    """The targets that could not be scanned, grouped by error class, the largest group first."""
    groups: dict[str, list[UnscannedTarget]] = {}
    for index, target in enumerate(report.targets, 1):
        if not is_scanned(target):
            error_class, message = scan_error(target)
            groups.setdefault(error_class, []).append(UnscannedTarget(index, target.target, error_class, message))
    return [
        UnscannedGroup(name, tuple(targets))
        for name, targets in sorted(groups.items(), key=lambda item: (-len(item[1]), item[0]))
    ]


class RuleInfo(NamedTuple):
    """What a rule says whatever the target: listed once at the end of the page, not once per finding."""

    pack: str
    rule: str
    title: str
    severity: str
    rationale: str
    remediation: str
    section: str
    references: tuple[str, ...]

    @property
    def anchor(self) -> str:
        return f"rule.{self.pack}.{self.rule}"


def rule_catalogue(report: Report) -> list[RuleInfo]:
    """Every rule with a finding in the report, once, in pack order then rule id."""
    order = {pack: position for position, pack in enumerate(pack_ids(report))}
    rules: dict[tuple[str, str], RuleInfo] = {}
    for target in report.targets:
        for f in target.findings:
            if (f.pack, f.rule) not in rules:
                rules[(f.pack, f.rule)] = RuleInfo(
                    f.pack, f.rule, f.title, f.severity, f.rationale, f.remediation, f.section, tuple(f.references)
                )
    return sorted(rules.values(), key=lambda r: (order.get(r.pack, len(order)), r.pack, r.rule))


def rule_anchor(finding: Finding) -> str:
    return f"rule.{finding.pack}.{finding.rule}"


# --- evidence in words ---------------------------------------------------------------------------------------------


class EvidenceLine(NamedTuple):
    """One line of a finding's evidence: a label and its items (each shown once), or a text."""

    label: str
    items: tuple[str, ...] = ()
    text: str = ""
    mono: bool = False


def _compact(value: object, nested: bool = False) -> str:
    """A value of a constraint or filter as the pack wrote it, in a line: {FIELD: VALUE, LIST or {OP: ARG}} reads
    ``FIELD = VALUE``, ``FIELD in A, B`` or ``FIELD OP ARG``."""
    if isinstance(value, str):
        return value
    if isinstance(value, list | tuple):
        return ", ".join(_compact(v) for v in value) if value else "(none)"
    if isinstance(value, Mapping):
        if nested:
            return ", ".join(f"{k} {_compact(v)}" for k, v in value.items())
        return ", ".join(
            f"{k} {'' if isinstance(v, Mapping) else 'in ' if isinstance(v, list | tuple) else '= '}"
            f"{_compact(v, nested=True)}"
            for k, v in value.items()
        )
    return json.dumps(value, default=str, ensure_ascii=False)


def _element_label(element: object) -> str:
    """A list element as the engine labels it: its version, name, subject or id, else compact JSON."""
    if isinstance(element, Mapping):
        for key in ("version", "name", "subject", "id"):
            if key in element:
                return str(element[key])
        return json.dumps(element, default=str, ensure_ascii=False, sort_keys=True)
    return str(element)


def suite_versions(facts: Facts) -> dict[str, tuple[str, ...]]:
    """For each accepted cipher suite, the protocol versions that accepted it, newest first."""
    versions: dict[str, list[str]] = {}
    for protocol in reversed(facts.protocols):
        if protocol.status == "accepted":
            for suite in protocol.cipher_suites:
                named = versions.setdefault(suite.name, [])
                if protocol.version.value not in named:
                    named.append(protocol.version.value)
    return {name: tuple(found) for name, found in versions.items()}


def _suite_lines(label: str, names: list[str], facts: Facts) -> list[EvidenceLine]:
    """Suites grouped by the versions that accepted them: each suite once, the versions named."""
    by_versions: dict[tuple[str, ...], list[str]] = {}
    known = suite_versions(facts)
    for name in dict.fromkeys(names):
        by_versions.setdefault(known.get(name, ()), []).append(name)
    lines = []
    for versions, suites in by_versions.items():
        where = f"{label} with {', '.join(versions)}" if versions else label
        lines.append(EvidenceLine(where, tuple(suites), mono=True))
    return lines


_MISSING_OPERATORS = frozenset({"require_any", "require_all"})


def evidence_lines(finding: Finding, facts: Facts) -> list[EvidenceLine]:
    """The evidence of a failed or inconclusive finding in words: what the rule looked at and demands, and what
    broke it, each element once (suites grouped by the versions that accepted them, names once)."""
    e = finding.evidence
    lines: list[EvidenceLine] = []
    if e.fact is not None:
        lines.append(EvidenceLine("Fact", text=e.fact, mono=True))
    if e.expected is not None:
        demands = one_line(f"{e.operator} {_compact(e.argument)}", _ONE_LINE)
        lines.append(EvidenceLine("Rule demands", text=demands, mono=True))
    if e.where is not None:
        lines.append(EvidenceLine("Of the elements where", text=_compact(e.where), mono=True))
    if e.deployment is not None:
        lines.append(EvidenceLine("Deployment", text=e.deployment))
    if e.unobserved is not None:
        lines.append(EvidenceLine("Not observed", text=e.unobserved))
    if e.offending:
        label = "Missing" if e.operator in _MISSING_OPERATORS else "Offending"
        labels = [_element_label(v) for v in e.offending]
        if e.fact is not None and e.fact.startswith("protocols.cipher_suites") and label == "Offending":
            lines.extend(_suite_lines(label, labels, facts))
        else:
            lines.append(EvidenceLine(label, tuple(dict.fromkeys(labels)), mono=True))
    elif e.offending is None and "observed" in e.model_fields_set and finding.status == Status.failed:
        observed = e.observed
        if isinstance(observed, list):
            lines.append(EvidenceLine("Observed", tuple(dict.fromkeys(_element_label(v) for v in observed)), mono=True))
        else:
            lines.append(
                EvidenceLine("Observed", text=_compact(observed) if observed is not None else "none", mono=True)
            )
    return lines


# What the triage view (what failed, across targets, first) adds to the template's names.
_TRIAGE_GLOBALS: dict[str, object] = {
    "INLINE_TARGETS": INLINE_TARGETS,
    "EAGER_TARGETS": EAGER_TARGETS,
    "QUIET_STATUSES": QUIET_STATUSES,
    "rule_groups": rule_groups,
    "unscanned_groups": unscanned_groups,
    "is_scanned": is_scanned,
    "scan_error": scan_error,
    "finding_anchor": finding_anchor,
    "evidence_lines": evidence_lines,
    "rule_catalogue": rule_catalogue,
}


# The aggregates of the whole report the template asks for (some more than once): worked out once per page.
_AGGREGATES: dict[str, Callable[..., object]] = {
    "rule_groups": rule_groups,
    "unscanned_groups": unscanned_groups,
    "any_graded": any_graded,
    "severity_counts": severity_counts,
    "finding_severities": finding_severities,
    "pack_ids": pack_ids,
    "expiring_certificates": expiring_certificates,
    "rule_catalogue": rule_catalogue,
    "gate_line": gate_marks.gate_line,
}
