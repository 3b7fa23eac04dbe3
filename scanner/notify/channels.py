"""The channels that carry events: a generic webhook (the event as JSON, ``reports/schema/event.schema.json``,
signed with HMAC-SHA256 when a secret is set), a Slack incoming webhook and a Microsoft Teams workflow webhook.

Every send is bounded: a timeout per request, retries with exponential backoff on connection errors, 5xx and 429
(``Retry-After`` honoured up to a cap), a token bucket per channel (``rate`` messages per second, ``burst`` at
once), and a total time per event after which it gives up. Webhook URLs carry tokens and are secrets like the
HMAC key: both come from environment variables; a log line or error shows only ``scheme://host/…``.

The signature: ``X-Tlsgate-Timestamp`` is the Unix time of the send and ``X-Tlsgate-Signature`` is
``sha256=`` and the hex HMAC-SHA256, keyed with the secret, of ``TIMESTAMP.BODY`` (the timestamp, a full stop,
the raw body bytes). A receiver recomputes it, compares in constant time and refuses a timestamp more than five
minutes off (``verify_signature``), so a captured request cannot be replayed later.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import random
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from scanner import __version__
from scanner.notify.config import ChannelConfig, NotifyConfig
from scanner.notify.events import Event
from scanner.notify.state import NotifyState

log = logging.getLogger("tlsgate.notify")
_URL_PATH = re.compile(r"\b(https?://[^/\s\"'<>]+)/[^\s\"'<>]*")


class _RedactUrls(logging.Filter):
    """httpx logs each request's full URL at INFO ("HTTP Request: POST https://hooks.slack.com/services/T/B/token");
    a webhook's path is its token, so every URL in httpx's records is cut to ``scheme://host/…``."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = _URL_PATH.sub(r"\1/…", message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True


logging.getLogger("httpx").addFilter(_RedactUrls())

SIGNATURE_HEADER = "X-Tlsgate-Signature"
TIMESTAMP_HEADER = "X-Tlsgate-Timestamp"
SIGNATURE_TOLERANCE = 300.0  # seconds a receiver accepts between the timestamp and its clock
_GRACE = 1.0  # seconds past the total time a worker has to report an outcome it reached in time


class DeliveryError(Exception):
    """An event a channel could not deliver within its bounds; the message names the channel and the redacted URL."""


def redact(url: str) -> str:
    """``scheme://host[:port]/…``: where a webhook goes without the path and query that hold its token."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(unreadable URL)"
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme or '?'}://{host}{port}/…"


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def verify_signature(
    secret: bytes, timestamp: str, body: bytes, signature: str, *, now: float | None = None,
    tolerance: float = SIGNATURE_TOLERANCE,
) -> bool:  # fmt: skip
    """What a receiver checks: the MAC over ``TIMESTAMP.BODY`` and a timestamp within ``tolerance`` seconds."""
    try:
        sent = float(timestamp)
    except ValueError:
        return False
    if abs((time.time() if now is None else now) - sent) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


@dataclass(frozen=True)
class DeliveryPolicy:
    timeout: float = 10.0  # seconds per request (connect, read, write each)
    attempts: int = 5
    backoff: float = 0.5  # the first wait; doubled at each retry, with up to 10% jitter
    max_backoff: float = 30.0
    max_retry_after: float = 60.0  # a Retry-After longer than this is waited for this long
    total_time: float = 120.0  # one event on one channel, waits for the rate limit included


class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` saved up; ``take`` waits for one, or says it cannot by then."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:  # fmt: skip
        self.rate, self.burst = rate, burst
        self.clock, self.sleep = clock, sleep
        self.tokens = float(burst)
        self.updated = clock()
        self.lock = threading.Lock()

    def take(self, deadline: float) -> bool:
        with self.lock:
            now = self.clock()
            self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
            self.updated = now
            wait = 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate
            if now + wait > deadline:
                return False
            self.tokens -= 1  # may go below zero: the wait below pays for it
            if wait:
                self.sleep(wait)
            return True


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header: a number of seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _facts(event: Event) -> list[tuple[str, str]]:
    """The event's details as (title, value) lines for chat cards."""
    rows = [("Target", event.target), ("Event", event.kind.replace("_", " ")), ("Severity", event.severity)]
    if event.rule:
        rows.append(("Rule", f"{event.pack}/{event.rule}"))
    if event.not_after:
        rows.append(("Not after", f"{event.not_after:%Y-%m-%d %H:%M} UTC"))
    if event.tags:
        rows.append(("Tags", ", ".join(event.tags)))
    rows.append(("Scanned", f"{event.at:%Y-%m-%d %H:%M} UTC"))
    return rows


