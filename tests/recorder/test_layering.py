"""`recorder` never imports `mock_server` (the dependency points one way only)."""

from __future__ import annotations

import ast
from pathlib import Path

RECORDER = Path(__file__).resolve().parents[2] / "recorder"


def _imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_recorder_never_imports_mock_server():
    files = sorted(RECORDER.glob("*.py"))
    assert files
    offenders = {
        f.name: sorted(m for m in _imported_modules(f) if m.split(".")[0] == "mock_server")
        for f in files
    }
    assert {name: mods for name, mods in offenders.items() if mods} == {}
