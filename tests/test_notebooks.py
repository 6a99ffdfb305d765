"""The lesson notebook and the nbgrader course: generated from the solutions, executed by a
real Jupyter kernel, and graded by real nbgrader with the same points as `pytest grader`."""
from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from grader import notebook as kit_notebook
from grader.authoring import notebooks, stubgen
from grader.authoring.generated import write_changed
from conftest import FULL_MARKS, FUNCTIONS, REPO, SEED, TOTAL, grade, grade_many
from grader.core import catalogue, submission

# The test course is small: two functions of module 1 (a full grading per notebook would
# not fit the suite's time budget); the committed course holds all of them.
COURSE_KEYS = ["ex01_tracking.log_run", "ex01_tracking.log_metric_history"]
COURSE_FILTER = "log_run or log_metric_history"
KERNEL_ENV = {"KIT_ROOT": str(REPO), "KIT_SEED": str(SEED), "MLFLOW_DISABLE_TELEMETRY": "true"}

# Wrong submissions: function name -> the learner's code for that solution cell.
WRONG = {
    "forgets_tags_and_steps": {
        "log_run": '''def log_run(experiment_id, params, metrics, tags=None, run_name=None):
    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name) as run:
        mlflow.log_params(params)
        mlflow.log_metrics(metrics)
    return run.info.run_id''',
        "log_metric_history": '''def log_metric_history(experiment_id, key, values):
    with mlflow.start_run(experiment_id=experiment_id) as run:
        for value in values:
            mlflow.log_metric(key, value)
    return run.info.run_id''',
    },
    "raises_and_talks_on_stderr": {
        # A cell that writes to stderr in the kernel, and a function that does in the sandbox:
        # neither may cost points of the check cells.
        "log_run": '''print("about to define log_run", file=sys.stderr)


def log_run(experiment_id, params, metrics, tags=None, run_name=None):
    raise ValueError("not today")''',
        "log_metric_history": '''def log_metric_history(experiment_id, key, values):
    print("logging", key, file=sys.stderr)
    with mlflow.start_run(experiment_id=experiment_id) as run:
        for step, value in enumerate(values):
            mlflow.log_metric(key, value, step=step)
    return run.info.run_id''',
    },
    "leaves_the_run_active": {
        "log_run": '''def log_run(experiment_id, params, metrics, tags=None, run_name=None):
    run = mlflow.start_run(experiment_id=experiment_id, run_name=run_name, tags=tags)
    mlflow.log_params(params)
    mlflow.log_metrics(metrics)
    return run.info.run_id''',
    },
    # The whole notebook is one module: an import that fails breaks every function, and the
    # messages name the cell, never a module file the learner never saw.
    "imports_a_missing_module": {
        "log_run": "import mlflow_helpers_never_installed\n\n\n" + '''def log_run(experiment_id, params, metrics, tags=None, run_name=None):
    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name) as run:
        mlflow.log_params(params)
    return run.info.run_id''',
    },
}


def _solution_code(module: str, name: str) -> str:
    parts = {(p.module, p.name): p for p in notebooks.plan() if p.role == "definition"}
    return stubgen.drop_markers(parts[(module, name)].text)


def _fill(notebook: nbformat.NotebookNode, code_of) -> nbformat.NotebookNode:
    """A learner's notebook: each solution cell replaced by ``code_of(module, name)`` (None keeps it)."""
    filled = nbformat.from_dict(notebook)
    for cell in filled.cells:
        kit = cell.metadata.get("kit", {})
        if kit.get("role") == "definition":
            code = code_of(kit["module"], kit["name"])
            if code is not None:
                cell.source = code
    return filled


def _execute(notebook: nbformat.NotebookNode, folder: Path, order: list[int] | None = None) -> nbformat.NotebookNode:
    """Run the notebook in a real kernel: every cell, top to bottom, or as a learner does, only
    the cells at the indexes of ``order``, in that order (the others never reach the kernel)."""
    env = {**os.environ, **KERNEL_ENV}
    client = NotebookClient(notebook, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(folder)}})
    old_env = dict(os.environ)
    os.environ.update(env)  # the kernel inherits this process's environment
    try:
        if order is None:
            client.execute()
        else:
            with client.setup_kernel():
                for index in order:
                    client.execute_cell(notebook.cells[index], index)
    finally:
        os.environ.clear()
        os.environ.update(old_env)
    return notebook


