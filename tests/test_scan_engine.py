"""scanner.engine without the command line: a request in, a result out, nothing printed, nothing exited."""

from __future__ import annotations

import signal
import ssl

import pytest

from scanner import engine
from scanner.policy.pack import resolve_pack
from scanner.probe.options import ProbeOptions
from scanner.report import TargetReport
from scanner.targets import parse_target
from tests.helpers import python_tls_server, server_context


class Listener:
    """What a caller of the engine hears, kept."""

    def __init__(self) -> None:
        self.total: int | None = None
        self.heard: list[TargetReport] = []

    def planned(self, total: int, kept: int = 0) -> None:
        self.total = total

    def finished(self, result: TargetReport) -> None:
        self.heard.append(result)


def test_scan_reports_through_the_listener_and_prints_nothing(pki, tmp_path, capsys):
    journal = tmp_path / "scan.jsonl"
    listener = Listener()
    handler = signal.getsignal(signal.SIGTERM)
    with python_tls_server(server_context(pki, ssl.TLSVersion.TLSv1_3)) as server:
        request = engine.ScanRequest(
            targets=[parse_target(server.target)],
            packs=[resolve_pack("tls13-only")],
            probe=ProbeOptions(timeout=3),
            journal=engine.JournalRequest(journal),
        )
        result = engine.scan(request, listener)
    assert capsys.readouterr() == ("", "")
    assert signal.getsignal(signal.SIGTERM) == handler  # SIGTERM is a stop only while the scan runs
    assert not result.interrupted
    assert [t.target for t in result.report.targets] == [server.target]
    assert result.report.targets[0].verdict == "pass"
    assert listener.total == 1
    assert [t.target for t in listener.heard] == [server.target]
    assert result.journal is not None
    assert result.journal.failure is None
    assert len(journal.read_text(encoding="utf-8").splitlines()) == 1


def test_a_bad_resume_file_is_raised_not_exited(tmp_path):
    bad = tmp_path / "resume.json"
    bad.write_text("not json", encoding="utf-8")
    request = engine.ScanRequest(
        targets=[parse_target("127.0.0.1:1")],
        packs=[resolve_pack("tls13-only")],
        probe=ProbeOptions(timeout=1),
        resume=bad,
    )
    with pytest.raises(engine.RequestError) as raised:
        engine.scan(request)
    assert raised.value.lines == [f"--resume {bad}: not valid JSON: Expecting value (line 1, column 1)"]


def test_a_truststore_password_without_a_truststore_is_raised(tmp_path):
    request = engine.ScanRequest(
        targets=[parse_target("127.0.0.1:1")],
        packs=[resolve_pack("tls13-only")],
        probe=ProbeOptions(timeout=1),
        trust=engine.TrustRequest(password_env="STORE_PASSWORD"),  # noqa: S106 - the name of a variable
    )
    with pytest.raises(engine.RequestError) as raised:
        engine.scan(request)
    assert raised.value.lines == ["--truststore-password-env/--truststore-password-file need --truststore"]
