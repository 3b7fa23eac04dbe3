"""Certificates outside a handshake: files a team is about to deploy or hand to a partner.

``tlsgate cert FILE...`` turns each file into Facts whose certificate group is filled from the file (PEM with
one or more certificates, DER, or PKCS#12), so the same certificate rules judge it as they would a server's.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs12

from scanner.facts import CertificateFacts, ErrorClass, Facts, ProbeError, TargetInfo
from scanner.probe.pki.certificates import certificate_facts
from scanner.probe.pki.lints import certificate_lints
from scanner.probe.pki.pins import Pin, evaluate_pins
from scanner.probe.pki.storefiles import parse_certificates


class CertFileError(ValueError):
    """A certificate file that cannot be read; the message never contains a password."""


def read_certificates(path: Path, data: bytes, password: bytes | None = None) -> list[x509.Certificate]:
    """Certificates of a PEM (several allowed), DER or PKCS#12 file's ``data``, in file order (PKCS#12: its own
    first)."""
    if not data:
        raise CertFileError(f"{path}: is empty")
    if b"-----BEGIN CERTIFICATE-----" in data:
        try:  # our PEM reader: its errors name the block and say why in one line, without a library's FAQ link
            return parse_certificates(data)
        except ValueError as exc:
            raise CertFileError(f"{path}: not a valid PEM certificate: {exc}") from None
    try:
        return [x509.load_der_x509_certificate(data)]
    except ValueError:
        pass
    try:
        bundle = pkcs12.load_pkcs12(data, password)
    except ValueError:
        hint = (
            "wrong password for PKCS#12" if password else "not PEM, DER or PKCS#12 (or a PKCS#12 that needs a password)"
        )
        raise CertFileError(f"{path}: {hint}") from None
    certs = ([bundle.cert.certificate] if bundle.cert else []) + [c.certificate for c in bundle.additional_certs]
    if not certs:
        raise CertFileError(f"{path}: the PKCS#12 file holds no certificate")
    return certs


def file_facts(
    path: Path, data: bytes, password: bytes | None, now: datetime | None = None, pins: Sequence[Pin] = ()
) -> Facts:
    """Facts for one file: its first certificate is the leaf, the rest its chain; an unreadable file is an error.
    With ``pins``, the file's chain is judged against them as a served chain would be (the "pin" trust result)."""
    started = now or datetime.now(UTC)
    target = TargetInfo(input=str(path), host=path.name, port=0, server_name=None, ip_address=None, source="file")
    try:
        certs = read_certificates(path, data, password)
    except CertFileError as exc:
        error = ProbeError(error_class=ErrorClass.probe_failed, message=str(exc))
        return Facts(target=target, started_at=started, finished_at=datetime.now(UTC), status="error", error=error)
    chain = [certificate_facts(cert) for cert in certs]
    return Facts(
        target=target,
        started_at=started,
        finished_at=datetime.now(UTC),
        status="ok",
        certificate=CertificateFacts(
            status="ok",
            leaf=chain[0],
            chain=chain,
            trust=[evaluate_pins(certs, list(pins))] if pins else [],
            lints=certificate_lints(certs),
        ),
    )


def files_facts(
    files: Sequence[tuple[Path, bytes]], password: bytes | None = None, pins: Sequence[Pin] = ()
) -> list[Facts]:
    """Facts for each (path, the bytes read from it)."""
    return [file_facts(path, data, password, pins=pins) for path, data in files]
