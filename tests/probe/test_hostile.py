"""Hostile servers (tests/hostile.py) against the preflight and tlsgate's own probes: each fault gets its exact
class, every time, within the timeout of each step however the peer paces its bytes.

The trickles send a byte every 0.15 s against a 0.5 s timeout: each read gets an answer before its socket timeout
would fire, so only a deadline on the whole step ends them. Time bounds are asserted generously (3 x timeout
+ 2 s) so a loaded machine does not make them flaky.
"""

from __future__ import annotations

import dataclasses
import socket
import time
from collections.abc import Callable
from typing import Any

import pytest

from scanner.facts import ErrorClass, ProbeError
from scanner.probe.checks.clientauth import probe_client_auth
from scanner.probe.checks.sslv2 import probe_sslv2
from scanner.probe.connect.deadline import Deadline
from scanner.probe.connect.limits import Stop
from scanner.probe.connect.preflight import Reachable, preflight
from scanner.probe.connect.starttls import StartTls
from scanner.probe.connect.tlsclient import client_context, handshake_error, tls_connect
from scanner.probe.wire.messages import Closed, ConnectFailed, TimedOut
from scanner.probe.wire.records import exchange
from scanner.targets import parse_target
from tests.helpers import hello_filter_proxy, loopback_endpoint
from tests.hostile import (
    BEHAVIOURS,
    PREFLIGHT_CLASS,
    STARTTLS_PROTOCOLS,
    hostile_server,
    starttls_behaviour,
    starttls_of,
)

TIMEOUT = 0.5
PACE = 0.15  # seconds between the bytes of a trickle
BOUND = 3 * TIMEOUT + 2


def _timed(call: Callable[[], Any]) -> tuple[Any, float]:
    started = time.monotonic()
    result = call()
    return result, time.monotonic() - started


def _class(result: Reachable | ProbeError) -> ErrorClass | None:
    return result.error_class if isinstance(result, ProbeError) else None


def _one_line_without_library_names(message: str) -> None:
    assert "\n" not in message
    for library_text in ("Error(", "[SSL", "[Errno", "_ssl.c", "Traceback", "b'\\x"):
        assert library_text not in message, message


@pytest.mark.parametrize("behaviour", sorted(BEHAVIOURS))
def test_preflight_classes_each_hostile_behaviour_within_the_timeout(behaviour: str) -> None:
    """Each behaviour gets its class, in one line without library names, within a bound of the timeout."""
    with hostile_server(behaviour, interval=PACE) as server:
        result, took = _timed(lambda: preflight(parse_target(server.target), TIMEOUT))
    assert _class(result) == PREFLIGHT_CLASS[behaviour], result
    assert took < BOUND, took
    if isinstance(result, ProbeError):
        _one_line_without_library_names(result.message)


def test_banner_keeps_its_starttls_hint() -> None:
    with hostile_server("plaintext_banner") as server:
        result = preflight(parse_target(server.target), TIMEOUT)
    assert isinstance(result, ProbeError) and result.message.endswith("scan it with --starttls smtp")


@pytest.mark.parametrize("how", ["trickle", "endless"])
@pytest.mark.parametrize("protocol", STARTTLS_PROTOCOLS)
def test_starttls_dialogue_that_trickles_or_never_ends_is_bounded(protocol: str, how: str) -> None:
    """The preflight's STARTTLS step ends within the timeout whatever the plaintext side does."""
    behaviour = starttls_behaviour(protocol, how)
    with hostile_server(behaviour, interval=PACE) as server:
        result, took = _timed(lambda: preflight(parse_target(server.target), TIMEOUT, starttls=StartTls(protocol)))
    assert _class(result) == PREFLIGHT_CLASS[behaviour], result
    assert took < BOUND, took
    assert isinstance(result, ProbeError)
    _one_line_without_library_names(result.message)


STABLE = [
    *sorted(b for b in BEHAVIOURS if b != "trickle_handshake"),
    starttls_behaviour("smtp", "trickle"),
    starttls_behaviour("imap", "endless"),
]


@pytest.mark.parametrize("behaviour", STABLE)
def test_class_is_stable_from_run_to_run(behaviour: str) -> None:
    """The same server, 20 preflights, one class: races between a reset and our send do not change the name.
    Every behaviour, and a STARTTLS dialogue of each kind; those that end in a timeout get a short one (0.2 s:
    20 runs in ~4 s), as a slow machine could only make them slower, never another class."""
    expected = PREFLIGHT_CLASS[behaviour]
    timeout = 0.2 if expected == ErrorClass.timeout else TIMEOUT
    starttls = starttls_of(behaviour)
    with hostile_server(behaviour, interval=0.04) as server:
        target = parse_target(server.target)
        classes = {
            _class(preflight(target, timeout, starttls=StartTls(starttls) if starttls else None)) for _ in range(20)
        }
    assert classes == {expected}


def test_trickle_is_timeout_every_time() -> None:
    """A trickle fast enough to beat every socket timeout is still a timeout, 20 runs out of 20."""
    with hostile_server("trickle_handshake", interval=0.04) as server:
        classes = {_class(preflight(parse_target(server.target), 0.2)) for _ in range(20)}
    assert classes == {ErrorClass.timeout}


# --- tlsgate's own probes, past the preflight -----------------------------------------------------------------


