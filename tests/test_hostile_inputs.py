"""Hostile inputs. Certificate, CA, pin and key files: a directory, a FIFO, /dev/zero or garbage named where a
certificate file belongs ends in one clear line and exit 2 (for ``tlsgate cert``, a readable file that holds no
certificate is that file's error, exit 3, as documented) — never an internal error, never a traceback, never a
hang. A pack's regular expression that backtracks without end on a certificate's text costs one rule one second,
not the run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from scanner.boundedfile import Unreadable, read_limited
from scanner.certfiles import CertFileError, read_certificates
from scanner.exitcodes import ExitCode
from scanner.policy.operators import MATCH_SECONDS, VALUE_OPERATORS, PatternTimeout
from scanner.probe.connect.credentials import CredentialsError, load_credentials
from scanner.probe.pki.pins import parse_pins
from scanner.probe.pki.storefiles import TrustStoreError, read_bundle
from tests.helpers import run_tlsgate
from tests.pki import hierarchy, issue, name

BAD_BASE64_PEM = b"-----BEGIN CERTIFICATE-----\n!!!notbase64@@@\n-----END CERTIFICATE-----\n"
DER_GARBAGE = b"\x30\x82\x01\x00" + b"garbage" * 20


def _fifo(tmp_path: Path) -> Path:
    path = tmp_path / "fifo"
    os.mkfifo(path)
    return path


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    """One path per hostile kind of file."""
    directory = tmp_path / "dir"
    directory.mkdir()
    garbage = tmp_path / "garbage"
    garbage.write_bytes(os.urandom(3000))
    bad_pem = tmp_path / "bad.pem"
    bad_pem.write_bytes(BAD_BASE64_PEM)
    der = tmp_path / "bad.der"
    der.write_bytes(DER_GARBAGE)
    return {
        "directory": directory,
        "fifo": _fifo(tmp_path),
        "dev-zero": Path("/dev/zero"),
        "garbage": garbage,
        "bad-base64-pem": bad_pem,
        "der-garbage": der,
    }


KINDS = ["directory", "fifo", "dev-zero", "garbage", "bad-base64-pem", "der-garbage"]


# --- the bounded reader -----------------------------------------------------------------------------------------


def test_a_directory_is_refused_by_its_type(tmp_path):
    with pytest.raises(Unreadable, match="Is a directory"):
        read_limited(tmp_path)


def test_dev_zero_is_refused_at_the_limit_fast():
    started = time.monotonic()
    with pytest.raises(Unreadable) as caught:
        read_limited(Path("/dev/zero"), 1 << 20)
    assert caught.value.too_large
    assert time.monotonic() - started < 5


def test_a_regular_file_over_the_limit_is_refused_by_its_size(tmp_path):
    path = tmp_path / "big"
    path.write_bytes(b"x" * 1001)
    with pytest.raises(Unreadable, match="larger than 1000 bytes"):
        read_limited(path, 1000)
    path.write_bytes(b"x" * 1000)
    assert len(read_limited(path, 1000)) == 1000


def test_a_fifo_nobody_writes_to_reads_as_empty_at_once(tmp_path):
    started = time.monotonic()
    assert read_limited(_fifo(tmp_path)) == b""
    assert time.monotonic() - started < 2


def test_a_fifo_whose_writer_stays_silent_ends_at_the_wait(tmp_path):
    path = _fifo(tmp_path)
    writer = subprocess.Popen([sys.executable, "-c", f"f = open({str(path)!r}, 'wb'); import time; time.sleep(30)"])
    try:
        time.sleep(0.3)  # the writer blocks in open until a reader comes; ours does not wait for it
        started = time.monotonic()
        with pytest.raises(Unreadable, match=r"nothing received for 0.5s"):
            read_limited(path, wait=0.5)
        assert time.monotonic() - started < 5
    finally:
        writer.kill()
        writer.wait()


def test_a_pipe_that_trickles_ends_at_the_total_wait(monkeypatch):
    """A byte every 0.1 s never lets the silence run out; the total wait ends it (2 minutes in use, 1 s here)."""
    monkeypatch.setattr("scanner.boundedfile.TOTAL_WAIT", 1.0)
    read_end, write_end = os.pipe()
    stop = threading.Event()

    def trickle() -> None:
        with os.fdopen(write_end, "wb", buffering=0) as out:
            while not stop.wait(0.1):
                out.write(b"x")

    thread = threading.Thread(target=trickle)
    thread.start()
    started = time.monotonic()
    try:
        with pytest.raises(Unreadable, match=r"not ended within 1s"):
            read_limited(Path(f"/dev/fd/{read_end}"), wait=0.5)
        assert time.monotonic() - started < 5
    finally:
        stop.set()
        thread.join()
        os.close(read_end)


def test_a_pipe_is_read_whole(tmp_path):
    """Process substitution (``tlsgate cert <(...)``) hands over a pipe that is written while it is read."""
    read_end, write_end = os.pipe()
    payload = b"y" * (3 * 256 * 1024 + 17)

    def write() -> None:
        with os.fdopen(write_end, "wb") as out:
            for start in range(0, len(payload), 100_000):
                out.write(payload[start : start + 100_000])
                out.flush()
                time.sleep(0.01)

    thread = threading.Thread(target=write)
    thread.start()
    try:
        assert read_limited(Path(f"/dev/fd/{read_end}")) == payload
    finally:
        thread.join()
        os.close(read_end)


def test_a_ca_bundle_of_several_megabytes_passes(tmp_path):
    pem = hierarchy("bundle").root.pem
    path = tmp_path / "bundle.pem"
    path.write_bytes(pem * (5 * 1024 * 1024 // len(pem)))
    started = time.monotonic()
    certs = read_bundle(path, "CA file")
    assert len(certs) > 1000
    assert time.monotonic() - started < 60


# --- each reader of certificate-like files ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_ca_file(files, kind):
    with pytest.raises(TrustStoreError) as caught:
        read_bundle(files[kind], "CA file")
    assert str(caught.value).startswith("CA file: ")
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("kind", KINDS)
def test_pin_file(files, kind):
    with pytest.raises(TrustStoreError) as caught:
        parse_pins([str(files[kind])])
    assert f"pin file {files[kind]}" in str(caught.value)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("option", ["cert", "p12"])
def test_client_credentials(files, kind, option, tmp_path):
    path = files[kind]
    with pytest.raises(CredentialsError) as caught:
        load_credentials(
            path if option == "cert" else None,
            None,
            path if option == "p12" else None,
            None,
            None,
            tmp_path,
        )
    assert str(path) in str(caught.value)


@pytest.mark.parametrize("kind", ["garbage", "bad-base64-pem", "der-garbage"])
def test_certificate_file_content(files, kind):
    """Invalid content: one line naming the file and why, no library FAQ links or exception reprs."""
    path = files[kind]
    with pytest.raises(CertFileError) as caught:
        read_certificates(path, path.read_bytes())
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    assert "https://" not in message
    assert "InvalidData" not in message


# --- the command line -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "expected"),
    [("directory", "Is a directory"), ("fifo", None), ("dev-zero", "is larger than 16 MiB")],
)
def test_cert_command_on_unreadable_inputs(files, kind, expected):
    """A FIFO with no writer is an empty file, judged as such (exit 3); the others are usage errors."""
    run = run_tlsgate("cert", str(files[kind]), timeout=60)
    assert "Traceback" not in run.stderr
    assert run.seconds < 30
    if expected is None:
        assert run.code == ExitCode.NOT_CHECKED, run.stderr
        assert "is empty" in run.stderr
        return
    assert run.code == ExitCode.USAGE, run.stderr
    assert run.stderr.strip() == f"tlsgate: error: certificate file {files[kind]}: {expected}"


@pytest.mark.parametrize("kind", ["garbage", "bad-base64-pem", "der-garbage"])
def test_cert_command_on_invalid_content(files, kind):
    run = run_tlsgate("cert", str(files[kind]), timeout=60)
    assert run.code == ExitCode.NOT_CHECKED, run.stderr
    assert "Traceback" not in run.stderr
    assert "https://" not in run.stderr


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("option", ["--ca-file", "--pin", "--client-cert", "--client-p12"])
def test_scan_options_refuse_hostile_files(files, kind, option, refused_port):
    """Refused before anything is scanned: exit 2 and one line, whatever the file is."""
    run = run_tlsgate("scan", f"127.0.0.1:{refused_port}", "--timeout", "1", option, str(files[kind]), timeout=60)
    assert run.code == ExitCode.USAGE, run.stderr
    assert "Traceback" not in run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tlsgate: error: "), run.stderr
    assert run.seconds < 30


def test_password_file_that_is_dev_zero(files):
    run = run_tlsgate("cert", str(files["garbage"]), "--password-file", "/dev/zero", timeout=60)
    assert run.code == ExitCode.USAGE, run.stderr
    assert run.stderr.strip() == "tlsgate: error: cannot read password file /dev/zero: it is larger than 1 MiB"


# --- a pack's pattern that backtracks without end ---------------------------------------------------------------

PATTERN_PACK = """\
id: hostile-pattern
title: A pack whose patterns backtrack on a long run of a's
version: "1"
rules:
  - id: HP-1
    title: alternation under a quantifier
    severity: high
    fact: certificate.leaf.subject
    matches: "CN=(a|aa)+"
  - id: HP-2
    title: nested quantifiers
    severity: high
    fact: certificate.leaf.subject
    matches: "CN=(a+)+"
  - id: HP-3
    title: an ordinary pattern
    severity: high
    fact: certificate.leaf.subject
    matches: "CN=a+!"
