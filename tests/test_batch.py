"""`python -m grader batch`: collecting submissions, the gradebook and --resume, the
per-submission wall clock and the process-limits fallback. The mixed batch of correct,
broken and hostile learners is tests/test_hostile.py."""
from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from conftest import FULL_MARKS, REPO, grade_batch
from grader.batch.collect import SubmissionError, collect, pack, unpack
from grader.core.submission import MAX_ARCHIVE_MEMBERS, MAX_UNPACKED_BYTES
from grader.batch.gradebook import columns
from grader.core import catalogue
from grader.sandbox import isolation


def read_rows(out: Path) -> list[dict]:
    with open(out / "gradebook.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def zip_folder(source: Path, archive: Path, prefix: str) -> Path:
    with zipfile.ZipFile(archive, "w") as bundle:
        for path in source.glob("*.py"):
            bundle.write(path, f"{prefix}{path.name}")
    return archive


def test_help_lists_batch():
    listed = subprocess.run([sys.executable, "-m", "grader", "--help"], cwd=REPO, capture_output=True, text=True)
    assert "batch" in listed.stdout, listed.stdout


def test_gradebook_has_the_issue_columns():
    names = columns()
    assert names[:4] == ["learner", "status", "score", "max_score"] and names[-3:] == ["seconds", "seed", "reason"]
    assert len(names) == 4 + len(catalogue.load().exercises) + 3
    with_roster = columns(("student_id", "name", "email", "section"))
    assert with_roster[:6] == ["learner", "student_id", "name", "email", "section", "status"]


@pytest.mark.parametrize("prefix", ["", "exercises/", "alice-work/exercises/", "alice-work/"])
def test_zips_unpack_flat_or_in_a_subfolder(tmp_path, prefix):
    (tmp_path / "in").mkdir()
    zip_folder(REPO / "exercises", tmp_path / "in" / "alice.zip", prefix)
    [submission] = collect(tmp_path / "in")
    assert submission.learner == "alice" and submission.problem is None
    unpacked = unpack(pack(submission), tmp_path / "copy")
    assert (unpacked.target / "ex01_tracking.py").is_file() and unpacked.target.is_relative_to(tmp_path / "copy")
    assert unpacked.source.folder == prefix, "feedback names the files as they are in the learner's zip"


def test_a_folder_travels_as_its_regular_files_only(tmp_path):
    """Packed for grading here or on a Dask worker: no link followed, nothing hidden, no pipe read."""
    folder = tmp_path / "in" / "ada"
    shutil.copytree(REPO / "exercises", folder / "exercises", ignore=shutil.ignore_patterns("__pycache__"))
    (folder / ".secret").write_text("hidden")
    (folder / "__pycache__").mkdir()
    (folder / "__pycache__" / "x.pyc").write_bytes(b"")
    (folder / "solutions").symlink_to(REPO / "solutions")
    (folder / "exercises" / "answer.py").symlink_to(REPO / "solutions" / "ex01_tracking.py")
    os.mkfifo(folder / "pipe")
    [submission] = collect(tmp_path / "in")
    packed = pack(submission)
    assert packed.problem is None and (packed.learner, packed.kind) == ("ada", "folder")
    modules = sorted(f"exercises/{p.name}" for p in (REPO / "exercises").glob("*.py"))
    assert sorted(zipfile.ZipFile(io.BytesIO(packed.data)).namelist()) == modules
    unpacked = unpack(packed, tmp_path / "copy")
    assert unpacked.source.folder == "exercises/"
    assert (unpacked.target / "ex01_tracking.py").read_text() == (REPO / "exercises" / "ex01_tracking.py").read_text()


def test_a_folder_past_the_limits_is_refused_before_it_travels(tmp_path):
    many, big = tmp_path / "in" / "many", tmp_path / "in" / "big"
    many.mkdir(parents=True)
    for n in range(MAX_ARCHIVE_MEMBERS + 1):
        (many / f"{n}.txt").write_text("x")
    big.mkdir()
    with open(big / "data.bin", "wb") as handle:
        handle.truncate(MAX_UNPACKED_BYTES + 1)
    found = {s.learner: pack(s) for s in collect(tmp_path / "in")}
    assert found["many"].problem == f"the folder holds more than {MAX_ARCHIVE_MEMBERS} files" and not found["many"].data
    assert found["big"].problem == "the folder holds more than 50 MB" and not found["big"].data


def test_a_file_past_the_limit_is_refused_before_it_travels(tmp_path):
    (tmp_path / "in").mkdir()
    for name in ("huge.ipynb", "huge-zip.zip"):
        with open(tmp_path / "in" / name, "wb") as handle:
            handle.truncate(MAX_UNPACKED_BYTES + 1)
    found = {s.learner: pack(s) for s in collect(tmp_path / "in")}
    assert found["huge"].problem == "the notebook is larger than 50 MB" and not found["huge"].data
    assert found["huge-zip"].problem == "the .zip is larger than 50 MB" and not found["huge-zip"].data


def test_unusable_entries_are_named_with_a_reason(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "notes.txt").write_text("x")
    (folder / "wrong").mkdir()
    (folder / "wrong" / "README.md").write_text("no modules here")
    (folder / "twin").mkdir()
    zip_folder(REPO / "exercises", folder / "twin.zip", "")
    with zipfile.ZipFile(folder / "linky.zip", "w") as bundle:
        link = zipfile.ZipInfo("ex01_tracking.py")
        link.external_attr = (0o120777 << 16)
        bundle.writestr(link, "/work/main/solutions/ex01_tracking.py")
    found = {s.learner: s for s in collect(folder)}
    assert "stray file" in found["notes"].problem
    assert found["twin"].problem == "several entries are named twin: twin/, twin.zip; keep one, or grade with --duplicates newest"
    assert "twin.zip" not in found, "one row per learner"
    for learner, expected in (("wrong", "holds none of"), ("linky", "symbolic link")):
        with pytest.raises(SubmissionError, match=expected):
            unpack(pack(found[learner]), tmp_path / f"copy-{learner}")


def test_resume_grades_only_the_missing_learners(tmp_path):
    """A gradebook row already written is kept as it is; only the others are graded."""
    submissions, out = tmp_path / "in", tmp_path / "out"
    submissions.mkdir()
    (submissions / "done-already").mkdir()
    (submissions / "done-already" / "x.txt").write_text("would be an error row if graded again")
    (submissions / "late.txt").write_text("a stray file")
    out.mkdir()
    written = {c: "" for c in columns()} | {"learner": "done-already", "status": "graded", "score": "77",
                                           "max_score": "100", "seconds": "1.0", "seed": "7"}
    with open(out / "gradebook.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, columns())
        writer.writeheader()
        writer.writerow(written)
    completed = grade_batch(submissions, out, "--seed", "7", "--resume", "--workers", "1")
    rows = {row["learner"]: row for row in read_rows(out)}
    assert rows["done-already"] == written, completed.stderr
    assert rows["late"]["status"] == "error" and set(rows) == {"done-already", "late"}
    assert "1/1" in completed.stderr, completed.stderr


def test_a_submission_past_its_wall_clock_is_a_timeout_row_and_leaves_nothing(tmp_path):
    """A learner whose every call hangs, under the process-limits fallback."""
    submissions, out = tmp_path / "in", tmp_path / "out"
    folder = submissions / "sleepy"
    folder.parent.mkdir()
    shutil.copytree(REPO / "exercises", folder, ignore=shutil.ignore_patterns("__pycache__"))
    marker = f"sleepy-{tmp_path.name}"
    with open(folder / "ex01_tracking.py", "a") as module:  # at import: every call hangs
        module.write(f"\nimport subprocess, sys, time\nsubprocess.Popen([sys.executable, '-c', "
                     f"'import time; time.sleep(600)', '{marker}'], start_new_session=True)\ntime.sleep(600)\n"
                     # one implemented function: modules holding only stubs are not even imported
                     "\ndef get_or_create_experiment(name, tags=None):\n    return '0'\n")
    completed = grade_batch(submissions, out, "--seed", "7", "--isolation", "limits", "--timeout", "6", "--call-timeout", "30",
                            "--workers", "1")
    [row] = read_rows(out)
    assert row["status"] == "timeout", f"{row}\n{completed.stderr}"
    assert "per-submission limit of 6 s" in (out / "sleepy" / "feedback.md").read_text()
    assert float(row["seconds"]) < 60
    leftovers = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True).stdout.split()
    assert not leftovers, f"processes outlived their grading: {leftovers}"
    report = (out / "report.html").read_text()
    assert "Warning:" in report and "bubblewrap" in report, "the fallback must be flagged in the report"


def test_a_notebook_goes_through_the_one_notebook_entry_point(tmp_path):
    """An unreadable notebook is an error row with the reason, never a crashed batch."""
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "dana.ipynb").write_text("{ not json")
    [submission] = collect(tmp_path / "in")
    assert submission.learner == "dana" and submission.problem is None
    with pytest.raises(SubmissionError, match="notebook"):
        unpack(pack(submission), tmp_path / "copy")


