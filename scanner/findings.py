"""Findings: the judgement of one rule on one target's facts."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer
from pydantic.json_schema import SkipJsonSchema

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


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class WaiverRecord(_Frozen):
    """The waiver that waived a finding, as the waivers file said it."""

    rule: str = Field(description="PACK/RULE-ID or RULE-ID; '*' matches any text, '?' one character.")
    target: str = Field(description="Pattern on the target as written (or its host:port); '*' and '?' as for rule.")
    reason: str
    owner: str
    expires: date = Field(description="The last day the waiver applies (UTC).")
    source: str = Field(description="FILE:LINE of the waiver.")


class Evidence(_Frozen):
    """What a rule looked at and what it found: the JSON object of a finding's ``evidence``.

    A key is present only when the engine recorded it; none is null except ``observed``, recorded as null when the
    fact had no value. The JSON therefore reads as it did when evidence was a free-form object.
    """

    fact: str | SkipJsonSchema[None] = Field(default=None, description="The dotted fact path the rule judges.")
    expected: Annotated[dict[str, Any], Field(min_length=1, max_length=1)] | SkipJsonSchema[None] = Field(
        default=None,
        description="The rule's constraint as the pack wrote it: {OPERATOR: ARGUMENT}.",
    )
    where: Any = Field(default=None, description="The rule's 'where' filter on list elements, as the pack wrote it.")
    unobserved: str | SkipJsonSchema[None] = Field(
        default=None, description="Why the fact (or a 'when' condition's fact) could not be observed."
    )
    when: dict[str, dict[str, Any]] | SkipJsonSchema[None] = Field(
        default=None, description="The 'when' condition that did not hold: {FACT or 'parameter NAME': {OPERATOR: ARG}}."
    )
    observed: Any = Field(
        default=None, description="The value judged: a single value, or a label per element of a list fact."
    )
    offending: list[Any] | SkipJsonSchema[None] = Field(
        default=None,
        description="The elements that broke a list rule (for require_any/require_all: the values missing).",
    )
    deployment: str | SkipJsonSchema[None] = Field(
        default=None,
        description="For a certificate rule on a server that serves several certificates: the deployments whose "
        "result decided the finding, by key and the start of the leaf's SHA-256 (e.g. 'RSA 2048 3f2a1b2c').",
    )
    waiver: WaiverRecord | SkipJsonSchema[None] = Field(
        default=None, description="The waiver that waived the finding (the same as its decision's)."
    )

    @property
    def operator(self) -> str | None:
        """The constraint's operator (``each``, ``min`` ...)."""
        return next(iter(self.expected)) if self.expected else None

    @property
    def argument(self) -> Any:
        """The constraint's argument as the pack wrote it."""
        return next(iter(self.expected.values())) if self.expected else None

    def recorded(self) -> dict[str, Any]:
        """The recorded keys and their values (the waiver as a mapping), as the engine and the gate wrote them."""
        return self.model_dump()

    # No return annotation: pydantic would publish the annotation as the schema (a free-form object) instead of
    # the fields. Leaving out what was not recorded keeps ``observed: null`` apart from "nothing observed".
    @model_serializer(mode="wrap")
    def _only_recorded(self, handler: SerializerFunctionWrapHandler):  # type: ignore[no-untyped-def]  # noqa: ANN202
        data = handler(self)
        return {name: value for name, value in data.items() if name in self.model_fields_set}


GateState = Literal["counted", "baseline", "below_fail_on", "waived"]


class Decision(_Frozen):
    """What the gate made of a failing, inconclusive or waived finding, decided once when the run was judged."""

    state: GateState = Field(
        description="counted: it decides the exit code (1 for a failure, 3 for an inconclusive rule); baseline: a "
        "failure the --baseline lists; below_fail_on: a failure or inconclusive rule below --fail-on; waived."
    )
    waiver: WaiverRecord | None = Field(
        default=None, description="For a waived finding, its waiver (none when the report did not record it)."
    )


class Finding(_Frozen):
    pack: str
    rule: str
    title: str
    severity: str
    status: Status
    message: str = Field(description="One line: what was observed against what the rule demands.")
    evidence: Evidence = Field(default_factory=Evidence)
    rationale: str = ""
    remediation: str = ""
    references: list[str] = Field(default_factory=list)
    section: str = Field(default="", description="Where in the pack's source document the rule comes from.")
    baseline: bool = Field(
        default=False,
        description="A failure the --baseline already lists: still a failure, but not a new one, so it does not "
        "fail the run.",
    )
    decision: Decision | None = Field(
        default=None, description="The gate's decision; none for a rule that passed or does not apply."
    )
