"""The bundled demo: a local endpoint with fresh certificates, scanned, with reports written."""

from __future__ import annotations

import json


def test_demo_writes_reports(tlsgate, tmp_path):
    """`tlsgate demo` scans its own loopback endpoint, which passes the default pack (its CA given as a CA file)
    and fails tls13-only, and writes the reports."""
    out = tmp_path / "demo"
    run = tlsgate("demo", "--out", str(out))
    assert run.code == 0, run.stdout + run.stderr
    assert f"report: {out / 'report.json'}" in run.stdout
    assert f"report: {out / 'report.html'}" in run.stdout
    report = json.loads((out / "report.json").read_text())
    (target,) = report["targets"]
    assert target["target"].startswith("127.0.0.1:")
    assert target["verdict"] == "fail"
    assert [p["id"] for p in report["packs"]] == ["essentials", "tls13-only"]
    failed = [f["rule"] for f in target["findings"] if f["status"] != "pass"]
    assert failed == ["TLS13ONLY-001"]
    trust = {t["store"].split(":")[0]: t["trusted"] for t in target["facts"]["certificate"]["trust"]}
    assert trust == {"file": True, "mozilla": False}
    leaf = target["facts"]["certificate"]["leaf"]
    assert leaf["public_key"] == {"type": "RSA", "size": 2048, "curve": None}
    assert "<html" in (out / "report.html").read_text()
