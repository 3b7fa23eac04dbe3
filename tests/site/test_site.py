"""The static status site from a real SQLite store filled by real ``tlsgate scan --store`` runs of loopback
servers: run 1 with A and B up, run 2 with A's certificate re-issued (a hostile issuer name) and B stopped."""

from __future__ import annotations

import datetime as dt
import re
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from scanner.site import MARKER, NotASite, page_name, render_site, target_rows, write_site
from scanner.store import TimelineEntry, open_store
from tests.helpers import free_port, issue_certificate, run_tlsgate
from tests.render.test_html_browser import _require_chromium, chromium, parse_dom
from tests.store.test_store import openssl_on

HOSTILE = "evil <img src=x onerror=alert(1)> \x1b[2J \u202eelpmaxe"


@dataclass(frozen=True)
class Estate:
    url: str
    a: str
    b: str


def scan(store: str, ca: Path, report: Path, *targets: str) -> None:
    run = run_tlsgate("scan", *targets, "--store", store, "--ca-file", str(ca), "--offline", "--json", str(report))
    assert run.code in (0, 1, 3), run.stderr
    assert report.exists()


@pytest.fixture(scope="module")
def estate(tmp_path_factory: pytest.TempPathFactory) -> Estate:
    tmp = tmp_path_factory.mktemp("estate")
    old = issue_certificate(tmp, "a-old", days=400)
    new = issue_certificate(tmp, HOSTILE, days=10)
    b = issue_certificate(tmp, "b", days=90)
    ca = tmp / "cas.pem"
    ca.write_bytes(old.ca.read_bytes() + new.ca.read_bytes() + b.ca.read_bytes())
    url = f"sqlite:///{tmp / 'history.db'}"
    port_a, port_b = free_port(), free_port()
    a, b_name = f"127.0.0.1:{port_a}", f"127.0.0.1:{port_b}"
    with openssl_on(port_a, old.cert, old.key), openssl_on(port_b, b.cert, b.key):
        scan(url, ca, tmp / "1.json", a, b_name)
    with openssl_on(port_a, new.cert, new.key):
        scan(url, ca, tmp / "2.json", a, b_name)
    return Estate(url, a, b_name)


def _rows(html: str) -> list[str]:
    """The overview's target rows as text."""
    return [
        row.text for row in parse_dom(html).find("table", id="targets").find_all("tr") if "data-target" in row.attrs
    ]


def test_site_from_scans(estate: Estate, tmp_path: Path) -> None:
    """index.html lists both targets, soonest expiry first, with verdict, days left and a link to a page that
    shows the target's timeline; the hostile issuer is escaped; nothing outside the site is referred to."""
    site = tmp_path / "site"
    store = open_store(estate.url)
    try:
        started = time.monotonic()
        write_site(store, site)
        elapsed = time.monotonic() - started
    finally:
        store.close()
    assert elapsed < 10
    assert sorted(p.name for p in site.iterdir()) == sorted(["index.html", "targets", MARKER])
    index = (site / "index.html").read_text()
    rows = _rows(index)
    assert len(rows) == 2
    # A (certificate expiring in 10 days) before B (no certificate in its latest run: stopped)
    assert rows[0].startswith(estate.a) and rows[1].startswith(estate.b)
    assert re.search(r"\b(9|10)\b", rows[0]), rows[0]
    assert "error" in rows[1].lower()
    dom = parse_dom(index)
    links = [a.attrs["href"] for a in dom.find("table", id="targets").find_all("a")]
    assert links == [page_name(estate.a), page_name(estate.b)]
    assert all(re.fullmatch(r"targets/[a-z0-9-]+-[0-9a-f]{12}\.html", link) for link in links)
    assert sorted(p.name for p in (site / "targets").iterdir()) == sorted(Path(link).name for link in links)

    page_a = (site / links[0]).read_text()
    timeline = parse_dom(page_a).find("table", id="timeline")
    runs = timeline.find_all("tr", class_="changed")
    assert len(runs) == 2  # first seen, then the certificate re-issued
    assert "a-old test CA" in runs[1].text and "evil" in runs[0].text  # newest first
    assert "<img" not in page_a and "\x1b" not in page_a and "\u202e" not in page_a
    assert "\\x1b[2J" in page_a and "\\u{202e}" in page_a and "&lt;img" in page_a
    page_b = (site / links[1]).read_text()
    assert [
        r.attrs["data-run"] for r in parse_dom(page_b).find("table", id="timeline").find_all("tr", class_="changed")
    ] == ["2", "1"]
    for page in (index, page_a, page_b):
        assert not re.search(r"(src|href)=\"(https?:|//)", page)
        assert "<script" not in page


