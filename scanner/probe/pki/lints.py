"""Certificate lints: where a served certificate departs from RFC 5280 or the CA/B Baseline Requirements in ways
OpenSSL and browsers tolerate (so trust does not judge them), reported per certificate, document and section.

Only what the encoding shows is checked: extension presence and criticality on CA and subscriber certificates. A
CA here is a certificate whose basicConstraints asserts cA; one without them is not a CA for any client and fails
trust instead (``not_a_ca``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from cryptography import x509

from scanner.facts import CertificateLint, LintDocument, LintSeverity
from scanner.probe.pki.paths import fingerprint, self_issued, subject_text


@dataclass(frozen=True)
class _Rule:
    id: str
    citations: tuple[tuple[LintDocument, str, LintSeverity], ...]
    message: str


# Sections of BR 2.x (7.1.2.10 common CA fields, 7.1.2.11 common certificate fields, 7.1.2.7 subscriber).
_CA_BC_NOT_CRITICAL = _Rule(
    "ca-basic-constraints-not-critical",
    (("RFC5280", "4.2.1.9", "error"), ("CABF-BR", "7.1.2.10.4", "error")),
    "a CA certificate's basicConstraints must be marked critical",
)
_CA_KU_MISSING = _Rule(
    "ca-key-usage-missing",
    (("RFC5280", "4.2.1.3", "error"), ("CABF-BR", "7.1.2.10.7", "error")),
    "a CA certificate must have a keyUsage extension (keyCertSign)",
)
_CA_KU_NOT_CRITICAL = _Rule(
    "ca-key-usage-not-critical",
    (("RFC5280", "4.2.1.3", "warning"), ("CABF-BR", "7.1.2.10.7", "error")),
    "a CA certificate's keyUsage should (RFC 5280) / must (BRs) be marked critical",
)
_CA_SKI_MISSING = _Rule(
    "ca-subject-key-identifier-missing",
    (("RFC5280", "4.2.1.2", "error"), ("CABF-BR", "7.1.2.11.4", "error")),
    "a CA certificate must have a subjectKeyIdentifier",
)
_AKI_MISSING = _Rule(
    "authority-key-identifier-missing",
    (("RFC5280", "4.2.1.1", "error"), ("CABF-BR", "7.1.2.11.1", "error")),
    "a certificate that is not self-issued must have an authorityKeyIdentifier with a keyIdentifier",
)
_EE_SKI_MISSING = _Rule(
    "subject-key-identifier-missing",
    (("RFC5280", "4.2.1.2", "warning"),),
    "an end-entity certificate should have a subjectKeyIdentifier",
)
_EE_KU_NOT_CRITICAL = _Rule(
    "key-usage-not-critical",
    (("RFC5280", "4.2.1.3", "warning"),),
    "keyUsage should be marked critical",
)
_LEAF_EKU_MISSING = _Rule(
    "subscriber-extended-key-usage-missing",
    (("CABF-BR", "7.1.2.7.10", "error"),),
    "a subscriber certificate must have an extKeyUsage extension with serverAuth",
)


def _extension(cert: x509.Certificate, kind: type[x509.ExtensionType]) -> x509.Extension[x509.ExtensionType] | None:
    try:
        return cert.extensions.get_extension_for_class(kind)
    except x509.ExtensionNotFound:
        return None


def _deviations(cert: x509.Certificate, leaf: bool) -> Iterator[_Rule]:
    constraints = _extension(cert, x509.BasicConstraints)
    usage = _extension(cert, x509.KeyUsage)
    ca = constraints is not None and isinstance(constraints.value, x509.BasicConstraints) and constraints.value.ca
    if constraints is not None and ca and not constraints.critical:
        yield _CA_BC_NOT_CRITICAL
    if ca and usage is None:
        yield _CA_KU_MISSING
    if usage is not None and not usage.critical:
        yield _CA_KU_NOT_CRITICAL if ca else _EE_KU_NOT_CRITICAL
    if _extension(cert, x509.SubjectKeyIdentifier) is None:
        yield _CA_SKI_MISSING if ca else _EE_SKI_MISSING
    authority = _extension(cert, x509.AuthorityKeyIdentifier)
    has_key_id = (
        authority is not None
        and isinstance(authority.value, x509.AuthorityKeyIdentifier)
        and authority.value.key_identifier is not None
    )
    if not self_issued(cert) and not has_key_id:
        yield _AKI_MISSING
    if leaf and not ca and _extension(cert, x509.ExtendedKeyUsage) is None:
        yield _LEAF_EKU_MISSING


def certificate_lints(chain: Sequence[x509.Certificate]) -> list[CertificateLint]:
    """The lints of each certificate of ``chain`` (as served, leaf first). A certificate whose extensions cannot
    be parsed gets none: its facts already say what could not be read."""
    lints: list[CertificateLint] = []
    for position, cert in enumerate(chain):
        try:
            rules, subject = list(_deviations(cert, position == 0)), subject_text(cert)
        except (ValueError, TypeError, x509.DuplicateExtension, x509.UnsupportedGeneralNameType):
            continue
        lints.extend(
            CertificateLint(
                certificate=position,
                subject=subject,
                sha256=fingerprint(cert),
                id=rule.id,
                document=document,
                section=section,
                severity=severity,
                message=rule.message,
            )
            for rule in rules
            for document, section, severity in rule.citations
        )
    return lints
