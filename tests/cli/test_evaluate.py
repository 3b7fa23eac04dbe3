"""tlsgate evaluate: saved facts re-judged with other packs and parameters, with no network at all."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import pytest

from scanner.exitcodes import ExitCode
from scanner.facts import ErrorClass, Facts, ProbeError, ProtocolSupport, ProtocolVersion, TargetInfo
from scanner.schemas import schema_dir
from tests.helpers import REPO, Run, issue_certificate

# The real command line with every way out to the network cut: a connect or a name lookup raises, which the
# CLI would report as an internal error (exit 5); and the probe stage must not even be imported.
_NO_NETWORK = textwrap.dedent(
    """
    import socket, sys

    def _refuse(*args, **kwargs):
        raise AssertionError("evaluate touched the network")

    socket.socket.connect = socket.socket.connect_ex = _refuse
    socket.create_connection = socket.getaddrinfo = _refuse
    sys.argv[0] = "tlsgate"
    from scanner.cli import main
    try:
        main()
    finally:
        if "scanner.probe.run" in sys.modules or "sslyze" in sys.modules:
            print("tlsgate-test: the probe stage was loaded", file=sys.stderr)
    """
)

TLS12_REQUIRED = """\
id: tls12-required
title: TLS 1.2 must be accepted
version: "1"
rules:
  - id: T12-001
    title: TLS 1.2 is accepted
    severity: medium
    fact: protocols
    some: {version: TLSv1.2, status: accepted}
"""

KEY_SIZE = """\
id: key-size
title: Leaf key size
version: "1"
params:
  min_bits: {default: 2048, description: "Smallest public key accepted, in bits."}
rules:
  - id: KEY-001
    title: The leaf key is large enough
    severity: high
    fact: certificate.leaf.public_key.size
    min: {param: min_bits}
