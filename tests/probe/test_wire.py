"""Raw ClientHellos against real servers: each kind of reply is read and typed, and no network condition raises."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from collections.abc import Iterator

import pytest
from cryptography import x509

from scanner.demo import LoopbackServer
from scanner.facts import ErrorClass, ProtocolVersion
from scanner.probe.wire.codes import EXT_KEY_SHARE, EXT_SUPPORTED_VERSIONS, GROUP_X25519
from scanner.probe.wire.der import describe_name
from scanner.probe.wire.hello import build_client_hello
from scanner.probe.wire.messages import (
    Alert,
    Closed,
    ConnectFailed,
    HelloRetryRequest,
    NotTls,
    ServerHello,
    ServerReply,
    TimedOut,
)
from scanner.probe.wire.records import exchange
from tests.helpers import issue_certificate, loopback_endpoint, openssl_server

TLS12 = ProtocolVersion.TLSv1_2
TLS13 = ProtocolVersion.TLSv1_3


@pytest.fixture(scope="module")
def rsa_cert(tmp_path_factory):
    return issue_certificate(tmp_path_factory.mktemp("tlswire"), "wire", key_type="rsa2048")


def _ask(port: int, hello: bytes, timeout: float = 3.0, **kwargs) -> ServerReply:
    return exchange(loopback_endpoint(port, timeout=timeout), hello, **kwargs)


def test_tls12_flight_from_openssl(rsa_cert):
    """A TLS 1.2 ServerHello, the served certificate, the ECDHE curve and ServerHelloDone are read from s_server."""
    with openssl_server(
        rsa_cert.cert, rsa_cert.key, "-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256", "-groups", "P-256"
    ) as port:
        reply = _ask(port, build_client_hello(TLS12, [0x009C, 0xC02F], server_name="localhost"))
    assert reply.end is None
    hello = reply.server_hello
    assert isinstance(hello, ServerHello)
    assert (hello.protocol, hello.cipher_suite) == (TLS12, 0xC02F)
    assert reply.certificate is not None
    leaf = x509.load_der_x509_certificate(reply.certificate.certificates[0])
    assert leaf == rsa_cert.leaf
    assert reply.server_key_exchange is not None
    assert reply.server_key_exchange.named_group == 0x0017
    assert reply.server_key_exchange.ephemeral_key == "ECDH secp256r1 256"
    assert reply.server_hello_done
    assert reply.hello_length == len(build_client_hello(TLS12, [0x009C, 0xC02F], server_name="localhost"))


def test_dhe_prime_size_and_client_ca_names(rsa_cert):
    """A DHE ServerKeyExchange gives the prime's size, and a CertificateRequest the acceptable CA names."""
    with openssl_server(
        rsa_cert.cert, rsa_cert.key, "-tls1_2", "-cipher", "DHE-RSA-AES128-GCM-SHA256",
        "-verify", "1", "-CAfile", str(rsa_cert.ca),
    ) as port:  # fmt: skip
        reply = _ask(port, build_client_hello(TLS12, [0x009E]))
    assert reply.server_key_exchange is not None
    assert reply.server_key_exchange.dh_prime_bits == 2048
    assert reply.server_key_exchange.ephemeral_key == "DH 2048"
    assert reply.certificate_request is not None
    assert reply.certificate_request.ca_names == ("CN=wire test CA",)
    assert reply.server_hello_done


def test_tls13_server_hello_from_python_ssl(tls13_server):
    """A TLS 1.3 ServerHello answers our x25519 key share: version from supported_versions, group from key_share."""
    reply = _ask(tls13_server.port, build_client_hello(TLS13, [0x1301, 0x1302, 0x1303], server_name="localhost"))
    hello = reply.server_hello
    assert isinstance(hello, ServerHello)
    assert hello.legacy_version == 0x0303 and hello.version == 0x0304 and hello.protocol == TLS13
    assert hello.cipher_suite in (0x1301, 0x1302, 0x1303)
    assert hello.key_share_group == GROUP_X25519
    assert reply.end is None and reply.certificate is None  # everything after it is encrypted


