"""The diff as Markdown, for a pull-request comment: the headline, then per changed target a list of its changes.
Every line is escaped (scanner.render.markdown.escape): a certificate name cannot inject markup."""

from __future__ import annotations

from scanner.diff import ReportDiff
from scanner.render.diff.lines import headline, pack_lines, target_lines, target_name
from scanner.render.markdown import escape

LIMIT = 2000  # a rotated certificate names two subjects and two issuers
_MARK = {"regression": "\u274c ", "worse": "\u26a0\ufe0f ", "better": "\u2705 ", "change": "", "note": ""}


def render(diff: ReportDiff) -> str:
    out = [
        "# tlsgate diff",
        "",
        f"{escape(diff.before.source)} \u2192 {escape(diff.after.source)}: **{escape(headline(diff))}**",
        "",
    ]
    out.extend(f"- {escape(line, LIMIT)}" for line in pack_lines(diff))
    for target in diff.targets:
        changes = target_lines(target)
        if not changes:
            continue
        out += ["", f"## {escape(target_name(target))}", ""]
        out.extend(f"- {_MARK[line.kind]}{escape(line.text, LIMIT)}" for line in changes)
    return "\n".join(out) + "\n"
