"""The terminal summary: colour on a terminal, plain text in pipes and with NO_COLOR, --quiet and --verbose."""

from __future__ import annotations

import io
import json

from rich.console import Console

from scanner.render.terminal import summary_lines
from scanner.saved import read_report


def _report(tlsgate, server, tmp_path):
    path = tmp_path / "r.json"
    tlsgate("scan", "--pack", "tls13-only", server.target, "--json", str(path))
    return read_report(path)


def _render(lines, **console_options) -> str:
    buffer = io.StringIO()
    console = Console(file=buffer, width=200, **console_options)
    for line in lines:
        console.print(line)
    return buffer.getvalue()


def test_colour_on_a_terminal_plain_otherwise(tlsgate, tls12_13_server, tmp_path):
    """On a terminal the verdict is coloured; piped, or with NO_COLOR, the same text has no escape codes."""
    lines = summary_lines(_report(tlsgate, tls12_13_server, tmp_path))
    coloured = _render(lines, force_terminal=True, color_system="standard")
    plain = _render(lines, force_terminal=False)
    no_color = _render(lines, force_terminal=True, no_color=True)
    assert "\x1b[" in coloured
    assert "\x1b[" not in plain
    assert "\x1b[31m" not in no_color and "\x1b[32m" not in no_color
    assert plain.splitlines()[0].startswith("FAIL  ")
    assert "fail [high] TLS13ONLY-001" in plain


def test_piped_cli_output_is_plain(tlsgate, tls12_13_server):
    """The real command line, piped as CI runs it, prints no escape codes."""
    run = tlsgate("scan", "--pack", "tls13-only", tls12_13_server.target)
    assert run.code == 1
    assert "\x1b[" not in run.stdout and "TLS13ONLY-001" in run.stdout


def test_quiet_and_verbose(tlsgate, tls12_13_server, tmp_path):
    """--quiet prints no summary (the exit code speaks); --verbose adds passed rules and a facts line."""
    quiet = tlsgate(
        "scan", "--pack", "tls13-only", tls12_13_server.target, "--quiet", "--json", str(tmp_path / "q.json")
    )
    assert quiet.code == 1
    assert quiet.stdout.strip() == ""
    assert json.loads((tmp_path / "q.json").read_text())["targets"][0]["verdict"] == "fail"
    verbose = tlsgate("scan", "--pack", "tls13-only", tls12_13_server.target, "--verbose")
    assert "pass [high] TLS13ONLY-002" in verbose.stdout
    assert "protocols accepted: TLSv1.2, TLSv1.3" in verbose.stdout
