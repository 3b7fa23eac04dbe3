"""The one place that knows sslyze's API. sslyze's result types never leave this module."""

from __future__ import annotations

import contextlib
import math
import socket
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509 import ocsp
from nassl.ssl_client import ClientCertificateRequested
from sslyze.connection_helpers import tls_connection as _tls_connection
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
from sslyze.plugins.plugin_base import ScanJob, ScanJobResult
from sslyze.plugins.scan_commands import ScanCommand, ScanCommandsRepository
from sslyze.server_connectivity import (
    ClientAuthRequirementEnum,
    ServerConnectivityInfo,
    ServerTlsProbingResult,
    TlsVersionEnum,
    check_connectivity_to_server,
)
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
    ProtocolVersion,
    observed,
)
from scanner.probe.connect.endpoint import Endpoint
from scanner.probe.connect.limits import Cancelled, Stop
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


def _plain(exc: BaseException | None) -> str:
    """What went wrong, in words, without the library's exception names (those are for its developers)."""
    message = getattr(exc, "error_message", None)  # sslyze's connection errors carry their own words
    if isinstance(message, str) and message:
        return message
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    lines = str(exc).strip().splitlines() if exc is not None else []
    return lines[0] if lines else "no detail"


_TIMEOUTS = (ConnectionToServerTimedOut, TlsHandshakeTimedOut, TimeoutError)
_CLIENT_CERT = ProbeError(
    error_class=ErrorClass.client_cert_required,
    message="the server requires a client certificate (scan with --client-cert/--client-p12)",
)


def _connectivity_error(exc: Exception) -> ProbeError:
    if isinstance(exc, Cancelled):
        return exc.error
    classes: list[tuple[type[BaseException] | tuple[type[BaseException], ...], ErrorClass]] = [
        (ServerRejectedConnection, ErrorClass.refused),
        (_TIMEOUTS, ErrorClass.timeout),
        (ServerRejectedOpportunisticTlsNegotiation, ErrorClass.starttls_failed),
        (ServerTlsConfigurationNotSupported, ErrorClass.no_common_protocol),
    ]
    message = _plain(exc)
    for exc_class, error_class in classes:
        if isinstance(exc, exc_class):
            return ProbeError(error_class=error_class, message=message)
    return ProbeError(error_class=ErrorClass.handshake_failed, message=f"no TLS handshake possible: {message}")


def _job_error(what: str, exc: Exception) -> ProbeError:
    """A job's (or its plugin's) exception as a fact's error."""
    if isinstance(exc, Cancelled):
        return exc.error
    if isinstance(exc, ClientCertificateRequested):
        return _CLIENT_CERT
    if isinstance(exc, _TIMEOUTS):
        return ProbeError(error_class=ErrorClass.timeout, message=f"{what}: {_plain(exc)}")
    if isinstance(exc, (ServerRejectedTlsHandshake, OSError)):
        return ProbeError(error_class=ErrorClass.reset, message=f"{what}: {_plain(exc)}")
    return ProbeError(error_class=ErrorClass.probe_failed, message=f"{what}: {_plain(exc)}")


# --- bounding sslyze's connections ------------------------------------------------------------------------
#
# sslyze gives each socket a timeout per read, so a peer that trickles one byte a second holds a handshake, a
# STARTTLS banner or a plugin's exchange for as long as it likes. sslyze opens every connection through one
# function, swapped below for one that opens a socket bounded as a whole when the thread runs inside ``_Bounds``
# (elsewhere it is sslyze's own). sslyze and nassl do all their I/O through that socket's recv/send, in Python.

_SILENT_WAITS = 2  # waits for an answer that may rightly never come (Heartbleed, ROBOT), each one --timeout long
_current = threading.local()


class _CutShort(TimeoutError):
    """A read, write or connect cut short by a deadline, not ended by the peer's silence."""


