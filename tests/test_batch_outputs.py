"""What a batch writes, built from results the tests make: spreadsheet-safe CSV cells,
names that cannot become folders, feedback.md that never passes learner text through as
Markdown and speaks in the learner's own terms, the class report's bands and isolation
line, and the notebook reader's limits. Real batches are tests/test_batch_runs.py."""
from __future__ import annotations

import csv
import json
import re
import threading
import time

import nbformat
import pytest
from markdown_it import MarkdownIt

from grader.batch import sheets
from grader.batch.collect import Source, SubmissionError, collect, pack, unpack
from grader.core.submission import MAX_NOTEBOOK_CODE_BYTES
from grader.batch.feedback import code_block, code_span, render
from grader.batch.gradebook import Row
from grader.batch.outputs import OutputError, name_problem, write_learner_files
from grader.batch.report import band_counts, bands
from grader.batch.report import render as render_report
from grader.core import catalogue
from grader.core.results import Results

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def test_csv_cells_that_start_a_formula_are_neutralised_and_read_back(tmp_path):
    values = ['=HYPERLINK("x")', "+1", "-2", "@SUM(A1)", "\tx", "\rx", "'quoted", "Zoë Müller", "plain", ""]
    path = tmp_path / "sheet.csv"
    sheets.write_csv(path, ["value"], [{"value": v} for v in values], excel=True)
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf"), "--excel files start with a UTF-8 byte order mark"
    with open(path, encoding="utf-8-sig", newline="") as handle:
        cells = [row[0] for row in csv.reader(handle)][1:]
    assert not [c for c in cells if c.startswith(FORMULA_STARTS)], cells
    assert cells[0] == "'=HYPERLINK(\"x\")" and cells[6] == "'quoted"
    assert [row["value"] for row in sheets.read_csv(path)[1]] == values, "a neutralised cell reads back as written"
    sheets.write_csv(path, ["value"], [{"value": "x"}], excel=False)
    assert not path.read_bytes().startswith(b"\xef\xbb\xbf")


@pytest.mark.parametrize("name, problem", [
    ("gradebook.csv", "a file the batch writes itself"), ("REPORT.HTML", "a file the batch writes itself"),
    ("canvas.csv", "a file the batch writes itself"), ("a\\b", "path separator"),
    ("tab\there", "control or invisible"), ("line\nbreak", "control or invisible"),
    ("right\u202eleft", "control or invisible"), ("=cmd", "formula"), ("+1", "formula"), ("-x", "formula"),
    ("@x", "formula"), ("'x", "formula"), ("x" * 101, "longer than 100"), ("  ", "empty"),
])
def test_names_that_cannot_be_a_learners_folder(name, problem):
    assert problem in (name_problem(name) or ""), name


@pytest.mark.parametrize("name", ["alice", "Zoë Müller", "<img src=x onerror=alert(1)>", "a=b", "x" * 100])
def test_names_that_can(name):
    assert name_problem(name) is None


def test_a_reserved_name_is_an_error_without_a_folder(tmp_path):
    (tmp_path / "gradebook.csv").mkdir()
    (tmp_path / "gradebook.csv" / "ex01_tracking.py").write_text("x = 1\n")
    [submission] = collect(tmp_path)
    assert not submission.named_ok and "writes itself" in submission.problem


def test_an_output_folder_that_cannot_be_written_is_that_learners_error(tmp_path):
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    (out / "bob").write_text("a file where bob's folder goes")
    (out / "carl").symlink_to(elsewhere)
    for learner in ("bob", "carl"):
        with pytest.raises(OutputError, match=f"{learner} exists and is not a folder"):
            write_learner_files(out, learner, {"feedback.md": "x"})
    assert not list(elsewhere.iterdir()), "nothing is written through a link"
    write_learner_files(out, "dora", {"feedback.md": "first"})
    write_learner_files(out, "dora", {"feedback.md": "second"})
    assert (out / "dora" / "feedback.md").read_text() == "second" and len(list((out / "dora").iterdir())) == 1


HOSTILE = "oops\n```\n<img src=x onerror=\"document.title='pwned'\">\n````"


