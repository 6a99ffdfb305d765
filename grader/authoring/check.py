"""`python -m grader check`: in seconds, and grading nothing, whether the kit's parts agree —
the catalogue, the solutions, the stubs, the notebooks and the course, CURRICULUM.md, the
README's table, and the checks of grader/test_*.py. One line per problem, naming the file
and the fix."""
from __future__ import annotations

import ast

from grader import KIT_ROOT
from grader.authoring import generated, readme, stubgen
from grader.core import catalogue


def problems() -> list[str]:
    try:
        catalogue.load()
    except (OSError, KeyError, ValueError) as error:  # a TOML error is a ValueError
        return [f"grader/catalogue.toml: {_said(error)}: fix it, then run `python -m grader check` again"]
    broken, checks = _solutions(), catalogue.unmatched_checks()
    if broken:
        return broken + checks  # every generated file is made from the solutions: fix them first
    try:
        return checks + _stub_signatures() + generated.drifted()
    except stubgen.MarkerError as error:
        return checks + [f"solutions/{error}: fix the solution's markers"]
    except readme.MarkerError as error:
        return checks + [f"README.md: {error}: put them back around the points table"]


def _said(error: Exception) -> str:
    """What went wrong, in a line (a missing key reads as its bare name)."""
    return f"an entry lacks {error}" if isinstance(error, KeyError) else str(error).splitlines()[0]


def _definitions(folder: str, module: str) -> dict[str, ast.AST]:
    return stubgen.top_level_definitions((KIT_ROOT / folder / f"{module}.py").read_text(encoding="utf-8"))


def _solutions() -> list[str]:
    """Each module's solution there and parsed, defining every function the catalogue lists."""
    found = []
    for module in catalogue.load().modules:
        where = f"solutions/{module.name}.py"
        try:
            defined = _definitions("solutions", module.name)
        except OSError:
            found.append(f"{where}: missing, though grader/catalogue.toml declares module {module.name}: write it")
            continue
        except SyntaxError as error:
            found.append(f"{where}: does not parse (line {error.lineno}: {error.msg}): fix it")
            continue
        found += [f"{where}: no function `{e.function}`, which grader/catalogue.toml lists: define it, or take its "
                  "[[exercise]] out of the catalogue"
                  for e in module.exercises if not isinstance(defined.get(e.function), (ast.FunctionDef, ast.AsyncFunctionDef))]
    return found


def _stub_signatures() -> list[str]:
    """Each catalogued function's stub takes what its solution takes (the solutions are sound by now)."""
    found = []
    for module in catalogue.load().modules:
        solutions = _definitions("solutions", module.name)
        try:
            stubs = _definitions("exercises", module.name)
        except (OSError, SyntaxError):
            continue  # the drift check names the file
        found += [f"exercises/{module.name}.py: `{e.function}{_signature(stubs[e.function])}` is not the solution's "
                  f"`{e.function}{_signature(solutions[e.function])}`: run `python -m grader generate`"
                  for e in module.exercises
                  if e.function in stubs and _signature(stubs[e.function]) != _signature(solutions[e.function])]
    return found


def _signature(node: ast.AST) -> str:
    if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return " (not a function)"
    return f"({ast.unparse(node.args)})" + (f" -> {ast.unparse(node.returns)}" if node.returns is not None else "")
