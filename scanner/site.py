"""The static status site: a self-contained HTML overview of the estate from the store, for any web server (or
file://). ``tlsgate watch --site DIR`` writes it after each cycle; ``tlsgate history site DIR`` writes it once.

    DIR/index.html                    every target: verdict, grade, certificate expiry, last change, last scan
    DIR/targets/<slug>-<hash>.html    one per target: its timeline (runs: time, verdict, certificate, failed rules)

The pages load nothing and run no script (their Content-Security-Policy says so); every string from a target,
its certificate or the inventory goes through ``printable`` and autoescaping. Target page names are a slug of the
label plus a hash of it, never the label itself.

The site is written as a set: into a new directory beside DIR, then DIR is renamed away and the new one renamed in
(two renames; a reader sees the old site or the new one, never a mix — only in between them, for microseconds,
no DIR at all), and the old one removed. DIR is replaced only when it is empty or a site this wrote (it holds the
marker file ``.tlsgate-site``): pointing ``--site`` at a directory of other files is an error, not a deletion.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from scanner import __version__
from scanner.render.html import _environment as report_environment  # the report page's filters and escaping

if TYPE_CHECKING:
    from scanner.store import Store, TimelineEntry

MARKER = ".tlsgate-site"
TARGETS_DIR = "targets"
# The target pages show this much history: every run read and rendered costs ~35 us and ~1.2 kB (measured), after
# every cycle; 1,000 targets scanned 6-hourly: 90 days took 15 s and 480 MB, 30 days (120 runs a target) ~5 s.
WINDOW = timedelta(days=30)
_SLUG = re.compile(r"[^a-z0-9]+")


class SiteError(Exception):
    """The site cannot be written; the message is one line for the user."""


class NotASite(SiteError):
    """The directory given for the site holds something else: nothing was replaced."""


@dataclass(frozen=True)
class TargetRow:
    """One target of the overview, and its page."""

    label: str
    page: str  # relative to the site: targets/<slug>-<hash>.html
    latest: TimelineEntry
    days_left: float | None  # of its leaf certificate, at the time the site was written
    last_change: datetime  # when what its timeline shows last differed from the run before (or first seen)
    last_change_exact: bool  # False: no change within the window, so it changed (or was first seen) on or before
    runs: tuple[TimelineEntry, ...]  # oldest first
    changed: frozenset[int]  # run ids at which it changed


def page_name(label: str) -> str:
    """A file name for a target's page: a slug of the label (a-z, 0-9, -) and 12 hex digits of its SHA-256."""
    slug = _SLUG.sub("-", label.lower()).strip("-")[:40].strip("-") or "target"
    return f"{TARGETS_DIR}/{slug}-{hashlib.sha256(label.encode('utf-8', 'surrogatepass')).hexdigest()[:12]}.html"


def _state(entry: TimelineEntry) -> tuple[object, ...]:
    """What the timeline shows of a run; a change of any of it is a change of the target."""
    return (entry.verdict, entry.gate_verdict, entry.grade, entry.error_class, entry.certificate,
            entry.not_after, entry.failed_rules)  # fmt: skip


def target_rows(
    latest: Sequence[TimelineEntry], timeline: Sequence[TimelineEntry], now: datetime, *, clipped: bool = False
) -> list[TargetRow]:
    """The overview's rows, the soonest-expiring certificate first (targets with none last), then by label.

    ``timeline`` may be a window of the history (``clipped``: the store holds older runs); a target whose first run
    in the window is its last change then changed on or before it."""
    per: dict[str, list[TimelineEntry]] = {}
    for entry in timeline:
        per.setdefault(entry.target, []).append(entry)
    rows = []
    for state in latest:
        runs = per.get(state.target) or [state]
        changed = {runs[0].run_id}
        for before, after in itertools.pairwise(runs):
            if _state(before) != _state(after):
                changed.add(after.run_id)
        last_change = max(e.at for e in runs if e.run_id in changed)
        exact = not clipped or last_change != runs[0].at
        days = (state.not_after - now).total_seconds() / 86400 if state.not_after is not None else None
        rows.append(
            TargetRow(
                state.target, page_name(state.target), state, days, last_change, exact, tuple(runs), frozenset(changed)
            )
        )
    return sorted(rows, key=lambda r: (r.days_left is None, r.days_left or 0.0, r.label))


def render_site(rows: Sequence[TargetRow], now: datetime, window: timedelta = WINDOW) -> dict[str, str]:
    """Every page of the site by its path in the site: index.html and one page per target."""
    env = report_environment()
    common = {"now": now, "version": __version__, "window_days": round(window.total_seconds() / 86400)}
    pages = {"index.html": env.get_template("site_index.html.j2").render(rows=rows, **common)}
    target = env.get_template("site_target.html.j2")
    for row in rows:
        pages[row.page] = target.render(row=row, **common)
    return pages


def write_site(store: Store, directory: Path, now: datetime | None = None, window: timedelta = WINDOW) -> None:
    """Write the status site of the store's targets to ``directory``, replacing what was there as a whole; the
    target pages show the runs of the last ``window`` (the cost of a site grows with the runs it shows).

    Raises NotASite when ``directory`` holds something else than a site, SiteError when it cannot be written.
    """
    now = now or datetime.now(UTC)
    since = now - window
    clipped = any(run.started < since for run in store.runs())
    rows = target_rows(store.latest_states(), store.timeline(since=since), now, clipped=clipped)
    pages = render_site(rows, now, window)
    directory = directory.absolute()
    _check_replaceable(directory)
    try:
        directory.parent.mkdir(parents=True, exist_ok=True)
        new = Path(tempfile.mkdtemp(prefix=f".{directory.name}.new-", dir=directory.parent))
    except OSError as exc:
        raise SiteError(f"cannot write the site beside {directory}: {exc.strerror or exc}") from exc
    try:
        (new / TARGETS_DIR).mkdir()
        for name, text in pages.items():
            (new / name).write_text(text, encoding="utf-8")
        (new / MARKER).write_text(f"written by tlsgate {__version__} at {now.isoformat()}\n", encoding="utf-8")
        new.chmod(0o755)  # mkdtemp makes it 0700: a web server running as another user must read it
        _swap(new, directory)
    except OSError as exc:
        shutil.rmtree(new, ignore_errors=True)
        raise SiteError(f"cannot write the site to {directory}: {exc.strerror or exc}") from exc


def _check_replaceable(directory: Path) -> None:
    if not directory.exists():
        return
    if not directory.is_dir() or directory.is_symlink():
        raise NotASite(f"{directory} is not a directory: give a directory for the site")
    if (directory / MARKER).is_file() or not any(directory.iterdir()):
        return
    raise NotASite(f"{directory} holds other files (no {MARKER}): give an empty or new directory for the site")


def _swap(new: Path, directory: Path) -> None:
    """The new site in place of the old: rename the old away, the new in, then remove the old."""
    if not directory.exists():
        new.rename(directory)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{directory.name}.old-", dir=directory.parent))
    directory.rename(old / "site")
    try:
        new.rename(directory)
    except OSError:
        (old / "site").rename(directory)  # put the old site back: never no site at all
        old.rmdir()
        raise
    shutil.rmtree(old, ignore_errors=True)