LITTER = '''
import os, subprocess, sys
_solution = get_or_create_experiment

def get_or_create_experiment(name, tags=None):
    """Leaves things behind for whoever the slot grades next."""
    for folder in ("/tmp", os.environ["HOME"], os.path.dirname(os.getcwd())):
        with open(os.path.join(folder, "@MARK@-litter"), "w") as handle:
            handle.write("left behind")
    log = os.path.join(os.environ["HOME"], "worker.log")
    if os.path.lexists(log):
        os.remove(log)
    os.symlink("@TRAP@", log)  # the slot's next worker must not log into a file outside
    subprocess.Popen([sys.executable, "-c", "import time\\nwhile True:\\n open('/tmp/@MARK@-daemon','w'); time.sleep(0.05)",
                      "@MARK@"], start_new_session=True)
    return _solution(name, tags)

def log_metric_history(experiment_id, key, values):
    """Kills the slot's warm worker: the next learner must get a new one."""
    import signal
    os.kill(os.getppid(), signal.SIGKILL)
'''

SNOOP = '''
import os
_solution = get_or_create_experiment

def get_or_create_experiment(name, tags=None):
    """Fails when anything of the learner before is still around."""
    found = [p for folder in ("/tmp", os.environ["HOME"], os.path.dirname(os.getcwd()))
             for p in (os.path.join(folder, "@MARK@-litter"), os.path.join(folder, "@MARK@-daemon")) if os.path.exists(p)]
    found += [pid for pid in os.listdir("/proc") if pid.isdigit() and "@MARK@" in _cmdline(pid)]
    if found:
        raise RuntimeError(f"left by the learner before: {found}")
    return _solution(name, tags)

def _cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read().decode(errors="replace")
    except OSError:
        return ""
'''


