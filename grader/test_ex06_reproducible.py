"""Module 6 — code versions, reproducible runs and the REST API. Each class is one function
of exercises/ex06_reproducible.py; each test is one check, worth the points catalogue.toml
gives it.

Everything is real and offline: git repositories and MLflow Projects that the grader makes
in the learner's sandbox with the ``git`` there (random branch names, commits, parameter
names and values), MLflow's own project runner, and MLflow's own tracking server (its
FastAPI app, served by uvicorn) started for ``log_run_rest`` as a service in the sandbox
and stopped with its processes once the learner's calls are done.
A class's ``scenario`` runs on a background thread, ahead of its tests and beside
other classes' (AUTHORING.md); its tests read what it returned.
"""
from __future__ import annotations

import os
import shutil
import subprocess

import mlflow
from mlflow.entities import ViewType

from grader.core.outcomes import LearnerError
from grader.core.read import assert_finished, returned_run, runs_in, show, stored_params
from grader.core.source import mlflow_uses
from grader.core.text import quoted
from grader.core.steps import forked_server
from grader.sandbox.protocol import sandbox_step
from grader.core.session import Scenario

COMMIT = "mlflow.source.git.commit"
BRANCH = "mlflow.source.git.branch"
# git as the grader runs it: no configuration of the machine's or a user's, a fixed author.
GIT = ["git", "-c", "user.name=MLflow kit", "-c", "user.email=grader@mlflow-kit.invalid", "-c", "commit.gpgsign=false"]
GIT_ENV = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_TERMINAL_PROMPT": "0"}


def needs_git() -> None:
    """Code versions and projects are graded against git repositories: without git on this
    machine nothing of them can be checked, and the learner's code is not at fault."""
    if shutil.which("git") is None:
        raise LearnerError("git is not installed on this machine (no `git` on PATH): Module 6's code versions and "
                           "projects are checked against git repositories the grader makes. Install git "
                           "(`sudo apt install git` on Debian or Ubuntu; git-scm.com for other systems), then rerun.")


# ------------------------------------------------------------------ sandbox steps
@sandbox_step
def committed(folder, branch, files, message):
    """Set-up: ``files`` ({name: text}) written into ``folder`` and committed there, on
    ``branch`` of a new repository if it is none yet; the full hash of the new HEAD."""
    env = {**os.environ, **GIT_ENV}

    def git(*args):
        return subprocess.run([*GIT, "-C", folder, *args], capture_output=True, text=True, check=True, env=env).stdout.strip()

    os.makedirs(folder, exist_ok=True)
    if not os.path.isdir(os.path.join(folder, ".git")):
        git("init", "-q", "-b", branch)
    for name, text in files.items():
        with open(os.path.join(folder, name), "w") as handle:
            handle.write(text)
    git("add", "-A")
    git("commit", "-q", "-m", message)
    return git("rev-parse", "HEAD")


@sandbox_step
def with_status_now(run_id):
    """What run_project returned, with its run's status as the call returned: a project it
    left running ends with the call, so a status read later would depend on timing."""
    if not isinstance(run_id, str):
        return run_id  # the check says what it should have been
    try:
        status = mlflow.tracking.MlflowClient().get_run(run_id).info.status
    except Exception:  # noqa: BLE001 - not a run of this store: the check says so
        status = None
    return {"run_id": run_id, "status": status}


def run_id_of(value):
    """What run_project returned (with_status_now added the run's status to a string)."""
    return value["run_id"] if isinstance(value, dict) else value


@sandbox_step
def tracking_server(artifact_root):
    """A service: MLflow's tracking server (the FastAPI app `mlflow server` runs) over this
    call's store, without its job runner. Its port."""
    uri = os.environ["MLFLOW_TRACKING_URI"]
    os.environ.update({"_MLFLOW_SERVER_FILE_STORE": uri, "_MLFLOW_SERVER_REGISTRY_STORE": uri,
                       "_MLFLOW_SERVER_ARTIFACT_ROOT": artifact_root, "_MLFLOW_SERVER_SERVE_ARTIFACTS": "false",
                       "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"})

    def app():
        from mlflow.server.fastapi_app import app
        return app

    return {"port": forked_server(app, "/health")}


