"""``tlsgate watch``: scan an inventory on schedule into the store, notify on events, serve /metrics (docs/watch.md)."""

from __future__ import annotations

import enum
import json
import os
import signal
import threading
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any

import typer

from scanner.cli.errors import fatal, fatal_lines
from scanner.cli.options import CaFileOption, FailOnOption, TimeoutOption, duration_option, load_gate
from scanner.cli.packs import DEFAULT_PACKS, DEFAULT_PACKS_HELP, pack_option
from scanner.exitcodes import ExitCode
from scanner.textsafe import printable

if TYPE_CHECKING:
    from scanner.watch.service import Control, Notifier

WATCH_EXIT_HELP = """Exit codes:
  0    stopped by SIGTERM or Ctrl-C (a run in progress is kept in the
       store as interrupted, with the targets that had finished)
  2    usage error: bad option, inventory, notification config, --listen,
       or a --store that is not a database URL
  --once: the scan's exit code (0 pass, 1 policy failed, 3 not checked,
       130 interrupted), as tlsgate scan"""


class LogFormat(enum.StrEnum):
    text = "text"
    json = "json"


def _default_spool() -> Path:
    """systemd's StateDirectory, else $XDG_STATE_HOME/tlsgate/spool, else ~/.local/state/tlsgate/spool."""
    if os.environ.get("STATE_DIRECTORY"):
        return Path(os.environ["STATE_DIRECTORY"].split(":")[0]) / "spool"
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "tlsgate" / "spool"


class _Logger:
    def __init__(self, form: LogFormat) -> None:
        self.form = form
        self.lock = threading.Lock()

    def __call__(self, message: str, level: str = "info", **fields: Any) -> None:
        if self.form == LogFormat.json:
            line = json.dumps(
                {
                    "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
                    "level": level,
                    "message": printable(message),
                    **fields,
                },
                default=str,
            )
        else:
            line = f"tlsgate watch: {'' if level == 'info' else level + ': '}{printable(message)}"
        with self.lock:
            typer.echo(line, err=True)


def watch(
    inventory: Annotated[Path, typer.Option("--inventory", metavar="FILE", help="The inventory to watch.")],
    store: Annotated[
        str,
        typer.Option(
            "--store",
            metavar="URL",
            envvar="TLSGATE_STORE",
            show_envvar=True,
            help="The store every run is recorded in: sqlite:///PATH or postgresql://USER@HOST/DB.",
        ),
    ],
    notify: Annotated[
        Path | None,
        typer.Option("--notify", metavar="FILE", help="Notification routing file (docs/notifications.md)."),
    ] = None,
    listen: Annotated[
        str | None,
        typer.Option("--listen", metavar="HOST:PORT", help="Serve /metrics here too (as tlsgate serve)."),
    ] = None,
    once: Annotated[bool, typer.Option("--once", help="One cycle over every target, then exit with its code.")] = False,
    log_format: Annotated[LogFormat, typer.Option("--log-format", help="text or json (one object a line).")] = (
        LogFormat.text
    ),
    every: Annotated[
        str,
        typer.Option(
            "--every", metavar="DURATION", help="Interval for targets whose inventory sets no 'every' (30m, 6h, 1d)."
        ),
    ] = "24h",
    spool: Annotated[
        Path | None,
        typer.Option(
            "--spool",
            metavar="DIR",
            help="Where runs wait while the store is down [default: $STATE_DIRECTORY/spool, else "
            "~/.local/state/tlsgate/spool].",
        ),
    ] = None,
    site: Annotated[
        Path | None, typer.Option("--site", metavar="DIR", help="Write a static HTML status site here each cycle.")
    ] = None,
    pack: Annotated[list[str] | None, pack_option(f"Packs for targets naming none. {DEFAULT_PACKS_HELP}")] = None,
    ca_file: CaFileOption = None,
    timeout: TimeoutOption = 5.0,
    fail_on: FailOnOption = "info",
    unreachable_after: Annotated[
        int,
        typer.Option(
            "--unreachable-after",
            min=1,
            max=100,
            metavar="N",
            help="Notify a target unreachable after N consecutive runs.",
        ),
    ] = 2,
) -> None:
    """Scan an inventory on schedule, record each run in the store, send notifications on events, and serve
    Prometheus metrics with --listen; SIGHUP reloads the inventory, SIGTERM stops between targets (docs/watch.md)."""
    from scanner.engine import TrustRequest  # noqa: PLC0415 - keeps --help instant
    from scanner.probe.options import ProbeOptions  # noqa: PLC0415
    from scanner.targets.inventory import InventoryError  # noqa: PLC0415
    from scanner.targets.reader import load_inventory  # noqa: PLC0415
    from scanner.watch.service import Control, Watcher, WatchSettings  # noqa: PLC0415

    log = _Logger(log_format)
    default_every = duration_option("--every", every) or 24 * 3600.0
    if site is not None and not _has_site():
        fatal("--site needs scanner.site", ExitCode.USAGE)
    try:
        loaded = load_inventory(inventory)
    except InventoryError as exc:
        fatal_lines([p.as_line() for p in exc.problems], ExitCode.USAGE)
    _check_store(store)
    notifier = _notifier(notify, unreachable_after) if notify is not None else None
    settings = WatchSettings(
        inventory_path=inventory,
        store_url=store,
        spool=spool or _default_spool(),
        packs=pack or DEFAULT_PACKS,
        probe=ProbeOptions(timeout=timeout),
        trust=TrustRequest(ca_files=tuple(ca_file or ())),
        gate=load_gate(fail_on, None, None),
        notifier=notifier,
        site=site,
        default_every=default_every,
    )
    control = Control()
    metrics = _serve(listen, log) if listen is not None else None
    watcher = Watcher(settings, loaded, log, control, metrics)
    previous = _install(control)
    try:
        if once:
            result = watcher.cycle()
            raise typer.Exit(result.exit_code)
        log(f"watching {len(loaded.targets)} targets of {inventory} (store {_safe(store)})", kind="start")
        watcher.run_forever()
        log("stopped", kind="stop")
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if notifier is not None:
            for channel in notifier.channels.values():
                channel.close()


