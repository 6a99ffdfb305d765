"""Load the exercise catalogue (grader/catalogue.toml): order, points and hints.

Totals are sums, never written down but once: a module's points are its exercises', the
kit's are its modules', and must come to the catalogue's ``total``. The checks of module ``M`` are the file ``grader/test_M.py``: its class
``Test_<function>`` checks one function, each ``test_<check>`` method one check of it;
``unmatched_checks`` names where the two part (``pytest grader`` and ``python -m grader
check`` refuse the kit then).
"""
from __future__ import annotations

import ast
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from grader import KIT_ROOT

CATALOGUE_PATH = KIT_ROOT / "grader" / "catalogue.toml"
CHECKS_PREFIX = "test_"  # grader/test_<module>.py
CLASS_PREFIX = "Test_"  # class Test_<function>


@dataclass(frozen=True)
class Check:
    name: str
    points: int


@dataclass(frozen=True)
class Exercise:
    module: str
    function: str
    hint: str
    checks: tuple[Check, ...]
    more: str = ""  # a second, more specific hint (`python -m grader hint FUNCTION --more`)
    proves: str = ""  # what its checks prove, from what the store holds (CURRICULUM.md)

    @property
    def key(self) -> str:
        """The name used in gradebooks and results: ``<module>.<function>``."""
        return f"{self.module}.{self.function}"

    @property
    def points(self) -> int:
        return sum(check.points for check in self.checks)

    def check(self, name: str) -> Check:
        for check in self.checks:
            if check.name == name:
                return check
        raise KeyError(f"{self.key} has no check called {name!r} in catalogue.toml")


@dataclass(frozen=True)
class Module:
    name: str
    title: str
    exercises: tuple[Exercise, ...]
    teaches: str = ""  # what it teaches, in a line (the README's points table)

    @property
    def points(self) -> int:
        return sum(exercise.points for exercise in self.exercises)


@dataclass(frozen=True)
class Catalogue:
    modules: tuple[Module, ...]

    @property
    def exercises(self) -> tuple[Exercise, ...]:
        return tuple(e for module in self.modules for e in module.exercises)

    @property
    def points(self) -> int:
        return sum(module.points for module in self.modules)

    def exercise(self, module: str, function: str) -> Exercise:
        for exercise in self.exercises:
            if exercise.module == module and exercise.function == function:
                return exercise
        raise KeyError(f"catalogue.toml has no exercise {module}.{function}")

    def module(self, name: str) -> Module:
        for module in self.modules:
            if module.name == name:
                return module
        raise KeyError(f"catalogue.toml has no module {name}")


@cache
def load(path: Path = CATALOGUE_PATH) -> Catalogue:
    raw = tomllib.loads(path.read_text(encoding="utf-8"))
    unsaid = [entry.get("function", "?") for entry in raw["exercise"] if not str(entry.get("proves", "")).strip()]
    if unsaid:
        raise ValueError(f"catalogue.toml: {', '.join(unsaid)} say(s) nothing of what the checks prove: "
                         "give each [[exercise]] a `proves` line (CURRICULUM.md shows it)")
    exercises = [
        Exercise(
            module=entry["module"],
            function=entry["function"],
            hint=entry["hint"],
            checks=tuple(Check(name, points) for name, points in entry["checks"].items()),
            more=entry.get("more", ""),
            proves=entry["proves"],
        )
        for entry in raw["exercise"]
    ]
    modules = tuple(
        Module(m["name"], m["title"], tuple(e for e in exercises if e.module == m["name"]), m.get("teaches", ""))
        for m in raw["module"]
    )
    orphans = {e.module for e in exercises} - {m.name for m in modules}
    if orphans:
        raise ValueError(f"catalogue.toml: exercises name undeclared modules {sorted(orphans)}")
    catalogue = Catalogue(modules)
    if "total" in raw and catalogue.points != raw["total"]:
        raise ValueError(f"catalogue.toml: the checks' points add up to {catalogue.points}, not its total of "
                         f"{raw['total']}: take the points of what was added from the other checks")
    return catalogue


