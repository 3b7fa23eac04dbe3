"""The HTML report for fleets: its size and how fast headless chromium makes it usable, at 100 and 1,000 targets.

One real scan gives the facts: the five loopback endpoints of bench/servers.py (one of each profile: TLS 1.2 + 1.3
with RSA and with ECDSA, TLS 1.3 only, TLS 1.0-1.2 with CBC/3DES/RSA suites at @SECLEVEL=0, TLS 1.2 only with AEAD)
and a refused port, scanned with ``--all-facts`` and four packs (essentials, mozilla-intermediate, tls13-only,
nist-sp800-52r2). Their target reports are copied to N targets under distinct names (``host-0001.example.net:443``),
the five scanned ones in turn and every 20th the refused one, so every N holds the same mix of passes, failures and
unscanned targets. The report is rendered as the command line renders it (scanner.render.html.render).

For each N it records the HTML's size (bytes, and gzipped) and, over R fresh loads in headless chromium at
1440x900 driven over the DevTools protocol (tests/render/cdp.py: a pipe, no extra package), the page's own timings:

  first_paint_ms      first contentful paint (performance.getEntriesByType("paint"))
  usable_ms           the page's script has run (its performance mark "tlsgate-usable"): "What failed", the
                      overview and the filter bar are in place and the filter works, while the targets' sections
                      may still be loading below; this is "opens and is usable"
  parsed_ms           the whole page is parsed (DOMContentLoaded): every target's section is there, folded
  load_ms             the load event
  filter_ms           choosing "high" in the severity filter: from the change event to the next frame painted
                      (style, layout and paint included), every finding row and "What failed" entry re-filtered
  wall_ms             from Page.navigate to the load event, as the benchmark process saw it

The median of R loads is kept, with the range. Goal (issue 17): usable under 2 s at 1,000 targets, size linear in
the targets (bytes per target about the same at 100 and 1,000).

    python bench/html.py [-n 100 -n 1000] [-r 5] [--out bench/results-html-DATE.json]
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from servers import Fleet  # noqa: E402 - bench/ is not a package

from scanner import __version__  # noqa: E402
from scanner.render import html  # noqa: E402
from scanner.report import Report, TargetReport, summarise  # noqa: E402
from tests.render.cdp import Chromium  # noqa: E402

PACKS = ("essentials", "mozilla-intermediate", "tls13-only", "nist-sp800-52r2")
UNSCANNED_EVERY = 20

# Runs in the page once it has loaded: its timings, then one severity filter change timed to the next frame.
MEASURE = """
(async () => {
  const paint = performance.getEntriesByType("paint").find((e) => e.name === "first-contentful-paint");
  const nav = performance.getEntriesByType("navigation")[0];
  const usable = performance.getEntriesByName("tlsgate-usable")[0];
  const select = document.getElementById("filter-severity");
  const before = document.getElementById("filter-count").textContent;
  const started = performance.now();
  select.value = "high";
  select.dispatchEvent(new Event("change", { bubbles: true }));
  await new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)));
  const filter = performance.now() - started;
  return {
    first_paint_ms: paint ? paint.startTime : null,
    usable_ms: usable ? usable.startTime : null,
    parsed_ms: nav.domContentLoadedEventEnd,
    load_ms: nav.loadEventEnd,
    filter_ms: filter,
    ready: document.documentElement.classList.contains("ready"),
    count_before: before,
    count_after: document.getElementById("filter-count").textContent,
    rows: document.querySelectorAll("table.findings tbody tr[data-status]").length,
  };
})()
"""


def scanned_fleet(directory: Path) -> Report:
    """One real scan of the five bench endpoints and a refused port (see the module docstring)."""
    out = directory / "fleet.json"
    with Fleet(5) as fleet:
        packs = [arg for pack in PACKS for arg in ("--pack", pack)]
        command = [
            sys.executable, "-m", "scanner.cli", "scan", *fleet.targets, "127.0.0.1:1", *packs, "--all-facts",
            "--ca-file", str(fleet.ca_file), "--offline", "--timeout", "3", "--json", str(out),
        ]  # fmt: skip
        run = subprocess.run(command, capture_output=True, text=True, check=False, env=os.environ | {"NO_COLOR": "1"})
    if run.returncode not in (1, 3):
        raise SystemExit(f"the scan failed (exit {run.returncode}): {run.stderr[-2000:]}")
    return Report.model_validate_json(out.read_text())


def fleet_report(base: Report, count: int) -> Report:
    """``base``'s targets copied to ``count`` targets with names of their own, unscanned every 20th."""
    scanned = [t for t in base.targets if t.facts.status == "ok"]
    unscanned = [t for t in base.targets if t.facts.status != "ok"]
    targets: list[TargetReport] = []
    for index in range(count):
        source = unscanned[0] if unscanned and index % UNSCANNED_EVERY == UNSCANNED_EVERY - 1 else scanned[index % 5]
        name = f"host-{index + 1:04d}.example.net"
        info = source.facts.target.model_copy(update={"input": f"{name}:443", "host": name, "server_name": name})
        facts = source.facts.model_copy(update={"target": info})
        targets.append(source.model_copy(update={"target": f"{name}:443", "facts": facts}))
    return base.model_copy(update={"targets": targets, "summary": summarise(targets)})


