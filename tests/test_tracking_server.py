"""`pytest grader --tracking-server`: the learner's code logs to a real local `mlflow server`
that the grader starts and stops, one workspace per store.

Nothing is mocked: the grader runs in a subprocess as a learner would run it, and starts
a real server. Three gradings share one module fixture, two at a time: the solutions on
a server, and a learner whose bug only shows on a server, graded on a server and on the
usual SQLite store.
"""
from __future__ import annotations

import os
import re
import shutil
import socket
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import REPO, Graded, grade, snapshot
from grader.core import catalogue

# A classic bug that a local store forgives: writing a file straight into the run's
# artifact folder instead of logging it. On an SQLite store the artifact URI is a local
# folder; on a server it is an mlflow-artifacts:/ URI, and the file never reaches the
# server (here it lands in a folder named "mlflow-artifacts:" in the working directory).
LOGGED = '''        mlflow.log_dict(
            {"labels": np.asarray(labels).tolist(), "matrix": matrix.tolist()},
            "evaluation/confusion_matrix.json",
        )
'''
WRITTEN_TO_ARTIFACT_FOLDER = '''        import json, os
        folder = os.path.join(mlflow.get_artifact_uri(), "evaluation")
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, "confusion_matrix.json"), "w") as handle:
            json.dump({"labels": np.asarray(labels).tolist(), "matrix": matrix.tolist()}, handle)
'''
BROKEN = "ex01_tracking.log_evaluation"


@dataclass
class Gradings:
    solutions: Graded      # solutions/, --tracking-server --keep-stores, with the learner's own MLFLOW_* set
    kept: Path             # the folder --keep-stores kept: stores and tracking-server/
    workdir: Path          # where the learner ran it
    workdir_before: dict
    bug_on_server: Graded  # the artifact-folder bug, --tracking-server
    bug_on_sqlite: Graded  # the same bug, SQLite stores, -k log_evaluation


def with_artifact_folder_bug(folder: Path) -> Path:
    shutil.copytree(REPO / "solutions", folder)
    module = folder / "ex01_tracking.py"
    source = module.read_text()
    assert source.count(LOGGED) == 1, "solutions/ex01_tracking.py changed: update LOGGED"
    module.write_text(source.replace(LOGGED, WRITTEN_TO_ARTIFACT_FOLDER))
    return folder


@pytest.fixture(scope="module")
def gradings(tmp_path_factory) -> Gradings:
    tmp = tmp_path_factory.mktemp("tracking-server")
    workdir = tmp / "workdir"
    workdir.mkdir()
    before = snapshot(workdir)
    buggy = with_artifact_folder_bug(tmp / "buggy")
    # The learner's own settings, which grading must neither use nor write to (a workspace
    # setting would even stop `mlflow server` from starting, were it passed on).
    learner_env = {"MLFLOW_TRACKING_URI": f"sqlite:///{workdir}/learner.db", "MLFLOW_WORKSPACE": "learner-own",
                   "MLFLOW_EXPERIMENT_NAME": "learner-own"}
    jobs = [
        lambda: grade(REPO / "solutions", "--tracking-server", "--keep-stores", cwd=workdir, env=learner_env,
                      out=tmp / "solutions.json"),
        lambda: grade(buggy, "--tracking-server", out=tmp / "bug-on-server.json"),
        lambda: grade(buggy, "-k", "log_evaluation", out=tmp / "bug-on-sqlite.json"),
    ]
    with ThreadPoolExecutor(2) as pool:  # two cores
        solutions, on_server, on_sqlite = [future.result() for future in [pool.submit(job) for job in jobs]]
    match = re.search(r"Temporary stores kept in (\S+)", solutions.output)
    assert match, f"--keep-stores printed no folder:\n{solutions.output[-3000:]}"
    kept = Path(match.group(1))
    yield Gradings(solutions, kept, workdir, before, on_server, on_sqlite)
    shutil.rmtree(kept, ignore_errors=True)


def test_solutions_score_100_on_the_server(gradings):
    graded = gradings.solutions
    assert graded.code == 0 and graded.results.get("score") == 100, (
        f"exit {graded.code}, score {graded.results.get('score')}:\n{graded.output[-3000:]}"
    )
    assert "learner code logs to an mlflow server at http://127.0.0.1:" in graded.output, graded.output[:2000]


