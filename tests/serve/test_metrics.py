"""The metrics of the latest scans: what each series says, which series a target that could not be scanned keeps,
bounded labels, the exposition formats, and LatestState read while it is written."""

from __future__ import annotations

import datetime as dt
import gzip
import shutil
import subprocess
import threading
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from scanner.certfiles import file_facts
from scanner.facts import CertificateDeployment, Facts, ProtocolSupport
from scanner.findings import Finding, Status
from scanner.report import TargetReport
from scanner.serve.metrics import METRIC_NAMES, LatestState, TargetCollector, exposition, registry_of
from tests.helpers import issue_certificate, protocol_facts, target_report

NOW = dt.datetime(2026, 12, 5, 9, 0, tzinfo=dt.UTC)
LABELS = {"target", "pack", "severity", "protocol", "key", "grade"}  # grade: one of ten letters


def _finding(pack: str, rule: str, severity: str, status: Status) -> Finding:
    return Finding(pack=pack, rule=rule, title=rule, severity=severity, status=status, message="m")


def _deployment(directory: Path, name: str, key_type: str, days: int) -> CertificateDeployment:
    issued = issue_certificate(directory, name, key_type=key_type, days=days)
    certificate = file_facts(issued.cert, issued.cert.read_bytes(), None).certificate
    return CertificateDeployment(offers=["default"], certificate=certificate)


@pytest.fixture(scope="module")
def dual_facts(tmp_path_factory: pytest.TempPathFactory) -> Facts:
    """A target that accepts TLS 1.2 and 1.3 (refusing the four older versions) and serves an RSA leaf expiring in
    10 days and an EC leaf in 60."""
    directory = tmp_path_factory.mktemp("metrics-pki")
    rsa = _deployment(directory, "rsa", "rsa2048", 10)
    ec = _deployment(directory, "ec", "p256", 60)
    facts = protocol_facts("www.example.net:443", ["TLSv1.2", "TLSv1.3"], NOW)
    refused = [ProtocolSupport(version=v, status="not_accepted") for v in ("SSLv2", "SSLv3", "TLSv1.0", "TLSv1.1")]
    return facts.model_copy(
        update={
            "protocols": refused + list(facts.protocols),
            "certificate": rsa.certificate,
            "certificate_deployments": [rsa, ec.model_copy(update={"offers": ["ecdsa"]})],
            "finished_at": NOW + dt.timedelta(seconds=2.5),
        }
    )


