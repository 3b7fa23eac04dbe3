"""`tlsgate watch` as a service: a 2-second interval over loopback servers; SIGHUP with a broken inventory keeps
the old one and says where the problem is; SIGTERM mid-run keeps the finished targets in an interrupted run and
exits 0; a store that is unavailable for a cycle has the run spooled and written once it is back."""

from __future__ import annotations

import json
import queue
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from scanner.store import open_store
from tests.helpers import ServerFiles, tlsgate_command


class Service:
    """A `tlsgate watch` child process whose JSON log lines are read as they come."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            tlsgate_command("watch", "--log-format", "json", *args),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.put(json.loads(line) if line.startswith("{") else {"message": line.rstrip()})

    def wait_for(self, predicate: Any, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                continue
            self.seen.append(line)
            if predicate(line):
                return line
        raise AssertionError(f"no such log line within {timeout} s; seen: {self.seen}")

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=30)


@pytest.fixture
def service() -> Iterator[list[Service]]:
    started: list[Service] = []
    yield started
    for one in started:
        if one.proc.poll() is None:
            one.proc.kill()
            one.proc.wait(timeout=10)


def _is_run(line: dict[str, Any]) -> bool:
    return line.get("kind") == "run"


def _inventory(path: Path, *targets: str, every: str = "2s") -> Path:
    path.write_text(f"defaults: {{packs: [tls12-plus], every: {every}}}\ntargets:\n"
                    + "".join(f"  - '{t}'\n" for t in targets))  # fmt: skip
    return path


def test_sighup_with_a_broken_inventory_keeps_the_old_one_and_names_the_problem(
    tmp_path, tls12_13_server, pki: ServerFiles, service
):
    inventory = _inventory(tmp_path / "inventory.yaml", tls12_13_server.target)
    watch = Service("--inventory", str(inventory), "--store", f"sqlite:///{tmp_path / 's.db'}", "--ca-file",
                    str(pki.ca), "--spool", str(tmp_path / "spool"), "--listen", "127.0.0.1:0")  # fmt: skip
    service.append(watch)
    port = watch.wait_for(lambda line: line.get("kind") == "listen")["port"]
    watch.wait_for(_is_run)
    metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text  # fed as the target finished
    assert f'tlsgate_scan_success{{target="{tls12_13_server.target}"}} 1.0' in metrics, metrics
    metrics = ""
    inventory.write_text("targets:\n  - target: 127.0.0.1:443\n    every: often\n")
    watch.proc.send_signal(signal.SIGHUP)
    problem = watch.wait_for(lambda line: "inventory not reloaded" in line.get("message", ""))
    assert f"{inventory}:3:12:" in problem["message"] and "'every' must be a duration" in problem["message"]
    assert problem["level"] == "error"
    again = watch.wait_for(_is_run)  # still running, still scanning the old inventory's target
    assert again["targets"] == 1 and again["verdicts"] and again["stored"] == "store"
    _inventory(inventory, tls12_13_server.target, f"localhost:{tls12_13_server.port}")
    watch.proc.send_signal(signal.SIGHUP)
    watch.wait_for(lambda line: line.get("message") == "inventory reloaded: 2 targets")
    assert watch.wait_for(_is_run)["targets"] >= 1
    assert watch.stop() == 0
    assert watch.wait_for(lambda line: line.get("kind") == "stop")

    # restarted: what the store holds is on /metrics at once, and nothing scanned a second earlier is due again
    _inventory(inventory, tls12_13_server.target, every="1h")
    again = Service("--inventory", str(inventory), "--store", f"sqlite:///{tmp_path / 's.db'}", "--ca-file",
                    str(pki.ca), "--spool", str(tmp_path / "spool"), "--listen", "127.0.0.1:0")  # fmt: skip
    service.append(again)
    port = again.wait_for(lambda line: line.get("kind") == "listen")["port"]
    deadline = time.monotonic() + 20
    while f'tlsgate_scan_success{{target="{tls12_13_server.target}"}} 1.0' not in metrics:
        assert time.monotonic() < deadline, metrics
        time.sleep(0.2)
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    time.sleep(1)
    assert again.stop() == 0
    again.wait_for(lambda line: line.get("kind") == "stop")
    assert not [line for line in again.seen if _is_run(line)]


def test_sigterm_mid_run_keeps_the_finished_targets_in_an_interrupted_run(
    tmp_path, tls12_13_server, silent_server, pki: ServerFiles, service
):
    url = f"sqlite:///{tmp_path / 's.db'}"
    inventory = _inventory(tmp_path / "inventory.yaml", tls12_13_server.target, silent_server.target, every="1h")
    watch = Service("--inventory", str(inventory), "--store", url, "--ca-file", str(pki.ca), "--timeout", "20",
                    "--spool", str(tmp_path / "spool"))  # fmt: skip
    service.append(watch)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # the answering server's target is in the store; the silent one hangs
        if (tmp_path / "s.db").exists():
            store = open_store(url)
            try:
                runs = store.runs()
            finally:
                store.close()
            if runs and runs[0].targets == 1:
                break
        time.sleep(0.2)
    else:
        raise AssertionError("the first target never reached the store")
    started = time.monotonic()
    assert watch.stop() == 0
    assert time.monotonic() - started < 15  # between targets: not after the silent server's 20 s timeout
    store = open_store(url)
    try:
        (run,) = store.runs()
        assert (run.status, run.targets) == ("interrupted", 1)
        assert store.labels(run.id) == [tls12_13_server.target]
    finally:
        store.close()
    line = watch.wait_for(_is_run)
    assert line["interrupted"] is True and line["targets"] == 2


def test_a_store_unavailable_for_a_cycle_has_the_run_spooled_then_written(
    tmp_path, tls12_13_server, pki: ServerFiles, service
):
    directory = tmp_path / "db"
    directory.mkdir()
    url = f"sqlite:///{directory / 's.db'}"
    spool = tmp_path / "spool"
    inventory = _inventory(tmp_path / "inventory.yaml", tls12_13_server.target)
    watch = Service("--inventory", str(inventory), "--store", url, "--ca-file", str(pki.ca), "--spool", str(spool))
    service.append(watch)
    assert watch.wait_for(_is_run)["stored"] == "store"
    shutil.move(directory, tmp_path / "db.away")
    directory.write_text("not a directory")  # the store's directory is gone: it cannot be opened
    outage = watch.wait_for(_is_run)
    assert outage["stored"] == "spool" and outage["run_id"] is None
    assert len(list(spool.glob("run-*.json"))) >= 1
    directory.unlink()
    shutil.move(tmp_path / "db.away", directory)
    written = watch.wait_for(lambda line: line.get("kind") == "spool")
    assert watch.wait_for(_is_run)["stored"] == "store"
    assert watch.stop() == 0
    assert not list(spool.glob("run-*.json"))
    store = open_store(url)
    try:
        runs = store.runs()
        assert written["run_id"] in {r.id for r in runs}
        assert all(r.status == "finished" and r.targets == 1 for r in runs) and len(runs) >= 3
    finally:
        store.close()
