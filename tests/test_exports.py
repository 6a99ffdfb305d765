"""The LMS exports cannot put a grade on the wrong student. Each file is read back the way
the LMS's own importer reads it (Moodle's grade/import/csv load_data.php: the mapped
identifier picks the user, an empty one keeps the user of the row above, an unknown one
abandons the import, an empty grade means "no grade"; Canvas's gradebook import: ID, else
SIS User ID, else SIS Login ID, else the student's name), against a roster with empty
emails, empty ids, duplicate names and a shared id, and learners not graded or not on it."""
from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO
from grader.batch.gradebook import Gradebook, Row, columns
from grader.core import catalogue

ROSTER = ["student_id", "name", "email", "canvas_id"]
# learner -> (student_id, name, email, canvas_id), status, score
CLASS = {
    "ada": (("1001", "Ada Lovelace", "ada@example.org", "71"), "graded", 94),
    "bea": (("1002", "Bea Smith", "", "72"), "graded", 80),  # no email
    "sam-a": (("1003", "Sam Lee", "sam.a@example.org", ""), "graded", 70),  # two students named Sam Lee
    "sam-b": (("1004", "Sam Lee", "sam.b@example.org", ""), "graded", 60),
    "cyd": (("", "Cyd Charisse", "cyd@example.org", ""), "graded", 50),  # no student id
    "eve": (("1005", "Eve Arden", "eve@example.org", ""), "graded", 40),  # eve and fay share an id
    "fay": (("1005", "Fay Wray", "fay@example.org", ""), "graded", 30),
    "gus": (("1006", "Gus Grissom", "gus@example.org", "76"), "error", 0),
    "hal": (("1007", "Hal Roach", "hal@example.org", "77"), "missing", 0),
    "ivy": (("", "", "", ""), "graded", 99),  # a submission the roster does not know
}


@pytest.fixture(scope="module")
def out(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("exports")
    book = Gradebook(folder / "gradebook.csv", columns(ROSTER), keep=False, excel=False)
    for learner, (student, status, score) in CLASS.items():
        book.write(Row(learner, status, score, catalogue.load().points, seed=1, student=dict(zip(ROSTER, student)),
                       reason="" if status == "graded" else "it raised"))
    return folder


def users() -> list[dict]:
    """The LMS's users: the roster's students (ivy is no one's)."""
    return [dict(zip(ROSTER, student), learner=learner) for learner, (student, _, _) in CLASS.items() if student[1]]


def export(out: Path, lms: str, *args: str) -> tuple[list[list[str]], str, int]:
    done = subprocess.run([sys.executable, "-m", "grader", "export", str(out), "--to", lms, *args], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    with open(out / f"{lms}.csv", encoding="utf-8-sig", newline="") as handle:
        return list(csv.reader(handle)), done.stderr, done.returncode


class ImportAbandoned(Exception):
    pass


def moodle_import(table: list[list[str]], field: str) -> dict[str, float | None]:
    """What Moodle's CSV grade import does with the file, the first column mapped to the
    user field ``field``: the grade each user gets."""
    grades, user = {}, None  # table[0] is the header
    for line in table[1:]:
        value = line[0]
        if value:  # an empty identifier keeps the user of the row above
            found = [u for u in users() if u[field] == value]
            if not found:
                raise ImportAbandoned(f"no user with {field} {value!r}")
            user = found[0]
        if user is not None:
            grades[user["learner"]] = float(line[-1]) if line[-1] else None  # empty: "no grade"
    return grades


def canvas_import(table: list[list[str]]) -> dict[str, float]:
    """What Canvas's gradebook import does with the file: the grade each user gets."""
    header, grades = table[0], {}
    at = {name: header.index(name) for name in ("Student", "ID", "SIS User ID", "SIS Login ID")}
    for line in table[1:]:
        if line[0] == "Points Possible":
            continue
        for column, field in (("ID", "canvas_id"), ("SIS User ID", "student_id"), ("SIS Login ID", "email"),
                              ("Student", "name")):
            value = line[at[column]]
            found = [u for u in users() if value and u[field] == value]
            if found:
                grades[found[0]["learner"]] = float(line[-1])
                break
    return grades


def own_grades(*learners: str) -> dict[str, float]:
    return {learner: float(CLASS[learner][2]) for learner in learners}


@pytest.mark.parametrize("field, match", [("student_id", "idnumber"), ("email", "email")])
def test_moodle_gives_each_grade_to_its_student_and_no_one_else(out, field, match):
    table, said, code = export(out, "moodle", "--match", match)
    grades = moodle_import(table, field)  # not abandoned: every identifier is a user's
    if match == "idnumber":
        assert grades == own_grades("ada", "bea", "sam-a", "sam-b"), table
        assert "cyd: the roster gives no identifier" in said and "eve: ID number '1005' is also eve, fay's" in said
    else:
        assert grades == own_grades("ada", "sam-a", "sam-b", "cyd", "eve", "fay"), table
        assert "bea: the roster gives no identifier" in said
    assert "gus: not graded (error: it raised)" in said and "hal: not graded (missing" in said
    assert "ivy: no roster entry names this submission" in said and code == 1, said
    assert all(line[0] and line[-1] for line in table[1:]), "no empty identifier, no empty grade"


def test_canvas_gives_each_grade_to_its_student_and_fills_an_existing_assignment(out):
    table, said, code = export(out, "canvas", "--assignment", "Lab 3", "--assignment-id", "4711")
    assert table[0][-1] == "Lab 3 (4711)" and table[1] == ["Points Possible", "", "", "", "", "100"]
    assert canvas_import(table) == own_grades("ada", "bea", "sam-a", "sam-b", "cyd"), table
    assert "eve: SIS User ID '1005' is also eve, fay's" in said and "gus: not graded" in said and code == 1, said


def test_without_a_roster_there_is_nothing_to_match_and_nothing_is_written(tmp_path):
    book = Gradebook(tmp_path / "gradebook.csv", columns(), keep=False, excel=False)
    book.write(Row("ada", "graded", 94, 100, seed=1))
    done = subprocess.run([sys.executable, "-m", "grader", "export", str(tmp_path), "--to", "moodle"], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "grade with --roster" in done.stderr and not (tmp_path / "moodle.csv").exists()