"""


def test_a_catastrophic_pattern_is_that_rules_error_and_the_run_ends_fast(tmp_path):
    """With Python's re, ``CN=(a|aa)+`` and ``CN=(a+)+`` against 60 a's and a '!' backtrack for centuries; here the
    first is stopped at the match timeout (the rule is ``error``, exit 3 — the pack could not judge), the second
    is answered at once by regex's own optimisations, and the ordinary rule is judged as usual."""
    cert = tmp_path / "aaa.pem"
    cert.write_bytes(issue(name("a" * 60 + "!", organization=None)).pem)
    pack = tmp_path / "pattern.yaml"
    pack.write_text(PATTERN_PACK)
    run = run_tlsgate("cert", str(cert), "--pack", str(pack), "--json", "-", timeout=120)
    assert "Traceback" not in run.stderr
    assert run.seconds < 20, run.seconds
    findings = {f["rule"]: f for f in json.loads(run.stdout)["targets"][0]["findings"]}
    assert findings["HP-1"]["status"] == "error"
    assert findings["HP-1"]["message"].startswith(
        f"the pattern 'CN=(a|aa)+' did not finish within {MATCH_SECONDS:g}s on a value of 64 characters"
    )
    assert findings["HP-2"]["status"] == "fail"
    assert findings["HP-3"]["status"] == "pass"
    assert run.code == ExitCode.POLICY_FAILED  # HP-2's failure outranks HP-1's error


def test_a_pattern_timeout_is_bounded_per_value(tmp_path):
    """The operator itself: the match stops near MATCH_SECONDS however long the text."""
    started = time.monotonic()
    with pytest.raises(PatternTimeout):
        VALUE_OPERATORS["matches"].predicate("a" * 5000 + "!", "(a|aa)+")
    assert time.monotonic() - started < MATCH_SECONDS * 5


def test_an_invalid_pattern_is_refused_at_load(tmp_path):
    pack = tmp_path / "bad.yaml"
    pack.write_text(PATTERN_PACK.replace('"CN=(a|aa)+"', '"CN=(a|aa+"'))
    run = run_tlsgate("cert", "/dev/null", "--pack", str(pack), timeout=60)
    assert run.code == ExitCode.USAGE, run.stderr
    assert f"{pack}:9:14: " in run.stderr
    assert "invalid regular expression" in run.stderr