def measure(page_url: str, rounds: int) -> dict[str, Any]:
    runs: list[dict[str, Any]] = []
    for _ in range(rounds):
        with Chromium(width=1440, height=900, timeout=120) as browser:
            page = browser.page()
            started = time.perf_counter()
            page.open(page_url)
            wall = (time.perf_counter() - started) * 1000
            figures = page.evaluate(MEASURE)
            figures["wall_ms"] = wall
            assert figures["ready"], "the page's script did not run"
            assert figures["count_before"] != figures["count_after"], "the severity filter changed nothing"
            assert not page.problems(), page.problems()
            runs.append(figures)
    summary: dict[str, Any] = {"rows": runs[0]["rows"], "rounds": rounds}
    for key in ("first_paint_ms", "usable_ms", "parsed_ms", "load_ms", "filter_ms", "wall_ms"):
        values = [r[key] for r in runs]
        summary[key] = round(statistics.median(values), 1)
        summary[f"{key}_range"] = [round(min(values), 1), round(max(values), 1)]
    return summary


def chromium_version() -> str:
    run = subprocess.run(["/usr/bin/chromium", "--version"], capture_output=True, text=True, check=False)
    return run.stdout.strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, action="append", help="targets (repeatable; default 100 and 1000)")
    parser.add_argument("-r", type=int, default=5, help="chromium loads per size")
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    parser.add_argument("--keep", type=Path, help="keep the HTML reports in this directory")
    args = parser.parse_args()
    sizes = args.n or [100, 1000]
    results: dict[str, Any] = {
        "date": dt.date.today().isoformat(),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "chromium": chromium_version(),
            "load_1min": round(os.getloadavg()[0], 2),
        },
        "tlsgate": __version__,
        "packs": list(PACKS),
        "viewport": [1440, 900],
        "sizes": [],
    }
    with tempfile.TemporaryDirectory(prefix="tlsgate-bench-html-") as tmp:
        directory = args.keep or Path(tmp)
        directory.mkdir(parents=True, exist_ok=True)
        base = scanned_fleet(Path(tmp))
        results["findings_per_target"] = len(base.targets[0].findings)
        for count in sizes:
            report = fleet_report(base, count)
            started = time.perf_counter()
            page = html.render(report)
            render_s = time.perf_counter() - started
            path = directory / f"report-{count}.html"
            path.write_text(page, encoding="utf-8")
            data = page.encode()
            entry: dict[str, Any] = {
                "targets": count,
                "html_bytes": len(data),
                "html_gzip_bytes": len(gzip.compress(data, 6)),
                "bytes_per_target": round(len(data) / count),
                "render_s": round(render_s, 2),
            }
            entry.update(measure(path.as_uri(), args.r))
            results["sizes"].append(entry)
            print(json.dumps(entry), flush=True)
    if args.out:
        args.out.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
