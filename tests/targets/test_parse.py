"""Target syntax: host, host:port, [v6]:port, URLs; bad input is a TargetError with a clear reason."""

from __future__ import annotations

import pytest

from scanner.targets import Target, TargetError, parse_target


@pytest.mark.parametrize(
    ("text", "host", "port", "sni"),
    [
        ("example.com", "example.com", 443, "example.com"),
        ("Example.COM:8443", "example.com", 8443, "example.com"),
        ("127.0.0.1", "127.0.0.1", 443, None),
        ("127.0.0.1:8883", "127.0.0.1", 8883, None),
        ("[::1]:4433", "::1", 4433, None),
        ("[::1]", "::1", 443, None),
        ("::1", "::1", 443, None),
        # a bare address whose last group cannot be a port after an address is scanned on 443, as it says
        ("2001:db8::1", "2001:db8::1", 443, None),
        ("fe80::1bb", "fe80::1bb", 443, None),
        ("https://example.com", "example.com", 443, "example.com"),
        ("https://example.com:9443/path?q=1", "example.com", 9443, "example.com"),
        ("https://[::1]:8443/", "::1", 8443, None),
        ("mqtts://broker.example", "broker.example", 8883, "broker.example"),
        ("localhost:1", "localhost", 1, "localhost"),
    ],
)
def test_valid_targets(text, host, port, sni):
    """Each accepted spelling yields host, port and the SNI to send (none for IP literals)."""
    target = parse_target(text)
    assert (target.host, target.port, target.server_name) == (host, port, sni)
    assert target.input == text


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty target"),
        ("host:", "port '' is not a number"),
        ("host:abc", "port 'abc' is not a number"),
        ("host:0", "out of range"),
        ("host:65536", "out of range"),
        ("[::1", "missing ']'"),
        ("[nothost]:443", "is not an IPv6 address"),
        ("https://[::1:443", "Invalid IPv6 URL"),  # found by tests/test_fuzz_yaml.py: urlsplit raised
        ("[::1]443", "expected ':PORT'"),
        ("fe80::1::2:443", "write IPv6 addresses with a port as [addr]:port"),
        # an address whose last group reads as a port: the bracketed spelling is suggested, both readings shown
        ("::1:8443", "needs brackets: write [::1]:8443 (or [::1:8443] for the address alone, on port 443)"),
        ("fe80::1:443", "needs brackets: write [fe80::1]:443 (or [fe80::1:443] for the address alone"),
        ("2001:db8::1:0:8883", "write [2001:db8::1:0]:8883"),
        ("ftp://example.com", "unsupported scheme 'ftp'"),
        ("https://user:pw@example.com", "credentials"),
        ("https://example.com:99999", "out of range"),
        ("bad_host!:443", "not a valid host name"),
        (":443", "no host"),
    ],
)
def test_invalid_targets(text, reason):
    """Malformed targets raise TargetError whose message says what is wrong."""
    with pytest.raises(TargetError, match=None) as info:
        parse_target(text)
    assert reason in str(info.value)


def test_display_brackets_ipv6():
    """IPv6 targets are displayed in brackets so the port stays unambiguous."""
    assert Target("x", "::1", 443).display == "[::1]:443"
    assert Target("x", "a.example", 443).display == "a.example:443"