def slack_payload(event: Event) -> dict[str, Any]:
    """An incoming-webhook message: ``text`` (the notification and fallback) and Block Kit blocks."""
    title = f"tlsgate: {event.kind.replace('_', ' ')} ({event.severity})"
    fields = [{"type": "mrkdwn", "text": f"*{name}*\n{_slack_escape(value)}"} for name, value in _facts(event)]
    return {
        "text": _slack_escape(event.summary)[:3000],
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
            {"type": "section", "text": {"type": "mrkdwn", "text": _slack_escape(event.summary)[:3000]}},
            {"type": "section", "fields": fields[:10]},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": f"key `{_slack_escape(event.key)}`"[:3000]}]},
        ],
    }


def teams_payload(event: Event) -> dict[str, Any]:
    """A Teams workflow ("Send webhook alerts to a channel") message: one Adaptive Card attachment."""
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            {"type": "TextBlock", "text": f"tlsgate: {event.kind.replace('_', ' ')}", "weight": "Bolder",
             "size": "Medium", "wrap": True,
             "color": "Attention" if event.severity in ("critical", "high") else "Default"},
            {"type": "TextBlock", "text": event.summary, "wrap": True},
            {"type": "FactSet", "facts": [{"title": name, "value": value} for name, value in _facts(event)]},
        ],
    }  # fmt: skip
    attachment = {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}
    return {"type": "message", "attachments": [attachment]}


@dataclass
class Channel:
    config: ChannelConfig
    url: str = field(repr=False)
    secret: bytes | None = field(default=None, repr=False)
    policy: DeliveryPolicy = DeliveryPolicy()
    client: httpx.Client | None = field(default=None, repr=False)
    bucket: TokenBucket = field(init=False)

    def __post_init__(self) -> None:
        self.bucket = TokenBucket(self.config.rate, self.config.burst)

    def http(self) -> httpx.Client:
        """The channel's client, made once (a client loads its CA bundle: ~25 ms) and kept for its connections."""
        if self.client is None:
            self.client = httpx.Client()
        return self.client

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None

    @property
    def where(self) -> str:
        return f"channel {self.config.name!r} ({self.config.kind}, {redact(self.url)})"

    def request(self, event: Event) -> tuple[bytes, dict[str, str]]:
        headers = {"Content-Type": "application/json", "User-Agent": f"tlsgate/{__version__}"}
        if self.config.kind == "webhook":
            body = event.model_dump_json().encode()
            headers |= {"X-Tlsgate-Event": event.kind, "X-Tlsgate-Event-Key": event.key}
            if self.secret is not None:
                timestamp = str(int(time.time()))
                headers |= {TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: sign(self.secret, timestamp, body)}
            return body, headers
        payload = slack_payload(event) if self.config.kind == "slack" else teams_payload(event)
        return httpx.Request("POST", "http://x", json=payload).content, headers

    def send(self, event: Event) -> None:
        """Delivers the event, or raises DeliveryError once its attempts or its total time are spent.

        httpx bounds each read, not a whole response: a receiver trickling a byte of headers every second would
        hold a request for ever. The attempts therefore run in a worker thread that this call leaves behind when
        the total time is spent (the worker ends when its peer does).
        """
        deadline = time.monotonic() + self.policy.total_time
        outcome: list[DeliveryError | None] = []

        client = self.http()

        def attempts() -> None:
            try:
                self._send(client, event, deadline)
                outcome.append(None)
            except DeliveryError as exc:
                outcome.append(exc)

        worker = threading.Thread(target=attempts, name=f"notify-{self.config.name}", daemon=True)
        worker.start()
        worker.join(max(0.0, deadline - time.monotonic()) + _GRACE)
        if not outcome:
            raise self._fail(event, f"no complete answer within the {self.policy.total_time:g} s bound")
        if outcome[0] is not None:
            raise outcome[0]

    def _fail(self, event: Event, reason: str) -> DeliveryError:
        return DeliveryError(f"{self.where}: {event.kind} for {event.target} not delivered: {reason}")

    def _send(self, client: httpx.Client, event: Event, deadline: float) -> None:
        attempt = 0
        while True:
            if not self.bucket.take(deadline):
                raise self._fail(event, f"rate limit would pass the {self.policy.total_time:g} s bound")
            remaining = deadline - time.monotonic()
            body, headers = self.request(event)  # signed afresh: the timestamp is the attempt's
            retry_after: float | None = None
            try:
                # streamed and the body never read: a receiver's answer is its status and headers, whatever it sends
                with client.stream("POST", self.url, content=body, headers=headers,
                                   timeout=max(0.1, min(self.policy.timeout, remaining))) as response:  # fmt: skip
                    status, retry_header = response.status_code, response.headers.get("Retry-After")
            except httpx.TransportError as exc:  # connection refused, reset, timeouts, TLS: retried
                reason = f"{type(exc).__name__}: {str(exc).replace(self.url, redact(self.url))}"
            else:
                if 200 <= status < 300:
                    log.info("%s: %s for %s delivered (attempt %d)", self.where, event.kind, event.target, attempt + 1)
                    return
                reason = f"HTTP {status}"
                if status != 429 and status < 500:
                    raise self._fail(event, f"{reason} (not retried)")
                retry_after = _retry_after(retry_header)
            attempt += 1
            if attempt >= self.policy.attempts:
                raise self._fail(event, f"{reason} after {attempt} attempts")
            if retry_after is not None:
                wait = min(retry_after, self.policy.max_retry_after)
            else:
                wait = min(self.policy.backoff * 2 ** (attempt - 1), self.policy.max_backoff)
                wait *= 1 + random.random() / 10  # noqa: S311 - jitter, not a secret
            if time.monotonic() + wait > deadline:
                raise self._fail(event, f"{reason}; gave up after {attempt} attempts, within the "
                                 f"{self.policy.total_time:g} s bound")  # fmt: skip
            log.warning("%s: %s; retrying in %.1f s", self.where, reason, wait)
            time.sleep(wait)


