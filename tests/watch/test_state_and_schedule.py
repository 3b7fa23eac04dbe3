"""The pieces of `tlsgate watch` without a network: the notification state in the store (revision 0003, upgraded
from 0002, on SQLite and PostgreSQL), the schedule's jitter, the inventory's `every` key, the usage errors."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from alembic.command import upgrade
from alembic.config import Config
from sqlalchemy import create_engine, inspect

from scanner.notify.state import Streak
from scanner.store import MIGRATIONS, _engine_url, open_store
from scanner.store.notifystate import StoreNotifyState
from scanner.targets.inventory import InventoryError
from scanner.targets.reader import load_inventory
from scanner.watch.schedule import Schedule, jitter_fraction
from tests.helpers import free_port, run_tlsgate
from tests.postgres import postgres_url  # noqa: F401 - the session fixture store_url uses
from tests.store.test_store import store_url  # noqa: F401 - a new SQLite file or PostgreSQL database


def test_a_store_at_revision_0002_is_upgraded_and_keeps_the_notification_state(
    store_url: str,  # noqa: F811 - the imported fixture
) -> None:
    """Each key is marked once (marking again is harmless), long keys included; streaks round-trip; the state
    survives closing and opening the store again (a restart)."""
    engine = create_engine(_engine_url(store_url))
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        upgrade(config, "0002")
        assert "notify_delivered" not in inspect(connection).get_table_names()
    engine.dispose()
    long_key = "suite_added|127.0.0.1:443/-/-|TLSv1.2|" + ",".join(["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"] * 60)
    store = open_store(store_url)
    try:
        state = StoreNotifyState(store)
        assert not state.seen("k1") and state.streak("h:443/-/-") == Streak()
        state.mark("k1")
        state.mark("k1")
        state.mark(long_key)
        state.set_streak("h:443/-/-", Streak(count=1, since="a", last_run="a"))
        state.set_streak("h:443/-/-", Streak(count=2, since="a", last_run="b"))
    finally:
        store.close()
    store = open_store(store_url)
    try:
        state = StoreNotifyState(store)
        assert state.seen("k1") and state.seen(long_key) and not state.seen("k2")
        assert sorted(state.delivered()) == sorted(["k1", long_key])
        assert state.streak("h:443/-/-") == Streak(count=2, since="a", last_run="b")
    finally:
        store.close()


def _inventory(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "inventory.yaml"
    path.write_text(text)
    return path


def test_every_is_read_per_group_and_target_and_a_bad_one_is_placed(tmp_path: Path) -> None:
    inventory = load_inventory(_inventory(tmp_path, (
        "defaults: {every: 1d}\n"
        "groups:\n  edge:\n    every: 6h\n    targets: [a.example, {target: b.example, every: 30m}]\n"
        "targets: [c.example]\n"
    )))  # fmt: skip
    schedule = Schedule(default_every=99.0)
    assert {t.name: schedule.every(t) for t in inventory.targets} == {
        "a.example": 6 * 3600.0, "b.example": 1800.0, "c.example": 86400.0
    }  # fmt: skip
    with pytest.raises(InventoryError) as caught:
        load_inventory(
            _inventory(tmp_path, "targets:\n  - {target: a.example, every: 0s}\n  - {target: b, every: x}\n")
        )
    assert [(p.line, p.column) for p in caught.value.problems] == [(2, 32), (3, 24)]  # at each value
    assert all("'every' must be a duration" in p.message for p in caught.value.problems)


def test_the_jitter_spreads_a_fleet_over_a_tenth_of_the_interval_the_same_way_every_time(tmp_path: Path) -> None:
    names = [f"host{i}.example:443" for i in range(200)]
    inventory = load_inventory(_inventory(tmp_path, "targets:\n" + "".join(f"  - '{n}'\n" for n in names)))
    schedule = Schedule(default_every=3600.0)
    assert schedule.due(inventory.targets, 1000.0) == list(inventory.targets)  # never scanned: due now
    schedule.scanned(inventory.targets, 1000.0)
    offsets = sorted(schedule.next_due[n] - 1000.0 - 3600.0 for n in names)
    assert offsets[0] >= 0 and offsets[-1] < 360  # within a tenth of the interval
    assert offsets[-1] - offsets[0] > 300  # and spread over it, not bunched
    assert schedule.due(inventory.targets, 1000.0 + 3600.0 - 36.5) == []  # the batching window: 36 s (1 %)
    assert len(schedule.due(inventory.targets, 1000.0 + 3600.0 + 180 - 36)) in range(60, 140)
    # a run starting when the first target is due takes along those due in the next 36 s, and no other
    first = min(schedule.next_due.values())
    batch = schedule.due(inventory.targets, first)
    assert {t.name for t in batch} == {n for n in names if schedule.next_due[n] <= first + 36.0}
    assert 5 <= len(batch) < 60
    assert jitter_fraction("a") == jitter_fraction("a") != jitter_fraction("b")
    again = Schedule(default_every=3600.0)
    again.seed(inventory.targets, dict.fromkeys(names, 1000.0))  # a restart: from the store's last scans
    assert again.next_due == schedule.next_due


def test_usage_errors_are_one_line_and_exit_2(tmp_path: Path) -> None:
    inventory = _inventory(tmp_path, f"targets: ['127.0.0.1:{free_port()}']\n")  # loopback, should one run
    bad = tmp_path / "bad.yaml"
    bad.write_text("targets:\n  - {every: 1h}\n")
    cases = [
        (["--inventory", str(bad), "--store", "s.db"], f"{bad}:2:5:"),
        (["--inventory", str(inventory), "--store", "mysql://u@h/db"], "not a store URL"),
        (["--inventory", str(inventory), "--store", "s.db", "--every", "soon"], "--every 'soon'"),
        (["--inventory", str(inventory), "--store", "s.db", "--listen", "nowhere"], "--listen 'nowhere'"),
    ]
    if importlib.util.find_spec("scanner.site") is None:  # built separately; merged, --site works instead
        cases.append((["--inventory", str(inventory), "--store", "s.db", "--site", str(tmp_path)], "--site needs"))
    for args, expected in cases:
        run = run_tlsgate("watch", *args, "--once", cwd=tmp_path, timeout=60)
        assert run.code == 2 and expected in run.stderr, (args, run.stderr)
        assert "Traceback" not in run.stderr