def _printed(cell: nbformat.NotebookNode) -> tuple[int, str]:
    """(what a check cell returned, what it printed)."""
    results = [o for o in cell.outputs if o.output_type == "execute_result"]
    printed = "".join(o.text for o in cell.outputs if o.output_type == "stream" and o.name == "stdout")
    return int(results[0].data["text/plain"]), printed


def _check_cells(notebook: nbformat.NotebookNode) -> dict[str, tuple[int, str]]:
    """``module.function`` -> (points the check cell returned, what it printed)."""
    found = {}
    for cell in notebook.cells:
        kit = cell.metadata.get("kit", {})
        if kit.get("role") == "check":
            found[f"{kit['module']}.{kit['name']}"] = _printed(cell)
    return found


def _total_cell(notebook: nbformat.NotebookNode) -> tuple[int, str]:
    """(what check_all() returned, what it printed): the last cell."""
    cell = notebook.cells[-1]
    assert cell.source == "check_all()", cell.source
    return _printed(cell)


def _errors(notebook: nbformat.NotebookNode) -> list[str]:
    return [f"{o.ename}: {o.evalue}" for c in notebook.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]


# --------------------------------------------------------------------------- generation


def test_committed_notebooks_match_the_generator():
    for path, text in notebooks.expected_files().items():
        assert path.is_file() and path.read_text(encoding="utf-8") == text, (
            f"{path.relative_to(REPO)} differs from the generator: run `python -m grader generate`"
        )


def test_notebooks_hold_every_exercise_with_its_check_and_points():
    cat = catalogue.load()
    lesson = nbformat.read(str(notebooks.LESSON_PATH), as_version=4)
    assert set(_check_cells_sources(lesson)) == {e.key for e in cat.exercises}
    source = nbformat.read(str(notebooks.COURSE / "source" / notebooks.ASSIGNMENT / f"{notebooks.ASSIGNMENT}.ipynb"), as_version=4)
    graded = {c.metadata["kit"]["module"] + "." + c.metadata["kit"]["name"]: c.metadata["nbgrader"]["points"]
              for c in source.cells if c.metadata["nbgrader"]["grade"]}
    assert graded == {e.key: e.points for e in cat.exercises} and sum(graded.values()) == 100
    for cell in source.cells:
        meta = cell.metadata["nbgrader"]
        if meta["solution"]:
            assert "### BEGIN SOLUTION" in cell.source and "### END SOLUTION" in cell.source
        else:
            assert meta["locked"], cell.id


def _check_cells_sources(notebook) -> list[str]:
    return [f"{c.metadata['kit']['module']}.{c.metadata['kit']['name']}" for c in notebook.cells
            if c.metadata.get("kit", {}).get("role") == "check"]


def test_extract_submission_keeps_definitions_and_runs_nothing(tmp_path):
    marker = tmp_path / "ran"
    cells = [
        "import os\nfrom grader.notebook import check\nimport mlflow",
        f"open({str(marker)!r}, 'w').write('x')\nTHRESHOLD = 0.5\ndata = load_data()",
        "%matplotlib inline\n@staticmethod\ndef helper():\n    return THRESHOLD",
        "def broken(:\n    pass",
        "class Model:\n    def predict(self):\n        return 1\nModel().predict()",
        'check("ex01_tracking", "log_run")',
    ]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    notebook.cells.insert(2, nbformat.v4.new_markdown_cell("## Some words: a cell a person counts too"))
    path = tmp_path / "sub.ipynb"
    nbformat.write(notebook, str(path))
    submission.extract_submission(path, tmp_path / "out")
    code = (tmp_path / "out" / "ex01_tracking.py").read_text()
    assert {p.name for p in (tmp_path / "out").iterdir()} == {f"{m.name}.py" for m in catalogue.load().modules} | {"cells.json"}
    # Which cell each piece of the module came from, as a person counts cells (markdown too, from 1).
    cells_of = json.loads((tmp_path / "out" / "cells.json").read_text())["ex01_tracking.py"]
    helper = next(c for c in cells_of if c["definition"] == "helper")
    assert (helper["cell"], helper["cell_line"]) == (4, 2)
    assert code.splitlines()[helper["first_line"] - 1:helper["last_line"]] == ["@staticmethod", "def helper():", "    return THRESHOLD"]
    assert [c["cell"] for c in cells_of] == [1, 1, 2, 4, 6]
    for kept in ("import os", "import mlflow", "THRESHOLD = 0.5", "@staticmethod\ndef helper():", "class Model:"):
        assert kept in code
    for dropped in ("grader", "open(", "load_data", "broken", "Model().predict()", "check(", "matplotlib"):
        assert dropped not in code.split("\n", 1)[1], dropped
    assert not marker.exists()


