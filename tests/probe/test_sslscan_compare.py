"""tlsgate's protocol and suite facts against a configured server, cross-checked with sslscan."""

from __future__ import annotations

import json
import subprocess
import xml.etree.ElementTree as ET

from scanner.probe import iana
from tests.helpers import issue_certificate, openssl_server

# What the server is configured with, per version (OpenSSL applies one TLS <= 1.2 list; GCM needs TLS 1.2).
EXPECTED = {
    "TLSv1.0": {"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "TLS_RSA_WITH_AES_256_CBC_SHA"},
    "TLSv1.1": {"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "TLS_RSA_WITH_AES_256_CBC_SHA"},
    "TLSv1.2": {
        "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
        "TLS_RSA_WITH_AES_256_CBC_SHA",
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    },
    "TLSv1.3": {"TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"},
}
SERVER_ARGS = (
    "-cipher", "ECDHE-RSA-AES128-SHA:AES256-SHA:ECDHE-RSA-AES256-GCM-SHA384:@SECLEVEL=0",
    "-ciphersuites", "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256",
)  # fmt: skip


def _sslscan(port: int) -> dict[str, set[str]]:
    """sslscan's accepted suites per version, by IANA name (from the code points it reports)."""
    out = subprocess.run(
        ["sslscan", "--xml=-", "--no-colour", f"127.0.0.1:{port}"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    found: dict[str, set[str]] = {}
    # sslscan's own output about our own loopback server: not untrusted input
    for cipher in ET.fromstring(out[out.index("<?xml") :]).iter("cipher"):  # noqa: S314
        info = iana.cipher_suite(int(cipher.attrib["id"], 16))
        assert info is not None, cipher.attrib
        found.setdefault(cipher.attrib["sslversion"], set()).add(info.name)
    return found


def test_facts_match_configuration_and_sslscan(tlsgate, tmp_path):
    """TLS 1.0-1.3 with a handful of suites each: the facts list exactly those, and sslscan agrees."""
    issued = issue_certificate(tmp_path, "compare", key_type="rsa2048")
    with openssl_server(issued.cert, issued.key, *SERVER_ARGS) as port:
        run = tlsgate("scan", f"127.0.0.1:{port}", "--json", str(tmp_path / "r.json"))
        theirs = _sslscan(port)
    assert run.code == 1, run.stderr  # it accepts TLS 1.0-1.2, so tls13-only fails
    protocols = json.loads((tmp_path / "r.json").read_text())["targets"][0]["facts"]["protocols"]
    ours = {p["version"]: {s["name"] for s in p["cipher_suites"]} for p in protocols if p["status"] == "accepted"}
    assert {p["version"]: p["status"] for p in protocols}["SSLv3"] == "not_accepted"
    assert ours == EXPECTED
    assert ours == theirs
