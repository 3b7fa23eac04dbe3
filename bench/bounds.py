"""What bounding every sslyze connection and fetch costs a normal scan: one fleet, two checkouts, interleaved runs.

Starts N ``openssl s_server`` endpoints (bench/servers.py, mixed profiles, one connection at a time each) and runs
``tlsgate scan TARGETS --all-facts --json FILE`` R times from each of two source trees (``--before``, e.g. a
checkout of the commit before the change, and ``--after``, this tree), alternating, each tree on its own
``PYTHONPATH``. Prints the median and spread of wall time and the count of targets with facts ``ok``.

    python bench/bounds.py --before /tmp/before --after . -n 10 -r 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from servers import Fleet


def _scan(tree: Path, targets: list[str], out: Path) -> tuple[float, int]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    started = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "scanner.cli", "scan", *targets, "--all-facts", "--json", str(out), "-q"],
        env=env, cwd=tree, stdin=subprocess.DEVNULL, capture_output=True, check=False, timeout=900,
    )  # fmt: skip
    took = time.monotonic() - started
    report = json.loads(out.read_text())
    return took, sum(1 for t in report["targets"] if t["facts"]["status"] == "ok")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=True)
    parser.add_argument("--after", type=Path, required=True)
    parser.add_argument("-n", "--count", type=int, default=10)
    parser.add_argument("-r", "--repeat", type=int, default=3)
    args = parser.parse_args()
    trees = {"before": args.before.resolve(), "after": args.after.resolve()}
    times: dict[str, list[float]] = {name: [] for name in trees}
    with Fleet(args.count) as fleet, tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.repeat):
            for name, tree in trees.items():
                took, ok = _scan(tree, fleet.targets, Path(tmp) / f"{name}-{round_}.json")
                times[name].append(took)
                print(f"{name:6} run {round_ + 1}: {took:6.2f}s, {ok}/{len(fleet.targets)} targets ok", flush=True)
    for name, runs in times.items():
        print(f"{name:6} median {statistics.median(runs):6.2f}s  min {min(runs):6.2f}s  max {max(runs):6.2f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
