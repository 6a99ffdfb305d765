"""Module 6's processes, seen from outside the grader: a grading of the solutions runs git
(the grader's repositories, MLflow's project runner), each project's `python train.py`
and the grader's own tracking server; when it ends, none of them is left, and no process
anywhere still works in the grading's folders."""
from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from conftest import REPO, SEED, Graded, grade, grader_args, linger
from grader.core import catalogue
from grader.sandbox import isolation
from test_serving import netns, watched

needs_bwrap = pytest.mark.skipif(not isolation.bwrap_available(), reason="bubblewrap cannot build a sandbox here")


def working_in(folder: Path) -> list[int]:
    """Every process of the machine whose command line or working folder is below ``folder``."""
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            command = Path(f"/proc/{entry}/cmdline").read_bytes().decode(errors="replace")
            where = os.readlink(f"/proc/{entry}/cwd")
        except OSError:
            continue
        if str(folder) in command or where.startswith(str(folder)):
            found.append(int(entry))
    return found


@pytest.mark.parametrize("mode", ["none", pytest.param("bwrap", marks=needs_bwrap)])
def test_projects_git_and_the_tracking_server_end_with_the_grading(tmp_path, mode):
    place = tmp_path / "tmp"
    place.mkdir()
    # The learner's REST call waits a second: the grader's tracking server (alive a fifth
    # of a second otherwise) listens long enough to be seen from outside every time.
    learner = linger(shutil.copytree(REPO / "solutions", tmp_path / "learner", ignore=shutil.ignore_patterns("__pycache__")),
                     {"ex06_reproducible": ["log_run_rest"]})
    # The project's script, a fork of the call, runs a fraction of a second: the learner makes
    # it end with a second's wait, so that it too is seen every time.
    linger(learner, {"ex06_reproducible": ["run_project"]},
           first="open(project_uri + '/train.py', 'a').write('\\n__import__(\"time\").sleep(1)\\n')")
    command = [sys.executable, "-m", "pytest",
               *grader_args(learner, "-k", "ex06", "--isolation", mode, seed=SEED, out=tmp_path / "r.json")]
    completed, watch = watched(command, env={"TMPDIR": str(place)})
    module = catalogue.load().module("ex06_reproducible")
    assert completed.returncode == 0 and f"{module.points}/{module.points}" in completed.stdout, completed.stdout[-3000:]
    # The project's script: a process of its own, or a fork of the call named after it.
    projects = [pid for pid, seen in watch.processes.items() if "train.py" in seen["command"] or "train.py" in seen["names"]]
    assert projects, "no project script was seen running"
    assert watch.listening, "the grader's tracking server was not seen listening"
    assert not watch.left(), f"processes outlived the grading: {watch.left()}"
    assert not working_in(place), "a process still works in the grading's folders"
    if mode == "bwrap":
        ours = netns(os.getpid())
        assert all(server["netns"] != ours for server in watch.listening.values()), watch.listening


def graded_with(tmp_path: Path, definitions: str, *args: str):
    """The solutions with ``definitions`` appended to ex06_reproducible.py (later definitions
    win), graded with ``args`` from outside, TMPDIR a folder of the test's: (the completed
    grading, what was watched, that folder)."""
    place = tmp_path / "tmp"
    place.mkdir()
    learner = shutil.copytree(REPO / "solutions", tmp_path / "learner", ignore=shutil.ignore_patterns("__pycache__"))
    with open(learner / "ex06_reproducible.py", "a") as module:
        module.write(definitions)
    command = [sys.executable, "-m", "pytest", *grader_args(learner, *args, seed=SEED, out=tmp_path / "r.json")]
    return (*watched(command, env={"TMPDIR": str(place)}), place)


