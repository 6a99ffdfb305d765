"""Results of a grading: per check, per function, in total; and the formats they are
written in (the learner's summary, Gradescope's results.json)."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from grader.core.catalogue import Catalogue, Exercise


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

    def to_gradescope(self, extra: dict | None = None) -> dict:
        """Gradescope's results.json, with per-function results in ``extra_data``."""
        noted = set()
        tests = []
        for c in self.checks:
            output = c.message if c.status == "passed" else self._with_hint(c)
            if c.exercise.key in self.notes and c.exercise.key not in noted:  # once per function
                noted.add(c.exercise.key)
                output = "\n".join([output, *(f"Note: {n}" for n in self.notes[c.exercise.key])]).strip()
            tests.append({
                "name": test_name(c.exercise, c.check),
                "score": c.earned,
                "max_score": c.points,
                "status": "passed" if c.status == "passed" else "failed",
                "output": output,
            })
        exercises = {
            r.exercise.key: {"score": r.score, "max_score": r.max_score, "status": r.status,
                             **({"notes": self.notes[r.exercise.key]} if r.exercise.key in self.notes else {})}
            for r in self.exercises()
        }
        return {
            "score": self.score,
            "max_score": self.max_score,
            "execution_time": round(self.seconds, 2),
            "tests": tests,
            "extra_data": {"seed": self.seed, "exercises": exercises, "broken_modules": self.broken, **(extra or {})},
        }

    def _with_hint(self, check: CheckResult) -> str:
        """A failing check's message and the function's hint; a function whose module cannot
        be imported gets no hint (it would be about something else)."""
        if check.status == "not_attempted" or check.exercise.module in self.broken:
            return check.message
        return f"{check.message}\nHint: {check.exercise.hint}"


def read_grading(results: Path, log: Path, tail: int) -> tuple[dict | None, list[str]]:
    """What a grading the kit ran left: its results.json, or (None and) the last ``tail``
    lines of its log, which say why there is none."""
    try:
        return json.loads(results.read_text(encoding="utf-8")), []
    except (OSError, ValueError):
        return None, log.read_text(errors="replace").strip().splitlines()[-tail:] if log.exists() else []
