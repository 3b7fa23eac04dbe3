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
import socket
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

from scanner.demo import LoopbackServer
from scanner.render import html as html_render
from scanner.report import Report, summarise
from tests.helpers import REPO, ServerFiles, free_port, python_tls_server, run_tlsgate, server_context
from tests.render.cdp import Chromium, Page

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
    tls12: str  # the TLS 1.2-only target, which fails tls13-only twice
    unreachable: str  # a refused port
    not_tls: str  # a plain-HTTP server

    @property
    def url(self) -> str:
        return self.html.as_uri()

    @property
    def names(self) -> list[str]:
        return [t["target"] for t in self.report["targets"]]

    @property
    def scanned(self) -> list[str]:
        return [t["target"] for t in self.report["targets"] if t["facts"]["status"] == "ok"]

    def target(self, name: str) -> dict[str, Any]:
        (target,) = [t for t in self.report["targets"] if t["target"] == name]
        return target

    def section(self, dom: Node, name: str) -> Node:
        """The section of one target: #target-N, N its position in the report."""
        return dom.find("section", id=f"target-{self.names.index(name) + 1}")

    def findings(self) -> list[tuple[str, dict[str, Any]]]:
        return [(t["target"], f) for t in self.report["targets"] for f in t["findings"]]

    def listed(self) -> list[tuple[str, dict[str, Any]]]:
        """The findings listed unfolded: those of scanned targets that did not pass and do apply."""
        return [(n, f) for n, f in self.findings() if n in self.scanned and f["status"] not in QUIET]

    def failed_rules(self) -> dict[tuple[str, str], tuple[str, set[str]]]:
        """(pack, rule) -> (title, the targets it failed on)."""
        found: dict[tuple[str, str], tuple[str, set[str]]] = {}
        for name, f in self.findings():
            if f["status"] == "fail":
                found.setdefault((f["pack"], f["rule"]), (f["title"], set()))[1].add(name)
        return found


QUIET = ("pass", "not_applicable")  # folded per target, built only when shown


def _http_400(conn: socket.socket) -> None:
    conn.recv(4096)
    conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")


@pytest.fixture(scope="module")
def scan(pki: ServerFiles, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scan]:
    """tlsgate's command line on five targets (one scan serves every browser check of the module): TLS 1.2 + 1.3,
    TLS 1.3 only, TLS 1.2 only, a refused port and a plain-HTTP server."""
    _require_chromium()
    directory = tmp_path_factory.mktemp("html-browser")
    html_path, json_path = ARTIFACTS / "html-report.html", directory / "report.json"
    ARTIFACTS.mkdir(exist_ok=True)
    with (
        python_tls_server(server_context(pki, ssl.TLSVersion.TLSv1_2)) as both,
        python_tls_server(server_context(pki, ssl.TLSVersion.TLSv1_3)) as tls13,
        python_tls_server(server_context(pki, ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_2)) as tls12,
        LoopbackServer(_http_400) as http,
    ):
        refused = f"127.0.0.1:{free_port()}"
        packs = [arg for pack in PACKS for arg in ("--pack", pack)]
        run = run_tlsgate(
            "scan", both.target, tls13.target, tls12.target, refused, http.target, *packs, "--timeout", "3",
            "--json", str(json_path), "--html", str(html_path),
        )  # fmt: skip
    assert run.code == 1, run.stdout + run.stderr  # a violation outranks the unreachable targets
    yield Scan(
        html_path, json.loads(json_path.read_text()), both.target, tls13.target, tls12.target, refused, http.target
    )


@pytest.fixture
def browse(scan: Scan, tmp_path: Path) -> Callable[..., BrowserRun]:
    """Run chromium on the report (plus a URL fragment) and insist the page wrote nothing to the console."""

    def run(fragment: str = "", *options: str) -> BrowserRun:
        result = chromium(scan.url + fragment, Path(tempfile.mkdtemp(prefix="profile-", dir=tmp_path)), *options)
        assert result.console() == [], "the page wrote to the console:\n" + "\n".join(result.console())
        return result

    return run


