"""Findings' typed evidence: its JSON is the record the engine made, key for key, and it reads back as it was."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from scanner.findings import SEVERITIES, SEVERITY_RANK, Evidence, Finding, Status


def _finding(evidence: Evidence) -> Finding:
    return Finding(pack="p", rule="R", title="t", severity="high", status=Status.failed, message="m", evidence=evidence)


@pytest.mark.parametrize(
    "recorded",
    [
        {},
        {"fact": "protocols", "expected": {"each": {"version": "TLSv1.3"}}, "where": {"status": "accepted"},
         "observed": ["TLSv1.2"], "offending": [{"version": "TLSv1.2"}]},
        {"fact": "certificate.leaf.ocsp_url", "expected": {"exists": True}, "observed": None},
        {"fact": "protocols", "expected": {"none": {"version": "SSLv3"}}, "unobserved": "connection refused"},
        {"fact": "sessions.ticket_lifetime", "expected": {"max": 300}, "when": {"parameter strict": {"equals": True}}},
    ],
)  # fmt: skip
def test_the_json_keeps_exactly_the_keys_recorded(recorded: dict[str, object]) -> None:
    """Absent keys stay absent and ``observed: null`` stays null, in the engine's key order; it reads back equal."""
    evidence = Evidence.model_validate(recorded)
    assert evidence.recorded() == recorded
    text = _finding(evidence).model_dump_json()
    assert list(json.loads(text)["evidence"].items()) == list(recorded.items())
    assert Finding.model_validate_json(text).evidence == evidence


def test_the_constraint_is_one_operator_and_its_argument() -> None:
    evidence = Evidence(fact="protocols", expected={"only": ["TLSv1.3"]})
    assert (evidence.operator, evidence.argument) == ("only", ["TLSv1.3"])
    assert (Evidence().operator, Evidence().argument) == (None, None)
    with pytest.raises(ValidationError):
        Evidence(expected={"min": 1, "max": 2})
    with pytest.raises(ValidationError):
        Evidence(expected={})


def test_a_key_the_engine_never_writes_is_refused() -> None:
    with pytest.raises(ValidationError, match="error_class"):
        Evidence.model_validate({"error_class": "dns"})


def test_severities_most_severe_first() -> None:
    assert SEVERITIES == ("critical", "high", "medium", "low", "info")
    assert [SEVERITY_RANK[s] for s in SEVERITIES] == [0, 1, 2, 3, 4]
