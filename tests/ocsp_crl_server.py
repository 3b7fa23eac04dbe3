"""A loopback OCSP responder and CRL server for revocation tests, built with cryptography's builders.

Start it first (it picks a free port), build the PKI with its URLs, then register each issuing CA::

    with RevocationServer() as server:
        pki = hierarchy("x", ocsp_url=server.ocsp_url, crl_url=server.crl_url("intermediate"))
        server.add_issuer("intermediate", pki.intermediate)
        server.revoke(pki.leaf, x509.ReasonFlags.key_compromise)

The OCSP responder answers POSTs at ``/ocsp`` for every registered issuer (found by the key hash of the
request's CertID): ``revoked`` for serials the test revoked, ``unknown`` for serials it ``forget``s, ``good``
otherwise. ``/crl/<name>.crl`` is a fresh CRL of issuer ``<name>`` listing its revoked serials. Every request is
counted, so a test can tell a cache hit from a fetch. Knobs a test may set: ``validity`` (thisUpdate/nextUpdate
offsets), ``responder`` (a delegated OCSP signer), ``signer_key`` (a wrong key), ``crl_pem``, ``fail`` (HTTP
status per path) and ``delay`` (seconds before answering).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed448, ed25519
from cryptography.x509 import ocsp

from tests.pki import Issued, issue


def _hash_for(key: Any) -> hashes.HashAlgorithm | None:
    return None if isinstance(key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey) else hashes.SHA256()


def key_hash(cert: x509.Certificate, algorithm: hashes.HashAlgorithm) -> bytes:
    """Hash of the subjectPublicKey BIT STRING, as in an OCSP CertID or a byKey responder ID."""
    spki = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    # The BIT STRING is the last element of SubjectPublicKeyInfo; SubjectKeyIdentifier computes exactly that
    # for SHA-1, and for other hashes we parse the DER just enough.
    if isinstance(algorithm, hashes.SHA1):
        return x509.SubjectKeyIdentifier.from_public_key(cert.public_key()).digest
    bits = _last_tlv_value(spki)[1:]  # skip the unused-bits octet
    digest = hashes.Hash(algorithm)
    digest.update(bits)
    return digest.finalize()


def _last_tlv_value(der: bytes) -> bytes:
    def header(data: bytes, pos: int) -> tuple[int, int]:
        length = data[pos + 1]
        if length < 0x80:
            return pos + 2, length
        count = length & 0x7F
        return pos + 2 + count, int.from_bytes(data[pos + 2 : pos + 2 + count], "big")

    start, length = header(der, 0)  # the outer SEQUENCE
    pos, end = start, start + length
    value = b""
    while pos < end:
        body, size = header(der, pos)
        value = der[body : body + size]
        pos = body + size
    return value


@dataclass
class Revocation:
    reason: x509.ReasonFlags | None
    when: dt.datetime


@dataclass
class Authority:
    name: str
    issued: Issued
    revoked: dict[int, Revocation] = field(default_factory=dict)
    unknown: set[int] = field(default_factory=set)


class RevocationServer:
    """An HTTP server on 127.0.0.1 in a thread: OCSP responder and CRL distribution point for test CAs."""

    def __init__(self) -> None:
        self.authorities: dict[str, Authority] = {}
        self.requests: Counter[str] = Counter()  # "ocsp" / "crl" / "other" -> requests received
        self.validity: tuple[dt.timedelta, dt.timedelta | None] = (dt.timedelta(minutes=-5), dt.timedelta(days=1))
        self.responder: Issued | None = None  # a delegated OCSP signer (EKU OCSPSigning) instead of the CA
        self.signer_key: Any = None  # sign with this key instead (a forged response)
        self.crl_pem = False
        self.fail: dict[str, int] = {}  # path -> HTTP status to answer instead
        self.delay = 0.0
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self.port = int(self._httpd.server_address[1])
        self.base = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    # -- lifecycle -------------------------------------------------------------------------------------------
    def __enter__(self) -> RevocationServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._release.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)

    # -- what a test controls --------------------------------------------------------------------------------
    @property
    def ocsp_url(self) -> str:
        return f"{self.base}/ocsp"

    def crl_url(self, name: str) -> str:
        return f"{self.base}/crl/{name}.crl"

    def add_issuer(self, name: str, issued: Issued) -> None:
        self.authorities[name] = Authority(name, issued)

    def _authority_of(self, cert: x509.Certificate) -> Authority:
        for authority in self.authorities.values():
            if authority.issued.cert.subject == cert.issuer:
                return authority
        raise KeyError(f"no registered issuer for {cert.subject.rfc4514_string()}")

    def revoke(
        self,
        issued: Issued | x509.Certificate,
        reason: x509.ReasonFlags | None = x509.ReasonFlags.key_compromise,
        when: dt.datetime | None = None,
    ) -> dt.datetime:
        """Revoke a certificate (at ``when``, default one hour ago, to the second); returns the time."""
        cert = issued.cert if isinstance(issued, Issued) else issued
        moment = (when or dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).replace(microsecond=0)
        self._authority_of(cert).revoked[cert.serial_number] = Revocation(reason, moment)
        return moment

    def forget(self, issued: Issued | x509.Certificate) -> None:
        """The responder answers ``unknown`` for this certificate."""
        cert = issued.cert if isinstance(issued, Issued) else issued
        self._authority_of(cert).unknown.add(cert.serial_number)

    def count(self, kind: str) -> int:
        with self._lock:
            return self.requests[kind]

    # -- responses -------------------------------------------------------------------------------------------
    def ocsp_response(
        self,
        cert: x509.Certificate,
        *,
        nonce: bytes | None = None,
        validity: tuple[dt.timedelta, dt.timedelta | None] | None = None,
    ) -> bytes:
        """A DER OCSP response for ``cert`` as this responder would answer now (also what a server staples)."""
        authority = self._authority_of(cert)
        sha1 = hashes.SHA1()  # noqa: S303 - what OCSP CertIDs use
        return self._build_ocsp(
            authority, cert.serial_number, sha1, key_hash(authority.issued.cert, sha1), nonce, validity,
            name_hash=self._name_hash(authority.issued.cert, sha1),
        )  # fmt: skip

    @staticmethod
    def _name_hash(issuer: x509.Certificate, algorithm: hashes.HashAlgorithm) -> bytes:
        digest = hashes.Hash(algorithm)
        digest.update(issuer.subject.public_bytes())
        return digest.finalize()

    def _build_ocsp(
        self,
        authority: Authority,
        serial: int,
        algorithm: hashes.HashAlgorithm,
        issuer_key_hash: bytes,
        nonce: bytes | None,
        validity: tuple[dt.timedelta, dt.timedelta | None] | None,
        *,
        name_hash: bytes,
    ) -> bytes:
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        start, end = validity or self.validity
        revocation = authority.revoked.get(serial)
        if revocation is not None:
            status = ocsp.OCSPCertStatus.REVOKED
        elif serial in authority.unknown:
            status = ocsp.OCSPCertStatus.UNKNOWN
        else:
            status = ocsp.OCSPCertStatus.GOOD
        builder = ocsp.OCSPResponseBuilder().add_response_by_hash(
            issuer_name_hash=name_hash,
            issuer_key_hash=issuer_key_hash,
            serial_number=serial,
            algorithm=algorithm,
            cert_status=status,
            this_update=now + start,
            next_update=now + end if end is not None else None,
            revocation_time=revocation.when if revocation else None,
            revocation_reason=revocation.reason if revocation else None,
        )
        signer = self.responder or authority.issued
        if self.signer_key is not None:
            # A forgery: cryptography signs only with the responder certificate's key, so name an impostor
            # certificate carrying the real signer's name (the responder ID then names the real signer).
            signer = issue(signer.cert.subject, key=self.signer_key)
            builder = builder.responder_id(ocsp.OCSPResponderEncoding.NAME, signer.cert)
        else:
            builder = builder.responder_id(ocsp.OCSPResponderEncoding.HASH, signer.cert)
        if self.responder is not None:
            builder = builder.certificates([self.responder.cert])
        if nonce is not None:
            builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
        response = builder.sign(signer.key, _hash_for(signer.key))
        return response.public_bytes(serialization.Encoding.DER)

    def _answer_ocsp(self, body: bytes) -> bytes:
        try:
            request = ocsp.load_der_ocsp_request(body)
        except ValueError:
            return ocsp.OCSPResponseBuilder.build_unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST).public_bytes(
                serialization.Encoding.DER
            )
        for authority in self.authorities.values():
            issuer = authority.issued.cert
            if key_hash(issuer, request.hash_algorithm) == request.issuer_key_hash:
                nonce = None
                with contextlib.suppress(x509.ExtensionNotFound):
                    nonce = request.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
                return self._build_ocsp(
                    authority, request.serial_number, request.hash_algorithm, request.issuer_key_hash, nonce, None,
                    name_hash=request.issuer_name_hash,
                )  # fmt: skip
        return ocsp.OCSPResponseBuilder.build_unsuccessful(ocsp.OCSPResponseStatus.UNAUTHORIZED).public_bytes(
            serialization.Encoding.DER
        )

    def crl(self, name: str) -> bytes:
        """The current CRL of issuer ``name`` (DER, or PEM when ``crl_pem``)."""
        authority = self.authorities[name]
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        start, end = self.validity
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(authority.issued.cert.subject)
            .last_update(now + start)
            .next_update(now + (end if end is not None else dt.timedelta(days=1)))
        )
        for serial, revocation in authority.revoked.items():
            entry = x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(revocation.when)
            if revocation.reason is not None:
                entry = entry.add_extension(x509.CRLReason(revocation.reason), critical=False)
            builder = builder.add_revoked_certificate(entry.build())
        key = self.signer_key or authority.issued.key
        crl = builder.sign(key, _hash_for(key))
        return crl.public_bytes(serialization.Encoding.PEM if self.crl_pem else serialization.Encoding.DER)

    # -- HTTP ------------------------------------------------------------------------------------------------
    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _send(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _prelude(self, kind: str) -> bool:
                with server._lock:
                    server.requests[kind] += 1
                if server.delay:
                    server._release.wait(server.delay)
                status = server.fail.get(self.path)
                if status is not None:
                    self._send(status, b"failing on purpose\n", "text/plain")
                    return False
                return True

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.path != "/ocsp":
                    self._prelude("other")
                    self._send(404, b"", "text/plain")
                    return
                if not self._prelude("ocsp"):
                    return
                if self.headers.get("Content-Type") != "application/ocsp-request":
                    self._send(415, b"", "text/plain")
                    return
                self._send(200, server._answer_ocsp(body), "application/ocsp-response")

            def do_GET(self) -> None:
                name = self.path.removeprefix("/crl/").removesuffix(".crl")
                if not self.path.startswith("/crl/") or name not in server.authorities:
                    self._prelude("other")
                    self._send(404, b"", "text/plain")
                    return
                if self._prelude("crl"):
                    self._send(200, server.crl(name), "application/pkix-crl")

        return Handler
