"""The notification routing file: channels (where events go) and routes (which events go where).

```yaml
channels:
  ops:   {kind: webhook, url_env: TLSGATE_OPS_WEBHOOK, secret_env: TLSGATE_OPS_SECRET, rate: 2/s, burst: 5}
  slack: {kind: slack, url_env: TLSGATE_SLACK_URL, rate: 1/s}
routes:
  - match: {tags: [prod], min_severity: high}
    channels: [slack, ops]
  - match: {kinds: [certificate_expiring]}
    channels: [ops]
```

Read with ``scanner.yamlfile`` (bounded, positions); every problem is reported at once as ``file:line:column``,
an environment variable a channel names but that is not set included. The file holds the *names* of the variables
that hold webhook URLs and secrets, never the values.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

from scanner.findings import SEVERITIES, Severity
from scanner.notify.events import EVENT_KINDS, Event, severity_at_least
from scanner.yamlfile import FileProblems, Key, YamlLoader, did_you_mean, read_yaml

ChannelKind = Literal["webhook", "slack", "teams"]
CHANNEL_KINDS: tuple[str, ...] = get_args(ChannelKind)
_CHANNEL_KEYS = ("kind", "url_env", "secret_env", "rate", "burst")
_ROUTE_KEYS = ("match", "channels")
_MATCH_KEYS = ("tags", "min_severity", "kinds")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_RATE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(?:/\s*(s|sec|second|m|min|minute|h|hour))?\s*")
_PER = {None: 1.0, "s": 1.0, "sec": 1.0, "second": 1.0, "m": 60.0, "min": 60.0, "minute": 60.0, "h": 3600.0,
        "hour": 3600.0}  # fmt: skip
DEFAULT_RATE = 1.0  # messages per second: Slack's documented limit for an incoming webhook
DEFAULT_BURST = 5


class NotifyConfigError(FileProblems):
    """A notification routing file that cannot be used."""


@dataclass(frozen=True)
class ChannelConfig:
    name: str
    kind: ChannelKind
    url_env: str
    secret_env: str | None = None
    rate: float = DEFAULT_RATE  # messages per second
    burst: int = DEFAULT_BURST


@dataclass(frozen=True)
class Route:
    channels: tuple[str, ...]
    tags: frozenset[str] = frozenset()  # any of them; a group's name is a tag of each of its targets
    min_severity: Severity = "info"
    kinds: frozenset[str] = frozenset()  # any of them; none: every kind

    def matches(self, event: Event) -> bool:
        return (
            (not self.tags or bool(self.tags & set(event.tags)))
            and (not self.kinds or event.kind in self.kinds)
            and severity_at_least(event.severity, self.min_severity)
        )


@dataclass(frozen=True)
class NotifyConfig:
    channels: dict[str, ChannelConfig]
    routes: tuple[Route, ...]

    def channels_for(self, event: Event) -> list[str]:
        """The channels of every route the event matches, each once, in the order routes name them."""
        names: list[str] = []
        for route in self.routes:
            if route.matches(event):
                names.extend(n for n in route.channels if n not in names)
        return names


def parse_rate(value: Any) -> float | None:
    """Messages per second from ``2``, ``0.5``, ``2/s``, ``30/min`` or ``100/h``; None when unreadable or zero."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if value > 0 else None
    match = _RATE.fullmatch(value) if isinstance(value, str) else None
    if match is None or float(match.group(1)) <= 0:
        return None
    return float(match.group(1)) / _PER[match.group(2)]