# ------------------------------------------------------------------ projects the grader writes
def project_files(inputs, metric: str, fails: bool) -> tuple[dict[str, str], dict, float]:
    """An MLflow Project with three typed parameters of random names: its files, the
    parameters to run it with, and the metric its script logs for them."""
    number, count, label = inputs.keys("p", 3)
    params = {number: round(inputs.rng.uniform(0.1, 5.0), 3), count: inputs.rng.randint(2, 9), label: inputs.word()}
    expected = params[number] * params[count] + len(params[label])
    mlproject = (
        f"name: kit-{inputs.word()}\n"
        "entry_points:\n"
        "  main:\n"
        "    parameters:\n"
        f"      {number}: {{type: float, default: 1.0}}\n"
        f"      {count}: {{type: int, default: 1}}\n"
        f"      {label}: {{type: string, default: x}}\n"
        f'    command: "python train.py {{{number}}} {{{count}}} {{{label}}}"\n'
    )
    script = (
        "import sys\n\n"
        + ("sys.exit('the training data is missing')  # this project fails (before it imports MLflow: cheaper)\n"
           if fails else "")
        + "import mlflow\n\n"
        "number, count, label = float(sys.argv[1]), int(sys.argv[2]), sys.argv[3]\n"
        "with mlflow.start_run():  # the project's run: MLFLOW_RUN_ID says which\n"
        f"    mlflow.log_metric({metric!r}, number * count + len(label))\n"
    )
    return {"MLproject": mlproject, "train.py": script}, params, expected


def assert_commit(run, expected: str, what: str) -> None:
    held = run.data.tags.get(COMMIT)
    if held and held != expected and expected.startswith(held):
        raise AssertionError(f"{what} has tag {COMMIT}={held!r}, a short hash: MLflow records all 40 characters "
                             f"of the commit ({expected!r}, `git rev-parse HEAD`)")
    assert held == expected, f"{what} has tag {COMMIT}={held!r}, expected the repository's HEAD {expected!r}"


# ------------------------------------------------------------------ the checks
class Test_log_code_version:
    @staticmethod
    def scenario(learner, inputs):
        needs_git()
        store = learner.store()
        experiment_id = store.new_experiment(inputs.name("code"))
        repo, branch = str(store.root / inputs.name("repo")), f"{inputs.word()}-{inputs.word()}"
        first = learner.prepare(store, committed, repo, branch, {"train.py": f"ALPHA = {inputs.rng.random()}\n"},
                                "first version")
        call = learner.attempt(store, experiment_id, repo)
        runs_after_first = len(runs_in(store, experiment_id))
        second = learner.prepare(store, committed, repo, branch, {"train.py": f"ALPHA = {inputs.rng.random()}\n"},
                                 "second version")
        again = learner.attempt(store, experiment_id, repo)
        return Scenario(store=store, experiment_id=experiment_id, branch=branch, first=first, second=second,
                        call=call, again=again, runs_after_first=runs_after_first)

    def test_records_head(self, scenario):
        result = scenario.call.result()
        assert scenario.runs_after_first == 1, (
            f"experiment {scenario.experiment_id} holds {scenario.runs_after_first} runs after one call; start one run")
        run = returned_run(scenario.store, result.value, scenario.experiment_id)
        assert_finished(run, result.active_run)
        assert_commit(run, scenario.first, "the run")
        branch = run.data.tags.get(BRANCH)
        assert branch == scenario.branch, (
            f"the run has tag {BRANCH}={branch!r}, expected the repository's branch {scenario.branch!r} "
            "(`git rev-parse --abbrev-ref HEAD`)")

    def test_new_commit_recorded(self, scenario):
        result = scenario.again.result()
        run = returned_run(scenario.store, result.value, scenario.experiment_id)
        assert_finished(run, result.active_run)
        assert_commit(run, scenario.second, "after a new commit, the second call's run")
        total = len(runs_in(scenario.store, scenario.experiment_id))
        assert total == 2, f"experiment {scenario.experiment_id} holds {total} runs after two calls; expected 2"


class Test_run_project:
    starts_first = True  # a project run starts a new Python that imports MLflow: ahead of the others

    @staticmethod
    def scenario(learner, inputs):
        needs_git()
        store = learner.store()
        metric = inputs.keys("m", 1)[0]
        cases = {}
        # A project run starts a second Python that imports MLflow (two at once here): it
        # may take twice what one call may.
        for case, fails in (("good", False), ("failing", True)):
            experiment_id = store.new_experiment(inputs.name(f"project-{case}"))
            files, params, expected = project_files(inputs, metric, fails)
            folder = str(store.root / inputs.name(case))
            head = learner.prepare(store, committed, folder, inputs.word(), files, "the project")
            call = learner.start(store, folder, experiment_id, params, then=(with_status_now,),
                                 more_seconds=learner.call_timeout)
            cases[case] = Scenario(experiment_id=experiment_id, folder=folder, params=params, expected=expected,
                                   head=head, call=call)
        return Scenario(store=store, metric=metric, **cases)

    def test_project_run_recorded(self, scenario):
        case, store = scenario.good, scenario.store
        result = case.call.result()
        run = returned_run(store, run_id_of(result.value), case.experiment_id)
        if isinstance(result.value, dict) and result.value["status"] == "RUNNING":
            raise AssertionError(f"the project's run {run.info.run_id} was still RUNNING when run_project returned: "
                                 "it returned before the project finished (pass synchronous=True, or call .wait() on "
                                 "what mlflow.projects.run returned), and the grader then stopped the project's script")
        assert_finished(run, result.active_run)
        tags = run.data.tags
        assert tags.get("mlflow.source.type") == "PROJECT", (
            f"the run has tag mlflow.source.type={tags.get('mlflow.source.type')!r}, expected 'PROJECT': run it "
            "with mlflow.projects.run")
        assert tags.get("mlflow.project.entryPoint") == "main", (
            f"the run's entry point is {tags.get('mlflow.project.entryPoint')!r}, expected 'main'")
        assert stored_params(run.data.params) == stored_params(case.params), (
            f"the run's params are {show(run.data.params)}, expected {show(stored_params(case.params))}")
        held = run.data.metrics.get(scenario.metric)
        assert held is not None and abs(held - case.expected) < 1e-9, (
            f"the run's metric {scenario.metric!r} is {held!r}, expected {case.expected!r}, what the project's "
            "script logs for these params")
        assert_commit(run, case.head, "the project's run")

    def test_failure_raises(self, scenario):
        case, store = scenario.failing, scenario.store
        if case.call.succeeded:
            raise AssertionError(f"run_project returned {run_id_of(case.call.value())!r} for a project whose script "
                                 "fails; let "
                                 "mlflow.projects.run(..., synchronous=True) raise")
        case.call.raised_text()  # an ending other than an exception of its own: say what happened
        active = [r.info.run_id for r in runs_in(store, case.experiment_id, ViewType.ALL) if r.info.status == "RUNNING"]
        assert not active, f"the failing project left run(s) {active} RUNNING; nothing may stay active"


