"""Prometheus metrics of the latest scan of each target, built at scrape time by a custom collector.

``LatestState`` holds the latest ``TargetReport`` per target (a scan, ``watch`` or a saved report updates it, from
any thread); ``TargetCollector`` turns it into metric families whenever Prometheus scrapes. Label cardinality is
bounded by design: the only labels are ``target``, ``pack``, ``severity``, ``protocol`` (six versions at most) and
``key`` (the certificate's key type, six values at most) — never a cipher suite, a subject or any free text.

A target that could not be scanned keeps its scan metrics (``tlsgate_scan_success`` 0) and loses the others: a
verdict, a certificate or a protocol that was not observed is absent, not zero. Zeros that say nothing are left
out too — a severity no rule failed at, a protocol version refused — which keeps 1,000 targets under 1 MB (about
ten series a target; bench/metrics.py).

Units are base units, as Prometheus's naming rules (and ``promtool check metrics``) want: a certificate's remaining
life is ``tlsgate_certificate_expires_in_seconds``; the days remaining are that over 86400, which the recording
rule ``tlsgate:certificate_days_remaining`` in deploy/prometheus/alerts.yml names for dashboards and alerts.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder, gzip_accepted
from prometheus_client.registry import Collector

from scanner.facts import Facts
from scanner.findings import SEVERITIES, Finding, Status
from scanner.report import Report, TargetReport

PREFIX = "tlsgate_"


class LatestState:
    """The latest report of each target, by its label; updated by whoever scans, read at every scrape."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._targets: dict[str, TargetReport] = {}

    def update(self, targets: Iterable[TargetReport]) -> None:
        """Each target's report replaces the one it had (a target is known by its label, ``TargetReport.target``)."""
        with self._lock:
            for target in targets:
                self._targets[target.target] = target

    def update_report(self, report: Report) -> None:
        self.update(report.targets)

    def forget(self, labels: Iterable[str]) -> None:
        """Drop targets (gone from the inventory): their series end instead of lingering at their last value."""
        with self._lock:
            for label in labels:
                self._targets.pop(label, None)

    def snapshot(self) -> list[TargetReport]:
        """The reports as they are now, in label order; reports are frozen, so the list can be read unlocked."""
        with self._lock:
            return [self._targets[label] for label in sorted(self._targets)]


def _timestamp(at: datetime) -> float:
    return at.timestamp()


def pack_passed(findings: Sequence[Finding], pack: str) -> bool:
    """Whether a pack passed on a target as the gate counts it: no counted failure and no counted inconclusive
    rule. A failure in the baseline, waived or below --fail-on does not fail it (the decision is the gate's)."""
    for finding in findings:
        if finding.pack != pack or finding.status not in {Status.failed, Status.error}:
            continue
        if finding.decision is None or finding.decision.state == "counted":
            return False
    return True


def _packs(target: TargetReport, packs: Sequence[str]) -> list[str]:
    """The packs that judged the target: those its findings name, else (no rule applied) the run's."""
    named = list(dict.fromkeys(f.pack for f in target.findings))
    return named or list(packs)


def _certificates(facts: Facts) -> dict[str, datetime]:
    """Not-after per key type of the certificates the server serves (one per deployment): with two leaves of
    one key type, the one that expires first."""
    found: dict[str, datetime] = {}
    for deployment in facts.deployments():
        leaf = deployment.certificate.leaf
        if leaf is None:
            continue
        key = leaf.public_key.type
        if key not in found or leaf.not_after < found[key]:
            found[key] = leaf.not_after
    return found


