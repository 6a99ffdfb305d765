"""`python -m grader export OUT --to canvas|moodle`: gradebook.csv as the CSV an LMS imports.

- Canvas (Grades > Import): ``Student,ID,SIS User ID,SIS Login ID,Section,<assignment>``
  and a ``Points Possible`` row, as Canvas exports it. SIS User ID is the roster's
  ``student_id``; SIS Login ID its ``sis_login_id`` column when it has one, else the email;
  ID and Section its ``canvas_id`` and ``section`` columns when present.
- Moodle (Grades > Import > CSV file): identifiers ``ID number`` (the roster's
  ``student_id``) and ``Email address``, then the grade; map either identifier to the
  user field of the same name when importing.

Without a roster the submission's name stands in for the student id. A learner who was not
graded (error, timeout, missing) gets an empty grade, which both LMSs leave unchanged.
"""
from __future__ import annotations

from pathlib import Path

from grader.batch import sheets
from grader.batch.outputs import EXPORTS, GRADEBOOK
from grader.core import catalogue


class ExportError(Exception):
    """The export cannot be written; in words for the instructor."""


def _canvas(rows: list[dict], assignment: str) -> tuple[list[str], list[dict]]:
    columns = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", assignment]
    points = {"Student": "Points Possible", assignment: str(catalogue.load().points)}
    return columns, [points] + [{
        "Student": row.get("name") or row["learner"], "ID": row.get("canvas_id", ""),
        "SIS User ID": row.get("student_id") or row["learner"],
        "SIS Login ID": row.get("sis_login_id") or row.get("email", ""), "Section": row.get("section", ""),
        assignment: _grade(row)} for row in rows]


def _moodle(rows: list[dict], assignment: str) -> tuple[list[str], list[dict]]:
    columns = ["ID number", "Email address", assignment]
    return columns, [{"ID number": row.get("student_id") or row["learner"], "Email address": row.get("email", ""),
                      assignment: _grade(row)} for row in rows]


FORMATS = {"canvas": _canvas, "moodle": _moodle}


def _grade(row: dict) -> str:
    return row["score"] if row["status"] == "graded" else ""


def write(out: Path, lms: str, assignment: str, *, excel: bool) -> tuple[Path, list[str]]:
    """(the file written, the learners without a grade in it)."""
    gradebook = out / GRADEBOOK
    if not gradebook.is_file():
        raise ExportError(f"{gradebook} does not exist: grade with `python -m grader batch ... --out {out}` first")
    if not assignment.strip():
        raise ExportError("--assignment must name the assignment")
    rows = sheets.read_csv(gradebook)[1]
    columns, lines = FORMATS[lms](rows, assignment.strip())
    path = out / EXPORTS[lms]
    sheets.write_csv(path, columns, lines, excel=excel)
    return path, [row["learner"] for row in rows if row["status"] != "graded"]
