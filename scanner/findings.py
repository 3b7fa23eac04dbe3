"""Findings: the judgement of one rule on one target's facts."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

Severity = Literal["critical", "high", "medium", "low", "info"]
SEVERITIES: tuple[str, ...] = get_args(Severity)  # most severe first
# A severity's place in SEVERITIES, most severe 0: what --fail-on compares and the reports sort by.
SEVERITY_RANK: dict[str, int] = {name: rank for rank, name in enumerate(SEVERITIES)}


class Status(StrEnum):
    passed = "pass"
    failed = "fail"
    error = "error"  # the facts the rule needs could not be observed: inconclusive, never a pass
    not_applicable = "not_applicable"
    waived = "waived"


class Finding(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    pack: str
    rule: str
    title: str
    severity: str
    status: Status
    message: str = Field(description="One line: what was observed against what the rule demands.")
    evidence: dict[str, Any] = Field(default_factory=dict)
    rationale: str = ""
    remediation: str = ""
    references: list[str] = Field(default_factory=list)
    baseline: bool = Field(
        default=False,
        description="A failure the --baseline already lists: still a failure, but not a new one, so it does not "
        "fail the run.",
    )
