"""gradebook.csv: one row per learner, written as each learner finishes, so an interrupted
batch loses nothing and ``--resume`` knows who is still missing.

Columns: ``learner``, the roster's columns when there is a roster (``student_id``,
``name``, ``email`` and any others), ``status``, ``score``, ``max_score``, one per
function, ``seconds``, ``seed``, and ``reason`` (why an ``error``, ``timeout`` or
``missing`` row has no grade). Cells are spreadsheet-safe (sheets.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from grader.batch import sheets
from grader.core import catalogue

STATUSES = ("graded", "error", "timeout", "missing")


class GradebookError(Exception):
    """The gradebook cannot be kept as asked; in words for the instructor."""


def exercise_keys() -> list[str]:
    return [e.key for e in catalogue.load().exercises]


def columns(roster_columns: tuple[str, ...] | list[str] = ()) -> list[str]:
    return ["learner", *roster_columns, "status", "score", "max_score", *exercise_keys(), "seconds", "seed", "reason"]


@dataclass
class Row:
    learner: str
    status: str  # one of STATUSES
    score: int = 0
    max_score: int = 0
    exercises: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    seed: int | None = None
    reason: str = ""  # why, for rows that are not graded (also in feedback.md and the report)
    student: dict[str, str] = field(default_factory=dict)  # the roster's fields

    def as_csv(self) -> dict[str, object]:
        return {
            "learner": self.learner, **self.student, "status": self.status, "score": self.score,
            "max_score": self.max_score, **{key: self.exercises.get(key, "") for key in exercise_keys()},
            "seconds": f"{self.seconds:.1f}", "seed": self.seed, "reason": " ".join(self.reason.split())[:500],
        }


class Gradebook:
    """``keep``: go on with the rows already in the file (--resume, --regrade); else
    start a new file. Rows are appended, or replaced in place for a learner graded again."""

    def __init__(self, path: Path, header: list[str], *, keep: bool, excel: bool):
        self.path, self.header = path, header
        if keep and path.is_file():
            written, rows = sheets.read_csv(path)
            if written != header:
                raise GradebookError(_header_difference(path, written, header))
            self._learners = {row["learner"] for row in rows}
        else:
            sheets.write_csv(path, header, [], excel=excel)
            self._learners = set()

    def rows(self) -> list[dict[str, str]]:
        return sheets.read_csv(self.path)[1]

    def seen(self) -> set[str]:
        return set(self._learners)

    def write(self, row: Row) -> None:
        if row.learner not in self._learners:
            sheets.append_csv(self.path, self.header, row.as_csv())
            self._learners.add(row.learner)
            return
        rows = [row.as_csv() if r["learner"] == row.learner else r for r in self.rows()]
        sheets.write_csv(self.path, self.header, rows, excel=sheets.has_bom(self.path))


def rows_in(path: Path) -> int:
    """How many learners a gradebook holds (0 when there is none)."""
    try:
        return len(sheets.read_csv(path)[1])
    except (OSError, ValueError):
        return 0


def _header_difference(path: Path, written: list[str], header: list[str]) -> str:
    added, dropped = [c for c in header if c not in written], [c for c in written if c not in header]
    said = []
    if dropped:
        said.append(f"it has the columns {', '.join(dropped)} that this run would not write")
    if added:
        said.append(f"it lacks the columns {', '.join(added)}")
    why = "; ".join(said) or "its columns are in another order"
    return (f"{path} was written with other columns ({why}). Pass the same --roster as the run "
            "that wrote it, or --overwrite to start a new gradebook.")
