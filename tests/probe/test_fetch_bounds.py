"""HTTP fetches (AIA, OCSP, CRL) and the mTLS enforcement request end on time, however slowly the server answers."""

from __future__ import annotations

import dataclasses
import ssl
import time

import pytest

from scanner.facts import ClientAuthEnforcement, ErrorClass, Observed
from scanner.probe.checks.enforcement import probe_enforcement
from scanner.probe.connect.endpoint import Endpoint
from scanner.probe.connect.limits import Stop
from scanner.probe.pki import fetch
from scanner.probe.pki.fetch import Fetcher, FetchError
from scanner.probe.pki.revocation import check_revocation
from tests.helpers import ServerFiles, loopback_endpoint, server_context
from tests.hostile_http import BEHAVIOURS, Behaviour, hostile_http
from tests.probe.test_revocation import make_pki

TIMEOUT = 1.0
SLACK = 1.5  # scheduling on a loaded two-core machine


@pytest.mark.parametrize("behaviour", BEHAVIOURS)
def test_a_fetch_ends_by_its_deadline(behaviour: Behaviour) -> None:
    """Each way of answering too slowly or too much ends the fetch within its timeout, as a plain one-line reason;
    without the deadline the trickles would go on for ever (each byte comes well within the read timeout)."""
    with hostile_http(behaviour, interval=0.1) as server:
        started = time.monotonic()
        got = Fetcher(TIMEOUT).get(f"http://{server.target}/ca.crt")
        took = time.monotonic() - started
    assert isinstance(got, FetchError)
    assert took < TIMEOUT + SLACK, f"{behaviour}: the fetch took {took:.1f}s"
    if behaviour == "endless_body":
        assert got.reason == f"response larger than {fetch.MAX_BYTES} bytes"
    else:
        assert got.reason.startswith(f"timeout after {TIMEOUT:g}s"), got.reason
    assert "\n" not in got.reason
    assert "Error" not in got.reason and "Exception" not in got.reason


def test_a_declared_oversized_body_is_not_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """A Content-Length over the cap is refused before the body is read (the body here would trickle for ever)."""
    monkeypatch.setattr(fetch, "MAX_BYTES", 1000)
    with hostile_http("trickle_body", interval=0.5) as server:
        started = time.monotonic()
        got = Fetcher(5).get(f"http://{server.target}/big.crl")
    assert isinstance(got, FetchError)
    assert got.reason == "response larger than 1000 bytes"
    assert time.monotonic() - started < 2


def test_refused_connection_is_worded_plainly() -> None:
    with hostile_http("silent") as server:
        port = server.port
    got = Fetcher(TIMEOUT).get(f"http://127.0.0.1:{port}/x.crl")
    assert isinstance(got, FetchError)
    assert got.reason == "cannot connect: Connection refused"


@pytest.mark.parametrize("behaviour", ["trickle_headers", "trickle_body"])
def test_trickling_ocsp_and_crl_responders_are_errors_on_time(behaviour: Behaviour) -> None:
    """A chain whose OCSP responder and CRL server trickle: every live source is an error that says timeout, and
    the whole check (four fetches, run side by side) ends within a timeout or so."""
    with hostile_http(behaviour, interval=0.1) as server:
        pki = make_pki(None, f"trickle-{behaviour}", base=f"http://{server.target}")
        started = time.monotonic()
        results = check_revocation(pki.served, Fetcher(TIMEOUT), issuers=[pki.root.cert])
        took = time.monotonic() - started
    assert took < TIMEOUT + SLACK
    assert {(r.source, r.status) for r in results} == {("ocsp", "error"), ("crl", "error")}
    for result in results:
        assert result.detail is not None
        assert result.detail.startswith("timeout after 1s"), result.detail


def _https(pki: ServerFiles) -> ssl.SSLContext:
    context = server_context(pki, ssl.TLSVersion.TLSv1_2)
    context.set_alpn_protocols(["http/1.1"])
    return context


def _enforcement(endpoint: Endpoint) -> tuple[Observed[ClientAuthEnforcement], float]:
    """The enforcement request without a client certificate, and how long it took."""
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.check_hostname = False
    client.verify_mode = ssl.CERT_NONE
    started = time.monotonic()
    with endpoint.connect() as sock:
        answer = probe_enforcement(endpoint, sock, client, "without a client certificate")
    return answer, time.monotonic() - started


def test_enforcement_request_ends_when_the_answer_trickles(pki: ServerFiles) -> None:
    """An HTTPS service that trickles its status line a byte every 0.1 s: the enforcement request is a timeout
    after about one timeout, not one per byte."""
    with hostile_http("trickle_status", interval=0.1, tls=_https(pki)) as server:
        answer, took = _enforcement(loopback_endpoint(server.port, timeout=TIMEOUT))
    assert took < TIMEOUT + SLACK
    assert answer.status == "error"
    assert answer.error is not None
    assert answer.error.error_class == ErrorClass.timeout
    assert "no answer to the HTTP request without a client certificate within 1s" in answer.error.message


def test_enforcement_request_ends_with_the_targets_time(pki: ServerFiles) -> None:
    """With less time left for the target than one timeout, the request ends when the target's time does."""
    with hostile_http("silent", tls=_https(pki)) as server:
        stop = Stop(deadline=time.monotonic() + 1.0)
        answer, took = _enforcement(dataclasses.replace(loopback_endpoint(server.port, timeout=30), stop=stop))
    assert took < 1.0 + SLACK, "the 30 s timeout was not cut short by the target's deadline"
    assert answer.error is not None
    assert answer.error.error_class == ErrorClass.timeout
