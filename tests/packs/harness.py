"""The one harness of the pack tests: facts builders, a case type and the tests every pack runs on its cases.

A pack's test file holds a table of ``Case`` values, each facts made to pass, fail or not concern some rules of a
pack, with the statuses the pack must give them; it turns the table into tests with ``case_test`` (each case judged
on its own) and ``coverage_test`` (every rule of the pack passes in some case and fails in another). Its end-to-end
tests against real loopback servers read the reports with ``findings`` / ``statuses`` / ``scan``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from scanner.facts import (
    Certificate,
    CertificateFacts,
    CipherSuite,
    ClientAuthEnforcement,
    ClientAuthFacts,
    EnforcementPoint,
    ErrorClass,
    ExtendedKeyUsage,
    Facts,
    Observed,
    ProbeError,
    ProtocolSupport,
    ProtocolVersion,
    PublicKey,
    TargetInfo,
    observed,
    unobserved,
)
from scanner.findings import Finding
from scanner.policy.engine import evaluate
from scanner.policy.pack import RulePack, resolve_pack
from scanner.probe import iana

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
PASS, FAIL, NA, ERROR = "pass", "fail", "not_applicable", "error"

# --- facts ---------------------------------------------------------------------------------------------------

EKU_OIDS = {
    "serverAuth": "1.3.6.1.5.5.7.3.1",
    "clientAuth": "1.3.6.1.5.5.7.3.2",
    "codeSigning": "1.3.6.1.5.5.7.3.3",
    "anyExtendedKeyUsage": "2.5.29.37.0",
}
TIMEOUT = ProbeError(error_class=ErrorClass.timeout, message="no answer within 5s")


def target(
    host: str, port: int, ip_address: str | None, *, source: str = "network", input: str | None = None
) -> TargetInfo:
    """A target given as ``host:port`` (or ``input``) and reached at ``ip_address`` with the host as SNI."""
    given = f"{host}:{port}" if input is None else input
    return TargetInfo(input=given, host=host, port=port, server_name=host, ip_address=ip_address, source=source)


def scanned(target: TargetInfo, *, at: datetime = NOW, **parts: Any) -> Facts:
    """Facts of a target scanned ``at`` NOW, made of ``parts`` (protocols, certificate, groups ...)."""
    return Facts(target=target, started_at=at, finished_at=at, status="ok", **parts)


def iana_suite(name: str) -> CipherSuite:
    """A suite as the registry describes it; a name outside it (sslyze's SSL 2.0 kinds) by its name only."""
    info = iana.cipher_suite_by_name(name)
    return iana.to_fact(info) if info is not None else CipherSuite(name=name)


def protocols(
    accepted: Mapping[str, Sequence[str]],
    *,
    errors: Collection[str] = (),
    error: ProbeError = TIMEOUT,
    order: str | None = None,
    suite: Callable[[str], CipherSuite] = iana_suite,
) -> list[ProtocolSupport]:
    """Every version from SSL 2.0 to TLS 1.3: those in ``accepted`` with their suites (and ``order`` when they are
    several), those in ``errors`` not probed for ``error``, the others refused."""
    result = []
    for version in ProtocolVersion:
        if version.value in errors:
            result.append(ProtocolSupport(version=version, status="error", error=error))
        elif version.value in accepted:
            suites = [suite(name) for name in accepted[version.value]]
            order_seen = order if len(suites) > 1 else None
            result.append(
                ProtocolSupport(version=version, status="accepted", cipher_suites=suites, cipher_order=order_seen)
            )
        else:
            result.append(ProtocolSupport(version=version, status="not_accepted"))
    return result


def certificate(
    subject: str,
    *,
    issuer: str | None = None,
    key: tuple[Any, ...] = ("RSA", 2048),
    signature_algorithm: str = "sha256WithRSAEncryption",
    signature_hash: str | None = "sha256",
    not_before: datetime = NOW - timedelta(days=10),
    days: float = 90,
    eku: Iterable[str] | None = None,
    **fields: Any,
) -> Certificate:
    """A certificate valid ``days`` from ``not_before``; without ``issuer`` self-signed; ``key`` is (type, size) or
    (type, size, curve); ``eku`` names usages (None: no EKU extension); ``fields`` sets any other field."""
    return Certificate(
        subject=subject,
        issuer=subject if issuer is None else issuer,
        serial=fields.pop("serial", "01"),
        sha256=fields.pop("sha256", "ab" * 32),
        public_key=PublicKey(type=key[0], size=key[1], curve=key[2] if len(key) > 2 else None),
        signature_algorithm=signature_algorithm,
        signature_hash=signature_hash,
        not_before=not_before,
        not_after=not_before + timedelta(days=days),
        validity_days=days,
        extended_key_usage=None if eku is None else [ExtendedKeyUsage(name=n, oid=EKU_OIDS[n]) for n in eku],
        self_signed=issuer is None,
        **fields,
    )


def enforced(at: EnforcementPoint, status_line: str | None = None) -> ClientAuthEnforcement:
    """Where a client was refused (``at``), with the HTTP status line seen when the application judged it."""
    basis = None if at == "handshake" else "the server selected ALPN http/1.1" if at != "not_http" else "port 1414"
    return ClientAuthEnforcement(at=at, http_basis=basis, status_line=status_line, detail=f"refused at {at}")


def client_auth(
    requirement: str = "required",
    throwaway: Observed[Any] | bool = False,
    *,
    enforcement: ClientAuthEnforcement | Observed[Any] | None = None,
    untrusted: ClientAuthEnforcement | None = None,
) -> ClientAuthFacts:
    """What the client-certificate probe observes: the server's requirement, whether it took a throwaway
    certificate (not applicable when it asks for none) and where it refused either client (``enforcement`` may be
    an unobserved fact). Unless given, a client the handshake refused was refused there, and one it let through
    met a service that is not HTTP."""
    let_through = enforced("not_http")
    if enforcement is None:
        enforcement = enforced("handshake") if requirement == "required" else let_through
    untrusted_fact: Observed[Any]
    if requirement == "not_requested":
        throwaway = unobserved(ErrorClass.not_applicable, "the server asks for no client certificate")
        untrusted_fact = throwaway
    else:
        if not isinstance(throwaway, Observed):
            throwaway = observed(throwaway)
        refused = enforced("handshake") if throwaway.value is False else let_through
        untrusted_fact = observed(untrusted or refused) if throwaway.status == "ok" else throwaway
    return ClientAuthFacts(
        status="ok",
        requirement=observed(requirement),
        throwaway_certificate_accepted=throwaway,
        enforcement=enforcement if isinstance(enforcement, Observed) else observed(enforcement),
        untrusted_enforcement=untrusted_fact,
    )


def client_auth_error(message: str) -> ClientAuthFacts:
    """A client-certificate probe that timed out."""
    error = unobserved(ErrorClass.timeout, message)
    return ClientAuthFacts(
        status="error",
        error=error.error,
        requirement=error,
        throwaway_certificate_accepted=error,
        enforcement=error,
        untrusted_enforcement=error,
    )


def certificate_error(message: str) -> CertificateFacts:
    """A handshake that ended before the certificate was read."""
    return CertificateFacts(status="error", error=ProbeError(error_class=ErrorClass.handshake_failed, message=message))


# --- cases -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One must-pass or must-fail case, ``name``d in the test id: ``pack`` (with ``params``) judges ``facts`` (or
    what the callable builds) and gives each rule in ``expected`` that status, and every other rule of the pack
    ``others`` (None: the other rules are not judged). ``messages`` gives the exact message of some findings."""

    name: str
    pack: str
    facts: Facts | Callable[[], Facts]
    expected: Mapping[str, str]
    params: Mapping[str, Any] = field(default_factory=dict)
    others: str | None = PASS
    messages: Mapping[str, str] = field(default_factory=dict)

    def judge(self) -> dict[str, Finding]:
        """The findings of the pack on the facts, by rule."""
        facts = self.facts if isinstance(self.facts, Facts) else self.facts()
        return {f.rule: f for f in evaluate(facts, [load(self.pack, self.params)])}

    def wanted(self) -> dict[str, str]:
        """The status the case expects of each rule it judges."""
        if self.others is None:
            return dict(self.expected)
        return {rule: self.expected.get(rule, self.others) for rule in rule_ids(self.pack)}


def load(pack: str, params: Mapping[str, Any] | None = None) -> RulePack:
    return resolve_pack(pack, params=params or None)


def rule_ids(pack: str) -> list[str]:
    return [rule.id for rule in load(pack).rules]


def check(case: Case) -> None:
    """Judge the case and assert the status of every rule it names (and of the others), and the messages given."""
    rules = rule_ids(case.pack)
    assert set(case.expected) <= set(rules), f"no such rules in {case.pack}: {sorted(set(case.expected) - set(rules))}"
    found = case.judge()
    judged = found if case.others is not None else {rule: found[rule] for rule in case.expected}
    actual = {rule: finding.status.value for rule, finding in judged.items()}
    want = case.wanted()
    assert actual == want, {rule: found[rule].message for rule in actual if actual[rule] != want.get(rule)}
    assert {rule: found[rule].message for rule in case.messages} == case.messages


def case_test(cases: Sequence[Case]) -> Callable[[Case], None]:
    """The test that judges each case of the table on its own (test id: pack and case name)."""

    @pytest.mark.parametrize("case", cases, ids=[f"{c.pack}-{c.name}" for c in cases])
    def test_case(case: Case) -> None:
        check(case)

    test_case.__doc__ = "The pack gives exactly the expected statuses on the case's facts."
    return test_case


def coverage_test(cases: Sequence[Case], rules: Mapping[str, Sequence[str]] | None = None) -> Callable[[str], None]:
    """The test that, for each pack of the table, every rule passes in some case and fails in another, as expected
    and as judged, and that no case names a rule the pack lacks; ``rules`` gives a pack's rule ids in order."""
    packs = list(dict.fromkeys(c.pack for c in cases))

    @pytest.mark.parametrize("pack", packs)
    def test_coverage(pack: str) -> None:
        ids = rule_ids(pack)
        if rules is not None and pack in rules:
            assert ids == list(rules[pack])
        expected: dict[str, set[str]] = {}
        judged: dict[str, set[str]] = {}
        for case in (c for c in cases if c.pack == pack):
            found = case.judge()
            for rule, status in case.wanted().items():
                expected.setdefault(rule, set()).add(status)
                judged.setdefault(rule, set()).add(found[rule].status.value)
        assert set(expected) == set(ids), f"rules without a case: {sorted(set(ids) - set(expected))}"
        assert [rule for rule in ids if not {PASS, FAIL} <= expected[rule]] == []
        assert [rule for rule in ids if not {PASS, FAIL} <= judged[rule]] == []

    test_coverage.__doc__ = "Every rule of the pack passes in some case and fails in another."
    return test_coverage


