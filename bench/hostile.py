"""Measure `tlsgate scan` against the hostile servers of tests/hostile.py: how long, and which class, run after run.

Two ways, both through the real command line:

  single   each behaviour in its own `tlsgate scan HOST:PORT --timeout T [--starttls P]`, --single-runs times
  fleet    every behaviour in one `tlsgate scan --inventory` run (each on its own 127.0.0.x), --fleet-runs times;
           a target's time is bounded by its run's wall time

For each behaviour it prints the classes seen (with counts), the expected class, and the slowest single run and
fleet run against the bound 3 x timeout + 5 s, as a Markdown table, and writes every run to
bench/results-hostile-DATE.json. Run from the repository root: `python bench/hostile.py --fleet-runs 20`.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import datetime as dt
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.helpers import run_tlsgate
from tests.hostile import PREFLIGHT_CLASS, hostile_server, scan_class, starttls_of


def _errors(report: Path) -> dict[str, str | None]:
    if not report.exists():
        return {}
    return {
        t["target"]: (t["facts"].get("error") or {}).get("error_class")
        for t in json.loads(report.read_text())["targets"]
    }


def single(behaviour: str, timeout: float, directory: Path) -> dict[str, Any]:
    report = directory / f"{behaviour}.json"
    report.unlink(missing_ok=True)
    starttls = starttls_of(behaviour)
    with hostile_server(behaviour, interval=0.5) as server:
        run = run_tlsgate(
            "scan", server.target, "--timeout", f"{timeout:g}", "--json", str(report),
            *(("--starttls", starttls) if starttls else ()),
        )  # fmt: skip
        found = _errors(report).get(server.target)
    return {"behaviour": behaviour, "seconds": run.seconds, "code": run.code, "class": found}


def fleet(timeout: float, directory: Path) -> dict[str, Any]:
    inventory, report = directory / "fleet.yaml", directory / "fleet.json"
    report.unlink(missing_ok=True)
    with contextlib.ExitStack() as stack:
        entries = []
        for number, behaviour in enumerate(sorted(PREFLIGHT_CLASS)):
            server = stack.enter_context(hostile_server(behaviour, interval=0.5, host=f"127.0.0.{20 + number}"))
            starttls = starttls_of(behaviour)
            extra = f", starttls: {starttls}" if starttls else ""
            entries.append(f"  - {{name: {behaviour}, host: {server.host}, port: {server.port}{extra}}}")
        inventory.write_text("targets:\n" + "\n".join(entries) + "\n")
        run = run_tlsgate("scan", "--inventory", str(inventory), "--timeout", f"{timeout:g}", "--json", str(report))
    return {"seconds": run.seconds, "code": run.code, "classes": _errors(report)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--timeout", type=float, default=2.0)
    parser.add_argument("--single-runs", type=int, default=1, help="runs of each behaviour on its own")
    parser.add_argument("--fleet-runs", type=int, default=3, help="runs of all behaviours in one inventory")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    bound = 3 * args.timeout + 5
    singles: list[dict[str, Any]] = []
    fleets: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        for _ in range(args.single_runs):
            singles.extend(single(name, args.timeout, directory) for name in sorted(PREFLIGHT_CLASS))
        fleets.extend(fleet(args.timeout, directory) for _ in range(args.fleet_runs))
    slowest_fleet = max((f["seconds"] for f in fleets), default=0.0)
    print(f"load average {os.getloadavg()[0]:.1f}; bound {bound:g} s; single runs {args.single_runs}, "
          f"fleet runs {args.fleet_runs} (slowest fleet run {slowest_fleet:.1f} s)")  # fmt: skip
    print("\n| behaviour | expected | classes seen | slowest single s | in bound |")
    print("|---|---|---|---|---|")
    failures = 0
    for name in sorted(PREFLIGHT_CLASS):
        seen = collections.Counter(r["class"] for r in singles if r["behaviour"] == name)
        seen.update(f["classes"].get(name) for f in fleets)
        slowest = max((r["seconds"] for r in singles if r["behaviour"] == name), default=0.0)
        good = set(seen) == {scan_class(name)} and max(slowest, slowest_fleet) < bound
        failures += not good
        classes = ", ".join(f"{c} x{n}" for c, n in seen.items())
        print(f"| {name} | {scan_class(name)} | {classes} | {slowest:.1f} | {'yes' if good else 'NO'} |")
    out = args.out or Path(__file__).parent / f"results-hostile-{dt.date.today().isoformat()}.json"
    out.write_text(json.dumps({"timeout": args.timeout, "single": singles, "fleet": fleets}, indent=1) + "\n")
    print(f"\n{failures} behaviour(s) out of class or bound; runs written to {out}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
