"""The learner's source files: where they are, a private copy to import from, and
whether a function is still an untouched stub. Reads code, never runs it."""
from __future__ import annotations

import ast
import functools
import shutil
import threading
from pathlib import Path

from grader.core import catalogue
from grader.sandbox import files


class TargetError(Exception):
    """The folder to grade is not one the grader can read."""


def resolve_target(path: Path) -> Path:
    """The folder holding the modules: ``path`` itself, or its ``exercises/`` subfolder."""
    modules = [m.name for m in catalogue.load().modules]
    if not path.is_dir():
        raise TargetError(f"{path} is not a folder")
    for folder in (path / "exercises", path):
        if any((folder / f"{name}.py").is_file() for name in modules):
            return folder
    raise TargetError(f"{path} holds none of {', '.join(m + '.py' for m in modules)}")


def copy_sources(folder: Path, destination: Path) -> Path:
    """Learner modules are imported from a copy, so nothing is ever written beside them.
    Regular files only: a link could name any file of the machine."""
    files.make_shared_folder(destination)
    for source in folder.glob("*.py"):
        if source.is_file() and not source.is_symlink():
            shutil.copyfile(source, destination / source.name)
    return destination


# Scenarios run in threads, and CPython 3.11 builds AST objects with interpreter-wide state:
# two parses at once can fail with "SystemError: AST constructor recursion depth mismatch"
# (python/cpython#106905). One parse at a time, and each module's source parsed once.
_PARSING = threading.Lock()


@functools.lru_cache(maxsize=32)
def _parsed(source: str) -> ast.Module | None:
    with _PARSING:
        try:
            return ast.parse(source)
        except SyntaxError:
            return None


def is_untouched_stub(source: str, function: str) -> bool:
    """Whether ``function`` is still exactly a stub: a docstring and ``raise NotImplementedError``,
    defined once, undecorated, never rebound."""
    tree = _parsed(source)
    if tree is None:
        return False
    bindings = [
        node for node in tree.body
        if (isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == function)
        or (isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign, ast.Import, ast.ImportFrom)) and function in ast.dump(node))
    ]
    if len(bindings) != 1 or not isinstance(bindings[0], ast.FunctionDef) or bindings[0].decorator_list:
        return False
    body = [n for n in bindings[0].body if not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))]
    return (
        len(body) == 1 and isinstance(body[0], ast.Raise) and body[0].exc is not None
        and "NotImplementedError" in ast.unparse(body[0].exc).split("(")[0]
    )


def read_module(sources: Path, module: str) -> str | None:
    path = sources / f"{module}.py"
    return path.read_text(encoding="utf-8", errors="replace") if path.is_file() else None


def anything_attempted(sources: Path) -> bool:
    """Whether some curriculum function is more than its stub (else no learner code need run)."""
    for exercise in catalogue.load().exercises:
        code = read_module(sources, exercise.module)
        if code is not None and not is_untouched_stub(code, exercise.function):
            return True
    return False
