"""Writing reports where the user said, and nowhere else.

A report path that names a regular file (or nothing yet) is written atomically: a temp file beside the file it
names, fsynced, then renamed over it. Symlinks are followed first, so a link stays a link and the file it names is
replaced (a dangling link gets its file created). Anything else is never renamed over: standard output and the
other descriptors of this process (``/dev/stdout``, ``/dev/fd/N``, ``/proc/self/fd/N``, through any links) and
FIFOs and character devices are written through, once the whole text is rendered; a directory, a socket or a
block device is refused.

A report's text is a str or an iterable of str (a renderer's pieces, ``scanner.render.chunks``): pieces are
written as they come, to the temp file, or for a stream to a temp buffer first, so that a report of thousands of
targets is never whole in memory and a render that breaks midway still writes nothing.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
import sys
import tempfile
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import IO

Text = str | Iterable[str]  # a whole report, or its pieces
_BLOCK = 1 << 20
_BUFFER_MEMORY = 8 * 1024 * 1024  # a stream's rendered report kept in memory up to this, then in a temp file


def _pieces(text: Text) -> Iterable[str]:
    return (text,) if isinstance(text, str) else text


class Kind(StrEnum):
    file = "file"  # a regular file, or none yet: replaced atomically
    stream = "stream"  # a FIFO or a character device: opened and written through
    descriptor = "descriptor"  # one of this process's open descriptors (standard output): written through


@dataclass(frozen=True)
class Destination:
    """Where a report goes: ``given`` as the user named it (None: standard output), ``target`` the regular file to
    replace or the FIFO or device to open, ``fd`` the descriptor to write to."""

    given: Path | None
    kind: Kind
    target: Path | None = None
    fd: int | None = None

    @property
    def name(self) -> str:
        return "standard output" if self.given is None else str(self.given)

    @property
    def is_stdout(self) -> bool:
        return self.kind is Kind.descriptor and (self.given is None or self.fd == _STDOUT_FD)


class ReportWriteError(OSError):
    """A report that could not be written; ``filename`` is the report's path as given (or "standard output"),
    never a temp file's."""

    def __init__(self, path: Path | None, cause: OSError) -> None:
        name = "standard output" if path is None else str(path)
        super().__init__(cause.errno, cause.strerror or str(cause), name)


# /proc/PID/fd/N and /proc/PID/task/TID/fd/N, which /dev/stdout, /dev/fd/N and /proc/self/fd/N come down to
_PROC_FD = re.compile(r"/proc/(\d+)(?:/task/\d+)?/fd/(\d+)")
_MAX_LINKS = 40  # as many symlinks as Linux follows in one path
_STDOUT_FD = 1


def _own_descriptor(path: Path) -> int | None:
    """The descriptor number when ``path`` names one of this process's open descriptors, through any links.

    Resolved by hand, not by realpath: the kernel's link for a descriptor names the file behind it (a pipe's is
    ``pipe:[123]``), and reopening or replacing that file is not writing to the descriptor (``>>`` would be
    truncated, a pipe cannot be reopened)."""
    current = path.absolute()
    for _ in range(_MAX_LINKS):
        here = current.parent.resolve() / current.name
        match = _PROC_FD.fullmatch(str(here))
        if match is not None and int(match[1]) == os.getpid():
            return int(match[2])
        if not here.is_symlink():
            return None
        current = here.parent / here.readlink()
    return None


def destination(path: Path | None) -> Destination:
    """Where the report for ``path`` goes; a ReportWriteError (with the reason) for a path no report can go to."""
    if path is None:
        return Destination(None, Kind.descriptor, fd=_STDOUT_FD)
    fd = _own_descriptor(path)
    if fd is not None:
        try:
            os.fstat(fd)
        except OSError as exc:
            raise ReportWriteError(path, OSError(exc.errno, f"descriptor {fd} is not open")) from None
        return Destination(path, Kind.descriptor, fd=fd)
    resolved = Path(os.path.realpath(path))
    try:
        mode = resolved.stat().st_mode
    except FileNotFoundError:
        return Destination(path, Kind.file, resolved)  # a new file, or the file a dangling link names
    except OSError as exc:  # a symlink loop, a component that is not a directory
        raise ReportWriteError(path, exc) from None
    if stat.S_ISREG(mode):
        return Destination(path, Kind.file, resolved)
    if stat.S_ISFIFO(mode) or stat.S_ISCHR(mode):
        return Destination(path, Kind.stream, resolved)
    if stat.S_ISDIR(mode):
        raise ReportWriteError(path, OSError(errno.EISDIR, "it is a directory"))
    what = "a socket" if stat.S_ISSOCK(mode) else "a block device" if stat.S_ISBLK(mode) else "not a file"
    raise ReportWriteError(path, OSError(errno.EINVAL, f"it is {what} (a report goes to a file, FIFO or terminal)"))


