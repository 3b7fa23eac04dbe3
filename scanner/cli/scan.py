"""``tlsgate scan``: the scan's options, checked and turned into one request for the engine."""

from __future__ import annotations

import ipaddress
import sys
import tempfile
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from scanner.cli.deliver import scan_and_deliver
from scanner.cli.errors import fatal, fatal_lines
from scanner.cli.options import (
    STDOUT,
    CaFileOption,
    CaPathOption,
    ClientCertificateOptions,
    PinOption,
    ReportOptions,
    StoreOption,
    SystemTrustOption,
    TimeoutOption,
    TruststoreOption,
    TruststorePasswordEnvOption,
    TruststorePasswordFileOption,
    VerdictOptions,
    duration_flag,
    duration_option,
    option_groups,
)
from scanner.cli.packs import DEFAULT_PACKS, DEFAULT_PACKS_HELP, ParamOption, load_packs, pack_option, parse_params
from scanner.engine import InventoryRequest, RunRecorder, ScanRequest, TrustRequest
from scanner.execute import Executor
from scanner.exitcodes import ExitCode
from scanner.live import show_progress
from scanner.policy.pack import RulePack
from scanner.probe.connect.starttls import StartTls
from scanner.probe.options import ConnectOptions, ProbeOptions
from scanner.targets import Target, TargetError, parse_target
from scanner.targets.inventory import Inventory, InventoryError, InventoryTarget, Setting
from scanner.targets.reader import load_inventory, read_targets_file

STARTTLS_NAMES = ", ".join(p.value for p in StartTls)


class ExecutorName(StrEnum):
    local = "local"
    processes = "processes"
    dask = "dask"


