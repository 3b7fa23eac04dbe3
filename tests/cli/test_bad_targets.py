"""Targets that cannot be scanned: a one-line error, exit code 3, and the target still in the report."""

from __future__ import annotations

import json

import jsonschema
import pytest

from scanner.exitcodes import ExitCode
from scanner.schemas import schema_dir

TIMEOUT = "2"


def _report(path):
    report = json.loads(path.read_text())
    jsonschema.validate(report, json.loads((schema_dir() / "report.schema.json").read_text()))
    return report


def _assert_unscannable(run, report_path, error_class: str, fragment: str) -> None:
    assert run.code == ExitCode.NOT_CHECKED, run.stdout + run.stderr
    assert "Traceback" not in run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert f": {error_class}: " in lines[0] and fragment in lines[0]
    (target,) = _report(report_path)["targets"]
    assert target["verdict"] == "error"
    assert target["facts"]["status"] == "error"
    assert target["facts"]["error"]["error_class"] == error_class
    # every rule is inconclusive, none passes
    assert target["findings"] and {f["status"] for f in target["findings"]} == {"error"}


def test_unresolvable_name(tlsgate, tmp_path):
    """A name under the reserved .invalid TLD is a dns error."""
    path = tmp_path / "r.json"
    run = tlsgate("scan", "no-such-host.invalid:443", "--timeout", TIMEOUT, "--json", str(path))
    _assert_unscannable(run, path, "dns", "cannot resolve no-such-host.invalid")


def test_refused_port(tlsgate, refused_port, tmp_path):
    """A loopback port with no listener is a refused error."""
    path = tmp_path / "r.json"
    run = tlsgate("scan", f"127.0.0.1:{refused_port}", "--timeout", TIMEOUT, "--json", str(path))
    _assert_unscannable(run, path, "refused", "refused")


def test_plain_http_port(tlsgate, http_server, tmp_path):
    """A port that answers a ClientHello with HTTP is not_tls, and the error quotes what it said."""
    path = tmp_path / "r.json"
    run = tlsgate("scan", http_server.target, "--timeout", TIMEOUT, "--json", str(path))
    _assert_unscannable(run, path, "not_tls", "HTTP/1.1 400 Bad Request")


def test_silent_port_times_out_within_the_timeout(tlsgate, silent_server, tmp_path):
    """A port that accepts and never answers is a timeout error, reported after about one timeout."""
    path = tmp_path / "r.json"
    run = tlsgate("scan", silent_server.target, "--timeout", TIMEOUT, "--json", str(path))
    _assert_unscannable(run, path, "timeout", "did not answer")
    # one timeout plus interpreter start-up, not one timeout per protocol version and retry
    assert run.seconds < 4 * float(TIMEOUT) + 10


def test_bad_targets_do_not_lose_good_ones(tlsgate, tls12_13_server, tls13_server, http_server, refused_port, tmp_path):
    """With failing, passing and unscannable targets in one run, every target is reported; exit 1 wins."""
    path = tmp_path / "r.json"
    targets = [
        "no-such-host.invalid",
        tls12_13_server.target,
        f"127.0.0.1:{refused_port}",
        tls13_server.target,
        http_server.target,
    ]
    run = tlsgate("scan", "--pack", "tls13-only", *targets, "--timeout", TIMEOUT, "--json", str(path),
                  "--html", str(tmp_path / "r.html"))  # fmt: skip
    assert run.code == ExitCode.POLICY_FAILED
    report = _report(path)
    by_target = {t["target"]: t for t in report["targets"]}
    assert list(by_target) == targets  # the order the user gave
    assert by_target[tls12_13_server.target]["verdict"] == "fail"
    assert by_target[tls13_server.target]["verdict"] == "pass"
    assert by_target["no-such-host.invalid"]["facts"]["error"]["error_class"] == "dns"
    assert by_target[f"127.0.0.1:{refused_port}"]["facts"]["error"]["error_class"] == "refused"
    assert by_target[http_server.target]["facts"]["error"]["error_class"] == "not_tls"
    assert report["summary"]["targets_error"] == 3
    assert len(run.stderr.strip().splitlines()) == 3
    html = (tmp_path / "r.html").read_text()
    for target in targets:
        assert target in html


@pytest.mark.parametrize("good", [False, True])
def test_unscannable_plus_passing_is_not_checked(tlsgate, tls13_server, refused_port, tmp_path, good):
    """With no rule failing, one unscannable target makes the run exit 3, not 0."""
    targets = [f"127.0.0.1:{refused_port}"] + ([tls13_server.target] if good else [])
    run = tlsgate("scan", "--pack", "tls13-only", *targets, "--timeout", TIMEOUT)
    assert run.code == ExitCode.NOT_CHECKED
