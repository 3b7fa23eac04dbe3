"""sslyze-backed probes, a target's time limit and the run's time budget end on time against servers that trickle.

The hostile peer is a relay in front of a real TLS server (Python's ssl) that passes some connections through and
hands the server's bytes of the others to the client one at a time: each byte comes well within any read
timeout, so only a deadline on the whole connection, the target or the run ends them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from scanner.engine import _resume
from scanner.exitcodes import ExitCode
from scanner.facts import Behaviours, CertificateFacts, ErrorClass, ProbeError
from scanner.probe import sslyze_adapter
from scanner.probe.connect.limits import Stop
from scanner.probe.registry import Extra
from scanner.probe.sslyze_adapter import SslyzeRequest
from tests.helpers import ServerFiles, loopback_endpoint, python_tls_server, run_tlsgate, server_context

SLACK = 2.0  # scheduling on a loaded two-core machine
_EXT_STATUS_REQUEST = 0x0005


def _read_record(conn: socket.socket) -> bytes:
    """The client's first TLS record (its ClientHello), whole."""
    data = b""
    while len(data) < 5 or len(data) < 5 + int.from_bytes(data[3:5], "big"):
        chunk = conn.recv(16384)
        if not chunk:
            break
        data += chunk
    return data


def offers_status_request(hello: bytes) -> bool:
    """Whether a ClientHello record asks for a stapled OCSP response (only sslyze's certificate job does)."""
    try:
        pos = 5 + 4 + 2 + 32  # record header, handshake header, version, random
        pos += 1 + hello[pos]  # session id
        pos += 2 + int.from_bytes(hello[pos : pos + 2], "big")  # cipher suites
        pos += 1 + hello[pos]  # compression methods
        end = pos + 2 + int.from_bytes(hello[pos : pos + 2], "big")
        pos += 2
        while pos + 4 <= end:
            kind, size = int.from_bytes(hello[pos : pos + 2], "big"), int.from_bytes(hello[pos + 2 : pos + 4], "big")
            if kind == _EXT_STATUS_REQUEST:
                return True
            pos += 4 + size
    except IndexError:
        return False
    return False


class TrickleRelay:
    """A relay on 127.0.0.1 to a server's port: a connection whose ClientHello ``slow`` picks (or any, once
    ``slow_all`` is set) gets the server's answer a byte every ``interval`` seconds; the others pass as they are."""

    def __init__(self, upstream: int, slow: Callable[[bytes], bool], interval: float = 0.2) -> None:
        self.upstream, self.slow, self.interval = upstream, slow, interval
        self.slow_all = False
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._sock.getsockname()[1])
        self.target = f"127.0.0.1:{self.port}"
        self._closing = threading.Event()

    def __enter__(self) -> TrickleRelay:
        threading.Thread(target=self._serve, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closing.set()
        self._sock.close()

    def _serve(self) -> None:
        while not self._closing.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._relay, args=(conn,), daemon=True).start()

    def _relay(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError), conn, socket.create_connection(("127.0.0.1", self.upstream)) as up:
            conn.settimeout(60)
            hello = _read_record(conn)
            slow = self.slow_all or self.slow(hello)
            up.sendall(hello)
            threading.Thread(target=self._pipe, args=(conn, up, False), daemon=True).start()
            self._pipe(up, conn, slow)

    def _pipe(self, source: socket.socket, sink: socket.socket, slow: bool) -> None:
        with contextlib.suppress(OSError):
            while not self._closing.is_set():
                data = source.recv(1 if slow else 65536)
                if not data:
                    break
                if slow:
                    time.sleep(self.interval)
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)


@contextlib.contextmanager
def relayed_server(pki: ServerFiles, slow: Callable[[bytes], bool], interval: float = 0.2) -> Iterator[TrickleRelay]:
    """A TLS 1.2-only server (so that every sslyze job connects) behind a TrickleRelay."""
    context = server_context(pki, ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_2)
    with python_tls_server(context) as server, TrickleRelay(server.port, slow, interval) as relay:
        yield relay


def _slow_after_connectivity(relay: TrickleRelay) -> Callable[[], contextlib.AbstractContextManager[object]]:
    """A ``hold`` for scan_one that lets the connectivity test through and slows every job after it."""
    holds = 0

    def hold() -> contextlib.AbstractContextManager[object]:
        nonlocal holds
        holds += 1
        relay.slow_all = holds > 1
        return contextlib.nullcontext()

    return hold


def _plain(error: ProbeError) -> None:
    """A message a person reads: one line, no exception class of sslyze, nassl or Python."""
    assert "\n" not in error.message
    for word in ("Error", "Exception", "TimedOut", "sslyze.", "Cancelled"):
        assert word not in error.message, error.message


def test_a_trickled_connection_is_cut_at_its_bound(pki: ServerFiles) -> None:
    """The certificate job's handshake trickles (a byte per 0.2 s, well within the 1 s read timeout): the job
    is cut when its connection has had its first-answer wait plus two timeouts (3 s), and the certificate is a
    ``timeout`` error in plain words."""
    with relayed_server(pki, lambda hello: False) as relay:
        endpoint = loopback_endpoint(relay.port, timeout=1.0)
        request = SslyzeRequest(endpoint=endpoint, extras=frozenset({Extra.certificate}))
        started = time.monotonic()
        outcome = sslyze_adapter.scan_one(request, 1, _slow_after_connectivity(relay))
        took = time.monotonic() - started
    assert took < 3 + SLACK, f"the job took {took:.1f}s"
    assert outcome is not None
    assert outcome.error is None
    assert isinstance(outcome.certificate, CertificateFacts)
    error = outcome.certificate.error
    assert error is not None
    assert error.error_class == ErrorClass.timeout
    assert "a connection took longer than 3s (the server answers too slowly)" in error.message
    _plain(error)


