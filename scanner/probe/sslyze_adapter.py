"""The one place that knows sslyze's API. sslyze's result types never leave this module."""

from __future__ import annotations

import math
import threading
import warnings
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, fields
from pathlib import Path
from traceback import TracebackException
from typing import Any

from cryptography import x509
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509 import ocsp
from nassl.ssl_client import ClientCertificateRequested
from sslyze.connection_helpers.opportunistic_tls_helpers import ProtocolWithOpportunisticTlsEnum
from sslyze.errors import (
    ConnectionToServerTimedOut,
    ServerRejectedConnection,
    ServerRejectedOpportunisticTlsNegotiation,
    ServerRejectedTlsHandshake,
    ServerTlsConfigurationNotSupported,
    TlsHandshakeTimedOut,
)
from sslyze.plugins.certificate_info._get_cert_chain import get_certificate_chain
from sslyze.plugins.certificate_info.trust_stores.trust_store_repository import TrustStoresRepository
from sslyze.plugins.plugin_base import ScanCommandWrongUsageError, ScanJob, ScanJobResult
from sslyze.plugins.scan_commands import ScanCommand, ScanCommandsRepository
from sslyze.scanner.models import AllScanCommandsAttempts, get_scan_command_attempt_cls
from sslyze.scanner.scan_command_attempt import (
    ScanCommandAttempt,
    ScanCommandAttemptStatusEnum,
    ScanCommandErrorReasonEnum,
)
from sslyze.server_connectivity import ServerConnectivityInfo, check_connectivity_to_server
from sslyze.server_setting import (
    ClientAuthenticationCredentials,
    ServerNetworkConfiguration,
    ServerNetworkLocation,
)

from scanner.facts import (
    Behaviours,
    CertificateFacts,
    ErrorClass,
    Observed,
    ProbeError,
    observed,
)
from scanner.probe.connect.endpoint import Endpoint
from scanner.probe.connect.starttls import StartTls
from scanner.probe.registry import Extra

SOURCE = "sslyze"


_BEHAVIOUR_COMMANDS: dict[str, ScanCommand] = {
    "renegotiation": ScanCommand.SESSION_RENEGOTIATION,
    "compression": ScanCommand.TLS_COMPRESSION,
    "fallback_scsv": ScanCommand.TLS_FALLBACK_SCSV,
    "extended_master_secret": ScanCommand.TLS_EXTENDED_MASTER_SECRET,
    "early_data": ScanCommand.TLS_1_3_EARLY_DATA,
    "heartbleed": ScanCommand.HEARTBLEED,
    "ccs_injection": ScanCommand.OPENSSL_CCS_INJECTION,
    "robot": ScanCommand.ROBOT,
}

_STARTTLS: dict[StartTls, ProtocolWithOpportunisticTlsEnum] = {
    StartTls.smtp: ProtocolWithOpportunisticTlsEnum.SMTP,
    StartTls.imap: ProtocolWithOpportunisticTlsEnum.IMAP,
    StartTls.pop3: ProtocolWithOpportunisticTlsEnum.POP3,
    StartTls.ftp: ProtocolWithOpportunisticTlsEnum.FTP,
    StartTls.xmpp: ProtocolWithOpportunisticTlsEnum.XMPP,
    StartTls.xmpp_server: ProtocolWithOpportunisticTlsEnum.XMPP_SERVER,
    StartTls.ldap: ProtocolWithOpportunisticTlsEnum.LDAP,
    StartTls.postgres: ProtocolWithOpportunisticTlsEnum.POSTGRES,
}


@dataclass(frozen=True)
class SslyzeRequest:
    endpoint: Endpoint
    extras: frozenset[Extra]


@dataclass(frozen=True)
class ServedCertificates:
    """The chain exactly as the server sent it, and its stapled OCSP response: analysed by certchain."""

    chain: list[x509.Certificate]
    stapled: ocsp.OCSPResponse | None


@dataclass(frozen=True)
class SslyzeOutcome:
    certificate: ServedCertificates | CertificateFacts | None = None  # CertificateFacts only for an error
    behaviours: dict[str, Observed[Any]] = field(default_factory=dict)
    error: ProbeError | None = None  # sslyze could not connect at all


def _describe_trace(trace: TracebackException | None) -> str:
    if trace is None:
        return "no detail"
    lines = "".join(trace.format_exception_only()).strip().splitlines()
    return lines[-1] if lines else "no detail"


