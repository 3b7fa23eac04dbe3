"""``/metrics`` for a fleet: response size and time with 1,000 targets (goals: under 1 MB, under 100 ms).

One real scan of a loopback endpoint (the demo's: TLS 1.2 and 1.3, judged by essentials and tls13-only) gives a
target's facts and findings; it is copied to N targets under distinct names (``host-0001.example.net:443``, or
long names with ``--long-names``) and put in a LatestState behind the real server of ``tlsgate serve``. Then R
GETs of /metrics over loopback, plain and gzip (what Prometheus asks for): size, series, median and p95 time.

    python bench/metrics.py -n 1000 -r 50 [--out bench/results-metrics-DATE.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from scanner.cli.packs import load_packs
from scanner.demo import demo_endpoint, make_demo_pki
from scanner.engine import ScanRequest, TrustRequest, scan
from scanner.probe.options import ProbeOptions
from scanner.report import TargetReport
from scanner.serve.http import ServeApp, make_server
from scanner.serve.metrics import LatestState, TargetCollector, registry_of
from scanner.targets import parse_target


def _scanned() -> TargetReport:
    with tempfile.TemporaryDirectory() as tmp, demo_endpoint(pki := make_demo_pki(Path(tmp))) as server:
        request = ScanRequest(
            [parse_target(server.target)],
            load_packs(["essentials", "tls13-only"]),
            ProbeOptions(timeout=5),
            trust=TrustRequest(ca_files=[pki.ca_cert]),
        )
        return scan(request).report.targets[0]


VARIANTS = {"plain": {"Accept-Encoding": "identity"}, "gzip": {"Accept-Encoding": "gzip"}}


def _timed(client: httpx.Client, url: str, rounds: int) -> dict[str, dict[str, float]]:
    """Per variant, interleaved (a loaded machine slows both alike): seconds per GET, the bytes on the wire (gzipped
    when asked) and the decoded body's length."""
    times: dict[str, list[float]] = {name: [] for name in VARIANTS}
    sizes: dict[str, tuple[int, int]] = {}
    for _ in range(rounds):
        for name, headers in VARIANTS.items():
            started = time.perf_counter()
            response = client.get(url, headers=headers)
            times[name].append(time.perf_counter() - started)
            assert response.status_code == 200
            sizes[name] = (int(response.headers["content-length"]), len(response.content))
    figures = {}
    for name, taken in times.items():
        ordered = sorted(taken)
        figures[name] = {
            "bytes_on_wire": sizes[name][0],
            "bytes_decoded": sizes[name][1],
            "median_ms": round(statistics.median(taken) * 1000, 1),
            "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))] * 1000, 1),
            "max_ms": round(ordered[-1] * 1000, 1),
        }
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=1000, help="targets")
    parser.add_argument("-r", type=int, default=50, help="GETs per variant")
    parser.add_argument("--long-names", action="store_true", help="target names of ~50 characters")
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    args = parser.parse_args()
    one = _scanned()
    state = LatestState()
    name = (
        "service-{:04d}.payments.prod.eu-west-1.example.com:8443" if args.long_names else "host-{:04d}.example.net:443"
    )
    state.update(one.model_copy(update={"target": name.format(i)}) for i in range(args.n))
    server = make_server("127.0.0.1", 0, ServeApp(registry_of(TargetCollector(state.snapshot))))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/metrics"
    figures: dict[str, object] = {"targets": args.n, "rounds": args.r, "target_name_example": name.format(1)}
    with httpx.Client(timeout=30) as client:
        text = client.get(url).text
        figures["series"] = sum(1 for line in text.splitlines() if line and not line.startswith("#"))
        figures.update(_timed(client, url, args.r))
    server.shutdown()
    print(json.dumps(figures, indent=1))
    if args.out:
        args.out.write_text(json.dumps(figures, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
