"""`python -m grader export OUT --to canvas|moodle`: gradebook.csv as the CSV an LMS imports.

A grade must never land on the wrong student, so a file holds a row only for a roster
student whose submission was graded, keyed by an identifier the LMS matches on that the
roster gives (never empty, never shared by two students). Everyone else is left out, so
nothing changes for them in the LMS, and the command lists them with why: not graded
(error, timeout, missing), a submission with no roster entry, or no identifier.

- Canvas (Grades › Import): ``Student,ID,SIS User ID,SIS Login ID,Section,<assignment>``
  and a ``Points Possible`` row, as Canvas exports it. Canvas finds the student by ``ID``
  (the roster's ``canvas_id``), else ``SIS User ID`` (``student_id``), else ``SIS Login
  ID`` (``sis_login_id``, else the email). ``--assignment-id`` names the column
  ``<assignment> (<id>)``, which fills that existing assignment instead of making a new one.
- Moodle (Grades › Import › CSV file): one identifier column, the one ``--match`` names
  (``ID number``, the roster's ``student_id``, or ``Email address``), then the grade. Map
  it to the user field of that name. Moodle's import, given an empty identifier, keeps the
  user of the row above, and reads an empty grade as "no grade": neither is ever written.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from grader.batch import sheets
from grader.batch.outputs import EXPORTS, GRADEBOOK
from grader.core import catalogue

MOODLE_KEYS = {"idnumber": ("ID number", "student_id"), "email": ("Email address", "email")}
# Canvas's columns that identify a student, in the order Canvas matches them, and the
# roster columns they come from (the first that is filled).
CANVAS_KEYS = (("ID", ("canvas_id",)), ("SIS User ID", ("student_id",)), ("SIS Login ID", ("sis_login_id", "email")))


class ExportError(Exception):
    """The export cannot be written; in words for the instructor."""


@dataclass(frozen=True)
class Exported:
    path: Path
    written: int
    left_out: list[tuple[str, str]]  # (learner, why), for the instructor


def _canvas_identifiers(row: dict) -> dict[str, str]:
    return {column: next((row.get(c, "") for c in sources if row.get(c, "")), "") for column, sources in CANVAS_KEYS}


def _canvas(rows: list[dict], header: str) -> tuple[list[str], list[dict]]:
    columns = ["Student", *(column for column, _ in CANVAS_KEYS), "Section", header]
    points = {"Student": "Points Possible", header: str(catalogue.load().points)}
    return columns, [points] + [{"Student": row.get("name") or row["learner"], **_canvas_identifiers(row),
                                 "Section": row.get("section", ""), header: row["score"]} for row in rows]


def _canvas_key(row: dict) -> tuple[str, str] | None:
    """What Canvas will match this row on: (column, value), or None."""
    return next(((column, value) for column, value in _canvas_identifiers(row).items() if value), None)


def _moodle(match: str):
    column, source = MOODLE_KEYS[match]

    def lines(rows: list[dict], header: str) -> tuple[list[str], list[dict]]:
        return [column, header], [{column: row[source], header: row["score"]} for row in rows]
    return lines


def _moodle_key(match: str):
    column, source = MOODLE_KEYS[match]
    return lambda row: (column, row[source]) if row.get(source, "") else None


def _exportable(rows: list[dict], key) -> tuple[list[dict], list[tuple[str, str]]]:
    """(the rows to write, the learners left out with why)."""
    keep, left_out, by_key = [], [], {}
    for row in rows:
        learner = row["learner"]
        if row["status"] != "graded":
            left_out.append((learner, f"not graded ({row['status']}: {row.get('reason') or 'see gradebook.csv'})"))
        elif not any(row.get(c, "") for c in ("student_id", "name", "email")):
            left_out.append((learner, "no roster entry names this submission"))
        elif (identifier := key(row)) is None:
            left_out.append((learner, "the roster gives no identifier the LMS matches on"))
        else:
            by_key.setdefault(identifier, []).append(row)
    for (column, value), sharing in by_key.items():
        if len(sharing) == 1:
            keep.append(sharing[0])
        else:  # two students with one identifier: the LMS would give both grades to one of them
            names = ", ".join(r["learner"] for r in sharing)
            left_out += [(r["learner"], f"{column} {value!r} is also {names}'s in the roster") for r in sharing]
    return keep, left_out


def write(out: Path, lms: str, assignment: str, *, excel: bool, match: str = "idnumber",
          assignment_id: str | None = None) -> Exported:
    gradebook = out / GRADEBOOK
    if not gradebook.is_file():
        raise ExportError(f"{gradebook} does not exist: grade with `python -m grader batch ... --out {out}` first")
    if not assignment.strip():
        raise ExportError("--assignment must name the assignment")
    header_row, rows = sheets.read_csv(gradebook)
    if not {"student_id", "email"} <= set(header_row):
        raise ExportError(f"{gradebook} has no roster columns: an LMS matches grades to students by their id or "
                          "email, so grade with --roster roster.csv (or --regrade with it) before exporting")
    header = assignment.strip() + (f" ({assignment_id})" if lms == "canvas" and assignment_id else "")
    format_rows, key = (_canvas, _canvas_key) if lms == "canvas" else (_moodle(match), _moodle_key(match))
    keep, left_out = _exportable(rows, key)
    columns, lines = format_rows(keep, header)
    path = out / EXPORTS[lms]
    sheets.write_csv(path, columns, lines, excel=excel)
    return Exported(path, len(keep), left_out)
