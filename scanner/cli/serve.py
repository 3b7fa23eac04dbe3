"""``tlsgate serve``: Prometheus metrics of the latest scans (/metrics), scans on request (/probe), /healthz."""

from __future__ import annotations

import ipaddress
import signal
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer

from scanner.cli.errors import fatal
from scanner.cli.options import CaFileOption, TimeoutOption
from scanner.cli.packs import DEFAULT_PACKS, DEFAULT_PACKS_HELP, ParamOption, load_packs, pack_option
from scanner.exitcodes import ExitCode

if TYPE_CHECKING:
    from scanner.report import Report

DEFAULT_LISTEN = "127.0.0.1:9219"
SERVE_EXIT_HELP = """Exit codes:
  0  stopped by SIGTERM or Ctrl-C
  2  usage error: bad option, pack, --allow entry or --from-report file,
     or the address cannot be listened on"""

ALLOW_HELP = (
    "Targets /probe may scan: an address or CIDR network (10.0.0.0/8, ::1), a host name or *.domain; repeatable or "
    "comma-separated. None by default: /probe refuses every target (an open prober lets anyone make this server "
    "connect anywhere)."
)
SEED_HELP = (
    "Seed /metrics with the targets of a saved JSON report or JSON Lines journal; repeatable (a later file's target "
    "replaces an earlier one's)."
)


def serve(
    listen: Annotated[
        str,
        typer.Option(
            "--listen",
            metavar="HOST:PORT",
            help="Address to serve on ([v6]:PORT for IPv6; port 0 picks a free one). Loopback by default: /metrics "
            "tells the state of every target to whoever can read it.",
        ),
    ] = DEFAULT_LISTEN,
    pack: Annotated[
        list[str] | None,
        pack_option(
            f"Pack /probe judges with (pack=ID chooses among them; the first by default). {DEFAULT_PACKS_HELP}"
        ),
    ] = None,
    param: ParamOption = None,
    allow: Annotated[list[str] | None, typer.Option("--allow", metavar="NETWORK|HOST", help=ALLOW_HELP)] = None,
    timeout: TimeoutOption = 5.0,
    probe_time: Annotated[
        float,
        typer.Option(
            "--probe-time",
            min=1,
            max=300,
            metavar="SECONDS",
            help="At most this long for one /probe scan (less when Prometheus's scrape timeout is shorter).",
        ),
    ] = 30.0,
    max_probes: Annotated[
        int,
        typer.Option("--max-probes", min=1, max=64, metavar="N", help="/probe scans at once; more get HTTP 503."),
    ] = 4,
    fetch: Annotated[
        bool,
        typer.Option(
            "--fetch",
            help="Let /probe fetch AIA issuers, OCSP and CRLs (URLs the scanned certificate names; off by default).",
        ),
    ] = False,
    ca_file: CaFileOption = None,
    from_report: Annotated[list[Path] | None, typer.Option("--from-report", metavar="FILE", help=SEED_HELP)] = None,
) -> None:
    """Serve Prometheus metrics (/metrics), blackbox-style scans on request (/probe?target=HOST:PORT&pack=ID) and
    /healthz over HTTP, until SIGTERM or Ctrl-C (docs/metrics.md)."""
    from scanner.engine import RequestError, TrustRequest, load_trust  # noqa: PLC0415 - keeps --help instant
    from scanner.serve.http import ServeApp, make_server  # noqa: PLC0415
    from scanner.serve.metrics import LatestState, TargetCollector, registry_of  # noqa: PLC0415
    from scanner.serve.probe import Allowed, Prober, ProbeSettings  # noqa: PLC0415

    host, port = _listen(listen)
    try:
        allowed = Allowed.parse(allow or [])
    except ValueError as exc:
        fatal(str(exc), ExitCode.USAGE)
    packs = load_packs(pack or DEFAULT_PACKS, param or [])
    state = LatestState()
    for path in from_report or []:
        state.update_report(_read(path))
    try:
        certificates = load_trust(TrustRequest(ca_files=tuple(ca_file or ())))
    except RequestError as exc:
        fatal(exc.lines[-1], ExitCode.USAGE)
    settings = ProbeSettings(
        packs={p.id: p for p in packs},
        allowed=allowed,
        timeout=timeout,
        probe_time=probe_time,
        max_probes=max_probes,
        fetch=fetch,
        certificates=certificates,
    )
    import scanner.pipeline  # noqa: F401, PLC0415 - the probe stage loads now, not during the first scrape

    app = ServeApp(registry_of(TargetCollector(state.snapshot)), Prober(settings), _log)
    try:
        server = make_server(host, port, app)
    except OSError as exc:
        fatal(f"cannot listen on {listen}: {exc.strerror or exc}", ExitCode.USAGE)
    bound = server.server_address[1]
    shown = f"[{host}]:{bound}" if ":" in host else f"{host}:{bound}"
    allowing = "nothing (no --allow)" if allowed.empty else ", ".join([*map(str, allowed.networks), *allowed.names])
    _log(f"serving http://{shown}/metrics ({len(state.snapshot())} targets), /probe (allowed: {allowing}), /healthz")
    if not ipaddress.ip_address(host).is_loopback:
        _log(f"warning: {host} is not a loopback address: /metrics and /probe answer whoever reaches it")
    previous = signal.signal(signal.SIGTERM, _stop)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        _log("stopped")
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.server_close()


def _stop(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _log(line: str) -> None:
    typer.echo(f"tlsgate: {line}", err=True)


def _listen(text: str) -> tuple[str, int]:
    """``--listen HOST:PORT``: an IP address (a name could resolve to anything) and a port."""
    head, sep, port_text = text.rpartition(":")
    host = head[1:-1] if head.startswith("[") and head.endswith("]") else head
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        fatal(f"--listen {text!r}: expected ADDRESS:PORT, e.g. {DEFAULT_LISTEN} or [::1]:9219", ExitCode.USAGE)
    if not sep or not port_text.isdigit() or int(port_text) > 65535:
        fatal(f"--listen {text!r}: the port must be a number 0-65535", ExitCode.USAGE)
    if address.version == 6 and not head.startswith("["):
        fatal(f"--listen {text!r}: write an IPv6 address in brackets, e.g. [::1]:9219", ExitCode.USAGE)
    return str(address), int(port_text)


def _read(path: Path) -> Report:
    from scanner.saved import SavedFileError, read_report_or_journal  # noqa: PLC0415

    try:
        return read_report_or_journal(path)
    except SavedFileError as exc:
        fatal(f"--from-report {exc}", ExitCode.USAGE)
