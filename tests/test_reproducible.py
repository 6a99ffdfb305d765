"""Module 6's processes, seen from outside the grader: a grading of the solutions runs git
(the grader's repositories, MLflow's project runner), each project's `python train.py`
and the grader's own tracking server; when it ends, none of them is left, and no process
anywhere still works in the grading's folders."""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from conftest import REPO, SEED, grader_args, linger
from grader.core import catalogue
from grader.sandbox import isolation
from test_serving import alive, netns, watched

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
    command = [sys.executable, "-m", "pytest",
               *grader_args(learner, "-k", "ex06", "--isolation", mode, seed=SEED, out=tmp_path / "r.json")]
    every: dict[int, str] = {}
    completed, listening = watched(command, env={"TMPDIR": str(place)}, every=every)
    module = catalogue.load().module("ex06_reproducible")
    assert completed.returncode == 0 and f"{module.points}/{module.points}" in completed.stdout, completed.stdout[-3000:]
    projects = [pid for pid, said in every.items() if "train.py" in said]
    assert projects, "no project script was seen running"
    assert listening, "the grader's tracking server was not seen listening"
    left = [f"{pid}: {every.get(pid) or listening[pid]['command']}" for pid in [*every, *listening] if alive(pid)]
    assert not left, f"processes outlived the grading: {left}"
    assert not working_in(place), "a process still works in the grading's folders"
    if mode == "bwrap":
        ours = netns(os.getpid())
        assert all(server["netns"] != ours for server in listening.values()), listening
