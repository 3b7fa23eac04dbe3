"""The options several commands share, declared once, and the helpers that turn them into objects.

Every helper checks what it is given before anything is scanned: a bad value is a usage error (exit 2) with a
message naming the option.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, get_type_hints

import typer

from scanner.cli.errors import fatal, fatal_lines
from scanner.exitcodes import ExitCode
from scanner.findings import SEVERITIES
from scanner.gate import Gate, GateFileError, load_baseline, load_waivers, parse_severity
from scanner.grade import LETTERS, Letter, parse_grade
from scanner.policy.operators import duration
from scanner.probe.connect.endpoint import ClientCredentials
from scanner.render import OutputFormat
from scanner.render.files import destination, writable_problem

# Without --pack every command that judges uses these: the floor every user expects (trust, name, validity,
# revocation, weak keys, signatures, protocols and suites), not one standard's policy.


# --- groups of options that several commands take together -------------------------------------------------


class OptionGroup:
    """Base of the dataclasses whose fields are options that several commands take together, in that order."""


def option_groups(command: Callable[..., None]) -> Callable[..., None]:
    """The command as Typer can read it: each parameter typed as an ``OptionGroup`` becomes that group's fields.

    Typer knows only flat parameters. The fields stand where the group stands, in their order, so ``--help``
    lists them there; the command is called with the group built from their values. Every parameter is keyword
    only: Typer passes them all by name, and a group (having no default) may then follow options that have one.
    """
    hints = get_type_hints(command, include_extras=True)
    groups = {name: hint for name, hint in hints.items() if isinstance(hint, type) and issubclass(hint, OptionGroup)}
    flat: list[inspect.Parameter] = []
    for param in inspect.signature(command).parameters.values():
        group = groups.get(param.name)
        if group is None:
            flat.append(param.replace(kind=inspect.Parameter.KEYWORD_ONLY, annotation=hints[param.name]))
            continue
        field_hints = get_type_hints(group, include_extras=True)
        flat.extend(
            inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default, annotation=field_hints[f.name])
            for f in dataclasses.fields(group)  # type: ignore[arg-type]  # an OptionGroup is a dataclass
        )

    @functools.wraps(command)
    def flat_command(**values: Any) -> None:
        for name, group in groups.items():
            fields = dataclasses.fields(group)  # type: ignore[arg-type]
            values[name] = group(**{f.name: values.pop(f.name) for f in fields})
        command(**values)

    flat_command.__signature__ = inspect.Signature(flat, return_annotation=None)  # type: ignore[attr-defined]
    flat_command.__annotations__ = {p.name: p.annotation for p in flat} | {"return": None}
    return flat_command


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


def verbosity() -> int:
    """0 with --quiet (errors only), 2 with --verbose, else 1."""
    return _VERBOSITY["level"]


QuietOption = Annotated[
    bool, typer.Option("--quiet", "-q", callback=_set_quiet, help="No summary: errors only, the exit code speaks.")
]
VerboseOption = Annotated[
    bool,
    typer.Option("--verbose", "-v", callback=_set_verbose, help="Every rule's result and a facts line per target."),
]


# --- reports: --format, --json, --html -------------------------------------------------------------------

STDOUT = "-"
FORMAT_NAMES = ", ".join(fmt.value for fmt in OutputFormat)
FORMAT_HELP = (
    f"Write a report: FORMAT is one of {FORMAT_NAMES}; PATH a file, or - (also when =PATH is left out) for "
    "standard output, which then carries nothing else. Repeatable, each FORMAT once."
)


FormatOption = Annotated[
    list[str] | None, typer.Option("--format", metavar="FORMAT[=PATH]", help=FORMAT_HELP, show_default=False)
]
JsonOption = Annotated[
    Path | None, typer.Option("--json", metavar="FILE", help="Write the JSON report here (--format json=FILE).")
]
HtmlOption = Annotated[
    Path | None, typer.Option("--html", metavar="FILE", help="Write the HTML report here (--format html=FILE).")
]


@dataclass(frozen=True)
class Output:
    """One report to write: its format, and its file or standard output (``path`` None)."""

    format: OutputFormat
    path: Path | None


def parse_outputs(specs: Sequence[str], aliases: Sequence[tuple[str, OutputFormat, Path | None]] = ()) -> list[Output]:
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
            fatal(f"--format {spec!r}: unknown format {name.strip()!r} (one of {FORMAT_NAMES})", ExitCode.USAGE)
        if sep and not raw:
            fatal(f"--format {spec!r}: no path after '=' (use - for standard output)", ExitCode.USAGE)
        path = None if not sep or raw == STDOUT else Path(raw)
        named.append((f"--format {spec}", fmt, path))
    for option, fmt, alias_path in aliases:
        if alias_path is not None:
            named.append((f"{option} {alias_path}", fmt, None if str(alias_path) == STDOUT else alias_path))
    outputs: list[Output] = []
    for index, (given, fmt, path) in enumerate(named):
        earlier = next((g for g, f, _ in named[:index] if f is fmt), None)
        if earlier is not None:
            fatal(f"the {fmt.value} report is asked for twice ({earlier} and {given})", ExitCode.USAGE)
        outputs.append(Output(fmt, path))
    to_stdout = [o.format.value for o in outputs if o.path is None or names_stdout(o.path)]
    if len(to_stdout) > 1:
        fatal(f"only one report can go to standard output, not {' and '.join(to_stdout)}", ExitCode.USAGE)
    files = [o.path.resolve() for o in outputs if o.path is not None]
    for path in files:
        if files.count(path) > 1:
            fatal(f"two reports would be written to the same file {path}", ExitCode.USAGE)
    for output in outputs:
        check_output(output.path)
    return outputs


def names_stdout(path: Path) -> bool:
    """``/dev/stdout`` and the like (through any symlinks) are standard output too."""
    try:
        return destination(path).is_stdout
    except OSError:
        return False


@dataclass(frozen=True)
class ReportOptions(OptionGroup):
    """``--format``, ``--json`` and ``--html``: the reports a command that judges writes."""

    format_: FormatOption = None
    json_path: JsonOption = None
    html_path: HtmlOption = None

    def outputs(self) -> list[Output]:
        aliases = [("--json", OutputFormat.json, self.json_path), ("--html", OutputFormat.html, self.html_path)]
        return parse_outputs(self.format_ or [], aliases)


def check_output(path: Path | None) -> None:
    """Refuse before scanning, not after: a long scan must not end in 'cannot write the report'."""
    problem = writable_problem(path) if path is not None else None
    if problem is not None:
        fatal(f"cannot write {path}: {problem}", ExitCode.USAGE)


def saved_files_argument(help_text: str, metavar: str) -> Any:
    """The saved files a command reads instead of scanning (reports, facts): no default to show."""
    return typer.Argument(help=help_text, metavar=metavar, show_default=False)


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

GRADE_NAMES = ", ".join(LETTERS)
MinGradeOption = Annotated[
    str | None,
    typer.Option(
        "--min-grade",
        metavar="GRADE",
        help=f"Fail (exit 1) when a target's grade (docs/grade.md) is below this: {GRADE_NAMES}. T (not trusted) "
        "and M (name mismatch) are below any.",
        show_default=False,
    ),
]


def load_min_grade(text: str | None) -> Letter | None:
    """--min-grade's letter; a word that is not one is a usage error (2)."""
    if text is None:
        return None
    letter = parse_grade(text)
    if letter is None:
        fatal(f"--min-grade {text!r}: not a grade; one of {GRADE_NAMES}", ExitCode.USAGE)
    return letter