def _connectivity_error(trace: TracebackException | None) -> ProbeError:
    exc_type: type[BaseException] | None = getattr(trace, "exc_type", None)
    message = _describe_trace(trace)
    classes: list[tuple[type[BaseException], ErrorClass]] = [
        (ServerRejectedConnection, ErrorClass.refused),
        (ConnectionToServerTimedOut, ErrorClass.timeout),
        (TlsHandshakeTimedOut, ErrorClass.timeout),
        (ServerRejectedOpportunisticTlsNegotiation, ErrorClass.starttls_failed),
        (ServerTlsConfigurationNotSupported, ErrorClass.no_common_protocol),
    ]
    for exc_class, error_class in classes:
        if exc_type is not None and issubclass(exc_type, exc_class):
            return ProbeError(error_class=error_class, message=message)
    return ProbeError(error_class=ErrorClass.handshake_failed, message=f"no TLS handshake possible: {message}")


def _attempt_error(attempt: Any) -> ProbeError:
    reason = attempt.error_reason
    if reason == ScanCommandErrorReasonEnum.CLIENT_CERTIFICATE_NEEDED:
        return ProbeError(
            error_class=ErrorClass.client_cert_required,
            message="the server requires a client certificate (scan with --client-cert/--client-p12)",
        )
    if reason == ScanCommandErrorReasonEnum.CONNECTIVITY_ISSUE:
        return ProbeError(error_class=ErrorClass.reset, message=_describe_trace(attempt.error_trace))
    label = reason.value if reason else "not scheduled"
    return ProbeError(error_class=ErrorClass.probe_failed, message=f"{label}: {_describe_trace(attempt.error_trace)}")


Chain = ServedCertificates | ProbeError  # the served chain, or why it could not be had


def _certificate(chain: Chain) -> ServedCertificates | CertificateFacts:
    if isinstance(chain, ProbeError):
        return CertificateFacts(status="error", error=chain)
    return chain


def _ocsp_stapling(chain: Chain) -> Observed[Any]:
    if isinstance(chain, ProbeError):
        return Observed[Any](status="error", error=chain, source=SOURCE)
    return observed(chain.stapled is not None, SOURCE)


def _served_chain(value: Any, error: Exception | None) -> Chain:
    """The outcome of sslyze's get_certificate_chain job: (PEM chain, nassl OCSP response, ...) or what it raised."""
    if error is not None:
        if isinstance(error, ValueError) and "did not present a certificate" in str(error):
            return ProbeError(error_class=ErrorClass.probe_failed, message="the server sent no certificate")
        if isinstance(error, ClientCertificateRequested):
            return ProbeError(
                error_class=ErrorClass.client_cert_required,
                message="the server requires a client certificate (scan with --client-cert/--client-p12)",
            )
        if isinstance(error, (ConnectionToServerTimedOut, TlsHandshakeTimedOut, ServerRejectedTlsHandshake, OSError)):
            return ProbeError(
                error_class=ErrorClass.reset, message=_describe_trace(TracebackException.from_exception(error))
            )
        return ProbeError(
            error_class=ErrorClass.probe_failed,
            message=f"certificate: {_describe_trace(TracebackException.from_exception(error))}",
        )
    pems, stapled_response, _, _ = value
    if not pems:
        return ProbeError(error_class=ErrorClass.probe_failed, message="the server sent no certificate")
    chain = [x509.load_pem_x509_certificate(pem.encode("ascii")) for pem in pems]
    stapled = None
    if stapled_response is not None:
        try:
            stapled = ocsp.load_der_ocsp_response(stapled_response.as_der_bytes())
        except ValueError:
            stapled = None  # a stapled response that does not even parse is as good as none
    return ServedCertificates(chain, stapled)


def _behaviours(attempts: Any, chain: Chain) -> dict[str, Observed[Any]]:
    """Map sslyze's plugin results onto Behaviours field names."""
    values: dict[str, Observed[Any]] = {}

    def take(name: str, command: ScanCommand, read: Any) -> None:
        attempt = getattr(attempts, command.value)
        if attempt.status != ScanCommandAttemptStatusEnum.COMPLETED:
            values[name] = Observed[Any](status="error", error=_attempt_error(attempt), source=SOURCE)
        else:
            values[name] = observed(read(attempt.result), SOURCE)

    take("secure_renegotiation", ScanCommand.SESSION_RENEGOTIATION, lambda r: r.supports_secure_renegotiation)
    take(
        "client_renegotiation", ScanCommand.SESSION_RENEGOTIATION, lambda r: r.is_vulnerable_to_client_renegotiation_dos
    )
    take("compression", ScanCommand.TLS_COMPRESSION, lambda r: r.supports_compression)
    take("fallback_scsv", ScanCommand.TLS_FALLBACK_SCSV, lambda r: r.supports_fallback_scsv)
    take("extended_master_secret", ScanCommand.TLS_EXTENDED_MASTER_SECRET, lambda r: r.supports_ems_extension)
    take("early_data", ScanCommand.TLS_1_3_EARLY_DATA, lambda r: r.supports_early_data)
    take("heartbleed", ScanCommand.HEARTBLEED, lambda r: r.is_vulnerable_to_heartbleed)
    take("ccs_injection", ScanCommand.OPENSSL_CCS_INJECTION, lambda r: r.is_vulnerable_to_ccs_injection)
    take("robot", ScanCommand.ROBOT, lambda r: r.robot_result.value.lower())
    values["ocsp_stapling"] = _ocsp_stapling(chain)
    return values


