"""The learner's loop around `pytest grader`: `watch` in a real terminal (tmux), the board
(`progress`, and "N/M done" with a "Next:" for the whole kit), `hint`, `reset`, and a
`generate` that never overwrites a learner's work unasked."""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import FULL_MARKS, FUNCTIONS, REPO, SEED, TOTAL, calls, grade, snapshot, with_functions
from grader.ground.processes import proc_stat
from terminal import assert_all_end, gone
from grader.authoring import stubgen
from grader.core import catalogue
from grader.core.places import Places
from grader.core.source import definition_span, is_untouched_stub

FORGETS_TAGS = '''def log_run(experiment_id: str, params: dict, metrics: dict, tags: dict[str, str] | None = None,
            run_name: str | None = None) -> str:
    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name) as run:
        mlflow.log_params(params)
        mlflow.log_metrics(metrics)
    return run.info.run_id
'''
HANGS = '''def log_run(experiment_id: str, params: dict, metrics: dict, tags: dict[str, str] | None = None,
            run_name: str | None = None) -> str:
    while True:  # waits for something that never comes
        pass
'''
FUNCTION_LINE = re.compile(r"^\s+(\S)\s+(\w+)\s+(passed|failed|error|not attempted|not checked|checking…)\s+(\d+)/(\d+)\s*$")
EXERCISES = catalogue.load().exercises


def kit(*args: str, env: dict, stdin=subprocess.DEVNULL) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "grader", *args], cwd=REPO, env={**os.environ, **env},
                          capture_output=True, text=True, timeout=120, stdin=stdin)


def replace_function(folder: Path, module: str, function: str, code: str) -> None:
    path = folder / f"{module}.py"
    text = path.read_text()
    first, last = definition_span(text, function)
    lines = text.splitlines(keepends=True)
    path.write_text("".join(lines[:first - 1]) + code + "".join(lines[last:]))


def solution_of(module: str, function: str) -> str:
    solution = stubgen.drop_markers((REPO / "solutions" / f"{module}.py").read_text())
    first, last = definition_span(solution, function)
    return "".join(solution.splitlines(keepends=True)[first - 1:last])


