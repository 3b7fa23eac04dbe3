"""The facts model: what a probe observed about one target, never a judgement.

Every group of facts carries a ``status``: ``ok`` when it was observed, ``error`` when it could not be
(with the reason), ``not_probed`` when the plan did not ask for it. The rule engine relies on that
convention to turn "not observed" into an inconclusive result instead of a silent pass.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")

FACTS_SCHEMA_VERSION = "1"


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ProtocolVersion(StrEnum):
    SSLv2 = "SSLv2"
    SSLv3 = "SSLv3"
    TLSv1_0 = "TLSv1.0"
    TLSv1_1 = "TLSv1.1"
    TLSv1_2 = "TLSv1.2"
    TLSv1_3 = "TLSv1.3"


class ErrorClass(StrEnum):
    """Why something could not be observed; stable names that reports and pipelines can match on."""

    dns = "dns"  # the name does not resolve
    refused = "refused"  # nothing listens on the port (RST)
    unreachable = "unreachable"  # no route, network down
    timeout = "timeout"  # connect or read did not finish within the timeout
    reset = "reset"  # the peer closed or reset the connection before answering
    not_tls = "not_tls"  # something answered, but not with TLS
    no_common_protocol = "no_common_protocol"  # a TLS peer, but no version/suite we offered is acceptable to it
    client_cert_required = "client_cert_required"  # the server insists on a client certificate we do not have
    handshake_failed = "handshake_failed"  # a TLS peer, but no handshake we can complete
    starttls_failed = "starttls_failed"  # the plaintext protocol refused to upgrade to TLS
    probe_failed = "probe_failed"  # a probe broke on this target (bug or unexpected reply)
    not_applicable = "not_applicable"  # the fact does not apply to this target (e.g. no client certificate asked)
    interrupted = "interrupted"  # the run was stopped (Ctrl-C, SIGTERM) before this target finished
    time_budget = "time_budget"  # the run's or the target's time budget ran out before this target finished
    no_worker = "no_worker"  # a distributed run had no worker for this target's network zone (or none at all)


class ProbeError(Frozen):
    error_class: ErrorClass
    message: str


ObservationStatus = Literal["ok", "error", "not_probed"]


class Observed(Frozen, Generic[T]):
    """One fact that may not have been determined: ``value`` is meaningful only when ``status`` is ok."""

    status: ObservationStatus
    value: T | None = None
    error: ProbeError | None = None
    source: str | None = Field(default=None, description="Which probe observed it (e.g. sslyze, tlsgate).")


def observed(value: T, source: str | None = None) -> Observed[T]:
    return Observed[T](status="ok", value=value, source=source)


def unobserved(error_class: ErrorClass, message: str, source: str | None = None) -> Observed[Any]:
    return Observed[Any](status="error", error=ProbeError(error_class=error_class, message=message), source=source)


NOT_PROBED: Observed[Any] = Observed[Any](status="not_probed")


class TargetInfo(Frozen):
    input: str = Field(description="The target as the user wrote it.")
    host: str
    port: int
    server_name: str | None = Field(description="SNI sent; null for an IP literal or when SNI was disabled.")
    ip_address: str | None = Field(description="The address that was connected to.")
    starttls: str | None = Field(default=None, description="Plaintext protocol upgraded with STARTTLS, if any.")
    source: Literal["network", "file"] = Field(
        default="network", description="file: certificates read from a file by `tlsgate cert`, not a handshake."
    )


class CipherSuite(Frozen):
    name: str = Field(description="IANA name, e.g. TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256.")
    code: str | None = Field(default=None, description="IANA code point, e.g. 0xC02F.")
    openssl_name: str | None = None
    key_exchange: str | None = Field(
        default=None,
        description="ECDHE, DHE, RSA, ECDH, DH, PSK, ECDHE_PSK, SRP, ... ; 'any' for TLS 1.3 suites.",
    )
    authentication: str | None = Field(default=None, description="RSA, ECDSA, DSS, PSK, anon, ... ; 'any' for TLS 1.3.")
    encryption: str | None = Field(
        default=None, description="Bulk cipher and mode, e.g. AES_128_GCM, CHACHA20_POLY1305."
    )
    mac: str | None = Field(default=None, description="MAC or PRF hash, e.g. SHA256; AEAD suites name their PRF hash.")
    key_bits: int | None = Field(default=None, description="Symmetric key size in bits (0 for NULL encryption).")
    anonymous: bool = False
    export: bool = False
    ephemeral_key: str | None = Field(
        default=None,
        description="Key exchange the server used with this suite, e.g. 'ECDH x25519 253', 'DH 2048'.",
    )


ProtocolStatus = Literal["accepted", "not_accepted", "error"]
CipherOrder = Literal["server", "client"]


class ProtocolSupport(Frozen):
    version: ProtocolVersion
    status: ProtocolStatus
    cipher_suites: list[CipherSuite] = Field(
        default_factory=list,
        description="Suites the server accepted with this version; in the server's order when it enforces one.",
    )
    cipher_order: CipherOrder | None = Field(
        default=None, description="server: the server picks by its own preference; client: it follows ours."
    )
    error: ProbeError | None = None


class PublicKey(Frozen):
    type: Literal["RSA", "EC", "DSA", "Ed25519", "Ed448", "unknown"]
    size: int | None = Field(description="Bits: RSA/DSA modulus, EC curve size.")
    curve: str | None = None


class ExtendedKeyUsage(Frozen):
    name: str
    oid: str


class DnFields(Frozen):
    """The common attributes of a distinguished name, for rules such as "O must be Partner Ltd"."""

    common_name: str | None = None
    organization: str | None = None
    organizational_unit: str | None = None
    country: str | None = None
    state: str | None = None
    locality: str | None = None
    email: str | None = None
    serial_number: str | None = None


class BasicConstraints(Frozen):
    ca: bool
    path_length: int | None = None


class Certificate(Frozen):
    subject: str = Field(description="RFC 4514 distinguished name.")
    issuer: str
    subject_fields: DnFields = Field(default_factory=DnFields)
    issuer_fields: DnFields = Field(default_factory=DnFields)
    serial: str = Field(description="Hexadecimal.")
    sha256: str = Field(description="SHA-256 fingerprint, hexadecimal, lower case.")
    public_key: PublicKey
    signature_algorithm: str
    signature_hash: str | None
    not_before: datetime
    not_after: datetime
    validity_days: float = Field(json_schema_extra={"unit": "days"})
    days_remaining: float | None = Field(
        json_schema_extra={"unit": "days"},
        default=None,
        description="Days from the scan to not_after (negative: expired).",
    )
    subject_alt_names: list[str] = Field(default_factory=list, description="'DNS:...' and 'IP:...' entries.")
    key_usage: list[str] | None = Field(
        default=None, description="digitalSignature, keyEncipherment, keyCertSign ...; null without the extension."
    )
    extended_key_usage: list[ExtendedKeyUsage] | None = Field(
        default=None, description="null when the certificate has no EKU extension."
    )
    basic_constraints: BasicConstraints | None = None
    ocsp_urls: list[str] = Field(default_factory=list, description="AIA OCSP responder URLs.")
    ca_issuer_urls: list[str] = Field(default_factory=list, description="AIA CA-issuer URLs.")
    crl_urls: list[str] = Field(default_factory=list, description="CRL distribution point URLs.")
    policies: list[str] = Field(default_factory=list, description="Certificate policy OIDs.")
    sct_count: int | None = Field(default=None, description="Embedded SCTs; null without the extension.")
    must_staple: bool = False
    self_signed: bool


HostnameMismatch = Literal["no_subject_alt_name", "unreadable_subject_alt_name", "no_matching_name"]

TrustReason = Literal[
    "expired",
    "not_yet_valid",
    "unknown_issuer",
    "self_signed",
    "missing_intermediate",
    "name_mismatch",
    "bad_signature",
    "weak_signature_hash",
    "wrong_purpose",
    "not_a_ca",
    "path_length_exceeded",
    "name_constraints_violated",
    "not_pinned",
    "invalid",
]


class TrustResult(Frozen):
    """The verdict of one set of trust anchors the user named (or the bundled store)."""

    store: str = Field(description="mozilla, system, file:PATH, capath:PATH, truststore:PATH, pin")
    trusted: bool
    anchor: str | None = Field(default=None, description="Subject of the anchor (or pinned certificate) that matched.")
    path: list[str] = Field(
        default_factory=list, description="SHA-256 of each certificate of the path built, leaf first."
    )
    reason: TrustReason | None = Field(default=None, description="Why not trusted.")
    detail: str | None = None
    completed_via_aia: bool = Field(default=False, description="A missing intermediate was fetched from AIA.")


RevocationState = Literal["good", "revoked", "unknown"]


class OcspResponseFacts(Frozen):
    status: RevocationState
    produced_at: datetime | None = None
    this_update: datetime | None = None
    next_update: datetime | None = None
    revoked_at: datetime | None = None
    revocation_reason: str | None = None


class RevocationResult(Frozen):
    """Revocation of one certificate of the chain by one source."""

    certificate: str = Field(description="SHA-256 of the certificate checked.")
    subject: str
    leaf: bool = Field(default=False, description="The certificate checked is the server's (or file's) own.")
    source: Literal["ocsp", "crl", "stapled_ocsp"]
    url: str | None = None
    status: Literal["good", "revoked", "unknown", "not_checked", "error"]
    revoked_at: datetime | None = None
    reason: str | None = Field(default=None, description="CRL/OCSP revocation reason, e.g. keyCompromise.")
    detail: str | None = Field(default=None, description="Why not checked, or what went wrong.")


LintDocument = Literal["RFC5280", "CABF-BR"]
LintSeverity = Literal["error", "warning"]


class CertificateLint(Frozen):
    """One served certificate deviating from one rule of a certificate profile: observed in the certificate's
    encoding, not a trust verdict (clients accept these chains; see docs/trust.md). Packs judge them."""

    certificate: int = Field(description="Position in the chain as served, 0 = the leaf.")
    subject: str
    sha256: str = Field(description="SHA-256 fingerprint of the certificate, hexadecimal, lower case.")
    id: str = Field(description="Stable name of the check, e.g. ca-basic-constraints-not-critical.")
    document: LintDocument = Field(description="RFC5280, or CABF-BR (CA/B Forum Baseline Requirements).")
    section: str = Field(description="The section of the document, e.g. 4.2.1.9 or 7.1.2.10.4.")
    severity: LintSeverity = Field(description="error: a MUST is not met; warning: a SHOULD.")
    message: str


class CertificateFacts(Frozen):
    status: ObservationStatus
    error: ProbeError | None = None
    leaf: Certificate | None = None
    chain: list[Certificate] = Field(default_factory=list, description="As served, leaf first.")
    hostname_match: Observed[bool] = Field(
        default=NOT_PROBED,
        description="Whether the leaf's subjectAltName matches the target name (RFC 9525, wildcards); the subject "
        "common name is never used.",
    )
    hostname_mismatch: HostnameMismatch | None = Field(
        default=None,
        description="Why hostname_match is false: no_subject_alt_name (the leaf has no subjectAltName extension; "
        "its common name is not consulted), unreadable_subject_alt_name, or no_matching_name (no subjectAltName "
        "entry matches). Null when the name matches or the match was not observed.",
    )
    hostname_match_cn_only: Observed[bool] = Field(
        default=NOT_PROBED,
        description="For a leaf without a subjectAltName extension: whether its subject common name alone matches "
        "the target name, as legacy clients matched it (RFC 6125 section 6.4.4, dropped by RFC 9525). not_probed "
        "(not_applicable) when the leaf has a subjectAltName or there is no name.",
    )
    chain_order_valid: Observed[bool] = Field(default=NOT_PROBED, description="Each certificate is signed by the next.")
    chain_complete: Observed[bool] = Field(
        default=NOT_PROBED, description="The served chain needs no intermediate from elsewhere to reach an anchor."
    )
    trust: list[TrustResult] = Field(default_factory=list, description="One verdict per trust store consulted.")
    lints: list[CertificateLint] = Field(
        default_factory=list,
        description="Deviations of the served certificates from RFC 5280 and the CA/B BRs that clients tolerate.",
    )
    trust_name: str | None = Field(
        default=None,
        description="The name trust was judged for; null when judged by the chain alone (--no-name-check: peers "
        "identified by their DN) or for a certificate file.",
    )
    ocsp_stapled: Observed[OcspResponseFacts] = Field(
        default=NOT_PROBED, description="The stapled OCSP response, if the server sent one (null value: none)."
    )
    revocation: list[RevocationResult] = Field(
        default_factory=list, description="Per certificate and source: live OCSP, CRL, stapled response."
    )


DeploymentOffer = Literal["default", "ecdsa", "rsa", "other"]


class CertificateDeployment(Frozen):
    """One certificate chain a server serves, and what the client offered to get it: servers often hold an RSA and
    an ECDSA certificate side by side and pick one per handshake by the client's signature algorithms and suites."""

    offers: list[DeploymentOffer] = Field(
        description="The handshakes that got this chain: default (everything tlsgate offers), ecdsa, rsa, other "
        "(only ECDSA, only RSA, only EdDSA/DSA signature algorithms and suites, at the server's highest version)."
    )
    certificate: CertificateFacts = Field(
        description="The chain, its trust, revocation and lints; status error when the offer could not be completed."
    )

    @property
    def label(self) -> str:
        """How reports name the deployment: its key and the start of its leaf's fingerprint."""
        leaf = self.certificate.leaf
        if leaf is None:
            return f"{'/'.join(self.offers)} offer"
        key = leaf.public_key
        kind = "ECDSA" if key.type == "EC" else key.type
        size = key.curve or (str(key.size) if key.size else "")
        return f"{kind} {size} {leaf.sha256[:8]}".replace("  ", " ")