HANGS = '''

def run_project(project_uri, experiment_id, params):  # a project whose command never ends
    import pathlib, tempfile
    folder = pathlib.Path(tempfile.mkdtemp())
    (folder / "MLproject").write_text(
        "name: forever\\nentry_points:\\n  main:\\n    command: python -c 'import time; time.sleep(3600)'\\n")
    return mlflow.projects.run(str(folder), entry_point="main", experiment_id=experiment_id,
                               env_manager="local", synchronous=True).run_id


def log_run_rest(tracking_uri, experiment_id, params, metrics):  # waits for a run that never ends
    import json, time, urllib.request
    while True:
        urllib.request.urlopen(f"{tracking_uri}/api/2.0/mlflow/experiments/get?experiment_id={experiment_id}").read()
        time.sleep(0.2)
'''


def test_a_project_or_a_rest_call_that_never_ends_is_stopped_with_its_processes(tmp_path):
    """Stopped at the call timeout: the project's command (which MLflow's runner starts in a
    session of its own), the grader's tracking server, and nothing left working."""
    completed, watch, place = graded_with(tmp_path, HANGS, "-k", "run_project or log_run_rest", "--call-timeout", "6")
    for function, seconds in (("run_project", 12), ("log_run_rest", 6)):  # a project's Python may take twice as long
        assert f"`{function}` in ex06_reproducible.py did not finish within {seconds} seconds" in completed.stdout, \
            completed.stdout[-3000:]
    assert [pid for pid, seen in watch.processes.items() if "time.sleep(3600)" in seen["command"]], \
        "the project's command never ran"
    assert watch.listening, "the grader's tracking server was not seen listening"
    assert not watch.left(), f"processes outlived the grading: {watch.left()}"
    assert not working_in(place), "a process still works in the grading's folders"
    graded = Graded(completed.returncode, completed.stdout, json.loads((tmp_path / "r.json").read_text()))
    for function in ("run_project", "log_run_rest"):
        assert graded.scores()[f"ex06_reproducible.{function}"] == 0, graded.exercises


def test_a_machine_without_git_is_told_so_not_the_learner(tmp_path):
    """No git on PATH (a learner who downloaded the kit as a zip): the message names git and
    how to install it, not a grader's internal error about the learner's function."""
    graded = grade(REPO / "solutions", "-k", "log_code_version", out=tmp_path / "r.json",
                   env={"PATH": os.path.dirname(sys.executable)})
    said = " ".join(graded.output.split())  # as one line: the summary wraps long messages
    assert "git is not installed on this machine" in said and "sudo apt install git" in said, graded.output[-3000:]
    assert "internal error" not in graded.output, graded.output[-3000:]


ASYNCHRONOUS = '''
def run_project(project_uri, experiment_id, params):  # MLflow starts `mlflow run` in a session of its own
    submitted = mlflow.projects.run(project_uri, entry_point="main", parameters=params, experiment_id=experiment_id,
                                    env_manager="local", synchronous=False)
    if not submitted.wait():
        raise RuntimeError(f"the project run {submitted.run_id} failed")
    return submitted.run_id
'''


@pytest.mark.parametrize("mode", ["limits", pytest.param("bwrap", marks=needs_bwrap)])
def test_a_project_run_asynchronously_and_waited_for_is_not_taken_for_a_stray(tmp_path, mode):
    """``synchronous=False`` then ``wait()`` is as right as ``synchronous=True``: the sandbox's
    sweep of strays (under bubblewrap) spares a running call's descendants in sessions of
    their own, and still ends them with the grading."""
    completed, watch, place = graded_with(tmp_path, ASYNCHRONOUS, "-k", "run_project or log_code_version", "--isolation", mode)
    graded = Graded(completed.returncode, completed.stdout, json.loads((tmp_path / "r.json").read_text()))
    key = "ex06_reproducible.run_project"
    assert graded.scores()[key] == catalogue.load().exercise("ex06_reproducible", "run_project").points, completed.stdout[-3000:]
    assert [pid for pid, seen in watch.processes.items() if " run " in f" {seen['command']} " and "mlflow" in seen["command"]], \
        "MLflow's asynchronous `mlflow run` was never seen"
    assert not watch.left(), f"processes outlived the grading: {watch.left()}"
    assert not working_in(place), "a process still works in the grading's folders"
