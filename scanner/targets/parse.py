"""Parse what the user names as a target: ``host``, ``host:port``, ``[v6]:port``, ``https://host[:port]``."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

DEFAULT_PORT = 443

# Schemes whose default port we know; anything else must name its port.
_SCHEME_PORTS = {
    "https": 443,
    "tls": 443,
    "mqtts": 8883,
    "ldaps": 636,
    "imaps": 993,
    "pop3s": 995,
    "smtps": 465,
}
_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?)*\.?$"
)


class TargetError(ValueError):
    """The text cannot name a target."""


@dataclass(frozen=True)
class Target:
    input: str
    host: str
    port: int

    @property
    def is_ip(self) -> bool:
        try:
            ipaddress.ip_address(self.host)
        except ValueError:
            return False
        return True

    @property
    def server_name(self) -> str | None:
        """The SNI to send: the host name, never an IP literal (RFC 6066 section 3)."""
        return None if self.is_ip else self.host.rstrip(".")

    @property
    def display(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def _port(text: str, original: str) -> int:
    if not text.isdigit():
        raise TargetError(f"{original!r}: port {text!r} is not a number")
    port = int(text)
    if not 1 <= port <= 65535:
        raise TargetError(f"{original!r}: port {port} is out of range 1-65535")
    return port


def _host(text: str, original: str) -> str:
    if not text:
        raise TargetError(f"{original!r}: no host")
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        pass
    if not _HOSTNAME.match(text):
        raise TargetError(f"{original!r}: {text!r} is not a valid host name or IP address")
    return text.lower()


def _ipv6_or_none(text: str) -> str | None:
    try:
        return str(ipaddress.IPv6Address(text))
    except ValueError:
        return None


def _bare_ipv6(text: str, original: str) -> str:
    """An IPv6 address without brackets names no port. When its last group reads as a port and what precedes it is
    an address (``::1:8443``, ``fe80::1:443``), the user almost surely meant a port: refuse the guess and show both
    readings rather than silently scan ``::1:8443`` on port 443."""
    head, _, last = text.rpartition(":")
    address = _ipv6_or_none(text)
    meant = _ipv6_or_none(head) if last.isdigit() and 1 <= int(last) <= 65535 else None
    if meant is not None:
        alone = f" (or [{address}] for the address alone, on port {DEFAULT_PORT})" if address else ""
        raise TargetError(f"{original!r}: an IPv6 address with a port needs brackets: write [{meant}]:{last}{alone}")
    if address is None:
        raise TargetError(f"{original!r}: write IPv6 addresses with a port as [addr]:port, e.g. [::1]:8443")
    return address


def parse_target(text: str) -> Target:
    original = text
    text = text.strip()
    if not text:
        raise TargetError("empty target")
    if "://" in text:
        try:
            parts = urlsplit(text)
        except ValueError as exc:  # a '[' with no ']' ("Invalid IPv6 URL")
            raise TargetError(f"{original!r}: {exc}") from None
        scheme = parts.scheme.lower()
        if scheme not in _SCHEME_PORTS:
            raise TargetError(f"{original!r}: unsupported scheme {scheme!r} (use https:// or host:port)")
        if parts.username or parts.password:
            raise TargetError(f"{original!r}: credentials in a target URL are not accepted")
        try:
            port = parts.port
        except ValueError as exc:
            raise TargetError(f"{original!r}: {exc}") from None
        host = parts.hostname or ""
        return Target(original, _host(host, original), port or _SCHEME_PORTS[scheme])
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise TargetError(f"{original!r}: missing ']' after IPv6 address")
        host, rest = text[1:end], text[end + 1 :]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise TargetError(f"{original!r}: {host!r} is not an IPv6 address") from None
        if rest and not rest.startswith(":"):
            raise TargetError(f"{original!r}: expected ':PORT' after ']'")
        return Target(original, _host(host, original), _port(rest[1:], original) if rest else DEFAULT_PORT)
    if text.count(":") > 1:
        return Target(original, _bare_ipv6(text, original), DEFAULT_PORT)
    host, sep, port_text = text.partition(":")
    return Target(original, _host(host, original), _port(port_text, original) if sep else DEFAULT_PORT)