# --------------------------------------------------------------------------- the lesson, run


def test_stub_shortcut_prints_what_the_grader_prints(tmp_path):
    """A stub is not sent to the grader; what the check prints must still be the grader's."""
    exercise = catalogue.load().exercise("ex01_tracking", "log_run")
    graded = grade(None, "-k", "log_run", out=tmp_path / "r.json")
    assert kit_notebook._summary_lines(graded.output) == kit_notebook._not_attempted(exercise, SEED)[0]


def test_lesson_with_stubs_runs_and_says_not_attempted(tmp_path):
    lesson = _execute(nbformat.read(str(notebooks.LESSON_PATH), as_version=4), tmp_path)
    assert _errors(lesson) == []
    checks = _check_cells(lesson)
    assert set(checks) == {e.key for e in catalogue.load().exercises}
    for key, (points, printed) in checks.items():
        assert points == 0 and "not attempted" in printed and f"Progress: 0/{FUNCTIONS} done · 0/{TOTAL} points" in printed, (key, printed)
    total, printed = _total_cell(lesson)
    assert total == 0 and f"0/{FUNCTIONS} done · 0/{TOTAL} points" in printed and "Next: write `get_or_create_experiment`" in printed
    assert not any(o.output_type == "stream" and o.name == "stderr" for c in lesson.cells if c.cell_type == "code" for o in c.outputs)


def test_lesson_with_solutions_scores_full_marks(tmp_path):
    lesson = _execute(notebooks.lesson_notebook("solutions"), tmp_path)
    assert _errors(lesson) == []
    checks = _check_cells(lesson)
    expected = {e.key: e.points for e in catalogue.load().exercises}
    assert {key: points for key, (points, _) in checks.items()} == expected, {k: p for k, (_, p) in checks.items()}
    assert all("passed" in printed for _, printed in checks.values())
    last = catalogue.load().exercises[-1].key  # the last check cell: the whole lesson is done then
    assert f"Progress: {FUNCTIONS}/{FUNCTIONS} done · {TOTAL}/{TOTAL} points" in checks[last][1]
    total, printed = _total_cell(lesson)
    assert total == 100 and f"{FUNCTIONS}/{FUNCTIONS} done · {TOTAL}/{TOTAL} points" in printed and "Checking" not in printed, printed


def _status_line(function: str, words: str, points: str) -> re.Pattern:
    return re.compile(rf"^  \S {function} +{words} +{points}$", re.MULTILINE)


def _words(printed: str) -> str:
    """What was printed with the summary's line wrapping undone."""
    return " ".join(printed.split())


