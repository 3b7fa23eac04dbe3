"""The notification state (``scanner.notify.state.NotifyState``) kept in the store, for `tlsgate watch`: an event
delivered is recorded in the same database as the runs it came from, so it is sent once across restarts."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence

from sqlalchemy import delete, func, insert, select

from scanner.notify.state import Streak
from scanner.store import Store
from scanner.store.schema import notify_delivered, notify_streaks, run_targets, targets


def _sha(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def previous_runs(store: Store, run_id: int, labels: Sequence[str]) -> dict[str, int]:
    """Each target's (by label) newest run before ``run_id``: what its events in ``run_id`` are derived against.
    One grouped query per 500 labels, on the (target, run) index: not a walk through the history."""
    found: dict[str, int] = {}
    ordered = sorted(set(labels))
    with store.engine.connect() as connection:
        for start in range(0, len(ordered), 500):
            query = (
                select(targets.c.label, func.max(run_targets.c.run_id))
                .join(run_targets, run_targets.c.target_id == targets.c.id)
                .where(targets.c.label.in_(ordered[start : start + 500]), run_targets.c.run_id < run_id)
                .group_by(targets.c.label)
            )
            found.update({label: int(newest) for label, newest in connection.execute(query)})
    return found


class StoreNotifyState:
    """Delivered keys and unreachable streaks in the store's notify_delivered and notify_streaks tables. Every
    call is its own transaction: a key is marked the moment its channel took it. SQLAlchemyError when the store
    cannot be reached (the caller keeps the events undelivered)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def seen(self, event_key: str) -> bool:
        with self.store.engine.connect() as connection:
            query = select(notify_delivered.c.key_sha256).where(notify_delivered.c.key_sha256 == _sha(event_key))
            return connection.execute(query).first() is not None

    def mark(self, event_key: str) -> None:
        with self.store.engine.begin() as connection:
            connection.execute(
                self.store.insert_ignore(notify_delivered).values(
                    key_sha256=_sha(event_key), key=event_key, at=time.time()
                )
            )

    def streak(self, target: str) -> Streak:
        with self.store.engine.connect() as connection:
            found = connection.execute(
                select(notify_streaks.c.streak).where(notify_streaks.c.target == target)
            ).scalar()
        return Streak() if found is None else Streak.model_validate_json(found)

    def set_streak(self, target: str, streak: Streak) -> None:
        with self.store.engine.begin() as connection:
            connection.execute(delete(notify_streaks).where(notify_streaks.c.target == target))
            connection.execute(insert(notify_streaks).values(target=target, streak=streak.model_dump_json()))

    def delivered(self) -> list[str]:
        """Every key recorded, oldest first (for tests and inspection)."""
        with self.store.engine.connect() as connection:
            query = select(notify_delivered.c.key).order_by(notify_delivered.c.at, notify_delivered.c.key)
            return list(connection.execute(query).scalars())