def test_hello_retry_request_names_the_group(rsa_cert):
    """A TLS 1.3 server that wants another group answers with a HelloRetryRequest naming it and the suite."""
    with openssl_server(rsa_cert.cert, rsa_cert.key, "-tls1_3", "-groups", "P-384") as port:
        reply = _ask(port, build_client_hello(TLS13, [0x1302], groups=(0x001D, 0x0018)))
    retry = reply.hello_retry_request
    assert isinstance(retry, HelloRetryRequest)
    assert (retry.selected_group, retry.cipher_suite, retry.protocol) == (0x0018, 0x1302, TLS13)
    assert reply.server_hello is None and reply.selected_suite == 0x1302


def test_alpn_is_read(rsa_cert):
    """The protocol a server selects with ALPN is read from its ServerHello."""
    with openssl_server(rsa_cert.cert, rsa_cert.key, "-tls1_2", "-alpn", "h2,http/1.1") as port:
        reply = _ask(port, build_client_hello(TLS12, [0xC02F, 0xC030], alpn=["h2", "http/1.1"]))
    assert reply.server_hello is not None and reply.server_hello.alpn == "h2"


def test_no_shared_suite_is_a_handshake_failure_alert(rsa_cert):
    """A server with no suite in common answers with a fatal handshake_failure alert, read as such."""
    with openssl_server(rsa_cert.cert, rsa_cert.key, "-tls1_2", "-cipher", "AES128-SHA") as port:
        reply = _ask(port, build_client_hello(TLS12, [0xC02F]))
    assert reply.end == Alert(level=2, description=40)
    assert reply.alert is not None and reply.alert.name == "handshake_failure" and reply.alert.fatal
    assert reply.messages == ()


def test_unsupported_version_is_a_protocol_version_alert(tls13_server):
    """A TLS 1.3-only server answers a TLS 1.0 ClientHello with a protocol_version alert."""
    reply = _ask(tls13_server.port, build_client_hello(ProtocolVersion.TLSv1_0, [0x002F, 0xC013]))
    assert isinstance(reply.end, Alert) and reply.end.name == "protocol_version"


@contextlib.contextmanager
def _closing_server(reset: bool) -> Iterator[LoopbackServer]:
    def handle(conn: socket.socket) -> None:
        conn.recv(65536)
        if reset:
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    with LoopbackServer(handle) as server:
        yield server


@pytest.mark.parametrize("reset", [True, False], ids=["reset", "eof"])
def test_reset_and_end_of_stream_are_told_apart(reset):
    """A server that drops the connection after the hello yields Closed, with reset telling RST from FIN."""
    with _closing_server(reset) as server:
        reply = _ask(server.port, build_client_hello(TLS12, [0xC02F]))
    assert isinstance(reply.end, Closed)
    assert reply.end.reset is reset
    assert reply.messages == ()


def test_silent_server_times_out(silent_server):
    """A server that never answers yields TimedOut after about the timeout, not an exception or a hang."""
    started = time.monotonic()
    reply = _ask(silent_server.port, build_client_hello(TLS12, [0xC02F]), timeout=0.5)
    assert isinstance(reply.end, TimedOut)
    assert reply.end.received == 0
    assert 0.4 < time.monotonic() - started < 3


def test_refused_port_is_a_connect_failure(refused_port):
    """Nothing listening: ConnectFailed with the refused error class."""
    reply = _ask(refused_port, build_client_hello(TLS12, [0xC02F]))
    assert isinstance(reply.end, ConnectFailed)
    assert reply.end.error.error_class == ErrorClass.refused


def test_plain_http_is_not_tls(http_server):
    """A server that answers with HTTP is NotTls, quoting what it said."""
    reply = _ask(http_server.port, build_client_hello(TLS12, [0xC02F]))
    assert isinstance(reply.end, NotTls)
    assert reply.end.describe() == "plain text 'HTTP/1.1 400 Bad Request'"


