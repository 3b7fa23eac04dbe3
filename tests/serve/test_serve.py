"""``tlsgate serve`` as run: /probe scanning real loopback servers within its bounds, refusing what it must with
one line, /metrics seeded from a saved report, usage errors, clients that send nothing."""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import socket
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from scanner.demo import LoopbackServer
from scanner.report import ScanOptions, summarise
from tests.helpers import (
    IssuedCert,
    decided_report,
    free_port,
    issue_certificate,
    openssl_server,
    protocol_facts,
    run_tlsgate,
    target_report,
)
from tests.serve.serving import Serving, tlsgate_serve


def _samples(text: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    found: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return found


@pytest.fixture(scope="module")
def cert20(tmp_path_factory: pytest.TempPathFactory) -> IssuedCert:
    return issue_certificate(tmp_path_factory.mktemp("serve-pki"), "serve20", key_type="p256", days=20)


@pytest.fixture(scope="module")
def tls_port(cert20: IssuedCert):
    """openssl s_server with a 20-day ECDSA certificate, TLS 1.2 and 1.3."""
    with openssl_server(cert20.cert, cert20.key) as port:
        yield port


@pytest.fixture(scope="module")
def serving(tmp_path_factory: pytest.TempPathFactory, cert20: IssuedCert):
    directory = tmp_path_factory.mktemp("serve")
    with tlsgate_serve(
        directory, "--allow", "127.0.0.1/32", "--pack", "essentials", "--pack", "tls13-only",
        "--ca-file", str(cert20.ca), "--timeout", "3",
    ) as serving:  # fmt: skip
        yield serving


def test_probe_scans_a_loopback_server(serving: Serving, tls_port: int) -> None:
    """The target's series as /metrics would have them, plus probe_success and the probe's duration."""
    target = f"127.0.0.1:{tls_port}"
    response = serving.get(f"/probe?target={target}")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = _samples(response.text)
    assert samples["tlsgate_probe_success"] == {(): 1.0}
    assert 0 < samples["tlsgate_probe_duration_seconds"][()] < 30
    t = (("target", target),)
    assert samples["tlsgate_scan_success"][t] == 1
    assert list(samples["tlsgate_pack_passed"]) == [(("pack", "essentials"), *t)]  # the first pack by default
    days = samples["tlsgate_certificate_expires_in_seconds"][(("key", "EC"), *t)] / 86400
    assert 19.9 < days <= 20
    protocols = {dict(k)["protocol"]: v for k, v in samples["tlsgate_protocol_accepted"].items()}
    assert protocols == {"TLSv1.2": 1, "TLSv1.3": 1}
    # another pack, by id: tls13-only fails a server that still accepts TLS 1.2
    other = _samples(serving.get(f"/probe?target={target}&pack=tls13-only").text)
    assert other["tlsgate_pack_passed"] == {(("pack", "tls13-only"), *t): 0.0}
    # a probe is not a watch: /metrics keeps only what was seeded (nothing here)
    assert "tlsgate_scan_success{" not in serving.get("/metrics").text


def test_an_unreachable_target_is_a_failed_probe(serving: Serving) -> None:
    """Nothing listens: HTTP 200 with probe_success 0 (the probe ran; the target failed), as blackbox does."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening: refused
        response = serving.get(f"/probe?target=127.0.0.1:{port}")
    assert response.status_code == 200
    samples = _samples(response.text)
    assert samples["tlsgate_probe_success"] == {(): 0.0}
    assert "tlsgate_pack_passed" not in samples


@pytest.mark.parametrize(
    ("path", "status", "line"),
    [
        ("/probe?target=10.0.0.1:443", 403, "target 10.0.0.1:443 is not in the --allow list"),
        ("/probe?target=[::1]:443", 403, "target [::1]:443 is not in the --allow list"),
        (
            "/probe?target=127.0.0.1:443&pack=/etc/passwd",
            400,
            "unknown pack '/etc/passwd': this server scans with essentials, tls13-only",
        ),
        ("/probe?target=127.0.0.1:443&target=127.0.0.2:443", 400, "target and pack may be given once each"),
        ("/probe?target=127.0.0.1:0", 400, "bad target '127.0.0.1:0': port 0 is out of range 1-65535"),
        ("/probe", 400, "missing target: /probe?target=HOST:PORT[&pack=ID]"),
        ("/probe?" + "&".join(f"x{i}=1" for i in range(20)), 400, "too many query parameters"),
        ("/nothing", 404, "not found: try /metrics, /probe, /healthz"),
        ("/healthz", 200, "ok"),
    ],
)
def test_refusals_are_one_line(serving: Serving, path: str, status: int, line: str) -> None:
    response = serving.get(path)
    assert (response.status_code, response.text) == (status, line + "\n")


def test_concurrency_cap_and_time_bound(tmp_path: Path, silent_server: LoopbackServer) -> None:
    """A target that accepts and never answers holds the one probe slot for at most --probe-time (then a failed
    probe); a second request meanwhile gets 503 at once."""
    port = int(silent_server.target.rsplit(":", 1)[1])
    with tlsgate_serve(tmp_path, "--allow", "127.0.0.1", "--max-probes", "1", "--probe-time", "3") as serving:
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            started = time.monotonic()
            first = pool.submit(serving.get, f"/probe?target=127.0.0.1:{port}")
            time.sleep(1)
            second = serving.get(f"/probe?target=127.0.0.1:{port}")
            assert (second.status_code, second.text) == (503, "1 probe already running: try again later\n")
            assert time.monotonic() - started < 3
            response = first.result(timeout=60)
            elapsed = time.monotonic() - started
        assert response.status_code == 200
        assert _samples(response.text)["tlsgate_probe_success"] == {(): 0.0}
        assert elapsed < 3 + 8, elapsed  # the budget, the stop's grace, a loaded machine


def test_a_client_that_sends_nothing_blocks_no_one(tmp_path: Path) -> None:
    """Idle and half-sent requests hold their own connection only: /metrics still answers at once."""
    with tlsgate_serve(tmp_path) as serving:
        idle = [socket.create_connection(("127.0.0.1", serving.port)) for _ in range(5)]
        idle[0].sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # headers never finished
        try:
            started = time.monotonic()
            assert serving.get("/metrics", timeout=5).status_code == 200
            assert time.monotonic() - started < 2
        finally:
            for sock in idle:
                sock.close()


def test_metrics_seeded_from_a_report(tmp_path: Path) -> None:
    """--from-report: the report's targets on /metrics (a later file's target replaces an earlier one's)."""
    at = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    older = protocol_facts("a.example.net:443", ["TLSv1.1", "TLSv1.2"], at)
    newer = protocol_facts("a.example.net:443", ["TLSv1.3"], at + dt.timedelta(hours=6))
    down = protocol_facts("b.example.net:443", [], at, scanned=False)
    files = []
    for name, facts in (("old.json", [older, down]), ("new.json", [newer])):
        targets = [target_report(f, []) for f in facts]
        options = ScanOptions(timeout=5, packs=[])
        report = decided_report(
            started_at=at, finished_at=at, options=options, packs=[], targets=targets, summary=summarise(targets)
        )
        (tmp_path / name).write_text(report.model_dump_json())
        files += ["--from-report", str(tmp_path / name)]
    with tlsgate_serve(tmp_path, *files) as serving:
        response = serving.get("/metrics", headers={"Accept-Encoding": "gzip"})
        assert response.headers["content-encoding"] == "gzip"
        samples = _samples(response.text)
    assert samples["tlsgate_scan_success"] == {
        (("target", "a.example.net:443"),): 1,
        (("target", "b.example.net:443"),): 0,
    }
    last = samples["tlsgate_last_scan_timestamp_seconds"][(("target", "a.example.net:443"),)]
    assert last == (at + dt.timedelta(hours=6)).timestamp()
    accepted = {dict(k)["protocol"] for k, v in samples["tlsgate_protocol_accepted"].items() if v == 1}
    assert accepted == {"TLSv1.3"}
    assert "2 targets" in serving.log.read_text()


def test_usage_errors_exit_2_with_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        cases = [
            (["--listen", "localhost:9219"], "--listen 'localhost:9219': expected ADDRESS:PORT"),
            (["--listen", "::1:9219"], "--listen '::1:9219': write an IPv6 address in brackets"),
            (["--listen", "127.0.0.1:70000"], "the port must be a number 0-65535"),
            (["--listen", f"127.0.0.1:{busy}"], f"cannot listen on 127.0.0.1:{busy}: Address already in use"),
            (["--allow", "http://x"], "--allow 'http://x': neither an address or CIDR network nor a host name"),
            (["--from-report", str(bad)], f"--from-report {bad}:1:2: not valid JSON"),
            (["--from-report", str(tmp_path / "none.json")], "--from-report"),
            (["--pack", "no-such-pack", "--listen", f"127.0.0.1:{free_port()}"], "no-such-pack"),
        ]
        for args, message in cases:
            run = run_tlsgate("serve", *args, timeout=60)
            assert run.code == 2, (args, run.stderr)
            lines = run.stderr.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("tlsgate: error: ") and message in lines[0], (
                args,
                run.stderr,
            )


def test_help_names_the_endpoints_the_guard_and_the_exit_codes() -> None:
    run = run_tlsgate("serve", "--help", timeout=60)
    assert run.code == 0
    text = " ".join(run.stdout.split())
    for words in ("/probe?target=HOST:PORT&pack=ID", "None by default: /probe refuses every target", "--from-report",
                  "0 stopped by SIGTERM or Ctrl-C", "2 usage error"):  # fmt: skip
        assert words in text, words
