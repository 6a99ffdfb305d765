"""`python -m grader ui FUNCTION`: a real terminal (tmux) runs it, real headless Chromium
opens the MLflow UI it prints, and Ctrl-C leaves no process and no store behind."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from browser import CHROMIUM, Chromium
from conftest import REPO, SEED, calls, command_line, grade, linger, snapshot, with_functions
from grader.ground.processes import descendants
from terminal import Terminal, assert_all_end

READY = "Ctrl-C stops it and removes the stores."
URL = re.compile(r"MLflow's UI, store (\d+): (http://127\.0\.0\.1:\d+)/")
needs_tmux = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


def ui(terminals, tmp_path: Path, *args: str) -> tuple[Terminal, str, str]:
    """`python -m grader ui ARGS` in a terminal, once the UI answers: the terminal, the
    screen and the URL it printed."""
    terminal = terminals([sys.executable, "-m", "grader", "ui", *args, "--seed", str(SEED)],
                         {"XDG_CACHE_HOME": str(tmp_path / "cache")}, width=400)  # a printed command fits one line
    screen = terminal.wait_for(READY, timeout=300)
    return terminal, screen, URL.search(screen)[2]


def server_of(terminal: Terminal) -> tuple[int, Path]:
    """The `mlflow server` below the terminal's command, and the SQLite store it serves."""
    for pid in descendants(terminal.pid):
        command = command_line(pid).split(b"\0")
        if b"server" in command and b"--backend-store-uri" in command:
            uri = command[command.index(b"--backend-store-uri") + 1].decode()
            return pid, Path(uri.removeprefix("sqlite:///"))
    raise AssertionError(f"no mlflow server below the command:\n{terminal.screen()}")