def _results(tests: list[dict], broken: dict | None = None) -> Results:
    """A learner's results.json as the scoring process writes it, read back as the batch does."""
    tests = [{"score": 0, "max_score": 1, **test} for test in tests]
    exercises = {}
    for exercise in catalogue.load().exercises:
        mine = [t for t in tests if t["name"].startswith(exercise.key + ":")]
        status = "failed" if mine else "not_attempted"
        exercises[exercise.key] = {"score": 0, "max_score": exercise.points, "status": status}
    extra = {"seed": 7, "exercises": exercises, "isolation": "bwrap"}
    if broken:
        extra["broken_modules"] = broken
    return Results.from_json({"score": 0, "max_score": 100, "tests": tests, "extra_data": extra})


def _html(markdown: str) -> str:
    """As an LMS or a Markdown viewer shows it: CommonMark with raw HTML allowed."""
    return MarkdownIt("commonmark").render(markdown)


def test_learner_text_stays_text_whatever_its_backticks():
    for text in (HOSTILE, "`" * 7 + "<b>x</b>", "<script>alert(1)</script>", "a\n\n<img src=x>", "`edge`"):
        block, span = _html("\n".join(code_block(text))), _html(f"x {code_span(text)} y")
        for html in (block, span):
            assert "<img" not in html and "<script" not in html and "<b>" not in html, html
        assert block.count("<pre>") == 1, block


def test_feedback_lists_every_unmet_check_of_a_function_with_its_message():
    key = "ex01_tracking.log_run"
    tests = [{"name": f"{key}: params and metrics", "status": "failed", "output": f"first {HOSTILE}\nHint: h"},
             {"name": f"{key}: tags", "status": "failed", "output": "second: the tags are wrong\nHint: h"},
             {"name": f"{key}: status", "status": "passed", "output": ""}]
    text = render(Row("<b>bob</b>", "graded", max_score=100, seed=7), _results(tests), Source("files", "exercises/"))
    assert "first oops" in text and "second: the tags are wrong" in text
    html = _html(text)
    assert "<img" not in html and "<b>bob</b>" not in html, html
    assert "&lt;b&gt;bob&lt;/b&gt;" in html and "exercises/ex01_tracking.py" in text
    assert text.count("Hint:") == 1, "one hint per function"


BROKEN = {"ex01_tracking": {"error": "SyntaxError: invalid syntax", "line": 12, "column": 9, "text": "def log_run(:"}}


def _broken_tests() -> list[dict]:
    module = catalogue.load().module("ex01_tracking")
    return [{"name": f"{e.key}: {c.name.replace('_', ' ')}", "status": "failed", "output": "ex01_tracking.py cannot be run"}
            for e in module.exercises for c in e.checks]


def test_a_broken_file_is_reported_once_with_its_name_and_line():
    text = render(Row("ada", "graded", max_score=100, seed=7), _results(_broken_tests(), BROKEN),
                  Source("files", "ada-work/exercises/"))
    assert text.count("SyntaxError: invalid syntax") == 1, text
    assert "`ada-work/exercises/ex01_tracking.py`, line 12, column 9" in text and "def log_run(:" in text
    functions = len(catalogue.load().module("ex01_tracking").exercises)
    assert text.count("Not checked: its code cannot be run (see above).") == functions


def test_a_notebook_learner_reads_cells_never_module_files():
    cells = {f"{m.name}.py": [{"first_line": 5, "last_line": 20, "cell": 12, "definition": "log_run"},
                              {"first_line": 21, "last_line": 30, "cell": 14, "definition": "get_or_create_experiment"}]
             for m in catalogue.load().modules}
    broken = {m.name: dict(BROKEN["ex01_tracking"]) for m in catalogue.load().modules}
    source = Source("notebook", notebook="dana.ipynb", cells=cells)
    text = render(Row("dana", "graded", max_score=100, seed=7), _results(_broken_tests(), broken), source)
    assert "cell 12, `def log_run`" in text and text.count("SyntaxError") == 1, text
    assert ".py" not in text.replace("dana.ipynb", ""), text
    key = "ex01_tracking.get_or_create_experiment"
    raised = [{"name": f"{key}: creates with tags", "status": "failed",
               "output": '`get_or_create_experiment` in ex01_tracking.py raised:\n  File "/dev/shm/x/ex01_tracking.py", line 25, in f'}]
    text = render(Row("dana", "graded", max_score=100, seed=7), _results(raised), source)
    assert "in your notebook raised" in text and "cell 14" in text, text
    assert "ex01_tracking" not in text and "/dev/shm" not in text, text