def board(screen: str) -> dict[str, tuple[str, int]]:
    """Function -> (status, points) as a board on the screen shows them."""
    return {m[2]: (m[3], int(m[4])) for m in map(FUNCTION_LINE.match, screen.splitlines()) if m}


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_watch_grades_what_changed_and_quits_leaving_nothing(tmp_path, terminals):
    folder = with_functions(tmp_path / "learner", {("ex01_tracking", "log_run"): FORGETS_TAGS,
                                                   ("ex02_models", "save_local"): None})
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    terminal = terminals([sys.executable, "-m", "grader", "watch", "--target", str(folder), "--seed", str(SEED)], env)
    # Meanwhile, the same folder and seed graded cold, as `pytest grader` does.
    cold = grade(folder, "-k", "log_run or save_local", env=env, out=tmp_path / "cold.json")
    screen = terminal.wait_for("checked log_run, save_local")
    shown = board(screen)
    assert set(shown) == {e.function for e in EXERCISES}, screen
    for key, result in cold.exercises.items():
        assert shown[key.split(".")[1]] == (result["status"], result["score"]), (key, screen)
    assert shown["log_run"] == ("failed", 4) and "the run's tags are {}" in screen, screen
    assert f"1/{FUNCTIONS} done · 7/{TOTAL} points" in screen and "Next: fix `log_run`" in screen

    replace_function(folder, "ex01_tracking", "log_run", solution_of("ex01_tracking", "log_run"))
    screen = terminal.wait_for("checked log_run in", f"2/{FUNCTIONS} done · 9/{TOTAL} points")
    assert board(screen)["log_run"] == ("passed", 6) and board(screen)["save_local"] == ("passed", 3)

    registry = folder / "ex03_registry.py"
    registry.write_text(registry.read_text().replace("alias: str) -> None:", "alias: str -> None:", 1))
    screen = terminal.wait_for("SyntaxError", "Next: fix the syntax error in ")  # the whole frame drawn
    assert screen.count("SyntaxError") == 1 and "Next: fix the syntax error in " in screen, screen
    assert "ex03_registry.py, line" in screen.split("Next:")[1]
    assert all(board(screen)[e.function] == ("error", 0) for e in catalogue.load().module("ex03_registry").exercises)

    progress = kit("progress", "--target", str(folder), env=env)  # what watch left, without grading
    assert progress.returncode == 0 and board(progress.stdout) == board(screen), progress.stdout
    assert f"2/{FUNCTIONS} done · 9/{TOTAL} points" in progress.stdout and progress.stdout.count("SyntaxError") == 1

    pids = terminal.processes()
    assert len(pids) >= 3, f"watch, its grading host and the host's worker: {pids}"
    terminal.keys("q")
    terminal.wait_for("Stopped watching")
    assert_all_end(terminal, pids)
    assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in (REPO / "exercises").glob("*.py")), \
        "nothing may be written into the learner's folder"


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_a_call_that_hangs_holds_up_no_other_verdict_and_the_status_tells_the_truth(tmp_path, terminals):
    folder = with_functions(tmp_path / "learner", {("ex01_tracking", "log_run"): HANGS})
    terminal = terminals([sys.executable, "-m", "grader", "watch", "--target", str(folder), "--seed", str(SEED),
                          "--call-timeout", "600"], {"XDG_CACHE_HOME": str(tmp_path / "cache")})
    screen = terminal.wait_for("checking log_run (", "Next: wait for the verdict on `log_run`")
    assert board(screen)["log_run"] == ("checking…", 0), screen

    replace_function(folder, "ex02_models", "save_local", solution_of("ex02_models", "save_local"))
    screen = terminal.wait_for("checked save_local in")  # long before log_run's call times out
    assert board(screen)["save_local"] == ("passed", 3) and board(screen)["log_run"] == ("checking…", 0), screen
    assert re.search(r"checking log_run \(\d+ s\)…", screen), screen

    replace_function(folder, "ex01_tracking", "log_run", solution_of("ex01_tracking", "log_run"))  # the loop fixed
    screen = terminal.wait_for("checked log_run in", f"2/{FUNCTIONS} done")  # its old check was stopped
    assert board(screen)["log_run"] == ("passed", 6) and not re.search(r"^checking ", screen, re.MULTILINE), screen

    registry = folder / "ex03_registry.py"
    registry.write_text(registry.read_text().replace("alias: str) -> None:", "alias: str -> None:", 1))
    screen = terminal.wait_for("SyntaxError", "Next: fix the syntax error in ")
    assert not re.search(r"^(checked|checking) ", screen, re.MULTILINE), "the status spoke of code since changed:\n" + screen
    pids = terminal.processes()
    terminal.keys("q")
    terminal.wait_for("Stopped watching")
    assert_all_end(terminal, pids)


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_putting_back_code_that_passed_stops_the_check_of_the_hung_code(tmp_path, terminals):
    """A hung edit, then the code that passed before, saved again (an editor's undo): its
    verdict stands at once, and the hung check stops (it would run to its 600 s timeout)."""
    folder = with_functions(tmp_path / "learner", {("ex01_tracking", "log_run"): None})
    terminal = terminals([sys.executable, "-m", "grader", "watch", "--target", str(folder), "--seed", str(SEED),
                          "--call-timeout", "600"], {"XDG_CACHE_HOME": str(tmp_path / "cache")})
    terminal.wait_for("checked log_run in")
    replace_function(folder, "ex01_tracking", "log_run", HANGS)
    terminal.wait_for("checking log_run (")
    deadline = time.monotonic() + 60
    while not (hung := calls(terminal.processes())) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert hung, "the hung call was never seen running"
    replace_function(folder, "ex01_tracking", "log_run", solution_of("ex01_tracking", "log_run"))
    deadline = time.monotonic() + 60
    while (re.search(r"^checking ", screen := terminal.screen(), re.MULTILINE) or gone(hung)) \
            and time.monotonic() < deadline:
        time.sleep(0.05)
    assert board(screen)["log_run"] == ("passed", 6) and not re.search(r"^checking ", screen, re.MULTILINE), screen
    assert not gone(hung), f"the hung call still runs: {gone(hung)}"
    terminal.keys("q")
    terminal.wait_for("Stopped watching")


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_a_hung_call_dies_with_its_worker(tmp_path, terminals):
    """Every process but a call that hangs killed at once (watch, its host, the scoring process,
    the worker: a kill -9, or a stop that missed the call): the call goes with them, rather
    than spin on with no one left to stop it at its deadline."""
    folder = with_functions(tmp_path / "learner", {("ex01_tracking", "log_run"): HANGS})
    terminal = terminals([sys.executable, "-m", "grader", "watch", "--target", str(folder), "--call-timeout", "600"],
                         {"XDG_CACHE_HOME": str(tmp_path / "cache")})
    deadline = time.monotonic() + 120
    while not (hung := calls(terminal.processes())) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert hung, "the hung call was never seen running"
    for pid in terminal.processes():
        if pid not in hung:
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while gone(hung) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not gone(hung), f"the call outlived its worker: {gone(hung)}"


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_watch_from_the_learners_own_folder_grades_the_folder_named(tmp_path, terminals):
    """`--target learner`, typed in the folder that holds it (not the kit's): the folder
    graded is that one, whatever folder the grading runs in."""
    with_functions(tmp_path / "learner", {("ex01_tracking", "log_run"): None})
    terminal = terminals([sys.executable, "-m", "grader", "watch", "--target", "learner", "--seed", str(SEED)],
                         {"XDG_CACHE_HOME": str(tmp_path / "cache"), "PYTHONPATH": str(REPO)}, cwd=tmp_path)
    screen = terminal.wait_for("checked log_run in")
    assert board(screen)["log_run"] == ("passed", 6) and "watching learner/" in screen, screen
    terminal.keys("q")
    terminal.wait_for("Stopped watching")


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_ctrl_c_during_a_grading_ends_every_process(tmp_path, terminals):
    folder = with_functions(tmp_path / "learner", {("ex04_practice", "run_practice"): None})
    terminal = terminals([sys.executable, "-m", "grader", "watch", "--target", str(folder)],
                         {"XDG_CACHE_HOME": str(tmp_path / "cache")})
    terminal.wait_for("checking run_practice (")
    deadline = time.monotonic() + 60
    while len(terminal.processes()) < 4 and time.monotonic() < deadline:  # watch, host, worker, a grading
        time.sleep(0.05)
    pids = terminal.processes()
    hosts = [pid for pid in pids if int(proc_stat(pid)[1]) == terminal.pid and b"host/main.py" in Path(f"/proc/{pid}/cmdline").read_bytes()]
    scratch = {Path(os.readlink(f"/proc/{pid}/cwd")).parent for pid in hosts}
    assert len(scratch) == 1 and next(iter(scratch)).name.startswith("mlflow-kit-watch-"), scratch
    terminal.keys("C-c")
    terminal.wait_for("Stopped watching")
    assert_all_end(terminal, pids)
    assert not next(iter(scratch)).exists(), "watch left its temporary folder behind"


