"""Reading a file the user named, bounded in size and in time, whatever the path turns out to be.

Certificate, CA, pin, key and YAML files arrive in pull requests and on command lines, so a path may name a
directory, a FIFO nobody writes to, ``/dev/zero`` or ``/dev/urandom``. The file is opened without blocking (opening
a FIFO with no writer would wait for one for ever), a directory is refused by its type, a regular file by its size
before a byte is read, and anything else (a pipe, a device, a socket) is read in pieces until ``limit`` + 1 bytes,
``wait`` seconds without data, or ``TOTAL_WAIT`` seconds in all: never more memory than the limit, never a hang —
while a producer that keeps writing (``tlsgate evaluate <(ssh host cat report.json)``) is read whole.
"""

from __future__ import annotations

import errno
import os
import select
import stat
import time
from pathlib import Path

MAX_BYTES = 16 * 1024 * 1024  # a CA bundle is a few hundred KB (Mozilla's: ~220 KB), a certificate kilobytes
WAIT = 10.0  # seconds a pipe or a device may stay silent
TOTAL_WAIT = 120.0  # seconds a pipe or a device may take to deliver all of its data
_CHUNK = 256 * 1024


def size_words(limit: int) -> str:
    """``limit`` as the messages say it: "16 MiB", "1 MiB", "4096 bytes"."""
    return f"{limit // (1024 * 1024)} MiB" if limit >= 1024 * 1024 else f"{limit} bytes"


class Unreadable(Exception):
    """Why a file cannot be used, in words that follow "cannot read FILE: " (``reason``); ``code`` the errno when
    the system said why (ENOENT, EISDIR, EACCES ...); ``too_large`` when it holds more than the limit, which
    callers word as a refusal rather than a read error."""

    def __init__(self, reason: str, *, code: int | None = None, too_large: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code
        self.too_large = too_large


def _os_error(exc: OSError | ValueError) -> Unreadable:
    if isinstance(exc, OSError) and exc.strerror:
        return Unreadable(exc.strerror, code=exc.errno)
    return Unreadable(str(exc))  # ValueError: a NUL byte in the name (from an escape in a YAML string, say)


def read_limited(path: Path, limit: int = MAX_BYTES, wait: float = WAIT) -> bytes:
    """The file's bytes, at most ``limit`` of them. Raises Unreadable: missing, a directory, not permitted, a name
    the system refuses, more than ``limit`` bytes, or a pipe or device silent for ``wait`` seconds or not ended
    within TOTAL_WAIT."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except (OSError, ValueError) as exc:
        raise _os_error(exc) from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise Unreadable(os.strerror(errno.EISDIR), code=errno.EISDIR)
        if stat.S_ISREG(info.st_mode) and info.st_size > limit:  # refused before a byte is read
            raise Unreadable(f"larger than {size_words(limit)}", too_large=True)
        return _read(fd, limit, wait)
    except OSError as exc:
        raise _os_error(exc) from None
    finally:
        os.close(fd)


def _read(fd: int, limit: int, wait: float) -> bytes:
    chunks: list[bytes] = []
    total = 0
    deadline = time.monotonic() + max(wait, TOTAL_WAIT)
    while total <= limit:
        try:
            chunk = os.read(fd, min(_CHUNK, limit + 1 - total))
        except BlockingIOError:
            # A pipe whose writer is silent: wait for data, bounded. (A FIFO nobody opened for writing reads as
            # its end at once: it is an empty file, not a hang.)
            left = deadline - time.monotonic()
            if left > 0 and select.select([fd], [], [], min(wait, left))[0]:
                continue
            if time.monotonic() >= deadline:
                raise Unreadable(f"not ended within {TOTAL_WAIT:g}s (a pipe or device that keeps it open)") from None
            raise Unreadable(f"nothing received for {wait:g}s (a pipe or device that keeps it open)") from None
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    if total > limit:
        raise Unreadable(f"larger than {size_words(limit)}", too_large=True)
    return b"".join(chunks)
