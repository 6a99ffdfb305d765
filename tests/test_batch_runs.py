"""Real batches (`python -m grader batch`, the machine's best isolation, one slot) of tiny
submissions, and what the instructor then opens: gradebook.csv and the exports in a
spreadsheet, every feedback.md rendered as Markdown and report.html in headless Chromium;
Ctrl-C and --resume; a roster, --regrade and the LMS exports."""
from __future__ import annotations

import ast
import csv
import fcntl
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import nbformat
import pytest
from markdown_it import MarkdownIt

from browser import CHROMIUM, Chromium
from conftest import REPO, batch_command, calls, grade_batch, scoring_processes
from grader.batch import sheets
from grader.batch.gradebook import STATUSES
from grader.core import catalogue
from grader.ground.processes import descendants, proc_stat

SEED = "7"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
EXERCISES = [e.key for e in catalogue.load().exercises]
GET = "ex01_tracking.get_or_create_experiment"
GET_POINTS = str(catalogue.load().exercise("ex01_tracking", "get_or_create_experiment").points)
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)")


def solved(destination: Path, functions: set[str], extra: str = "") -> Path:
    """The stubs with ``functions`` of module 1 taken from the solutions, then ``extra``."""
    shutil.copytree(REPO / "exercises", destination, ignore=shutil.ignore_patterns("__pycache__"))
    with open(destination / "ex01_tracking.py", "a") as module:
        module.write("\n\n" + solution_code(functions) + "\n" + extra)
    return destination


def solution_code(functions: set[str]) -> str:
    """The solutions' code of ``functions`` of module 1."""
    source = (REPO / "solutions" / "ex01_tracking.py").read_text()
    return "\n\n".join(ast.get_source_segment(source, node) for node in ast.parse(source).body
                       if isinstance(node, ast.FunctionDef) and node.name in functions)


def zipped(folder: Path, archive: Path, prefix: str = "exercises/") -> None:
    with zipfile.ZipFile(archive, "w") as bundle:
        for path in sorted(folder.glob("*.py")):
            bundle.write(path, prefix + path.name)
    shutil.rmtree(folder)


def batch(submissions: Path, out: Path, *args: str, env: dict | None = None,
          python_options: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    return grade_batch(submissions, out, "--workers", "1", "--seed", SEED, *args, env=env, python_options=python_options)


def read_rows(path: Path) -> dict[str, dict]:
    """The rows by learner, as the batch reads them back (neutralised cells restored)."""
    return {row["learner"]: row for row in sheets.read_csv(path)[1]}


def export(out: Path, lms: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "grader", "export", str(out), "--to", lms, *args], cwd=REPO,
                          capture_output=True, text=True, timeout=120)


def raw_cells(path: Path) -> list[str]:
    with open(path, encoding="utf-8-sig", newline="") as handle:
        return [cell for row in csv.reader(handle) for cell in row]


# --------------------------------------------------------------------------- hostile names and text

MARK = "pwned-by-learner"
# Closes a three-backtick fence, then HTML that would set the page's title if it ran.
RAISES_HTML = f'''
def get_or_create_experiment(name, tags=None):
    raise ValueError("oops\\n```\\n<img src=x onerror=\\"document.title='{MARK}'\\">\\n````\\n<script>document.title='{MARK}'</script>")
'''


def notebook(path: Path, *sources: str) -> None:
    book = nbformat.v4.new_notebook()
    book.cells = [nbformat.v4.new_code_cell(source) for source in sources]
    nbformat.write(book, str(path))


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """A folder, a zip, two notebooks and three names that cannot be folders."""
    tmp = tmp_path_factory.mktemp("names")
    submissions, out = tmp / "in", tmp / "out"
    solved(submissions / "alice", {"get_or_create_experiment"})
    zipped(solved(tmp / "zoe", set(), RAISES_HTML), submissions / "Zoë Müller.zip")
    solved(submissions / "<img src=x onerror=alert(1)>", set())
    zipped(solved(tmp / "formula", {"get_or_create_experiment"}), submissions / '=HYPERLINK("x").zip')
    solved(submissions / "gradebook.csv", {"get_or_create_experiment"})
    notebook(submissions / "big.ipynb", "BIG = '" + "x" * 4_000_000 + "'\n")
    notebook(submissions / "nora.ipynb", "import mlflow", RAISES_HTML.replace("oops", "nora's oops"))
    started = time.monotonic()
    completed = batch(submissions, out, "--excel")
    print(f"batch of 7 hostile names and texts: {time.monotonic() - started:.1f} s")
    assert (out / "gradebook.csv").is_file(), completed.stderr
    return out, completed