@option_groups
def scan(
    *,
    targets: Annotated[
        list[str] | None,
        typer.Argument(
            help="host, host:port, [ipv6]:port or https://host[:port]; port 443 when omitted.",
            show_default=False,
            metavar="[TARGET]...",
        ),
    ] = None,
    pack: Annotated[
        list[str] | None, pack_option(f"Built-in pack id or a pack file; repeatable. {DEFAULT_PACKS_HELP}")
    ] = None,
    inventory: Annotated[
        Path | None,
        typer.Option(
            "--inventory",
            metavar="FILE",
            help="YAML inventory: targets with their own packs, parameters, connection settings (docs/inventory.md).",
        ),
    ] = None,
    tag: Annotated[
        list[str] | None,
        typer.Option(
            "--tag", metavar="TAG", help="Scan only the inventory's targets having any of these tags; repeatable."
        ),
    ] = None,
    targets_file: Annotated[
        str | None,
        typer.Option(
            "--targets-file",
            metavar="FILE",
            help="More targets, one a line ('#' comments, blank lines ignored); - reads standard input.",
        ),
    ] = None,
    reports: ReportOptions,
    param: ParamOption = None,
    timeout: TimeoutOption = 5.0,
    sni: Annotated[
        str | None, typer.Option("--sni", metavar="NAME", help="Send this SNI instead of the target's host name.")
    ] = None,
    no_sni: Annotated[bool, typer.Option("--no-sni", help="Send no SNI at all.")] = False,
    ip: Annotated[
        str | None,
        typer.Option("--ip", metavar="ADDRESS", help="Connect to this address; the target's name is still the SNI."),
    ] = None,
    all_addresses: Annotated[
        bool, typer.Option("--all-addresses", help="Scan every A/AAAA address of each name as its own result.")
    ] = False,
    no_name_check: Annotated[
        bool,
        typer.Option(
            "--no-name-check",
            help="Judge trust by the chain alone, not for the host name: for peers identified by their DN (MQ "
            "channels, replication links). hostname_match is still reported.",
        ),
    ] = False,
    starttls: Annotated[
        StartTls | None,
        typer.Option("--starttls", metavar="PROTOCOL", help="Upgrade a plaintext protocol first: " + STARTTLS_NAMES),
    ] = None,
    client_certificate: ClientCertificateOptions,
    ca_file: CaFileOption = None,
    ca_path: CaPathOption = None,
    truststore: TruststoreOption = None,
    truststore_password_env: TruststorePasswordEnvOption = None,
    truststore_password_file: TruststorePasswordFileOption = None,
    system_trust: SystemTrustOption = False,
    pin: PinOption = None,
    offline: Annotated[
        bool, typer.Option("--offline", help="Fetch nothing (AIA, OCSP, CRL): those checks say 'not checked'.")
    ] = False,
    no_revocation: Annotated[
        bool, typer.Option("--no-revocation", help="Skip live OCSP and CRL checks (stapled responses still read).")
    ] = False,
    all_facts: Annotated[
        bool, typer.Option("--all-facts", help="Run every probe, not only those the packs need.")
    ] = False,
    session_age_check: Annotated[
        float | None,
        typer.Option(
            "--session-age-check",
            min=0,
            max=86400,
            metavar="SECONDS",
            help="Opt-in: wait this long, then test whether a session is still resumed.",
        ),
    ] = None,
    concurrency: Annotated[
        int, typer.Option("--concurrency", min=1, max=1024, metavar="N", help="Targets probed at once.")
    ] = ProbeOptions.concurrency,
    max_connections: Annotated[
        int,
        typer.Option("--max-connections", min=1, max=4096, metavar="N", help="Connections in flight across the run."),
    ] = ProbeOptions.max_connections,
    per_host: Annotated[
        int,
        typer.Option(
            "--per-host",
            min=1,
            max=256,
            metavar="N",
            help="Connections in flight to one host (IP address, all its ports together): be gentle with one server.",
        ),
    ] = ProbeOptions.per_host,
    time_budget: Annotated[
        str | None,
        duration_flag(
            "--time-budget",
            "Stop the whole run after this long (90s, 10m, 1h); unfinished targets are reported as time_budget.",
        ),
    ] = None,
    target_time: Annotated[
        str | None,
        duration_flag(
            "--target-time",
            "At most this long for one target, all its probes together (e.g. 2m); then it is reported with the facts "
            "found so far, the rest as time_budget.",
        ),
    ] = None,
    executor: Annotated[
        ExecutorName,
        typer.Option(
            "--executor",
            help="Where the probes run: local (threads in this process), processes (--workers processes forked from "
            "this one: every core of this machine) or dask (a Dask cluster: --scheduler, else a local cluster of "
            "--workers processes; docs/cluster.md).",
        ),
    ] = ExecutorName.local,
    scheduler: Annotated[
        str | None,
        typer.Option(
            "--scheduler",
            metavar="ADDRESS",
            help="With --executor dask: the scheduler of an existing cluster, tcp://HOST:8786 or tls://HOST:8786.",
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            min=1,
            max=1024,
            metavar="N",
            help="With --executor processes, or dask without --scheduler: worker processes (default: CPUs).",
        ),
    ] = None,
    progress: Annotated[
        bool | None,
        typer.Option(
            "--progress/--no-progress",
            help="A progress bar on standard error. Default: only on a terminal, never with CI set or --quiet.",
            show_default=False,
        ),
    ] = None,
    resume: Annotated[
        Path | None,
        typer.Option(
            "--resume",
            metavar="FILE",
            help="Keep the targets an earlier run finished (its --format jsonl file, or a JSON report) and scan only "
            "the rest; with the same file as --format jsonl=FILE, it is continued.",
        ),
    ] = None,
    store: StoreOption = None,
    verdict: VerdictOptions,
) -> None:
    """Probe TARGETs and judge them against rule packs."""
    parsed = _parse_targets(targets or [])
    if targets_file is not None:
        parsed += _targets_from_file(targets_file)
    if tag and inventory is None:
        fatal("--tag selects targets of an inventory: give --inventory FILE", ExitCode.USAGE)
    if not parsed and inventory is None:
        fatal("no target: name TARGETs, or give --inventory FILE or --targets-file FILE", ExitCode.USAGE)
    loaded_inventory = _load_inventory(inventory, tag or []) if inventory is not None else None
    packs = load_packs(pack or DEFAULT_PACKS, param or []) if loaded_inventory is None else []
    outputs = reports.outputs()
    gate = verdict.gate()
    if sni is not None and no_sni:
        fatal("--sni and --no-sni exclude each other", ExitCode.USAGE)
    if ip is not None and all_addresses:
        fatal("--ip and --all-addresses exclude each other", ExitCode.USAGE)
    if ip is not None:
        try:
            ip = str(ipaddress.ip_address(ip))
        except ValueError:
            fatal(f"--ip {ip!r} is not an IP address", ExitCode.USAGE)
    run_on = _executor(executor, scheduler, workers)
    probe = ProbeOptions(
        timeout=timeout,
        concurrency=concurrency,
        max_connections=max_connections,
        per_host=per_host,
        time_budget=duration_option("--time-budget", time_budget),
        target_time=duration_option("--target-time", target_time),
        session_age_check=session_age_check,
        offline=offline,
    )
    trust = TrustRequest(
        tuple(ca_file or ()),
        tuple(ca_path or ()),
        truststore,
        truststore_password_env,
        truststore_password_file,
        system_trust,
        tuple(pin or ()),
        revocation=not no_revocation,
    )
    with tempfile.TemporaryDirectory(prefix="tlsgate-credentials-") as workdir:
        credentials = client_certificate.load(Path(workdir))
        connect = ConnectOptions(
            server_name=sni,
            no_sni=no_sni,
            connect_address=ip,
            all_addresses=all_addresses,
            check_name=not no_name_check,
            starttls=starttls,
            credentials=credentials,
        )
        planning = None
        if loaded_inventory is not None:
            whole, selected = loaded_inventory
            settings = [Setting(s.key, s.value) for s in parse_params(param or [])]
            planning = InventoryRequest(whole, selected, pack or DEFAULT_PACKS, settings, Path(workdir))
        request = ScanRequest(
            targets=parsed,
            packs=packs,
            probe=probe,
            connect=connect,
            gate=gate,
            inventory=planning,
            all_facts=all_facts,
            trust=trust,
            resume=resume,
            recorder=_recorder(store, probe, packs),
            executor=run_on,
        )
        report = scan_and_deliver(request, outputs, show_progress(progress, verdict.quiet), forced=bool(progress))
    raise typer.Exit(report.exit_code)