def _outcome(request: SslyzeRequest, attempts: AllScanCommandsAttempts, chain: Chain | None) -> SslyzeOutcome:
    missing = ProbeError(error_class=ErrorClass.probe_failed, message="the certificate chain was not fetched")
    chain = chain if chain is not None else missing
    return SslyzeOutcome(
        certificate=_certificate(chain) if Extra.certificate in request.extras else None,
        behaviours=_behaviours(attempts, chain) if Extra.behaviours in request.extras else {},
    )


def behaviours_from(values: dict[str, Observed[Any]]) -> dict[str, Observed[Any]]:
    """Only the keys Behaviours knows (a guard against sslyze-side renames slipping into facts)."""
    return {k: v for k, v in values.items() if k in Behaviours.model_fields}


def _network_config(endpoint: Endpoint, timeout: float) -> ServerNetworkConfiguration:
    credentials = None
    if endpoint.credentials is not None:
        credentials = ClientAuthenticationCredentials(
            certificate_chain_path=endpoint.credentials.cert_chain, key_path=endpoint.credentials.key
        )
    return ServerNetworkConfiguration(
        # sslyze always sends SNI; without a name it gets the address (what a client given an IP would do).
        tls_server_name_indication=endpoint.server_name or endpoint.address,
        tls_opportunistic_encryption=_STARTTLS[endpoint.starttls] if endpoint.starttls else None,
        tls_client_auth_credentials=credentials,
        network_timeout=max(1, math.ceil(timeout)),
        network_max_retries=1,
    )


def _commands(request: SslyzeRequest) -> set[ScanCommand]:
    commands: set[ScanCommand] = set()
    if Extra.certificate in request.extras or Extra.behaviours in request.extras:
        # Not sslyze's CERTIFICATE_INFO command (four handshakes, each chain validated against five trust
        # stores): one handshake for the chain as served, which certchain analyses (see _scan_part).
        commands.add(ScanCommand.CERTIFICATE_INFO)
    if Extra.behaviours in request.extras:
        commands.update(_BEHAVIOUR_COMMANDS.values())
    return commands


Hold = Callable[[], AbstractContextManager[object]]


def _no_limit() -> AbstractContextManager[object]:
    return nullcontext()


def scan_one(request: SslyzeRequest, per_server_connections: int = 5, hold: Hold = _no_limit) -> SslyzeOutcome | None:
    """Run sslyze's plugins for one server, here and now; None when the request asks for nothing.

    sslyze's own Scanner batches servers and polls for finished work; driving its plugins directly lets each
    target's facts be final as soon as its own connections are done. ``hold`` is entered around every
    connection-making step (the connectivity test, each job), which is how the run's connection limits and
    stop signal reach sslyze's connections; at most ``per_server_connections`` jobs run at once.
    """
    commands = _commands(request)
    return _scan_part(request, commands, per_server_connections, hold) if commands else None