class _Bounds:
    """How long the connections of one sslyze job (or of the connectivity test) may take, and those sockets.

    A connection's first answer may take ``first`` seconds (it may wait behind the job's siblings on a server
    that serves one connection at a time), each later read or write the endpoint's timeout, and the connection
    as a whole ``first`` plus two timeouts; and nothing may outlast the endpoint's stop (the target's time
    limit, the run's budget). A socket cut short by any of these sets ``cut``: sslyze reads a timeout as an
    answer in places (no heartbeat echoed: not vulnerable), so a cut job's result is not to be believed.
    """

    def __init__(self, endpoint: Endpoint, what: str, first: float) -> None:
        self.what = f"{endpoint.display}: {what}"
        self.stop = endpoint.stop
        self.first = first
        self.timeout = endpoint.timeout
        self.cut: ProbeError | None = None
        self._sockets: list[socket.socket] = []
        self._abandoned = False
        self._lock = threading.Lock()
        self._outer: _Bounds | None = None

    def __enter__(self) -> _Bounds:
        self._outer = getattr(_current, "bounds", None)
        _current.bounds = self
        return self

    def __exit__(self, *exc: object) -> None:
        _current.bounds = self._outer

    def left(self, until: float) -> tuple[float, bool]:
        """Seconds left before ``until`` or the stop's deadline, and whether the stop's is the nearer."""
        if self.stop is not None and self.stop.error is not None:
            return 0.0, True
        deadline = self.stop.deadline if self.stop is not None else None
        if deadline is not None and deadline < until:
            return deadline - time.monotonic(), True
        return until - time.monotonic(), False

    def expired(self, by_stop: bool) -> _CutShort:
        """Record why a connection was cut short; the exception to raise in sslyze's code."""
        if by_stop:
            stopped = self.stop.error if self.stop is not None else None
            cut = stopped or ProbeError(error_class=ErrorClass.time_budget, message=f"{self.what}: out of time")
        else:
            total = self.first + _SILENT_WAITS * self.timeout
            message = f"{self.what}: a connection took longer than {total:g}s (the server answers too slowly)"
            cut = ProbeError(error_class=ErrorClass.timeout, message=message)
        with self._lock:
            self.cut = self.cut or cut
        return _CutShort(cut.message)

    def open(self, address: str, port: int) -> socket.socket:
        until = time.monotonic() + self.first + _SILENT_WAITS * self.timeout
        left, by_stop = self.left(until)
        if left <= 0:
            raise self.expired(by_stop)
        try:
            raw = socket.create_connection((address, port), timeout=min(self.first, left))
        except TimeoutError:
            if left < self.first:
                raise self.expired(by_stop) from None
            raise
        sock = _BoundedSocket(raw.family, raw.type, raw.proto, fileno=raw.detach())
        sock.bound(self, until)
        with self._lock:
            if not self._abandoned:
                self._sockets.append(sock)
                return sock
        sock.close()
        raise self.expired(by_stop=True)

    def abandon(self) -> None:
        """Shut every socket still open, so that a job nobody waits for any more ends at its next read."""
        with self._lock:
            self._abandoned = True
            sockets = list(self._sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):  # already closed by sslyze
                sock.shutdown(socket.SHUT_RDWR)


class _BoundedSocket(socket.socket):
    """A socket whose every read and write ends by its connection's deadline, however the peer trickles."""

    def bound(self, bounds: _Bounds, until: float) -> None:
        self._bounds, self._until = bounds, until
        self._answered = False
        self._clamped: bool | None = None  # whether the stop's deadline (True) or the connection's clamps this wait

    def _arm(self) -> None:
        wait = self._bounds.timeout if self._answered else self._bounds.first
        left, by_stop = self._bounds.left(self._until)
        if left <= 0:
            raise self._bounds.expired(by_stop)
        self._clamped = by_stop if left < wait else None
        self.settimeout(min(wait, left))

    def _timed_out(self, exc: TimeoutError) -> TimeoutError:
        return exc if self._clamped is None else self._bounds.expired(self._clamped)

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        self._arm()
        try:
            data = super().recv(bufsize, flags)
        except TimeoutError as exc:
            raise self._timed_out(exc) from None
        self._answered = True
        return data

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        self._arm()
        try:
            count = super().recv_into(buffer, nbytes, flags)
        except TimeoutError as exc:
            raise self._timed_out(exc) from None
        self._answered = True
        return count

    def send(self, data: Any, flags: int = 0) -> int:
        self._arm()
        try:
            return super().send(data, flags)
        except TimeoutError as exc:
            raise self._timed_out(exc) from None

    def sendall(self, data: Any, flags: int = 0) -> None:
        self._arm()
        try:
            super().sendall(data, flags)
        except TimeoutError as exc:
            raise self._timed_out(exc) from None


