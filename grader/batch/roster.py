"""``--roster roster.csv``: who the learners are.

Columns ``learner,student_id,name,email`` (any others are kept and carried into the
gradebook). ``learner`` is the submission's name (a folder, or a file without its
extension); names match after Unicode normalisation, since archives made on a Mac spell
``Zoë`` with a combining accent.
"""
from __future__ import annotations

import csv
import unicodedata
from dataclasses import dataclass
from pathlib import Path

REQUIRED = ("learner", "student_id", "name", "email")


class RosterError(Exception):
    """The roster cannot be used; in words for the instructor."""


def same_name(name: str) -> str:
    return unicodedata.normalize("NFC", name.strip())


@dataclass
class Roster:
    columns: tuple[str, ...]  # the gradebook's student columns: student_id, name, email, extras
    students: dict[str, dict[str, str]]  # by same_name(learner): the student's fields

    def student(self, learner: str) -> dict[str, str] | None:
        return self.students.get(same_name(learner))

    def learners(self) -> list[str]:
        return list(self.students)


def read(path: Path) -> Roster:
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            header = [(name or "").strip() for name in reader.fieldnames or []]
            raw_rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise RosterError(f"the roster {path} cannot be read ({error})") from None
    lacking = [c for c in REQUIRED if c not in header]
    if lacking:
        raise RosterError(f"the roster {path} has no column {', '.join(lacking)} "
                          f"(its first line must name the columns {','.join(REQUIRED)}, other columns are kept)")
    if len(set(header)) != len(header) or "" in header:
        raise RosterError(f"the roster {path} has an empty or repeated column name")
    columns = tuple(c for c in header if c != "learner")
    students: dict[str, dict[str, str]] = {}
    for line, raw in enumerate(raw_rows, start=2):
        fields = {name.strip(): (value or "").strip() for name, value in raw.items() if name is not None}
        learner = same_name(fields.get("learner", ""))
        if not learner:
            continue
        if learner in students:
            raise RosterError(f"the roster {path} names the learner {learner} twice (line {line})")
        students[learner] = {c: fields.get(c, "") for c in columns}
    return Roster(columns, students)
