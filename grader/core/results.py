"""Results of a grading: per check, per function, in total; and results.json, the one
format a grading is written in and read back from (Gradescope's, with the kit's own in
``extra_data``).

``Grade`` is a grading as the scoring process holds it; ``Results`` is results.json, typed:
the scoring process writes it (``Grade.results``), and the batch, the board, the feedback,
the report, ``ui`` and a notebook's ``check`` read it (``Results.read``, which refuses a
malformed file; ``problem`` says why a well-formed one cannot be the grader's own).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grader.core.catalogue import Catalogue, Exercise

HINT = "\nHint: "  # what follows a failing check's message in its output
MAX_RESULTS_BYTES = 8 * 1024 * 1024  # a scoring process writes a few hundred KB at most


# The status of a function, from the statuses of its checks: the first that applies wins.
STATUS_ORDER = ("not_attempted", "error", "failed", "passed")


def test_name(exercise: Exercise, check: str) -> str:
    """A check's name in results.json (``ex01_tracking.log_run: params and metrics``): the
    platforms' packages name their tests and steps by it too."""
    return f"{exercise.key}: {check.replace('_', ' ')}"


@dataclass
class CheckResult:
    exercise: Exercise
    check: str
    points: int
    status: str  # passed | failed | not_attempted | error
    message: str = ""

    @property
    def earned(self) -> int:
        return self.points if self.status == "passed" else 0


@dataclass
class ExerciseResult:
    exercise: Exercise
    checks: list[CheckResult] = field(default_factory=list)

    @property
    def score(self) -> int:
        return sum(c.earned for c in self.checks)

    @property
    def max_score(self) -> int:
        return sum(c.points for c in self.checks)

    @property
    def status(self) -> str:
        statuses = {c.status for c in self.checks}
        return next(s for s in STATUS_ORDER if s in statuses)

    @property
    def message(self) -> str:
        """The first thing to fix."""
        return next((c.message for c in self.checks if c.status != "passed"), "")


@dataclass
class Grade:
    catalogue: Catalogue
    checks: list[CheckResult] = field(default_factory=list)
    seed: int | None = None
    seconds: float = 0.0
    broken: dict[str, dict] = field(default_factory=dict)  # module -> why it cannot be imported
    notes: dict[str, list[str]] = field(default_factory=dict)  # module.function -> notes that cost nothing

    def exercises(self) -> list[ExerciseResult]:
        """Graded functions, in catalogue order."""
        by_key: dict[str, ExerciseResult] = {}
        for check in self.checks:
            by_key.setdefault(check.exercise.key, ExerciseResult(check.exercise)).checks.append(check)
        return [by_key[e.key] for e in self.catalogue.exercises if e.key in by_key]

    @property
    def score(self) -> int:
        return sum(c.earned for c in self.checks)

    @property
    def max_score(self) -> int:
        return sum(c.points for c in self.checks)

    def results(self, extra: dict | None = None) -> "Results":
        """This grading as results.json holds it; ``extra``: more for ``extra_data``."""
        noted = set()
        tests = []
        for c in self.checks:
            output = c.message if c.status == "passed" else self._with_hint(c)
            if c.exercise.key in self.notes and c.exercise.key not in noted:  # once per function
                noted.add(c.exercise.key)
                output = "\n".join([output, *(f"Note: {n}" for n in self.notes[c.exercise.key])]).strip()
            tests.append(TestEntry(test_name(c.exercise, c.check), c.earned, c.points,
                                   "passed" if c.status == "passed" else "failed", output))
        exercises = {r.exercise.key: FunctionEntry(r.score, r.max_score, r.status, tuple(self.notes.get(r.exercise.key, ())))
                     for r in self.exercises()}
        return Results(self.score, self.max_score, round(self.seconds, 2), tests, self.seed, exercises,
                       dict(self.broken), extra=dict(extra or {}))

    def _with_hint(self, check: CheckResult) -> str:
        """A failing check's message and the function's hint; a function whose module cannot
        be imported gets no hint (it would be about something else)."""
        if check.status == "not_attempted" or check.exercise.module in self.broken:
            return check.message
        return f"{check.message}\nHint: {check.exercise.hint}"


class ResultsError(ValueError):
    """A results.json that cannot be read as one: the message says why, in the gradebook's words."""


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ResultsError(f"results.json is malformed: {what} is not a whole number")
    return value


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise ResultsError(f"results.json is malformed: {what} is not text")
    return value


def _object(value: Any, what: str) -> dict:
    if not isinstance(value, dict):
        raise ResultsError(f"results.json is malformed: {what} is not an object")
    return value


@dataclass(frozen=True)
class TestEntry:
    """One check, as ``tests[]`` holds it: ``name`` is "module.function: check words"."""

    name: str
    score: int
    max_score: int
    status: str  # passed | failed (Gradescope's)
    output: str = ""

    @property
    def function(self) -> str:
        return self.name.partition(": ")[0]

    @property
    def check(self) -> str:
        return self.name.partition(": ")[2]

    @property
    def message(self) -> str:
        """What the check said, without the function's hint."""
        return self.output.split(HINT)[0].strip()

    @classmethod
    def from_json(cls, data: Any) -> "TestEntry":
        data = _object(data, "a test")
        status = _text(data.get("status"), "a test's status")
        if status not in ("passed", "failed"):
            raise ResultsError("results.json is malformed: a test's status is neither passed nor failed")
        return cls(_text(data.get("name"), "a test's name"), _int(data.get("score"), "a test's score"),
                   _int(data.get("max_score"), "a test's max_score"), status, _text(data.get("output", ""), "a test's output"))

    def to_json(self) -> dict:
        return {"name": self.name, "score": self.score, "max_score": self.max_score, "status": self.status,
                "output": self.output}