def test_jobs_end_with_the_targets_time(pki: ServerFiles) -> None:
    """Every job trickles and the target has 3 s: scan_one returns by then (plus its 1 s grace), and every fact
    whose job needed the server is a ``time_budget`` error, not what sslyze would make of the cut answer (no
    heartbeat echoed: "not vulnerable"). A byte every 0.5 s: not even an alert (7 bytes) gets through in time."""
    with relayed_server(pki, lambda hello: False, interval=0.5) as relay:
        stop = Stop.after(3, ProbeError(error_class=ErrorClass.time_budget, message="not finished within 3 s"))
        endpoint = dataclasses.replace(loopback_endpoint(relay.port, timeout=1.0), stop=stop)
        request = SslyzeRequest(endpoint=endpoint, extras=frozenset({Extra.certificate, Extra.behaviours}))
        started = time.monotonic()
        outcome = sslyze_adapter.scan_one(request, 5, _slow_after_connectivity(relay))
        took = time.monotonic() - started
    assert took < 3 + 1 + SLACK, f"scan_one took {took:.1f}s"
    assert outcome is not None
    assert outcome.error is None
    assert isinstance(outcome.certificate, CertificateFacts)
    assert outcome.certificate.error is not None
    assert outcome.certificate.error.error_class == ErrorClass.time_budget
    assert set(outcome.behaviours) == set(Behaviours.model_fields) - {"status", "error", "alpn"}
    for name, fact in outcome.behaviours.items():
        assert fact.error is not None, name
        assert fact.error.error_class == ErrorClass.time_budget, (name, fact.error)
        _plain(fact.error)


def test_target_time_keeps_what_was_found(pki: ServerFiles, tmp_path: Path) -> None:
    """Only sslyze's certificate job (the one ClientHello asking for OCSP stapling) trickles, and so does the
    chain fetch tlsgate falls back on: with --timeout 2 --target-time 10 the scan ends soon after 10 s, the
    certificate an error of the time limit, the protocols and the other behaviours kept; --resume would scan it
    again."""
    report = tmp_path / "r.json"
    with relayed_server(pki, offers_status_request) as relay:
        result = run_tlsgate("scan", relay.target, "--all-facts", "--timeout", "2", "--target-time", "10",
                             "--json", str(report), "-q")  # fmt: skip
    assert result.seconds < 10 + 10, f"the scan took {result.seconds:.1f}s"
    assert result.code == ExitCode.NOT_CHECKED, result.stderr
    assert "Traceback" not in result.stderr
    (target,) = json.loads(report.read_text())["targets"]
    facts = target["facts"]
    assert facts["status"] == "ok"
    accepted = {p["version"] for p in facts["protocols"] if p["status"] == "accepted"}
    assert accepted == {"TLSv1.2"}
    assert facts["certificate"]["status"] == "error"
    assert facts["certificate"]["error"]["error_class"] in ("timeout", "time_budget")
    behaviours = facts["behaviours"]
    assert behaviours["heartbleed"] == {"status": "ok", "value": False, "error": None, "source": "sslyze"}
    assert behaviours["secure_renegotiation"]["status"] == "ok"
    assert _resume(report) == {}, "--resume must scan a target cut short (in one fact) again"


def _after_first() -> Callable[[bytes], bool]:
    """A ``slow`` for a relay: the first connection at full speed, every later one trickled."""
    seen = 0

    def slow(hello: bytes) -> bool:
        nonlocal seen
        seen += 1
        return seen > 1

    return slow


def test_time_budget_ends_a_run_of_trickling_targets(pki: ServerFiles, tmp_path: Path) -> None:
    """Three targets that trickle every answer and one that does not: --time-budget 5 ends the run within a few
    seconds of the budget, every report is written whole, the trickling targets are time_budget errors, the
    quick one keeps its verdict, and the exit code says could-not-check."""
    report, junit, journal = tmp_path / "r.json", tmp_path / "r.xml", tmp_path / "j.jsonl"
    with contextlib.ExitStack() as stack:
        quick = stack.enter_context(python_tls_server(server_context(pki, ssl.TLSVersion.TLSv1_3)))
        # The preflight's connection is let through (a trickle there is a plain ``timeout`` within one
        # timeout); every connection after it trickles, so only the budget can end these targets.
        slow = [stack.enter_context(relayed_server(pki, _after_first())) for _ in range(3)]
        names = [relay.target for relay in slow]
        result = run_tlsgate("scan", "--pack", "tls13-only", quick.target, *names, "--timeout", "2",
                             "--time-budget", "5", "--json", str(report), "--format", f"junit={junit}",
                             "--format", f"jsonl={journal}")  # fmt: skip
    assert result.seconds < 5 + 8, f"the run took {result.seconds:.1f}s"
    assert result.code == ExitCode.NOT_CHECKED, result.stderr
    assert "Traceback" not in result.stderr
    targets = {t["target"]: t for t in json.loads(report.read_text())["targets"]}
    assert targets[quick.target]["verdict"] == "pass"
    for name in names:
        assert targets[name]["facts"]["error"]["error_class"] == "time_budget"
    assert junit.read_text().rstrip().endswith("</testsuites>")
    assert sorted(json.loads(line)["target"] for line in journal.read_text().splitlines()) == sorted(targets)
    assert "time_budget: not finished within the run's time budget (5 s)" in result.stderr


@pytest.mark.parametrize("hello", [b"", b"\x16\x03\x01\x00\x05\x01\x00\x00\x01"])
def test_offers_status_request_reads_short_hellos(hello: bytes) -> None:
    """The relay's ClientHello reader copes with truncated records (a probe may send anything)."""
    assert offers_status_request(hello) is False
