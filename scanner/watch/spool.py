"""Runs that could not be written to the store, kept as files until it is back: one JSON file per run (the whole
report, and the id of the run the store had begun, if any, to mark it interrupted), written atomically, removed
once the store holds the run. Events not yet delivered are kept next to them."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from scanner.notify.events import Event
from scanner.render.files import write_atomic
from scanner.report import Report

PENDING = "pending-events.json"


@dataclass(frozen=True)
class Spooled:
    path: Path
    report: Report
    abandoned_run: int | None  # the store's run begun for it, left running when the store failed


class SpoolError(Exception):
    """A spool file that cannot be read: its path and why (the file is set aside, never deleted)."""


class Spool:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def put(self, report: Report, abandoned_run: int | None) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"run-{time.time_ns()}-{os.getpid()}.json"
        body = {"abandoned_run": abandoned_run, "report": json.loads(report.model_dump_json())}
        write_atomic(path, json.dumps(body))
        return path

    def runs(self) -> list[Path]:
        """Spooled runs, oldest first."""
        if not self.directory.is_dir():
            return []
        return sorted(self.directory.glob("run-*.json"))

    def read(self, path: Path) -> Spooled:
        try:
            body = json.loads(path.read_bytes())
            report = Report.model_validate(body["report"])
            abandoned = body.get("abandoned_run")
        except (OSError, ValueError, KeyError, TypeError, ValidationError) as exc:
            path.rename(path.with_suffix(".unreadable"))
            raise SpoolError(f"{path}: not a spooled run ({type(exc).__name__}); set aside as .unreadable") from None
        return Spooled(path, report, abandoned if isinstance(abandoned, int) else None)

    def pending(self) -> list[Event]:
        path = self.directory / PENDING
        try:
            return [Event.model_validate(item) for item in json.loads(path.read_bytes())]
        except FileNotFoundError:
            return []
        except (OSError, ValueError, TypeError, ValidationError):
            return []  # a damaged list of pending events: they were derived once, losing them is not worse

    def set_pending(self, events: list[Event]) -> None:
        path = self.directory / PENDING
        if not events:
            path.unlink(missing_ok=True)
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps([json.loads(e.model_dump_json()) for e in events]))