class _Families:
    """The metric families of one scrape, filled target by target."""

    def __init__(self) -> None:
        def gauge(name: str, documentation: str, labels: Sequence[str]) -> GaugeMetricFamily:
            return GaugeMetricFamily(PREFIX + name, documentation, labels=list(labels))

        self.last_scan = gauge(
            "last_scan_timestamp_seconds", "When the latest scan of the target finished (seconds since the epoch).",
            ["target"],
        )  # fmt: skip
        self.success = gauge(
            "scan_success", "1 if the latest scan reached the target and completed a TLS handshake, else 0.", ["target"]
        )
        self.pack_passed = gauge(
            "pack_passed",
            "1 if the pack passed on the target in the latest scan (no counted failure, no counted inconclusive "
            "rule), 0 if not; absent when the target could not be scanned.",
            ["target", "pack"],
        )
        self.failed = gauge(
            "failed_rules",
            "Rules that failed on the target in the latest scan, by severity; absent for a severity none failed at.",
            ["target", "severity"],
        )
        self.not_after = gauge(
            "certificate_not_after_timestamp_seconds",
            "Not-after of the leaf certificate the target serves, per key type (seconds since the epoch).",
            ["target", "key"],
        )
        self.remaining = gauge(
            "certificate_expires_in_seconds",
            "Seconds from the scrape until the leaf certificate the target serves expires, per key type (negative: "
            "expired); divided by 86400, the days remaining.",
            ["target", "key"],
        )
        self.protocol = gauge(
            "protocol_accepted",
            "1 for each protocol version the target accepted in the latest scan; absent for a version it refused or "
            "that could not be probed.",
            ["target", "protocol"],
        )
        self.grade_score = gauge(
            "grade_score",
            "The target's SSL Labs-style score, 0-100, from the latest scan (docs/grade.md); absent when not graded.",
            ["target"],
        )
        self.grade = gauge(
            "grade",
            "1 for the target's grade in the latest scan (A+, A, A-, B, C, D, E, F; T not trusted, M name "
            "mismatch); absent when not graded.",
            ["target", "grade"],
        )

    def add(self, target: TargetReport, packs: Sequence[str], now: float) -> None:
        facts = target.facts
        label = target.target
        self.last_scan.add_metric([label], _timestamp(facts.finished_at))
        scanned = facts.status == "ok"
        self.success.add_metric([label], 1.0 if scanned else 0.0)
        if not scanned:
            return
        for pack in _packs(target, packs):
            self.pack_passed.add_metric([label, pack], 1.0 if pack_passed(target.findings, pack) else 0.0)
        counts = dict.fromkeys(SEVERITIES, 0)
        for finding in target.findings:
            if finding.status == Status.failed and finding.severity in counts:
                counts[finding.severity] += 1
        for severity, count in counts.items():
            if count:
                self.failed.add_metric([label, severity], float(count))
        for key, not_after in sorted(_certificates(facts).items()):
            expires = _timestamp(not_after)
            self.not_after.add_metric([label, key], expires)
            self.remaining.add_metric([label, key], expires - now)
        for version in facts.accepted_versions():
            self.protocol.add_metric([label, str(version)], 1.0)
        if target.grading is not None:
            self.grade_score.add_metric([label], float(target.grading.score))
            self.grade.add_metric([label, target.grading.grade], 1.0)

    def all(self) -> list[Metric]:
        return [
            self.last_scan, self.success, self.pack_passed, self.failed, self.not_after,
            self.remaining, self.protocol, self.grade_score, self.grade,
        ]  # fmt: skip


METRIC_NAMES: tuple[str, ...] = tuple(family.name for family in _Families().all())


class TargetCollector(Collector):
    """The metric families of ``targets()`` (called at every scrape); ``packs`` names the packs a target with no
    finding at all was judged by."""

    def __init__(
        self,
        targets: Callable[[], Sequence[TargetReport]],
        packs: Sequence[str] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._targets = targets
        self._packs = tuple(packs)
        self._clock = clock

    def collect(self) -> Iterator[Metric]:
        families = _Families()
        now = self._clock()
        for target in self._targets():
            families.add(target, self._packs, now)
        yield from families.all()


def registry_of(collector: Collector) -> CollectorRegistry:
    """A registry of ``collector`` alone: none of the client library's process or platform metrics."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry


def exposition(
    registry: CollectorRegistry, accept: str | None, accept_encoding: str | None
) -> tuple[bytes, dict[str, str]]:
    """The registry in the format the scraper accepts (Prometheus text, or OpenMetrics when asked), gzipped when it
    accepts gzip; with the response headers to send."""
    import gzip  # noqa: PLC0415 - only a scrape needs it

    encoder, content_type = choose_encoder(accept or "")
    body = encoder(registry)
    headers = {"Content-Type": content_type}
    if gzip_accepted(accept_encoding or ""):
        body = gzip.compress(body, compresslevel=1)
        headers["Content-Encoding"] = "gzip"
    return body, headers
