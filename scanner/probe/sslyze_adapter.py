"""The one place that knows sslyze's API. sslyze's result types never leave this module."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from traceback import TracebackException
from typing import Any

from nassl.ephemeral_key_info import DhEphemeralKeyInfo, EcDhEphemeralKeyInfo, EphemeralKeyInfo
from sslyze.errors import ConnectionToServerTimedOut, ServerRejectedConnection, TlsHandshakeTimedOut
from sslyze.plugins.openssl_cipher_suites.implementation import CipherSuitesScanResult
from sslyze.plugins.scan_commands import ScanCommand
from sslyze.scanner.models import ServerScanRequest, ServerScanResult, ServerScanStatusEnum
from sslyze.scanner.scan_command_attempt import ScanCommandAttemptStatusEnum
from sslyze.scanner.scanner import Scanner
from sslyze.server_setting import ServerNetworkConfiguration, ServerNetworkLocation

from scanner.facts import (
    CertificateFacts,
    CipherSuite,
    ErrorClass,
    ProbeError,
    ProtocolSupport,
    ProtocolVersion,
)
from scanner.probe.certificates import certificate_facts
from scanner.targets import Target

_VERSION_COMMANDS: dict[ProtocolVersion, ScanCommand] = {
    ProtocolVersion.SSLv2: ScanCommand.SSL_2_0_CIPHER_SUITES,
    ProtocolVersion.SSLv3: ScanCommand.SSL_3_0_CIPHER_SUITES,
    ProtocolVersion.TLSv1_0: ScanCommand.TLS_1_0_CIPHER_SUITES,
    ProtocolVersion.TLSv1_1: ScanCommand.TLS_1_1_CIPHER_SUITES,
    ProtocolVersion.TLSv1_2: ScanCommand.TLS_1_2_CIPHER_SUITES,
    ProtocolVersion.TLSv1_3: ScanCommand.TLS_1_3_CIPHER_SUITES,
}


@dataclass(frozen=True)
class SslyzeOutcome:
    protocols: list[ProtocolSupport]
    certificate: CertificateFacts
    error: ProbeError | None = None


def _describe_trace(trace: TracebackException | None) -> str:
    if trace is None:
        return "no detail"
    return "".join(trace.format_exception_only()).strip().splitlines()[-1]


def _connectivity_error(trace: TracebackException | None) -> ProbeError:
    exc_type: type[BaseException] | None = getattr(trace, "exc_type", None)
    message = _describe_trace(trace)
    if exc_type is not None and issubclass(exc_type, ServerRejectedConnection):
        return ProbeError(error_class=ErrorClass.refused, message=message)
    if exc_type is not None and issubclass(exc_type, ConnectionToServerTimedOut | TlsHandshakeTimedOut):
        return ProbeError(error_class=ErrorClass.timeout, message=message)
    return ProbeError(error_class=ErrorClass.handshake_failed, message=f"no TLS handshake possible: {message}")


def _ephemeral(key: EphemeralKeyInfo | None) -> str | None:
    if isinstance(key, EcDhEphemeralKeyInfo):
        return f"ECDH {key.curve_name} {key.size}"
    if isinstance(key, DhEphemeralKeyInfo):
        return f"DH {key.size}"
    return None


def _protocol(version: ProtocolVersion, attempt: Any) -> ProtocolSupport:
    if attempt.status != ScanCommandAttemptStatusEnum.COMPLETED:
        reason = attempt.error_reason.value if attempt.error_reason else "not scheduled"
        return ProtocolSupport(
            version=version,
            status="error",
            error=ProbeError(
                error_class=ErrorClass.probe_failed,
                message=f"{reason}: {_describe_trace(attempt.error_trace)}",
            ),
        )
    result: CipherSuitesScanResult = attempt.result
    suites = [
        CipherSuite(
            name=accepted.cipher_suite.name,
            openssl_name=accepted.cipher_suite.openssl_name,
            key_bits=accepted.cipher_suite.key_size,
            anonymous=accepted.cipher_suite.is_anonymous,
            ephemeral_key=_ephemeral(accepted.ephemeral_key),
        )
        for accepted in result.accepted_cipher_suites
    ]
    return ProtocolSupport(version=version, status="accepted" if suites else "not_accepted", cipher_suites=suites)


def _certificate(attempt: Any) -> CertificateFacts:
    if attempt.status != ScanCommandAttemptStatusEnum.COMPLETED:
        return CertificateFacts(
            status="error",
            error=ProbeError(error_class=ErrorClass.probe_failed, message=_describe_trace(attempt.error_trace)),
        )
    deployments = attempt.result.certificate_deployments
    if not deployments:
        return CertificateFacts(
            status="error",
            error=ProbeError(error_class=ErrorClass.probe_failed, message="the server sent no certificate"),
        )
    chain = [certificate_facts(cert) for cert in deployments[0].received_certificate_chain]
    return CertificateFacts(status="ok", leaf=chain[0], chain=chain)


def _outcome(result: ServerScanResult) -> SslyzeOutcome:
    if result.scan_status != ServerScanStatusEnum.COMPLETED or result.scan_result is None:
        return SslyzeOutcome(
            protocols=[],
            certificate=CertificateFacts(status="not_probed"),
            error=_connectivity_error(result.connectivity_error_trace),
        )
    attempts = result.scan_result
    protocols = [_protocol(version, getattr(attempts, command.value)) for version, command in _VERSION_COMMANDS.items()]
    return SslyzeOutcome(protocols=protocols, certificate=_certificate(attempts.certificate_info))


def scan(
    targets: Sequence[tuple[Target, str]],
    timeout: float,
    per_server_connections: int = 5,
    concurrent_servers: int = 10,
) -> Iterable[tuple[int, SslyzeOutcome]]:
    """Scan reachable targets (with their resolved address); yield (index, outcome) as each completes."""
    requests: dict[Any, int] = {}
    batch = []
    for index, (target, address) in enumerate(targets):
        location = ServerNetworkLocation(hostname=target.host, port=target.port, ip_address=address)
        config = ServerNetworkConfiguration(
            tls_server_name_indication=target.server_name or target.host,
            network_timeout=max(1, math.ceil(timeout)),
            network_max_retries=1,
        )
        request = ServerScanRequest(
            server_location=location,
            network_configuration=config,
            scan_commands={*_VERSION_COMMANDS.values(), ScanCommand.CERTIFICATE_INFO},
        )
        requests[request.uuid] = index
        batch.append(request)
    if not batch:
        return
    scanner = Scanner(
        per_server_concurrent_connections_limit=per_server_connections,
        concurrent_server_scans_limit=concurrent_servers,
    )
    scanner.queue_scans(batch)
    for result in scanner.get_results():
        yield requests[result.uuid], _outcome(result)