def test_cells_not_run_are_named_never_graded_as_missing(tmp_path):
    """A learner who skips cells: a function whose cell never ran is "not run" (never "no
    function called ...: keep the name"); a cell that ran but is not valid Python, one under
    a cell magic and a renamed function are named by their cell; check_all() grades what ran,
    and running the cell then makes the check pass."""
    lesson = nbformat.read(str(notebooks.LESSON_PATH), as_version=4)
    setup, imports = [c for c in lesson.cells if c.cell_type == "code" and "kit" not in c.metadata][:2]
    broken = nbformat.v4.new_code_cell("def log_metric_history(experiment_id, key, values)\n    return None",
                                       metadata={"tags": ["raises-exception"]})
    renamed = _solution_code("ex01_tracking", "log_evaluation").replace("def log_evaluation(", "def log_evaluations(")
    cells = [setup, imports, _solution_code("ex01_tracking", "get_or_create_experiment"),
             _solution_code("ex01_tracking", "log_run"),  # 3: run only after check_all()
             'check("ex01_tracking", "log_run")', broken, 'check("ex01_tracking", "log_metric_history")',
             renamed, 'check("ex01_tracking", "log_evaluation")',
             "%%capture\n" + _solution_code("ex01_tracking", "train_and_track"), 'check("ex01_tracking", "train_and_track")',
             "check_all()", 'check("ex01_tracking", "log_run")', "check_all()"]
    notebook = nbformat.v4.new_notebook(cells=[c if isinstance(c, dict) else nbformat.v4.new_code_cell(c) for c in cells])
    run = _execute(notebook, tmp_path, order=[0, 1, 2, 4, 5, 6, 7, 8, 9, 10, 11, 3, 12, 13])
    cells = run.cells
    assert [e.split(":")[0] for e in _errors(run)] == ["SyntaxError"]  # cell 5's, which the kernel showed

    points, printed = _printed(cells[4])
    assert points == 0 and _status_line("log_run", "not run", f"0/{FULL_MARKS['ex01_tracking.log_run']}").search(printed), printed
    assert ("The cell that defines `log_run` has not been run yet: a check takes only the code of the cells you ran."
            in _words(printed))
    assert printed.rstrip().endswith("Next: run the cell that defines `log_run` (Shift-Enter), then run this one again.")
    assert f"Progress: 0/{FUNCTIONS} done · 0/{TOTAL} points" in printed and "no function called" not in printed

    points, printed = _printed(cells[6])
    assert points == 0 and _status_line("log_metric_history", "error", f"0/{FULL_MARKS['ex01_tracking.log_metric_history']}").search(printed), printed
    assert (f"cell [{cells[5].execution_count}], which defines `log_metric_history`, is not valid Python (line 1: "
            "SyntaxError: expected ':'), so it defined nothing: fix it, then run it.") in _words(printed), printed
    points, printed = _printed(cells[8])
    assert points == 0 and (f"cell [{cells[7].execution_count}] defines `log_evaluations`, not `log_evaluation`: "
                            "keep the name from the stub.") in _words(printed), printed
    points, printed = _printed(cells[10])
    assert points == 0 and (f"cell [{cells[9].execution_count}] defines `train_and_track` under the cell magic "
                            "`%%capture`, which a check cannot read: take that line out") in _words(printed), printed

    # check_all() grades the one function defined and not checked yet, and no other.
    get_or_create, log_run = FULL_MARKS["ex01_tracking.get_or_create_experiment"], FULL_MARKS["ex01_tracking.log_run"]
    points, printed = _printed(cells[11])
    assert points == get_or_create and printed.startswith(f"Checking `get_or_create_experiment` (seed {SEED})...\n"), printed
    assert _status_line("get_or_create_experiment", "passed", f"{get_or_create}/{get_or_create}").search(printed), printed
    for function in ("log_metric_history", "log_evaluation", "train_and_track"):
        assert _status_line(function, "error", f"0/{FULL_MARKS['ex01_tracking.' + function]}").search(printed), printed
    ran = ("get_or_create_experiment", "log_metric_history", "log_evaluation", "train_and_track")
    never_run = [e.function for e in catalogue.load().exercises if e.function not in ran]
    for function in never_run:
        assert re.search(rf"^  \S {function} +not run ", printed, re.MULTILINE), (function, printed)
    assert "not checked" not in printed and "no function called" not in printed, printed
    assert "is not valid Python" in printed  # the error now: its message comes first, and Next sends there
    assert printed.rstrip().endswith("Next: fix `log_metric_history`, in its cell, then run its check cell."), printed

    # The learner runs log_run's cell, then its check: it is graded, and check_all() keeps that.
    assert cells[3].execution_count > cells[11].execution_count
    points, printed = _printed(cells[12])
    assert points == log_run and _status_line("log_run", "passed", f"{log_run}/{log_run}").search(printed), printed
    assert f"Progress: 2/{FUNCTIONS} done · {get_or_create + log_run}/{TOTAL} points" in printed
    points, printed = _printed(cells[13])
    assert points == get_or_create + log_run and "Checking" not in printed, printed
    assert _status_line("log_run", "passed", f"{log_run}/{log_run}").search(printed), printed


# --------------------------------------------------------------------------- nbgrader


def _nbgrader(course: Path, *args: str) -> subprocess.CompletedProcess:
    completed = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, capture_output=True, text=True,
                               env={**os.environ, **KERNEL_ENV}, timeout=1800)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return completed


def _submissions(release: nbformat.NotebookNode) -> dict[str, nbformat.NotebookNode]:
    """Learner name -> submitted notebook: the solutions, the stubs, the wrong ones."""
    made = {"solutions": _fill(release, _solution_code), "stubs": _fill(release, lambda m, n: None)}
    for name, wrong in WRONG.items():
        made[name] = _fill(release, lambda m, n, wrong=wrong: wrong.get(n) or _solution_code(m, n))
    return made


