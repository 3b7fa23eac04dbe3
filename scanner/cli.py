"""The command line: parse, build objects, call the pipeline, render, exit.

Only this module prints or exits.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import shutil
import signal
import sys
import tempfile
import textwrap
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
import yaml

from scanner import __version__
from scanner.exitcodes import EXIT_CODE_HELP, ExitCode
from scanner.facts import ErrorClass, Facts
from scanner.findings import SEVERITIES
from scanner.gate import Gate, GateFileError, load_baseline, load_waivers, parse_severity
from scanner.inventory import (
    Inventory,
    InventoryError,
    InventoryTarget,
    PlannedTarget,
    Setting,
    load_inventory,
    plain_targets,
    plan,
    read_targets_file,
)
from scanner.live import show_progress
from scanner.policy.operators import LIST_OPERATORS, duration
from scanner.policy.pack import (
    Condition,
    PackError,
    Rule,
    RulePack,
    UnknownPack,
    builtin_pack_files,
    load_pack,
    resolve_pack,
)
from scanner.probe.certchain import CertificateOptions
from scanner.probe.endpoint import ClientCredentials
from scanner.probe.options import ConnectOptions, ProbeOptions
from scanner.probe.plan import ALL
from scanner.probe.starttls import StartTls
from scanner.render import FILE_SUFFIXES, OutputFormat, render, write_atomic_all
from scanner.report import Report
from scanner.targets import Target, TargetError, parse_target
from scanner.yamlfile import Problem

DEFAULT_PACKS = ("tls13-only",)
_STARTTLS_NAMES = ", ".join(p.value for p in StartTls)

app = typer.Typer(
    name="tlsgate",
    help="Scan TLS endpoints and judge them against declarative rule packs.\n\n\b\n" + EXIT_CODE_HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
rules_app = typer.Typer(help="Inspect the rule packs.", no_args_is_help=True, rich_markup_mode=None)
app.add_typer(rules_app, name="rules")
report_app = typer.Typer(help="Work with saved reports.", no_args_is_help=True, rich_markup_mode=None)
app.add_typer(report_app, name="report")
baseline_app = typer.Typer(
    help="Baselines: accept a run's failures, so that only new ones fail the next runs.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(baseline_app, name="baseline")


def _fatal(message: str, code: ExitCode) -> NoReturn:
    typer.echo(f"tlsgate: error: {message}", err=True)
    raise typer.Exit(int(code))


def _version(value: bool) -> None:
    if value:
        typer.echo(f"tlsgate {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Scan TLS endpoints and judge them against declarative rule packs."""


def _problem_line(problem: Problem) -> str:
    # line 0 means the file itself (unreadable): no position to point at
    return str(problem) if problem.line else f"{problem.file}: {problem.message}"


def _fatal_lines(lines: Sequence[str], code: ExitCode) -> NoReturn:
    for line in lines[:-1]:
        typer.echo(f"tlsgate: error: {line}", err=True)
    _fatal(lines[-1], code)


@dataclass(frozen=True)
class ParamSetting:
    """One ``--param KEY=VALUE``: KEY is NAME (every selected pack declaring it) or PACK.NAME."""

    key: str
    value: Any


PARAM_HELP = (
    "Set a pack parameter for this run: NAME (every selected pack that declares it) or PACK.NAME; "
    "VALUE is read as YAML (3072, true, 90d, [a, b]), or as text when it is not YAML. Repeatable."
)


def _parse_params(texts: Sequence[str]) -> list[ParamSetting]:
    settings = []
    for text in texts:
        key, sep, raw = text.partition("=")
        key = key.strip()
        if not sep or not key:
            _fatal(f"--param {text!r}: expected KEY=VALUE, KEY being NAME or PACK.NAME", ExitCode.USAGE)
        if not raw.strip():
            _fatal(f"--param {key}: no value after '=' (an empty text is written '')", ExitCode.USAGE)
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            # '*.example', '[a-z]+' and '@team' are not YAML but are plain enough text; the pack's type check
            # still rejects text where a number or a list is due
            value = raw
        settings.append(ParamSetting(key, value))
    return settings