def _scan_part(request: SslyzeRequest, commands: set[ScanCommand], parallel: int, hold: Hold) -> SslyzeOutcome:
    endpoint = request.endpoint
    location = ServerNetworkLocation(hostname=endpoint.target.host, port=endpoint.port, ip_address=endpoint.address)
    config = _network_config(endpoint, endpoint.timeout)
    try:
        with hold():
            probing = check_connectivity_to_server(location, config)
    except Exception as exc:  # ConnectionToServerFailed and its kin; Cancelled when the run stopped
        return SslyzeOutcome(error=_connectivity_error(TracebackException.from_exception(exc)))
    # The jobs run ``parallel`` at once against a server that may serve one connection at a time (s_server,
    # many appliances): a job's handshake can wait behind the others', so its timeout allows for that queue.
    # The connectivity test above, alone on the server, keeps the plain timeout.
    patient = _network_config(endpoint, endpoint.timeout * max(1, min(parallel, 4)))
    server = ServerConnectivityInfo(server_location=location, network_configuration=patient, tls_probing_result=probing)
    attempts: dict[ScanCommand, ScanCommandAttempt[Any]] = {}
    jobs: list[tuple[ScanCommand, ScanJob]] = []
    if ScanCommand.CERTIFICATE_INFO in commands:
        # The default chain (highest version, SNI as configured, OCSP stapling asked for) as sslyze's own
        # certificate job fetches it — the first deployment its CERTIFICATE_INFO would report.
        fetch = ScanJob(function_to_call=get_certificate_chain, function_arguments=(server, None, None, None, True))
        jobs.append((ScanCommand.CERTIFICATE_INFO, fetch))
    for command in commands - {ScanCommand.CERTIFICATE_INFO}:
        try:
            implementation = ScanCommandsRepository.get_implementation_cls(command)
            jobs += [(command, job) for job in implementation.scan_jobs_for_scan_command(server, None)]
        except Exception as exc:  # sslyze's own failure to plan a command: that command's error, not the target's
            reason = (
                ScanCommandErrorReasonEnum.WRONG_USAGE
                if isinstance(exc, ScanCommandWrongUsageError)
                else ScanCommandErrorReasonEnum.BUG_IN_SSLYZE
            )
            attempts[command] = _errored(command, reason, exc)
    done = _run_jobs(jobs, parallel, hold)
    chain = next((_served_chain(v, e) for c, v, e in done if c == ScanCommand.CERTIFICATE_INFO), None)
    for command in commands - attempts.keys() - {ScanCommand.CERTIFICATE_INFO}:
        results = [ScanJobResult(_return_value=value, _exception=error) for cmd, value, error in done if cmd == command]
        attempts[command] = _completed(command, server, results)
    for name in (f.name for f in fields(AllScanCommandsAttempts)):
        attempts.setdefault(ScanCommand(name), _not_scheduled(ScanCommand(name)))
    by_name: dict[str, Any] = {command.value: attempt for command, attempt in attempts.items()}
    everything = AllScanCommandsAttempts(**by_name)
    return _outcome(request, everything, chain)


def _run_jobs(
    jobs: Sequence[tuple[ScanCommand, ScanJob]], parallel: int, hold: Hold
) -> list[tuple[ScanCommand, Any, Exception | None]]:
    """Every job, at most ``parallel`` at once, each inside ``hold``; its return value or its exception."""
    pending = list(reversed(jobs))
    done: list[tuple[ScanCommand, Any, Exception | None]] = []
    lock = threading.Lock()

    def work() -> None:
        while True:
            with lock:
                if not pending:
                    return
                command, job = pending.pop()
            try:
                with hold():
                    value = job.function_to_call(*job.function_arguments)
                outcome: tuple[ScanCommand, Any, Exception | None] = (command, value, None)
            except Exception as exc:  # recorded for the plugin to judge, as sslyze's own scanner does
                outcome = (command, None, exc)
            with lock:
                done.append(outcome)

    # Daemon threads: a run stopped by Ctrl-C must not wait at exit for a job stuck in a network read.
    threads = [threading.Thread(target=work, daemon=True) for _ in range(max(1, min(parallel, len(jobs))) - 1)]
    for thread in threads:
        thread.start()
    work()
    for thread in threads:
        thread.join()
    return done


def _errored(command: ScanCommand, reason: ScanCommandErrorReasonEnum, exc: BaseException) -> ScanCommandAttempt[Any]:
    return get_scan_command_attempt_cls(command)(
        status=ScanCommandAttemptStatusEnum.ERROR,
        error_reason=reason,
        error_trace=TracebackException.from_exception(exc),
        result=None,
    )


def _not_scheduled(command: ScanCommand) -> ScanCommandAttempt[Any]:
    return get_scan_command_attempt_cls(command)(
        status=ScanCommandAttemptStatusEnum.NOT_SCHEDULED, error_reason=None, error_trace=None, result=None
    )


def _completed(
    command: ScanCommand, server: ServerConnectivityInfo, results: list[ScanJobResult]
) -> ScanCommandAttempt[Any]:
    """The plugin's verdict on its finished jobs; the errors it raises map to sslyze's own error reasons."""
    implementation = ScanCommandsRepository.get_implementation_cls(command)
    try:
        result = implementation.result_for_completed_scan_jobs(server_info=server, scan_job_results=results)
    except ClientCertificateRequested as exc:
        return _errored(command, ScanCommandErrorReasonEnum.CLIENT_CERTIFICATE_NEEDED, exc)
    except (ConnectionToServerTimedOut, TlsHandshakeTimedOut, ServerRejectedTlsHandshake, OSError) as exc:
        return _errored(command, ScanCommandErrorReasonEnum.CONNECTIVITY_ISSUE, exc)
    except Exception as exc:  # a plugin bug is that command's error
        return _errored(command, ScanCommandErrorReasonEnum.BUG_IN_SSLYZE, exc)
    return get_scan_command_attempt_cls(command)(
        status=ScanCommandAttemptStatusEnum.COMPLETED, error_reason=None, error_trace=None, result=result
    )


def mozilla_store_path() -> Path:
    """The Mozilla NSS roots that sslyze ships (the store its own validation uses), pinned by our sslyze version."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        path = TrustStoresRepository.get_default().get_main_store().path
    return Path(path)