@pytest.mark.skipif(not isolation.bwrap_available(), reason="a slot's sandbox needs bubblewrap")
def test_the_next_learner_in_a_slot_finds_nothing_the_last_one_left(tmp_path):
    """One slot grades learner after learner with one warm sandbox: files in /tmp, in the
    sandbox's home, a daemon and a link planted for the next worker's log all go in between,
    and a worker the learner killed is replaced (where learner code has a uid of its own, it
    cannot kill its worker at all)."""
    submissions, out, trap = tmp_path / "in", tmp_path / "out", tmp_path / "trap.txt"
    mark = f"slot-{tmp_path.name}"
    for learner, snippet in (("a-litter", LITTER), ("b-snoop", SNOOP)):
        # Module 1 done, the others still stubs (not even imported): quick to grade.
        shutil.copytree(REPO / "exercises", submissions / learner, ignore=shutil.ignore_patterns("__pycache__"))
        module_1 = (REPO / "solutions" / "ex01_tracking.py").read_text()
        (submissions / learner / "ex01_tracking.py").write_text(module_1 + snippet.replace("@MARK@", mark).replace("@TRAP@", str(trap)))
    completed = grade_batch(submissions, out, "--seed", "7", "--workers", "1", "--isolation", "bwrap")
    rows = {row["learner"]: row for row in read_rows(out)}
    module_1 = catalogue.load().module("ex01_tracking")
    killed = "ex01_tracking.log_metric_history"
    expected = {"a-litter": module_1.points - FULL_MARKS[killed], "b-snoop": module_1.points}
    for learner, score in expected.items():
        assert rows[learner]["status"] == "graded" and rows[learner]["score"] == str(score), (
            f"{learner}: {rows[learner]}\n{(out / learner / 'feedback.md').read_text()[:2000]}\n{completed.stderr[-2000:]}"
        )
    separate = json.loads((out / "a-litter" / "results.json").read_text())["extra_data"]["sandbox"]["uid"] == "separate"
    refused = "Operation not permitted" if separate else "the grading worker died"
    assert rows["a-litter"][killed] == "0" and refused in (out / "a-litter" / "feedback.md").read_text()
    assert not trap.exists(), "a worker of the slot wrote through the link a learner planted"
    daemons = subprocess.run(["pgrep", "-f", mark], capture_output=True, text=True).stdout.split()
    assert not daemons, f"processes outlived their grading: {daemons}"


def test_with_duplicates_newest_the_newest_entry_is_graded_and_said(tmp_path):
    folder = tmp_path / "in"
    shutil.copytree(REPO / "exercises", folder / "ada", ignore=shutil.ignore_patterns("__pycache__"))
    zip_folder(REPO / "exercises", folder / "ada.zip", "")
    old = time.time() - 3600
    for path in [folder / "ada", *(folder / "ada").iterdir()]:
        os.utime(path, (old, old))
    [ada] = collect(folder, duplicates="newest")
    assert ada.path == folder / "ada.zip" and ada.problem is None
    assert ada.note == "graded ada.zip, the newest of ada/, ada.zip (--duplicates newest)"
    (folder / "ada" / "ex01_tracking.py").touch()  # a file changed inside the folder makes it the newest
    [ada] = collect(folder, duplicates="newest")
    assert ada.path == folder / "ada" and ada.note.startswith("graded ada/, the newest")