class NamedGroup(Frozen):
    name: str = Field(description="IANA TLS Supported Groups name, e.g. x25519, secp256r1, ffdhe2048, X25519MLKEM768.")
    code: str = Field(description="IANA code point, e.g. 0x001D.")
    kind: Literal["ecdhe", "ffdhe", "hybrid_pq", "pq", "other"]


class GroupFacts(Frozen):
    status: ObservationStatus
    error: ProbeError | None = None
    tls13: Observed[list[NamedGroup]] = Field(
        default=NOT_PROBED,
        description="Groups accepted for TLS 1.3 key exchange, in the server's preference order.",
    )
    tls12: Observed[list[NamedGroup]] = Field(
        default=NOT_PROBED,
        description="Curves/groups the server accepts for TLS 1.2 (EC)DHE, server order first.",
    )
    preferred: Observed[str] = Field(
        default=NOT_PROBED, description="The group the server picks when offered everything we know."
    )
    dh_parameter_bits: Observed[int] = Field(
        default=NOT_PROBED,
        description="Size of the server's finite-field DH prime with DHE suites (TLS 1.2 and older).",
    )
    hybrid_pq_accepted: Observed[bool] = Field(
        default=NOT_PROBED,
        description="Whether any hybrid post-quantum group (e.g. X25519MLKEM768) is accepted.",
    )