_open_direct = _tls_connection._open_socket_for_direct_connection


def _open_bounded(server_location: ServerNetworkLocation, network_timeout: int) -> socket.socket:
    bounds: _Bounds | None = getattr(_current, "bounds", None)
    if bounds is None or server_location.ip_address is None:
        return _open_direct(server_location, network_timeout)
    return bounds.open(server_location.ip_address, server_location.port)


# The one hook sslyze does not offer: every connection it makes (connectivity test, plugins) comes through here.
_tls_connection._open_socket_for_direct_connection = _open_bounded


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
        return _job_error("certificate", error)
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


Results = dict[ScanCommand, Any]  # each command's plugin result, or the ProbeError saying why there is none


def _behaviours(results: Results, chain: Chain) -> dict[str, Observed[Any]]:
    """Map sslyze's plugin results onto Behaviours field names."""
    values: dict[str, Observed[Any]] = {}

    def take(name: str, command: ScanCommand, read: Any) -> None:
        found = results.get(command)
        if found is None:
            found = ProbeError(error_class=ErrorClass.probe_failed, message=f"{command.value}: not run")
        if isinstance(found, ProbeError):
            values[name] = Observed[Any](status="error", error=found, source=SOURCE)
        else:
            values[name] = observed(read(found), SOURCE)

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