def _param_overrides(packs: Sequence[RulePack], settings: Sequence[ParamSetting]) -> list[dict[str, Any]]:
    """Per pack (in order), the parameter values this run sets; a setting no selected pack takes is an error.

    PACK.NAME outranks NAME for that pack, whatever their order on the command line; a key given twice takes
    its last value.
    """
    overrides: list[dict[str, Any]] = [{} for _ in packs]
    index = {pack.id: i for i, pack in enumerate(packs)}
    known = sorted(f"{pack.id}.{name}" for pack in packs for name in pack.params)
    listing = f"; parameters of the selected packs: {', '.join(known)}" if known else "; the selected packs have none"
    problems: list[str] = []
    qualified: list[tuple[int, str, ParamSetting]] = []
    for setting in settings:
        prefix, dot, name = setting.key.partition(".")
        if dot:  # parameter names have no dots: this is PACK.NAME
            if prefix in index:
                qualified.append((index[prefix], name, setting))
            else:
                selected = ", ".join(pack.id for pack in packs)
                problems.append(f"--param {setting.key}: no selected pack has the id {prefix!r} (selected: {selected})")
            continue
        takers = [i for i, pack in enumerate(packs) if setting.key in pack.params]
        if not takers:
            bare = sorted({k.partition(".")[2] for k in known} | set(known))
            close = difflib.get_close_matches(setting.key, bare, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.append(f"--param {setting.key}: no selected pack has a parameter {setting.key!r}{hint}{listing}")
        for i in takers:
            overrides[i][setting.key] = setting.value
    for i, name, setting in qualified:
        if name not in packs[i].params:
            problems.append(f"--param {setting.key}: pack {packs[i].id!r} has no parameter {name!r}{listing}")
            continue
        overrides[i][name] = setting.value
    if problems:
        _fatal_lines(problems, ExitCode.USAGE)
    return overrides


def _load_packs(refs: Sequence[str], params: Sequence[str] = ()) -> list[RulePack]:
    """Every pack whole, or exit 2 with every problem: a pack is never half-applied.

    Packs load once with their defaults, to learn who declares which parameter, and again with this run's values.
    """
    settings = _parse_params(params)
    packs: list[RulePack] = []
    problems: list[str] = []
    for ref in refs:
        try:
            packs.append(resolve_pack(ref))
        except UnknownPack as exc:
            problems.append(str(exc))
        except PackError as exc:
            problems.extend(_problem_line(p) for p in exc.problems)
    if problems:
        _fatal_lines(problems, ExitCode.USAGE)
    ids = [p.id for p in packs]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        _fatal(f"pack {duplicates[0]!r} is named more than once", ExitCode.USAGE)
    if not settings:
        return packs
    overrides = _param_overrides(packs, settings)
    loaded: list[RulePack] = []
    for ref, pack, values in zip(refs, packs, overrides, strict=True):
        if not values:
            loaded.append(pack)
            continue
        try:
            loaded.append(resolve_pack(ref, params=values))
        except (UnknownPack, PackError) as exc:
            found = exc.problems if isinstance(exc, PackError) else []
            problems.extend([_problem_line(p) for p in found] or [str(exc)])
    if problems:
        _fatal_lines(problems, ExitCode.USAGE)
    return loaded


def _parse_targets(texts: Sequence[str]) -> list[Target]:
    targets = []
    for text in texts:
        try:
            targets.append(parse_target(text))
        except TargetError as exc:
            _fatal(f"bad target {exc}", ExitCode.USAGE)
    return targets


STDOUT = "-"
FORMAT_NAMES = ", ".join(fmt.value for fmt in OutputFormat)
FORMAT_HELP = (
    f"Write a report: FORMAT is one of {FORMAT_NAMES}; PATH a file, or - (also when =PATH is left out) for "
    "standard output, which then carries nothing else. Repeatable, each FORMAT once."
)


@dataclass(frozen=True)
class Output:
    """One report to write: its format, and its file or standard output (``path`` None)."""

    format: OutputFormat
    path: Path | None


def _parse_outputs(specs: Sequence[str], aliases: Sequence[tuple[str, OutputFormat, Path | None]] = ()) -> list[Output]:
    """The reports a command writes, from ``--format FORMAT[=PATH]`` and the ``--json``/``--html`` aliases.

    Checked before anything is scanned: an unknown format, a format or file named twice, two reports for standard
    output, or a path that cannot be written is a usage error.
    """
    named: list[tuple[str, OutputFormat, Path | None]] = []
    for spec in specs:
        name, sep, raw = spec.partition("=")
        try:
            fmt = OutputFormat(name.strip().lower())
        except ValueError:
            _fatal(f"--format {spec!r}: unknown format {name.strip()!r} (one of {FORMAT_NAMES})", ExitCode.USAGE)
        if sep and not raw:
            _fatal(f"--format {spec!r}: no path after '=' (use - for standard output)", ExitCode.USAGE)
        path = None if not sep or raw == STDOUT else Path(raw)
        named.append((f"--format {spec}", fmt, path))
    for option, fmt, alias_path in aliases:
        if alias_path is not None:
            named.append((f"{option} {alias_path}", fmt, None if str(alias_path) == STDOUT else alias_path))
    outputs: list[Output] = []
    for index, (given, fmt, path) in enumerate(named):
        earlier = next((g for g, f, _ in named[:index] if f is fmt), None)
        if earlier is not None:
            _fatal(f"the {fmt.value} report is asked for twice ({earlier} and {given})", ExitCode.USAGE)
        outputs.append(Output(fmt, path))
    to_stdout = [o.format.value for o in outputs if o.path is None]
    if len(to_stdout) > 1:
        _fatal(f"only one report can go to standard output, not {' and '.join(to_stdout)}", ExitCode.USAGE)
    files = [o.path.resolve() for o in outputs if o.path is not None]
    for path in files:
        if files.count(path) > 1:
            _fatal(f"two reports would be written to the same file {path}", ExitCode.USAGE)
    for output in outputs:
        _check_output(output.path)
    return outputs


def _aliases(json_path: Path | None, html_path: Path | None) -> list[tuple[str, OutputFormat, Path | None]]:
    return [("--json", OutputFormat.json, json_path), ("--html", OutputFormat.html, html_path)]


def _check_output(path: Path | None) -> None:
    """Refuse before scanning, not after: a long scan must not end in 'cannot write the report'."""
    if path is None:
        return
    parent = path.parent if str(path.parent) else Path()
    if not parent.is_dir():
        _fatal(f"cannot write {path}: directory {parent} does not exist", ExitCode.USAGE)
    if path.is_dir():
        _fatal(f"cannot write {path}: it is a directory", ExitCode.USAGE)
    if not os.access(parent, os.W_OK):
        _fatal(f"cannot write {path}: directory {parent} is not writable", ExitCode.USAGE)


def _write_reports(report: Report, outputs: Sequence[Output]) -> list[tuple[Output, str]]:
    """Render every report first, then write every file or none (a render that breaks writes nothing)."""
    rendered = [(output, render(report, output.format)) for output in outputs]
    try:
        write_atomic_all([(output.path, text) for output, text in rendered if output.path is not None])
    except OSError as exc:
        _fatal(f"cannot write {exc.filename or 'a report'}: {exc.strerror or exc}", ExitCode.OUTPUT_FAILED)
    return rendered


# How much the terminal summary says: set by --quiet / --verbose on the commands that judge.
_VERBOSITY = {"level": 1}


def _set_quiet(value: bool) -> bool:
    if value:
        _VERBOSITY["level"] = 0
    return value


def _set_verbose(value: bool) -> bool:
    if value:
        _VERBOSITY["level"] = 2
    return value


QuietOption = Annotated[
    bool, typer.Option("--quiet", "-q", callback=_set_quiet, help="No summary: errors only, the exit code speaks.")
]
VerboseOption = Annotated[
    bool,
    typer.Option("--verbose", "-v", callback=_set_verbose, help="Every rule's result and a facts line per target."),
]


def _print_summary(report: Report, err: bool = False) -> None:
    """The verdicts for a person (rich: colour on a terminal, plain when piped or NO_COLOR); on stderr (``err``)
    when standard output carries a report. The one-line reason a target could not be scanned always goes to
    stderr, where CI logs keep errors."""
    from scanner.render.terminal import print_summary  # noqa: PLC0415 - rich loads only when printing

    for target in report.targets:
        error = target.facts.error
        if error is not None and error.error_class != ErrorClass.interrupted:  # one line says it for them all
            typer.echo(f"tlsgate: {target.target}: {error.error_class.value}: {error.message}", err=True)
    if _VERBOSITY["level"] > 0:
        print_summary(report, verbose=_VERBOSITY["level"] > 1, err=err)


def _deliver(report: Report, outputs: Sequence[Output], summary: bool = True, stdout_taken: bool = False) -> None:
    """Write the reports, then the summary: on stderr when a report (or the streamed journal: ``stdout_taken``)
    is on standard output."""
    rendered = _write_reports(report, outputs)
    to_stdout = stdout_taken or any(output.path is None for output, _ in rendered)
    for output, text in rendered:
        if output.path is None:
            typer.echo(text.encode("utf-8"), nl=False)  # bytes: UTF-8 like the files, whatever the locale
    if summary:
        _print_summary(report, err=to_stdout)
        _print_gate(report, err=to_stdout)
    for output, _ in rendered:
        if output.path is not None and _VERBOSITY["level"] > 0:
            typer.echo(f"report: {output.path}", err=to_stdout)


@dataclass(frozen=True)
class Live:
    """How a scan shows and keeps its progress: the bar, and where finished targets are resumed from."""

    progress: bool = False
    forced: bool = False  # --progress given: draw it even when standard error is no terminal
    resume: Path | None = None


def _scan(
    targets: list[tuple[Target, ConnectOptions]],
    packs: list[RulePack],
    probe: ProbeOptions,
    outputs: Sequence[Output],
    gate: Gate | None = None,
    target_packs: Sequence[Sequence[RulePack]] | None = None,
    live: Live = Live(),
) -> Report:
    """Scan with the JSON Lines journal (if asked for) written as targets finish, then write the other reports.

    Ctrl-C or SIGTERM stops the scan: the reports are still written — every finished target, the others marked
    ``interrupted`` — and the exit code is 130.
    """
    from scanner.live import Fanout, Journal, ProgressBar  # noqa: PLC0415
    from scanner.pipeline import run_scan  # noqa: PLC0415 - sslyze is slow to import; --help should not wait

    known = _resume(live.resume) if live.resume is not None else {}
    listeners: list[Journal | ProgressBar] = []
    for output in outputs:
        if output.format is OutputFormat.jsonl:
            same = output.path is not None and live.resume is not None and _same_file(output.path, live.resume)
            try:
                listeners.append(Journal(output.path, append=same, skip=known if same else ()))
            except OSError as exc:
                _fatal(f"cannot write {output.path}: {exc.strerror or exc}", ExitCode.USAGE)
    if live.progress:
        listeners.append(ProgressBar(force=live.forced))
    fanout = Fanout(listeners)
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        resumed = str(live.resume) if live.resume is not None and known else None
        outcome = run_scan(targets, packs, probe, gate, target_packs, fanout, known, resumed)
    finally:
        signal.signal(signal.SIGTERM, previous)
        fanout.close()
    report = outcome.report
    streamed = any(o.format is OutputFormat.jsonl and o.path is None for o in outputs)
    _deliver(report, [o for o in outputs if o.format is not OutputFormat.jsonl], stdout_taken=streamed)
    for journal in listeners:
        if not isinstance(journal, Journal):
            continue
        if journal.failure is not None:
            where = journal.path or "standard output"
            _fatal(f"cannot write {where}: {journal.failure} (the other reports were written)", ExitCode.OUTPUT_FAILED)
        if journal.path is not None and _VERBOSITY["level"] > 0:
            typer.echo(f"report: {journal.path} (JSON Lines, written as targets finished)", err=streamed)
    if outcome.interrupted:
        done = sum(1 for t in report.targets if t.facts.error is None or t.facts.error.error_class != "interrupted")
        typer.echo(
            f"tlsgate: interrupted: {done} of {len(report.targets)} targets had finished; reports written, "
            "the unfinished targets marked interrupted",
            err=True,
        )
        raise typer.Exit(int(ExitCode.INTERRUPTED))
    return report


def _terminate(signum: int, frame: object) -> None:
    """SIGTERM (systemd, CI cancelling a job) stops a scan as Ctrl-C does."""
    raise KeyboardInterrupt


def _same_file(one: Path, other: Path) -> bool:
    return one.resolve() == other.resolve()


RESUMABLE = ("interrupted", "time_budget")


def _resume(path: Path) -> dict[str, Facts]:
    """Facts of the targets an earlier run finished (its JSON Lines journal, or a JSON report), by label; targets
    it did not finish (interrupted, out of time) are scanned again. A file that is not there yet is a first run."""
    from scanner.saved import SavedFileError, read_saved_facts  # noqa: PLC0415

    if not path.exists():
        return {}
    try:
        saved = read_saved_facts(path)
    except SavedFileError as exc:
        _fatal(f"--resume {exc}", ExitCode.USAGE)
    return {
        facts.target.input: facts
        for facts in saved.facts
        if facts.error is None or facts.error.error_class.value not in RESUMABLE
    }


def _credentials(
    cert: Path | None,
    key: Path | None,
    p12: Path | None,
    password_env: str | None,
    password_file: Path | None,
    workdir: Path,
) -> ClientCredentials | None:
    if cert is None and key is None and p12 is None:
        if password_env or password_file:
            _fatal("--client-password-env/--client-password-file need --client-p12 or --client-key", ExitCode.USAGE)
        return None
    from scanner.probe.credentials import CredentialsError, load_credentials  # noqa: PLC0415 - only with mTLS

    try:
        return load_credentials(cert, key, p12, password_env, password_file, workdir)
    except CredentialsError as exc:
        _fatal(str(exc), ExitCode.USAGE)


def _trust_options(
    ca_files: list[Path],
    ca_paths: list[Path],
    truststore: Path | None,
    password_env: str | None,
    password_file: Path | None,
    system: bool,
    pins: list[str],
    revocation: bool,
) -> CertificateOptions:
    """The trust stores to judge against, loaded and checked now: a bad store is a usage error before scanning."""
    from scanner.probe.certchain import MOZILLA, with_anchors  # noqa: PLC0415 - cryptography-heavy
    from scanner.probe.trust import TrustStoreError, TrustStoreSpec, parse_pins  # noqa: PLC0415

    if (password_env or password_file) and truststore is None:
        _fatal("--truststore-password-env/--truststore-password-file need --truststore", ExitCode.USAGE)
    try:
        # The user's own anchors first: chain_complete is judged against the first store.
        stores = [TrustStoreSpec(kind="file", path=path) for path in ca_files]
        stores += [TrustStoreSpec(kind="capath", path=path) for path in ca_paths]
        if truststore is not None:
            stores.append(
                TrustStoreSpec(
                    kind="truststore", path=truststore, password_env=password_env, password_file=password_file
                )
            )
        if system:
            stores.append(TrustStoreSpec(kind="system"))
        stores.append(MOZILLA)
        parse_pins(pins)
        return with_anchors(CertificateOptions(tuple(stores), tuple(pins), revocation))
    except TrustStoreError as exc:
        _fatal(str(exc), ExitCode.USAGE)


# --- the gate: --fail-on, --waivers, --baseline ----------------------------------------------------------

SEVERITY_NAMES = ", ".join(SEVERITIES)
FailOnOption = Annotated[
    str,
    typer.Option(
        "--fail-on",
        metavar="SEVERITY",
        help=f"Fail (exit 1) only on failed rules of this severity or above: {SEVERITY_NAMES}. Default: info (any).",
    ),
]
WaiversOption = Annotated[
    Path | None,
    typer.Option(
        "--waivers",
        metavar="FILE",
        help="YAML waivers (rule, target, reason, owner, expires): a matching failure is waived until it expires.",
    ),
]
BaselineOption = Annotated[
    Path | None,
    typer.Option(
        "--baseline",
        metavar="FILE",
        help="A baseline (tlsgate baseline create): the failures it lists are reported but do not fail the run.",
    ),
]


def _load_gate(fail_on: str, waivers: Path | None, baseline: Path | None) -> Gate:
    """The gate's options, every file read and checked now: a bad one is a usage error before scanning."""
    severity = parse_severity(fail_on)
    if severity is None:
        close = difflib.get_close_matches(fail_on.strip().lower(), SEVERITIES, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        _fatal(f"--fail-on {fail_on!r}: not a severity{hint}; one of {SEVERITY_NAMES}", ExitCode.USAGE)
    problems: list[str] = []
    loaded_waivers = loaded_baseline = None
    try:
        loaded_waivers = load_waivers(waivers) if waivers is not None else None
    except GateFileError as exc:
        problems.extend(_problem_line(p) for p in exc.problems)
    try:
        loaded_baseline = load_baseline(baseline) if baseline is not None else None
    except GateFileError as exc:
        problems.extend(_problem_line(p) for p in exc.problems)
    if problems:
        _fatal_lines(problems, ExitCode.USAGE)
    return Gate(fail_on=severity, waivers=loaded_waivers, baseline=loaded_baseline)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'s' * (count != 1)}"


def _print_gate(report: Report, err: bool = False) -> None:
    """Expired waivers as warnings on stderr, and one line saying which failures did not count and why."""
    gate = report.gate
    for use in gate.waivers:
        if use.status == "expired":
            count = len(use.findings)
            again = (
                f"; {_plural(count, 'finding')} it covered {'fails' if count == 1 else 'fail'} again" if count else ""
            )
            typer.echo(
                f"tlsgate: warning: waiver {use.source} ({use.rule} on {use.target}, owner {use.owner}) expired on "
                f"{use.expires.isoformat()} and no longer applies{again}",
                err=True,
            )
    if (gate.baseline is None and gate.waivers_file is None and gate.fail_on == "info") or _VERBOSITY["level"] == 0:
        return
    from scanner.render.gate_marks import gate_line  # noqa: PLC0415 - the words every report format uses

    typer.echo(f"gate: {gate_line(report)}", err=err)


FormatOption = Annotated[
    list[str] | None, typer.Option("--format", metavar="FORMAT[=PATH]", help=FORMAT_HELP, show_default=False)
]
JsonOption = Annotated[
    Path | None, typer.Option("--json", metavar="FILE", help="Write the JSON report here (--format json=FILE).")
]
HtmlOption = Annotated[
    Path | None, typer.Option("--html", metavar="FILE", help="Write the HTML report here (--format html=FILE).")
]
ParamOption = Annotated[
    list[str] | None, typer.Option("--param", metavar="KEY=VALUE", help=PARAM_HELP, show_default=False)
]


@app.command(epilog="\b\n" + EXIT_CODE_HELP)
def scan(
    targets: Annotated[
        list[str] | None,
        typer.Argument(
            help="host, host:port, [ipv6]:port or https://host[:port]; port 443 when omitted.",
            show_default=False,
            metavar="[TARGET]...",
        ),
    ] = None,
    pack: Annotated[
        list[str] | None,
        typer.Option(
            "--pack",
            "-p",
            metavar="ID|PATH",
            help="Built-in pack id or a pack file; repeatable. Default: tls13-only.",
        ),
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
    format_: FormatOption = None,
    json_path: JsonOption = None,
    html_path: HtmlOption = None,
    param: ParamOption = None,
    timeout: Annotated[
        float,
        typer.Option("--timeout", min=0.1, max=300, metavar="SECONDS", help="Seconds for each connect and read."),
    ] = 5.0,
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
        typer.Option("--starttls", metavar="PROTOCOL", help="Upgrade a plaintext protocol first: " + _STARTTLS_NAMES),
    ] = None,
    client_cert: Annotated[
        Path | None, typer.Option("--client-cert", metavar="PEM", help="Client certificate (chain), PEM.")
    ] = None,
    client_key: Annotated[
        Path | None, typer.Option("--client-key", metavar="PEM", help="Client private key, PEM.")
    ] = None,
    client_p12: Annotated[
        Path | None, typer.Option("--client-p12", metavar="FILE", help="Client certificate and key as PKCS#12.")
    ] = None,
    client_password_env: Annotated[
        str | None,
        typer.Option(
            "--client-password-env",
            metavar="VAR",
            help="Environment variable holding the PKCS#12 or key password (never pass it on the command line).",
        ),
    ] = None,
    client_password_file: Annotated[
        Path | None, typer.Option("--client-password-file", metavar="FILE", help="File holding that password.")
    ] = None,
    ca_file: Annotated[
        list[Path] | None,
        typer.Option(
            "--ca-file", metavar="PEM", help="Trust the CAs of this PEM bundle (its own verdict); repeatable."
        ),
    ] = None,
    ca_path: Annotated[
        list[Path] | None,
        typer.Option("--ca-path", metavar="DIR", help="Trust a hashed CA directory (OpenSSL CApath); repeatable."),
    ] = None,
    truststore: Annotated[
        Path | None, typer.Option("--truststore", metavar="FILE", help="Trust a PKCS#12 or JKS truststore (Java).")
    ] = None,
    truststore_password_env: Annotated[
        str | None, typer.Option("--truststore-password-env", metavar="VAR", help="Variable holding its password.")
    ] = None,
    truststore_password_file: Annotated[
        Path | None, typer.Option("--truststore-password-file", metavar="FILE", help="File holding its password.")
    ] = None,
    system_trust: Annotated[
        bool, typer.Option("--system-trust", help="Also judge trust against the operating system's CA bundle.")
    ] = False,
    pin: Annotated[
        list[str] | None,
        typer.Option(
            "--pin",
            metavar="SHA256|FILE",
            help="Accept only these certificates (SHA-256 of the DER, or a PEM/DER file); repeatable, for rotation.",
        ),
    ] = None,
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
        typer.Option(
            "--time-budget",
            metavar="DURATION",
            help="Stop the whole run after this long (90s, 10m, 1h); unfinished targets are reported as time_budget.",
        ),
    ] = None,
    target_time: Annotated[
        str | None,
        typer.Option(
            "--target-time",
            metavar="DURATION",
            help="At most this long for one target, all its probes together (e.g. 2m).",
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
    fail_on: FailOnOption = "info",
    waivers: WaiversOption = None,
    baseline: BaselineOption = None,
    quiet: QuietOption = False,
    verbose: VerboseOption = False,
) -> None:
    """Probe TARGETs and judge them against rule packs."""
    from scanner.probe.plan import ProbeKind, plan_for  # noqa: PLC0415 - light, but keeps --help instant

    parsed = _parse_targets(targets or [])
    if targets_file is not None:
        parsed += _read_targets_file(targets_file)
    if tag and inventory is None:
        _fatal("--tag selects targets of an inventory: give --inventory FILE", ExitCode.USAGE)
    if not parsed and inventory is None:
        _fatal("no target: name TARGETs, or give --inventory FILE or --targets-file FILE", ExitCode.USAGE)
    loaded_inventory = _load_inventory(inventory, tag or []) if inventory is not None else None
    packs = _load_packs(pack or DEFAULT_PACKS, param or []) if loaded_inventory is None else []
    outputs = _parse_outputs(format_ or [], _aliases(json_path, html_path))
    gate = _load_gate(fail_on, waivers, baseline)
    if sni is not None and no_sni:
        _fatal("--sni and --no-sni exclude each other", ExitCode.USAGE)
    if ip is not None and all_addresses:
        _fatal("--ip and --all-addresses exclude each other", ExitCode.USAGE)
    if ip is not None:
        try:
            ip = str(ipaddress.ip_address(ip))
        except ValueError:
            _fatal(f"--ip {ip!r} is not an IP address", ExitCode.USAGE)
    budget_seconds = _duration_option("--time-budget", time_budget)
    target_seconds = _duration_option("--target-time", target_time)
    with tempfile.TemporaryDirectory(prefix="tlsgate-credentials-") as workdir:
        credentials = _credentials(
            client_cert, client_key, client_p12, client_password_env, client_password_file, Path(workdir)
        )
        connect = ConnectOptions(
            server_name=sni,
            no_sni=no_sni,
            connect_address=ip,
            all_addresses=all_addresses,
            check_name=not no_name_check,
            starttls=starttls,
            credentials=credentials,
        )
        scanned = [(t, connect) for t in parsed]
        target_packs = None
        if loaded_inventory is not None:
            planned = _plan_inventory(loaded_inventory, parsed, pack or DEFAULT_PACKS, param or [], connect, workdir)
            scanned = [(p.target, p.connect) for p in planned]
            target_packs = [list(p.packs) for p in planned]
            packs = list({id(p): p for one in target_packs for p in one}.values())
        plan = plan_for(packs, all_facts=all_facts)
        if session_age_check is not None:
            plan = plan | {ProbeKind.sessions}
        trust = _trust_options(
            ca_file or [],
            ca_path or [],
            truststore,
            truststore_password_env,
            truststore_password_file,
            system_trust,
            pin or [],
            not no_revocation,
        )
        probe = ProbeOptions(
            timeout=timeout,
            concurrency=concurrency,
            max_connections=max_connections,
            per_host=per_host,
            time_budget=budget_seconds,
            target_time=target_seconds,
            plan=plan,
            session_age_check=session_age_check,
            certificates=trust,
            offline=offline,
        )
        live = Live(progress=show_progress(progress, quiet), forced=bool(progress), resume=resume)
        report = _scan(scanned, packs, probe, outputs, gate, target_packs, live)
    raise typer.Exit(report.exit_code)


def _duration_option(option: str, text: str | None) -> float | None:
    """``90``, ``90s``, ``10m``, ``1h`` as seconds; anything else, or nothing positive, is a usage error."""
    if text is None:
        return None
    raw = text.strip()
    seconds = duration(raw + "s" if raw.replace(".", "", 1).isdigit() else raw, "seconds")
    if seconds is None or seconds <= 0:
        _fatal(f"{option} {text!r}: expected a positive duration such as 90s, 10m or 1h", ExitCode.USAGE)
    return seconds


def _read_targets_file(name: str) -> list[Target]:
    try:
        if name == STDOUT:
            return read_targets_file(None, sys.stdin.read())
        return read_targets_file(Path(name))
    except InventoryError as exc:
        _fatal_lines([_problem_line(p) for p in exc.problems], ExitCode.USAGE)


def _load_inventory(path: Path, tags: Sequence[str]) -> tuple[Inventory, list[InventoryTarget]]:
    """The inventory's selected targets, checked whole: any problem is exit 2 with file:line:column lines."""
    try:
        loaded = load_inventory(path)
    except InventoryError as exc:
        _fatal_lines([_problem_line(p) for p in exc.problems], ExitCode.USAGE)
    if tags and not loaded.select(tags):
        known = ", ".join(loaded.tags) or "none"
        _fatal(f"{path}: no target has the tag {' or '.join(map(repr, tags))} (tags in it: {known})", ExitCode.USAGE)
    return loaded, loaded.select(tags)


def _plan_inventory(
    loaded: tuple[Inventory, list[InventoryTarget]],
    plain: Sequence[Target],
    fallback: Sequence[str],
    params: Sequence[str],
    connect: ConnectOptions,
    workdir: str,
) -> list[PlannedTarget]:
    settings = [Setting(s.key, s.value) for s in _parse_params(params)]
    inventory, selected = loaded
    items = [*selected, *plain_targets(plain)]
    try:
        return plan(inventory, items, fallback, settings, connect, Path(workdir))
    except InventoryError as exc:
        _fatal_lines([_problem_line(p) for p in exc.problems], ExitCode.USAGE)


@app.command(epilog="\b\n" + EXIT_CODE_HELP)
def cert(
    files: Annotated[
        list[Path],
        typer.Argument(help="Certificate files: PEM (leaf first, then its chain), DER or PKCS#12.", metavar="FILE..."),
    ],
    pack: Annotated[
        list[str],
        typer.Option("--pack", "-p", metavar="ID|PATH", help="Pack(s) with certificate rules; repeatable. Required."),
    ],
    format_: FormatOption = None,
    json_path: JsonOption = None,
    html_path: HtmlOption = None,
    param: ParamOption = None,
    password_env: Annotated[
        str | None,
        typer.Option("--password-env", metavar="VAR", help="Environment variable with the PKCS#12 password."),
    ] = None,
    password_file: Annotated[
        Path | None, typer.Option("--password-file", metavar="FILE", help="File holding the PKCS#12 password.")
    ] = None,
    fail_on: FailOnOption = "info",
    waivers: WaiversOption = None,
    baseline: BaselineOption = None,
    quiet: QuietOption = False,
    verbose: VerboseOption = False,
) -> None:
    """Judge certificate FILEs with the certificate rules of packs, before they are ever deployed.

    Rules on other facts (protocols, sessions ...) are not_applicable to a file.
    """
    from datetime import UTC, datetime  # noqa: PLC0415

    from scanner.certfiles import files_facts  # noqa: PLC0415 - keeps --help instant
    from scanner.pipeline import judge  # noqa: PLC0415
    from scanner.report import ScanOptions  # noqa: PLC0415

    packs = _load_packs(pack, param or [])
    outputs = _parse_outputs(format_ or [], _aliases(json_path, html_path))
    gate = _load_gate(fail_on, waivers, baseline)
    password = _password(password_env, password_file)
    started = datetime.now(UTC)
    options = ScanOptions(timeout=0, packs=[p.id for p in packs])
    report = judge(files_facts(files, password), packs, options, started, gate)
    _deliver(report, outputs)
    raise typer.Exit(report.exit_code)


@app.command(epilog="\b\n" + EXIT_CODE_HELP)
def evaluate(
    files: Annotated[
        list[Path],
        typer.Argument(
            help="A JSON report (scan, cert or evaluate --json), a scan's JSON Lines (--format jsonl), or facts JSON.",
            metavar="FILE...",
            show_default=False,
        ),
    ],
    pack: Annotated[
        list[str],
        typer.Option("--pack", "-p", metavar="ID|PATH", help="Built-in pack id or a pack file; repeatable. Required."),
    ],
    format_: FormatOption = None,
    json_path: JsonOption = None,
    html_path: HtmlOption = None,
    param: ParamOption = None,
    fail_on: FailOnOption = "info",
    waivers: WaiversOption = None,
    baseline: BaselineOption = None,
    quiet: QuietOption = False,
    verbose: VerboseOption = False,
) -> None:
    """Re-judge saved facts against rule packs, with no network access at all.

    The facts are taken as they were saved (a target that could not be scanned stays an error); only the
    judgement is new. Exit codes as for scan; a FILE that cannot be read or is neither a report nor facts is a
    usage error (2).
    """
    from datetime import UTC, datetime  # noqa: PLC0415

    from scanner.pipeline import judge  # noqa: PLC0415 - keeps --help instant
    from scanner.report import ScanOptions  # noqa: PLC0415
    from scanner.saved import SavedFileError, read_saved_facts  # noqa: PLC0415

    packs = _load_packs(pack, param or [])
    outputs = _parse_outputs(format_ or [], _aliases(json_path, html_path))
    gate = _load_gate(fail_on, waivers, baseline)
    saved = []
    for file in files:
        try:
            saved.append(read_saved_facts(file))
        except SavedFileError as exc:
            _fatal(str(exc), ExitCode.USAGE)
    facts = [item for one in saved for item in one.facts]
    timeout = max((one.timeout for one in saved if one.timeout is not None), default=0.0)
    started = datetime.now(UTC)
    report = judge(facts, packs, ScanOptions(timeout=timeout, packs=[p.id for p in packs]), started, gate)
    _deliver(report, outputs)
    raise typer.Exit(report.exit_code)


def _password(env: str | None, file: Path | None) -> bytes | None:
    if env and file:
        _fatal("--password-env and --password-file exclude each other", ExitCode.USAGE)
    if env:
        value = os.environ.get(env)
        if value is None:
            _fatal(f"environment variable {env} is not set", ExitCode.USAGE)
        return value.encode()
    if file:
        try:
            return file.read_text(encoding="utf-8").splitlines()[0].encode() if file.stat().st_size else b""
        except OSError as exc:
            _fatal(f"cannot read password file {file}: {exc.strerror}", ExitCode.USAGE)
    return None


@rules_app.command("list")
def rules_list() -> None:
    """List the built-in rule packs."""
    problems = []
    for file in builtin_pack_files():
        try:
            pack = load_pack(file)
        except PackError as exc:
            problems.append(str(exc))
            continue
        typer.echo(f"{pack.id:24} {pack.version:8} {len(pack.rules):3} rules  {pack.title}")
    if problems:
        _fatal("; ".join(problems), ExitCode.INTERNAL)


VALIDATE_EXIT_HELP = """Exit codes:
  0  every FILE is a valid rule pack
  2  at least one FILE has a problem: each is printed on stderr as
     FILE:LINE:COLUMN: message"""


def _pack_file(ref: str) -> Path:
    """A path as given, or the file of a built-in pack when ``ref`` is an id and no such file exists."""
    path = Path(ref)
    if not path.exists():
        for file in builtin_pack_files():
            if file.stem == ref:
                return file
    return path


@rules_app.command("validate", epilog="\b\n" + VALIDATE_EXIT_HELP)
def rules_validate(
    files: Annotated[
        list[str],
        typer.Argument(help="Rule pack files (or built-in pack ids) to check.", metavar="FILE...", show_default=False),
    ],
) -> None:
    """Check rule packs without using them: every problem of every FILE, with line and column.

    Prints "OK FILE (ID, N rules)" for each valid pack. A pack with any problem is never used by scan, cert or
    evaluate.
    """
    invalid = problems = 0
    for ref in files:
        try:
            pack = load_pack(_pack_file(ref))
        except PackError as exc:
            invalid += 1
            problems += len(exc.problems)
            for problem in exc.problems:
                typer.echo(_problem_line(problem), err=True)
            continue
        typer.echo(f"OK {ref} ({pack.id}, {len(pack.rules)} rule{'s' * (len(pack.rules) != 1)})")
    if invalid:
        s = "s" * (problems != 1)
        _fatal(f"{problems} problem{s} in {invalid} of {len(files)} pack file{'s' * (len(files) != 1)}", ExitCode.USAGE)


@rules_app.command("show")
def rules_show(
    ref: Annotated[str, typer.Argument(help="Built-in pack id or a pack file.", metavar="ID|PATH", show_default=False)],
    param: ParamOption = None,
) -> None:
    """Print a rule pack in words: its source, parameters, and what each rule demands and why.

    With --param, the rules are shown with this run's parameter values.
    """
    (pack,) = _load_packs([ref], param or [])
    typer.echo("\n".join(describe_pack(pack, _width())))


def _width() -> int:
    return max(60, min(100, shutil.get_terminal_size((88, 24)).columns))


def _value(value: Any) -> str:
    """A value as it would be written in a pack (YAML flow style)."""
    try:
        text = yaml.safe_dump(value, default_flow_style=True, width=10_000, allow_unicode=True)
    except yaml.YAMLError:
        return str(value)
    return text.removesuffix("\n").removesuffix("\n...").strip()


def _values(values: Any) -> str:
    if isinstance(values, list | tuple):
        return "[" + ", ".join(str(v) for v in values) + "]"
    return _value(values)


def _describe(argument: Any) -> str:
    describe = getattr(argument, "describe", None)
    return str(describe()) if callable(describe) else _values(argument)


# Words for the list operators; {d} is the matcher's own describe(), {w} the where filter.
_ELEMENT_WORDS = {
    "each": ("every element{w} must satisfy: {d}", "every element{w} must {d}"),
    "some": ("at least one element{w} must satisfy: {d}", "at least one element{w} must {d}"),
    "none": ("no element{w} may satisfy: {d}", "no element{w} may {d}"),
}
_VALUES_WORDS = {
    "only": "must contain only values from {v}",
    "forbid": "must contain none of {v}",
    "require_any": "must contain at least one of {v}",
    "require_all": "must contain all of {v}",
}


def constraint_words(subject: str, operator: str, argument: Any, where: Any = None) -> str:
    """``fact protocols: every element (of those where status must equal accepted) must satisfy: ...``."""
    if operator in _VALUES_WORDS:
        return f"{subject} {_VALUES_WORDS[operator].format(v=_values(argument))}"
    if operator in _ELEMENT_WORDS:
        on_objects, on_values = _ELEMENT_WORDS[operator]
        plain_values = getattr(argument, "scalar", None) is not None
        w = f" (of those where {_describe(where)})" if where is not None else ""
        return f"{subject}: " + (on_values if plain_values else on_objects).format(w=w, d=_describe(argument))
    if operator in LIST_OPERATORS:  # an operator added to the table after these words were written
        return f"{subject} {operator}: {_describe(argument)}"
    return f"{subject} must {_describe(argument)}"


def _condition_words(condition: Condition) -> str:
    if condition.fact is not None:
        return constraint_words(f"fact {condition.fact}", condition.operator, condition.argument, condition.where)
    subject = f"parameter {condition.param} (= {_value(condition.value)})"
    return constraint_words(subject, condition.operator, condition.argument)


def describe_rule(rule: Rule, width: int) -> list[str]:
    indent = "    "

    def para(label: str, text: str) -> list[str]:
        if not text:
            return []
        head = f"{indent}{label}: " if label else indent
        return textwrap.wrap(
            " ".join(text.split()),
            width,
            initial_indent=head,
            subsequent_indent=indent + "  ",
            break_on_hyphens=False,
            break_long_words=False,
        )

    lines = textwrap.wrap(
        f"[{rule.severity}] {rule.id} {rule.title}", width, subsequent_indent="  ", break_long_words=False
    )
    lines += para("", constraint_words(f"fact {rule.fact}", rule.operator, rule.argument, rule.where))
    for condition in rule.when:
        lines += para("only when", _condition_words(condition))
    lines += para("Rationale", rule.rationale)
    lines += para("Remediation", rule.remediation)
    if rule.references:
        lines.append(f"{indent}References:")
        lines += [f"{indent}  {ref}" for ref in rule.references]
    return lines


def describe_pack(pack: RulePack, width: int = 88) -> list[str]:
    """The whole pack in plain words, for people reviewing what a policy demands."""

    def wrapped(text: str, indent: str = "  ") -> list[str]:
        return textwrap.wrap(
            " ".join(text.split()), width, initial_indent=indent, subsequent_indent=indent, break_long_words=False
        )

    lines = [pack.title, "=" * min(len(pack.title), width), ""]
    fields = [("id", pack.id), ("version", pack.version), ("file", pack.path), ("sha256", pack.sha256)]
    if pack.extends:
        fields.insert(2, ("extends", ", ".join(pack.extends)))
    lines += [f"{name + ':':9}{value}" for name, value in fields]
    if pack.source:
        lines += ["", "Source"]
        order = ["document", "section", "url", "date", "note"]
        names = [n for n in order if n in pack.source] + [n for n in pack.source if n not in order]
        for name in names:
            lines += textwrap.wrap(
                " ".join(str(pack.source[name]).split()),
                width,
                initial_indent=f"  {name + ':':10}",
                subsequent_indent=" " * 12,
                break_on_hyphens=False,
                break_long_words=False,
            )
    if pack.description:
        lines += ["", "Description", *wrapped(pack.description)]
    params = pack.params
    if params:
        lines += ["", "Parameters (set with --param NAME=VALUE or --param PACK.NAME=VALUE)"]
        for name, param in params.items():
            run = f" (this run: {_value(param.value)})" if param.value != param.default else ""
            lines += textwrap.wrap(
                f"{name} = {_value(param.default)}{run}",
                width,
                initial_indent="  ",
                subsequent_indent="        ",
                break_long_words=False,
                break_on_hyphens=False,
            )
            lines += wrapped(param.description, "      ")
    count = len(pack.rules)
    lines += ["", f"Rules ({count})"]
    for rule in pack.rules:
        lines += ["", *describe_rule(rule, width)]
    return lines


RENDER_EXIT_HELP = """Exit codes:
  0  every report was written
  2  usage error: bad --format, or SAVED is not a readable tlsgate JSON report
  4  a report could not be written"""


@report_app.command("render", epilog="\b\n" + RENDER_EXIT_HELP)
def report_render(
    saved: Annotated[
        Path,
        typer.Argument(
            help="A JSON report written by scan, cert or evaluate (--format json).",
            metavar="SAVED.json",
            show_default=False,
        ),
    ],
    format_: Annotated[
        list[str],
        typer.Option("--format", metavar="FORMAT[=PATH]", help=FORMAT_HELP, show_default=False),
    ],
) -> None:
    """Render a saved JSON report in other formats: nothing is scanned or judged again.

    The report keeps its findings and verdicts as saved (to judge saved facts against other packs, use
    evaluate), so the exit code says whether the reports were written, not whether the policy was met.
    """
    from scanner.saved import SavedFileError, read_report  # noqa: PLC0415

    outputs = _parse_outputs(format_)
    try:
        report = read_report(saved)
    except SavedFileError as exc:
        _fatal(str(exc), ExitCode.USAGE)
    _deliver(report, outputs, summary=False)


BASELINE_EXIT_HELP = """Exit codes:
  0  the baseline was written
  2  usage error: a REPORT is not a readable tlsgate JSON report, or
     the output path cannot be written
  4  the baseline could not be written"""


@baseline_app.command("create", epilog="\b\n" + BASELINE_EXIT_HELP)
def baseline_create(
    reports: Annotated[
        list[Path],
        typer.Argument(
            help="JSON reports written by scan, cert or evaluate (--format json).",
            metavar="REPORT.json...",
            show_default=False,
        ),
    ],
    output: Annotated[
        Path, typer.Option("--output", "-o", metavar="FILE", help="Write the baseline here (- for standard output).")
    ],
) -> None:
    """Make a baseline from saved reports: every failing (target, pack, rule) in them.

    Scan, cert and evaluate with --baseline FILE then report those failures as before, marked as in the
    baseline, but only failures that are not in it fail the run. Waived findings are left out: when their
    waiver expires, they fail again.
    """
    from scanner.gate import baseline_text, make_baseline  # noqa: PLC0415
    from scanner.render import write_atomic  # noqa: PLC0415
    from scanner.saved import SavedFileError, read_report  # noqa: PLC0415

    to_stdout = str(output) == STDOUT
    if not to_stdout:
        _check_output(output)
    loaded = []
    for path in reports:
        try:
            loaded.append((str(path), read_report(path)))
        except SavedFileError as exc:
            _fatal(str(exc), ExitCode.USAGE)
    for name, report in loaded:
        for target in report.targets:
            if target.facts.status != "ok":
                typer.echo(
                    f"tlsgate: warning: {name}: {target.target} was not scanned; any failure it has later is new",
                    err=True,
                )
    baseline = make_baseline(loaded)
    text = baseline_text(baseline)
    targets = len({entry.target for entry in baseline.findings})
    if to_stdout:
        typer.echo(text.encode("utf-8"), nl=False)
    else:
        try:
            write_atomic(output, text)
        except OSError as exc:
            _fatal(f"cannot write {output}: {exc.strerror or exc}", ExitCode.OUTPUT_FAILED)
    where = "standard output" if to_stdout else str(output)
    typer.echo(
        f"baseline: {where} ({_plural(len(baseline.findings), 'failing finding')} on {_plural(targets, 'target')})",
        err=to_stdout,
    )


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", help="Directory for the demo's reports.")] = Path("tlsgate-demo"),
    timeout: Annotated[float, typer.Option("--timeout", min=0.1, max=300)] = 5.0,
) -> None:
    """Start a local TLS endpoint on 127.0.0.1 (certificates made on the fly), scan it, write reports.

    The endpoint is deliberately out of policy (it accepts TLS 1.2), so the reports show a failing
    verdict with its evidence. Exits 0 when the reports were written.
    """
    from scanner.demo import demo_endpoint, make_demo_pki  # noqa: PLC0415 - only the demo needs it

    out.mkdir(parents=True, exist_ok=True)
    packs = _load_packs(DEFAULT_PACKS)
    with (
        tempfile.TemporaryDirectory(prefix="tlsgate-demo-") as tmp,
        demo_endpoint(make_demo_pki(Path(tmp))) as server,
    ):
        typer.echo(f"demo endpoint listening on {server.target} (TLS 1.2 and 1.3)")
        outputs = [Output(fmt, out / f"report{FILE_SUFFIXES[fmt]}") for fmt in OutputFormat]
        probe = ProbeOptions(timeout=timeout, plan=ALL)
        report = _scan([(parse_target(server.target), ConnectOptions())], packs, probe, outputs)
    if report.targets[0].verdict == "error":
        _fatal("the demo endpoint could not be scanned", ExitCode.NOT_CHECKED)
    typer.echo("demo done: open the HTML report in a browser")


def main() -> None:
    # sslyze's bundled trust stores trip cryptography's warnings about legacy serial numbers; they are
    # not about the scanned endpoint and would only confuse a terminal or CI log.
    warnings.filterwarnings("ignore", module=r"sslyze\..*")
    warnings.filterwarnings("ignore", message=r".*serial number.*")
    try:
        # standalone mode: click turns usage errors into exit code 2 with a one-line message.
        app(standalone_mode=True)
    except KeyboardInterrupt:
        typer.echo("tlsgate: interrupted", err=True)
        sys.exit(int(ExitCode.INTERRUPTED))
    except Exception as exc:  # the last line of defence: never a traceback for a user
        typer.echo(f"tlsgate: internal error: {type(exc).__name__}: {exc}", err=True)
        sys.exit(int(ExitCode.INTERNAL))


if __name__ == "__main__":
    main()