class Behaviours(Frozen):
    status: ObservationStatus
    error: ProbeError | None = None
    secure_renegotiation: Observed[bool] = NOT_PROBED
    client_renegotiation: Observed[bool] = Field(
        default=NOT_PROBED,
        description="Whether the server honours client-initiated renegotiation (a DoS vector).",
    )
    compression: Observed[bool] = NOT_PROBED
    fallback_scsv: Observed[bool] = Field(default=NOT_PROBED, description="Whether TLS_FALLBACK_SCSV is honoured.")
    extended_master_secret: Observed[bool] = NOT_PROBED
    ocsp_stapling: Observed[bool] = NOT_PROBED
    alpn: Observed[list[str]] = Field(default=NOT_PROBED, description="ALPN protocols the server selects.")
    early_data: Observed[bool] = Field(default=NOT_PROBED, description="TLS 1.3 0-RTT early data accepted.")
    heartbleed: Observed[bool] = Field(default=NOT_PROBED, description="Vulnerable to Heartbleed (CVE-2014-0160).")
    ccs_injection: Observed[bool] = Field(
        default=NOT_PROBED, description="Vulnerable to CCS injection (CVE-2014-0224)."
    )
    robot: Observed[str] = Field(
        default=NOT_PROBED,
        description="ROBOT oracle: vulnerable_strong, vulnerable_weak, not_vulnerable, ...",
    )