@dataclass(frozen=True)
class FunctionEntry:
    """One function's verdict, as ``extra_data.exercises`` holds it."""

    score: int
    max_score: int
    status: str  # passed | failed | error | not_attempted
    notes: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, data: Any) -> "FunctionEntry":
        data = _object(data, "a function's result")
        notes = data.get("notes", [])
        if not isinstance(notes, list):
            raise ResultsError("results.json is malformed: a function's notes are not a list")
        status = _text(data.get("status"), "a function's status")
        if status not in STATUS_ORDER:
            raise ResultsError(f"results.json is malformed: a function's status is not one of {', '.join(STATUS_ORDER)}")
        return cls(_int(data.get("score"), "a function's score"), _int(data.get("max_score"), "a function's max_score"),
                   status, tuple(_text(n, "a note") for n in notes))

    def to_json(self) -> dict:
        return {"score": self.score, "max_score": self.max_score, "status": self.status,
                **({"notes": list(self.notes)} if self.notes else {})}


@dataclass
class Results:
    """results.json: Gradescope's fields, and the kit's in ``extra_data`` (``seed``,
    ``exercises``, ``broken_modules``; the rest, such as ``isolation``, ``sandbox``,
    ``status`` and ``fingerprints``, in ``extra``)."""

    score: int
    max_score: int
    execution_time: float
    tests: list[TestEntry] = field(default_factory=list)
    seed: int | None = None
    exercises: dict[str, FunctionEntry] = field(default_factory=dict)
    broken_modules: dict[str, dict] = field(default_factory=dict)  # module -> why it cannot be imported
    output: str = ""  # for a learner who could not be graded: why
    extra: dict = field(default_factory=dict)

    @classmethod
    def not_graded(cls, *, max_score: int, seconds: float, reason: str, seed: int | None, **extra) -> "Results":
        """A learner who could not be graded, in the same format."""
        return cls(0, max_score, seconds, output=reason, seed=seed, extra=extra)

    # -- as JSON
    @classmethod
    def from_json(cls, data: Any) -> "Results":
        data = _object(data, "the file")
        extra = dict(_object(data.get("extra_data"), "extra_data"))
        tests = data.get("tests", [])
        if not isinstance(tests, list):
            raise ResultsError("results.json is malformed: tests is not a list")
        seed = extra.pop("seed", None)
        seconds = data.get("execution_time", 0)
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
            raise ResultsError("results.json is malformed: execution_time is not a number")
        broken = _object(extra.pop("broken_modules", {}), "broken_modules")
        return cls(_int(data.get("score"), "score"), _int(data.get("max_score"), "max_score"), seconds,
                   [TestEntry.from_json(test) for test in tests], None if seed is None else _int(seed, "seed"),
                   {_text(key, "a function's name"): FunctionEntry.from_json(entry)
                    for key, entry in _object(extra.pop("exercises", {}), "exercises").items()},
                   {_text(module, "a module's name"): info for module, info in broken.items() if isinstance(info, dict)},
                   _text(data.get("output", ""), "output"), extra)

    def to_json(self) -> dict:
        return {"score": self.score, "max_score": self.max_score, "execution_time": self.execution_time,
                **({"output": self.output} if self.output else {}),
                "tests": [test.to_json() for test in self.tests],
                "extra_data": {"seed": self.seed, "exercises": {key: entry.to_json() for key, entry in self.exercises.items()},
                               "broken_modules": self.broken_modules, **self.extra}}

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2)

    def write(self, path: Path) -> None:
        path.write_text(self.dumps(), encoding="utf-8")

    @classmethod
    def read(cls, path: Path) -> "Results":
        """The results.json at ``path``; ResultsError if it cannot be read as one."""
        try:
            with open(path, "rb") as handle:
                raw = handle.read(MAX_RESULTS_BYTES + 1)
        except OSError as error:
            raise ResultsError(f"results.json cannot be read: {error.strerror or error}") from None
        if len(raw) > MAX_RESULTS_BYTES:
            raise ResultsError("results.json is larger than a grading writes")
        try:
            return cls.from_json(json.loads(raw))
        except ValueError as error:
            if isinstance(error, ResultsError):
                raise
            raise ResultsError("results.json is malformed: it is not JSON") from None

    # -- what readers ask of it
    def messages(self, key: str) -> list[tuple[str, str]]:
        """(check words, message) of every unmet check of the function ``key``, each message
        once, hints left out."""
        found, said = [], set()
        for test in self.tests:
            if test.function == key and test.status != "passed" and test.message and test.message not in said:
                said.add(test.message)
                found.append((test.check, test.message))
        return found

    def problem(self, maxima: dict[str, int], isolation: str | None = None) -> str | None:
        """Why these results cannot be the scoring process's own, if they cannot: functions
        the catalogue (``maxima``: function -> points) lacks, impossible scores, a total that
        does not add up, or another isolation than the batch's."""
        if set(self.exercises) - set(maxima):
            return "results.json names functions the catalogue does not have"
        if any(not 0 <= e.score <= min(e.max_score, maxima[k]) for k, e in self.exercises.items()):
            return "results.json holds impossible scores"
        if self.score != sum(e.score for e in self.exercises.values()):
            return "results.json's total does not add up"
        if isolation is not None and self.extra.get("isolation") != isolation:
            return "results.json was not written by this batch's grading"
        return None


def read_grading(results: Path, log: Path, tail: int) -> tuple[Results | None, list[str]]:
    """What a grading the kit ran left: its results.json, or (None and) the last ``tail``
    lines of its log, which say why there is none."""
    try:
        return Results.read(results), []
    except ResultsError:
        return None, log.read_text(errors="replace").strip().splitlines()[-tail:] if log.exists() else []