_NOSCRIPT = re.compile(r"<noscript\b.*?</noscript>", re.DOTALL)


def live_dom(run: BrowserRun) -> Node:
    """The DOM chromium dumped, without what waits as <noscript> text (with scripts on, that is text, not elements)."""
    return parse_dom(_NOSCRIPT.sub("", run.stdout))


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
    """Loaded in chromium, the report shows its five targets, the targets x packs matrix (an unscanned target's
    error class and message instead of counts), the failing rules and TLS 1.2 marked not allowed; the filter script
    ran (the filter bar is shown) and hid nothing."""
    run = browse("", "--dump-dom")
    dom = live_dom(run)
    assert len(dom.find_all("section", class_="target")) == 5
    verdicts = {name: scan.target(name)["verdict"] for name in scan.names}
    assert verdicts == {
        scan.failing: "fail", scan.passing: "pass", scan.tls12: "fail",
        scan.unreachable: "error", scan.not_tls: "error",
    }  # fmt: skip

    matrix = dom.find("table", class_="pack-matrix")
    heads = [th.text for th in matrix.find("thead").find_all("th")]
    assert heads == ["Target", "Grade", "Verdict", *PACKS, "Failed by severity", "Certificate expires"]
    grades = {row.find("th").text: row.find_all("td")[0].text.strip() for row in matrix.find("tbody").find_all("tr")}
    # the test CA is not given as trusted: every scanned target is capped at T; the unscanned have no grade
    assert grades[scan.passing] == grades[scan.failing] == grades[scan.tls12] == "T"
    assert grades[scan.unreachable] == grades[scan.not_tls] == "\u2013"  # the placeholder of a missing value
    rows = {row.find("th").text: row for row in matrix.find("tbody").find_all("tr")}
    cells = {
        name: {cell.attrs["data-pack"]: cell.attrs["data-status"] for cell in rows[name].find_all("td", class_="cell")}
        for name in (scan.failing, scan.passing, scan.tls12)
    }
    assert cells == {
        scan.failing: {"tls13-only": "fail", "tls12-plus": "pass"},
        scan.passing: {"tls13-only": "pass", "tls12-plus": "pass"},
        scan.tls12: {"tls13-only": "fail", "tls12-plus": "pass"},
    }
    for name, error_class in ((scan.unreachable, "refused"), (scan.not_tls, "not_tls")):
        (cell,) = rows[name].find_all("td", class_="not-scanned")
        assert cell.attrs["data-error-class"] == error_class
        assert scan.target(name)["facts"]["error"]["message"] in cell.text
        assert not rows[name].find_all("td", class_="cell")  # no "N error" count per pack
    counts = {
        td.attrs["data-severity"]: int(td.text) for td in dom.find("table", class_="severity-counts").find_all("td")
    }
    failed = [f["severity"] for _, f in scan.findings() if f["status"] == "fail"]
    assert counts == {severity: failed.count(severity) for severity in counts} and sum(counts.values()) >= 3

    failing = scan.section(dom, scan.failing)
    (row,) = [r for r in _finding_rows(failing) if r.attrs["data-status"] == "fail"]
    assert (row.attrs["data-rule"], row.attrs["data-pack"], row.attrs["data-severity"]) == (
        FAIL_RULE,
        "tls13-only",
        "high",
    )
    # the fact tables wait as <noscript> text, closed; read from the page as served they say TLS 1.2 is not allowed
    assert not failing.find_all("table", class_="protocols")
    served = scan.section(parse_dom(run.stdout), scan.failing)
    protocols = {
        r.find("th").text: r.find_all("td")[-1]
        for r in served.find("table", class_="protocols").find("tbody").find_all("tr")
    }
    assert protocols["TLSv1.2"].attrs["data-policy"] == "not_allowed" and FAIL_RULE in protocols["TLSv1.2"].text
    assert protocols["TLSv1.3"].attrs["data-policy"] == "allowed"
    for name in (scan.unreachable, scan.not_tls):
        section = scan.section(dom, name)
        assert "Not scanned:" in section.find("div", class_="not-scanned").text
        assert not section.find_all("table", class_="findings")  # one block, not a row per rule

    assert not dom.find("form", id="filters").hidden
    rows_shown = _finding_rows(dom)
    assert len(rows_shown) == len(scan.listed()) and not any(r.hidden for r in rows_shown)
    assert _counter(dom) == f"all {len(rows_shown)} findings shown"