def _has_site() -> bool:
    import importlib.util  # noqa: PLC0415

    return importlib.util.find_spec("scanner.site") is not None


def _check_store(url: str) -> None:
    """A URL that names no store we know is a usage error now; a store that is down is an outage, spooled."""
    from sqlalchemy.engine import make_url  # noqa: PLC0415
    from sqlalchemy.exc import ArgumentError  # noqa: PLC0415

    if "://" not in url:
        return
    try:
        backend = make_url(url).get_backend_name()
    except ArgumentError:
        backend = ""
    if backend not in ("sqlite", "postgresql", "postgres"):
        fatal(f"--store {_safe(url)}: not a store URL (sqlite:///PATH or postgresql://USER@HOST/DB)", ExitCode.USAGE)


def _safe(url: str) -> str:
    """The store URL without its password."""
    from sqlalchemy.engine import make_url  # noqa: PLC0415
    from sqlalchemy.exc import ArgumentError  # noqa: PLC0415

    if "://" not in url:
        return url
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(unreadable URL)"


def _notifier(path: Path, unreachable_after: int) -> Notifier:
    from scanner.notify.channels import ChannelSetupError, build_channels  # noqa: PLC0415
    from scanner.notify.config import NotifyConfigError, read_notify_config  # noqa: PLC0415
    from scanner.notify.state import StateFileError  # noqa: PLC0415
    from scanner.watch.service import Notifier  # noqa: PLC0415

    try:
        config = read_notify_config(path)
        channels = build_channels(config, os.environ)
    except NotifyConfigError as exc:
        fatal_lines([p.as_line() for p in exc.problems], ExitCode.USAGE)
    except (ChannelSetupError, StateFileError) as exc:
        fatal(str(exc), ExitCode.USAGE)
    return Notifier(config, channels, unreachable_after)


def _serve(listen: str, log: _Logger) -> Any:
    """/metrics served from a thread, fed as targets finish; the LatestState it reads."""
    from scanner.cli.serve import _listen  # noqa: PLC0415
    from scanner.serve.http import ServeApp, make_server  # noqa: PLC0415
    from scanner.serve.metrics import LatestState, TargetCollector, registry_of  # noqa: PLC0415

    host, port = _listen(listen)
    state = LatestState()
    app = ServeApp(registry_of(TargetCollector(state.snapshot)), None, lambda line: log(line, level="warning"))
    try:
        server = make_server(host, port, app)
    except OSError as exc:
        fatal(f"cannot listen on {listen}: {exc.strerror or exc}", ExitCode.USAGE)
    bound = server.server_address[1]
    log(f"serving http://{f'[{host}]' if ':' in host else host}:{bound}/metrics", kind="listen", port=bound)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()
    return state


def _install(control: Control) -> dict[int, Any]:
    """SIGTERM and SIGINT stop (a scan in progress is interrupted once, between targets); SIGHUP reloads."""
    interrupted = [False]

    def stop(signum: int, frame: FrameType | None) -> None:
        control.stop = True
        if control.scanning and not interrupted[0]:
            interrupted[0] = True
            raise KeyboardInterrupt

    def reload(signum: int, frame: FrameType | None) -> None:
        control.reload = True

    previous: dict[int, Any] = {}
    for signum, handler in ((signal.SIGTERM, stop), (signal.SIGINT, stop), (signal.SIGHUP, reload)):
        if signal.getsignal(signum) is not signal.SIG_IGN:
            previous[signum] = signal.signal(signum, handler)
    return previous
