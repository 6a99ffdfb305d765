"""Load the exercise catalogue (grader/catalogue.toml): order, points and hints."""
from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

CATALOGUE_PATH = Path(__file__).resolve().parent.parent / "catalogue.toml"
TOTAL_POINTS = 100


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
    exercises = [
        Exercise(
            module=entry["module"],
            function=entry["function"],
            hint=entry["hint"],
            checks=tuple(Check(name, points) for name, points in entry["checks"].items()),
            more=entry.get("more", ""),
        )
        for entry in raw["exercise"]
    ]
    modules = tuple(
        Module(m["name"], m["title"], tuple(e for e in exercises if e.module == m["name"]))
        for m in raw["module"]
    )
    catalogue = Catalogue(modules)
    orphans = {e.module for e in exercises} - {m.name for m in modules}
    if orphans:
        raise ValueError(f"catalogue.toml: exercises name undeclared modules {sorted(orphans)}")
    if catalogue.points != TOTAL_POINTS:
        raise ValueError(f"catalogue.toml: points add up to {catalogue.points}, not {TOTAL_POINTS}")
    return catalogue