def the_run(db: Path):
    """What log_run's check left in the store, read with MLflow's client as the checks do."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{db}")
    [experiment] = [e for e in client.search_experiments() if e.name != "Default"]
    [run] = client.search_runs([experiment.experiment_id])
    return experiment, run


@needs_tmux
@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)")
def test_ui_serves_the_graded_run_and_ctrl_c_ends_it_all(tmp_path, terminals):
    folder = tmp_path / "learner"
    shutil.copytree(REPO / "solutions", folder, ignore=shutil.ignore_patterns("__pycache__"))
    before = snapshot(folder)
    terminal, screen, url = ui(terminals, tmp_path, "log_run", "--target", str(folder))
    assert "✔ log_run" in screen and f"-k log_run --seed {SEED}` gives the same verdict" in screen, screen

    server, db = server_of(terminal)
    experiment, run = the_run(db)
    listed = f"experiment {experiment.experiment_id} `{experiment.name}`: 1 run(s)  {url}/#/experiments/{experiment.experiment_id}/runs"
    assert listed in screen and f"run `{run.info.run_name}` finished" in screen, screen
    assert b"MLFLOW_DISABLE_TELEMETRY=true" in Path(f"/proc/{server}/environ").read_bytes().split(b"\0")

    key, value = sorted(run.data.params.items())[0]
    with Chromium(tmp_path) as browser:
        runs = browser.open(f"{url}/#/experiments/{experiment.experiment_id}/runs")
        runs.resize(1400)
        runs.wait_for_text(experiment.name, run.info.run_name)
        runs.screenshot(tmp_path / "ui-runs.png", full_page=False)  # to look at
        page = browser.open(f"{url}/#/experiments/{experiment.experiment_id}/runs/{run.info.run_id}")
        page.resize(1400)
        heading = f"Parameters ({len(run.data.params)})"
        page.wait_for_text(run.info.run_name, heading, key, value)
        page.value(f"[...document.querySelectorAll('*')].find(e => !e.childElementCount && e.textContent === {heading!r})"
                   ".scrollIntoView()")  # the run's page scrolls inside: its params are below the fold
        page.screenshot(tmp_path / "ui-run.png", full_page=False)

    pids = terminal.processes()
    kept = db.parents[2]  # the command's own folder: the grading's scratch, the server's log
    assert server in pids and Path(os.readlink(f"/proc/{server}/cwd")) == kept and kept.name.startswith("mlflow-kit-ui-")
    terminal.keys("C-c")
    terminal.wait_for("Stopped: nothing it started is left running, and the kept stores are removed.")
    assert_all_end(terminal, pids)
    assert not kept.exists(), "the kept stores are still there"
    assert snapshot(folder) == before, "nothing may be written into the learner's folder"


@needs_tmux
def test_several_stores_one_served_the_others_commands_printed(tmp_path, terminals):
    folder = with_functions(tmp_path / "learner", {("ex01_tracking", "get_or_create_experiment"): None})
    terminal, screen, url = ui(terminals, tmp_path, "get_or_create_experiment", "--target", str(folder), "--store", "2")
    assert "its 3 stores" in screen and "Store 2 (in the UI below):" in screen and URL.search(screen)[1] == "2", screen
    for other in ("1", "3"):
        assert re.search(rf"^Store {other} \(meanwhile: mlflow server --backend-store-uri sqlite:///\S+/store-00{other}-"
                         r"get_or_create_experiment/mlflow\.db ", screen, re.MULTILINE), screen
    assert "--store N (the same seed makes the same stores)" in screen, screen
    pids = terminal.processes()
    terminal.keys("C-c")
    terminal.wait_for("Stopped:")
    assert_all_end(terminal, pids)


@needs_tmux
def test_ctrl_c_while_grading_ends_the_grading_with_its_worker_and_calls(tmp_path, terminals):
    folder = linger(with_functions(tmp_path / "learner", {("ex01_tracking", "log_run"): None}),
                    {"ex01_tracking": ["log_run"]}, seconds=120)  # a call still running at Ctrl-C
    terminal = terminals([sys.executable, "-m", "grader", "ui", "log_run", "--target", str(folder)],
                         {"XDG_CACHE_HOME": str(tmp_path / "cache")})
    terminal.wait_for("Checking `log_run`")
    deadline = time.monotonic() + 120
    while not calls(terminal.processes()) and time.monotonic() < deadline:
        time.sleep(0.05)
    pids = terminal.processes()
    [grading] = [pid for pid in pids if b"\0-m\0pytest\0" in command_line(pid)]
    environment = dict(entry.split(b"=", 1) for entry in Path(f"/proc/{grading}/environ").read_bytes().split(b"\0") if b"=" in entry)
    kept = Path(environment[b"TMPDIR"].decode())
    assert calls(pids) and any(kept.glob("*/store-001-log_run")), (pids, terminal.screen())
    terminal.keys("C-c")
    terminal.wait_for("Stopped: nothing it started is left running")
    assert_all_end(terminal, pids)
    assert not kept.exists(), "the kept stores are still there"


def test_unknown_and_unattempted_functions_get_one_line(tmp_path):
    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "grader", "ui", *args], cwd=REPO, capture_output=True, text=True,
                              timeout=120, env={**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")})

    unknown = run("log_rnu")
    assert unknown.returncode == 1 and unknown.stdout == "", unknown
    assert unknown.stderr.count("\n") == 1 and "no exercise called `log_rnu`" in unknown.stderr and "`log_run`" in unknown.stderr

    stubs = tmp_path / "stubs"
    shutil.copytree(REPO / "exercises", stubs, ignore=shutil.ignore_patterns("__pycache__"))
    unattempted = run("log_run", "--target", str(stubs))
    assert unattempted.returncode == 1 and unattempted.stdout == "" and unattempted.stderr.count("\n") == 1, unattempted
    assert "`log_run` in " in unattempted.stderr and "not attempted" in unattempted.stderr


def test_a_graded_run_names_the_learners_module_as_its_source(tmp_path):
    """What the UI shows as a run's source: the learner's module, never the grader's worker
    (nor the kit's own git commit, which has nothing to do with the learner's code)."""
    import mlflow

    graded = grade(REPO / "solutions", "-k", "ex01 and log_run", "--keep-stores", out=tmp_path / "r.json")
    kept = Path(re.search(r"Temporary stores kept in (\S+)", graded.output)[1])
    try:
        [database] = [p for p in kept.rglob("mlflow.db") if "log_run" in p.parent.name]
        runs = mlflow.tracking.MlflowClient(f"sqlite:///{database}").search_runs(["1"])
        assert runs, graded.output[-2000:]
        for run in runs:
            assert Path(run.data.tags["mlflow.source.name"]).name == "ex01_tracking.py", run.data.tags
            assert "mlflow.source.git.commit" not in run.data.tags, run.data.tags
    finally:
        shutil.rmtree(kept, ignore_errors=True)
