"""SSL 2.0 in one connection: the CLIENT-HELLO offers every cipher kind, the SERVER-HELLO lists the shared ones.

No maintained server speaks SSL 2.0 any more (OpenSSL, GnuTLS and NSS removed it), so the accepting side is a
small responder written here from the SSL 2.0 specification: it reads the CLIENT-HELLO off the wire and answers
with a SERVER-HELLO carrying a real certificate and the cipher kinds it shares — the two messages the probe
relies on. The refusing side is what real servers do: openssl s_server, gnutls-serv and Python's ssl module.
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import struct
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from scanner.demo import LoopbackServer
from scanner.exitcodes import ExitCode
from scanner.facts import ErrorClass, ProtocolVersion
from scanner.probe.checks import sslv2
from scanner.probe.connect.endpoint import Endpoint
from scanner.targets import parse_target
from tests import pki
from tests.helpers import (
    ServerFiles,
    gnutls_server,
    openssl_server,
    python_tls_server,
    run_tlsgate,
    server_context,
)

RC4_128, RC4_EXPORT, DES3 = 0x010080, 0x020080, 0x0700C0


def _read_client_hello(conn: socket.socket) -> tuple[int, list[int]]:
    """(client version, offered cipher kinds) of an SSL 2.0 CLIENT-HELLO. A TLS ClientHello gets what an SSL
    2.0-only server sends back, an SSL 2.0 ERROR message, and the connection ends."""
    header = conn.recv(2, socket.MSG_WAITALL)
    if header[:1] == b"\x16":
        rest = conn.recv(3, socket.MSG_WAITALL)
        conn.recv(int.from_bytes(rest[1:3], "big"), socket.MSG_WAITALL)
        conn.sendall(_record(bytes([sslv2.MSG_ERROR, 0x00, 0x01])))
        raise ConnectionAbortedError("a TLS hello, refused")
    assert header[0] & 0x80, "not an SSL 2.0 record"
    body = conn.recv(((header[0] & 0x7F) << 8) | header[1], socket.MSG_WAITALL)
    msg, version, specs_len, session_len, challenge_len = struct.unpack("!BHHHH", body[:9])
    assert msg == sslv2.MSG_CLIENT_HELLO
    assert len(body) == 9 + specs_len + session_len + challenge_len
    specs = body[9 : 9 + specs_len]
    return version, [int.from_bytes(specs[i : i + 3], "big") for i in range(0, specs_len, 3)]


def _record(body: bytes) -> bytes:
    return struct.pack("!H", 0x8000 | len(body)) + body


def ssl2_server(certificate: bytes, supported: list[int], seen: list[list[int]]) -> Callable[[socket.socket], None]:
    """Answers a CLIENT-HELLO with a SERVER-HELLO listing the kinds both sides have, in the client's order."""

    def handle(conn: socket.socket) -> None:
        version, offered = _read_client_hello(conn)
        assert version == 0x0002
        seen.append(offered)
        shared = b"".join(kind.to_bytes(3, "big") for kind in offered if kind in supported)
        connection_id = b"\x11" * 16
        body = struct.pack("!BBBHHHH", sslv2.MSG_SERVER_HELLO, 0, 1, 0x0002, len(certificate), len(shared),
                           len(connection_id)) + certificate + shared + connection_id  # fmt: skip
        conn.sendall(_record(body))
        with contextlib.suppress(OSError):
            conn.recv(1024)

    return handle


@pytest.fixture(scope="module")
def leaf_der() -> bytes:
    return pki.hierarchy("sslv2").leaf.cert.public_bytes(Encoding.DER)


def _endpoint(target: str, timeout: float = 3) -> Endpoint:
    host = target.rpartition(":")[0]
    return Endpoint(target=parse_target(target), address=host, server_name=None, timeout=timeout)


@contextlib.contextmanager
def responder(handler: Callable[[socket.socket], None]) -> Iterator[str]:
    with LoopbackServer(handler) as server:
        yield server.target


def test_server_hello_lists_the_accepted_ciphers(leaf_der: bytes) -> None:
    seen: list[list[int]] = []
    with responder(ssl2_server(leaf_der, [DES3, RC4_EXPORT, RC4_128], seen)) as target:
        support = sslv2.probe_sslv2(_endpoint(target))
    assert seen == [[cipher.kind for cipher in sslv2.CIPHERS]], "every SSL 2.0 cipher kind offered, in one hello"
    assert support.version == ProtocolVersion.SSLv2
    assert support.status == "accepted"
    names = [suite.name for suite in support.cipher_suites]
    assert names == ["SSL_CK_RC4_128_WITH_MD5", "SSL_CK_RC4_128_EXPORT40_WITH_MD5", "SSL_CK_DES_192_EDE3_CBC_WITH_MD5"]
    export = support.cipher_suites[1]
    assert (export.openssl_name, export.key_bits, export.export, export.mac) == ("EXP-RC4-MD5", 40, True, "MD5")


