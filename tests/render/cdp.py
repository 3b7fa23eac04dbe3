"""Headless chromium driven over the DevTools protocol on a pipe: no Python package between us and the browser.

``--remote-debugging-pipe`` makes chromium read protocol commands on its file descriptor 3 and write replies and
events on 4, each a JSON object ended by a NUL byte; no port is opened and nothing needs a WebSocket client. The
protocol is what lets a test ask the page where an element is (``getBoundingClientRect``) at a given viewport,
and a benchmark read the page's own performance timings: things ``--dump-dom`` cannot tell.

Used by the browser tests (tests/render/test_html_first_screen.py) and by bench/html.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")


class CdpError(RuntimeError):
    """The browser answered a command with an error, went away, or did not answer in time."""


class Chromium:
    """One headless chromium process with a fresh profile; a context manager that always ends it (and its group)."""

    def __init__(self, *, width: int = 1440, height: int = 900, timeout: float = 60.0) -> None:
        self.width, self.height, self.timeout = width, height, timeout
        self._profile = Path(tempfile.mkdtemp(prefix="tlsgate-chromium-"))
        self._next_id = 0
        self._buffer = b""
        self.events: list[dict[str, Any]] = []
        to_browser_read, self._to_browser = os.pipe()
        self._from_browser, from_browser_write = os.pipe()
        command = [
            str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
            "--remote-debugging-pipe", f"--user-data-dir={self._profile}", f"--window-size={width},{height}",
            "about:blank",
        ]  # fmt: skip

        def pipes_as_3_and_4() -> None:  # in the child, before exec: the descriptors chromium expects
            os.dup2(to_browser_read, 3)
            os.dup2(from_browser_write, 4)

        self._process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=(3, 4),
            preexec_fn=pipes_as_3_and_4,  # noqa: PLW1509 - only dup2, no locks or threads involved
            start_new_session=True,
        )
        os.close(to_browser_read)
        os.close(from_browser_write)

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        if self._process.poll() is None:
            os.killpg(self._process.pid, signal.SIGKILL)
        self._process.wait()
        for fd in (self._to_browser, self._from_browser):
            with contextlib.suppress(OSError):  # already closed by an earlier close()
                os.close(fd)
        shutil.rmtree(self._profile, ignore_errors=True)

    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_browser], [], [], left)[0]:
                raise CdpError(f"chromium did not answer within {self.timeout:.0f} s")
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                raise CdpError("chromium closed the DevTools pipe (it exited)")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        parsed: dict[str, Any] = json.loads(message)
        return parsed

    def call(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> dict[str, Any]:
        """Send one command and wait for its reply; events that arrive meanwhile are kept in ``events``."""
        self._next_id += 1
        command: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session is not None:
            command["sessionId"] = session
        os.write(self._to_browser, json.dumps(command).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            message = self._read_message(deadline)
            if message.get("id") == self._next_id:
                if "error" in message:
                    raise CdpError(f"{method}: {message['error'].get('message')}")
                result: dict[str, Any] = message.get("result", {})
                return result
            if "method" in message:
                self.events.append(message)

    def wait_for(self, method: str, session: str | None = None) -> dict[str, Any]:
        """The first event ``method`` (of ``session``) not seen yet, waiting for it if need be."""
        deadline = time.monotonic() + self.timeout
        while True:
            for index, event in enumerate(self.events):
                if event["method"] == method and (session is None or event.get("sessionId") == session):
                    del self.events[index]
                    return event
            message = self._read_message(deadline)
            if "method" in message:
                self.events.append(message)

    def page(self) -> Page:
        """A new tab at the browser's window size, with the events a test needs turned on."""
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self.call(f"{domain}.enable", session=session)
        metrics = {"width": self.width, "height": self.height, "deviceScaleFactor": 1, "mobile": False}
        self.call("Emulation.setDeviceMetricsOverride", metrics, session=session)
        return Page(self, session)


class Page:
    def __init__(self, browser: Chromium, session: str) -> None:
        self.browser, self.session = browser, session

    def open(self, url: str) -> None:
        """Load ``url`` and wait for its load event (the page's scripts have run by then)."""
        reply = self.browser.call("Page.navigate", {"url": url}, session=self.session)
        if reply.get("errorText"):
            raise CdpError(f"{url}: {reply['errorText']}")
        self.browser.wait_for("Page.loadEventFired", session=self.session)

    def evaluate(self, expression: str) -> Any:
        """The JSON value of ``expression`` in the page (a promise is awaited). DevTools evaluates it outside the
        page's Content-Security-Policy, which still holds for the page's own content."""
        reply = self.browser.call(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
            session=self.session,
        )
        if "exceptionDetails" in reply:
            raise CdpError(f"evaluate: {reply['exceptionDetails'].get('text')} {reply['result'].get('description')}")
        return reply["result"].get("value")

    def problems(self) -> list[str]:
        """What the page reported: console messages, uncaught exceptions, CSP violations and other log entries."""
        found = []
        for event in self.browser.events:
            if event.get("sessionId") != self.session:
                continue
            params = event.get("params", {})
            if event["method"] == "Runtime.consoleAPICalled":
                found.append(f"console.{params.get('type')}: {params.get('args')}")
            elif event["method"] == "Runtime.exceptionThrown":
                found.append(f"exception: {params.get('exceptionDetails', {}).get('text')}")
            elif event["method"] == "Log.entryAdded":
                entry = params.get("entry", {})
                found.append(f"log {entry.get('level')} {entry.get('source')}: {entry.get('text')}")
        return found