def validate_test(pack: str, count: int) -> Callable[..., None]:
    """The test that `tlsgate rules validate` accepts the pack as shipped, with its ``count`` rules."""

    def test_pack_is_valid(tlsgate: Callable[..., Any]) -> None:
        run = tlsgate("rules", "validate", pack)
        assert run.code == 0, run.stderr
        assert run.stdout.strip() == f"OK {pack} ({pack}, {count} rules)"

    test_pack_is_valid.__doc__ = "`tlsgate rules validate` accepts the pack as shipped."
    return test_pack_is_valid


# --- reports of real scans -------------------------------------------------------------------------------------


def findings(report: Path) -> dict[str, dict[str, Any]]:
    """The findings of a JSON report of one target, by rule."""
    (scanned_target,) = json.loads(report.read_text())["targets"]
    return {f["rule"]: f for f in scanned_target["findings"]}


def statuses(report: Path | Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """The status of each rule in a JSON report of one target (or in its findings)."""
    found = findings(report) if isinstance(report, Path) else report
    return {rule: f["status"] for rule, f in found.items()}


def all_pass(pack: str, **others: str) -> dict[str, str]:
    """Every rule of the pack passing, except those given."""
    return dict.fromkeys(rule_ids(pack), PASS) | others


def judge(tlsgate: Callable[..., Any], report: Path, *args: str) -> tuple[int, dict[str, dict[str, Any]]]:
    """`tlsgate *args --json report`, a run that judges (exit code 0 or 1): its code and findings by rule."""
    run = tlsgate(*args, "--json", str(report))
    assert run.code in (0, 1), run.stdout + run.stderr
    return run.code, findings(report)


def scan(tlsgate: Callable[..., Any], target: str, report: Path, *args: str) -> tuple[int, dict[str, dict[str, Any]]]:
    """`tlsgate scan target *args` (3 s timeout), as ``judge``."""
    return judge(tlsgate, report, "scan", target, "--timeout", "3", *args)


def cert(tlsgate: Callable[..., Any], path: Path, report: Path, *args: str) -> tuple[int, dict[str, dict[str, Any]]]:
    """`tlsgate cert path *args`, as ``judge``."""
    return judge(tlsgate, report, "cert", str(path), *args)
