"""The HTML report in a real browser: Debian's chromium, headless, on the report of a real scan.

Chromium is driven through its own command line, with no Python package in between: ``--dump-dom`` prints the
DOM once the page has loaded and its script has run (so what the filter hid is in it), ``--screenshot`` writes a
PNG. Console output comes from chromium's log (``--enable-logging=stderr --v=0``), where every console message,
uncaught exception and Content-Security-Policy violation of the page is a ``CONSOLE`` line whatever its level.
The report logs nothing when all is well, so any such line fails the test; a control test proves on this
chromium build that a page with an error, or a report that tries to load something, is caught.

The screenshot and the report it shows are kept in ``test-artifacts/`` for people and CI to look at.
Without chromium the tests skip locally and fail under CI (``CI`` set): ``tools/install-test-servers.sh``
installs it.
"""

from __future__ import annotations

import json
import os
import re
import signal
import ssl
import struct
import subprocess
import tempfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import REPO, ServerFiles, free_port, python_tls_server, run_tlsgate, server_context

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO / "test-artifacts"
SCREENSHOT = ARTIFACTS / "html-report.png"
WINDOW = (1280, 2000)
PACKS = ("tls13-only", "tls12-plus")
FAIL_RULE = "TLS13ONLY-001"
BROWSER_TIMEOUT = 90.0


def _require_chromium() -> None:
    if CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK):
        return
    reason = f"Debian's chromium ({CHROMIUM}) is missing: tools/install-test-servers.sh installs it (apt-get)"
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


# --- chromium ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BrowserRun:
    stdout: str
    log: str  # chromium's stderr: its own diagnostics and the page's console

    def console(self) -> list[str]:
        """What the page wrote to the console: messages, uncaught exceptions, CSP violations."""
        return [line for line in self.log.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


def chromium(url: str, profile: Path, *options: str) -> BrowserRun:
    """One headless chromium run on ``url`` with a fresh profile; the whole process group goes if it hangs."""
    command = [
        str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
        f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", *options, url,
    ]  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=BROWSER_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        _, stderr = proc.communicate()
        pytest.fail(f"chromium did not finish within {BROWSER_TIMEOUT:.0f} s on {url}:\n{stderr[-3000:]}")
    assert proc.returncode == 0, f"chromium exited {proc.returncode} on {url}:\n{stderr[-3000:]}"
    return BrowserRun(stdout, stderr)


# --- the rendered DOM ----------------------------------------------------------------------------------------------

_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


@dataclass
class Node:
    tag: str
    attrs: dict[str, str]
    children: list[Node] = field(default_factory=list)
    parts: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return " ".join("".join(self.parts).split())

    @property
    def hidden(self) -> bool:
        return "hidden" in self.attrs

    def find_all(self, tag: str, **attrs: str) -> list[Node]:
        """Descendants with this tag whose attributes (``class_`` for class, ``data_x`` for data-x) contain these."""
        wanted = {name.rstrip("_").replace("_", "-"): value for name, value in attrs.items()}
        found: list[Node] = []
        for child in self.children:
            if child.tag == tag and all(
                value in child.attrs.get(name, "").split() if name == "class" else child.attrs.get(name) == value
                for name, value in wanted.items()
            ):
                found.append(child)
            found.extend(child.find_all(tag, **attrs))
        return found

    def find(self, tag: str, **attrs: str) -> Node:
        (node,) = self.find_all(tag, **attrs)
        return node


class _DomBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {name: value or "" for name, value in attrs})
        self.stack[-1].children.append(node)
        if tag not in _VOID:
            self.stack.append(node)

    def handle_endtag(self, tag: str) -> None:
        for depth in range(len(self.stack) - 1, 0, -1):
            if self.stack[depth].tag == tag:
                del self.stack[depth:]
                return

    def handle_data(self, data: str) -> None:
        for node in self.stack[1:]:
            node.parts.append(data)