def test_a_submission_not_graded_says_why_as_text():
    text = render(Row("eve", "error", max_score=100, reason="the .zip holds '<script>x</script>'"), None)
    assert "<script>" not in _html(text) and "could not be graded" in text


def test_score_bands_do_not_overlap_and_cover_every_score():
    assert [f"{low}–{high}" for low, high in bands(100)] == \
           ["0–9", "10–19", "20–29", "30–39", "40–49", "50–59", "60–69", "70–79", "80–89", "90–100"]
    counted = band_counts([0, 9, 10, 99, 100, 100], 100)
    assert dict(counted) == {"0–9": 2, "10–19": 1, "20–29": 0, "30–39": 0, "40–49": 0, "50–59": 0, "60–69": 0,
                             "70–79": 0, "80–89": 0, "90–100": 3}
    for max_score in (7, 44):
        ranges = bands(max_score)
        covered = [s for low, high in ranges for s in range(low, high + 1)]
        assert covered == list(range(max_score + 1)), ranges


def _gradebook_row(learner: str, status: str, score: int = 0, reason: str = "") -> dict:
    row = Row(learner, status, score=score, max_score=100, seed=7, reason=reason,
              exercises={e.key: 0 for e in catalogue.load().exercises} if status == "graded" else {})
    return {k: str(v) for k, v in row.as_csv().items()}


def test_the_isolation_line_shows_only_when_learner_code_ran(tmp_path):
    errors = [_gradebook_row("a", "error", reason="the folder is empty"), _gradebook_row("b", "missing")]
    page = render_report(tmp_path, errors)
    assert "isolation" not in page and "No submission was graded" in page and "Mean" not in page
    (tmp_path / "c").mkdir()
    sandbox = {"mode": "bwrap", "cgroup": "v1", "memory_limit_mb": 2048, "pids_limit": 256, "uid": "separate",
               "namespaces": ["pid", "ipc", "mount", "net"], "fresh_per_learner": True}
    (tmp_path / "c" / "batch.json").write_text(json.dumps({"isolation": "bwrap", "sandbox": sandbox}))
    page = render_report(tmp_path, errors + [_gradebook_row("c", "graded", 40)])
    [line] = re.findall(r"<p id='isolation'>.*?</p>", page)
    for said in ("bubblewrap", "cgroup v1", "memory 2048 MB", "256 processes", "separate user",
                 "pid, ipc, mount, net", "fresh sandbox per learner"):
        assert said in line, line
    assert "median <b>40</b>" in page


def _notebook_with_code(tmp_path, characters: int):
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell("BIG = '" + "x" * characters + "'\n"),
                      nbformat.v4.new_code_cell("def get_or_create_experiment(name, tags=None):\n    return '0'\n")]
    (tmp_path / "in").mkdir()
    nbformat.write(notebook, str(tmp_path / "in" / "nina.ipynb"))
    [submission] = collect(tmp_path / "in")
    return submission


def test_a_notebook_is_read_within_the_submissions_time_limit(tmp_path):
    """Just under the code cap, the reader takes seconds: a limit of a fraction of one ends it."""
    submission = _notebook_with_code(tmp_path, MAX_NOTEBOOK_CODE_BYTES - 1000)
    started = time.monotonic()
    with pytest.raises(SubmissionError, match="longer than the per-submission limit of 0.3 s"):
        unpack(pack(submission), tmp_path / "copy", time_limit=0.3)
    assert time.monotonic() - started < 10


def test_a_stopping_batch_ends_the_notebook_reader(tmp_path):
    submission = _notebook_with_code(tmp_path, MAX_NOTEBOOK_CODE_BYTES - 1000)
    stop = threading.Event()
    threading.Timer(0.3, stop.set).start()
    started = time.monotonic()
    with pytest.raises(SubmissionError):
        unpack(pack(submission), tmp_path / "copy", time_limit=600, stop=stop)
    assert time.monotonic() - started < 10


def test_a_notebook_with_too_much_code_is_refused(tmp_path):
    submission = _notebook_with_code(tmp_path, MAX_NOTEBOOK_CODE_BYTES + 1)
    with pytest.raises(SubmissionError, match="code cells hold 1.0 MB, more than the 1 MB"):
        unpack(pack(submission), tmp_path / "copy", time_limit=60)
