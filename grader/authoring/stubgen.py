"""Generate the learner's stubs (exercises/) from the reference solutions (solutions/).

Every region between a ``### BEGIN SOLUTION`` line and a ``### END SOLUTION`` line (the
markers nbgrader uses) becomes ``raise NotImplementedError``; everything else — module
docstring, imports, signatures, docstrings, class skeletons — is kept as written. The
solutions are the one source: edit them, then run ``python -m grader generate``.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

from grader import KIT_ROOT
from grader.core import catalogue
from grader.core.source import definition_span, raises_not_implemented
BEGIN = re.compile(r"^(?P<indent>\s*)### BEGIN SOLUTION\s*$")
END = re.compile(r"^\s*### END SOLUTION\s*$")
HEADER = (
    "# Your exercise file: replace each `raise NotImplementedError(...)` with your code,\n"
    "# then check your work with `pytest grader` (README.md says more).\n"
    "# (Generated from solutions/{name} by `python -m grader generate`.)\n"
)


class MarkerError(ValueError):
    pass


def _enclosing_functions(source: str) -> dict[int, str]:
    """Line number -> name of the innermost function around it."""
    functions = [n for n in ast.walk(ast.parse(source)) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    owner: dict[int, str] = {}
    for node in sorted(functions, key=lambda n: n.lineno):  # inner functions start later and win
        for line in range(node.lineno, (node.end_lineno or node.lineno) + 1):
            owner[line] = node.name
    return owner


def make_stub(source: str, name: str) -> str:
    """The stub of one solution module."""
    stub = HEADER.format(name=name) + strip_solutions(source, name)
    ast.parse(stub)  # the stub must at least be valid Python
    return stub


def strip_solutions(source: str, name: str) -> str:
    """``source`` with every solution region replaced by ``raise NotImplementedError``
    (also used on single definitions, for the notebooks)."""
    owners = _enclosing_functions(source)
    out, inside = [], False
    for number, line in enumerate(source.splitlines(keepends=True), start=1):
        begin = BEGIN.match(line)
        if begin:
            if inside:
                raise MarkerError(f"{name}:{number}: BEGIN SOLUTION inside another solution region")
            inside = True
            function = owners.get(number, "this part")
            out.append(f'{begin["indent"]}raise NotImplementedError("{function}: replace this line with your code")\n')
        elif END.match(line):
            if not inside:
                raise MarkerError(f"{name}:{number}: END SOLUTION without BEGIN SOLUTION")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise MarkerError(f"{name}: a BEGIN SOLUTION region is never closed")
    return "".join(out)


def drop_markers(source: str) -> str:
    """``source`` with the solution markers removed: the code a learner would submit."""
    return "".join(line for line in source.splitlines(keepends=True) if not (BEGIN.match(line) or END.match(line)))


def expected_stubs(solutions: Path = KIT_ROOT / "solutions") -> dict[str, str]:
    """File name -> stub text, for every module of the catalogue."""
    return {
        f"{m.name}.py": make_stub((solutions / f"{m.name}.py").read_text(encoding="utf-8"), f"{m.name}.py")
        for m in catalogue.load().modules
    }


def expected_files(exercises: Path = KIT_ROOT / "exercises", solutions: Path = KIT_ROOT / "solutions") -> dict[Path, str]:
    return {exercises / name: text for name, text in expected_stubs(solutions).items()}


def stub_of(module: str, function: str, solutions: Path = KIT_ROOT / "solutions") -> str:
    """The stub of one function (or class, or ``Class.method``), as the generator writes it into exercises/."""
    stub = expected_stubs(solutions)[f"{module}.py"]
    first, last = definition_span(stub, function)
    return "".join(stub.splitlines(keepends=True)[first - 1:last])


def learner_work(current: str, stub: str) -> list[str]:
    """The functions (``Class.method`` for methods) of ``current`` that hold code of a
    learner's: neither a stub nor what ``stub`` itself holds. The whole text counts as work
    when it does not parse."""
    try:
        mine = _functions(ast.parse(current))
    except SyntaxError as error:
        return [f"(the file does not parse: line {error.lineno})"]
    given = {name: ast.dump(node) for name, node in _functions(ast.parse(stub)).items()}
    return [name for name, node in mine.items() if not raises_not_implemented(node) and ast.dump(node) != given.get(name)]


def unsafe_overwrites(exercises: Path = KIT_ROOT / "exercises", solutions: Path = KIT_ROOT / "solutions") -> dict[Path, list[str]]:
    """exercises/ files that generating would overwrite although they hold someone's code."""
    found = {}
    for path, text in expected_files(exercises, solutions).items():
        if path.is_file() and path.read_text(encoding="utf-8") != text:
            work = learner_work(path.read_text(encoding="utf-8"), text)
            if work:
                found[path] = work
    return found


def stub_names(text: str) -> list[str]:
    """What a learner may reset in a stub file: its functions, classes and their methods."""
    tree = ast.parse(text)
    return [*_functions(tree), *(node.name for node in tree.body if isinstance(node, ast.ClassDef))]


def top_level_definitions(source: str) -> dict[str, ast.AST]:
    """Name -> the top-level function or class of ``source`` that counts (the last), in source order."""
    return {node.name: node for node in ast.parse(source).body
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}


def _functions(tree: ast.AST, prefix: str = "") -> dict[str, ast.AST]:
    """Qualified name -> definition, for functions at the top level and in classes."""
    found = {}
    for node in getattr(tree, "body", []):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            found[prefix + node.name] = node
        elif isinstance(node, ast.ClassDef):
            found.update(_functions(node, f"{prefix}{node.name}."))
    return found