def test_failed_fragment_hides_the_other_findings(scan: Scan, browse: Callable[..., BrowserRun]) -> None:
    """``#failed`` ticks "failed only": only failed findings stay, and the passed rules and fact tables go."""
    dom = live_dom(browse("#failed", "--dump-dom"))
    rows = _finding_rows(dom)
    visible = sorted((r.attrs["data-rule"], r.attrs["data-status"]) for r in rows if not r.hidden)
    assert visible == sorted((f["rule"], "fail") for _, f in scan.listed() if f["status"] == "fail")
    assert (FAIL_RULE, "fail") in visible
    assert {r.attrs["data-status"] for r in rows if r.hidden} == {f["status"] for _, f in scan.listed()} - {"fail"}
    shown = f"{len(visible)} of {len(rows)}" if len(visible) < len(rows) else f"all {len(rows)}"
    assert _counter(dom) == f"{shown} findings shown"
    assert "failed-only" in dom.find("html").attrs["class"].split()  # the stylesheet then hides details.lazy


def test_severity_and_pack_fragment(scan: Scan, browse: Callable[..., BrowserRun]) -> None:
    """``#severity=high&pack=tls13-only`` keeps exactly the high findings of that pack, on every target, and the
    "What failed" entries of that severity and pack."""
    dom = live_dom(browse("#severity=high&pack=tls13-only", "--dump-dom"))
    expected = sorted(
        (name, f["rule"]) for name, f in scan.listed() if f["severity"] == "high" and f["pack"] == "tls13-only"
    )
    assert expected, "tls13-only has a high rule that fails"
    shown = sorted(
        (name, row.attrs["data-rule"]) for name in scan.names for row in _finding_rows(scan.section(dom, name))
        if not row.hidden
    )  # fmt: skip
    assert shown == expected
    groups = dom.find("section", id="failed-rules").find_all("li", data_counted="true")
    assert groups and all(
        g.hidden == (g.attrs["data-severity"] != "high" or g.attrs["data-pack"] != "tls13-only") for g in groups
    )
    # An unknown choice in the fragment falls back to "all" instead of hiding everything.
    dom = live_dom(browse("#pack=no-such-pack", "--dump-dom"))
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
    # A badge is a few hundred pixels, a matrix cell well over ten thousand. Above the fold, only the matrix rows of
    # the two unscanned targets (one wide "not scanned" cell each) add up to that much of the error background.
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


# --- what a person sees: element positions over the DevTools protocol (tests/render/cdp.py) -----------------------

FIRST_SCREEN = (1440, 900)

# Where each "What failed" entry, its title and its targets' links are on the page, in CSS pixels of the viewport.
_POSITIONS = """
Array.from(document.querySelectorAll("#failed-rules li[data-rule]")).map((entry) => {
  const box = (element) => {
    const r = element.getBoundingClientRect();
    return [r.left, r.top, r.right, r.bottom];
  };
  return {
    pack: entry.dataset.pack,
    rule: entry.dataset.rule,
    title: entry.querySelector(".rule-title").textContent,
    title_box: box(entry.querySelector(".rule-title")),
    targets: Array.from(entry.querySelectorAll("ul.rule-targets a")).map((a) => [a.textContent, box(a)]),
  };
})
"""


def _on_screen(box: list[float], width: int, height: int) -> bool:
    left, top, right, bottom = box
    return left >= 0 and top >= 0 and right <= width and bottom <= height and right > left and bottom > top


@pytest.fixture
def page(scan: Scan) -> Iterator[Page]:
    with Chromium(width=FIRST_SCREEN[0], height=FIRST_SCREEN[1], timeout=BROWSER_TIMEOUT) as browser:
        yield browser.page()


