"""ALPN enumeration against real servers on loopback (nginx, Python ssl)."""

from __future__ import annotations

import ssl

import pytest

from scanner.facts import ErrorClass
from scanner.probe.checks.alpn import DEFAULT_ALPN, probe_alpn
from tests.helpers import ServerFiles, free_port, loopback_endpoint, python_tls_server, server_context
from tests.nginx import nginx_binary, nginx_server

needs_nginx = pytest.mark.skipif(nginx_binary() is None, reason="nginx is not installed")


def _alpn_server_context(pki: ServerFiles, protocols: list[str] | None) -> ssl.SSLContext:
    context = server_context(pki, ssl.TLSVersion.TLSv1_2)
    if protocols is not None:
        context.set_alpn_protocols(protocols)
    return context


@needs_nginx
def test_nginx_with_http2(pki: ServerFiles):
    """nginx with `listen ... ssl http2` selects h2 first, then every HTTP/1.x it knows, and aborts with
    no_application_protocol once nothing is left, which ends the list."""
    with nginx_server(pki.cert, pki.key, http2=True) as server:
        result = probe_alpn(loopback_endpoint(server.port))
    assert result.status == "ok", result.error
    # nginx 1.22 offers h2, http/1.1, http/1.0 and http/0.9 (ngx_http_ssl_alpn_select), in that order.
    assert result.value == ["h2", "http/1.1", "http/1.0", "http/0.9"]


@needs_nginx
def test_nginx_without_http2(pki: ServerFiles):
    """nginx without HTTP/2 never selects h2."""
    with nginx_server(pki.cert, pki.key) as server:
        result = probe_alpn(loopback_endpoint(server.port))
    assert result.status == "ok", result.error
    assert result.value == ["http/1.1", "http/1.0", "http/0.9"]


def test_python_server_with_mqtt_only(pki: ServerFiles):
    """A Python ssl server that speaks only mqtt yields ["mqtt"]."""
    with python_tls_server(_alpn_server_context(pki, ["mqtt"])) as server:
        result = probe_alpn(loopback_endpoint(server.port))
    assert result.status == "ok", result.error
    assert result.value == ["mqtt"]


def test_server_preference_comes_first(pki: ServerFiles):
    """A server that prefers mqtt over h2 is reported in its own order, whatever order we offer in."""
    with python_tls_server(_alpn_server_context(pki, ["mqtt", "h2", "acme-tls/1"])) as server:
        result = probe_alpn(loopback_endpoint(server.port))
    assert result.status == "ok", result.error
    assert result.value == ["mqtt", "h2", "acme-tls/1"]


def test_server_without_alpn(pki: ServerFiles):
    """A server that ignores ALPN yields an empty list, observed, not an error."""
    with python_tls_server(_alpn_server_context(pki, None)) as server:
        result = probe_alpn(loopback_endpoint(server.port))
    assert result.status == "ok", result.error
    assert result.value == []


def test_only_candidates_are_offered(pki: ServerFiles):
    """With a custom candidate list, a protocol the server supports but we do not offer is not reported."""
    with python_tls_server(_alpn_server_context(pki, ["mqtt", "h2"])) as server:
        result = probe_alpn(loopback_endpoint(server.port), candidates=["h2", "http/1.1"])
    assert result.value == ["h2"]


def test_default_candidates_are_unique_and_include_the_common_ones():
    """The default list has no duplicates and covers HTTP, HTTP/2, MQTT, mail, XMPP, ACME and PostgreSQL."""
    assert len(DEFAULT_ALPN) == len(set(DEFAULT_ALPN))
    assert {"h2", "http/1.1", "mqtt", "imap", "pop3", "xmpp-client", "acme-tls/1", "postgresql"} <= set(DEFAULT_ALPN)


def test_nothing_listening_is_an_error():
    """A port with nothing listening gives an ALPN fact with status error (refused), not an empty list."""
    result = probe_alpn(loopback_endpoint(free_port(), timeout=1))
    assert result.status == "error"
    assert result.value is None
    assert result.error is not None
    assert result.error.error_class == ErrorClass.refused