class ChannelSetupError(ValueError):
    """A channel whose environment variable is not set (the config was read with another environment)."""


def build_channels(
    config: NotifyConfig, environ: Mapping[str, str], policy: DeliveryPolicy = DeliveryPolicy(),
    client: httpx.Client | None = None,
) -> dict[str, Channel]:  # fmt: skip
    channels = {}
    for name, spec in config.channels.items():
        url = environ.get(spec.url_env)
        if not url:
            raise ChannelSetupError(f"channel {name!r}: environment variable {spec.url_env} is not set")
        if urlsplit(url).scheme not in ("http", "https"):
            raise ChannelSetupError(f"channel {name!r}: {spec.url_env} does not hold an http(s) URL")
        secret = environ.get(spec.secret_env) if spec.secret_env else None
        if spec.secret_env and not secret:
            raise ChannelSetupError(f"channel {name!r}: environment variable {spec.secret_env} is not set")
        channels[name] = Channel(spec, url, secret.encode() if secret else None, policy, client)
    return channels


@dataclass
class Delivery:
    sent: list[tuple[str, str]] = field(default_factory=list)  # (event key, channel)
    failed: list[str] = field(default_factory=list)  # one line each, URLs redacted
    deferred: list[tuple[str, str]] = field(default_factory=list)  # not tried: the channel failed earlier


def deliver(events: Iterable[Event], config: NotifyConfig, channels: Mapping[str, Channel],
            state: NotifyState) -> Delivery:  # fmt: skip
    """Sends each event to the channels its routes name, once: a channel that took it is recorded (``KEY@CHANNEL``)
    and the event once every channel has (or no route wants it), so a failed channel is retried at the next cycle
    without repeating the others. A channel that fails is not tried again in this call (its later events are
    deferred to the next): a dead receiver costs one event's bounded time per cycle, not one per event."""
    result = Delivery()
    down: set[str] = set()
    for event in events:
        if state.seen(event.key):
            continue
        complete = True
        for name in config.channels_for(event):
            if state.seen(f"{event.key}@{name}"):
                continue
            if name in down:
                result.deferred.append((event.key, name))
                complete = False
                continue
            try:
                channels[name].send(event)
            except DeliveryError as exc:
                log.error("%s", exc)
                result.failed.append(str(exc))
                down.add(name)
                complete = False
                continue
            state.mark(f"{event.key}@{name}")
            result.sent.append((event.key, name))
        if complete:
            state.mark(event.key)
    return result