def test_every_store_is_its_own_workspace_on_the_server(gradings):
    """The learner's runs really went through the server: its database holds one workspace
    per store, each with the store's own Default experiment, and the logged artifacts are
    in the server's artifact folder, one folder per workspace."""
    stores = sorted(p.name for p in gradings.kept.glob("store-*"))
    server = gradings.kept / "tracking-server"
    with sqlite3.connect(server / "server.db") as db:
        workspaces = {name for (name,) in db.execute("SELECT name FROM workspaces WHERE name != 'default'")}
        defaults = dict(db.execute("SELECT workspace, COUNT(*) FROM experiments WHERE name = 'Default' GROUP BY workspace"))
        runs_by_workspace = dict(db.execute(
            "SELECT e.workspace, COUNT(*) FROM runs r JOIN experiments e USING (experiment_id) GROUP BY e.workspace"
        ))
    assert len(stores) >= len(catalogue.load().exercises) and len(workspaces) == len(stores), f"{len(stores)} stores but workspaces {sorted(workspaces)}"
    assert all(defaults.get(w) == 1 for w in workspaces), f"Default experiments per workspace: {defaults}"
    assert "default" not in runs_by_workspace, f"runs were logged outside the stores' workspaces: {runs_by_workspace}"
    assert sum(runs_by_workspace.values()) >= 30, f"runs per workspace: {runs_by_workspace}"
    artifact_folders = {p.name for p in (server / "artifacts" / "workspaces").iterdir()}
    assert artifact_folders and artifact_folders <= workspaces, f"artifact folders {sorted(artifact_folders)}"
    assert list((server / "artifacts" / "workspaces").rglob("MLmodel")), "no model was logged through the server"


def listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def processes_mentioning(text: str) -> list[str]:
    """Command lines of the processes whose command line or environment mentions ``text``."""
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            environ = Path(f"/proc/{entry}/environ").read_bytes()
        except OSError:
            continue
        if text.encode() in cmdline + environ:
            command = cmdline.replace(b"\0", b" ").decode(errors="replace")
            found.append(f"{entry}: {command[:200]}")
    return found


def test_server_is_gone_after_the_session(gradings):
    port = int(re.search(r"mlflow server at http://127\.0\.0\.1:(\d+)", gradings.solutions.output).group(1))
    assert not listening(port), f"something still listens on the server's port {port}"
    leftovers = processes_mentioning(str(gradings.kept / "tracking-server"))
    assert not leftovers, "server processes outlived the grading session:\n" + "\n".join(leftovers)


def test_learner_tracking_settings_not_written_to(gradings):
    assert snapshot(gradings.workdir) == gradings.workdir_before, (
        f"grading wrote into the working folder: {sorted(snapshot(gradings.workdir))}"
    )
    assert not (gradings.workdir / "learner.db").exists(), "the learner's own MLFLOW_TRACKING_URI store was written to"


def test_bug_that_only_a_server_shows_costs_only_its_function(gradings):
    on_server, on_sqlite = gradings.bug_on_server, gradings.bug_on_sqlite
    expected = {e.key: e.points for e in catalogue.load().exercises}
    lost = {key: (score, expected[key]) for key, score in on_server.scores().items() if score != expected[key]}
    # The bug costs exactly the one check that reads the missing artifact.
    json_check = catalogue.load().exercise(*BROKEN.split(".")).check("confusion_matrix_json").points
    assert lost == {BROKEN: (expected[BROKEN] - json_check, expected[BROKEN])}, f"on the server, functions that lost points (score, max): {lost}\n{on_server.output[-3000:]}"
    failed = [t for t in on_server.results["tests"] if t["status"] != "passed"]
    assert [t["name"] for t in failed] == [f"{BROKEN}: confusion matrix json"], failed
    assert "has no artifact 'evaluation/confusion_matrix.json'" in failed[0]["output"], failed[0]["output"]
    assert on_sqlite.scores() == {BROKEN: expected[BROKEN]}, (
        f"on an SQLite store the same code should pass, as a local store forgives it: {on_sqlite.scores()}\n{on_sqlite.output[-2000:]}"
    )


def test_bwrap_isolation_is_refused(tmp_path):
    graded = grade(REPO / "solutions", "--tracking-server", "--isolation", "bwrap", out=tmp_path / "r.json")
    assert graded.code == 4, f"exit {graded.code}:\n{graded.output[-2000:]}"
    assert "--tracking-server cannot be used with --isolation bwrap" in graded.output and "no network" in graded.output, graded.output[-2000:]
    assert not (tmp_path / "r.json").exists(), "a refused grading should grade nothing"
