"""What makes each event go out once: keys already delivered and each target's run of unreachable scans.

``NotifyState`` is the narrow interface the notification layer needs; ``JsonFileState`` keeps it in one JSON file
(written atomically after each change, so a restart resumes where it stopped), ``MemoryState`` in memory. The
store implements the same protocol for ``tlsgate watch``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Protocol

from pydantic import BaseModel, ConfigDict, ValidationError

from scanner.render.files import write_atomic


class Streak(BaseModel):
    """A target's consecutive unreachable runs: how many, since which run, the last run counted (so one run is
    never counted twice), and, once it is reachable again, the run the streak that just ended started at."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    count: int = 0
    since: str | None = None
    last_run: str | None = None
    ended: str | None = None


class NotifyState(Protocol):
    def seen(self, event_key: str) -> bool:
        """Whether the event (or the event on one channel: ``KEY@CHANNEL``) was delivered."""
        ...

    def mark(self, event_key: str) -> None: ...

    def streak(self, target: str) -> Streak: ...

    def set_streak(self, target: str, streak: Streak) -> None: ...


class _State(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = 1
    delivered: list[str] = []
    streaks: dict[str, Streak] = {}


class StateFileError(ValueError):
    """A state file that cannot be read: one line naming the file and why."""


class MemoryState:
    def __init__(self) -> None:
        self._delivered: set[str] = set()
        self._streaks: dict[str, Streak] = {}

    def seen(self, event_key: str) -> bool:
        return event_key in self._delivered

    def mark(self, event_key: str) -> None:
        self._delivered.add(event_key)
        self._changed()

    def streak(self, target: str) -> Streak:
        return self._streaks.get(target, Streak())

    def set_streak(self, target: str, streak: Streak) -> None:
        self._streaks[target] = streak
        self._changed()

    def _changed(self) -> None:
        """Nothing to persist in memory."""


class JsonFileState(MemoryState):
    """The state in a JSON file, rewritten whole (temporary file, then rename) after every change."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        if path.exists():
            try:
                data = _State.model_validate_json(path.read_bytes())
            except (OSError, ValidationError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) else "not a tlsgate notification state file"
                raise StateFileError(f"{path}: cannot read the notification state: {reason}") from None
            self._delivered = set(data.delivered)
            self._streaks = dict(data.streaks)

    def _changed(self) -> None:
        data = _State(delivered=sorted(self._delivered), streaks=self._streaks)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(self.path, json.dumps(data.model_dump(mode="json"), indent=1, sort_keys=True) + "\n")
