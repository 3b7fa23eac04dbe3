"""A leaf without a subjectAltName is for no name (RFC 9525; CA/B BRs; browsers): the common name is not matched.

Whether the common name alone would have matched is its own fact, hostname_match_cn_only, and the trust verdict
for the name agrees with hostname_match (name_mismatch). Real servers on loopback, scanned by name with --ip.
"""

from __future__ import annotations

import json
import ssl
from pathlib import Path
from typing import Any

from scanner.exitcodes import ExitCode
from tests import pki
from tests.helpers import ServerFiles, python_tls_server, run_tlsgate, server_context

NAME = "legacy.test"


def _scan(tmp_path: Path, cn: str, sans: tuple[str, ...]) -> dict[str, Any]:
    """Scan NAME on a server whose leaf has common name ``cn`` and subjectAltName ``sans`` (none when empty)."""
    chain = pki.hierarchy("cn", sans=(NAME,))
    leaf = pki.issue(pki.name(cn), issuer=chain.intermediate, days=90, sans=sans, eku=pki.SERVER_AUTH)
    cert, key = leaf.write(tmp_path, "leaf", chain=[chain.intermediate])
    ca = tmp_path / "ca.pem"
    ca.write_bytes(chain.root.pem)
    report = tmp_path / "r.json"
    files = ServerFiles(cert=cert, key=key, ca=ca)
    with python_tls_server(server_context(files, ssl.TLSVersion.TLSv1_2)) as server:
        run = run_tlsgate(
            "scan", f"{NAME}:{server.port}", "--ip", "127.0.0.1", "--ca-file", str(ca), "--offline",
            "--json", str(report),
        )  # fmt: skip
    assert run.code in (ExitCode.OK, ExitCode.POLICY_FAILED), run.stderr
    (target,) = json.loads(report.read_text())["targets"]
    certificate: dict[str, Any] = target["facts"]["certificate"]
    return certificate


def _file_store(certificate: dict[str, Any]) -> dict[str, Any]:
    (found,) = [t for t in certificate["trust"] if t["store"].startswith("file:")]
    return dict(found)


def test_common_name_only_leaf_does_not_match(tmp_path: Path) -> None:
    """CN=legacy.test and no subjectAltName: no match (its own reason), the CN alone would match, not trusted for
    the name."""
    certificate = _scan(tmp_path, NAME, ())
    assert certificate["hostname_match"]["value"] is False
    assert certificate["hostname_mismatch"] == "no_subject_alt_name"
    assert certificate["hostname_match_cn_only"] == {"status": "ok", "value": True, "error": None, "source": "tlsgate"}
    store = _file_store(certificate)
    assert (store["trusted"], store["reason"]) == (False, "name_mismatch")
    assert "no subjectAltName" in store["detail"] and NAME in store["detail"]


def test_common_name_only_leaf_for_another_name(tmp_path: Path) -> None:
    """CN=other.test and no subjectAltName: neither the SAN rule nor the legacy CN rule matches."""
    certificate = _scan(tmp_path, "other.test", ())
    assert certificate["hostname_match"]["value"] is False
    assert certificate["hostname_mismatch"] == "no_subject_alt_name"
    assert certificate["hostname_match_cn_only"]["value"] is False
    assert _file_store(certificate)["reason"] == "name_mismatch"


def test_leaf_with_subject_alt_name_is_matched_by_it_alone(tmp_path: Path) -> None:
    """A subjectAltName for the name: it matches, the store trusts it, and the CN question does not arise."""
    certificate = _scan(tmp_path, "something-else", (NAME,))
    assert certificate["hostname_match"]["value"] is True
    assert certificate["hostname_mismatch"] is None
    cn_only = certificate["hostname_match_cn_only"]
    assert cn_only["status"] == "not_probed" and cn_only["error"]["error_class"] == "not_applicable"
    assert _file_store(certificate)["trusted"] is True


def test_subject_alt_name_for_another_name(tmp_path: Path) -> None:
    """A subjectAltName that names another host, with the scanned name in the CN: no_matching_name, the CN unused."""
    certificate = _scan(tmp_path, NAME, ("other.test",))
    assert certificate["hostname_match"]["value"] is False
    assert certificate["hostname_mismatch"] == "no_matching_name"
    assert certificate["hostname_match_cn_only"]["status"] == "not_probed"
    assert _file_store(certificate)["reason"] == "name_mismatch"
