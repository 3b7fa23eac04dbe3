"""The exit code is a pure function of the targets' verdicts."""

from __future__ import annotations

import pytest

from scanner.exitcodes import ExitCode, exit_code


@pytest.mark.parametrize(
    ("verdicts", "code"),
    [
        ([], ExitCode.OK),
        (["pass"], ExitCode.OK),
        (["pass", "pass"], ExitCode.OK),
        (["fail"], ExitCode.POLICY_FAILED),
        (["pass", "fail"], ExitCode.POLICY_FAILED),
        (["error"], ExitCode.NOT_CHECKED),
        (["pass", "error"], ExitCode.NOT_CHECKED),
        (["error", "fail"], ExitCode.POLICY_FAILED),
    ],
)
def test_exit_code_table(verdicts, code):
    """Violations outrank 'could not check', which outranks a clean pass."""
    assert exit_code(verdicts) == code


def test_codes_are_distinct():
    """Every outcome a pipeline may need to tell apart has its own code."""
    values = [c.value for c in ExitCode]
    assert len(values) == len(set(values))
    assert ExitCode.POLICY_FAILED != ExitCode.NOT_CHECKED != ExitCode.USAGE