class SessionAgeCheck(Frozen):
    age_seconds: float = Field(json_schema_extra={"unit": "seconds"})
    resumed: bool


class SessionFacts(Frozen):
    status: ObservationStatus
    error: ProbeError | None = None
    session_id_resumption: Observed[bool] = Field(default=NOT_PROBED, description="TLS 1.2 resumption by session ID.")
    ticket_resumption: Observed[bool] = Field(default=NOT_PROBED, description="TLS 1.2 resumption by session ticket.")
    tls13_resumption: Observed[bool] = Field(default=NOT_PROBED, description="TLS 1.3 PSK resumption.")
    tls12_ticket_lifetime: Observed[int] = Field(
        json_schema_extra={"unit": "seconds"},
        default=NOT_PROBED,
        description="Seconds, from the TLS 1.2 NewSessionTicket ticket_lifetime_hint.",
    )
    tls13_ticket_lifetime: Observed[int] = Field(
        json_schema_extra={"unit": "seconds"},
        default=NOT_PROBED,
        description="Seconds, from the TLS 1.3 NewSessionTicket ticket_lifetime.",
    )
    ticket_lifetime: Observed[int] = Field(
        json_schema_extra={"unit": "seconds"},
        default=NOT_PROBED,
        description="The longest ticket lifetime announced by any version, in seconds.",
    )
    legacy_version: Observed[str] = Field(
        default=NOT_PROBED,
        description="Probed only when the server accepts neither TLS 1.2 nor TLS 1.3: the version it chose from a "
        "TLS 1.0 to 1.3 offer ('TLS 1.0' or 'TLS 1.1'), in which the legacy_* facts were read.",
    )
    legacy_session_id_resumption: Observed[bool] = Field(
        default=NOT_PROBED, description="Resumption by session ID in legacy_version."
    )
    legacy_ticket_resumption: Observed[bool] = Field(default=NOT_PROBED, description="By ticket, in legacy_version.")
    legacy_ticket_lifetime: Observed[int] = Field(
        json_schema_extra={"unit": "seconds"},
        default=NOT_PROBED,
        description="Seconds, from the ticket_lifetime_hint of the NewSessionTicket in legacy_version.",
    )
    session_id_resumed_after: Observed[SessionAgeCheck] = Field(
        default=NOT_PROBED,
        description="Opt-in active check: is a session older than N seconds still resumed?",
    )


