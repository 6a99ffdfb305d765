"""The rooms of the grader hold what ARCHITECTURE.md says they hold: grader/core depends on
the sandbox's protocol only, never on its processes; what runs inside the sandbox imports
nothing from the grader and nothing of the curriculum; no module keeps state in globals."""
from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO
from grader.core import catalogue

GRADER = REPO / "grader"
INSIDE_THE_SANDBOX = ("worker.py", "protocol.py", "mlflow_patches.py", "speedups.py", "confine.py")


def imported(path: Path) -> set[str]:
    """Every module a file imports, anywhere in it (``from a import b``: ``a.b`` and ``a``)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names |= {node.module, *(f"{node.module}.{alias.name}" for alias in node.names)}
    return names


def test_core_imports_only_the_protocol_from_the_sandbox():
    for path in sorted((GRADER / "core").glob("*.py")):
        from_sandbox = {name for name in imported(path) if name.startswith("grader.sandbox.")
                        and not (name + ".").startswith("grader.sandbox.protocol.")}
        assert not from_sandbox, f"grader/core/{path.name} imports {sorted(from_sandbox)}: core may use the sandbox's protocol only"


def test_what_runs_in_the_sandbox_imports_nothing_from_the_grader_nor_knows_the_curriculum():
    functions = {e.function for e in catalogue.load().exercises}
    modules = {m.name for m in catalogue.load().modules}
    for name in INSIDE_THE_SANDBOX:
        path = GRADER / "sandbox" / name
        assert not {n for n in imported(path) if n == "grader" or n.startswith("grader.")}, f"{name} imports the grader"
        words = {n.id for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.Name)} | {
            n.value for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
        assert not words & (functions | modules), f"{name} names the curriculum's {sorted(words & (functions | modules))}"


def test_no_module_of_the_grader_rebinds_its_globals():
    for path in sorted(GRADER.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        rebinding = [node.lineno for node in ast.walk(tree) if isinstance(node, ast.Global)]
        assert not rebinding, f"{path.relative_to(REPO)}:{rebinding[0]} keeps state in a module global"
