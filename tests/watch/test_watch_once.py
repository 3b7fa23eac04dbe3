"""`tlsgate watch --once` end to end: an inventory of loopback servers, one server's certificate re-issued and
another stopped between two cycles; a loopback receiver gets exactly the expected notifications, and a third
cycle (a restart with nothing changed) sends nothing again. The store holds the runs and what was delivered."""

from __future__ import annotations

import datetime as dt
import json
import os
import ssl

from scanner.notify.channels import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_signature
from scanner.store import open_store
from scanner.store.notifystate import StoreNotifyState
from tests import pki
from tests.helpers import ServerFiles, free_port, openssl_server, python_tls_server, run_tlsgate, server_context
from tests.notify.receiver import receiver
from tests.notify.test_scan_events import CONFIG, _leaf  # the same loopback PKI as the events' own test

SECRET = "watch-hmac-secret"  # noqa: S105 - a test secret


def _runs(stderr: str) -> list[dict[str, object]]:
    lines = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("kind") == "run"]


def test_watch_once_sends_exactly_the_expected_events_once_across_restarts(tmp_path):
    now = dt.datetime.now(dt.UTC)
    authority = pki.issue(pki.name("watch test CA"), ca=True, not_before=now - dt.timedelta(days=1), days=3650)
    (ca_file := tmp_path / "ca.pem").write_bytes(authority.pem)
    # the second re-issues the first, short: within 14 days
    leaves = {stem: _leaf(tmp_path, authority, stem, days) for stem, days in (("first", 90), ("second", 10),
                                                                               ("other", 90))}  # fmt: skip
    (cert1, key1, sha1), (cert2, key2, sha2), (other_cert, other_key, _) = leaves.values()
    port = free_port()
    rotated = f"127.0.0.1:{port}"
    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    (tmp_path / "notify.yaml").write_text(CONFIG)

    context = server_context(ServerFiles(other_cert, other_key, ca_file), ssl.TLSVersion.TLSv1_2)
    with receiver() as ops, receiver() as chat, python_tls_server(context) as other_server:
        stopped = f"127.0.0.1:{other_server.port}"
        inventory = tmp_path / "inventory.yaml"
        inventory.write_text(
            f"defaults: {{packs: [tls12-plus], every: 6h}}\n"
            f"groups:\n  prod:\n    targets: ['{stopped}']\n"
            f"targets:\n  - {{target: '{rotated}', tags: [web]}}\n"
        )
        env = {**os.environ, "T_OPS_URL": ops.url(), "T_OPS_SECRET": SECRET, "T_CHAT_URL": chat.url()}

        def cycle() -> dict[str, object]:
            run = run_tlsgate("watch", "--once", "--inventory", str(inventory), "--store", store_url, "--notify",
                              str(tmp_path / "notify.yaml"), "--unreachable-after", "1", "--ca-file", str(ca_file),
                              "--timeout", "5", "--log-format", "json", "--spool", str(tmp_path / "spool"),
                              env=env, timeout=120)  # fmt: skip
            assert run.code in (0, 1, 3), run.stderr
            assert SECRET not in run.stderr and "s3cr3t" not in run.stderr
            (line,) = _runs(run.stderr)
            return line

        with openssl_server(cert1, key1, "-tls1_2", port=port):
            first = cycle()
        assert first["targets"] == 2 and first["stored"] == "store"
        initial = [r.json()["kind"] for r in ops.requests]
        assert set(initial) <= {"new_failure"}, initial  # a first run: failures only, nothing expires yet
        ops_before = len(ops.requests)
        other_server.__exit__(None, None, None)  # stopped: its port now refuses
        with openssl_server(cert2, key2, "-tls1_2", port=port):
            second = cycle()
            third = cycle()  # a restart, nothing changed since: nothing is sent again

    bodies = ops.requests[ops_before:]
    got = sorted((r.json()["kind"], r.json()["target"]) for r in bodies)
    assert got == [("certificate_expiring", rotated), ("certificate_rotated", rotated),
                   ("target_unreachable", stopped)], [r.json()["summary"] for r in bodies]  # fmt: skip
    by_kind = {r.json()["kind"]: r.json() for r in bodies}
    assert (by_kind["certificate_rotated"]["before"], by_kind["certificate_rotated"]["after"]) == (sha1, sha2)
    assert by_kind["target_unreachable"]["tags"] == ["prod"]
    for request in bodies:
        assert verify_signature(SECRET.encode(), request.headers[TIMESTAMP_HEADER], request.body,
                                request.headers[SIGNATURE_HEADER])  # fmt: skip
    assert [r.json()["text"] for r in chat.requests if "unreachable" in r.json()["text"]] == [
        f"{stopped}: unreachable for 1 run (refused)"
    ]
    assert second["events_sent"] == 3 and third["events_sent"] == 0, (second, third)
    assert second["verdicts"] and third["run_id"] == int(str(second["run_id"])) + 1

    store = open_store(store_url)
    try:
        runs = store.runs()
        assert [(r.status, r.command, r.targets) for r in runs] == [("finished", "watch", 2)] * 3
        delivered = StoreNotifyState(store).delivered()
        assert {key.split("|")[0] for key in delivered} >= {"certificate_expiring", "target_unreachable"}
        assert all(SECRET not in key and "s3cr3t" not in key for key in delivered)
    finally:
        store.close()
