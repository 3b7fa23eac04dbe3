"""The facts model: what a probe observed about one target, never a judgement.

Every group of facts carries a ``status``: ``ok`` when it was observed, ``error`` when it could not be
(with the reason), ``not_probed`` when the plan did not ask for it. The rule engine relies on that
convention to turn "not observed" into an inconclusive result instead of a silent pass.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

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
    not_tls = "not_tls"  # something answered, but not with TLS
    handshake_failed = "handshake_failed"  # a TLS peer, but no handshake we can complete
    probe_failed = "probe_failed"  # a probe broke on this target (bug or unexpected reply)


class ProbeError(Frozen):
    error_class: ErrorClass
    message: str


ObservationStatus = Literal["ok", "error", "not_probed"]


class TargetInfo(Frozen):
    input: str = Field(description="The target as the user wrote it.")
    host: str
    port: int
    server_name: str | None = Field(description="SNI sent; null for an IP literal.")
    ip_address: str | None = Field(description="The address that was connected to.")


class CipherSuite(Frozen):
    name: str = Field(description="IANA name, e.g. TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256.")
    openssl_name: str | None = None
    key_bits: int | None = Field(default=None, description="Symmetric key size in bits.")
    anonymous: bool = False
    ephemeral_key: str | None = Field(
        default=None, description="Key exchange the server used with this suite, e.g. 'ECDH x25519 253'."
    )


ProtocolStatus = Literal["accepted", "not_accepted", "error"]


class ProtocolSupport(Frozen):
    version: ProtocolVersion
    status: ProtocolStatus
    cipher_suites: list[CipherSuite] = Field(
        default_factory=list, description="Suites the server accepted with this version."
    )
    error: ProbeError | None = None


class PublicKey(Frozen):
    type: Literal["RSA", "EC", "DSA", "Ed25519", "Ed448", "unknown"]
    size: int | None = Field(description="Bits: RSA/DSA modulus, EC curve size.")
    curve: str | None = None


class ExtendedKeyUsage(Frozen):
    name: str
    oid: str


class Certificate(Frozen):
    subject: str = Field(description="RFC 4514 distinguished name.")
    issuer: str
    serial: str = Field(description="Hexadecimal.")
    sha256: str = Field(description="SHA-256 fingerprint, hexadecimal, lower case.")
    public_key: PublicKey
    signature_algorithm: str
    signature_hash: str | None
    not_before: datetime
    not_after: datetime
    validity_days: float
    subject_alt_names: list[str] = Field(default_factory=list, description="'DNS:...' and 'IP:...' entries.")
    extended_key_usage: list[ExtendedKeyUsage] | None = Field(
        default=None, description="null when the certificate has no EKU extension."
    )
    self_signed: bool


class CertificateFacts(Frozen):
    status: ObservationStatus
    error: ProbeError | None = None
    leaf: Certificate | None = None
    chain: list[Certificate] = Field(default_factory=list, description="As served, leaf first.")


class Facts(Frozen):
    schema_version: Literal["1"] = "1"
    target: TargetInfo
    started_at: datetime
    finished_at: datetime
    status: ObservationStatus = Field(description="error when the target could not be scanned at all.")
    error: ProbeError | None = None
    protocols: list[ProtocolSupport] = Field(default_factory=list)
    certificate: CertificateFacts = CertificateFacts(status="not_probed")

    def accepted_versions(self) -> list[ProtocolVersion]:
        return [p.version for p in self.protocols if p.status == "accepted"]


def facts_schema() -> dict[str, Any]:
    schema = Facts.model_json_schema(mode="serialization")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://tlsgate.dev/schema/facts-{FACTS_SCHEMA_VERSION}.json"
    return schema