def test_a_selection_says_what_is_next_for_the_whole_kit_and_progress_remembers(tmp_path):
    folder = with_functions(tmp_path / "learner", {("ex01_tracking", "log_run"): None})
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    # As the learner types it, from the folder that holds theirs: `pytest grader --target learner -k log_run`.
    graded = grade(Path("learner"), "-k", "log_run", cwd=tmp_path, env=env, out=tmp_path / "r.json")
    said = " ".join(graded.output.split())
    points = FULL_MARKS["ex01_tracking.log_run"]
    assert (f"Total: {points}/{points} for the 1 function(s) checked now · the whole kit: 1/{FUNCTIONS} done · "
            f"{points}/{TOTAL} points") in said, said
    assert "Next: implement `get_or_create_experiment` in learner/ex01_tracking.py, then check it: " \
           "pytest grader --target learner -k get_or_create_experiment (94 points still open)" in said, said

    shown = kit("progress", "--target", str(folder), env=env).stdout
    assert board(shown)["log_run"] == ("passed", 6) and f"1/{FUNCTIONS} done · 6/{TOTAL} points" in shown, shown
    [kept] = (tmp_path / "cache" / "mlflow-exercise-kit" / "progress").glob("*.json")  # the board, outside the folder
    assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in (REPO / "exercises").glob("*.py"))
    replace_function(folder, "ex01_tracking", "log_run", "# moved about, same code\n" + solution_of("ex01_tracking", "log_run"))
    assert board(kit("progress", "--target", str(folder), env=env).stdout)["log_run"] == ("passed", 6)
    replace_function(folder, "ex01_tracking", "log_run", FORGETS_TAGS)
    shown = kit("progress", "--target", str(folder), env=env).stdout
    assert board(shown)["log_run"] == ("not checked", 0) and f"0/{FUNCTIONS} done" in shown, shown
    assert "Next: check `log_run` (its code has not been checked yet)" in " ".join(shown.split()), shown


