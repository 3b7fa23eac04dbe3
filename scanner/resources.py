"""Where the bundled rule packs and report templates are.

In a wheel they are inside the package (``scanner/_data``, see pyproject's force-include); in a source
checkout or an editable install they are the repository's top-level ``rules/`` and ``reports/``.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def _data_dir(name: str) -> Path:
    installed = _PACKAGE / "_data" / name
    if installed.is_dir():
        return installed
    return _PACKAGE.parent / name


def builtin_rules_dir() -> Path:
    return _data_dir("rules")


def reports_dir() -> Path:
    return _data_dir("reports")
