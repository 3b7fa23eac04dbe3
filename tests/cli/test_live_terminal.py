"""What a person sees while a scan runs, through the real command line against loopback servers: each target's
verdict line as it finishes (above the progress bar on a terminal, plain lines in a pipe), the --resume note, the
warning for a waiver that matched nothing, and shell completion.

Ordering without timing: a "stalling" server holds every connection until the test releases it, and the test
releases it only once the fast target's verdict line has been read. A tlsgate that printed its lines only at the
end could never show that line first, and the test fails waiting for it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import queue
import select
import socket
import struct
import subprocess
import termios
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from scanner.demo import LoopbackServer
from scanner.exitcodes import ExitCode
from tests.helpers import ANSI, free_port, run_tlsgate, tlsgate_command

WAIT = 90.0  # seconds the fast target's line may take to show (a safety net, not a measurement)
HOLD = "300"  # the scan's --timeout: the stalling target outlasts the wait unless released


@dataclass
class Stalling:
    """A server on 127.0.0.2 (its own host for the per-host limit) that takes connections and says nothing until
    ``release``, then closes them all."""

    server: LoopbackServer
    released: threading.Event = field(default_factory=threading.Event)

    @property
    def target(self) -> str:
        return self.server.target

    def release(self) -> None:
        self.released.set()


@pytest.fixture
def stalling() -> Iterator[Stalling]:
    released = threading.Event()

    def hold(conn: socket.socket) -> None:
        released.wait(float(HOLD))

    with LoopbackServer(hold, host="127.0.0.2") as server:
        one = Stalling(server, released)
        yield one
        released.set()


def _env(**extra: str) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("CI", "NO_COLOR")} | {"TERM": "xterm"} | extra


class Screen:
    """The command line with standard output and standard error on one pseudo-terminal, read as it comes."""

    def __init__(self, *args: str) -> None:
        self._leader, follower = pty.openpty()
        fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 200, 0, 0))
        self.proc = subprocess.Popen(
            tlsgate_command(*args), stdin=subprocess.DEVNULL, stdout=follower, stderr=follower, env=_env()
        )
        os.close(follower)
        self.raw = b""

    def text(self) -> str:
        return ANSI.sub("", self.raw.decode("utf-8", errors="replace").replace("\r", "\n"))

    def _read(self, seconds: float) -> bool:
        """Read what arrives within ``seconds``; False once the terminal is closed."""
        ready, _, _ = select.select([self._leader], [], [], seconds)
        if not ready:
            return True
        try:
            data = os.read(self._leader, 65536)
        except OSError:  # EIO: every writer has closed the terminal
            return False
        self.raw += data
        return bool(data)

    def wait_for(self, text: str) -> bool:
        deadline = time.monotonic() + WAIT
        while text not in self.text() and time.monotonic() < deadline:
            if not self._read(0.2):
                break
        return text in self.text()

    def finish(self) -> int:
        while self._read(1.0) or self.proc.poll() is None:
            pass
        return self.proc.wait(30)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self._leader)


def _verdict_lines(text: str, target: str) -> list[str]:
    return [
        line for line in text.splitlines() if f" {target}  " in line and line.split()[0] in ("PASS", "FAIL", "ERROR")
    ]


def test_on_a_terminal_a_target_s_line_shows_while_a_slow_one_is_still_running(tls13_server, stalling):
    """On a terminal the fast target's verdict line is on screen, with the progress bar, while the stalling target
    still holds its connection; after the run, each target's line is there once, the fast one first."""
    screen = Screen("scan", "--pack", "tls13-only", "--timeout", HOLD, stalling.target, tls13_server.target)
    try:
        # grade T: the test CA is not given as trusted (the grade caps an untrusted chain at T)
        fast = f"PASS  {tls13_server.target}  grade T  (2 pass)"
        seen = screen.wait_for(fast)
        assert not stalling.released.is_set()
        stalling.release()
        assert seen, f"no verdict line while the slow target ran:\n{screen.text()}"
        assert "scanning" in screen.text()  # the bar was up: the line was printed above it
        code = screen.finish()
    finally:
        screen.close()
    text = screen.text()
    assert code == ExitCode.NOT_CHECKED, text
    (fast_line,) = _verdict_lines(text, tls13_server.target)
    (slow_line,) = _verdict_lines(text, stalling.target)
    assert slow_line.startswith("ERROR") and "not scanned" in slow_line
    assert text.index(fast_line) < text.index(slow_line)


def _piped(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        tlsgate_command(*args),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env or _env(),
    )


def test_piped_lines_come_plain_as_targets_finish(tls13_server, stalling, tmp_path):
    """Without a terminal (a CI log) each target's line comes as it finishes, flushed, in finish order (not the
    order of the command line), without escape codes, and the summary at the end does not repeat it."""
    report = tmp_path / "r.json"
    args = ["scan", "--pack", "tls13-only", "--timeout", HOLD, stalling.target, tls13_server.target]
    proc = _piped(*args, "--json", str(report))
    assert proc.stdout is not None
    lines: queue.SimpleQueue[str] = queue.SimpleQueue()
    threading.Thread(target=lambda: lines.put(proc.stdout.readline() if proc.stdout else ""), daemon=True).start()
    try:
        first = lines.get(timeout=WAIT)  # the stalling target is still held: only the fast one can have finished
        assert not stalling.released.is_set()
        stalling.release()
        rest, stderr = proc.communicate(timeout=120)
    except queue.Empty:
        first, rest, stderr = "", "", "no line while the slow target ran"
    finally:
        stalling.release()
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
    assert first == f"PASS  {tls13_server.target}  grade T  (2 pass)\n"
    out = first + rest
    assert "\x1b[" not in out
    assert proc.returncode == ExitCode.NOT_CHECKED, stderr
    assert len(_verdict_lines(out, tls13_server.target)) == 1
    (slow,) = _verdict_lines(out, stalling.target)
    assert out.index(first) < out.index(slow)
    assert out.rstrip().endswith(f"report: {report}")
    assert f"tlsgate: {stalling.target}: " in stderr  # why it was not scanned, on stderr as before


