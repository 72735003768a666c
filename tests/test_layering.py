"""The house rules, checked on the source: which module may import which, and module size.

- `recorder` never imports `mock_server` (the dependency points one way only);
- `mock_server.replay` never imports the app, routes, admin or http modules;
- the record and format modules (`recorder.{records, contract, comparison, bodies, cassette,
  errors}`) import no aiohttp, click or Pillow;
- loading replay does not load Pillow;
- no module is over 500 lines unless its docstring says why ("Longer than ...").
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("recorder", "mock_server")
MAX_LINES = 500


def sources() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path) -> set[str]:
    """Absolute names of the modules `path` imports (relative imports resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = (
        module_name(path).rsplit(".", 1)[0] if path.name != "__init__.py" else module_name(path)
    )
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def offenders(modules: list[Path], forbidden: tuple[str, ...]) -> dict[str, list[str]]:
    found = {}
    for path in modules:
        bad = sorted(
            name
            for name in imported(path)
            if any(name == f or name.startswith(f + ".") for f in forbidden)
        )
        if bad:
            found[module_name(path)] = bad
    return found


def test_recorder_never_imports_mock_server():
    recorder = [p for p in sources() if module_name(p).startswith("recorder")]
    assert recorder and offenders(recorder, ("mock_server",)) == {}


def test_replay_never_imports_the_app_routes_admin_or_http():
    replay = [p for p in sources() if module_name(p).startswith("mock_server.replay")]
    forbidden = tuple(f"mock_server.{m}" for m in ("app", "api", "routes", "admin", "http"))
    assert replay and offenders(replay, forbidden) == {}


@pytest.mark.parametrize(
    "module",
    ["records", "contract", "comparison", "bodies", "codec", "reader", "cassette", "errors"],
)
def test_record_and_format_modules_import_no_server_cli_or_imaging(module):
    path = ROOT / "recorder" / f"{module}.py"
    assert offenders([path], ("aiohttp", "click", "PIL", "mock_server")) == {}


def test_loading_replay_does_not_load_pillow():
    code = (
        "import sys, mock_server.replay.engine, mock_server.replay.episodes; "
        "sys.exit('PIL' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr.decode()


def test_no_module_is_over_500_lines_without_a_reason():
    too_long = {}
    for path in sources():
        lines = path.read_text(encoding="utf-8").count("\n")
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
        if lines > MAX_LINES and "Longer than" not in doc:
            too_long[module_name(path)] = lines
    assert too_long == {}
