"""A channel that fails during a cycle: its events stay undelivered (not marked in the store) and go out at the
next cycle — even an event that cycle does not derive again (a rotation is news once), and even from a new
process (the pending events are kept in the spool directory). The watch service in-process, over a real loopback
server, a real SQLite store and a real HTTP receiver."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from scanner.engine import TrustRequest
from scanner.notify.channels import DeliveryPolicy, build_channels
from scanner.notify.config import read_notify_config
from scanner.probe.options import ProbeOptions
from scanner.store import open_store
from scanner.store.notifystate import StoreNotifyState
from scanner.targets.reader import load_inventory
from scanner.watch.service import Control, Notifier, Watcher, WatchSettings
from tests import pki
from tests.helpers import free_port, openssl_server
from tests.notify.receiver import receiver
from tests.notify.test_scan_events import _leaf


def test_events_a_channel_did_not_take_are_sent_at_the_next_cycle_by_a_new_process(tmp_path: Path) -> None:
    now = dt.datetime.now(dt.UTC)
    authority = pki.issue(pki.name("pending CA"), ca=True, not_before=now - dt.timedelta(days=1), days=3650)
    (ca_file := tmp_path / "ca.pem").write_bytes(authority.pem)
    cert1, key1, sha1 = _leaf(tmp_path, authority, "one", days=90)
    cert2, key2, sha2 = _leaf(tmp_path, authority, "two", days=90)
    port = free_port()
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(f"defaults: {{packs: [tls12-plus]}}\ntargets: ['127.0.0.1:{port}']\n")
    (config_file := tmp_path / "notify.yaml").write_text(
        "channels: {ops: {kind: webhook, url_env: T_URL, rate: 50/s}}\nroutes: [{channels: [ops]}]\n"
    )
    lines: list[tuple[str, dict[str, Any]]] = []
    url = f"sqlite:///{tmp_path / 's.db'}"

    with receiver() as ops:
        env = {"T_URL": ops.url()}
        config = read_notify_config(config_file, env)

        def watcher() -> Watcher:  # a new process: channels, state and spool opened afresh
            notifier = Notifier(config, build_channels(config, env, DeliveryPolicy(attempts=1)), 1)
            settings = WatchSettings(inventory, url, tmp_path / "spool", ["tls12-plus"], ProbeOptions(timeout=5),
                                     TrustRequest(ca_files=(ca_file,)), notifier=notifier)  # fmt: skip
            return Watcher(settings, load_inventory(inventory), lambda m, **f: lines.append((m, f)), Control())

        with openssl_server(cert1, key1, "-tls1_2", port=port):
            first = watcher().cycle()
        with openssl_server(cert2, key2, "-tls1_2", port=port):
            ops.script = [(500, {})]  # the receiver fails the first send: the channel is down for this cycle
            before = len(ops.requests)
            second = watcher().cycle()
            assert len(ops.requests) == before + 1 and second.events_sent == 0 and second.events_failed == 1
            assert (tmp_path / "spool" / "pending-events.json").exists()
            third = watcher().cycle()

    assert first.stored == second.stored == third.stored == "store"
    delivered = [r.json() for r in ops.delivered()]
    rotated = [body for body in delivered if body["kind"] == "certificate_rotated"]
    assert [(r["before"], r["after"]) for r in rotated] == [(sha1, sha2)]  # once, at the third cycle
    assert third.events_sent == 1 and third.events_failed == 0
    assert not (tmp_path / "spool" / "pending-events.json").exists()
    store = open_store(url)
    try:
        assert any(key.startswith("certificate_rotated|") for key in StoreNotifyState(store).delivered())
    finally:
        store.close()


def test_a_cycle_that_cannot_store_nor_spool_is_logged_and_the_service_goes_on(tmp_path: Path) -> None:
    """The store's directory missing and the spool a file: the run is lost, one error line says why, and the loop
    carries on (the next cycle is scheduled, not retried in a busy loop)."""
    port = free_port()  # nothing listens: a quick, unreachable target
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(f"defaults: {{packs: [tls12-plus], every: 1h}}\ntargets: ['127.0.0.1:{port}']\n")
    (spool := tmp_path / "spool").write_text("a file, not a directory")
    control = Control()
    lines: list[tuple[str, dict[str, Any]]] = []

    def log(message: str, **fields: Any) -> None:
        lines.append((message, fields))
        if message.startswith("cycle failed"):
            control.stop = True

    settings = WatchSettings(inventory, f"sqlite:///{tmp_path / 'gone' / 's.db'}", spool, ["tls12-plus"],
                             ProbeOptions(timeout=2), TrustRequest())  # fmt: skip
    watcher = Watcher(settings, load_inventory(inventory), log, control)
    watcher.run_forever()
    failed = [(m, f) for m, f in lines if m.startswith("cycle failed")]
    assert len(failed) == 1 and failed[0][1]["level"] == "error" and "spool" in failed[0][0], lines
    assert any("store unavailable" in m for m, _ in lines)
    assert watcher.schedule.next_due[f"127.0.0.1:{port}"] > 3000 + dt.datetime.now(dt.UTC).timestamp()
