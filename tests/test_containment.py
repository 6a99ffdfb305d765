"""A hung or crashing learner function costs that function its points, never the session."""
from __future__ import annotations

import json
import shutil

from conftest import REPO, grade

HUNG = '''
def log_run(experiment_id, params, metrics, tags=None, run_name=None):
    while True:
        pass
'''
CRASHING = '''
def find_best_run(experiment_id, metric, maximize=True):
    import os
    os._exit(3)
'''
KILLS_ITS_WORKER = '''
def log_metric_history(experiment_id, key, values):
    import os, signal
    os.kill(os.getppid(), signal.SIGKILL)
'''
EXITS = '''
def get_or_create_experiment(name, tags=None):
    import sys
    sys.exit(1)
'''


def test_hung_and_crashing_functions_are_contained(tmp_path):
    folder = tmp_path / "submission"
    shutil.copytree(REPO / "solutions", folder)
    with open(folder / "ex01_tracking.py", "a") as module:  # later definitions win
        module.write(HUNG + CRASHING + KILLS_ITS_WORKER + EXITS)
    graded = grade(folder, "-k", "ex01", "--call-timeout", "4", out=tmp_path / "r.json")
    exercises = graded.exercises
    assert exercises["ex01_tracking.log_run"]["status"] == "error"
    assert exercises["ex01_tracking.find_best_run"]["status"] == "error"
    assert exercises["ex01_tracking.log_metric_history"]["status"] == "error"
    assert exercises["ex01_tracking.get_or_create_experiment"]["status"] == "error"
    messages = "\n".join(test["output"] for test in graded.results["tests"])
    assert "did not finish within 4 seconds" in messages
    assert "exited with code 3" in messages
    assert "sys.exit(1)" in messages
    assert "the grading worker died" in messages
    for key in ("log_evaluation", "train_and_track", "train_with_autolog", "tune_hyperparameters"):
        assert exercises[f"ex01_tracking.{key}"]["status"] == "passed", (key, graded.output)
    assert graded.results["score"] == 44 - 6 - 6 - 4 - 5


def test_the_worker_warms_up_without_an_error(tmp_path):
    """A worker whose warm-up fails still grades correctly, only slower (every call pays
    the imports): so nothing but this test would notice."""
    from grader.core.store import template_db
    from grader.sandbox.client import spawn_worker

    worker = spawn_worker(tmp_path, [], {}, template_db(tmp_path))
    banner = json.loads(worker.stdout.readline())
    worker.stdin.close()
    worker.wait(timeout=60)
    log = (tmp_path / "worker.log").read_text()
    assert banner.get("ready") is True and worker.returncode == 0, (banner, worker.returncode, log)
    assert "Traceback" not in log and "left threads running" not in log, log


# log_run writes its run, then is still running when log_metric_history kills the worker.
HALF_DONE_WHEN_THE_WORKER_DIES = '''
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


def test_a_call_the_worker_died_under_runs_again_from_its_store_as_it_was(tmp_path):
    """Calls in flight when a learner's function kills the worker run again; the run they
    had already written is gone by then, so only the killer loses its points."""
    folder = tmp_path / "submission"
    shutil.copytree(REPO / "solutions", folder)
    with open(folder / "ex01_tracking.py", "a") as module:
        module.write(HALF_DONE_WHEN_THE_WORKER_DIES)
    graded = grade(folder, "-k", "log_run or log_metric_history", out=tmp_path / "r.json")
    exercises = graded.exercises
    assert exercises["ex01_tracking.log_metric_history"]["status"] == "error", graded.output
    assert exercises["ex01_tracking.log_run"]["status"] == "passed", graded.output