def test_hello_exchange_is_bounded_as_a_whole() -> None:
    """The record reader gives a trickling flight one timeout in all (it used to allow three)."""
    with hostile_server("trickle_handshake", interval=PACE) as server:
        reply, took = _timed(lambda: exchange(loopback_endpoint(server.port, timeout=TIMEOUT), b"\x16\x03\x01\x00\x00"))
    assert isinstance(reply.end, TimedOut) and reply.end.received >= 1
    assert took < TIMEOUT + 0.8, took


def test_truncated_reply_says_how_much_came() -> None:
    with hostile_server("truncated_hello_close") as server:
        reply = exchange(loopback_endpoint(server.port, timeout=TIMEOUT), b"\x16\x03\x01\x00\x00")
    assert isinstance(reply.end, Closed) and reply.end.received > 0


def test_python_ssl_handshake_on_a_trickle_is_bounded() -> None:
    """tls_connect (sessions, ALPN) times out a handshake whose ServerHello trickles in."""
    with hostile_server("trickle_handshake", interval=PACE) as server:
        endpoint = loopback_endpoint(server.port, timeout=TIMEOUT)
        started = time.monotonic()
        with pytest.raises(TimeoutError) as caught:
            tls_connect(endpoint, client_context(endpoint))
        took = time.monotonic() - started
    error = handshake_error(endpoint, "TLS 1.2", caught.value)
    assert error.error_class == ErrorClass.timeout and took < TIMEOUT + 1, (error, took)


@pytest.mark.parametrize(
    ("behaviour", "error_class"),
    [
        ("trickle_handshake", ErrorClass.timeout),
        ("silent_after_hello", ErrorClass.timeout),
        ("reset_after_hello", ErrorClass.reset),
        ("flood_records", ErrorClass.handshake_failed),
    ],
)
def test_client_auth_handshake_is_bounded(behaviour: str, error_class: ErrorClass) -> None:
    """The client-auth probe's memory-BIO handshake: bounded in time and in what it reads."""
    with hostile_server(behaviour, interval=PACE) as server:
        facts, took = _timed(lambda: probe_client_auth(loopback_endpoint(server.port, timeout=TIMEOUT)))
    assert facts.status == "error" and facts.error is not None
    assert facts.error.error_class == error_class, facts.error
    assert took < BOUND, took


@pytest.mark.parametrize(
    ("behaviour", "status"), [("silent_after_hello", "error"), ("reset_after_hello", "not_accepted")]
)
def test_sslv2_probe_is_bounded(behaviour: str, status: str) -> None:
    with hostile_server(behaviour) as server:
        support, took = _timed(lambda: probe_sslv2(loopback_endpoint(server.port, timeout=TIMEOUT)))
    assert support.status == status and took < TIMEOUT + 1
    if status == "error":
        assert support.error is not None and support.error.error_class == ErrorClass.timeout


def test_starttls_trickle_through_the_endpoint_is_bounded() -> None:
    """Every probe's connection runs the STARTTLS preamble under one deadline."""
    with hostile_server(starttls_behaviour("smtp", "trickle"), interval=PACE) as server:
        endpoint = dataclasses.replace(loopback_endpoint(server.port, timeout=TIMEOUT), starttls=StartTls.smtp)
        reply, took = _timed(lambda: exchange(endpoint, b"\x16\x03\x01\x00\x00"))
    assert isinstance(reply.end, ConnectFailed) and reply.end.error.error_class == ErrorClass.timeout, reply.end
    assert took < TIMEOUT + 0.8, took


def test_target_deadline_cuts_a_step_short() -> None:
    """A step ends at the target's stop deadline when that comes before the step's own timeout."""
    stop = Stop.after(0.5, ProbeError(error_class=ErrorClass.time_budget, message="out of time"))
    deadline = Deadline(30, stop)
    with hostile_server("silent_after_accept") as server, socket.create_connection(("127.0.0.1", server.port)) as sock:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            deadline.recv_exactly(sock, 10)
    assert time.monotonic() - started < 1.5


def test_preflight_ends_at_the_target_deadline() -> None:
    stop = Stop.after(0.5, ProbeError(error_class=ErrorClass.time_budget, message="out of time"))
    with hostile_server("silent_after_hello") as server:
        result, took = _timed(lambda: preflight(parse_target(server.target), 30, stop=stop))
    assert _class(result) == ErrorClass.timeout and took < 1.5


@pytest.mark.parametrize("mode", ["reset", "close"])
def test_server_dropping_long_hellos_still_passes_the_preflight(mode: str, tls12_13_server: Any) -> None:
    """A real TLS server behind a proxy that drops hellos over 600 bytes: the preflight's broad hello is dropped,
    its short TLS 1.2 hello answered, so the target is scanned, not reported as reset."""
    with hello_filter_proxy(tls12_13_server.port, lambda hello: mode if len(hello) > 600 else "forward") as proxy:
        result = preflight(parse_target(f"127.0.0.1:{proxy.port}"), TIMEOUT)
    assert isinstance(result, Reachable), result
    assert proxy.actions == [mode, "forward"]


def test_own_probe_step_ends_at_the_target_deadline() -> None:
    """A probe's hello exchange on a trickling server ends when the target's time is up, not a timeout later."""
    stop = Stop.after(0.5, ProbeError(error_class=ErrorClass.time_budget, message="out of time"))
    with hostile_server("trickle_handshake", interval=PACE) as server:
        endpoint = dataclasses.replace(loopback_endpoint(server.port, timeout=30), stop=stop)
        reply, took = _timed(lambda: exchange(endpoint, b"\x16\x03\x01\x00\x00"))
    assert isinstance(reply.end, TimedOut) and took < 1.5, (reply.end, took)
