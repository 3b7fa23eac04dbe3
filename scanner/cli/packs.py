"""Rule packs on the command line: which packs judge (the default when none is named), ``--pack`` and
``--param``, loaded whole or not at all: a pack with any problem is a usage error (exit 2) listing every problem.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import typer
import yaml

from scanner.cli.errors import fatal, fatal_lines
from scanner.exitcodes import ExitCode
from scanner.policy.pack import PackError, RulePack, UnknownPack, resolve_pack
from scanner.yamlfile import load_value

DEFAULT_PACKS = ("essentials",)
DEFAULT_PACKS_HELP = f"Default: {', '.join(DEFAULT_PACKS)} (tlsgate rules show {DEFAULT_PACKS[0]})."


@dataclass(frozen=True)
class ParamSetting:
    """One ``--param KEY=VALUE``: KEY is NAME (every selected pack declaring it) or PACK.NAME."""

    key: str
    value: Any


PARAM_HELP = (
    "Set a pack parameter for this run: NAME (every selected pack that declares it) or PACK.NAME; "
    "VALUE is read as YAML (3072, true, 90d, [a, b]), or as text when it is not YAML. Repeatable."
)

ParamOption = Annotated[
    list[str] | None, typer.Option("--param", metavar="KEY=VALUE", help=PARAM_HELP, show_default=False)
]


def pack_option(help_text: str) -> Any:
    """``--pack``/``-p``, declared as every command that judges takes it; the help says what that command needs.
    The shell completes built-in pack ids (and, finding none, file names)."""
    return typer.Option("--pack", "-p", metavar="ID|PATH", help=help_text, autocompletion=_builtin_pack_ids)


def _builtin_pack_ids(incomplete: str) -> list[str]:
    from scanner.policy.pack import builtin_pack_files  # noqa: PLC0415 - only when the shell asks

    return [file.stem for file in builtin_pack_files() if file.stem.startswith(incomplete)]  # a pack's id is its name


def parse_params(texts: Sequence[str]) -> list[ParamSetting]:
    settings = []
    for text in texts:
        key, sep, raw = text.partition("=")
        key = key.strip()
        if not sep or not key:
            fatal(f"--param {text!r}: expected KEY=VALUE, KEY being NAME or PACK.NAME", ExitCode.USAGE)
        if not raw.strip():
            fatal(f"--param {key}: no value after '=' (an empty text is written '')", ExitCode.USAGE)
        try:
            value = load_value(raw)
        except yaml.YAMLError:
            # '*.example', '[a-z]+' and '@team' are not YAML but are plain enough text; the pack's type check
            # still rejects text where a number or a list is due
            value = raw
        settings.append(ParamSetting(key, value))
    return settings


def param_overrides(packs: Sequence[RulePack], settings: Sequence[ParamSetting]) -> list[dict[str, Any]]:
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
        fatal_lines(problems, ExitCode.USAGE)
    return overrides


def load_packs(refs: Sequence[str], params: Sequence[str] = ()) -> list[RulePack]:
    """Every pack whole, or exit 2 with every problem: a pack is never half-applied.

    Packs load once with their defaults, to learn who declares which parameter, and again with this run's values.
    """
    settings = parse_params(params)
    packs: list[RulePack] = []
    problems: list[str] = []
    for ref in refs:
        try:
            packs.append(resolve_pack(ref))
        except UnknownPack as exc:
            problems.append(str(exc))
        except PackError as exc:
            problems.extend(p.as_line() for p in exc.problems)
    if problems:
        fatal_lines(problems, ExitCode.USAGE)
    ids = [p.id for p in packs]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        fatal(f"pack {duplicates[0]!r} is named more than once", ExitCode.USAGE)
    if not settings:
        return packs
    overrides = param_overrides(packs, settings)
    loaded: list[RulePack] = []
    for ref, pack, values in zip(refs, packs, overrides, strict=True):
        if not values:
            loaded.append(pack)
            continue
        try:
            loaded.append(resolve_pack(ref, params=values))
        except (UnknownPack, PackError) as exc:
            found = exc.problems if isinstance(exc, PackError) else []
            problems.extend([p.as_line() for p in found] or [str(exc)])
    if problems:
        fatal_lines(problems, ExitCode.USAGE)
    return loaded
