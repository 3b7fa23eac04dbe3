"""--min-grade makes the grade a gate on scan, evaluate and report render; evaluate and report render grade saved
facts (a report saved before grades existed too)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import pki
from tests.helpers import openssl_server, run_tlsgate

# Only critical failures count, so the exit code says what the grade gate decided (the essentials pack's lesser
# findings on this TLS 1.0 server would fail the run otherwise).
FAIL_ON = ("--fail-on", "critical")


@pytest.fixture(scope="module")
def tls10_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    """openssl s_server with TLS 1.0 to 1.2 and ECDHE AES-GCM/CBC, a trusted RSA 2048 certificate: grade B
    (95, 90, 90 -> 92 -> A, capped at B for TLS 1.0 and 1.1)."""
    directory = tmp_path_factory.mktemp("min-grade")
    now = dt.datetime.now(dt.UTC)
    ca = pki.issue(pki.name("min-grade CA"), ca=True, not_before=now - dt.timedelta(days=1), days=3650)
    leaf = pki.issue(pki.name("localhost"), issuer=ca, key=pki.new_key("rsa2048"), sans=("localhost", "127.0.0.1"),
                     not_before=now - dt.timedelta(minutes=5))  # fmt: skip
    cert, key = leaf.write(directory, "leaf", chain=[ca])
    (directory / "ca.pem").write_bytes(ca.pem)
    suites = "ECDHE-RSA-AES128-SHA:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384:@SECLEVEL=0"
    with openssl_server(cert, key, "-min_protocol", "TLSv1", "-max_protocol", "TLSv1.2", "-cipher", suites) as port:
        yield port, directory / "ca.pem"


def _scan(server: tuple[int, Path], *args: str) -> tuple[int, str, str]:
    port, ca = server
    run = run_tlsgate("scan", f"127.0.0.1:{port}", "--ca-file", str(ca), *FAIL_ON, *args)
    return run.code, run.stdout, run.stderr


def test_scan_min_grade_gates_the_exit_code(tls10_server: tuple[int, Path], tmp_path: Path) -> None:
    """B meets --min-grade B (exit 0) and fails --min-grade A (exit 1), and the report says why."""
    code, out, err = _scan(tls10_server, "--min-grade", "B")
    assert code == 0, out + err
    assert "grade B" in out  # the terminal line shows the grade
    report = tmp_path / "a.json"
    code, out, err = _scan(tls10_server, "--min-grade", "a", "--json", str(report))
    assert code == 1, out + err
    assert "grade B is below --min-grade A" in out + err
    data = json.loads(report.read_text())
    target = data["targets"][0]
    assert (target["grade"], target["gate_verdict"], data["gate"]["min_grade"]) == ("B", "fail", "A")
    assert target["grade_gate"] == "grade B is below --min-grade A"
    assert [cap["rule"] for cap in target["grading"]["caps"]] == ["tls10-tls11"]


@pytest.mark.parametrize("text", ["Z", "A++", "T", ""])
def test_a_bad_grade_is_a_usage_error(tls10_server: tuple[int, Path], text: str) -> None:
    """Not one of A+ ... F (T and M are no threshold): one line on stderr, exit 2, nothing scanned."""
    code, _out, err = _scan(tls10_server, "--min-grade", text)
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "--min-grade" in lines[0] and "A+, A, A-, B, C, D, E, F" in lines[0], err
    assert "Traceback" not in err


@pytest.fixture(scope="module")
def saved(tls10_server: tuple[int, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A report of the scan, with its grades taken out, as a report written before grades existed would be."""
    path = tmp_path_factory.mktemp("saved") / "scan.json"
    code, out, err = _scan(tls10_server, "--json", str(path))
    assert code == 0, out + err
    data = json.loads(path.read_text())
    for target in data["targets"]:
        for name in ("grade", "grading", "grade_gate"):
            target.pop(name, None)
    data["gate"].pop("min_grade", None)
    path.write_text(json.dumps(data))
    return path


def test_evaluate_grades_saved_facts(saved: Path, tmp_path: Path) -> None:
    out = tmp_path / "evaluated.json"
    run = run_tlsgate("evaluate", str(saved), *FAIL_ON, "--json", str(out))
    assert run.code == 0, run.stderr
    assert json.loads(out.read_text())["targets"][0]["grade"] == "B"
    run = run_tlsgate("evaluate", str(saved), *FAIL_ON, "--min-grade", "A-", "--json", str(out))
    assert run.code == 1, run.stderr
    assert json.loads(out.read_text())["targets"][0]["grade_gate"] == "grade B is below --min-grade A-"


def test_report_render_grades_a_saved_report(saved: Path, tmp_path: Path) -> None:
    """The saved report had no grades: every format rendered from it has them, and --min-grade gates the exit."""
    md, csv_file = tmp_path / "r.md", tmp_path / "r.csv"
    run = run_tlsgate("report", "render", str(saved), "--format", f"markdown={md}", "--format", f"csv={csv_file}")
    assert run.code == 0, run.stderr
    assert "| Grade |" in md.read_text() and "| B |" in md.read_text()
    header, first = csv_file.read_text().splitlines()[:2]
    assert header.endswith(",grade") and first.endswith(",B")
    run = run_tlsgate("report", "render", str(saved), "--format", f"sarif={tmp_path / 'r.sarif'}", "--min-grade", "A")
    assert run.code == 1
    assert "grade B is below --min-grade A" in run.stderr
    sarif = json.loads((tmp_path / "r.sarif").read_text())
    assert sarif["runs"][0]["properties"]["grades"] == {next(iter(sarif["runs"][0]["properties"]["grades"])): "B"}
    assert (
        run_tlsgate("report", "render", str(saved), "--format", f"json={tmp_path / 'r.json'}", "--min-grade", "B").code
        == 0
    )
