"""A hung or crashing learner function costs that function its points, never the session."""
from __future__ import annotations

import shutil

from conftest import REPO, grade
from grader.core import catalogue
from grader.sandbox.protocol import LineReader

HUNG = '''
def _wait_for_the_data():
    import time
    while True:
        time.sleep(0.5)  # for something that never comes


def train_with_autolog(experiment_id, data, params):
    _wait_for_the_data()
'''
CRASHING = '''
def find_best_run(experiment_id, metric, maximize=True):
    import os
    os._exit(3)
'''
# log_metric_history kills the worker while log_run, having written its run, still runs:
# log_run runs again, and must find its store as it was before (not with two runs).
KILLS_ITS_WORKER = '''
import os as _os, time as _time
_log_run = log_run
_MARK = _os.path.join(_os.path.dirname(_os.getcwd()), "log-run-wrote-its-run")

def log_run(experiment_id, params, metrics, tags=None, run_name=None):
    run_id = _log_run(experiment_id, params, metrics, tags, run_name)
    first_time = not _os.path.exists(_MARK)
    open(_MARK, "w").close()
    if first_time:
        _time.sleep(30)  # the worker dies meanwhile
    return run_id

def log_metric_history(experiment_id, key, values):
    import signal
    for _ in range(600):
        if _os.path.exists(_MARK):
            break
        _time.sleep(0.05)
    _os.kill(_os.getppid(), signal.SIGKILL)
'''

EXITS = '''
def get_or_create_experiment(name, tags=None):
    import sys
    sys.exit(1)
'''


def test_hung_and_crashing_functions_are_contained(tmp_path):
    """Each bad function costs only its own points; a call in flight when another one kills
    the worker runs again, from its store as it was."""
    folder = tmp_path / "submission"
    shutil.copytree(REPO / "solutions", folder)
    with open(folder / "ex01_tracking.py", "a") as module:  # later definitions win
        module.write(HUNG + CRASHING + KILLS_ITS_WORKER + EXITS)
    graded = grade(folder, "-k", "ex01", "--call-timeout", "4", out=tmp_path / "r.json")
    exercises = graded.exercises
    for key in ("train_with_autolog", "find_best_run", "log_metric_history", "get_or_create_experiment"):
        assert exercises[f"ex01_tracking.{key}"]["status"] == "error", (key, graded.output)
    messages = "\n".join(test["output"] for test in graded.results["tests"])
    assert "did not finish within 4 seconds" in messages
    stuck = (folder / "ex01_tracking.py").read_text().splitlines().index("        time.sleep(0.5)  # for something that never comes") + 1
    assert (f"It was stopped at line {stuck} of ex01_tracking.py, in `_wait_for_the_data`: "
            "time.sleep(0.5)  # for something that never comes") in messages, messages
    assert "exited with code 3" in messages
    assert "sys.exit(1)" in messages
    assert "the grading worker died" in messages
    for key in ("log_run", "log_evaluation", "train_and_track", "tune_hyperparameters"):
        assert exercises[f"ex01_tracking.{key}"]["status"] == "passed", (key, graded.output)
    lost = sum(catalogue.load().exercise("ex01_tracking", key).points
               for key in ("train_with_autolog", "find_best_run", "log_metric_history", "get_or_create_experiment"))
    assert graded.results["score"] == catalogue.load().module("ex01_tracking").points - lost


def test_the_worker_warms_up_without_an_error(tmp_path):
    """A worker whose warm-up fails still grades correctly, only slower (every call pays
    the imports): so nothing but this test would notice."""
    from grader.core.store import template_db
    from grader.sandbox.client import spawn_worker

    worker, _ = spawn_worker(tmp_path, [], {}, template_db(tmp_path))
    banner = LineReader(worker.stdout.fileno()).next(120)
    worker.stdin.close()
    worker.wait(timeout=60)
    log = (tmp_path / "worker.log").read_text()
    assert banner.get("ready") is True and worker.returncode == 0, (banner, worker.returncode, log)
    assert "Traceback" not in log and "left threads running" not in log, log


def test_a_store_put_back_is_as_it_was_and_a_removed_one_is_left_alone(tmp_path):
    """What a retried call starts from: the database as it was, files added since gone."""
    import sqlite3

    from grader.core.store import StoreFactory

    store = StoreFactory(tmp_path).new("kept")
    with store.kept() as restore:
        with sqlite3.connect(store.db) as db:
            db.execute("INSERT INTO experiments (name, lifecycle_stage) VALUES ('half-done', 'active')")
        (store.root / "mlruns" / "1").mkdir(parents=True)
        (store.root / "mlruns" / "1" / "meta.txt").write_text("written by the first run")
        restore()
        with sqlite3.connect(store.db) as db:
            assert db.execute("SELECT count(*) FROM experiments WHERE name = 'half-done'").fetchone() == (0,)
        assert sorted(p.name for p in store.root.rglob("*")) == ["mlflow.db"]
    store.db.unlink()  # a learner's call may remove it: the next call gets no way back, and no crash
    with store.kept() as restore:
        assert restore is None
    assert not list(tmp_path.glob(".*.db")), "a snapshot outlived its call"


FORGES_ITS_STACKS = '''
def log_metric_history(experiment_id, key, values):
    import faulthandler, os
    faulthandler.cancel_dump_traceback_later()  # its own account of where it hangs, instead
    call_folder = os.path.dirname(os.environ["TMPDIR"])
    with open(os.path.join(call_folder, "stack.txt"), "w") as stacks:
        stacks.write("\\n" * 30000 + '  File "ex01_tracking.py", line ' + "9" * 5000 + " in log_metric_history\\n")
    while True:
        pass
'''
ODD_TRACKING_URI = '''
_log_run_as_it_should_be = log_run

def log_run(experiment_id, params, metrics, tags=None, run_name=None):
    mlflow.set_tracking_uri("http://[::1")  # a typo; the grader ignores the call anyway
    return _log_run_as_it_should_be(experiment_id, params, metrics, tags, run_name)
'''


def test_what_a_call_leaves_behind_cannot_break_the_grader(tmp_path):
    """A forged stacks file (a 5000-digit line, 30000 blank lines) and a URI that Python's
    own parser refuses: the hung call is stopped at its timeout like any other, the
    worker serves the next calls, and the URI costs no points (a Note says it was ignored)."""
    folder = tmp_path / "submission"
    shutil.copytree(REPO / "solutions", folder)
    with open(folder / "ex01_tracking.py", "a") as module:  # later definitions win
        module.write(FORGES_ITS_STACKS + ODD_TRACKING_URI)
    graded = grade(folder, "-k", "log_metric_history or log_run or log_evaluation", "--call-timeout", "4",
                   out=tmp_path / "r.json")
    statuses = graded.statuses()
    assert statuses["ex01_tracking.log_metric_history"] == "error", graded.output
    assert statuses["ex01_tracking.log_run"] == statuses["ex01_tracking.log_evaluation"] == "passed", graded.output
    messages = "\n".join(test["output"] for test in graded.results["tests"])
    assert "did not finish within 4 seconds" in messages and "It was stopped at line" not in messages, messages
    assert "the grading worker died" not in messages, messages
    assert "mlflow.set_tracking_uri('http://[::1'), and the grader ignored it" in graded.output, graded.output[-3000:]