def load_gate(fail_on: str, waivers: Path | None, baseline: Path | None, min_grade: str | None = None) -> Gate:
    """The gate's options, every file read and checked now: a bad one is a usage error before scanning."""
    severity = parse_severity(fail_on)
    if severity is None:
        close = difflib.get_close_matches(fail_on.strip().lower(), SEVERITIES, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        fatal(f"--fail-on {fail_on!r}: not a severity{hint}; one of {SEVERITY_NAMES}", ExitCode.USAGE)
    letter = load_min_grade(min_grade)
    problems: list[str] = []
    loaded_waivers = loaded_baseline = None
    try:
        loaded_waivers = load_waivers(waivers) if waivers is not None else None
    except GateFileError as exc:
        problems.extend(p.as_line() for p in exc.problems)
    try:
        loaded_baseline = load_baseline(baseline) if baseline is not None else None
    except GateFileError as exc:
        problems.extend(p.as_line() for p in exc.problems)
    if problems:
        fatal_lines(problems, ExitCode.USAGE)
    return Gate(fail_on=severity, waivers=loaded_waivers, baseline=loaded_baseline, min_grade=letter)


@dataclass(frozen=True)
class VerdictOptions(OptionGroup):
    """The options every command that judges ends with: what fails the run, and how much the summary says."""

    fail_on: FailOnOption = "info"
    waivers: WaiversOption = None
    baseline: BaselineOption = None
    min_grade: MinGradeOption = None
    quiet: QuietOption = False
    verbose: VerboseOption = False

    def gate(self) -> Gate:
        return load_gate(self.fail_on, self.waivers, self.baseline, self.min_grade)


# --- client credentials and trust stores (scan) -----------------------------------------------------------

ClientCertOption = Annotated[
    Path | None, typer.Option("--client-cert", metavar="PEM", help="Client certificate (chain), PEM.")
]
ClientKeyOption = Annotated[Path | None, typer.Option("--client-key", metavar="PEM", help="Client private key, PEM.")]
ClientP12Option = Annotated[
    Path | None, typer.Option("--client-p12", metavar="FILE", help="Client certificate and key as PKCS#12.")
]
ClientPasswordEnvOption = Annotated[
    str | None,
    typer.Option(
        "--client-password-env",
        metavar="VAR",
        help="Environment variable holding the PKCS#12 or key password (never pass it on the command line).",
    ),
]
ClientPasswordFileOption = Annotated[
    Path | None, typer.Option("--client-password-file", metavar="FILE", help="File holding that password.")
]
CaFileOption = Annotated[
    list[Path] | None,
    typer.Option("--ca-file", metavar="PEM", help="Trust the CAs of this PEM bundle (its own verdict); repeatable."),
]
CaPathOption = Annotated[
    list[Path] | None,
    typer.Option("--ca-path", metavar="DIR", help="Trust a hashed CA directory (OpenSSL CApath); repeatable."),
]
TruststoreOption = Annotated[
    Path | None, typer.Option("--truststore", metavar="FILE", help="Trust a PKCS#12 or JKS truststore (Java).")
]
TruststorePasswordEnvOption = Annotated[
    str | None, typer.Option("--truststore-password-env", metavar="VAR", help="Variable holding its password.")
]
TruststorePasswordFileOption = Annotated[
    Path | None, typer.Option("--truststore-password-file", metavar="FILE", help="File holding its password.")
]
SystemTrustOption = Annotated[
    bool, typer.Option("--system-trust", help="Also judge trust against the operating system's CA bundle.")
]
PinOption = Annotated[
    list[str] | None,
    typer.Option(
        "--pin",
        metavar="PIN|FILE",
        help="Accept only these certificates or keys: a certificate's SHA-256 in hex (colons, any case), a key's "
        "SHA-256 in base64 (HPKP pin-sha256), or a file of certificates or pins; repeatable, for rotation. "
        "Judged as the 'pin' trust result (the pinned-peer pack).",
    ),
]


@dataclass(frozen=True)
class ClientCertificateOptions(OptionGroup):
    """The client certificate scan presents (mTLS): PEM certificate and key, or PKCS#12, and its password."""

    client_cert: ClientCertOption = None
    client_key: ClientKeyOption = None
    client_p12: ClientP12Option = None
    client_password_env: ClientPasswordEnvOption = None
    client_password_file: ClientPasswordFileOption = None

    def load(self, workdir: Path) -> ClientCredentials | None:
        """The credentials as files in ``workdir``; None when no client certificate is given."""
        if self.client_cert is None and self.client_key is None and self.client_p12 is None:
            if self.client_password_env or self.client_password_file:
                fatal("--client-password-env/--client-password-file need --client-p12 or --client-key", ExitCode.USAGE)
            return None
        from scanner.probe.connect.credentials import CredentialsError, load_credentials  # noqa: PLC0415 - only with mTLS

        try:
            return load_credentials(
                self.client_cert,
                self.client_key,
                self.client_p12,
                self.client_password_env,
                self.client_password_file,
                workdir,
            )
        except CredentialsError as exc:
            fatal(str(exc), ExitCode.USAGE)


# --- timeouts ---------------------------------------------------------------------------------------------

TimeoutOption = Annotated[
    float,
    typer.Option(
        "--timeout",
        min=0.1,
        max=300,
        metavar="SECONDS",
        help="Seconds for each step (connect, STARTTLS, hello and answer, handshake), as a whole.",
    ),
]


def duration_flag(name: str, help_text: str) -> Any:
    """An option taking a DURATION, declared so; ``duration_option`` reads its value."""
    return typer.Option(name, metavar="DURATION", help=help_text)


def duration_option(option: str, text: str | None) -> float | None:
    """``90``, ``90s``, ``10m``, ``1h`` as seconds; anything else, or nothing positive, is a usage error."""
    if text is None:
        return None
    raw = text.strip()
    seconds = duration(raw + "s" if raw.replace(".", "", 1).isdigit() else raw, "seconds")
    if seconds is None or seconds <= 0:
        fatal(f"{option} {text!r}: expected a positive duration such as 90s, 10m or 1h", ExitCode.USAGE)
    return seconds


# --- the store (history): --store, TLSGATE_STORE ------------------------------------------------------------

StoreOption = Annotated[
    str | None,
    typer.Option(
        "--store",
        metavar="URL",
        envvar="TLSGATE_STORE",
        show_envvar=True,
        help="Record the run in this store (history, diff, expiring): sqlite:///PATH or postgresql://USER@HOST/DB "
        "(docs/history.md). A store that cannot be opened is exit 2 before scanning.",
    ),
]
