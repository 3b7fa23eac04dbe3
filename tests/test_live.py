"""The progress bar's time left (scanner.live.TimeLeft): a calculation over the times passed in, so each case
states its clock; none of these tests waits."""

from __future__ import annotations

import datetime as dt

import pytest

from scanner.live import TimeLeft, clock_text
from scanner.report import TargetReport
from tests.helpers import protocol_facts, target_report

T0 = dt.datetime(2026, 12, 5, 12, 0, tzinfo=dt.UTC)


def _took(seconds: float, name: str = "a.example:443") -> TargetReport:
    """A finished target whose probing took ``seconds``."""
    facts = protocol_facts(name, ["TLSv1.3"], T0)
    facts = facts.model_copy(update={"finished_at": T0 + dt.timedelta(seconds=seconds)})
    return target_report(facts, [])


def test_unknown_until_a_target_has_finished_then_zero_when_all_have():
    timing = TimeLeft(concurrency=4, timeout=5)
    timing.planned(2, 0, now=100.0)
    assert timing.left(100.5) is None
    timing.finished(_took(1), now=101.0)
    timing.finished(_took(1), now=101.0)
    assert timing.left(101.0) == 0.0


def test_the_last_target_waiting_on_its_timeout_does_not_sit_at_one_second():
    """Three of four targets took 1 s; the fourth is still waiting on its 5 s timeout. Rich's rate (3 done in 1 s)
    would say 0:00:01 for as long as it waits; here it is taken to be waiting on one timeout, counting down, and
    once past that, unknown (a dash), never a still "0:00:01"."""
    timing = TimeLeft(concurrency=4, timeout=5)
    timing.planned(4, 0, now=0.0)
    for _ in range(3):
        timing.finished(_took(1), now=1.0)
    assert timing.left(1.0) == pytest.approx(0.0)  # on time so far: the mean is 1 s, it has run 1 s
    assert timing.left(1.5) == pytest.approx(4.5)  # past the mean: one timeout from the mean
    assert timing.left(4.0) == pytest.approx(2.0)
    assert timing.left(6.5) is None  # past the mean and a timeout: nothing known bounds it
    assert clock_text(timing.left(6.5)) == "—"


def test_a_target_time_limit_bounds_a_target_past_every_expectation():
    timing = TimeLeft(concurrency=4, timeout=5, target_time=20)
    timing.planned(4, 0, now=0.0)
    for _ in range(3):
        timing.finished(_took(1), now=1.0)
    assert timing.left(1.5) == pytest.approx(4.5)
    assert timing.left(8.0) == pytest.approx(12.0)  # reported by the 20 s limit at the latest
    assert timing.left(25.0) == pytest.approx(0.0)


def test_waiting_targets_are_spread_over_the_slots():
    """10 targets, 2 at a time, each 2 s: after the first two, 8 are left (2 just started): 8 x 2 s / 2 slots."""
    timing = TimeLeft(concurrency=2, timeout=5)
    timing.planned(10, 0, now=0.0)
    timing.finished(_took(2), now=2.0)
    timing.finished(_took(2), now=2.0)
    assert timing.left(2.0) == pytest.approx(8.0)
    assert timing.left(3.0) == pytest.approx(7.0)  # the two in flight have 1 s each left, 6 wait: (1 + 1 + 12) / 2


def test_the_run_s_time_budget_caps_the_estimate():
    timing = TimeLeft(concurrency=1, timeout=5, time_budget=10)
    timing.planned(100, 0, now=0.0)
    timing.finished(_took(2), now=2.0)
    assert timing.left(2.0) == pytest.approx(8.0)  # 99 x 2 s, but the budget ends the run 8 s from now


def test_targets_kept_by_resume_are_not_timed():
    """Kept targets come first and took no time now: they neither count as in flight nor set the mean."""
    timing = TimeLeft(concurrency=2, timeout=5)
    timing.planned(4, 2, now=0.0)
    timing.finished(_took(60), now=0.0)
    timing.finished(_took(60), now=0.0)
    assert timing.left(0.5) is None
    timing.finished(_took(3), now=3.0)
    assert timing.left(3.0) == pytest.approx(0.0)
    timing.finished(_took(3), now=3.0)
    assert timing.left(3.0) == 0.0


def test_a_fast_target_finishing_first_leaves_the_slow_one_in_flight():
    """Which target finished is told by its duration: a target started late that finishes first leaves the one
    that started early in flight, with its own running time."""
    timing = TimeLeft(concurrency=2, timeout=100)
    timing.planned(3, 0, now=0.0)
    timing.finished(_took(1), now=1.0)  # one of the first two; the third starts now
    timing.finished(_took(1), now=2.0)  # the third (started at 1 s): the other first one runs on since 0 s
    assert timing.left(2.0) == pytest.approx(100 + 1 - 2.0)  # past the 1 s mean: one timeout from the mean


@pytest.mark.parametrize(
    ("seconds", "text"), [(None, "—"), (0.0, "0:00:00"), (0.2, "0:00:01"), (59.5, "0:01:00"), (3725, "1:02:05")]
)
def test_clock_text(seconds, text):
    assert clock_text(seconds) == text