def test_a_learners_file_is_named_as_seen_from_the_working_folder(tmp_path):
    """Messages name a learner's file by a path that opens from where the learner works:
    relative when their folder is in it or beside it (one `..`: the kit and the learner's
    folder side by side), absolute when it is further out, where `../../..` would be harder
    to read than the absolute path."""
    folder = tmp_path / "kit" / "learner"
    folder.mkdir(parents=True)
    (tmp_path / "elsewhere" / "work").mkdir(parents=True)
    named = {str(cwd.relative_to(tmp_path)): Places(folder, cwd).file("ex01_tracking")
             for cwd in (folder, tmp_path / "kit", tmp_path, tmp_path / "elsewhere", tmp_path / "elsewhere" / "work")}
    assert named == {"kit/learner": "ex01_tracking.py", "kit": "learner/ex01_tracking.py",
                     ".": "kit/learner/ex01_tracking.py", "elsewhere": "../kit/learner/ex01_tracking.py",
                     "elsewhere/work": f"{folder}/ex01_tracking.py"}, named


def test_hint_prints_the_catalogue_hint_and_a_second_level(tmp_path):
    log_model = catalogue.load().exercise("ex02_models", "log_model")
    first = kit("hint", "log_model", env={})
    assert first.returncode == 0 and log_model.hint in " ".join(first.stdout.split())
    assert "python -m grader hint log_model --more" in first.stdout and log_model.more not in first.stdout
    more = kit("hint", "ex02_models.log_model", "--more", env={})
    assert log_model.hint in more.stdout and log_model.more in more.stdout
    unknown = kit("hint", "log_modle", env={})
    assert unknown.returncode != 0 and "no exercise called `log_modle`" in unknown.stderr and "`log_model`" in unknown.stderr


def test_reset_puts_back_exactly_one_stub_and_asks_first(tmp_path):
    folder = tmp_path / "done"
    shutil.copytree(REPO / "solutions", folder)
    before = (folder / "ex01_tracking.py").read_text()
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}

    refused = kit("reset", "log_run", "--target", str(folder), env=env)  # no terminal to answer: nothing changes
    assert refused.returncode == 1 and "--yes" in refused.stderr and (folder / "ex01_tracking.py").read_text() == before

    done = kit("reset", "log_run", "--target", str(folder), "--yes", env=env)
    assert done.returncode == 0, done.stderr
    first, last = definition_span(before, "log_run")
    lines = before.splitlines(keepends=True)
    expected = "".join(lines[:first - 1]) + stubgen.stub_of("ex01_tracking", "log_run") + "".join(lines[last:])
    after = (folder / "ex01_tracking.py").read_text()
    assert after == expected and is_untouched_stub(after, "log_run")
    [kept] = (tmp_path / "cache" / "mlflow-exercise-kit" / "reset").glob("ex01_tracking.log_run.*.py")
    assert kept.read_text() == "".join(lines[first - 1:last]) and str(kept) in done.stdout
    assert {p.name for p in folder.iterdir()} == {p.name for p in (REPO / "solutions").iterdir() if p.suffix == ".py"}


@pytest.mark.parametrize("name", ["ThresholdModel", "ThresholdModel.predict", "ex02_models.ThresholdModel.predict"])
def test_reset_puts_back_a_class_or_one_of_its_methods(tmp_path, name):
    """The names `generate` protects (a class of the stubs, its methods) can be reset too."""
    folder = with_functions(tmp_path / "learner", {("ex02_models", "log_threshold_model"): None,
                                                   ("ex02_models", "ThresholdModel"): None})
    before = (folder / "ex02_models.py").read_text()
    qualified = name.removeprefix("ex02_models.")
    done = kit("reset", name, "--target", str(folder), "--yes", env={"XDG_CACHE_HOME": str(tmp_path / "cache")})
    assert done.returncode == 0 and f"`{qualified}` is a stub again" in done.stdout, done.stdout + done.stderr
    first, last = definition_span(before, qualified)
    lines = before.splitlines(keepends=True)
    expected = "".join(lines[:first - 1]) + stubgen.stub_of("ex02_models", qualified) + "".join(lines[last:])
    after = (folder / "ex02_models.py").read_text()
    assert after == expected and after != before
    assert definition_span(after, "log_threshold_model") is not None and not is_untouched_stub(after, "log_threshold_model")
    unknown = kit("reset", "Thresholdmodel", "--target", str(folder), "--yes", env={"XDG_CACHE_HOME": str(tmp_path / "cache")})
    assert unknown.returncode != 0 and "Did you mean `ThresholdModel`" in unknown.stderr, unknown.stderr


