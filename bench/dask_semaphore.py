"""What a connection would cost if --per-host were held by Dask's distributed Semaphore instead of by grouping.

The Dask executor keeps ``--per-host`` exact by sending every target of one host to one worker, where a local
``Slots`` (threading semaphores, microseconds) bounds the connections. The alternative is one task per target
anywhere, each connection taking a lease of a cluster-wide ``distributed.Semaphore`` named after the host: a round
trip to the scheduler per acquire and per release. This measures that round trip from worker tasks on a local
cluster (loopback, the cheapest network there is), beside the threading semaphore, and prints JSON:

    PYTHONPATH=. python bench/dask_semaphore.py [--workers 2] [--tasks 8] [--leases 200]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import threading
import time
from typing import Any

CONNECTIONS_PER_TARGET = {"default plan": 32, "--all-facts": 70}  # measured by bench/run.py (README, Performance)


def _distributed_leases(name: str, leases: int) -> list[float]:
    from distributed import Semaphore  # noqa: PLC0415

    semaphore = Semaphore(max_leases=8, name=name)
    times = []
    for _ in range(leases):
        started = time.perf_counter()
        semaphore.acquire()
        semaphore.release()
        times.append(time.perf_counter() - started)
    return times


def _local_leases(leases: int) -> list[float]:
    semaphore = threading.BoundedSemaphore(8)
    times = []
    for _ in range(leases):
        started = time.perf_counter()
        semaphore.acquire()
        semaphore.release()
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--tasks", type=int, default=8, help="tasks at once, each taking leases of one host's semaphore"
    )
    parser.add_argument("--leases", type=int, default=200, help="acquire+release pairs per task")
    args = parser.parse_args()
    from distributed import Client, LocalCluster  # noqa: PLC0415

    with (
        LocalCluster(n_workers=args.workers, threads_per_worker=4, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        client.submit(_distributed_leases, "warm-up", 10, pure=False).result()
        started = time.perf_counter()
        futures = [client.submit(_distributed_leases, "host", args.leases, pure=False) for _ in range(args.tasks)]
        distributed_times = [t for future in futures for t in future.result()]
        wall = time.perf_counter() - started
        local_times = client.submit(_local_leases, args.leases * args.tasks, pure=False).result()
    median = statistics.median(distributed_times)
    result: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "workers": args.workers,
        "tasks": args.tasks,
        "leases_per_task": args.leases,
        "distributed_semaphore_ms": {
            "median": round(median * 1000, 3),
            "p90": round(statistics.quantiles(distributed_times, n=10)[-1] * 1000, 3),
            "leases_per_second_cluster": round(len(distributed_times) / wall),
        },
        "threading_semaphore_us": round(statistics.median(local_times) * 1e6, 3),
        "added_seconds_per_target": {
            plan: round(connections * median, 3) for plan, connections in CONNECTIONS_PER_TARGET.items()
        },
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
