"""The bundled demo: a local endpoint with fresh certificates, scanned, with reports written."""

from __future__ import annotations

import json


def test_demo_writes_reports(tlsgate, tmp_path):
    """`tlsgate demo` scans its own loopback endpoint, which fails tls13-only, and writes both reports."""
    out = tmp_path / "demo"
    run = tlsgate("demo", "--out", str(out))
    assert run.code == 0, run.stdout + run.stderr
    assert f"report: {out / 'report.json'}" in run.stdout
    assert f"report: {out / 'report.html'}" in run.stdout
    report = json.loads((out / "report.json").read_text())
    (target,) = report["targets"]
    assert target["target"].startswith("127.0.0.1:")
    assert target["verdict"] == "fail"
    assert any(f["rule"] == "TLS13ONLY-001" and f["status"] == "fail" for f in target["findings"])
    leaf = target["facts"]["certificate"]["leaf"]
    assert leaf["public_key"] == {"type": "RSA", "size": 2048, "curve": None}
    assert "<html" in (out / "report.html").read_text()
