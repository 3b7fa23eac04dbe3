"""The routing file: a valid one read whole, every problem of a bad one as file:line:column."""

from __future__ import annotations

from pathlib import Path

import pytest

from scanner.notify.channels import ChannelSetupError, build_channels
from scanner.notify.config import NotifyConfigError, parse_rate, read_notify_config

ENV = {"OPS_URL": "https://hooks.example/T/B/token", "OPS_SECRET": "s", "SLACK_URL": "https://hooks.slack.test/x"}
GOOD = """\
channels:
  ops: {kind: webhook, url_env: OPS_URL, secret_env: OPS_SECRET, rate: 30/min, burst: 2}
  slack: {kind: slack, url_env: SLACK_URL}
routes:
  - match: {tags: [prod], min_severity: high}
    channels: [slack, ops]
  - match: {kinds: [certificate_expiring, target_unreachable]}
    channels: [ops]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "notify.yaml"
    path.write_text(text)
    return path


def test_reads_the_example(tmp_path):
    """The documented example reads into two channels and two routes."""
    config = read_notify_config(write(tmp_path, GOOD), ENV)
    ops, slack = config.channels["ops"], config.channels["slack"]
    assert (ops.kind, ops.url_env, ops.secret_env, ops.rate, ops.burst) == ("webhook", "OPS_URL", "OPS_SECRET", 0.5, 2)
    assert (slack.kind, slack.rate, slack.burst) == ("slack", 1.0, 5)
    first, second = config.routes
    assert (first.channels, first.tags, first.min_severity) == (("slack", "ops"), frozenset({"prod"}), "high")
    assert second.kinds == frozenset({"certificate_expiring", "target_unreachable"})
    channels = build_channels(config, ENV)
    assert channels["ops"].secret == b"s" and "token" not in repr(channels["ops"])


def test_every_problem_with_its_position(tmp_path):
    """A misspelt kind, an unset variable, a bad rate, an unknown key, an unknown event kind and an unknown
    channel: all reported at once, each at its line and column."""
    text = """\
channels:
  ops: {kind: webhok, url_env: MISSING_URL, rate: fast}
  chat: {kind: slack, url_env: SLACK_URL, secret_env: OPS_SECRET, colour: red}
routes:
  - match: {kinds: [new_failures], min_severity: urgent}
    channels: [ops, pager]
"""
    with pytest.raises(NotifyConfigError) as raised:
        read_notify_config(write(tmp_path, text), ENV)
    lines = [str(p).split("notify.yaml:")[1] for p in raised.value.problems]
    assert lines == [
        "2:15: channel kind 'webhok' (did you mean 'webhook'?): one of webhook, slack, teams",
        "2:32: environment variable MISSING_URL (url_env) is not set",
        "2:51: rate must be a positive number per second, or N/s, N/min, N/h",
        "3:67: unknown channel key 'colour'",
        "3:55: secret_env signs generic webhooks only, not slack",
        "5:21: unknown kind 'new_failures' (did you mean 'new_failure'?)",
        "5:50: min_severity must be one of critical, high, medium, low, info",
        "6:21: unknown channel 'pager'",
    ], lines


@pytest.mark.parametrize("text", ["", "[1, 2]", "channels: {}\nroutes: []\n", "a: &a [*a]\n"])
def test_unusable_files_are_one_line_problems(tmp_path, text):
    """Empty, not a mapping, nothing in it, or not YAML as the loader bounds it: problems, never a traceback."""
    with pytest.raises(NotifyConfigError) as raised:
        read_notify_config(write(tmp_path, text), ENV)
    assert raised.value.problems and all("notify.yaml" in str(p) for p in raised.value.problems)


def test_channel_setup_needs_an_http_url(tmp_path):
    """A variable that holds no http(s) URL is refused naming the variable, never its value."""
    config = read_notify_config(write(tmp_path, GOOD), ENV)
    with pytest.raises(ChannelSetupError, match="OPS_URL does not hold an http") as raised:
        build_channels(config, ENV | {"OPS_URL": "file:///etc/secret-token"})
    assert "secret-token" not in str(raised.value)


@pytest.mark.parametrize(("text", "rate"), [(2, 2.0), ("0.5", 0.5), ("2/s", 2.0), ("30/min", 0.5), ("360/h", 0.1),
                                            ("0", None), (True, None), ("fast", None), (-1, None)])  # fmt: skip
def test_rates(text, rate):
    assert parse_rate(text) == rate


def test_the_documented_example_reads(tmp_path):
    """The routing file in docs/notifications.md is valid: three channels of three kinds, three routes."""
    doc = (Path(__file__).parents[2] / "docs" / "notifications.md").read_text(encoding="utf-8")
    example = next(block.split("```", 1)[0] for block in doc.split("```yaml\n")[1:] if "routes:" in block)
    env = {"TLSGATE_OPS_WEBHOOK": "https://h.test/x", "TLSGATE_OPS_SECRET": "s", "TLSGATE_SLACK_URL": "https://s.test/x",
           "TLSGATE_TEAMS_URL": "https://t.test/x"}  # fmt: skip
    config = read_notify_config(write(tmp_path, example), env)
    assert sorted(c.kind for c in config.channels.values()) == ["slack", "teams", "webhook"]
    assert [r.channels for r in config.routes] == [("ops",), ("platform-slack",), ("security-teams",)]
    assert config.channels["ops"].rate == 2.0