def _outcome(request: SslyzeRequest, results: Results, chain: Chain | None) -> SslyzeOutcome:
    missing = ProbeError(error_class=ErrorClass.probe_failed, message="the certificate chain was not fetched")
    chain = chain if chain is not None else missing
    return SslyzeOutcome(
        certificate=_certificate(chain) if Extra.certificate in request.extras else None,
        behaviours=_behaviours(results, chain) if Extra.behaviours in request.extras else {},
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

    Every connection sslyze opens is bounded as a whole, not only per read (see ``_Bounds``), and by the
    endpoint's stop (the target's time limit, the run's budget): a job cut short by either is that fact's
    ``timeout`` (or ``time_budget``) error, whatever sslyze made of the missing answer; the other facts stay.
    """
    commands = _commands(request)
    return _scan_part(request, commands, per_server_connections, hold) if commands else None


def _scan_part(request: SslyzeRequest, commands: set[ScanCommand], parallel: int, hold: Hold) -> SslyzeOutcome:
    endpoint = request.endpoint
    location = ServerNetworkLocation(hostname=endpoint.target.host, port=endpoint.port, ip_address=endpoint.address)
    config = _network_config(endpoint, endpoint.timeout)
    connectivity = _Bounds(endpoint, "the connectivity test", endpoint.timeout)
    try:
        with hold(), connectivity:
            probing = check_connectivity_to_server(location, config)
    except Exception as exc:  # ConnectionToServerFailed and its kin; Cancelled when the run stopped
        return SslyzeOutcome(error=connectivity.cut or _connectivity_error(exc))
    # The jobs run ``parallel`` at once against a server that may serve one connection at a time (s_server,
    # many appliances): a job's handshake can wait behind the others', so its first answer may take that long.
    # The connectivity test above, alone on the server, keeps the plain timeout.
    patient = endpoint.timeout * max(1, min(parallel, 4))
    server = ServerConnectivityInfo(
        server_location=location, network_configuration=_network_config(endpoint, patient), tls_probing_result=probing
    )
    results: Results = {}
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
            results[command] = ProbeError(
                error_class=ErrorClass.probe_failed, message=f"{command.value} could not run: {_plain(exc)}"
            )
    bounds = partial(_Bounds, endpoint, first=patient)
    done, failed = _run_jobs(jobs, parallel, hold, lambda command: bounds(command.value), endpoint.stop)
    chain: Chain | None = failed.get(ScanCommand.CERTIFICATE_INFO)
    if chain is None:
        chain = next((_served_chain(v, e) for c, v, e in done if c == ScanCommand.CERTIFICATE_INFO), None)
    for command in commands - results.keys() - {ScanCommand.CERTIFICATE_INFO}:
        found = failed.get(command)
        if found is None:
            jobs_done = [ScanJobResult(_return_value=v, _exception=e) for c, v, e in done if c == command]
            found = _completed(command, server, jobs_done)
        results[command] = found
    return _outcome(request, results, chain)


# The versions sslyze's connectivity test can settle on, and the cipher string of its handshake there: OpenSSL's
# default TLS 1.3 suites (nothing set), "DEFAULT" below (``_detect_support_for_tls_1_2_or_below``'s first try).
_TLS_VERSIONS: dict[ProtocolVersion, tuple[TlsVersionEnum, str]] = {
    ProtocolVersion.TLSv1_3: (TlsVersionEnum.TLS_1_3, ""),
    ProtocolVersion.TLSv1_2: (TlsVersionEnum.TLS_1_2, "DEFAULT"),
    ProtocolVersion.TLSv1_1: (TlsVersionEnum.TLS_1_1, "DEFAULT"),
    ProtocolVersion.TLSv1_0: (TlsVersionEnum.TLS_1_0, "DEFAULT"),
    ProtocolVersion.SSLv3: (TlsVersionEnum.SSL_3_0, "DEFAULT"),
}


def _chain_alone(server_info: ServerConnectivityInfo) -> Any:
    """sslyze's get_certificate_chain, except that a request for a client certificate raises
    (ClientCertificateRequested) instead of being passed over."""
    connection = server_info.get_preconfigured_tls_connection()
    connection.ssl_client.set_tlsext_status_ocsp()
    try:
        connection.connect()
        client = connection.ssl_client
        return client.get_received_chain(), client.get_tlsext_status_ocsp_resp(), None, True
    finally:
        connection.close()


def chain_only(endpoint: Endpoint, highest: ProtocolVersion, hold: Hold = _no_limit) -> ServedCertificates | None:
    """The chain sslyze's certificate job fetches, in that job's one handshake, without the connectivity test
    (two or three handshakes) that only finds what tlsgate's own probes already know: the highest version.

    The handshake is the connectivity test's own at ``highest`` (the same client, offer, SNI and OCSP request),
    so the server picks the same suite and serves the same chain as it does for sslyze's job. None whenever that
    is not certain to be what a full sslyze run would report: no such version for sslyze, client credentials or
    a request for a client certificate (the test decides how sslyze answers it), or any failure (a refusal, a
    timeout, a reset: the full run then says which, in its own words). Cancelled when the target is stopped.
    """
    found = _TLS_VERSIONS.get(highest)
    if found is None or endpoint.credentials is not None:
        return None
    version, ciphers = found
    location = ServerNetworkLocation(hostname=endpoint.target.host, port=endpoint.port, ip_address=endpoint.address)
    probing = ServerTlsProbingResult(
        highest_tls_version_supported=version,
        cipher_suite_supported=ciphers,
        # Not passed over: a server that asks for a client certificate is left to the full run.
        client_auth_requirement=ClientAuthRequirementEnum.REQUIRED,
        supports_ecdh_key_exchange=True,  # read by the elliptic curves plugin only, which is not run here
    )
    server = ServerConnectivityInfo(
        server_location=location,
        network_configuration=_network_config(endpoint, endpoint.timeout),
        tls_probing_result=probing,
    )
    bounds = _Bounds(endpoint, "the certificate chain", endpoint.timeout)
    try:
        with hold(), bounds:
            value = _chain_alone(server)
    except Cancelled:
        raise
    except Exception:  # refused, timed out, asked for a client certificate ...: the full run tells which
        if endpoint.stop is not None:
            endpoint.stop.check()
        return None
    if bounds.cut is not None:
        return None
    chain = _served_chain(value, None)
    return chain if isinstance(chain, ServedCertificates) else None


_POLL = 0.1  # seconds between looks at the stop while jobs run
Done = tuple[ScanCommand, Any, Exception | None]  # a job's command, and its return value or its exception
_GRACE = 1.0  # seconds jobs get to end by themselves once the target is stopped, before they are abandoned


def _run_jobs(
    jobs: Sequence[tuple[ScanCommand, ScanJob]],
    parallel: int,
    hold: Hold,
    bounds: Callable[[ScanCommand], _Bounds],
    stop: Stop | None,
) -> tuple[list[Done], dict[ScanCommand, ProbeError]]:
    """Every job, at most ``parallel`` at once in worker threads, each inside ``hold`` and its own ``bounds``.

    Returns what the jobs returned or raised, and the commands that have no trustworthy answer: a job whose
    connection was cut short by a deadline, or that was still waiting or running when the target was stopped
    (such jobs are abandoned: their sockets shut, their late answers dropped). The other commands keep theirs.
    """
    pending = list(reversed(jobs))
    done: list[Done] = []
    failed: dict[ScanCommand, ProbeError] = {}
    running: dict[int, tuple[ScanCommand, _Bounds]] = {}
    lock = threading.Lock()
    abandoned = False

    def work() -> None:
        while True:
            with lock:
                if abandoned or not pending:
                    return
                command, job = pending.pop()
                bound = bounds(command)
                running[id(bound)] = (command, bound)
            try:
                with hold(), bound:
                    value = job.function_to_call(*job.function_arguments)
                outcome: Done = (command, value, None)
            except Exception as exc:  # recorded for the plugin to judge, as sslyze's own scanner does
                outcome = (command, None, exc)
            with lock:
                running.pop(id(bound), None)
                if abandoned:
                    return  # too late: this command was already reported
                if bound.cut is not None:
                    failed.setdefault(command, bound.cut)
                elif isinstance(outcome[2], Cancelled):
                    failed.setdefault(command, outcome[2].error)
                done.append(outcome)

    # Daemon threads: an abandoned job, or one stuck when the run is interrupted, must not hold up the exit.
    threads = [threading.Thread(target=work, daemon=True) for _ in range(max(1, min(parallel, len(jobs))))]
    for thread in threads:
        thread.start()
    give_up: float | None = None
    while any(thread.is_alive() for thread in threads):
        next(thread for thread in threads if thread.is_alive()).join(_POLL)
        if stop is None or stop.error is None:
            continue
        # Stopped: the jobs' sockets see it at their next read; a job that has not ended by then is abandoned.
        give_up = give_up if give_up is not None else time.monotonic() + _GRACE
        if time.monotonic() >= give_up:
            break
    with lock:
        abandoned = True
        late = stop.error if stop is not None and stop.error is not None else None
        for command, bound in running.values():
            bound.abandon()
            failed.setdefault(command, late or _TIMED_OUT)
        for command, _ in pending:
            failed.setdefault(command, late or _TIMED_OUT)
        return list(done), dict(failed)


_TIMED_OUT = ProbeError(error_class=ErrorClass.timeout, message="the job did not finish in time")


def _completed(command: ScanCommand, server: ServerConnectivityInfo, results: list[ScanJobResult]) -> Any:
    """The plugin's verdict on its finished jobs, or the error it raised as a ProbeError."""
    implementation = ScanCommandsRepository.get_implementation_cls(command)
    try:
        return implementation.result_for_completed_scan_jobs(server_info=server, scan_job_results=results)
    except Exception as exc:  # a job's network error re-raised by the plugin, or a plugin bug: that command's error
        return _job_error(command.value, exc)


def mozilla_store_path() -> Path:
    """The Mozilla NSS roots that sslyze ships (the store its own validation uses), pinned by our sslyze version."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        path = TrustStoresRepository.get_default().get_main_store().path
    return Path(path)
