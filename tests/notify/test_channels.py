"""Channels against a real HTTP receiver on loopback: payloads, signatures, retries, rate limits and bounds."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from email.utils import formatdate
from pathlib import Path

import jsonschema
import pytest

from scanner.notify.channels import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    Channel,
    DeliveryError,
    DeliveryPolicy,
    deliver,
    redact,
    verify_signature,
)
from scanner.notify.config import ChannelConfig, NotifyConfig, Route
from scanner.notify.events import Event
from scanner.notify.state import JsonFileState, MemoryState
from scanner.schemas import schema_dir
from tests.helpers import free_port
from tests.notify.receiver import Receiver, receiver

SECRET = "hmac-secret-value"  # noqa: S105 - a test secret
FAST = DeliveryPolicy(timeout=2, attempts=4, backoff=0.1, max_backoff=0.5, max_retry_after=5, total_time=10)


def event(n: int = 0, **fields: object) -> Event:
    values: dict[str, object] = {
        "key": f"new_failure|a.test:443/a.test/-|p/r{n}|2026-12-01T00:00:00+00:00", "kind": "new_failure",
        "severity": "high", "target": "a.test:443", "host": "a.test", "port": 443, "tags": ["prod", "web"],
        "at": datetime(2026, 12, 1, tzinfo=UTC), "summary": f'a.test:443: p/r{n} "<weak> & old" fails', "pack": "p",
        "rule": f"r{n}", "title": "<weak> & old",
    }  # fmt: skip
    return Event.model_validate(values | fields)


def channel(rx: Receiver, kind: str = "webhook", *, secret: str | None = None, rate: float = 100, burst: int = 100,
            policy: DeliveryPolicy = FAST, url: str | None = None) -> Channel:  # fmt: skip
    config = ChannelConfig("test", kind, "URL_ENV", "SECRET_ENV" if secret else None, rate, burst)  # type: ignore[arg-type]
    return Channel(config, url or rx.url(), secret.encode() if secret else None, policy)


def test_webhook_body_follows_the_schema_and_the_signature_verifies():
    """The generic webhook posts the event as JSON valid against event.schema.json, with a timestamp and an
    HMAC-SHA256 over timestamp and body that verifies, and fails for a changed body or an old timestamp."""
    schema = json.loads((schema_dir() / "event.schema.json").read_text())
    with receiver() as rx:
        channel(rx, secret=SECRET).send(event())
    (got,) = rx.requests
    jsonschema.validate(got.json(), schema)
    assert got.json()["key"] == event().key and got.headers["X-Tlsgate-Event-Key"] == event().key
    stamp, signature = got.headers[TIMESTAMP_HEADER], got.headers[SIGNATURE_HEADER]
    assert signature.startswith("sha256=") and len(signature) == 7 + 64
    assert abs(int(stamp) - time.time()) < 60
    assert verify_signature(SECRET.encode(), stamp, got.body, signature)
    assert not verify_signature(SECRET.encode(), stamp, got.body + b" ", signature)
    assert not verify_signature(b"another secret", stamp, got.body, signature)
    assert not verify_signature(SECRET.encode(), stamp, got.body, signature, now=int(stamp) + 301)
    assert SECRET not in json.dumps(got.headers) + got.body.decode()


def test_webhook_without_secret_is_unsigned():
    """No secret, no signature headers (and nothing that looks like one)."""
    with receiver() as rx:
        channel(rx).send(event())
    (got,) = rx.requests
    assert SIGNATURE_HEADER not in got.headers and TIMESTAMP_HEADER not in got.headers


def test_slack_payload_shape():
    """Slack gets text (the notification) and Block Kit blocks: header (plain text, at most 150 characters),
    sections in mrkdwn with &, < and > escaped, a fields section of at most 10, and a context."""
    with receiver() as rx:
        channel(rx, "slack").send(event(summary="x" * 4000))
        channel(rx, "slack").send(event())
    long, normal = (r.json() for r in rx.requests)
    assert len(long["text"]) <= 3000 and len(long["blocks"][1]["text"]["text"]) <= 3000
    assert set(normal) == {"text", "blocks"}
    assert [b["type"] for b in normal["blocks"]] == ["header", "section", "section", "context"]
    header = normal["blocks"][0]["text"]
    assert header["type"] == "plain_text" and len(header["text"]) <= 150 and "new failure" in header["text"]
    assert normal["text"] == 'a.test:443: p/r0 "&lt;weak&gt; &amp; old" fails'
    fields = normal["blocks"][2]["fields"]
    assert 1 <= len(fields) <= 10 and all(f["type"] == "mrkdwn" for f in fields)
    assert normal["blocks"][3]["elements"][0]["type"] == "mrkdwn"


def test_teams_payload_shape():
    """Teams workflows get a message with one Adaptive Card attachment (contentType, null contentUrl, the card
    with $schema, type, version and a body of TextBlocks and a FactSet)."""
    with receiver() as rx:
        channel(rx, "teams").send(event())
    payload = rx.requests[0].json()
    assert payload["type"] == "message"
    (attachment,) = payload["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert attachment["contentUrl"] is None
    card = attachment["content"]
    assert (card["type"], card["version"]) == ("AdaptiveCard", "1.4")
    assert card["$schema"] == "http://adaptivecards.io/schemas/adaptive-card.json"
    assert [b["type"] for b in card["body"]] == ["TextBlock", "TextBlock", "FactSet"]
    facts = {f["title"]: f["value"] for f in card["body"][2]["facts"]}
    assert facts["Target"] == "a.test:443" and facts["Rule"] == "p/r0" and facts["Tags"] == "prod, web"


def test_a_500_is_retried_and_delivered_once():
    """500 then 200: two requests, one delivery; a second delivery of the same events sends nothing."""
    config = NotifyConfig({"test": ChannelConfig("test", "webhook", "U")}, (Route(("test",)),))
    state = MemoryState()
    with receiver() as rx:
        rx.script = [(500, {})]
        channels = {"test": channel(rx)}
        first = deliver([event()], config, channels, state)
        second = deliver([event()], config, channels, state)
    assert [r.status for r in rx.requests] == [500, 200]
    assert first.sent == [(event().key, "test")] and first.failed == []
    assert second.sent == [] and state.seen(event().key)


def test_429_retry_after_is_honoured():
    """A 429 with Retry-After: 1 is retried no sooner than a second later."""
    with receiver() as rx:
        rx.script = [(429, {"Retry-After": "1"})]
        channel(rx).send(event())
    first, second = rx.requests
    assert (first.status, second.status) == (429, 200)
    assert second.at - first.at >= 0.95


def test_retry_after_is_capped():
    """A Retry-After of an hour is waited for max_retry_after (here 1 s), not an hour."""
    policy = DeliveryPolicy(timeout=2, attempts=3, backoff=0.1, max_retry_after=1, total_time=10)
    started = time.monotonic()
    with receiver() as rx:
        rx.script = [(503, {"Retry-After": "3600"})]
        channel(rx, policy=policy).send(event())
    assert [r.status for r in rx.requests] == [503, 200]
    assert 0.95 <= time.monotonic() - started < 8


def test_a_4xx_is_not_retried():
    """A 404 (a deleted webhook) fails at once with the status, and is not marked delivered."""
    state = MemoryState()
    config = NotifyConfig({"test": ChannelConfig("test", "webhook", "U")}, (Route(("test",)),))
    with receiver() as rx:
        rx.script = [(404, {})]
        result = deliver([event()], config, {"test": channel(rx)}, state)
    assert len(rx.requests) == 1
    assert result.sent == [] and "HTTP 404 (not retried)" in result.failed[0]
    assert not state.seen(event().key)


def test_rate_limit_spreads_sends():
    """At 5 messages a second with a burst of 1, six events take at least a second (five waits of 0.2 s). Only the
    span is asserted: arrival times at the receiver jitter under load, the sender's spacing does not add up less."""
    with receiver() as rx:
        sender = channel(rx, rate=5, burst=1)
        for n in range(6):
            sender.send(event(n))
    times = [r.at for r in rx.requests]
    assert len(times) == 6
    assert times[-1] - times[0] >= 0.9


