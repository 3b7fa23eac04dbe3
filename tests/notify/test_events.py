"""Events derived from reports built in memory: findings, drift, unreachable streaks, once and only once."""

from __future__ import annotations

import itertools
import json
from datetime import datetime, timedelta

import jsonschema
import pytest

from scanner.facts import Certificate, CertificateFacts, PublicKey, TrustResult
from scanner.findings import Status
from scanner.notify.events import Event, events_between
from scanner.notify.state import JsonFileState, MemoryState, NotifyState, StateFileError
from scanner.report import Report, TargetReport
from scanner.schemas import schema_dir
from tests.helpers import target_report
from tests.test_diff import CBC, GCM, START, TLS13, _protocols, facts, finding, report


def run(n: int, *targets: TargetReport) -> Report:
    """The n-th run (an hour apart) of the given targets."""
    at = START + timedelta(hours=n)
    return report(*targets).model_copy(update={"started_at": at, "finished_at": at + timedelta(seconds=5)})


def kinds(events: list[Event]) -> list[tuple[str, str]]:
    return [(e.kind, e.target) for e in events]


def deliver_all(events: list[Event], state: NotifyState) -> list[Event]:
    """What a channel that takes everything does to the state."""
    for event in events:
        state.mark(event.key)
    return events


def test_first_run_every_failure_is_new():
    """No previous report: each failing rule is a new failure (with the rule's severity and the target's tags);
    passing, waived and inconclusive rules are not."""
    findings = [finding("weak", Status.failed), finding("ok", Status.passed), finding("w", Status.waived),
                finding("e", Status.error)]  # fmt: skip
    events = events_between(None, run(0, target_report(facts(), findings)), MemoryState(), tags={"a.test:443": ["web"]})
    (event,) = events
    assert (event.kind, event.rule, event.severity, event.tags, event.pack) == ("new_failure", "weak", "high",
                                                                                ["web"], "p")  # fmt: skip
    assert event.summary == 'a.test:443: p/weak "title weak" fails'
    schema = json.loads((schema_dir() / "event.schema.json").read_text())
    jsonschema.validate(json.loads(event.model_dump_json()), schema)


def test_new_and_fixed_failures_but_not_those_still_failing():
    """Between two runs: a rule that starts failing is new, one that passes again is fixed, one failing in both
    is no news."""
    before = run(0, target_report(facts(), [finding("a", Status.failed), finding("b", Status.failed),
                                            finding("c", Status.passed)]))  # fmt: skip
    after = run(1, target_report(facts(), [finding("a", Status.passed), finding("b", Status.failed),
                                           finding("c", Status.failed)]))  # fmt: skip
    events = events_between(before, after, MemoryState())
    assert [(e.kind, e.rule) for e in events] == [("fixed_failure", "a"), ("new_failure", "c")]
    assert events[0].severity == "info" and events[1].severity == "high"


def test_drift_protocols_suites_and_trust():
    """TLS 1.3 enabled, a CBC suite added to TLS 1.2, and trust lost: one event each, naming what changed."""
    trusted = CertificateFacts(status="ok", trust=[TrustResult(store="mozilla", trusted=True)])
    lost = CertificateFacts(status="ok", trust=[TrustResult(store="mozilla", trusted=False, reason="unknown_issuer")])
    before = run(0, target_report(facts(protocols=_protocols({"TLSv1.2": [GCM]}), certificate=trusted), []))
    after = run(1, target_report(facts(protocols=_protocols({"TLSv1.2": [GCM, CBC], "TLSv1.3": [TLS13]}),
                                       certificate=lost), []))  # fmt: skip
    events = events_between(before, after, MemoryState())
    assert [(e.kind, e.protocol, e.suites, e.trust_store) for e in events] == [
        ("protocol_added", "TLSv1.3", [], None),
        ("suite_added", "TLSv1.2", ["TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"], None),
        ("trust_changed", None, [], "mozilla"),
    ]
    assert events[2].summary == "a.test:443: no longer trusted by mozilla (unknown_issuer)"
    assert events[2].severity == "high" and (events[2].before, events[2].after) == ("true", "false")