def checks_file(module: str, root: Path = KIT_ROOT) -> Path:
    """The file of a module's checks."""
    return root / "grader" / f"{CHECKS_PREFIX}{module}.py"


def module_of(checks: Path) -> str:
    """The module a file of checks checks, from its name (``test_ex01_tracking.py``)."""
    return Path(checks).stem.removeprefix(CHECKS_PREFIX)


def function_of(check_class: type) -> str:
    """The function a check class checks, from its name (``Test_log_run``)."""
    return check_class.__name__.removeprefix(CLASS_PREFIX)


def node_id(exercise: Exercise) -> str:
    """pytest's id of the checks of one function: ``.../test_<module>.py::Test_<function>``."""
    return f"{checks_file(exercise.module)}::{CLASS_PREFIX}{exercise.function}"


def written_checks(checks: Path) -> dict[str, list[str]]:
    """Function -> the checks a file of checks writes for it: its ``Test_<function>`` classes
    and their ``test_<check>`` methods, read with ``ast`` (nothing imported: seconds, no MLflow)."""
    tree = ast.parse(checks.read_text(encoding="utf-8"), str(checks))
    return {node.name.removeprefix(CLASS_PREFIX): [method.name.removeprefix(CHECKS_PREFIX) for method in node.body
                                                    if isinstance(method, (ast.FunctionDef, ast.AsyncFunctionDef))
                                                    and method.name.startswith(CHECKS_PREFIX)]
            for node in tree.body if isinstance(node, ast.ClassDef) and node.name.startswith(CLASS_PREFIX)}


def unmatched_checks() -> list[str]:
    """Where the catalogue's checks and the test methods of grader/test_*.py part, one line
    each naming the check or method and where it was expected: a check without its method
    would drop out of the grade unseen (the solutions would score 99 of 100), a method
    without its check would be graded for no points."""
    written, problems = {}, []
    for path in sorted((KIT_ROOT / "grader").glob(f"{CHECKS_PREFIX}*.py")):
        try:
            written[module_of(path)] = written_checks(path)
        except SyntaxError as error:
            problems.append(f"{_relative(path)}: does not parse (line {error.lineno}: {error.msg}): fix it")
    return problems + _checks_without_methods(written) + _methods_without_checks(written)


def _relative(path: Path) -> str:
    return str(path.relative_to(KIT_ROOT))


def _checks_without_methods(written: dict[str, dict[str, list[str]]]) -> list[str]:
    return [f"grader/catalogue.toml: check `{check.name}` of {exercise.key} has no test method: expected "
            f"`def {CHECKS_PREFIX}{check.name}(self, scenario)` in class {CLASS_PREFIX}{exercise.function} of "
            f"{_relative(checks_file(exercise.module))}"
            for exercise in load().exercises for check in exercise.checks
            if check.name not in written.get(exercise.module, {}).get(exercise.function, [])]


def _methods_without_checks(written: dict[str, dict[str, list[str]]]) -> list[str]:
    declared = {(e.module, e.function): {check.name for check in e.checks} for e in load().exercises}
    problems = []
    for module, classes in written.items():
        where = _relative(checks_file(module))
        for function, methods in classes.items():
            if (module, function) not in declared:
                problems.append(f"{where}: class {CLASS_PREFIX}{function} checks no exercise of grader/catalogue.toml: "
                                f"expected an [[exercise]] with module = \"{module}\" and function = \"{function}\"")
                continue
            problems += [f"{where}: {CLASS_PREFIX}{function}.{CHECKS_PREFIX}{name} has no check in grader/catalogue.toml: "
                         f"expected `{name} = <points>` in the checks of the [[exercise]] {module}.{function}"
                         for name in methods if name not in declared[(module, function)]]
    return problems
