"""Finished targets kept out of memory while a scan runs: ``TargetSpool``.

A scan of thousands of targets used to hold every ``TargetReport`` (facts, findings: ~235 kB a target as Python
objects) until the report was written. The spool keeps each one as zlib-compressed JSON (its
``model_dump_json``) in a ``SpooledTemporaryFile``: in memory up to a few MB, then in a temp file that is gone
when the spool is. It is a read-only ``Sequence``: iterating decodes one target at a time, in the targets' order
(slots are numbered by the caller, targets finishing in any order), so a report holding a spool is read like one
holding a list, and the memory of the process coordinating a scan stays flat in the number of targets.
"""

from __future__ import annotations

import tempfile
import threading
import zlib
from collections.abc import Iterable, Iterator, Sequence
from typing import overload

from scanner.report import TargetReport

MEMORY_BYTES = 4 * 1024 * 1024  # compressed targets kept in memory before the spool moves to a temp file
_LEVEL = 1  # zlib: the JSON of a target compresses ~8x at the fastest level already


class TargetSpool(Sequence[TargetReport]):
    """``size`` slots, each filled once with ``put``; a slot never filled is skipped (``len`` counts the filled
    ones). Safe to read from several threads (each read is one seek and one read under a lock)."""

    def __init__(self, size: int = 0) -> None:
        self._file = tempfile.SpooledTemporaryFile(max_size=MEMORY_BYTES, prefix="tlsgate-spool-")  # noqa: SIM115
        self._where: list[tuple[int, int] | None] = [None] * size
        self._end = 0
        self._filled = 0
        self._lock = threading.Lock()

    @classmethod
    def of(cls, targets: Iterable[TargetReport]) -> TargetSpool:
        spool = cls()
        for target in targets:
            spool.append(target)
        return spool

    def append(self, target: TargetReport) -> None:
        self._where.append(None)
        self.put(len(self._where) - 1, target)

    def put(self, index: int, target: TargetReport) -> None:
        if self._where[index] is not None:
            raise ValueError(f"slot {index} of the spool is filled already")
        data = zlib.compress(target.model_dump_json().encode("utf-8"), _LEVEL)
        with self._lock:
            self._file.seek(self._end)
            self._file.write(data)
            self._where[index] = (self._end, len(data))
            self._end += len(data)
            self._filled += 1

    def filled(self, index: int) -> bool:
        return self._where[index] is not None

    def _read(self, where: tuple[int, int]) -> TargetReport:
        offset, length = where
        with self._lock:
            self._file.seek(offset)
            data = self._file.read(length)
        return TargetReport.model_validate_json(zlib.decompress(data))

    def __len__(self) -> int:
        return self._filled

    def __iter__(self) -> Iterator[TargetReport]:
        for where in list(self._where):
            if where is not None:
                yield self._read(where)

    @overload
    def __getitem__(self, index: int) -> TargetReport: ...

    @overload
    def __getitem__(self, index: slice) -> list[TargetReport]: ...

    def __getitem__(self, index: int | slice) -> TargetReport | list[TargetReport]:
        filled = [where for where in self._where if where is not None]
        if isinstance(index, slice):
            return [self._read(where) for where in filled[index]]
        return self._read(filled[index])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, str):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]  # equal to a list of the same targets: unhashable like one

    def __repr__(self) -> str:
        return f"TargetSpool({self._filled} targets, {self._end} bytes)"

    def close(self) -> None:
        self._file.close()
