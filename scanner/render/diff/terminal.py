"""The diff a person reads: a headline, then per changed target what changed, one line each (rich, colour on a
terminal). Report text (target, certificate and rule names) goes through ``printable`` and into rich as ``Text``."""

from __future__ import annotations

from rich.console import Console
from rich.text import Text

from scanner.diff import ReportDiff
from scanner.render.diff.lines import headline, pack_lines, target_lines, target_name
from scanner.textsafe import printable

_STYLE = {"regression": "bold red", "worse": "red", "better": "green", "change": "", "note": "dim"}


def summary_lines(diff: ReportDiff) -> list[Text]:
    lines = [Text(printable(f"{diff.before.source} \u2192 {diff.after.source}: {headline(diff)}"), style="bold")]
    lines.extend(Text(printable(line), style="dim") for line in pack_lines(diff))
    for target in diff.targets:
        changes = target_lines(target)
        if not changes:
            continue
        lines.append(Text(printable(target_name(target))))
        lines.extend(Text(f"    {printable(line.text)}", style=_STYLE[line.kind]) for line in changes)
    return lines


def print_summary(diff: ReportDiff, *, err: bool = False) -> None:
    console = Console(stderr=err, highlight=False, soft_wrap=True)
    for line in summary_lines(diff):
        console.print(line)
