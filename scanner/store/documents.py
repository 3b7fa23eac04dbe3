"""The JSON documents of ``tlsgate history`` and ``tlsgate expiring``: pydantic models, so their schemas are
generated (reports/schema/history.schema.json, expiring.schema.json) like the report's."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class HistoryRun(_Frozen):
    id: int
    started: datetime
    finished: datetime | None = Field(description="None while running, or for a run killed before its end.")
    status: Literal["running", "finished", "interrupted"]
    command: str = Field(description="scan, evaluate or cert.")
    version: str = Field(description="The tlsgate version that made the run.")
    targets: int = Field(description="Targets recorded (those that finished, for an interrupted run).")


class TimelinePoint(_Frozen):
    run: int
    at: datetime = Field(description="When the target's scan finished.")
    verdict: Literal["pass", "fail", "error"]
    gate_verdict: Literal["pass", "fail", "error"]
    grade: str | None = None
    error_class: str | None = Field(default=None, description="Why the target could not be scanned, if it was not.")
    certificate: str | None = Field(default=None, description="SHA-256 of the leaf certificate served.")
    issuer: str | None = None
    not_after: datetime | None = None
    failed_rules: list[str] = Field(default_factory=list, description="pack/RULE-ID of every failed finding.")


class TargetTimeline(_Frozen):
    target: str
    timeline: list[TimelinePoint]


class HistoryDocument(_Frozen):
    schema_version: Literal["1"] = "1"
    runs: list[HistoryRun] = Field(description="Newest first.")
    targets: list[TargetTimeline] = Field(description="Each target's runs, oldest first.")


class ExpiringCertificate(_Frozen):
    target: str
    run: int = Field(description="The target's latest run, whose certificates these are.")
    leaf: bool
    sha256: str
    subject: str
    issuer: str
    not_after: datetime
    days_remaining: float = Field(description="Negative when already expired.")


class ExpiringDocument(_Frozen):
    schema_version: Literal["1"] = "1"
    within_days: float
    certificates: list[ExpiringCertificate] = Field(description="Soonest first.")


def _schema(model: type[BaseModel], name: str) -> dict[str, Any]:
    schema = model.model_json_schema(mode="serialization")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://tlsgate.dev/schema/{name}-1.json"
    return schema


def history_schema() -> dict[str, Any]:
    return _schema(HistoryDocument, "history")


def expiring_schema() -> dict[str, Any]:
    return _schema(ExpiringDocument, "expiring")