def test_server_hello_with_no_shared_cipher_is_not_accepted(leaf_der: bytes) -> None:
    with responder(ssl2_server(leaf_der, [], [])) as target:
        support = sslv2.probe_sslv2(_endpoint(target))
    assert support.status == "not_accepted"
    assert support.cipher_suites == []


def test_ssl2_error_message_is_not_accepted() -> None:
    def refuse(conn: socket.socket) -> None:
        _read_client_hello(conn)
        conn.sendall(_record(bytes([sslv2.MSG_ERROR, 0x00, 0x01])))  # NO-CIPHER-ERROR

    with responder(refuse) as target:
        assert sslv2.probe_sslv2(_endpoint(target)).status == "not_accepted"


def test_garbled_server_hello_is_an_error_not_a_verdict() -> None:
    def garble(conn: socket.socket) -> None:
        _read_client_hello(conn)
        conn.sendall(_record(bytes([sslv2.MSG_SERVER_HELLO]) + b"\x00" * 20))

    with responder(garble) as target:
        support = sslv2.probe_sslv2(_endpoint(target))
    assert support.status == "error"
    assert support.error is not None and support.error.error_class == ErrorClass.probe_failed
    assert "lengths do not add up" in support.error.message


def test_silence_is_a_timeout_not_a_refusal() -> None:
    def silent(conn: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while conn.recv(1024):
                pass

    with responder(silent) as target:
        support = sslv2.probe_sslv2(_endpoint(target, timeout=0.5))
    assert support.status == "error"
    assert support.error is not None and support.error.error_class == ErrorClass.timeout


def test_refused_port_is_a_connect_error(refused_port: int) -> None:
    support = sslv2.probe_sslv2(_endpoint(f"127.0.0.1:{refused_port}"))
    assert support.status == "error"
    assert support.error is not None and support.error.error_class == ErrorClass.refused


@pytest.fixture(scope="module")
def modern_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    chain = pki.hierarchy("modern")
    return chain.leaf.write(tmp_path_factory.mktemp("modern"), "leaf", chain=[chain.intermediate])


@pytest.mark.parametrize("args", [(), ("-cipher", "ALL:@SECLEVEL=0", "-min_protocol", "SSLv3")])
def test_openssl_refuses_ssl2(modern_files: tuple[Path, Path], args: tuple[str, ...]) -> None:
    cert, key = modern_files
    with openssl_server(cert, key, *args) as port:
        support = sslv2.probe_sslv2(_endpoint(f"127.0.0.1:{port}"))
    assert support.status == "not_accepted", support.error


def test_gnutls_and_python_refuse_ssl2(modern_files: tuple[Path, Path]) -> None:
    cert, key = modern_files
    with gnutls_server(cert, key) as port:
        assert sslv2.probe_sslv2(_endpoint(f"127.0.0.1:{port}")).status == "not_accepted"
    files = ServerFiles(cert=cert, key=key, ca=cert)
    with python_tls_server(server_context(files, ssl.TLSVersion.TLSv1_2)) as server:
        assert sslv2.probe_sslv2(_endpoint(server.target)).status == "not_accepted"


def test_scan_reports_ssl2_from_the_own_probe(leaf_der: bytes, tmp_path: Path) -> None:
    """Through the whole command line: an SSL 2.0-only server is a TLS peer that accepts SSL 2.0 and no other
    version, and the legacy-protocol pack fails it."""
    report = tmp_path / "r.json"
    with responder(ssl2_server(leaf_der, [RC4_128, DES3], [])) as target:
        run = run_tlsgate("scan", target, "--pack", "tls12-plus", "--json", str(report), "--timeout", "2")
    assert run.code == ExitCode.POLICY_FAILED, run.stderr
    (entry,) = json.loads(report.read_text())["targets"]
    assert entry["facts"]["status"] == "ok"
    protocols = {p["version"]: p for p in entry["facts"]["protocols"]}
    assert {v: p["status"] for v, p in protocols.items()} == {
        "SSLv2": "accepted", "SSLv3": "not_accepted", "TLSv1.0": "not_accepted", "TLSv1.1": "not_accepted",
        "TLSv1.2": "not_accepted", "TLSv1.3": "not_accepted",
    }  # fmt: skip
    assert [s["name"] for s in protocols["SSLv2"]["cipher_suites"]] == [
        "SSL_CK_RC4_128_WITH_MD5",
        "SSL_CK_DES_192_EDE3_CBC_WITH_MD5",
    ]
    findings = {f["rule"]: f["status"] for f in entry["findings"]}
    assert findings["TLS12PLUS-001"] == "fail"