def parse_dom(text: str) -> Node:
    builder = _DomBuilder()
    builder.feed(text)
    builder.close()
    return builder.root


# --- PNG ----------------------------------------------------------------------------------------------------------


def _unfilter(kind: int, line: bytearray, prior: bytes | bytearray, bpp: int) -> None:
    for i in range(len(line)):
        left = line[i - bpp] if i >= bpp else 0
        up = prior[i]
        corner = prior[i - bpp] if i >= bpp else 0
        if kind == 1:
            line[i] = (line[i] + left) & 0xFF
        elif kind == 2:
            line[i] = (line[i] + up) & 0xFF
        elif kind == 3:
            line[i] = (line[i] + (left + up) // 2) & 0xFF
        elif kind == 4:
            p = left + up - corner
            pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
            line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 0xFF


def png_pixels(data: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and the RGB rows of an 8-bit, non-interlaced RGB or RGBA PNG (what chromium writes)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, chunks, header = 8, b"", b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            chunks += body
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and colour in (2, 6) and interlace == 0, f"unexpected PNG format {depth=} {colour=}"
    bpp = 4 if colour == 6 else 3
    raw, stride = zlib.decompress(chunks), width * bpp
    rows: list[bytes] = []
    prior = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        line = bytearray(raw[start + 1 : start + 1 + stride])
        _unfilter(raw[start], line, prior, bpp)
        rows.append(bytes(line) if bpp == 3 else bytes(b for i, b in enumerate(line) if i % 4 != 3))
        prior = line
    return width, height, rows


def colour_counts(rows: list[bytes], colours: dict[str, str]) -> dict[str, int]:
    """How many pixels have each of these exact colours (CSS #rrggbb)."""
    wanted = {bytes.fromhex(value.lstrip("#")): name for name, value in colours.items()}
    counts = dict.fromkeys(colours, 0)
    for row in rows:
        for x in range(0, len(row), 3):
            name = wanted.get(row[x : x + 3])
            if name is not None:
                counts[name] += 1
    return counts


# --- the scan -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scan:
    html: Path
    report: dict[str, Any]
    failing: str  # the TLS 1.2 + 1.3 target, which fails tls13-only
    passing: str  # the TLS 1.3 target, which passes everything
    unreachable: str  # a refused port

    @property
    def url(self) -> str:
        return self.html.as_uri()

    def target(self, name: str) -> dict[str, Any]:
        (target,) = [t for t in self.report["targets"] if t["target"] == name]
        return target

    def section(self, dom: Node, name: str) -> Node:
        """The section of one target: #target-N, N its position in the report."""
        index = [t["target"] for t in self.report["targets"]].index(name) + 1
        return dom.find("section", id=f"target-{index}")

    def findings(self) -> list[tuple[str, dict[str, Any]]]:
        return [(t["target"], f) for t in self.report["targets"] for f in t["findings"]]


@pytest.fixture(scope="module")
def scan(pki: ServerFiles, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scan]:
    """tlsgate's command line on the servers of conftest's ``tls12_13_server``, ``tls13_server`` and
    ``refused_port`` (made here from the same helpers: one scan serves every browser check of the module)."""
    _require_chromium()
    directory = tmp_path_factory.mktemp("html-browser")
    html_path, json_path = ARTIFACTS / "html-report.html", directory / "report.json"
    ARTIFACTS.mkdir(exist_ok=True)
    with (
        python_tls_server(server_context(pki, ssl.TLSVersion.TLSv1_2)) as both,
        python_tls_server(server_context(pki, ssl.TLSVersion.TLSv1_3)) as tls13,
    ):
        refused = f"127.0.0.1:{free_port()}"
        packs = [arg for pack in PACKS for arg in ("--pack", pack)]
        run = run_tlsgate(
            "scan", both.target, tls13.target, refused, *packs, "--timeout", "3",
            "--json", str(json_path), "--html", str(html_path),
        )  # fmt: skip
    assert run.code == 1, run.stdout + run.stderr  # a violation outranks the unreachable target
    yield Scan(html_path, json.loads(json_path.read_text()), both.target, tls13.target, refused)


@pytest.fixture
def browse(scan: Scan, tmp_path: Path) -> Callable[..., BrowserRun]:
    """Run chromium on the report (plus a URL fragment) and insist the page wrote nothing to the console."""

    def run(fragment: str = "", *options: str) -> BrowserRun:
        result = chromium(scan.url + fragment, Path(tempfile.mkdtemp(prefix="profile-", dir=tmp_path)), *options)
        assert result.console() == [], "the page wrote to the console:\n" + "\n".join(result.console())
        return result

    return run


def _finding_rows(dom: Node) -> list[Node]:
    return [
        row
        for table in dom.find_all("table", class_="findings")
        for row in table.find_all("tr")
        if row.attrs.get("data-status")
    ]


def _counter(dom: Node) -> str:
    return dom.find("output", id="filter-count").text


# --- tests ------------------------------------------------------------------------------------------------------


def test_report_loads_with_expected_rows(scan: Scan, browse: Callable[..., BrowserRun]) -> None:
    """Loaded in chromium, the report of the scan shows its three targets, the targets x packs matrix, the failing
    rule and TLS 1.2 marked not allowed; the filter script ran (the filter bar is shown) and hid nothing."""
    dom = parse_dom(browse("", "--dump-dom").stdout)
    assert len(dom.find_all("section", class_="target")) == 3
    verdicts = {name: scan.target(name)["verdict"] for name in (scan.failing, scan.passing, scan.unreachable)}
    assert verdicts == {scan.failing: "fail", scan.passing: "pass", scan.unreachable: "error"}

    matrix = dom.find("table", class_="pack-matrix")
    assert [th.text for th in matrix.find("thead").find_all("th")] == ["Target", *PACKS]
    cells = {
        row.find("th").text: {cell.attrs["data-pack"]: cell.attrs["data-status"] for cell in row.find_all("td")}
        for row in matrix.find("tbody").find_all("tr")
    }
    assert cells == {
        scan.failing: {"tls13-only": "fail", "tls12-plus": "pass"},
        scan.passing: {"tls13-only": "pass", "tls12-plus": "pass"},
        scan.unreachable: {"tls13-only": "error", "tls12-plus": "error"},
    }
    counts = {
        td.attrs["data-severity"]: int(td.text) for td in dom.find("table", class_="severity-counts").find_all("td")
    }
    assert counts == {"critical": 0, "high": 1, "medium": 0, "low": 0, "info": 0}

    failing = scan.section(dom, scan.failing)
    (row,) = [r for r in _finding_rows(failing) if r.attrs["data-status"] == "fail"]
    assert (row.attrs["data-rule"], row.attrs["data-pack"], row.attrs["data-severity"]) == (
        FAIL_RULE,
        "tls13-only",
        "high",
    )
    protocols = {
        r.find("th").text: r.find_all("td")[-1]
        for r in failing.find("table", class_="protocols").find("tbody").find_all("tr")
    }
    assert protocols["TLSv1.2"].attrs["data-policy"] == "not_allowed" and FAIL_RULE in protocols["TLSv1.2"].text
    assert protocols["TLSv1.3"].attrs["data-policy"] == "allowed"
    suites = failing.find("table", class_="suite-matrix").find("tbody").find_all("tr")
    assert {r.attrs["data-policy"] for r in suites} == {"allowed", "not_allowed"}
    assert "Could not be scanned" in scan.section(dom, scan.unreachable).text

    assert not dom.find("form", id="filters").hidden
    rows = _finding_rows(dom)
    assert len(rows) == len(scan.findings()) and not any(r.hidden for r in rows)
    assert _counter(dom) == f"all {len(rows)} findings shown"


def test_failed_fragment_hides_the_other_findings(scan: Scan, browse: Callable[..., BrowserRun]) -> None:
    """``#failed`` ticks "failed only": only failed findings stay; a target left without any says so."""
    dom = parse_dom(browse("#failed", "--dump-dom").stdout)
    rows = _finding_rows(dom)
    visible = [(r.attrs["data-rule"], r.attrs["data-status"]) for r in rows if not r.hidden]
    assert visible == [(FAIL_RULE, "fail")]
    assert {r.attrs["data-status"] for r in rows if r.hidden} >= {"pass", "error"}
    assert _counter(dom) == f"1 of {len(rows)} findings shown"
    assert scan.section(dom, scan.failing).find("tr", class_="no-match").hidden
    for name in (scan.passing, scan.unreachable):
        assert not scan.section(dom, name).find("tr", class_="no-match").hidden


def test_severity_and_pack_fragment(scan: Scan, browse: Callable[..., BrowserRun]) -> None:
    """``#severity=critical&pack=tls12-plus`` keeps exactly the critical findings of that pack, on every target."""
    dom = parse_dom(browse("#severity=critical&pack=tls12-plus", "--dump-dom").stdout)
    expected = sorted(
        (name, f["rule"]) for name, f in scan.findings() if f["severity"] == "critical" and f["pack"] == "tls12-plus"
    )
    assert expected, "tls12-plus has a critical rule"
    shown = sorted(
        (name, row.attrs["data-rule"])
        for name in (scan.failing, scan.passing, scan.unreachable)
        for row in _finding_rows(scan.section(dom, name))
        if not row.hidden
    )
    assert shown == expected
    # An unknown choice in the fragment falls back to "all" instead of hiding everything.
    dom = parse_dom(browse("#pack=no-such-pack", "--dump-dom").stdout)
    assert not any(r.hidden for r in _finding_rows(dom))


def test_screenshot_shows_the_overview(scan: Scan, browse: Callable[..., BrowserRun]) -> None:
    """A 1280x2000 screenshot is kept in test-artifacts/; it is a real PNG of the page, with the overview's coloured
    pass, fail and error cells in it (colours read from the page's own stylesheet)."""
    SCREENSHOT.unlink(missing_ok=True)
    browse("", f"--screenshot={SCREENSHOT}", f"--window-size={WINDOW[0]},{WINDOW[1]}")
    data = SCREENSHOT.read_bytes()
    width, height, rows = png_pixels(data)
    assert (width, height) == WINDOW
    page = scan.html.read_text()
    colours = {name: re.findall(rf"--{name}: (#[0-9a-f]{{6}})", page)[0] for name in ("pass-bg", "fail-bg", "error-bg")}
    counts = colour_counts(rows, colours)
    # A badge is a few hundred pixels, a matrix cell well over ten thousand. Above the fold, only the matrix row of
    # the unreachable target (two error cells) adds up to that much of the error background.
    assert all(count > 5000 for count in counts.values()), counts
    assert counts["error-bg"] > 20000, counts
    assert len({row[x : x + 3] for row in rows[::50] for x in range(0, len(row), 3)}) > 20, "a blank page"


def test_console_check_catches_errors(scan: Scan, tmp_path: Path) -> None:
    """Control: on this chromium, an uncaught exception and a report that tries to load something from elsewhere
    both show in the log the other tests read (the report's Content-Security-Policy blocks and logs the load)."""
    broken = tmp_path / "broken.html"
    broken.write_text("<!DOCTYPE html><title>x</title><script>undefinedFunction();</script>")
    run = chromium(broken.as_uri(), tmp_path / "profile-broken", "--dump-dom")
    assert any("Uncaught ReferenceError" in line for line in run.console()), run.log[-3000:]
    leaky = tmp_path / "leaky.html"
    leaky.write_text(
        scan.html.read_text().replace("</footer>", '<img alt="" src="https://example.invalid/x.png"></footer>')
    )
    run = chromium(leaky.as_uri(), tmp_path / "profile-leaky", "--dump-dom")
    assert any("Content Security Policy" in line for line in run.console()), run.log[-3000:]