def test_no_bytecode_is_written_anywhere_when_python_is_asked_not_to(tmp_path):
    """PYTHONDONTWRITEBYTECODE=1 holds for the grader's own processes too (they run
    isolated, with -I, which drops PYTHON* variables): no __pycache__ in the kit, nor in
    the learner's folder."""
    kit_copy = tmp_path / "kit"
    for part in ("grader", "solutions", "exercises"):
        shutil.copytree(REPO / part, kit_copy / part, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pytest.ini", kit_copy)
    learner = with_functions(tmp_path / "learner", {("ex01_tracking", "log_run"): None})
    command = [sys.executable, "-m", "pytest", "grader", "--target", str(learner), "-k", "log_run", "-p", "no:cacheprovider"]
    done = subprocess.run(command, cwd=kit_copy, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "XDG_CACHE_HOME": str(tmp_path / "cache")})
    assert "✔ log_run" in done.stdout, done.stdout[-3000:] + done.stderr[-3000:]
    assert not list(kit_copy.rglob("__pycache__")) and not list(learner.rglob("__pycache__")), \
        [str(p) for p in [*kit_copy.rglob("__pycache__"), *learner.rglob("__pycache__")]]


def test_generate_refuses_to_overwrite_a_learners_work(tmp_path):
    copy = tmp_path / "kit"
    for part in ("grader", "solutions", "exercises", "notebooks", "course"):
        shutil.copytree(REPO / part, copy / part, ignore=shutil.ignore_patterns("__pycache__"))
    replace_function(copy / "exercises", "ex01_tracking", "log_run", solution_of("ex01_tracking", "log_run"))
    before = snapshot(copy)

    def generate(*args):
        return subprocess.run([sys.executable, "-m", "grader", "generate", *args], cwd=copy, capture_output=True,
                              text=True, timeout=120, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})

    refused = generate()
    assert refused.returncode == 1 and "exercises/ex01_tracking.py: log_run" in refused.stderr, refused.stderr
    assert "--force" in refused.stderr and snapshot(copy) == before
    forced = generate("--force")
    assert forced.returncode == 0 and (copy / "exercises" / "ex01_tracking.py").read_text() == (REPO / "exercises" / "ex01_tracking.py").read_text()


def test_help_lists_the_learners_commands_before_the_authors():
    listing = kit("--help", env={}).stdout
    learner, author = listing.split("For course authors and instructors:")
    for command in ("watch", "hint", "reset", "progress", "ui"):
        assert re.search(rf"^  {command}\s", learner, re.MULTILINE), listing
    for command in ("generate", "check", "batch"):
        assert re.search(rf"^  {command}\s", author, re.MULTILINE) and not re.search(rf"^  {command}\s", learner, re.MULTILINE)
    for command in ("watch", "reset", "batch"):  # each names itself as it is typed
        usage = kit(command, "--help", env={}).stdout
        assert usage.startswith(f"usage: python -m grader {command} [-h]"), usage


def test_a_python_without_the_kits_packages_gets_one_plain_line(tmp_path):
    """A real Python of its own (a venv holding pytest and nothing of the kit's): one line
    naming what is missing and the command that installs it, for `pytest grader` and for
    `python -m grader`."""
    import importlib
    import venv

    venv.create(tmp_path / "bare", with_pip=False, symlinks=True)
    python = tmp_path / "bare" / "bin" / "python"
    site = Path(subprocess.run([python, "-c", "import site; print(site.getsitepackages()[0])"], capture_output=True,
                               text=True, check=True).stdout.strip())
    for name in ("pytest", "_pytest", "pluggy", "iniconfig", "packaging", "pygments", "py"):  # pytest and what it needs
        where = Path(importlib.import_module(name).__file__)
        if where.name == "__init__.py":
            shutil.copytree(where.parent, site / where.parent.name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(where, site)
    for command in ([python, "-m", "pytest", "grader"], [python, "-m", "grader", "watch"]):
        done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
        said = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
        assert done.returncode in (2, 4) and len(said) == 1, (command, said)
        assert "lacks the kit's packages (mlflow, scikit-learn" in said[0], said
        assert f"{python} -m pip install -r {REPO / 'requirements.txt'}" in said[0], said
