"""End to end: scan two loopback servers, re-issue one's certificate (now expiring) and stop the other, scan
again; the events are exactly those three, delivered once to a loopback receiver across a restart."""

from __future__ import annotations

import datetime as dt
import json
import ssl
from pathlib import Path

import jsonschema

from scanner.notify.channels import SIGNATURE_HEADER, TIMESTAMP_HEADER, build_channels, deliver, verify_signature
from scanner.notify.config import read_notify_config
from scanner.notify.events import events_between
from scanner.notify.state import JsonFileState
from scanner.saved import read_report
from scanner.schemas import schema_dir
from tests import pki
from tests.helpers import ServerFiles, free_port, openssl_server, python_tls_server, server_context
from tests.notify.receiver import receiver

SECRET = "e2e-hmac-secret"  # noqa: S105 - a test secret
CONFIG = """\
channels:
  ops: {kind: webhook, url_env: T_OPS_URL, secret_env: T_OPS_SECRET, rate: 20/s}
  chat: {kind: slack, url_env: T_CHAT_URL}
routes:
  - channels: [ops]
  - match: {tags: [prod], min_severity: high}
    channels: [chat]
"""


def _leaf(directory: Path, ca: pki.Issued, stem: str, days: int) -> tuple[Path, Path, str]:
    now = dt.datetime.now(dt.UTC)
    leaf = pki.issue(pki.name(stem), issuer=ca, key=pki.new_key("rsa2048"), not_before=now - dt.timedelta(days=1),
                     days=days + 1, sans=("localhost", "127.0.0.1"))  # fmt: skip
    cert, key = leaf.write(directory, stem, chain=[ca])
    return cert, key, leaf.sha256


def test_reissued_and_stopped_servers_give_exactly_the_expected_events(tlsgate, tmp_path):
    now = dt.datetime.now(dt.UTC)
    authority = pki.issue(pki.name("notify test CA"), ca=True, not_before=now - dt.timedelta(days=1), days=3650)
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(authority.pem)
    cert1, key1, sha1 = _leaf(tmp_path, authority, "first", days=90)
    cert2, key2, sha2 = _leaf(tmp_path, authority, "second", days=10)  # re-issued short: within 14 days
    other_cert, other_key, _ = _leaf(tmp_path, authority, "other", days=90)
    port = free_port()
    rotated = f"127.0.0.1:{port}"
    first, second = tmp_path / "first.json", tmp_path / "second.json"

    def scan(out: Path, *targets: str) -> None:
        run = tlsgate("scan", *targets, "--pack", "tls12-plus", "--ca-file", str(ca_file), "--timeout", "5",
                      "--json", str(out))  # fmt: skip
        assert out.exists(), run.stderr

    context = server_context(ServerFiles(other_cert, other_key, ca_file), ssl.TLSVersion.TLSv1_2)
    with python_tls_server(context) as other_server:
        stopped = f"127.0.0.1:{other_server.port}"
        with openssl_server(cert1, key1, "-tls1_2", port=port):
            scan(first, rotated, stopped)
    with openssl_server(cert2, key2, "-tls1_2", port=port):
        scan(second, rotated, stopped)
    before, after = read_report(first), read_report(second)

    state_file = tmp_path / "notify-state.json"
    tags = {rotated: ["web"], stopped: ["prod"]}
    with receiver() as ops, receiver() as chat:
        env = {"T_OPS_URL": ops.url(), "T_OPS_SECRET": SECRET, "T_CHAT_URL": chat.url()}
        config_file = tmp_path / "notify.yaml"
        config_file.write_text(CONFIG)
        config = read_notify_config(config_file, env)

        def cycle(previous, report):  # a watch cycle in a fresh process: state re-opened, channels rebuilt
            state = JsonFileState(state_file)
            events = events_between(previous, report, state, tags=tags, unreachable_after=1)
            return events, deliver(events, config, build_channels(config, env), state)

        initial, _ = cycle(None, before)
        assert {e.kind for e in initial} <= {"new_failure"}  # a first run: only failures, nothing expires yet
        ops_before = len(ops.requests)
        events, delivery = cycle(before, after)
        again, repeated = cycle(before, after)  # restarted before anything changed: nothing is sent twice

    got = sorted((e.kind, e.target) for e in events)
    assert got == [("certificate_expiring", rotated), ("certificate_rotated", rotated),
                   ("target_unreachable", stopped)], [e.summary for e in events]  # fmt: skip
    by_kind = {e.kind: e for e in events}
    assert (by_kind["certificate_rotated"].before, by_kind["certificate_rotated"].after) == (sha1, sha2)
    expiring = by_kind["certificate_expiring"]
    assert (expiring.threshold_days, expiring.after, expiring.severity) == (14, sha2, "medium")
    assert 9 < (expiring.days_remaining or 0) <= 10
    assert by_kind["target_unreachable"].error == "refused" and by_kind["target_unreachable"].tags == ["prod"]
    assert delivery.failed == [] and again == [] and repeated.sent == []

    schema = json.loads((schema_dir() / "event.schema.json").read_text())
    bodies = ops.requests[ops_before:]
    assert sorted(r.json()["kind"] for r in bodies) == sorted(k for k, _ in got)
    for request in bodies:
        jsonschema.validate(request.json(), schema)
        assert verify_signature(SECRET.encode(), request.headers[TIMESTAMP_HEADER], request.body,
                                request.headers[SIGNATURE_HEADER])  # fmt: skip
    # only the prod target's high-severity event reaches the chat channel
    assert [r.json()["text"] for r in chat.requests if "unreachable" in r.json()["text"]] == [
        f"{stopped}: unreachable for 1 run (refused)"
    ]
    assert all(SECRET not in r.body.decode() for r in ops.requests + chat.requests)
    assert SECRET not in state_file.read_text() and "s3cr3t" not in state_file.read_text()