class Test_log_run_rest:
    @staticmethod
    def scenario(learner, inputs):
        rest_only = mlflow_uses(learner.source() or "", learner.function)
        store = learner.sqlite_store()  # served by the grader's own server, whatever --tracking-server says
        experiment_id = store.new_experiment(inputs.name("rest"))
        server = learner.start_service(store, tracking_server, str(store.root / "server-artifacts"))
        url = f"http://127.0.0.1:{server.value['port']}"
        params, metrics = inputs.params(3), inputs.metrics(2)
        logged = learner.start(store, url, experiment_id, params, metrics)
        unknown = str(inputs.rng.randrange(10**6, 10**7))
        refused = learner.start(store, url, unknown, params, metrics)
        logged.wait(), refused.wait()
        server.stop()  # both calls are done with it
        return Scenario(rest_only=rest_only, store=store, experiment_id=experiment_id, params=params, metrics=metrics,
                        logged=logged, refused=refused, unknown=unknown)

    def test_rest_only(self, scenario):
        scenario.logged.result()  # a function that is missing, or fails, earns nothing for what it does not use
        assert not scenario.rest_only, (
            "log_run_rest must speak HTTP itself, with no mlflow: it uses "
            + "; ".join(scenario.rest_only) + " (use urllib.request or requests)")

    def test_run_logged(self, scenario):
        store, result = scenario.store, scenario.logged.result()
        runs = runs_in(store, scenario.experiment_id)
        assert len(runs) == 1, f"experiment {scenario.experiment_id} holds {len(runs)} runs; create exactly one"
        run = returned_run(store, result.value, scenario.experiment_id)
        if run.info.status == "RUNNING":
            raise AssertionError(f"run {run.info.run_id} is still RUNNING: end it with runs/update, "
                                 '{"run_id": ..., "status": "FINISHED", "end_time": <ms>}')
        assert run.info.status == "FINISHED" and run.info.end_time, (
            f"run {run.info.run_id} has status {run.info.status} and end time {run.info.end_time}; expected FINISHED "
            "with an end time")
        expected = stored_params(scenario.params)
        if run.data.params != expected and any(v == "" for v in run.data.params.values()):
            raise AssertionError(f"the run's params are {show(run.data.params)}, expected {show(expected)}: a param's "
                                 'value must be a JSON string ("value": str(value)); the server stores others as ""')
        assert run.data.params == expected, f"the run's params are {show(run.data.params)}, expected {show(expected)}"
        assert run.data.metrics == scenario.metrics, (
            f"the run's metrics are {show(run.data.metrics)}, expected {show(scenario.metrics)}")

    def test_errors_name_status_and_code(self, scenario):
        asked = f"experiment id {scenario.unknown}, which does not exist (the server answers 404 RESOURCE_DOES_NOT_EXIST)"
        if scenario.refused.succeeded:
            raise AssertionError(f"log_run_rest returned {scenario.refused.value()!r:.200} for {asked}; it should "
                                 "raise an exception naming the HTTP status and the error_code of the answer")
        raised = scenario.refused.raised_text()
        assert "404" in raised and "RESOURCE_DOES_NOT_EXIST" in raised, (
            f"for {asked}, log_run_rest raised:\n{quoted(raised)}\nThe exception should name the status (404) and "
            "the error_code (RESOURCE_DOES_NOT_EXIST) of the server's JSON answer")