class _Reader:
    def __init__(self, loader: YamlLoader, environ: Mapping[str, str]) -> None:
        self.loader = loader
        self.environ = environ

    def env_name(self, data: Mapping[str, Any], name: str, key: Key) -> str | None:
        value = data.get(name)
        if value is None:
            return None
        if not isinstance(value, str) or not _ENV_NAME.fullmatch(value):
            self.loader.at((*key, name), f"'{name}' must name an environment variable (letters, digits, _)")
            return None
        if not self.environ.get(value):
            self.loader.at((*key, name), f"environment variable {value} ({name}) is not set")
        return value

    def channel(self, name: str, data: Any, key: Key) -> ChannelConfig | None:
        if not isinstance(data, Mapping):
            self.loader.at(key, f"channel {name!r} must be a mapping with kind and url_env")
            return None
        self.loader.unknown_keys(data, _CHANNEL_KEYS, key, "channel")
        kind = data.get("kind")
        if kind not in CHANNEL_KINDS:
            shown = f"{kind!r}{did_you_mean(kind, CHANNEL_KINDS)}" if isinstance(kind, str) else "missing"
            self.loader.at((*key, "kind"), f"channel kind {shown}: one of {', '.join(CHANNEL_KINDS)}")
        if "url_env" not in data:
            self.loader.at(key, f"channel {name!r} needs url_env: the environment variable holding its URL")
        url_env = self.env_name(data, "url_env", key)
        secret_env = self.env_name(data, "secret_env", key)
        if secret_env is not None and kind != "webhook":
            self.loader.at((*key, "secret_env"), f"secret_env signs generic webhooks only, not {kind}")
        rate = parse_rate(data.get("rate", DEFAULT_RATE))
        if rate is None:
            self.loader.at((*key, "rate"), "rate must be a positive number per second, or N/s, N/min, N/h")
        burst = data.get("burst", DEFAULT_BURST)
        if not isinstance(burst, int) or isinstance(burst, bool) or burst < 1:
            self.loader.at((*key, "burst"), "burst must be a whole number of messages, at least 1")
            burst = DEFAULT_BURST
        if kind not in CHANNEL_KINDS or url_env is None or rate is None:
            return None
        return ChannelConfig(name, kind, url_env, secret_env, rate, burst)

    def names(self, value: Any, key: Key, what: str, allowed: tuple[str, ...] | None = None) -> frozenset[str]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.loader.at(key, f"{what} must be a list of names")
            return frozenset()
        for i, name in enumerate(value):
            if allowed is not None and name not in allowed:
                self.loader.at((*key, i), f"unknown {what[:-1]} {name!r}{did_you_mean(name, allowed)}")
        return frozenset(value)

    def route(self, data: Any, key: Key, channels: Mapping[str, Any]) -> Route | None:
        if not isinstance(data, Mapping):
            self.loader.at(key, "a route must be a mapping with match and channels")
            return None
        self.loader.unknown_keys(data, _ROUTE_KEYS, key, "route")
        match = data.get("match", {})
        if not isinstance(match, Mapping):
            self.loader.at((*key, "match"), "match must be a mapping of tags, min_severity, kinds")
            match = {}
        self.loader.unknown_keys(match, _MATCH_KEYS, (*key, "match"), "match")
        tags = self.names(match["tags"], (*key, "match", "tags"), "tags") if "tags" in match else frozenset()
        kinds = frozenset[str]()
        if "kinds" in match:
            kinds = self.names(match["kinds"], (*key, "match", "kinds"), "kinds", EVENT_KINDS)
        severity = match.get("min_severity", "info")
        if severity not in SEVERITIES:
            self.loader.at((*key, "match", "min_severity"), f"min_severity must be one of {', '.join(SEVERITIES)}")
            severity = "info"
        if "channels" not in data:
            self.loader.at(key, "a route needs channels: the names of the channels its events go to")
            return None
        names = self.names(data["channels"], (*key, "channels"), "channels", tuple(channels))
        ordered = tuple(dict.fromkeys(n for n in data["channels"] if n in names)) if names else ()
        return Route(ordered, tags, severity, kinds)


def read_notify_config(path: Path, environ: Mapping[str, str] | None = None) -> NotifyConfig:
    """The routing file at ``path``; raises NotifyConfigError with every problem (unset variables included)."""
    loader, data = read_yaml(path, "notification config", NotifyConfigError)
    reader = _Reader(loader, os.environ if environ is None else environ)
    if not isinstance(data, Mapping):
        loader.at((), "a notification config is a mapping of channels and routes")
        raise NotifyConfigError(loader.problems)
    loader.unknown_keys(data, ("channels", "routes"), (), "top-level")
    raw_channels = data.get("channels")
    if not isinstance(raw_channels, Mapping) or not raw_channels:
        loader.at(("channels",), "'channels' must be a mapping of channel name to kind and url_env")
        raw_channels = {}
    channels = {name: reader.channel(name, value, ("channels", name)) for name, value in raw_channels.items()}
    raw_routes = data.get("routes")
    if not isinstance(raw_routes, list) or not raw_routes:
        loader.at(("routes",), "'routes' must be a list of routes (match and channels)")
        raw_routes = []
    routes = [reader.route(item, ("routes", i), raw_channels) for i, item in enumerate(raw_routes)]
    if loader.problems:
        raise NotifyConfigError(loader.problems)
    return NotifyConfig(
        channels={name: c for name, c in channels.items() if c is not None},
        routes=tuple(r for r in routes if r is not None),
    )
