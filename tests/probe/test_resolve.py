"""Name resolution is bounded by the step's deadline: a resolver that never answers costs a target its timeout and
a ``dns`` error, never the system resolver's own (30 s and more) wait.

Two levels: ``resolve`` itself with resolvers that stall (its contract, with no network), and the real thing — the
system resolver (glibc) pointed at a DNS server on loopback that never answers, in a private network and mount
namespace (``unshare -rnm``, resolv.conf bind-mounted), where ``tlsgate scan`` and the OCSP/CRL/AIA fetcher run.
The namespace tests are skipped where unprivileged namespaces are not allowed.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from scanner.facts import ErrorClass
from scanner.probe.connect.deadline import Deadline
from scanner.probe.connect.preflight import resolve_all
from scanner.probe.connect.resolve import ResolveError, resolve
from scanner.targets import parse_target

REPO = Path(__file__).resolve().parents[2]


def _stalled(release: threading.Event):
    def resolver(host: str, port: int) -> list[str]:
        release.wait(30)
        return ["127.0.0.1"]

    return resolver


def test_a_resolver_that_stalls_ends_at_the_deadline():
    release = threading.Event()
    started = time.monotonic()
    try:
        with pytest.raises(ResolveError) as caught:
            resolve("stalled.test", 443, 0.5, _stalled(release))
    finally:
        release.set()
    assert caught.value.timed_out
    assert str(caught.value) == "cannot resolve stalled.test: no answer from the resolver within 0.5s"
    assert time.monotonic() - started < 3


def test_many_stalled_lookups_are_each_bounded():
    """More stalled lookups than the pool has threads: those left queued are bounded by their own deadline too."""
    release = threading.Event()
    outcomes: list[bool] = []

    def one() -> None:
        try:
            resolve("stalled.test", 443, 1.0, _stalled(release))
        except ResolveError as exc:
            outcomes.append(exc.timed_out)

    started = time.monotonic()
    threads = [threading.Thread(target=one) for _ in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    release.set()
    assert outcomes == [True] * 40
    assert time.monotonic() - started < 10


def test_an_answer_in_time_is_returned():
    assert resolve("fast.test", 443, 5, lambda host, port: ["192.0.2.1", "2001:db8::1"]) == ["192.0.2.1", "2001:db8::1"]


def test_an_ip_address_needs_no_resolver():
    def never(host: str, port: int) -> list[str]:
        raise AssertionError("an address was looked up")

    assert resolve("127.0.0.1", 443, 0.1, never) == ["127.0.0.1"]
    assert resolve("::1", 443, 0.1, never) == ["::1"]


def test_a_name_that_does_not_exist_is_said_plainly():
    def missing(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with pytest.raises(ResolveError) as caught:
        resolve("missing.test", 443, 5, missing)
    assert not caught.value.timed_out
    assert str(caught.value) == "cannot resolve missing.test: Name or service not known"


def test_preflight_resolution_is_a_dns_error_when_no_time_is_left():
    error = resolve_all(parse_target("stalled.test:443"), Deadline(0))
    assert not isinstance(error, list)
    assert error.error_class == ErrorClass.dns


# --- the system resolver against a DNS server that never answers ------------------------------------------------

_INSIDE = textwrap.dedent(
    """
    import json, socket, subprocess, sys, threading, time

    # A DNS server on loopback that reads every query and never answers (UDP and TCP).
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 53))
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.bind(("127.0.0.1", 53))
    tcp.listen(16)
    held = []
    threading.Thread(target=lambda: [udp.recvfrom(4096) for _ in iter(int, 1)], daemon=True).start()
    threading.Thread(target=lambda: [held.append(tcp.accept()) for _ in iter(int, 1)], daemon=True).start()

    result = {}
    # The control: the system resolver itself is still waiting after 4 s, so the bounds below are ours.
    done = threading.Event()
    threading.Thread(target=lambda: (socket.getaddrinfo("control.stalled.test", 443), done.set()), daemon=True).start()
    result["system_resolver_still_waiting_after_4s"] = not done.wait(4)

    started = time.monotonic()
    run = subprocess.run(
        [sys.executable, "-m", "scanner.cli", "scan", "www.stalled.test:443", "--timeout", "2", "--json", "-"],
        capture_output=True, text=True, timeout=120,
    )
    result["scan_seconds"] = time.monotonic() - started
    result["scan_code"] = run.returncode
    result["scan_stderr"] = run.stderr
    report = json.loads(run.stdout) if run.stdout.strip() else {}
    result["scan_error"] = [t.get("facts", t).get("error") for t in report.get("targets", [])]

    from scanner.probe.pki.fetch import Fetcher
    started = time.monotonic()
    got = Fetcher(timeout=1).get("http://ocsp.stalled.test/")
    result["fetch_seconds"] = time.monotonic() - started
    result["fetch_reason"] = getattr(got, "reason", None)
    print(json.dumps(result))
    """
)


def _namespaces_work() -> bool:
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return False
    probe = subprocess.run(["unshare", "-rnm", "true"], capture_output=True, check=False)
    return probe.returncode == 0


@pytest.fixture(scope="module")
def stalled_dns(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    if not _namespaces_work():
        pytest.skip("unprivileged network and mount namespaces (unshare -rnm) are not available here")
    work = tmp_path_factory.mktemp("stalled-dns")
    resolv = work / "resolv.conf"
    resolv.write_text("nameserver 127.0.0.1\noptions timeout:30 attempts:1\n")
    script = work / "inside.py"
    script.write_text(_INSIDE)
    shell = f"ip link set lo up && mount --bind {resolv} /etc/resolv.conf && exec {sys.executable} {script}"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    run = subprocess.run(
        ["unshare", "-rnm", "sh", "-c", shell],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
        cwd=REPO,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    result: dict[str, object] = json.loads(run.stdout.strip().splitlines()[-1])
    return result


def test_the_system_resolver_really_stalls_there(stalled_dns):
    """Without this the tests below could pass against a resolver that fails fast."""
    assert stalled_dns["system_resolver_still_waiting_after_4s"] is True


def test_scan_of_a_name_whose_resolver_never_answers_is_a_dns_error_within_the_timeout(stalled_dns):
    assert stalled_dns["scan_code"] == 3, stalled_dns["scan_stderr"]
    assert isinstance(stalled_dns["scan_seconds"], float)
    assert stalled_dns["scan_seconds"] < 3 * 2 + 5, stalled_dns
    assert stalled_dns["scan_error"] == [
        {
            "error_class": "dns",
            "message": "cannot resolve www.stalled.test: no answer from the resolver within 2s",
        }
    ], stalled_dns
    assert "Traceback" not in str(stalled_dns["scan_stderr"])


def test_a_fetch_whose_host_name_never_resolves_ends_at_the_fetch_deadline(stalled_dns):
    assert stalled_dns["fetch_reason"] == "cannot resolve ocsp.stalled.test: no answer from the resolver within 1s"
    assert isinstance(stalled_dns["fetch_seconds"], float)
    assert stalled_dns["fetch_seconds"] < 5