def test_bad_names_and_big_notebooks_are_error_rows_and_the_others_are_graded(hostile):
    out, completed = hostile
    rows = read_rows(out / "gradebook.csv")
    assert set(rows) == {"alice", "Zoë Müller", "<img src=x onerror=alert(1)>", '=HYPERLINK("x")',
                         "gradebook.csv", "big", "nora"}, completed.stderr
    expected = {"alice": ("graded", GET_POINTS), "Zoë Müller": ("graded", "0"), "<img src=x onerror=alert(1)>": ("graded", "0"),
                "nora": ("graded", "0"), '=HYPERLINK("x")': ("error", "0"), "gradebook.csv": ("error", "0"),
                "big": ("error", "0")}
    assert {k: (r["status"], r["score"]) for k, r in rows.items()} == expected, completed.stderr
    assert "formula" in rows['=HYPERLINK("x")']["reason"]
    assert "a file the batch writes itself" in rows["gradebook.csv"]["reason"]
    assert "code cells hold 3.8 MB" in rows["big"]["reason"]
    assert (out / "gradebook.csv").is_file() and (out / "report.html").is_file()
    assert not (out / '=HYPERLINK("x")').exists(), "a name that cannot be a folder gets none"
    assert "Traceback" not in completed.stderr


def test_no_cell_of_the_gradebook_starts_a_formula_and_excel_reads_it_as_utf8(hostile):
    out, _ = hostile
    raw = (out / "gradebook.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and "Zoë Müller".encode() in raw
    cells = raw_cells(out / "gradebook.csv")
    assert not [c for c in cells if c.startswith(FORMULA_STARTS)], [c for c in cells if c.startswith(FORMULA_STARTS)]
    assert "'=HYPERLINK(\"x\")" in cells


def test_a_notebook_learner_is_never_pointed_at_a_module_file(hostile):
    out, _ = hostile
    text = (out / "nora" / "feedback.md").read_text()
    assert "nora's oops" in text, text
    assert not [m.name for m in catalogue.load().modules if f"{m.name}.py" in text], text
    assert "/dev/shm" not in text and "mlflow-kit-batch" not in text


@needs_chromium
def test_every_feedback_rendered_as_markdown_runs_no_learner_script(hostile, tmp_path):
    out, _ = hostile
    render = MarkdownIt("commonmark").render  # raw HTML allowed, as in many LMSs and viewers
    pages = []
    for feedback in sorted(out.glob("*/feedback.md")):
        page = tmp_path / f"{len(pages)}.html"
        page.write_text(f"<!doctype html><meta charset='utf-8'><title>feedback</title>{render(feedback.read_text())}")
        pages.append((feedback, page))
    assert len(pages) == 5, [str(f) for f, _ in pages]
    # The same learner text outside a fence: proves a script that ran would be seen here.
    control = tmp_path / "control.html"
    control.write_text(f"<!doctype html><meta charset='utf-8'><title>feedback</title>"
                       f"{render(RAISES_HTML.split('raise ValueError(')[1].encode().decode('unicode_escape'))}")
    with Chromium(tmp_path) as browser:
        assert browser.open(control).value("document.title") == MARK, "the control page's script must run"
        for feedback, page in pages:
            shown = browser.open(page)
            assert shown.value("document.title") == "feedback", feedback
            assert shown.value("document.images.length + document.scripts.length") == 0, feedback
            assert not shown.problems, (feedback, shown.problems)
        zoe = browser.open(next(p for f, p in pages if f.parent.name == "Zoë Müller"))
        assert "<img src=x onerror=" in zoe.value("document.body.innerText"), "the learner's text is shown as text"


@needs_chromium
def test_the_report_shows_every_learner_with_a_link_and_runs_only_its_own_script(hostile, tmp_path):
    out, _ = hostile
    rows = read_rows(out / "gradebook.csv")
    with Chromium(tmp_path) as browser:
        page = browser.open(out / "report.html")
        assert not page.problems, page.problems
        table = page.value("""[...document.querySelectorAll('#learners tbody tr')].map(row => ({
            cells: [...row.cells].map(cell => cell.innerText.trim()),
            link: row.cells[0].querySelector('a')?.href ?? null}))""")
        shown = {row["cells"][0]: row for row in table}
        assert set(shown) == set(rows), shown.keys()
        columns = page.value("[...document.querySelectorAll('#learners thead th')].map(th => th.dataset.key ?? th.innerText.trim())")
        for learner, row in rows.items():
            cells = dict(zip(columns, shown[learner]["cells"]))
            assert cells["status"] == row["status"] and cells["score"] == row["score"], (learner, cells)
            assert cells["reason"] == row["reason"], (learner, cells)
            link = shown[learner]["link"]
            if (out / learner / "feedback.md").is_file() and learner != "gradebook.csv":
                assert link and Path(page_path(link)) == out / learner / "feedback.md", (learner, link)
            else:
                assert link is None, (learner, link)
        assert dict(zip(columns, shown["alice"]["cells"]))["ex01_tracking.get_or_create_experiment"] == GET_POINTS
        assert page.value("document.title") == "Class report" and page.value("document.images.length") == 0
        summary = page.value("document.querySelector('#summary').innerText")
        assert "7 learners: 4 graded, 3 error, 0 timeout, 0 missing" in summary and "median 0" in summary, summary
        sorted_scores = page.value("""(() => {
            const button = [...document.querySelectorAll('#learners thead button')].find(b => b.innerText.trim() === 'score');
            button.click(); button.click();
            return [...document.querySelectorAll('#learners tbody tr')].map(r => r.querySelector('.score').innerText);
        })()""")
        assert sorted_scores == sorted(sorted_scores, key=int, reverse=True) and sorted_scores[0] == GET_POINTS, sorted_scores
        labels = page.value("""[...document.querySelectorAll('svg[aria-label="score distribution"] text')].map(t => {
            const box = t.getBoundingClientRect(), svg = t.ownerSVGElement.getBoundingClientRect();
            return {text: t.textContent, left: box.left, right: box.right, inside: box.top >= svg.top &&
                    box.bottom <= svg.bottom && box.left >= svg.left && box.right <= svg.right, band: t.classList.contains('band')};
        })""")
        assert all(label["inside"] for label in labels), labels
        bands = [label for label in labels if label["band"]]
        assert [b["text"] for b in bands][-1] == "90–100"
        assert all(a["right"] <= b["left"] for a, b in zip(bands, bands[1:])), "band labels overlap"
        assert not page.problems, page.problems


def page_path(url: str) -> str:
    from urllib.parse import unquote, urlparse

    return unquote(urlparse(url).path)


# --------------------------------------------------------------------------- interrupts

SLEEPY = '''
def get_or_create_experiment(name, tags=None):
    import time
    time.sleep(5)
    return "0"
'''


def test_ctrl_c_stops_cleanly_and_resume_finishes_leaving_no_scratch(tmp_path):
    submissions, out, scratch_place = tmp_path / "in", tmp_path / "out", tmp_path / "scratch"
    scratch_place.mkdir()
    solved(submissions / "a-sleepy", set(), SLEEPY)
    solved(submissions / "b-quick", set())
    env = {**os.environ, "TMPDIR": str(scratch_place)}
    command = batch_command(submissions, out, "--workers", "1", "--seed", SEED)
    running = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list(scratch_place.glob("mlflow-kit-batch-*/learner-*")) and time.monotonic() < deadline:
        time.sleep(0.05)
    while not calls(descendants(running.pid)):  # a-sleepy's calls sleep 5 s each: its grading is under way
        assert running.poll() is None and time.monotonic() < deadline, running.communicate()[1]
        time.sleep(0.05)
    running.send_signal(signal.SIGINT)
    _, stderr = running.communicate(timeout=120)
    assert running.returncode == 128 + signal.SIGINT and "Traceback" not in stderr, stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("To grade the rest:") and last.endswith("--resume"), stderr
    assert read_rows(out / "gradebook.csv") == {}, "the learner in flight was not written"
    assert not (out / "a-sleepy").exists()
    assert not list(scratch_place.iterdir()), "the stopped batch removed its scratch folder"

    # What a killed batch leaves, what a live one holds, and an unlocked folder of an old kit.
    dead, live, old = (scratch_place / f"mlflow-kit-batch-{n}" for n in ("dead", "live", "old"))
    for folder in (dead, live, old):
        (folder / "learner-x").mkdir(parents=True)
    (dead / "batch.lock").touch()
    with open(live / "batch.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        os.utime(old, (time.time() - 3600, time.time() - 3600))
        resumed = subprocess.run(command + ["--resume"], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
        assert sorted(p.name for p in scratch_place.iterdir()) == [live.name], "only the live batch's folder is left"
    rows = read_rows(out / "gradebook.csv")
    assert set(rows) == {"a-sleepy", "b-quick"} and {r["status"] for r in rows.values()} == {"graded"}, resumed.stderr
    lines = (out / "gradebook.csv").read_text().splitlines()
    assert len(lines) == 3, lines


def test_a_grading_host_killed_mid_learner_costs_no_row(tmp_path):
    """kill -9 of the slot's grading host while it grades: a fresh host grades the learner again."""
    submissions, out = tmp_path / "in", tmp_path / "out"
    solved(submissions / "ada", {"get_or_create_experiment"})
    command = batch_command(submissions, out, "--workers", "1", "--seed", SEED)
    running = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (scoring := scoring_processes(running.pid)):
        assert running.poll() is None and time.monotonic() < deadline, running.communicate()[1]
        time.sleep(0.05)
    host = int(proc_stat(scoring[0])[1])  # the scoring process's parent
    os.kill(host, signal.SIGKILL)
    _, stderr = running.communicate(timeout=600)
    row = read_rows(out / "gradebook.csv")["ada"]
    assert (row["status"], row[GET]) == ("graded", str(catalogue.load().exercise("ex01_tracking", "get_or_create_experiment").points)), stderr
    assert proc_stat(host) is None


# --------------------------------------------------------------------------- roster, regrade, exports

def test_roster_regrade_and_exports(tmp_path):
    submissions, out, roster = tmp_path / "in", tmp_path / "out", tmp_path / "roster.csv"
    solved(submissions / "ada", {"get_or_create_experiment"})
    solved(submissions / "dan", set())
    roster.write_text("learner,student_id,name,email,section,canvas_id\n"
                      "ada,1001,Ada Lovelace,ada@example.org,\"=cmd|' /C calc'!A0\",77\n"
                      "cy,1002,Cy Young,cy@example.org,B,78\n", encoding="utf-8")
    first = batch(submissions, out, "--roster", str(roster))
    rows = read_rows(out / "gradebook.csv")
    assert set(rows) == {"ada", "dan", "cy"}, first.stderr
    assert (rows["ada"]["status"], rows["ada"]["score"], rows["ada"]["student_id"]) == ("graded", GET_POINTS, "1001")
    assert rows["ada"]["section"] == "=cmd|' /C calc'!A0" and rows["ada"]["name"] == "Ada Lovelace"
    assert (rows["cy"]["status"], rows["cy"]["reason"], rows["cy"]["email"]) == ("missing", "no submission", "cy@example.org")
    assert rows["dan"]["status"] == "graded" and rows["dan"]["student_id"] == ""
    assert "no entry in the roster: dan" in first.stderr
    assert set(STATUSES) >= {r["status"] for r in rows.values()}

    before = (out / "gradebook.csv").read_bytes()
    refused = batch(submissions, out, "--roster", str(roster))
    assert refused.returncode == 2 and "already holds 3 learner(s)" in refused.stderr and "--overwrite" in refused.stderr
    assert (out / "gradebook.csv").read_bytes() == before, "a gradebook is never emptied without --overwrite"

    shutil.rmtree(submissions / "ada")
    solved(submissions / "ada", {"get_or_create_experiment", "log_metric_history"})
    regraded = batch(submissions, out, "--roster", str(roster), "--regrade", "ada")
    after = read_rows(out / "gradebook.csv")
    history = catalogue.load().exercise("ex01_tracking", "log_metric_history").points
    assert after["ada"]["score"] == str(int(GET_POINTS) + history), regraded.stderr
    assert "1/1" in regraded.stderr, "only ada was graded again"
    old_lines, new_lines = before.decode().splitlines(), (out / "gradebook.csv").read_text().splitlines()
    assert [l for l in new_lines if not l.startswith("ada,")] == [l for l in old_lines if not l.startswith("ada,")]
    assert "log_metric_history`: passed" in (out / "ada" / "feedback.md").read_text()
    unknown = batch(submissions, out, "--roster", str(roster), "--regrade", "nobody")
    assert unknown.returncode == 2 and "has no submission named nobody" in unknown.stderr, unknown.stderr

    for lms, header in (("canvas", ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "Lab 3"]),
                        ("moodle", ["ID number", "Lab 3"])):
        exported = export(out, lms, "--assignment", "Lab 3", "--excel")
        assert exported.returncode == 1, exported.stderr  # not every learner has a grade in it
        path = out / f"{lms}.csv"
        assert path.read_bytes().startswith(b"\xef\xbb\xbf")
        cells = raw_cells(path)
        assert not [c for c in cells if c.startswith(FORMULA_STARTS)], cells
        with open(path, encoding="utf-8-sig", newline="") as handle:
            table = list(csv.reader(handle))
        assert table[0] == header, table
        assert "cy: not graded (missing: no submission)" in exported.stderr, exported.stderr
        assert "dan: no roster entry names this submission" in exported.stderr, exported.stderr
        if lms == "canvas":
            assert table[1:] == [["Points Possible", "", "", "", "", "100"],
                                 ["Ada Lovelace", "77", "1001", "ada@example.org", "'=cmd|' /C calc'!A0", str(int(GET_POINTS) + history)]]
        else:
            assert table[1:] == [["1001", str(int(GET_POINTS) + history)]]