def _samples(
    targets: list[TargetReport], now: float | None = None
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    registry = registry_of(TargetCollector(lambda: targets, clock=lambda: now or NOW.timestamp()))
    body, _ = exposition(registry, None, None)
    found = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def _value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def test_a_scanned_target_has_every_series(dual_facts: Facts) -> None:
    """Scan time, success, pass per pack, failures by severity, not-after and remaining life per key, protocols
    accepted."""
    findings = [
        _finding("essentials", "E1", "high", Status.failed),
        _finding("essentials", "E2", "medium", Status.failed),
        _finding("essentials", "E3", "medium", Status.failed),
        _finding("essentials", "E4", "low", Status.passed),
        _finding("modern", "M1", "high", Status.passed),
    ]
    target = target_report(dual_facts, findings)
    samples = _samples([target])
    t = {"target": "www.example.net:443"}
    assert _value(samples, "tlsgate_last_scan_timestamp_seconds", **t) == NOW.timestamp() + 2.5
    assert _value(samples, "tlsgate_scan_success", **t) == 1
    assert _value(samples, "tlsgate_pack_passed", pack="essentials", **t) == 0
    assert _value(samples, "tlsgate_pack_passed", pack="modern", **t) == 1
    failed = {dict(labels)["severity"]: v for (name, labels), v in samples.items() if name == "tlsgate_failed_rules"}
    assert failed == {"high": 1, "medium": 2}  # a severity none failed at says nothing: left out
    for key, days in (("RSA", 10), ("EC", 60)):
        leaf = next(d.certificate.leaf for d in dual_facts.deployments() if d.certificate.leaf.public_key.type == key)  # type: ignore[union-attr]
        not_after = _value(samples, "tlsgate_certificate_not_after_timestamp_seconds", key=key, **t)
        assert not_after == leaf.not_after.timestamp()  # type: ignore[union-attr]
        remaining = _value(samples, "tlsgate_certificate_expires_in_seconds", key=key, **t)
        assert remaining == not_after - NOW.timestamp()
        # the leaf was issued a minute before the test, for ``days`` days: the series is the remaining life now
        now_remaining = _samples([target], now=dt.datetime.now(dt.UTC).timestamp())
        days_now = _value(now_remaining, "tlsgate_certificate_expires_in_seconds", key=key, **t) / 86400
        assert days - 0.01 < days_now <= days
    protocols = {
        dict(labels)["protocol"]: v for (name, labels), v in samples.items() if name == "tlsgate_protocol_accepted"
    }
    assert protocols == {"TLSv1.2": 1, "TLSv1.3": 1}  # the four refused versions are left out


def test_an_unreachable_target_keeps_only_its_scan_series() -> None:
    """A refused target: scan time and success 0; no verdict, certificate or protocol series (unknown, not 0)."""
    facts = protocol_facts("down.example.net:443", [], NOW, scanned=False)
    samples = _samples([target_report(facts, [])])
    assert {name for name, _ in samples} == {"tlsgate_last_scan_timestamp_seconds", "tlsgate_scan_success"}
    assert _value(samples, "tlsgate_scan_success", target="down.example.net:443") == 0


def test_pass_per_pack_follows_the_gate() -> None:
    """A failure below --fail-on, or in the baseline, still counts in failed_rules but does not fail its pack; an
    inconclusive rule that counts does."""
    facts = protocol_facts("a.example.net:443", ["TLSv1.3"], NOW)
    below = target_report(facts, [_finding("p", "R1", "low", Status.failed)], "below", fail_on="high")
    base = _finding("p", "R1", "high", Status.failed).model_copy(update={"baseline": True})
    baseline = target_report(facts, [base], "baseline")
    inconclusive = target_report(facts, [_finding("p", "R2", "high", Status.error)], "inconclusive")
    samples = _samples([below, baseline, inconclusive])
    assert _value(samples, "tlsgate_pack_passed", target="below", pack="p") == 1
    assert _value(samples, "tlsgate_failed_rules", target="below", severity="low") == 1
    assert _value(samples, "tlsgate_pack_passed", target="baseline", pack="p") == 1
    assert _value(samples, "tlsgate_failed_rules", target="baseline", severity="high") == 1
    assert _value(samples, "tlsgate_pack_passed", target="inconclusive", pack="p") == 0


def test_labels_are_bounded_and_names_prefixed(dual_facts: Facts) -> None:
    """Only the six bounded label names; every family is tlsgate_ and documented; no suite ever becomes a label."""
    registry = registry_of(
        TargetCollector(lambda: [target_report(dual_facts, [_finding("p", "R", "high", Status.failed)])])
    )
    families = list(registry.collect())
    assert {f.name for f in families} == set(METRIC_NAMES)
    for family in families:
        assert family.name.startswith("tlsgate_") and family.documentation
        for sample in family.samples:
            assert set(sample.labels) <= LABELS, sample
    keys = {s.labels["key"] for f in families for s in f.samples if "key" in s.labels}
    assert keys == {"RSA", "EC"}


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed (Debian package prometheus)")
def test_exposition_passes_promtool_check_metrics(dual_facts: Facts) -> None:
    """Prometheus's own linter accepts the names, units, HELP and TYPE of every family."""
    findings = [_finding("p", "R", "high", Status.failed)]
    registry = registry_of(TargetCollector(lambda: [target_report(dual_facts, findings)]))
    body, _ = exposition(registry, None, None)
    assert body.count(b"# TYPE ") == len(METRIC_NAMES)  # every family has series here
    check = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True, check=False)
    assert check.returncode == 0, check.stdout + check.stderr


def test_openmetrics_and_gzip_when_the_scraper_asks(dual_facts: Facts) -> None:
    registry = registry_of(TargetCollector(lambda: [target_report(dual_facts, [])]))
    plain, headers = exposition(registry, "text/plain", None)
    assert headers == {"Content-Type": "text/plain; version=0.0.4; charset=utf-8"}
    body, headers = exposition(registry, "application/openmetrics-text; version=1.0.0", "gzip, deflate")
    assert headers["Content-Type"].startswith("application/openmetrics-text")
    assert headers["Content-Encoding"] == "gzip"
    text = gzip.decompress(body).decode()
    assert text.endswith("# EOF\n") and "tlsgate_scan_success{" in text
    assert len(body) < len(plain)


def test_latest_state_is_read_while_written() -> None:
    """Scrapes while four threads replace targets: each scrape sees whole reports; the last report of each wins;
    forget ends a target's series."""
    state = LatestState()
    stop = threading.Event()

    def writer(n: int) -> None:
        for round_ in range(200):
            at = NOW + dt.timedelta(seconds=round_)
            state.update(
                [target_report(protocol_facts(f"t{n}-{i}.example:443", ["TLSv1.3"], at), []) for i in range(5)]
            )

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    scrapes = 0
    collector = TargetCollector(state.snapshot)
    while any(t.is_alive() for t in threads) or scrapes == 0:
        families = {f.name: f for f in collector.collect()}
        assert len(families["tlsgate_scan_success"].samples) == len(
            families["tlsgate_last_scan_timestamp_seconds"].samples
        )
        scrapes += 1
    stop.set()
    final = state.snapshot()
    assert len(final) == 20
    assert {t.facts.finished_at for t in final} == {NOW + dt.timedelta(seconds=199)}
    state.forget(["t0-0.example:443"])
    assert len(state.snapshot()) == 19
