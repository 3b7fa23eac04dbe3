"""Trust judged by the chain alone (--no-name-check, inventory name_check: false): peers identified by their DN,
as MQ queue managers are, scanned by an address their certificate does not name."""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from scanner.exitcodes import ExitCode
from tests import pki
from tests.helpers import ServerFiles, python_tls_server, run_tlsgate, server_context


@pytest.fixture(scope="module")
def mq_files(tmp_path_factory: pytest.TempPathFactory) -> ServerFiles:
    """A queue manager's certificate: its DN and a DNS name, but not the address it is scanned by."""
    directory = tmp_path_factory.mktemp("mq")
    chain = pki.hierarchy("mq", sans=("qm1.mq.internal",))
    leaf = pki.issue(
        pki.name("QM1", organization="Example Bank", country="GB"),
        issuer=chain.intermediate,
        days=365,
        sans=("qm1.mq.internal",),
        eku=pki.SERVER_AUTH,
    )
    cert, key = leaf.write(directory, "qm1", chain=[chain.intermediate])
    ca = directory / "ca.pem"
    ca.write_bytes(chain.root.pem)
    return ServerFiles(cert=cert, key=key, ca=ca)


@pytest.fixture(scope="module")
def queue_manager(mq_files: ServerFiles) -> Iterator[str]:
    with python_tls_server(server_context(mq_files, ssl.TLSVersion.TLSv1_2)) as server:
        yield server.target


def _certificate(report: Path) -> dict[str, object]:
    (target,) = json.loads(report.read_text())["targets"]
    certificate: dict[str, object] = target["facts"]["certificate"]
    return certificate


def _file_store(certificate: dict[str, object]) -> dict[str, object]:
    trust = certificate["trust"]
    assert isinstance(trust, list)
    (found,) = [t for t in trust if str(t["store"]).startswith("file:")]
    return dict(found)


def test_trust_checks_the_name_by_default(queue_manager: str, mq_files: ServerFiles, tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    run = run_tlsgate("scan", queue_manager, "--ca-file", str(mq_files.ca), "--offline", "--json", str(report))
    assert run.code == ExitCode.POLICY_FAILED, run.stderr
    certificate = _certificate(report)
    assert certificate["trust_name"] == "127.0.0.1"
    store = _file_store(certificate)
    assert store["trusted"] is False
    assert store["reason"] == "name_mismatch"
    assert "qm1.mq.internal" in str(store["detail"])


def test_no_name_check_judges_the_chain_alone(queue_manager: str, mq_files: ServerFiles, tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    run = run_tlsgate(
        "scan", queue_manager, "--ca-file", str(mq_files.ca), "--offline", "--no-name-check", "--json", str(report)
    )
    assert run.code in (ExitCode.OK, ExitCode.POLICY_FAILED), run.stderr
    certificate = _certificate(report)
    assert certificate["trust_name"] is None
    store = _file_store(certificate)
    assert store["trusted"] is True, store
    assert store["reason"] is None
    assert certificate["hostname_match"] == {"status": "ok", "value": False, "error": None, "source": "tlsgate"}


def test_no_name_check_does_not_excuse_an_untrusted_chain(queue_manager: str, tmp_path: Path) -> None:
    """Without the queue manager's CA the chain stays untrusted: only the name is left out of the judgement."""
    other = pki.hierarchy("other")
    ca = tmp_path / "other-ca.pem"
    ca.write_bytes(other.root.pem)
    report = tmp_path / "r.json"
    run_tlsgate("scan", queue_manager, "--ca-file", str(ca), "--offline", "--no-name-check", "--json", str(report))
    store = _file_store(_certificate(report))
    assert store["trusted"] is False
    assert store["reason"] != "name_mismatch"


def test_queue_manager_pack_with_name_check_off_in_the_inventory(
    queue_manager: str, mq_files: ServerFiles, tmp_path: Path
) -> None:
    """The queue-manager-channel pack's trust rule passes when the inventory says the peer is known by its DN, and
    fails on the same server when it does not."""
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(
        "defaults:\n"
        "  packs: [queue-manager-channel]\n"
        "  params: {peer_dn_pattern: 'CN=QM1,O=Example Bank,C=GB'}\n"
        "targets:\n"
        f"  - {{name: by-dn, target: '{queue_manager}', name_check: false}}\n"
        f"  - {{name: by-name, target: '{queue_manager}'}}\n",
        encoding="utf-8",
    )
    report = tmp_path / "r.json"
    run = run_tlsgate(
        "scan", "--inventory", str(inventory), "--ca-file", str(mq_files.ca), "--offline", "--json", str(report)
    )
    assert run.code in (ExitCode.POLICY_FAILED, ExitCode.NOT_CHECKED), run.stderr
    targets = {t["target"]: t for t in json.loads(report.read_text())["targets"]}
    statuses = {name: {f["rule"]: f["status"] for f in targets[name]["findings"]} for name in ("by-dn", "by-name")}
    assert statuses["by-dn"]["QMCHAN-001"] == "pass"
    assert statuses["by-name"]["QMCHAN-001"] == "fail"


def test_name_check_must_be_a_boolean(tmp_path: Path) -> None:
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text("targets:\n  - {target: '127.0.0.1:1', name_check: no-thanks}\n", encoding="utf-8")
    run = run_tlsgate("scan", "--inventory", str(inventory))
    assert run.code == ExitCode.USAGE
    assert run.stderr.strip() == f"tlsgate: error: {inventory}:2:41: 'name_check' must be true or false"
