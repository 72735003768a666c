"""No command module imports another: each click command lives beside its logic and shares only
library code (and `recorder.cli_errors`, the one error mapping). The one exception is the
`capture-replay` group, `mock_server.cli`, which mounts the others (`record` and the recorder's)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("recorder", "mock_server")
GROUP = "mock_server.cli"


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _trees() -> dict[str, ast.Module]:
    return {
        _module_name(path): ast.parse(path.read_text(encoding="utf-8"), str(path))
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
    }


def _defines_a_command(tree: ast.Module) -> bool:
    """A function decorated with `click.command`/`click.group` or `<group>.command`/`.group`."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for decorator in node.decorator_list:
            target = decorator.func if isinstance(decorator, ast.Call) else decorator
            if isinstance(target, ast.Attribute) and target.attr in ("command", "group"):
                return True
    return False


def _imports(module: str, tree: ast.Module) -> set[str]:
    """Every module `module` imports, at the top or inside a function (`from a import b` counts
    as both `a` and `a.b`, since `b` may be a module)."""
    names: set[str] = set()
    package = module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def test_the_command_modules_are_found():
    commands = {name for name, tree in _trees().items() if _defines_a_command(tree)}
    assert {"recorder.cli", "recorder.cli_guard", "mock_server.record_command", GROUP} <= commands
    assert "recorder.cli_errors" not in commands


def test_no_command_module_imports_another():
    trees = _trees()
    commands = {name for name, tree in trees.items() if _defines_a_command(tree)}
    offenders = {}
    for name in sorted(commands):
        allowed = commands if name == GROUP else set()
        found = (_imports(name, trees[name]) & commands) - allowed - {name}
        if found:
            offenders[name] = sorted(found)
    assert offenders == {}