def test_quiet_prints_no_lines_and_a_report_on_stdout_sends_them_to_stderr(tls13_server, refused_port):
    """--quiet: no verdict lines at all; a report on standard output: the lines go to standard error."""
    refused = f"127.0.0.1:{refused_port}"
    quiet = run_tlsgate("scan", "--pack", "tls13-only", tls13_server.target, refused, "--quiet", env=_env())
    assert quiet.code == ExitCode.NOT_CHECKED
    assert quiet.stdout == ""
    assert not _verdict_lines(quiet.stderr, tls13_server.target)
    streamed = run_tlsgate("scan", "--pack", "tls13-only", tls13_server.target, "--format", "jsonl", env=_env())
    assert streamed.code == ExitCode.OK
    assert streamed.stdout.count("\n") == 1 and streamed.stdout.startswith("{")
    assert len(_verdict_lines(streamed.stderr, tls13_server.target)) == 1


def test_resume_says_how_many_targets_it_kept(refused_port, tmp_path):
    """--resume: one line on stderr, how many finished targets it kept and how many it scans; none with --quiet."""
    journal = tmp_path / "run.jsonl"
    done, new = f"127.0.0.1:{refused_port}", f"127.0.0.1:{free_port()}"
    first = run_tlsgate("scan", done, "--format", f"jsonl={journal}", env=_env())
    assert first.code == ExitCode.NOT_CHECKED, first.stderr
    again = run_tlsgate("scan", done, new, "--resume", str(journal), "--json", str(tmp_path / "r.json"), env=_env())
    assert again.code == ExitCode.NOT_CHECKED, again.stderr
    assert f"resumed: kept 1 finished target from {journal}, scanning 1\n" in again.stderr
    assert len(_verdict_lines(again.stdout, done)) == 1 and len(_verdict_lines(again.stdout, new)) == 1
    none_kept = run_tlsgate("scan", new, "--resume", str(tmp_path / "absent.jsonl"), env=_env())
    assert f"resumed: kept 0 finished targets from {tmp_path / 'absent.jsonl'}, scanning 1\n" in none_kept.stderr
    quiet = run_tlsgate("scan", done, new, "--resume", str(journal), "--quiet", env=_env())
    assert "resumed" not in quiet.stderr


def test_a_waiver_that_matched_nothing_is_a_warning(tls13_server, tmp_path):
    """A waiver in force that matched no failing finding: a warning on stderr (not with --quiet); the report
    still lists it as unused."""
    waivers = tmp_path / "waivers.yaml"
    waivers.write_text(
        "waivers:\n"
        "  - rule: tls13-only/TLS13ONLY-001\n"
        "    target: 'legacy.example:443'\n"
        "    reason: Vendor appliance\n"
        "    owner: platform-team\n"
        "    expires: 2999-12-31\n"
    )
    args = ["scan", "--pack", "tls13-only", tls13_server.target, "--waivers", str(waivers)]
    run = run_tlsgate(*args, env=_env())
    assert run.code == ExitCode.OK, run.stderr
    assert (
        f"tlsgate: warning: waiver {waivers}:2 (tls13-only/TLS13ONLY-001 on legacy.example:443, owner platform-team) "
        "matched no failing finding in this run: remove it, or check its rule and target\n"
    ) in run.stderr
    assert "warning" not in run_tlsgate(*args, "--quiet", env=_env()).stderr


def _from_bash(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """tlsgate run from a bash process, as a user types it: the completion options detect the shell they are run
    from (shellingham reads the process's ancestors). ``; exit`` keeps bash from replacing itself with tlsgate."""
    command = ["bash", "-c", '"$@"; exit $?', "bash", *tlsgate_command(*args)]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120, check=False)


def test_shell_completion(tmp_path: Path):
    """--show-completion prints the shell's completion function for tlsgate, the function completes commands,
    options and built-in pack ids, and --install-completion puts it where the shell reads it."""
    shown = _from_bash("--show-completion", env=_env())
    assert shown.returncode == 0, shown.stderr
    assert "_tlsgate_completion()" in shown.stdout
    assert "complete -o default -F _tlsgate_completion tlsgate" in shown.stdout
    asked = {"_TLSGATE_COMPLETE": "complete_bash", "COMP_WORDS": "tlsgate scan --no-s", "COMP_CWORD": "2"}
    completed = run_tlsgate(env=_env(**asked))
    assert completed.stdout.split() == ["--no-sni"]
    commands = run_tlsgate(env=_env(**asked | {"COMP_WORDS": "tlsgate ex", "COMP_CWORD": "1"}))
    assert commands.stdout.split() == ["expiring"]
    packs = run_tlsgate(env=_env(**asked | {"COMP_WORDS": "tlsgate scan --pack mozilla-", "COMP_CWORD": "3"}))
    assert packs.stdout.split() == ["mozilla-intermediate", "mozilla-modern", "mozilla-old"]
    installed = _from_bash("--install-completion", env=_env(HOME=str(tmp_path)))
    assert installed.returncode == 0, installed.stderr
    assert "_tlsgate_completion()" in (tmp_path / ".bash_completions" / "tlsgate.sh").read_text()
    assert "tlsgate.sh" in (tmp_path / ".bashrc").read_text()
