"""Every certificate a target serves, in words: one line per deployment and one per lint, for the text formats."""

from __future__ import annotations

from scanner.facts import CertificateDeployment, CertificateFacts, CertificateLint, Facts


def trust_text(certificate: CertificateFacts) -> str:
    """Each store's verdict: "trusted by mozilla", "not trusted by file:ca.pem (unknown_issuer)"."""
    verdicts = []
    for result in certificate.trust:
        if result.trusted:
            verdicts.append(f"trusted by {result.store}")
        else:
            verdicts.append(f"not trusted by {result.store}" + (f" ({result.reason})" if result.reason else ""))
    return "; ".join(verdicts) or "trust not judged"


def deployment_text(deployment: CertificateDeployment) -> str:
    """What the certificate is, what got it, whom it names, when it expires and who trusts it."""
    certificate = deployment.certificate
    offers = ", ".join(deployment.offers)
    leaf = certificate.leaf
    if leaf is None:
        error = certificate.error
        reason = f"{error.error_class.value}: {error.message}" if error else "not observed"
        return f"{deployment.label} (offered: {offers}): not observed ({reason})"
    expiry = f"expires {leaf.not_after:%Y-%m-%d}"
    return f"{deployment.label} (offered: {offers}): {leaf.subject}, {expiry}, {trust_text(certificate)}"


def several(facts: Facts) -> list[CertificateDeployment]:
    """The target's deployments when it serves more than one certificate; empty otherwise."""
    deployments = facts.deployments()
    return deployments if len(deployments) > 1 else []


def lint_text(lint: CertificateLint) -> str:
    """One lint: its severity, document section and check, then which certificate and what is wrong."""
    where = "leaf" if lint.certificate == 0 else f"certificate {lint.certificate + 1}"
    head = f"{lint.severity} {lint.document} {lint.section} {lint.id}"
    return f"{head}: {where} {lint.subject}: {lint.message}"
