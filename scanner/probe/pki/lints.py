"""Certificate lints: where a served certificate departs from RFC 5280 or the CA/B Baseline Requirements in ways
OpenSSL and browsers tolerate (so trust does not judge them), reported per certificate, document and section.

Only what the encoding shows is checked: extension presence and criticality on CA and subscriber certificates. A
CA here is a certificate whose basicConstraints asserts cA; one without them is not a CA for any client and fails
trust instead (``not_a_ca``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from cryptography import x509

from scanner.facts import CertificateLint, LintDocument, LintSeverity
from scanner.probe.pki.paths import fingerprint, self_issued, subject_text

# id -> what the rule asks. Where: ``_CITATIONS``.
_MESSAGES = {
    "ca-basic-constraints-not-critical": "a CA certificate's basicConstraints must be marked critical",
    "ca-key-usage-missing": "a CA certificate must have a keyUsage extension (keyCertSign)",
    "ca-key-usage-not-critical": "a CA certificate's keyUsage should (RFC 5280) / must (BRs) be marked critical",
    "ca-subject-key-identifier-missing": "a CA certificate must have a subjectKeyIdentifier",
    "authority-key-identifier-missing": "a certificate that is not self-issued must have an authorityKeyIdentifier",
    "subject-key-identifier-missing": "an end-entity certificate should have a subjectKeyIdentifier",
    "key-usage-not-critical": "keyUsage should be marked critical",
    "subscriber-extended-key-usage-missing": "a subscriber certificate must have an extKeyUsage with serverAuth",
}

# id -> (document, section, severity) of each rule it breaks. Sections of BR 2.x: 7.1.2.10 common CA fields,
# 7.1.2.11 common certificate fields, 7.1.2.7 subscriber certificates.
_CITATIONS: dict[str, list[tuple[LintDocument, str, LintSeverity]]] = {
    "ca-basic-constraints-not-critical": [("RFC5280", "4.2.1.9", "error"), ("CABF-BR", "7.1.2.10.4", "error")],
    "ca-key-usage-missing": [("RFC5280", "4.2.1.3", "error"), ("CABF-BR", "7.1.2.10.7", "error")],
    "ca-key-usage-not-critical": [("RFC5280", "4.2.1.3", "warning"), ("CABF-BR", "7.1.2.10.7", "error")],
    "ca-subject-key-identifier-missing": [("RFC5280", "4.2.1.2", "error"), ("CABF-BR", "7.1.2.11.4", "error")],
    "authority-key-identifier-missing": [("RFC5280", "4.2.1.1", "error"), ("CABF-BR", "7.1.2.11.1", "error")],
    "subject-key-identifier-missing": [("RFC5280", "4.2.1.2", "warning")],
    "key-usage-not-critical": [("RFC5280", "4.2.1.3", "warning")],
    "subscriber-extended-key-usage-missing": [("CABF-BR", "7.1.2.7.10", "error")],
}


def _extension(cert: x509.Certificate, kind: type[x509.ExtensionType]) -> x509.Extension[x509.ExtensionType] | None:
    try:
        return cert.extensions.get_extension_for_class(kind)
    except x509.ExtensionNotFound:
        return None


def _deviations(cert: x509.Certificate, leaf: bool) -> Iterator[str]:
    """The ids (``_MESSAGES``) of the rules the certificate does not meet."""
    constraints = _extension(cert, x509.BasicConstraints)
    usage = _extension(cert, x509.KeyUsage)
    ca = constraints is not None and isinstance(constraints.value, x509.BasicConstraints) and constraints.value.ca
    if constraints is not None and ca and not constraints.critical:
        yield "ca-basic-constraints-not-critical"
    if ca and usage is None:
        yield "ca-key-usage-missing"
    if usage is not None and not usage.critical:
        yield "ca-key-usage-not-critical" if ca else "key-usage-not-critical"
    if _extension(cert, x509.SubjectKeyIdentifier) is None:
        yield "ca-subject-key-identifier-missing" if ca else "subject-key-identifier-missing"
    authority = _extension(cert, x509.AuthorityKeyIdentifier)
    has_key_id = (
        authority is not None
        and isinstance(authority.value, x509.AuthorityKeyIdentifier)
        and authority.value.key_identifier is not None
    )
    if not self_issued(cert) and not has_key_id:
        yield "authority-key-identifier-missing"
    if leaf and not ca and _extension(cert, x509.ExtendedKeyUsage) is None:
        yield "subscriber-extended-key-usage-missing"


def certificate_lints(chain: Sequence[x509.Certificate]) -> list[CertificateLint]:
    """The lints of each certificate of ``chain`` (as served, leaf first). A certificate whose extensions cannot
    be parsed gets none: its facts already say what could not be read."""
    lints: list[CertificateLint] = []
    for position, cert in enumerate(chain):
        try:
            found, subject = list(_deviations(cert, position == 0)), subject_text(cert)
        except (ValueError, TypeError, x509.DuplicateExtension, x509.UnsupportedGeneralNameType):
            continue
        digest = fingerprint(cert)
        lints.extend(
            CertificateLint(certificate=position, subject=subject, sha256=digest, id=rule, document=document,
                            section=section, severity=severity, message=_MESSAGES[rule])
            for rule in found
            for document, section, severity in _CITATIONS[rule]
        )  # fmt: skip
    return lints
