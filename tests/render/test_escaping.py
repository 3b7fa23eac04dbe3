"""A server rewrites what the auditor sees if its certificate's text reaches a terminal raw: a real TLS server on
loopback presents a certificate whose subject (CN and O) and subjectAltNames carry ESC [ 2 J (clear screen),
ESC ] 0 ; ... BEL (window title), colour codes and a right-to-left override. The terminal summary (on a
pseudo-terminal and in a pipe), the verbose output and every report format show them escaped and stay valid.
"""

from __future__ import annotations

import csv
import io
import json
import re
import ssl
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from scanner.exitcodes import ExitCode
from scanner.textsafe import printable
from tests import pki
from tests.helpers import python_tls_server, run_tlsgate, run_tlsgate_on_terminal

HOSTILE = "\x1b[2J\x1b]0;owned\x07\x1b[31mRED\x1b[0m\u202egro.elpmaxe"
HOSTILE_SANS = ("evil\x1b[2J.example", "b\x1b]0;t\x07.example")
# What must never reach a terminal from the certificate: the clear-screen, the title, BEL, the override.
RAW = ("\x1b[2J", "\x1b]0;", "\x07", "\u202e")
# The same controls as text (the DN's ';' is escaped by RFC 4514 as '\;').
SHOWN = ("\\x1b[2J", "\\x07", "\\u{202e}gro.elpmaxe", "evil\\x1b[2J.example", "b\\x1b]0;t\\x07.example")
# Controls that must not be in any report: C0 but tab and line breaks, DEL, C1, bidi overrides and isolates.
CONTROLS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")

# A pack whose failure message quotes the subjectAltNames, so they are in the summary without --verbose.
NAMES_PACK = """\
id: plain-names
title: Certificate names are plain host names
version: "1.0.0"
source: {document: "tlsgate tests"}
description: A test pack whose failure message quotes the certificate's names.
rules:
  - id: NAMES-001
    title: The certificate names only localhost and 127.0.0.1
    severity: high
    fact: certificate.leaf.subject_alt_names
    only: ["DNS:localhost", "IP:127.0.0.1"]
    rationale: A test rule.
    remediation: None.
"""


@pytest.fixture(scope="module")
def hostile_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A TLS server (Python's ssl) whose certificate's subject and SANs carry terminal escape sequences."""
    directory = tmp_path_factory.mktemp("hostile-cert")
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, f"O {HOSTILE}"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"CN {HOSTILE}"),
        ]
    )
    leaf = pki.issue(subject, sans=("localhost", "127.0.0.1", *HOSTILE_SANS))
    cert, key = leaf.write(directory, "hostile")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    with python_tls_server(context) as server:
        yield server.port


@pytest.fixture(scope="module")
def names_pack(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pack") / "plain-names.yaml"
    path.write_text(NAMES_PACK)
    return path


def _assert_escaped(text: str, shown: tuple[str, ...]) -> None:
    for raw in RAW:
        assert raw not in text, f"{raw!r} reached the output raw"
    for escaped in shown:
        assert escaped in text, f"{escaped!r} is not shown"


def test_piped_summary_and_verbose_output_show_the_certificate_escaped(hostile_server, names_pack):
    """In a pipe: no escape character at all; the subject (verbose) and the SANs (verbose, and a failure message)
    are shown with their controls as text."""
    target = f"127.0.0.1:{hostile_server}"
    verbose = run_tlsgate("scan", target, "--verbose", "--pack", "essentials", "--pack", str(names_pack), timeout=120)
    assert verbose.code == ExitCode.POLICY_FAILED, verbose.stderr
    output = verbose.stdout + verbose.stderr
    assert "\x1b" not in output
    _assert_escaped(output, SHOWN)
    assert "certificate: CN=CN \\x1b[2J\\x1b]0\\;owned\\x07\\x1b[31mRED\\x1b[0m\\u{202e}gro.elpmaxe" in output
    summary = run_tlsgate("scan", target, "--pack", str(names_pack), timeout=120)
    assert "\x1b" not in summary.stdout + summary.stderr
    _assert_escaped(summary.stdout, SHOWN[3:])  # the summary's failure line quotes the names


def test_terminal_summary_in_colour_shows_the_certificate_escaped(hostile_server, names_pack):
    """On a terminal rich colours the summary with its own escape sequences, but none of the server's. (The JSON
    report on standard output sends the summary to standard error, the terminal.)"""
    run = run_tlsgate_on_terminal(
        "scan", f"127.0.0.1:{hostile_server}", "--verbose", "--no-progress", "--pack", str(names_pack),
        "--format", "json", raw=True,
    )  # fmt: skip
    assert run.code == ExitCode.POLICY_FAILED, run.stderr
    received = run.stderr
    assert "\x1b[" in received  # it is a terminal: rich drew colours
    _assert_escaped(received, SHOWN)


def test_every_report_format_is_valid_and_escaped(hostile_server, names_pack, tmp_path):
    """Markdown, CSV, JUnit, SARIF and HTML of the same scan: parseable, no raw control, the names escaped; the
    JSON report keeps the certificate's text as it was (JSON escapes controls), and a report rendered again from
    it is escaped the same way."""
    formats = {"json": "r.json", "markdown": "r.md", "csv": "r.csv", "junit": "r.xml", "sarif": "r.sarif"}
    formats["html"] = "r.html"
    args = [arg for fmt, name in formats.items() for arg in ("--format", f"{fmt}={tmp_path / name}")]
    run = run_tlsgate(
        "scan", f"127.0.0.1:{hostile_server}", "--pack", str(names_pack), "--pack", "queue-manager-channel", *args,
        timeout=120,
    )  # fmt: skip
    assert run.code == ExitCode.POLICY_FAILED, run.stderr
    texts = {fmt: (tmp_path / name).read_text(encoding="utf-8") for fmt, name in formats.items()}

    report = json.loads(texts["json"])  # the record: the certificate's own text, JSON-escaped
    assert report["targets"][0]["facts"]["certificate"]["leaf"]["subject_fields"]["common_name"] == f"CN {HOSTILE}"

    for fmt in ("markdown", "csv", "junit", "sarif", "html"):
        assert not CONTROLS.search(texts[fmt]), fmt
    # Markdown escapes its own markup too ('\\x1b\\[' renders as '\x1b['): read as rendered
    _assert_escaped(re.sub(r"\\(.)", r"\1", texts["markdown"]), SHOWN[3:])

    rows = list(csv.reader(io.StringIO(texts["csv"], newline="")))
    messages = " ".join(row[6] for row in rows[1:])
    _assert_escaped(messages, SHOWN)
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in rows[1:] for cell in row)

    suites = ET.fromstring(texts["junit"])  # noqa: S314 - our own output, parsed to prove it is well-formed XML
    failures = " ".join(f.get("message", "") for f in suites.iter("failure"))
    _assert_escaped(failures, SHOWN)

    sarif = json.loads(texts["sarif"])
    sarif_messages = " ".join(r["message"]["text"] for r in sarif["runs"][0]["results"])
    _assert_escaped(sarif_messages, SHOWN)

    _assert_escaped(texts["html"], (printable(HOSTILE_SANS[0]),))
    assert "<script>" not in texts["html"].split("<script", 1)[0]  # sanity: the page starts as HTML

    again = run_tlsgate("report", "render", str(tmp_path / "r.json"), "--format", "markdown", timeout=60)
    assert again.code == 0, again.stderr
    assert not CONTROLS.search(again.stdout + again.stderr)