ClientAuthRequirement = Literal["not_requested", "optional", "required"]
EnforcementPoint = Literal["handshake", "application", "not_enforced", "not_http"]


class ClientAuthEnforcement(Frozen):
    """Where the server refused one kind of client (one without a certificate, or one with a certificate from an
    unknown CA), as seen on one connection and, when the handshake let it through, one HTTP request."""

    at: EnforcementPoint = Field(
        description=(
            "handshake: the TLS handshake failed, or the server aborted the connection with an alert; "
            "application: the handshake completed and the HTTP request was refused (status 400, 401, 403, 495 or "
            "496) or the connection closed without an answer; not_enforced: the handshake completed and the HTTP "
            "request was answered otherwise; not_http: the handshake completed and the service was not taken for "
            "HTTP, so nothing was sent and only the TLS-level answer is known."
        )
    )
    http_basis: str | None = Field(
        default=None,
        description=(
            "Why the service was taken for HTTP or not (the ALPN protocol the server selected, an https:// target, "
            "port 443 or 8443, STARTTLS); null when the handshake refused the client."
        ),
    )
    status_line: str | None = Field(
        default=None,
        description="The status line of the HTTP answer, e.g. 'HTTP/1.1 400 Bad Request'; null when none came.",
    )
    detail: str = Field(description="What the server did, in words.")


