"""What the commands ask for, done start to finish: a scan from its request, certificate files or saved facts
judged without a network.

Around the pipeline's ``run_scan`` this plans an inventory's targets (their own packs, parameters and connection
settings), chooses the probes the packs need, loads the trust stores, keeps the targets a ``--resume`` file
already finished, and writes the JSON Lines journal as targets finish. KeyboardInterrupt stops a scan (the command
line turns SIGTERM into one too: scanner/cli/signals.py).

Nothing here prints or exits: a request that cannot run raises RequestError (its lines are for the user, the
command line decides the exit code), and what a person sees while the scan runs reaches them through the
listener the caller passes in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from scanner.execute import Executor, ExecutorError
from scanner.facts import Facts
from scanner.gate import Gate
from scanner.live import Fanout, Journal
from scanner.policy.pack import RulePack
from scanner.probe.options import ConnectOptions, ProbeOptions
from scanner.probe.pki.certchain import CertificateOptions
from scanner.report import Report, ScanOptions, TargetReport
from scanner.targets import Target
from scanner.targets.inventory import Inventory, InventoryError, InventoryTarget, PlannedTarget, Setting
from scanner.targets.planning import plain_targets, plan

if TYPE_CHECKING:
    from scanner.pipeline import Listener


class RequestError(Exception):
    """The request cannot run (a bad inventory plan, trust store or --resume file, a journal that cannot be
    opened, a saved file that is not facts); ``lines`` says every problem, one a line, before anything was
    probed or judged."""

    def __init__(self, lines: Sequence[str]) -> None:
        super().__init__(lines[-1])
        self.lines = list(lines)


@dataclass(frozen=True)
class InventoryRequest:
    """An inventory's selected targets, planned together with the command line's plain targets (scanned after
    them), its packs (``fallback_packs`` for targets naming none) and ``--param`` settings."""

    inventory: Inventory
    selected: Sequence[InventoryTarget]
    fallback_packs: Sequence[str]
    settings: Sequence[Setting]
    workdir: Path  # where per-target client credentials are written for the run's length


@dataclass(frozen=True)
class TrustRequest:
    """The trust stores to judge against, as named on the command line; loaded and checked before probing."""

    ca_files: Sequence[Path] = ()
    ca_paths: Sequence[Path] = ()
    truststore: Path | None = None
    password_env: str | None = None
    password_file: Path | None = None
    system: bool = False
    pins: Sequence[str] = ()
    revocation: bool = True


@dataclass(frozen=True)
class JournalRequest:
    """The JSON Lines journal: a file, or standard output (``path`` None)."""

    path: Path | None


class RunRecorder(Protocol):
    """Where a run is recorded as it goes (the store: scanner/store, kept behind this so the engine knows no SQL):
    it hears each target as it finishes, then the whole report. ``failure`` says why recording stopped, if it did;
    the scan goes on regardless."""

    failure: str | None

    def planned(self, total: int, kept: int = 0) -> None: ...

    def finished(self, result: TargetReport) -> None: ...

    def close(self, report: Report | None, interrupted: bool) -> None: ...


@dataclass(frozen=True)
class ScanRequest:
    targets: Sequence[Target]
    packs: Sequence[RulePack]  # with an inventory, replaced by each target's own packs
    probe: ProbeOptions  # its plan is chosen here, from the packs
    connect: ConnectOptions = field(default_factory=ConnectOptions)
    gate: Gate | None = None
    inventory: InventoryRequest | None = None
    all_facts: bool = False  # every probe, not only those the packs need
    trust: TrustRequest | None = None  # None: the probe options' certificates as they are
    journal: JournalRequest | None = None
    resume: Path | None = None
    recorder: RunRecorder | None = None  # the store, when --store is given
    executor: Executor | None = None  # None: the local pool (scanner/execute)


@dataclass(frozen=True)
class ScanResult:
    report: Report
    interrupted: bool  # stopped by Ctrl-C/SIGTERM: the unfinished targets carry the error class "interrupted"
    journal: Journal | None  # its ``failure`` says why writing stopped, if it did
    recorder: RunRecorder | None = None  # likewise


RESUMABLE = ("interrupted", "time_budget", "no_worker")


def scan(request: ScanRequest, listener: Listener | None = None) -> ScanResult:
    """Plan, probe and judge; the journal, then ``listener``, hear each target as it finishes.

    KeyboardInterrupt (Ctrl-C, or SIGTERM as the command line handles it) stops the scan: the result still holds
    every finished target, the others marked ``interrupted``. The recorder (the store) hears the end in every case:
    a request that cannot run leaves its run ``interrupted``, not ``running``.
    """
    try:
        return _scan(request, listener)
    except BaseException:
        if request.recorder is not None:
            request.recorder.close(None, interrupted=True)
        raise


def _scan(request: ScanRequest, listener: Listener | None) -> ScanResult:
    # Imported here: sslyze is slow to import, and --help or a usage error should not wait for it.
    from scanner.pipeline import run_scan  # noqa: PLC0415
    from scanner.plan import plan_for  # noqa: PLC0415
    from scanner.probe.registry import ProbeKind  # noqa: PLC0415

    targets = [(target, request.connect) for target in request.targets]
    packs = list(request.packs)
    target_packs = None
    if request.inventory is not None:
        planned = _plan_inventory(request.inventory, request.targets, request.connect)
        targets = [(p.target, p.connect) for p in planned]
        target_packs = [list(p.packs) for p in planned]
        packs = list({id(p): p for one in target_packs for p in one}.values())
    kinds = plan_for(packs, all_facts=request.all_facts)
    if request.probe.session_age_check is not None:
        kinds = kinds | {ProbeKind.sessions}
    probe = replace(request.probe, plan=kinds)
    if request.trust is not None:
        probe = replace(probe, certificates=load_trust(request.trust))
    known = _resume(request.resume) if request.resume is not None else {}
    journal = _open_journal(request.journal, request.resume, known)
    fanout = Fanout([one for one in (journal, request.recorder, listener) if one is not None])
    try:
        resumed = str(request.resume) if request.resume is not None and known else None
        outcome = run_scan(targets, packs, probe, request.gate, target_packs, fanout, known, resumed, request.executor)
    except ExecutorError as exc:
        raise RequestError([str(exc)]) from None
    finally:
        if journal is not None:
            journal.close()
    if request.recorder is not None:
        request.recorder.close(outcome.report, outcome.interrupted)
    return ScanResult(outcome.report, outcome.interrupted, journal, request.recorder)


def _plan_inventory(request: InventoryRequest, plain: Sequence[Target], connect: ConnectOptions) -> list[PlannedTarget]:
    items = [*request.selected, *plain_targets(plain)]
    try:
        return plan(request.inventory, items, request.fallback_packs, request.settings, connect, request.workdir)
    except InventoryError as exc:
        raise RequestError([p.as_line() for p in exc.problems]) from None


def load_trust(request: TrustRequest) -> CertificateOptions:
    """The trust stores, loaded and checked now: a bad store is a setup error before scanning."""
    from scanner.probe.pki.certchain import MOZILLA, with_anchors  # noqa: PLC0415 - cryptography-heavy
    from scanner.probe.pki.pins import parse_pins  # noqa: PLC0415
    from scanner.probe.pki.storefiles import TrustStoreError  # noqa: PLC0415
    from scanner.probe.pki.stores import TrustStoreSpec  # noqa: PLC0415

    if (request.password_env or request.password_file) and request.truststore is None:
        raise RequestError(["--truststore-password-env/--truststore-password-file need --truststore"])
    try:
        # The user's own anchors first: chain_complete is judged against the first store.
        stores = [TrustStoreSpec(kind="file", path=path) for path in request.ca_files]
        stores += [TrustStoreSpec(kind="capath", path=path) for path in request.ca_paths]
        if request.truststore is not None:
            stores.append(
                TrustStoreSpec(
                    kind="truststore",
                    path=request.truststore,
                    password_env=request.password_env,
                    password_file=request.password_file,
                )
            )
        if request.system:
            stores.append(TrustStoreSpec(kind="system"))
        stores.append(MOZILLA)
        parse_pins(list(request.pins))
        return with_anchors(CertificateOptions(tuple(stores), tuple(request.pins), request.revocation))
    except TrustStoreError as exc:
        raise RequestError([str(exc)]) from None


def _resume(path: Path) -> dict[str, Facts]:
    """Facts of the targets an earlier run finished (its JSON Lines journal, or a JSON report), by label; targets
    it did not finish (interrupted, out of time, even in part) are scanned again. A file that is not there yet is
    a first run."""
    from scanner.saved import SavedFileError, read_saved_facts  # noqa: PLC0415

    try:
        path.stat()
    except FileNotFoundError:
        return {}
    except OSError as exc:  # a name too long, a parent that is a file
        raise RequestError([f"--resume {path}: {exc.strerror or exc}"]) from None
    try:
        saved = read_saved_facts(path)
    except SavedFileError as exc:
        raise RequestError([f"--resume {exc}"]) from None
    return {facts.target.input: facts for facts in saved.facts if _finished(facts)}


def _finished(facts: Facts) -> bool:
    """Whether a saved target needs no new scan: not stopped as a whole, nor in any one fact (a target whose time
    ran out keeps the facts it had, the others carry the time_budget error)."""
    if facts.error is not None:
        return facts.error.error_class.value not in RESUMABLE
    text = facts.model_dump_json()
    return not any(f'"error_class":"{name}"' in text for name in RESUMABLE)


def _open_journal(request: JournalRequest | None, resume: Path | None, known: dict[str, Facts]) -> Journal | None:
    """The journal, continued (skipping the targets already in it) when it is the --resume file itself."""
    if request is None:
        return None
    same = request.path is not None and resume is not None and request.path.resolve() == resume.resolve()
    try:
        return Journal(request.path, append=same, skip=known if same else ())
    except OSError as exc:
        raise RequestError([f"cannot write {request.path}: {exc.strerror or exc}"]) from None


# --- judging without a network: `cert` and `evaluate` ---------------------------------------------------


def judge_certificate_files(
    files: Sequence[Path],
    password: bytes | None,
    packs: Sequence[RulePack],
    gate: Gate | None,
    pins: Sequence[str] = (),
) -> Report:
    """Certificate files (PEM, DER, PKCS#12) judged by the certificate rules of ``packs``. A file that is missing or
    cannot be opened, or a malformed pin, is a RequestError (the user's mistake, found before anything is judged);
    a readable file that holds no certificate is that target's error, not the run's."""
    from scanner.boundedfile import Unreadable, read_limited  # noqa: PLC0415
    from scanner.certfiles import files_facts  # noqa: PLC0415 - keeps --help instant
    from scanner.pipeline import judge  # noqa: PLC0415
    from scanner.probe.pki.pins import parse_pins  # noqa: PLC0415
    from scanner.probe.pki.storefiles import TrustStoreError  # noqa: PLC0415

    unreadable, contents = [], []
    for file in files:
        try:  # bounded: a directory, a FIFO or /dev/zero is a usage error, never a hang
            contents.append((file, read_limited(file)))
        except Unreadable as exc:
            unreadable.append(f"certificate file {file}: {'is ' if exc.too_large else ''}{exc.reason}")
    if unreadable:
        raise RequestError(unreadable)
    try:
        parsed = parse_pins(list(pins))
    except TrustStoreError as exc:
        raise RequestError([str(exc)]) from None
    started = datetime.now(UTC)
    options = ScanOptions(timeout=0, packs=[p.id for p in packs])
    return judge(files_facts(contents, password, parsed), packs, options, started, gate)


def judge_saved_facts(files: Sequence[Path], packs: Sequence[RulePack], gate: Gate | None) -> Report:
    """Saved facts (a JSON report, JSON Lines, facts JSON) judged again as they were saved; the report keeps the
    longest timeout the saved reports recorded. A file that is not saved facts is a RequestError."""
    from scanner.pipeline import judge  # noqa: PLC0415 - keeps --help instant
    from scanner.saved import SavedFileError, read_saved_facts  # noqa: PLC0415

    saved = []
    for file in files:
        try:
            saved.append(read_saved_facts(file))
        except SavedFileError as exc:
            raise RequestError([str(exc)]) from None
    facts = [item for one in saved for item in one.facts]
    timeout = max((one.timeout for one in saved if one.timeout is not None), default=0.0)
    started = datetime.now(UTC)
    return judge(facts, packs, ScanOptions(timeout=timeout, packs=[p.id for p in packs]), started, gate)