def test_first_screen_shows_what_failed_and_where(scan: Scan, page: Page) -> None:
    """At 1440x900, without scrolling, the page shows the title of every rule that failed and every target it failed
    on (the element boxes inside the viewport), each target a link to its finding in that target's section."""
    page.open(scan.url)
    expected = scan.failed_rules()
    assert len(expected) >= 2 and any(len(targets) >= 2 for _, targets in expected.values())
    entries = page.evaluate(_POSITIONS)
    assert {(e["pack"], e["rule"]) for e in entries} == set(expected)
    width, height = FIRST_SCREEN
    for entry in entries:
        title, targets = expected[(entry["pack"], entry["rule"])]
        assert entry["title"] == title and _on_screen(entry["title_box"], width, height), entry
        assert {name for name, _ in entry["targets"]} == targets
        assert all(_on_screen(box, width, height) for _, box in entry["targets"]), entry
    links = page.evaluate(
        "Array.from(document.querySelectorAll('#failed-rules ul.rule-targets a')).map("
        "(a) => document.getElementById(a.hash.slice(1)).dataset.rule === a.closest('li[data-rule]').dataset.rule)"
    )
    assert links and all(links)
    assert page.problems() == []


def test_fact_tables_folded_shown_without_scripts_and_in_print(scan: Scan, page: Page) -> None:
    """With scripts the fact tables are folded and not built; opening one builds it; printing builds them all.
    With scripts off (a second tab) they are open and visible as served."""
    page.open(scan.url)
    count = "document.querySelectorAll('table.protocols').length"
    assert page.evaluate("document.querySelectorAll('details.facts[open]').length") == 0
    assert page.evaluate(count) == 0
    page.evaluate(f"document.querySelector('#target-{scan.names.index(scan.failing) + 1} details.facts').open = true")
    assert page.evaluate(f"new Promise((done) => setTimeout(() => done({count}), 50))") == 1
    page.browser.call("Page.printToPDF", {}, session=page.session)
    assert page.evaluate(count) == len(scan.scanned)
    assert page.problems() == []

    plain = page.browser.page()
    plain.browser.call("Emulation.setScriptExecutionDisabled", {"value": True}, session=plain.session)
    plain.open(scan.url)
    heights = plain.evaluate(
        "Array.from(document.querySelectorAll('details.facts table.protocols')).map("
        "(t) => t.getBoundingClientRect().height)"
    )
    assert len(heights) == len(scan.scanned) and all(h > 0 for h in heights)


def test_a_fleets_rows_are_built_where_they_are_looked_at(scan: Scan, page: Page, tmp_path: Path) -> None:
    """A fleet's page (the scan's targets copied to 60) builds a target's finding rows when a "What failed" link
    leads there: the linked row exists and is on screen; the filter counts every finding from the start."""
    report = Report.model_validate(scan.report)
    targets = [
        t.model_copy(update={"target": f"{i:02d}-{t.target}"}) for i in range(12) for t in report.targets
    ]  # fmt: skip
    fleet = tmp_path / "fleet.html"
    fleet.write_text(html_render.render(report.model_copy(update={"targets": targets, "summary": summarise(targets)})))
    page.open(fleet.as_uri())
    listed = sum(1 for t in targets if t.facts.status == "ok" for f in t.findings if f.status.value not in QUIET)
    assert page.evaluate("document.getElementById('filter-count').textContent") == f"all {listed} findings shown"
    links = "Array.from(document.querySelectorAll('#failed-rules ul.rule-targets a'))"
    link = page.evaluate(f"{links}.at(-1).hash.slice(1)")  # the last target: far down the page
    assert page.evaluate(f"document.getElementById({json.dumps(link)})") is None  # not built yet
    page.evaluate(f"document.querySelector('a[href=\"#{link}\"]').click()")
    box = page.evaluate(
        f"new Promise((done) => setTimeout(() => {{ const r = document.getElementById({json.dumps(link)})"
        ".getBoundingClientRect(); done([r.top, r.bottom]); }, 100))"
    )
    assert 0 <= box[0] < box[1] <= FIRST_SCREEN[1], box
    assert page.problems() == []
