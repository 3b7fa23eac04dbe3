"""Exit codes: one small pure function from verdicts to a code, so a pipeline can tell
"policy violated" from "could not check"."""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum

from scanner.report import Verdict


class ExitCode(IntEnum):
    OK = 0  # every rule passed on every target
    POLICY_FAILED = 1  # at least one rule failed
    USAGE = 2  # bad option, bad target, unknown or invalid rule pack: nothing was scanned
    NOT_CHECKED = 3  # no rule failed, but a target could not be scanned or a rule was inconclusive
    OUTPUT_FAILED = 4  # a report could not be written
    INTERNAL = 5  # a bug in tlsgate; the message says what broke
    INTERRUPTED = 130  # stopped by Ctrl-C


EXIT_CODE_HELP = """Exit codes:
  0  every rule passed on every target
  1  at least one rule failed (policy violated)
  2  usage error: bad option or target, unknown or invalid rule pack
  3  could not check: a target could not be scanned, or a rule was
     inconclusive, and no rule failed
  4  a report could not be written
  5  internal error in tlsgate
  130 interrupted"""


def exit_code(verdicts: Iterable[Verdict]) -> ExitCode:
    """A violation outranks "could not check": retrying cannot clear it, so it is the actionable result."""
    seen = set(verdicts)
    if "fail" in seen:
        return ExitCode.POLICY_FAILED
    if "error" in seen:
        return ExitCode.NOT_CHECKED
    return ExitCode.OK
