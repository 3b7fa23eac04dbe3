"""Text from outside made safe to show: what a scanned server, a certificate or a hostile file says is shown as
written, but never acts on the terminal (or on a log viewer, a spreadsheet or a browser) that displays it.

A certificate subject can carry ``ESC [ 2 J`` (clear the screen), ``ESC ] 0 ; ... BEL`` (set the window title),
colour codes or a right-to-left override that makes ``gro.elpmaxe`` read as ``example.org``; printed raw, a
server rewrites what the auditor sees. ``printable`` shows each such character escaped (``\\x1b``,
``\\u{202e}``), so the sequence that follows it is plain text.
"""

from __future__ import annotations

import re

# C0 controls, DEL and C1 controls; the bidirectional embeddings, overrides and isolates and the marks that
# reorder what follows (Trojan Source, CVE-2021-42574); the Unicode line and paragraph separators, which some
# viewers break lines at; lone surrogates (undecodable bytes kept by ``surrogateescape``); the two noncharacters
# XML 1.0 cannot carry.
_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff\ufffe\uffff]"
)
_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escaped(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    return _NAMED.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{{{code:04x}}}")


def printable(text: str) -> str:
    """``text`` with every control character, bidi control and line separator shown escaped; the rest as is."""
    return _UNSAFE.sub(_escaped, text)


def printable_lines(text: str) -> str:
    """Like ``printable``, but line breaks stay line breaks: for a message of several lines that we wrote."""
    return "\n".join(printable(line) for line in text.split("\n"))