@pytest.fixture(scope="module")
def nbgrader_course(tmp_path_factory):
    """A two-function course, graded by nbgrader and by `pytest grader` (same seed)."""
    course = tmp_path_factory.mktemp("course")
    write_changed(notebooks.expected_files(course, course / "lesson.ipynb", COURSE_KEYS))
    _nbgrader(course, "generate_assignment", notebooks.ASSIGNMENT, "--force")
    release = nbformat.read(str(course / "release" / notebooks.ASSIGNMENT / f"{notebooks.ASSIGNMENT}.ipynb"), as_version=4)
    submissions = _submissions(release)
    for student, notebook in submissions.items():
        folder = course / "submitted" / student / notebooks.ASSIGNMENT
        folder.mkdir(parents=True)
        nbformat.write(notebook, str(folder / f"{notebooks.ASSIGNMENT}.ipynb"))
    targets = []
    for student in submissions:
        submission.extract_submission(course / "submitted" / student / notebooks.ASSIGNMENT / f"{notebooks.ASSIGNMENT}.ipynb",
                                     course / "extracted" / student)
        targets.append((course / "extracted" / student, "-k", COURSE_FILTER))
    # The grader's side and nbgrader's side are independent: run them side by side.
    with ThreadPoolExecutor(1) as side:
        ours = side.submit(grade_many, targets, tmp_path_factory.mktemp("graded"))
        _nbgrader(course, "autograde", notebooks.ASSIGNMENT, "--force")
        _nbgrader(course, "export", "--to", str(course / "grades.csv"))
        graded = dict(zip(submissions, ours.result()))
    return course, list(submissions), graded


def _nbgrader_points(course: Path, student: str) -> dict[str, float]:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        points = {}
        for key in COURSE_KEYS:
            module, function = key.split(".")
            grade = gradebook.find_grade(f"check-{module}-{function}", notebooks.ASSIGNMENT, notebooks.ASSIGNMENT, student)
            points[key] = grade.score
        return points


def test_nbgrader_points_equal_the_graders(nbgrader_course):
    course, students, graded = nbgrader_course
    for student in students:
        assert graded[student].code in (0, 1), graded[student].output
        assert _nbgrader_points(course, student) == graded[student].scores(), (student, graded[student].output)


def test_nbgrader_scores_tell_the_submissions_apart(nbgrader_course):
    course, students, _ = nbgrader_course
    points = {student: _nbgrader_points(course, student) for student in students}
    run, history = (catalogue.load().exercise("ex01_tracking", name) for name in ("log_run", "log_metric_history"))
    tags, steps = run.check("tags_and_run_name").points, history.check("history_by_step").points
    assert points["solutions"] == {run.key: run.points, history.key: history.points}
    assert points["stubs"] == {run.key: 0, history.key: 0}
    assert points["forgets_tags_and_steps"] == {run.key: run.points - tags, history.key: history.points - steps}
    assert points["raises_and_talks_on_stderr"] == {run.key: 0, history.key: history.points}
    assert 0 < points["leaves_the_run_active"][run.key] < run.points
    assert points["imports_a_missing_module"] == {"ex01_tracking.log_run": 0, "ex01_tracking.log_metric_history": 0}


def test_nbgrader_export_writes_the_csv(nbgrader_course):
    course, students, graded = nbgrader_course
    with open(course / "grades.csv", newline="") as handle:
        rows = {row["student_id"]: float(row["score"]) for row in csv.DictReader(handle)}
    assert rows == {student: float(graded[student].results["score"]) for student in students}


def test_a_broken_notebook_submission_is_named_by_its_cell(nbgrader_course):
    course, _, graded = nbgrader_course
    results = graded["imports_a_missing_module"].results
    notebook = nbformat.read(str(course / "submitted" / "imports_a_missing_module" / notebooks.ASSIGNMENT
                                 / f"{notebooks.ASSIGNMENT}.ipynb"), as_version=4)
    cell = next(n for n, c in enumerate(notebook.cells, start=1) if c.metadata.get("kit", {}).get("name") == "log_run"
                and c.metadata["kit"]["role"] == "definition")
    problem = results["extra_data"]["broken_modules"]["ex01_tracking"]
    assert problem["error"] == "ModuleNotFoundError: No module named 'mlflow_helpers_never_installed'"
    for test in results["tests"]:
        assert f"cell {cell}, line 1: ModuleNotFoundError" in test["output"], test["output"]
        assert ".py" not in test["output"] and "mlflow-kit-" not in test["output"], test["output"]