def test_an_unreachable_receiver_fails_within_the_bound_with_a_redacted_url(caplog):
    """Nothing listening: the send gives up within its total time, and neither the message nor the log holds the
    URL's path (its token), only scheme://host:port/…."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/hooks/T000/B000/s3cr3t-token"
    policy = DeliveryPolicy(timeout=1, attempts=50, backoff=0.2, max_backoff=0.5, total_time=3)
    started = time.monotonic()
    with receiver() as rx, pytest.raises(DeliveryError) as raised, caplog.at_level("DEBUG", "tlsgate.notify"):
        channel(rx, url=url, policy=policy).send(event())
    elapsed = time.monotonic() - started
    assert elapsed < 3 + 2, elapsed
    message = str(raised.value)
    assert f"http://127.0.0.1:{port}/…" in message and "ConnectError" in message
    assert "s3cr3t" not in message and "s3cr3t" not in caplog.text
    assert redact(url) == f"http://127.0.0.1:{port}/…"


def test_a_receiver_that_never_answers_is_bounded():
    """A receiver that reads the request and never answers: each attempt times out, the send gives up in time."""
    policy = DeliveryPolicy(timeout=0.5, attempts=50, backoff=0.1, max_backoff=0.2, total_time=2)
    started = time.monotonic()
    with receiver() as rx:
        rx.hang = True
        with pytest.raises(DeliveryError, match="ReadTimeout"):
            channel(rx, policy=policy).send(event())
    assert time.monotonic() - started < 2 + 2
    assert len(rx.requests) >= 2


def test_routes_by_tag_severity_and_kind():
    """Only the channels whose routes match get the event; a failing channel is retried later without the others
    getting it twice."""
    config = NotifyConfig(
        {"ops": ChannelConfig("ops", "webhook", "U"), "chat": ChannelConfig("chat", "slack", "U")},
        (Route(("chat",), tags=frozenset({"prod"}), min_severity="critical"),
         Route(("ops",), kinds=frozenset({"new_failure"})), Route(("chat",), tags=frozenset({"staging"}))),
    )  # fmt: skip
    assert config.channels_for(event()) == ["ops"]
    assert config.channels_for(event(severity="critical")) == ["chat", "ops"]
    assert config.channels_for(event(kind="fixed_failure", severity="info")) == []
    assert config.channels_for(event(kind="fixed_failure", tags=["staging"])) == ["chat"]
    state = MemoryState()
    with receiver() as ops, receiver() as chat:
        chat.script = [(404, {})]
        channels = {"ops": channel(ops), "chat": channel(chat, "slack")}
        first = deliver([event(severity="critical")], config, channels, state)
        second = deliver([event(severity="critical")], config, channels, state)
    assert len(ops.requests) == 1 and [r.status for r in chat.requests] == [404, 200]
    assert first.failed and second.sent == [(event().key, "chat")] and state.seen(event().key)


def test_state_file_survives_a_restart(tmp_path: Path):
    """Delivered keys are in the JSON file: a new process (state re-opened) does not send them again."""
    path = tmp_path / "state" / "notify.json"
    config = NotifyConfig({"test": ChannelConfig("test", "webhook", "U")}, (Route(("test",)),))
    with receiver() as rx:
        deliver([event(0), event(1)], config, {"test": channel(rx)}, JsonFileState(path))
        again = deliver([event(0), event(1), event(2)], config, {"test": channel(rx)}, JsonFileState(path))
    assert [r.json()["rule"] for r in rx.requests] == ["r0", "r1", "r2"]
    assert again.sent == [(event(2).key, "test")]
    assert SECRET not in path.read_text()


def test_no_log_line_holds_the_url_path(caplog):
    """Every logger at DEBUG (httpx logs each request's URL at INFO): the token in the path appears nowhere, the
    redacted URL does."""
    with caplog.at_level("DEBUG"), receiver() as rx:
        rx.script = [(500, {})]
        channel(rx, secret=SECRET).send(event())
    assert "HTTP Request: POST" in caplog.text and f"http://127.0.0.1:{rx.port}/…" in caplog.text
    assert "s3cr3t" not in caplog.text and SECRET not in caplog.text


def test_a_dead_channel_is_tried_once_per_delivery():
    """Five events for a receiver that is gone: the first fails within its bound, the other four are deferred to
    the next delivery without being tried, and none is marked delivered."""
    config = NotifyConfig({"test": ChannelConfig("test", "webhook", "U")}, (Route(("test",)),))
    policy = DeliveryPolicy(timeout=1, attempts=3, backoff=0.1, total_time=2)
    state = MemoryState()
    started = time.monotonic()
    with receiver() as rx:
        gone = channel(rx, url=f"http://127.0.0.1:{free_port()}/hook/token", policy=policy)
        result = deliver([event(n) for n in range(5)], config, {"test": gone}, state)
    assert time.monotonic() - started < 2 + 2
    assert len(result.failed) == 1 and [key for key, _ in result.deferred] == [event(n).key for n in range(1, 5)]
    assert not any(state.seen(event(n).key) for n in range(5))


def test_a_trickling_receiver_is_bounded():
    """A receiver that answers a status line and then a byte of headers every 0.2 s, without end: no single read
    times out, yet the send gives up at its total time (2 s here), not never."""
    policy = DeliveryPolicy(timeout=1, attempts=3, backoff=0.1, total_time=2)
    started = time.monotonic()
    bound = pytest.raises(DeliveryError, match="no complete answer within the 2 s bound")
    with receiver() as rx, bound:
        rx.trickle = True
        channel(rx, policy=policy).send(event())
    assert time.monotonic() - started < 2 + 3


def test_a_flooding_receiver_is_not_read():
    """A 200 followed by 10 GB of body: delivered at once, the body never read."""
    started = time.monotonic()
    with receiver() as rx:
        rx.flood = True
        channel(rx).send(event())
    assert time.monotonic() - started < 5 and len(rx.requests) == 1


def test_retry_after_as_an_http_date():
    """Retry-After may be a date: a 503 whose date is two seconds ahead waits about that long (at least one)."""
    with receiver() as rx:
        rx.script = [(503, {"Retry-After": formatdate(time.time() + 2, usegmt=True)})]
        channel(rx).send(event())
    first, second = rx.requests
    assert 1 <= second.at - first.at < 5


@pytest.mark.parametrize(
    ("url", "shown"),
    [("https://hooks.slack.com/services/T0/B0/XYZ", "https://hooks.slack.com/…"),
     ("https://prod-01.westus.logic.azure.com:443/workflows/abc/triggers/manual/paths/invoke?sig=XYZ",
      "https://prod-01.westus.logic.azure.com:443/…"),
     ("http://[::1]:8080/XYZ", "http://[::1]:8080/…"), ("http://[::1/XYZ", "(unreadable URL)")],
)  # fmt: skip
def test_redact(url, shown):
    """Only scheme, host and port survive: the path and query hold the token."""
    assert redact(url) == shown and "XYZ" not in redact(url)