def test_unreachable_after_n_runs_once_and_back_again(tmp_path):
    """With N=2: one refused run is quiet; the second raises target_unreachable (once, however often the run is
    derived and however long it stays down, across restarts); the first run up again says it is back, once."""
    path = tmp_path / "state.json"
    up, down = target_report(facts(), []), target_report(facts(down=True), [])
    runs = [run(0, up), run(1, down), run(2, down), run(3, down), run(4, up), run(5, up)]
    seen: list[list[tuple[str, str]]] = []
    for before, after in itertools.pairwise(runs):
        for _ in range(2):  # derived twice, as after a crash before delivery: counted once
            events = events_between(before, after, JsonFileState(path), unreachable_after=2)
        seen.append(kinds(deliver_all(events, JsonFileState(path))))
    assert seen == [[], [("target_unreachable", "a.test:443")], [], [("target_reachable", "a.test:443")], []]
    state = JsonFileState(path)
    assert state.streak("a.test:443/a.test/-").count == 0


def test_unreachable_event_carries_the_count_and_error():
    """The event says how many runs and why (the error class)."""
    down = target_report(facts(down=True), [])
    (event,) = events_between(None, run(0, down), MemoryState(), unreachable_after=1)
    assert (event.kind, event.unreachable_runs, event.error, event.severity) == ("target_unreachable", 1, "refused",
                                                                                 "high")  # fmt: skip


def certificate(sha: str, not_after: datetime) -> CertificateFacts:
    key = PublicKey(type="RSA", size=2048)
    leaf = Certificate(subject="CN=a.test", issuer="CN=CA", serial="01", sha256=sha, public_key=key, self_signed=False,
                       signature_algorithm="sha256WithRSAEncryption", signature_hash="sha256",
                       not_before=not_after - timedelta(days=90), not_after=not_after, validity_days=90)  # fmt: skip
    return CertificateFacts(status="ok", leaf=leaf)


def test_each_expiry_threshold_once_per_certificate(tmp_path):
    """A leaf expiring 40 days after the first run: 30, 14, 7 and 1 days each sent once, the smallest threshold
    reached only (27 days left, after 28: nothing new), also once expired; two targets serving it give one event;
    its successor, first seen 5 days before it expires, gets 7 and not 30 or 14."""
    path = tmp_path / "state.json"
    expires = START + timedelta(days=40)
    old, new = certificate("aa" * 32, expires), certificate("bb" * 32, START + timedelta(days=46))

    def at(days: float, cert: CertificateFacts) -> Report:
        targets = [target_report(facts(host, certificate=cert), []) for host in ("a.test", "b.test")]
        moment = START + timedelta(days=days)
        return run(0, *targets).model_copy(update={"started_at": moment, "finished_at": moment})

    sent = []
    previous = None
    for days, cert in [(5, old), (12, old), (13, old), (27, old), (33.5, old), (35, old), (40.5, old), (41, new),
                       (42, new)]:  # fmt: skip
        report_at = at(days, cert)
        events = deliver_all(events_between(previous, report_at, JsonFileState(path)), JsonFileState(path))
        sent += [(days, e.threshold_days, e.after[:2] if e.after else None) for e in events
                 if e.kind == "certificate_expiring"]  # fmt: skip
        previous = report_at
    assert sent == [(12, 30, "aa"), (27, 14, "aa"), (33.5, 7, "aa"), (40.5, 1, "aa"), (41, 7, "bb")]


def test_a_target_added_since_the_last_run_reports_its_failures():
    """A target not in the last report is seen for the first time: its failures are new."""
    before = run(0, target_report(facts(), []))
    after = run(1, target_report(facts(), []), target_report(facts("b.test"), [finding("weak", Status.failed)]))
    assert kinds(events_between(before, after, MemoryState())) == [("new_failure", "b.test:443")]


def test_a_broken_state_file_is_one_line(tmp_path):
    """A state file that is not one (truncated, or another JSON) is refused with one line naming it."""
    path = tmp_path / "state.json"
    for text in ('{"delivered": ["a"', '{"delivered": 3}', "[]"):
        path.write_text(text)
        with pytest.raises(StateFileError, match=r"state.json: cannot read the notification state: not a tlsgate"):
            JsonFileState(path)