@contextlib.contextmanager
def _fragmenting_proxy(upstream_port: int) -> Iterator[LoopbackServer]:
    """Forwards the hello, then re-frames the server's handshake records into 7-byte records sent a few bytes at a
    time, so that messages span records and records span TCP reads."""

    def handle(conn: socket.socket) -> None:
        hello = conn.recv(65536)
        with socket.create_connection(("127.0.0.1", upstream_port), timeout=5) as upstream:
            upstream.sendall(hello)
            data = b""
            upstream.settimeout(1)
            with contextlib.suppress(OSError):
                while chunk := upstream.recv(65536):
                    data += chunk
            out = b""
            pos = 0
            while pos + 5 <= len(data):
                content_type, version, length = (
                    data[pos],
                    data[pos + 1 : pos + 3],
                    int.from_bytes(data[pos + 3 : pos + 5]),
                )
                payload = data[pos + 5 : pos + 5 + length]
                pos += 5 + length
                for i in range(0, len(payload), 7):
                    piece = payload[i : i + 7]
                    out += bytes([content_type]) + version + len(piece).to_bytes(2, "big") + piece
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for i in range(0, len(out), 3):
                conn.sendall(out[i : i + 3])
                if i % 300 == 0:
                    time.sleep(0.001)
            threading.Event().wait(0.5)

    with LoopbackServer(handle) as server:
        yield server


def test_flight_fragmented_across_records_and_reads(rsa_cert):
    """Handshake messages split over many tiny records and TCP reads parse as if they came whole."""
    with (
        openssl_server(rsa_cert.cert, rsa_cert.key, "-tls1_2", "-cipher", "ECDHE-RSA-AES256-GCM-SHA384") as port,
        _fragmenting_proxy(port) as proxy,
    ):
        reply = _ask(proxy.port, build_client_hello(TLS12, [0xC030]))
    assert reply.end is None, reply.end
    assert reply.server_hello is not None and reply.server_hello.cipher_suite == 0xC030
    assert reply.certificate is not None
    assert x509.load_der_x509_certificate(reply.certificate.certificates[0]) == rsa_cert.leaf
    assert reply.server_key_exchange is not None and reply.server_hello_done


def test_client_hello_shape():
    """Our hellos carry what each version needs: supported_versions and a key share for 1.3, none for 1.2, and
    padding keeps them out of the 256-511 byte range."""
    tls13 = build_client_hello(TLS13, [0x1301], server_name="example.test")
    assert tls13[:3] == b"\x16\x03\x01" and tls13[9:11] == b"\x03\x03"
    assert struct.pack("!HH", EXT_SUPPORTED_VERSIONS, 3) + b"\x02\x03\x04" in tls13
    assert struct.pack("!H", EXT_KEY_SHARE) + struct.pack("!HHH", 38, 36, 0x001D) in tls13
    assert b"example.test" in tls13
    tls10 = build_client_hello(ProtocolVersion.TLSv1_0, [0x002F])
    assert tls10[9:11] == b"\x03\x01"
    assert struct.pack("!H", EXT_SUPPORTED_VERSIONS) not in tls10[5 + 4 + 2 + 32 + 1 + 4 + 2 :]
    for count in range(0, 400, 7):
        handshake_length = len(build_client_hello(TLS12, list(range(1, count + 1)))) - 5
        assert not 256 <= handshake_length < 512


def test_hello_over_16k_spans_records_and_is_answered(rsa_cert):
    """A ClientHello longer than one record (2^14 bytes) is sent as several records, and a server answers it."""
    junk = [c for c in range(0x0100, 0x2200) if not 0x1300 <= c <= 0x13FF]  # unassigned code points
    hello = build_client_hello(TLS12, [*junk, 0xC02F])
    assert len(hello) > 2**14 and hello.count(b"\x16\x03\x01") >= 2
    with openssl_server(rsa_cert.cert, rsa_cert.key, "-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256") as port:
        reply = _ask(port, hello)
    assert reply.selected_suite == 0xC02F


def test_ca_names_decode_like_cryptography():
    """Distinguished names from a CertificateRequest read as cryptography writes them (RFC 4514), or as hex."""
    from cryptography.x509.oid import NameOID  # noqa: PLC0415

    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "DE"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Äpfel, Birnen + Co"),
            x509.NameAttribute(NameOID.COMMON_NAME, "Issuing CA"),
            x509.NameAttribute(NameOID.EMAIL_ADDRESS, "pki@example.test"),
        ]
    )
    assert describe_name(name.public_bytes()) == name.rfc4514_string()
    assert describe_name(b"\x30\x03\x31\x01") == "der:30033101"