def test_rewrite_replaces_the_site_whole(estate: Estate, tmp_path: Path) -> None:
    """A second write leaves no page of the first behind; a directory of other files is refused, untouched."""
    site = tmp_path / "site"
    store = open_store(estate.url)
    try:
        write_site(store, site)
        stale = site / "targets" / "gone-000000000000.html"
        stale.write_text("old")
        write_site(store, site)
        assert not stale.exists()
        assert len(list((site / "targets").iterdir())) == 2
        other = tmp_path / "home"
        other.mkdir()
        (other / "notes.txt").write_text("keep me")
        with pytest.raises(NotASite, match="holds other files"):
            write_site(store, other)
        assert (other / "notes.txt").read_text() == "keep me"
    finally:
        store.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home", "site"]  # no temporary directory left


def test_cli_history_site(estate: Estate, tmp_path: Path) -> None:
    """``tlsgate history site DIR --store URL`` writes the site; a foreign directory is exit 2, no DIR is exit 2."""
    done = run_tlsgate("history", "site", str(tmp_path / "out"), "--store", estate.url)
    assert done.code == 0, done.stderr
    assert (tmp_path / "out" / "index.html").is_file()
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "x").write_text("x")
    refused = run_tlsgate("history", "site", str(tmp_path / "foreign"), "--store", estate.url)
    assert refused.code == 2 and "holds other files" in refused.stderr and "Traceback" not in refused.stderr
    missing = run_tlsgate("history", "site", "--store", estate.url)
    assert missing.code == 2 and "one directory" in missing.stderr
    formatted = run_tlsgate("history", "site", str(tmp_path / "x"), "--format", "json", "--store", estate.url)
    assert formatted.code == 2 and not (tmp_path / "x").exists()


def _entry(label: str, at: dt.datetime) -> TimelineEntry:
    expires = at + dt.timedelta(days=5)
    return TimelineEntry(1, label, at, "fail", "fail", None, None, "ab" * 32, "CN=<b>x</b>", expires, ("p/<i>R</i>",))


def test_hostile_labels_and_page_names() -> None:
    """A label with markup, controls, path separators and dots gives a safe file name and escaped text."""
    at = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    labels = ["../../etc/passwd", "<script>alert(1)</script>:443", "\x1b]0;pwn\x07host:443", "..", ""]
    entries = [_entry(label, at) for label in labels]
    rows = target_rows(entries, entries, at)
    pages = render_site(rows, at)
    names = [page_name(label) for label in labels]
    assert len(set(names)) == len(labels)
    assert all(re.fullmatch(r"targets/[a-z0-9-]+-[0-9a-f]{12}\.html", name) for name in names)
    for text in pages.values():
        assert "<script>" not in text and "<b>" not in text and "<i>" not in text and "\x1b" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;:443" in pages["index.html"]


def test_site_in_chromium(estate: Estate, tmp_path: Path) -> None:
    """Headless chromium opens index.html from file:// and shows every target, and a target page its timeline,
    with nothing on the console (no blocked load, no script error)."""
    _require_chromium()
    site = tmp_path / "site"
    store = open_store(estate.url)
    try:
        write_site(store, site)
    finally:
        store.close()
    run = chromium((site / "index.html").as_uri(), tmp_path / "profile", "--dump-dom")
    assert run.console() == []
    table = parse_dom(run.stdout).find("table", id="targets")
    shown = [a.text for a in table.find_all("a")]
    assert shown == [estate.a, estate.b]
    page = chromium((site / page_name(estate.a)).as_uri(), tmp_path / "profile2", "--dump-dom")
    assert page.console() == []
    assert len(parse_dom(page.stdout).find("table", id="timeline").find_all("tr", class_="changed")) == 2


def test_window_shows_recent_runs(estate: Estate, tmp_path: Path) -> None:
    """With a window holding only the second run, each page shows that run alone and the last change is 'on or
    before' it (the change of certificate happened there, but the run before is outside the window)."""
    store = open_store(estate.url)
    try:
        first, second = sorted(store.runs(), key=lambda r: r.id)
        assert second.finished is not None
        now = second.finished + dt.timedelta(seconds=1)
        since = second.started - (second.started - first.started) / 2
        write_site(store, tmp_path / "site", now=now, window=now - since)
        whole = render_site(target_rows(store.latest_states(), store.timeline(), now), now)
    finally:
        store.close()
    index = (tmp_path / "site" / "index.html").read_text()
    assert index.count("on or before") == 2
    page = (tmp_path / "site" / page_name(estate.a)).read_text()
    assert len(parse_dom(page).find("table", id="timeline").find_all("tr", class_="changed")) == 1
    assert "a-old test CA" not in page
    assert "on or before" not in whole["index.html"] and "a-old test CA" in whole[page_name(estate.a)]