def writable_problem(path: Path) -> str | None:
    """Why no report can be written to ``path`` (checked before a long scan, not after it), or None."""
    try:
        place = destination(path)
    except ReportWriteError as exc:
        return exc.strerror
    except OSError as exc:  # a name too long, which following its links stumbles on
        return exc.strerror or str(exc)
    if place.kind is Kind.descriptor or place.target is None:
        return None
    if place.kind is Kind.stream:
        return None if os.access(place.target, os.W_OK) else "permission denied"
    directory = place.target.parent
    shown = directory if path.is_symlink() else path.parent  # the user's spelling, unless a link led elsewhere
    if not directory.is_dir():
        return f"directory {shown} does not exist"
    if not os.access(directory, os.W_OK):
        return f"directory {shown} is not writable"
    return None


def _write_temp(path: Path, text: Text) -> Path:
    """The whole text in a fsynced temp file beside ``path``, with the permissions of a freshly created file."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # newline="": the text is written as rendered (CSV's CRLF record ends must not be translated).
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            for piece in _pieces(text):
                handle.write(piece)
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp creates 0600; a report is an ordinary file for the user's umask.
        umask = os.umask(0)
        os.umask(umask)
        Path(tmp_name).chmod(0o666 & ~umask)
    except BaseException:
        with contextlib.suppress(OSError):
            Path(tmp_name).unlink()
        raise
    return Path(tmp_name)


def _rendered(text: Text) -> IO[bytes]:
    """The whole text, UTF-8 like the files whatever the locale, in a buffer (memory, then a temp file) rewound:
    rendered before any stream is written to."""
    buffer: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=_BUFFER_MEMORY, prefix="tlsgate-report-")  # noqa: SIM115
    try:
        for piece in _pieces(text):
            buffer.write(piece.encode("utf-8"))
        buffer.seek(0)
    except BaseException:
        buffer.close()
        raise
    return buffer


def _blocks(buffer: IO[bytes]) -> Iterable[bytes]:
    while block := buffer.read(_BLOCK):
        yield block


def _write_through(place: Destination, buffer: IO[bytes]) -> None:
    """The rendered text to a descriptor, FIFO or device: opened without truncating or creating."""
    if place.given is None:  # "-": through sys.stdout, whatever it is
        sys.stdout.flush()
        for block in _blocks(buffer):
            sys.stdout.buffer.write(block)
        sys.stdout.buffer.flush()
        return
    if place.fd is not None:
        for stream in (sys.stdout, sys.stderr):  # what Python still buffers for a descriptor goes out first
            stream.flush()
        for block in _blocks(buffer):
            _write_all(place.fd, block)
        return
    assert place.target is not None  # noqa: S101 - a stream Destination always has one
    fd = os.open(place.target, os.O_WRONLY | os.O_NOCTTY | os.O_CLOEXEC)
    try:
        for block in _blocks(buffer):
            _write_all(fd, block)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def write_atomic_all(
    files: Sequence[tuple[Path | None, Text]], commit: AbstractContextManager[object] | None = None
) -> None:
    """Write every report whole, or replace no file: each file's text is written to a fsynced temp file first (and
    each stream's rendered to a buffer), then the streams (standard output, FIFOs, devices) are written, and only
    then are the temp files renamed into place, inside ``commit`` (the command line's signal guard: no signal cuts
    the renames). A path None is standard output.

    A render that breaks, a full disk, an unwritable directory or a stream that fails therefore leaves every file
    as it was. A stream cannot be taken back: one that failed midway may hold part of its report.
    """
    places = [(destination(path), text) for path, text in files]
    written: list[tuple[Path, Path, Path | None]] = []  # temp file, the file it replaces, the path as given
    buffers: list[tuple[Destination, IO[bytes]]] = []
    try:
        for place, text in places:
            try:
                if place.kind is Kind.file and place.target is not None:
                    written.append((_write_temp(place.target, text), place.target, place.given))
                else:
                    buffers.append((place, _rendered(text)))
            except OSError as exc:
                raise ReportWriteError(place.given, exc) from exc
        for place, buffer in buffers:
            try:
                _write_through(place, buffer)
            except OSError as exc:
                raise ReportWriteError(place.given, exc) from exc
        with commit if commit is not None else nullcontext():
            for tmp, target, given in written:
                try:
                    tmp.replace(target)
                except OSError as exc:
                    raise ReportWriteError(given, exc) from exc
    except BaseException:
        for tmp, _, _ in written:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
        raise
    finally:
        for _, buffer in buffers:
            buffer.close()


def write_atomic(path: Path, text: Text) -> None:
    """Write the whole report or nothing (see ``write_atomic_all``)."""
    write_atomic_all([(path, text)])
