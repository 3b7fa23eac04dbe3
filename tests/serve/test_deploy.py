"""What ships in deploy/: the Prometheus rules pass promtool (syntax and their unit tests), and every query of the
rules and of the Grafana dashboard names only metrics tlsgate exposes (or the rules record)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from typing import Any

import pytest
import yaml

from scanner.serve.metrics import METRIC_NAMES
from scanner.serve.probe import PROBE_METRIC_NAMES
from tests.helpers import REPO

RULES = REPO / "deploy" / "prometheus" / "alerts.yml"
DASHBOARD = REPO / "deploy" / "grafana" / "tlsgate-dashboard.json"
NAME = re.compile(r"\btlsgate[_:][a-z0-9_:]*")
needs_promtool = pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool missing (Debian: prometheus)")


def _rules() -> list[dict[str, Any]]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def _recorded() -> set[str]:
    return {rule["record"] for rule in _rules() if "record" in rule}


def dashboard_queries() -> list[str]:
    """Every PromQL expression of the dashboard's panels."""
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


@needs_promtool
@pytest.mark.parametrize("command", [["check", "rules", "alerts.yml"], ["test", "rules", "alerts_test.yml"]])
def test_promtool_accepts_the_rules(command: list[str]) -> None:
    run = subprocess.run(["promtool", *command], cwd=RULES.parent, capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stdout + run.stderr


def test_rules_name_only_exposed_metrics() -> None:
    known = {*METRIC_NAMES, *PROBE_METRIC_NAMES, *_recorded()}
    used = {name for rule in _rules() for name in NAME.findall(rule["expr"])}
    assert used - known == set()
    alerts = {rule["alert"] for rule in _rules() if "alert" in rule}
    assert {"TlsgateCertificateExpiringSoon", "TlsgatePackFailing", "TlsgateTargetUnreachable"} <= alerts
    expiring = next(r for r in _rules() if r.get("alert") == "TlsgateCertificateExpiringSoon")
    assert "< 14" in expiring["expr"]


def test_dashboard_queries_name_only_exposed_metrics() -> None:
    """The dashboard stands alone (raw metrics, no recording rule needed) and covers what it promises."""
    queries = dashboard_queries()
    used = {name for query in queries for name in NAME.findall(query)}
    assert used and used - set(METRIC_NAMES) == set()
    assert {
        "tlsgate_certificate_expires_in_seconds", "tlsgate_pack_passed", "tlsgate_failed_rules",
        "tlsgate_protocol_accepted",
    } <= used  # fmt: skip
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["__inputs"][0]["name"] == "DS_PROMETHEUS"
    assert len({panel["id"] for panel in dashboard["panels"]}) == len(dashboard["panels"])
