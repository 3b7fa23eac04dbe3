"""A real Prometheus (Debian's package) scrapes tlsgate serve — /metrics seeded from a real scan of loopback servers,
and /probe blackbox-style — with deploy/prometheus/alerts.yml loaded; its HTTP API then answers with the expected
days-remaining and verdict series, the alerts, and data for every dashboard query."""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import free_port, issue_certificate, openssl_server, run_tlsgate, server_process
from tests.serve.serving import tlsgate_serve
from tests.serve.test_deploy import RULES, dashboard_queries

EXPIRING = "TlsgateCertificateExpiringSoon"
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
pytestmark = pytest.mark.skipif(
    not Path(PROMETHEUS).exists(), reason="prometheus is not installed (tools/install-test-servers.sh)"
)


@contextlib.contextmanager
def prometheus(directory: Path, serve_port: int, probe_target: str) -> Iterator[str]:
    """Prometheus on a free loopback port scraping serve's /metrics and /probe every second; yields its URL."""
    shutil.copy(RULES, directory / "alerts.yml")
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s"},
        "rule_files": [str(directory / "alerts.yml")],
        "scrape_configs": [
            {"job_name": "tlsgate", "static_configs": [{"targets": [f"127.0.0.1:{serve_port}"]}]},
            {
                "job_name": "tlsgate-probe",
                "metrics_path": "/probe",
                "params": {"pack": ["essentials"]},
                "scrape_interval": "5s",
                "scrape_timeout": "5s",
                "static_configs": [{"targets": [probe_target]}],
                "relabel_configs": [
                    {"source_labels": ["__address__"], "target_label": "__param_target"},
                    {"source_labels": ["__param_target"], "target_label": "instance"},
                    {"target_label": "__address__", "replacement": f"127.0.0.1:{serve_port}"},
                ],
            },
        ],
    }
    (directory / "prometheus.yml").write_text(json.dumps(config))  # JSON is YAML
    port = free_port()
    command = [
        PROMETHEUS, f"--config.file={directory / 'prometheus.yml'}", f"--storage.tsdb.path={directory / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn",
    ]  # fmt: skip
    with server_process(command, port, "prometheus"):
        yield f"http://127.0.0.1:{port}"


def query(url: str, expr: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{url}/api/v1/query", params={"query": expr}, timeout=10)
    body = response.json()
    assert body["status"] == "success", (expr, body)
    return list(body["data"]["result"])


def wait_for(url: str, expr: str, count: int, seconds: float = 20) -> list[dict[str, Any]]:
    """The query's result once it has ``count`` series (Prometheus scrapes and evaluates every second)."""
    deadline = time.monotonic() + seconds
    while True:
        result = query(url, expr)
        if len(result) >= count or time.monotonic() > deadline:
            return result
        time.sleep(0.25)


def _values(result: list[dict[str, Any]], *labels: str) -> dict[tuple[str, ...], float]:
    return {tuple(r["metric"].get(name, "") for name in labels): float(r["value"][1]) for r in result}


def test_prometheus_scrapes_metrics_and_probes(tmp_path: Path) -> None:
    """An RSA certificate with 10 days left and an ECDSA one with 60 on one server (openssl -dcert), and a target
    that refuses: scanned by tlsgate scan, seeded into serve, scraped by Prometheus."""
    rsa = issue_certificate(tmp_path, "rsa-10d", key_type="rsa2048", days=10)
    ec = issue_certificate(tmp_path, "ec-60d", key_type="p256", days=60)
    trust = ["--ca-file", str(rsa.ca), "--ca-file", str(ec.ca)]
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        down = f"127.0.0.1:{closed.getsockname()[1]}"  # bound, never listening: refused
        with openssl_server(rsa.cert, rsa.key, "-dcert", str(ec.cert), "-dkey", str(ec.key)) as port:
            dual = f"127.0.0.1:{port}"
            report_path = tmp_path / "report.json"
            scan = run_tlsgate("scan", dual, down, *trust, "--json", str(report_path), "--timeout", "3", "-q")
            assert report_path.exists(), scan.stderr
            report = json.loads(report_path.read_text())
            with (
                tlsgate_serve(tmp_path, "--from-report", str(report_path), "--allow", "127.0.0.1", *trust) as serving,
                prometheus(tmp_path, serving.port, dual) as url,
            ):
                _check(url, report, dual, down)


def _check(url: str, report: dict[str, Any], dual: str, down: str) -> None:
    days = _values(wait_for(url, 'tlsgate:certificate_days_remaining{job="tlsgate"}', 2), "target", "key")
    assert set(days) == {(dual, "RSA"), (dual, "EC")}
    assert 9.9 < days[(dual, "RSA")] <= 10
    assert 59.9 < days[(dual, "EC")] <= 60
    scanned = _values(query(url, 'tlsgate_scan_success{job="tlsgate"}'), "target")
    assert scanned == {(dual,): 1.0, (down,): 0.0}
    # the pack's pass is the gate's verdict on the target (one pack judged it)
    verdicts = _values(query(url, 'tlsgate_pack_passed{job="tlsgate"}'), "target", "pack")
    gate_verdict = next(t["gate_verdict"] for t in report["targets"] if t["target"] == dual)
    assert verdicts == {(dual, "essentials"): 1.0 if gate_verdict == "pass" else 0.0}
    # /probe, relabelled blackbox-style: the target is the instance, scanned on each scrape
    probed = wait_for(url, 'tlsgate_probe_success{job="tlsgate-probe"}', 1)
    assert _values(probed, "instance") == {(dual,): 1.0}
    probed_days = _values(
        wait_for(url, 'tlsgate:certificate_days_remaining{job="tlsgate-probe"}', 2), "instance", "key"
    )
    assert set(probed_days) == {(dual, "RSA"), (dual, "EC")}
    assert 9.9 < probed_days[(dual, "RSA")] <= 10
    # the alerts: expiry (the RSA certificate only), and the refused target pending its 15 minutes
    deadline = time.monotonic() + 15
    while True:
        alerts = httpx.get(f"{url}/api/v1/alerts", timeout=10).json()["data"]["alerts"]
        expiring = {(a["labels"]["target"], a["labels"]["key"], a["labels"]["job"]) for a in alerts
                    if a["labels"]["alertname"] == EXPIRING and a["state"] == "firing"}  # fmt: skip
        unreachable = {a["labels"]["target"]: a["state"] for a in alerts
                       if a["labels"]["alertname"] == "TlsgateTargetUnreachable"}  # fmt: skip
        if len(expiring) == 2 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert expiring == {(dual, "RSA", "tlsgate"), (dual, "RSA", "tlsgate-probe")}
    assert unreachable == {down: "pending"}
    # every dashboard panel has data
    for expr in dashboard_queries():
        assert query(url, expr), expr
