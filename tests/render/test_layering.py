"""The renderers read the gate's decisions from the report; none decides again."""

from __future__ import annotations

import ast
from pathlib import Path

import scanner.render

DECIDERS = {"scanner.gate", "scanner.exitcodes"}


def test_no_renderer_imports_the_gate_or_the_exit_codes() -> None:
    for path in sorted(Path(scanner.render.__file__).parent.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
        imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        assert not imported & DECIDERS, f"{path.name} imports {sorted(imported & DECIDERS)}"