"""


def offline_tlsgate(*args: str) -> Run:
    """Run the real command line in a child process that cannot open a connection or resolve a name."""
    proc = subprocess.run(
        [sys.executable, "-c", _NO_NETWORK, *args], capture_output=True, text=True, timeout=120, cwd=REPO, check=False
    )
    assert "touched the network" not in proc.stderr, proc.stderr
    assert "probe stage was loaded" not in proc.stderr, proc.stderr
    return Run(proc.returncode, proc.stdout, proc.stderr, 0.0)


def _scan_then_stop(tlsgate, server, tmp_path: Path, expected: ExitCode) -> Path:
    """Scan ``server`` with tls13-only into a JSON report, then shut it down: nothing listens on its port any more."""
    saved = tmp_path / "scan.json"
    run = tlsgate("scan", server.target, "--pack", "tls13-only", "--json", str(saved))
    assert run.code == expected, run.stdout + run.stderr
    server.__exit__(None, None, None)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((server.host, server.port), timeout=2).close()
    return saved


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _report_schema() -> dict:
    return json.loads((schema_dir() / "report.schema.json").read_text())


def _facts(target: str, accepted: list[ProtocolVersion], *, scanned: bool = True) -> Facts:
    now = datetime.now(UTC)
    host, _, port = target.rpartition(":")
    info = TargetInfo(input=target, host=host, port=int(port), server_name=None, ip_address="192.0.2.1")
    if not scanned:
        error = ProbeError(error_class=ErrorClass.refused, message="connection refused")
        return Facts(target=info, started_at=now, finished_at=now, status="error", error=error)
    protocols = [
        ProtocolSupport(version=v, status="accepted" if v in accepted else "not_accepted") for v in ProtocolVersion
    ]
    return Facts(target=info, started_at=now, finished_at=now, status="ok", protocols=protocols)


def test_saved_report_of_stopped_server_rejudged_with_other_pack(tlsgate, tls12_13_server, tmp_path):
    """A report of a TLS 1.2+1.3 server that is gone fails tls13-only again and passes a TLS 1.2 pack, offline."""
    saved = _scan_then_stop(tlsgate, tls12_13_server, tmp_path, ExitCode.POLICY_FAILED)
    pack = _write(tmp_path / "tls12.yaml", TLS12_REQUIRED)
    out_json, out_html = tmp_path / "again.json", tmp_path / "again.html"

    again = offline_tlsgate("evaluate", str(saved), "--pack", str(pack), "--json", str(out_json),
                            "--html", str(out_html))  # fmt: skip
    assert again.code == ExitCode.OK, again.stdout + again.stderr
    assert f"PASS  {tls12_13_server.target}" in again.stdout
    assert f"report: {out_json}" in again.stdout
    report = json.loads(out_json.read_text())
    jsonschema.validate(report, _report_schema())
    (target,) = report["targets"]
    assert target["verdict"] == "pass"
    assert [(f["rule"], f["status"]) for f in target["findings"]] == [("T12-001", "pass")]
    assert [p["id"] for p in report["packs"]] == ["tls12-required"]
    # the facts are the saved ones, untouched: only the judgement is new
    assert target["facts"] == json.loads(saved.read_text())["targets"][0]["facts"]
    assert "T12-001" in out_html.read_text()

    same = offline_tlsgate("evaluate", str(saved), "--pack", "tls13-only")
    assert same.code == ExitCode.POLICY_FAILED, same.stdout + same.stderr
    assert "TLS13ONLY-001" in same.stdout


def test_saved_report_of_tls13_server_fails_tls12_pack(tlsgate, tls13_server, tmp_path):
    """A passing scan of a TLS 1.3-only server, re-judged offline with a TLS 1.2 pack, fails with exit 1."""
    saved = _scan_then_stop(tlsgate, tls13_server, tmp_path, ExitCode.OK)
    pack = _write(tmp_path / "tls12.yaml", TLS12_REQUIRED)

    again = offline_tlsgate("evaluate", str(saved), "--pack", str(pack), "--pack", "tls13-only")
    assert again.code == ExitCode.POLICY_FAILED, again.stdout + again.stderr
    assert "fail [medium] T12-001 TLS 1.2 is accepted" in again.stdout
    assert "TLS13ONLY" not in again.stdout  # those passed: only failures are listed


def test_facts_json_object_and_list(tlsgate, tmp_path):
    """Facts alone, one object or a list, are judged; a target saved as not scanned stays 'could not check'."""
    modern = _facts("modern.example:443", [ProtocolVersion.TLSv1_3])
    legacy = _facts("legacy.example:443", [ProtocolVersion.TLSv1_2, ProtocolVersion.TLSv1_3])
    gone = _facts("gone.example:443", [], scanned=False)
    one = _write(tmp_path / "one.json", modern.model_dump_json())
    many = _write(tmp_path / "many.json", json.dumps([json.loads(f.model_dump_json()) for f in (modern, legacy)]))
    unscanned = _write(tmp_path / "gone.json", gone.model_dump_json())

    run = tlsgate("evaluate", str(one), "--pack", "tls13-only")
    assert run.code == ExitCode.OK, run.stdout + run.stderr
    assert "PASS  modern.example:443" in run.stdout

    out = tmp_path / "r.json"
    run = tlsgate("evaluate", str(many), "--pack", "tls13-only", "--json", str(out))
    assert run.code == ExitCode.POLICY_FAILED, run.stdout + run.stderr
    verdicts = {t["target"]: t["verdict"] for t in json.loads(out.read_text())["targets"]}
    assert verdicts == {"modern.example:443": "pass", "legacy.example:443": "fail"}

    run = tlsgate("evaluate", str(unscanned), "--pack", "tls13-only")
    assert run.code == ExitCode.NOT_CHECKED, run.stdout + run.stderr
    assert "gone.example:443: refused" in run.stderr

    run = tlsgate("evaluate", str(one), str(unscanned), str(many), "--pack", "tls13-only")
    assert run.code == ExitCode.POLICY_FAILED, "a violation outranks 'could not check' across files too"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{not json", "not valid JSON: Expecting property name enclosed in double quotes (line 1, column 2)"),
        ('{"targets": [{"target": 1}]}', "not a valid tlsgate report: "),
        ('{"target": {"input": "x"}}', "not a valid tlsgate facts: target.host: Field required (and "),
        ("[]", "the list of facts is empty"),
        ('"facts"', "neither a tlsgate report"),
    ],
)
def test_invalid_input_is_one_line_usage_error(tlsgate, tmp_path, content, expected):
    """A file that is not JSON, or not a report or facts, is exit 2 with one line naming the file and where."""
    path = _write(tmp_path / "in.json", content)
    run = tlsgate("evaluate", str(path), "--pack", "tls13-only")
    assert run.code == ExitCode.USAGE, run.stdout + run.stderr
    (line,) = run.stderr.splitlines()
    assert line.startswith(f"tlsgate: error: {path}: "), line
    assert expected in line
    assert run.stdout == ""


def test_invalid_facts_name_the_location(tlsgate, tmp_path):
    """A wrong value deep in the facts is located by its path, e.g. protocols[0].version."""
    data = json.loads(_facts("a.example:443", [ProtocolVersion.TLSv1_3]).model_dump_json())
    data["protocols"][0]["version"] = "TLSv1.4"
    path = _write(tmp_path / "facts.json", json.dumps([data]))
    run = tlsgate("evaluate", str(path), "--pack", "tls13-only")
    assert run.code == ExitCode.USAGE
    (line,) = run.stderr.splitlines()
    assert "[0].protocols[0].version: Input should be 'SSLv2'" in line


def test_missing_file_and_missing_pack(tlsgate, tmp_path):
    """An unreadable FILE is a one-line usage error; so is an unknown pack, before any file is read."""
    run = tlsgate("evaluate", str(tmp_path / "absent.json"), "--pack", "tls13-only")
    assert run.code == ExitCode.USAGE
    assert run.stderr.splitlines() == [
        f"tlsgate: error: {tmp_path / 'absent.json'}: cannot read JSON report or facts file: No such file or directory"
    ]
    run = tlsgate("evaluate", str(tmp_path / "absent.json"), "--pack", "no-such-pack")
    assert run.code == ExitCode.USAGE
    assert "unknown pack 'no-such-pack'" in run.stderr


def test_default_pack_is_baseline(tmp_path):
    """Without --pack saved facts are judged by the default pack, baseline, offline: SSL 3.0 fails its protocol
    rule, and the certificate rules are errors, since these facts hold no certificate (never a pass)."""
    legacy = _facts("legacy.example:443", [ProtocolVersion.SSLv3, ProtocolVersion.TLSv1_2])
    saved, out = _write(tmp_path / "legacy.json", legacy.model_dump_json()), tmp_path / "r.json"
    run = offline_tlsgate("evaluate", str(saved), "--json", str(out))
    assert run.code == ExitCode.POLICY_FAILED, run.stdout + run.stderr
    report = json.loads(out.read_text())
    assert [p["id"] for p in report["packs"]] == ["essentials"]
    found = {f["rule"]: f["status"] for f in report["targets"][0]["findings"]}
    assert (found["ESSENTIALS-001"], found["ESSENTIALS-003"], found["ESSENTIALS-010"]) == ("error", "error", "fail")


# --- parameters ------------------------------------------------------------------------------------------


@pytest.fixture
def cert_report(tlsgate, tmp_path) -> Path:
    """A saved `tlsgate cert` report of an RSA 3072 leaf, judged with the key-size pack at its default."""
    issued = issue_certificate(tmp_path / "pki", "leaf", key_type="rsa3072")
    saved = tmp_path / "cert.json"
    run = tlsgate("cert", str(issued.cert), "--pack", str(_write(tmp_path / "keys.yaml", KEY_SIZE)),
                  "--json", str(saved))  # fmt: skip
    assert run.code == ExitCode.OK, run.stdout + run.stderr
    return saved


def test_param_raises_the_bar(tlsgate, cert_report, tmp_path):
    """--param min_bits=4096 makes a 3072-bit key fail; PACK.NAME and 3072 itself behave as expected."""
    pack = str(tmp_path / "keys.yaml")
    run = tlsgate("evaluate", str(cert_report), "--pack", pack)
    assert run.code == ExitCode.OK, run.stdout + run.stderr
    out = tmp_path / "r.json"
    run = tlsgate("evaluate", str(cert_report), "--pack", pack, "--param", "min_bits=4096", "--json", str(out))
    assert run.code == ExitCode.POLICY_FAILED, run.stdout + run.stderr
    assert "must be at least 4096" in run.stdout
    (finding,) = json.loads(out.read_text())["targets"][0]["findings"]
    assert (finding["status"], finding["evidence"]["observed"]) == ("fail", 3072)
    run = tlsgate("evaluate", str(cert_report), "--pack", pack, "--param", "key-size.min_bits=4096")
    assert run.code == ExitCode.POLICY_FAILED, run.stdout + run.stderr
    # PACK.NAME outranks NAME whatever the order
    run = tlsgate("evaluate", str(cert_report), "--pack", pack, "--param", "key-size.min_bits=3072",
                  "--param", "min_bits=4096")  # fmt: skip
    assert run.code == ExitCode.OK, run.stdout + run.stderr


def test_param_on_cert_and_scan(tlsgate, tls13_server, tmp_path):
    """--param works on cert and scan as on evaluate (the test server's key is EC P-256: 256 bits)."""
    pack = str(_write(tmp_path / "keys.yaml", KEY_SIZE))
    issued = issue_certificate(tmp_path / "pki", "leaf", key_type="rsa3072")
    assert tlsgate("cert", str(issued.cert), "--pack", pack, "--param", "min_bits=4096").code == ExitCode.POLICY_FAILED
    run = tlsgate("scan", tls13_server.target, "--pack", pack)
    assert run.code == ExitCode.POLICY_FAILED, run.stdout + run.stderr
    run = tlsgate("scan", tls13_server.target, "--pack", pack, "--param", "min_bits=256")
    assert run.code == ExitCode.OK, run.stdout + run.stderr


@pytest.mark.parametrize(
    ("param", "message"),
    [
        ("nope=1", "--param nope: no selected pack has a parameter 'nope'"),
        ("min_bit=1", "(did you mean 'min_bits'?)"),
        ("key-size.nope=1", "--param key-size.nope: pack 'key-size' has no parameter 'nope'"),
        ("other-pack.min_bits=1", "no selected pack has the id 'other-pack' (selected: key-size)"),
        ("min_bits=lots", "parameter 'min_bits' takes a number, not 'lots'"),
        ("min_bits", "--param 'min_bits': expected KEY=VALUE"),
        ("min_bits=", "--param min_bits: no value after '='"),
        ("min_bits=[1", "parameter 'min_bits' takes a number, not '[1'"),
    ],
)
def test_bad_param_is_usage_error(tlsgate, cert_report, tmp_path, param, message):
    """A --param no selected pack takes, of the wrong type or malformed exits 2 with one line saying why."""
    run = tlsgate("evaluate", str(cert_report), "--pack", str(tmp_path / "keys.yaml"), "--param", param)
    assert run.code == ExitCode.USAGE, run.stdout + run.stderr
    (line,) = run.stderr.splitlines()
    assert message in line
    assert run.stdout == ""


def test_param_for_pack_without_params(tlsgate, tmp_path):
    """A --param with built-in packs that declare none is a usage error that says so."""
    path = _write(tmp_path / "one.json", _facts("a.example:443", [ProtocolVersion.TLSv1_3]).model_dump_json())
    run = tlsgate("evaluate", str(path), "--pack", "tls13-only", "--param", "min_bits=4096")
    assert run.code == ExitCode.USAGE
    assert "the selected packs have none" in run.stderr
