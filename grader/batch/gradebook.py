"""gradebook.csv: one row per learner, appended and flushed as each learner finishes, so an
interrupted batch loses nothing and ``--resume`` knows who is still missing."""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from grader.core import catalogue

STATUSES = ("graded", "error", "timeout")


def exercise_keys() -> list[str]:
    return [e.key for e in catalogue.load().exercises]


def columns() -> list[str]:
    return ["learner", "status", "score", "max_score", *exercise_keys(), "seconds", "seed"]


@dataclass
class Row:
    learner: str
    status: str  # graded | error | timeout
    score: int = 0
    max_score: int = 0
    exercises: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    seed: int | None = None
    message: str = ""  # why, for error and timeout rows (in feedback.md and the report)

    def as_csv(self) -> dict[str, object]:
        return {
            "learner": self.learner, "status": self.status, "score": self.score, "max_score": self.max_score,
            **{key: self.exercises.get(key, "") for key in exercise_keys()},
            "seconds": f"{self.seconds:.1f}", "seed": self.seed,
        }


class Gradebook:
    def __init__(self, path: Path, *, resume: bool):
        self.path = path
        if not (resume and path.is_file()):
            with open(path, "w", newline="") as handle:
                csv.DictWriter(handle, columns()).writeheader()

    def learners_done(self) -> set[str]:
        return {row["learner"] for row in self.rows()}

    def rows(self) -> list[dict[str, str]]:
        with open(self.path, newline="") as handle:
            return list(csv.DictReader(handle))

    def append(self, row: Row) -> None:
        with open(self.path, "a", newline="") as handle:
            csv.DictWriter(handle, columns()).writerow(row.as_csv())
            handle.flush()