def _executor(name: ExecutorName, scheduler: str | None, workers: int | None) -> Executor | None:
    """The executor asked for (None: the local pool); --scheduler and --workers only go with --executor dask."""
    if name is ExecutorName.local:
        if scheduler is not None or workers is not None:
            fatal("--scheduler and --workers go with --executor dask (--workers with processes too)", ExitCode.USAGE)
        return None
    if name is ExecutorName.processes:
        if scheduler is not None:
            fatal("--scheduler goes with --executor dask", ExitCode.USAGE)
        from scanner.execute.processes import ProcessExecutor  # noqa: PLC0415

        return ProcessExecutor(workers=workers)
    if scheduler is not None and workers is not None:
        fatal("--workers starts a local cluster: it excludes --scheduler", ExitCode.USAGE)
    if scheduler is not None and not scheduler.startswith(("tcp://", "tls://")):
        fatal(f"--scheduler {scheduler!r}: give tcp://HOST:PORT or tls://HOST:PORT", ExitCode.USAGE)
    from scanner.execute.dask import DaskExecutor  # noqa: PLC0415 - only with --executor dask

    return DaskExecutor(scheduler=scheduler, workers=workers)


def _recorder(url: str | None, probe: ProbeOptions, packs: Sequence[RulePack]) -> RunRecorder | None:
    """The store's recorder: the store opened (exit 2 if it cannot be) and the run begun, before scanning."""
    if url is None:
        return None
    from scanner.cli.history import open_store_or_exit  # noqa: PLC0415 - SQLAlchemy loads only with --store
    from scanner.pipeline import pack_info  # noqa: PLC0415
    from scanner.report import RunLimits, ScanOptions  # noqa: PLC0415

    limits = RunLimits(
        concurrency=probe.concurrency,
        max_connections=probe.max_connections,
        per_host=probe.per_host,
        time_budget=probe.time_budget,
        target_time=probe.target_time,
    )
    options = ScanOptions(timeout=probe.timeout, packs=[p.id for p in packs], limits=limits)
    return open_store_or_exit(url).recorder("scan", options, [pack_info(p) for p in packs])


def _parse_targets(texts: Sequence[str]) -> list[Target]:
    targets = []
    for text in texts:
        try:
            targets.append(parse_target(text))
        except TargetError as exc:
            fatal(f"bad target {exc}", ExitCode.USAGE)
    return targets


def _targets_from_file(name: str) -> list[Target]:
    try:
        if name == STDOUT:
            return read_targets_file(None, sys.stdin.read())
        return read_targets_file(Path(name))
    except InventoryError as exc:
        fatal_lines([p.as_line() for p in exc.problems], ExitCode.USAGE)


def _load_inventory(path: Path, tags: Sequence[str]) -> tuple[Inventory, list[InventoryTarget]]:
    """The inventory's selected targets, checked whole: any problem is exit 2 with file:line:column lines."""
    try:
        loaded = load_inventory(path)
    except InventoryError as exc:
        fatal_lines([p.as_line() for p in exc.problems], ExitCode.USAGE)
    if tags and not loaded.select(tags):
        known = ", ".join(loaded.tags) or "none"
        fatal(f"{path}: no target has the tag {' or '.join(map(repr, tags))} (tags in it: {known})", ExitCode.USAGE)
    return loaded, loaded.select(tags)