class ClientAuthFacts(Frozen):
    status: ObservationStatus
    error: ProbeError | None = None
    requirement: Observed[ClientAuthRequirement] = NOT_PROBED
    ca_names: Observed[list[str]] = Field(
        default=NOT_PROBED,
        description="Acceptable CA distinguished names the server sends in CertificateRequest.",
    )
    throwaway_certificate_accepted: Observed[bool] = Field(
        default=NOT_PROBED,
        description="Whether a certificate from a throwaway CA made on the fly was accepted.",
    )
    provided_certificate_accepted: Observed[bool] = Field(
        default=NOT_PROBED, description="Whether the client certificate given for the scan was accepted."
    )
    enforcement: Observed[ClientAuthEnforcement] = Field(
        default=NOT_PROBED,
        description="Where a client that sends no certificate is refused: in the handshake, by the HTTP application, "
        "not at all; not_http when the handshake lets it through and the service is not HTTP.",
    )
    untrusted_enforcement: Observed[ClientAuthEnforcement] = Field(
        default=NOT_PROBED,
        description="Where a client with the throwaway certificate (an unknown CA) is refused, as for enforcement; "
        "not applicable when the server asks for no certificate.",
    )


class Facts(Frozen):
    schema_version: Literal["1"] = "1"
    target: TargetInfo
    started_at: datetime
    finished_at: datetime
    status: ObservationStatus = Field(description="error when the target could not be scanned at all.")
    error: ProbeError | None = None
    protocols: list[ProtocolSupport] = Field(default_factory=list)
    certificate: CertificateFacts = CertificateFacts(status="not_probed")
    certificate_deployments: list[CertificateDeployment] = Field(
        default_factory=list,
        description="Every distinct chain the server serves for the name (by leaf SHA-256), the one in `certificate` "
        "(what a default client gets) first. Empty when the certificate was not probed, in facts saved before "
        "deployments were discovered, and for a certificate file: then `certificate` is the only one.",
    )
    groups: GroupFacts = GroupFacts(status="not_probed")
    behaviours: Behaviours = Behaviours(status="not_probed")
    sessions: SessionFacts = SessionFacts(status="not_probed")
    client_auth: ClientAuthFacts = ClientAuthFacts(status="not_probed")

    def accepted_versions(self) -> list[ProtocolVersion]:
        return [p.version for p in self.protocols if p.status == "accepted"]

    def deployments(self) -> list[CertificateDeployment]:
        """Every certificate deployment; the one in ``certificate`` alone when no others were looked for."""
        if self.certificate_deployments:
            return list(self.certificate_deployments)
        return [CertificateDeployment(offers=["default"], certificate=self.certificate)]


def facts_schema() -> dict[str, Any]:
    schema = Facts.model_json_schema(mode="serialization")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://tlsgate.dev/schema/facts-{FACTS_SCHEMA_VERSION}.json"
    return schema
