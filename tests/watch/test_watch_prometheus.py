"""A real Prometheus (Debian's package) scrapes `tlsgate watch --listen`: a loopback server with a certificate
10 days from expiry and a refused port, scanned on a 2-second schedule; Prometheus's HTTP API returns the days
remaining, the pack's verdict and the scan success of each."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.helpers import issue_certificate, openssl_server
from tests.serve.test_prometheus import PROMETHEUS, _values, prometheus, wait_for
from tests.watch.test_watch_service import Service, _inventory, _is_run
from tests.watch.test_watch_service import service as service  # noqa: PLC0414 - the fixture, re-exported

pytestmark = pytest.mark.skipif(
    not Path(PROMETHEUS).exists(), reason="prometheus is not installed (tools/install-test-servers.sh)"
)


def test_prometheus_reports_the_series_of_watched_targets(tmp_path: Path, service: list[Service]) -> None:
    rsa = issue_certificate(tmp_path, "rsa-10d", key_type="rsa2048", days=10)
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        down = f"127.0.0.1:{closed.getsockname()[1]}"  # bound, never listening: refused
        with openssl_server(rsa.cert, rsa.key) as port:
            up = f"127.0.0.1:{port}"
            inventory = _inventory(tmp_path / "inventory.yaml", up, down)
            watch = Service("--inventory", str(inventory), "--store", f"sqlite:///{tmp_path / 's.db'}", "--ca-file",
                            str(rsa.ca), "--spool", str(tmp_path / "spool"), "--listen", "127.0.0.1:0", "--timeout",
                            "3")  # fmt: skip
            service.append(watch)
            listen = watch.wait_for(lambda line: line.get("kind") == "listen")["port"]
            watch.wait_for(_is_run)
            with prometheus(tmp_path, listen, up) as url:
                days = _values(wait_for(url, "tlsgate_certificate_expires_in_seconds / 86400", 1), "target")
                success = _values(wait_for(url, 'tlsgate_scan_success{job="tlsgate"}', 2), "target")
                passed = _values(wait_for(url, "tlsgate_pack_passed", 1), "target", "pack")
            assert watch.stop() == 0
    assert set(days) == {(up,)} and 9 < days[(up,)] <= 10, days
    assert success == {(up,): 1.0, (down,): 0.0}
    assert set(passed) == {(up, "tls12-plus")}  # the inventory's defaults name the pack; none for the refused one
