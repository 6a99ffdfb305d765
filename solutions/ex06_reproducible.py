"""Module 6: code versions, reproducible runs and the REST API.

A metric is only as good as your ability to say which code produced it and to produce it
again. The lesson says MLflow Tracking records **code versions** beside params and
metrics, that MLflow packages **code into reproducible runs**, and that runs can be
logged from any language through a **REST API**. This module does all three, offline.

**Code versions.** MLflow keeps what it knows of a run's code in *system tags*, whose
names start with ``mlflow.`` and are constants of ``mlflow.utils.mlflow_tags``:

* ``MLFLOW_GIT_COMMIT`` = ``"mlflow.source.git.commit"``: the full 40-character hash of
  the commit (``git rev-parse HEAD``), never a short one: a short hash can become
  ambiguous as a repository grows;
* ``MLFLOW_GIT_BRANCH`` = ``"mlflow.source.git.branch"``: the branch checked out
  (``git rev-parse --abbrev-ref HEAD``);
* ``MLFLOW_SOURCE_NAME``, ``MLFLOW_SOURCE_TYPE`` (``"LOCAL"``, ``"PROJECT"``,
  ``"NOTEBOOK"``...), ``MLFLOW_GIT_REPO_URL``.

MLflow sets some of them by itself when a script in a git repository starts a run; any
code can set them with ``mlflow.set_tags``. The UI shows them on the run's page.

**MLflow Projects.** A project is a folder (usually a git repository) with an
``MLproject`` file (YAML) that says how to run its code, for example:

    name: wine
    entry_points:
      main:                       # an entry point: a name, typed parameters, a command
        parameters:
          alpha: {type: float, default: 0.5}
          data: {type: path}
          label: string           # types: float, int, string, path, uri
        command: "python train.py --alpha {alpha} --data {data} --label {label}"

``mlflow.projects.run(uri, entry_point="main", parameters={...}, experiment_id=...)``
checks the parameters against their types, starts a run (tags ``mlflow.source.type`` =
``PROJECT``, ``mlflow.project.entryPoint``, and ``mlflow.source.git.commit`` when the
folder is a git repository), logs the parameters, then runs the command with
``MLFLOW_RUN_ID`` set, so the code's ``mlflow.start_run()`` continues that run.
``env_manager`` says where the command runs: ``"local"``, the Python environment you are
in; ``"virtualenv"`` or ``"uv"``, a new environment built from the project's
``python_env.yaml``; ``"conda"``, from ``conda.yaml``. Building one needs the network and
time; ``"local"`` needs the packages already installed, as here.
``synchronous=True`` (the default) waits for the run and raises ``ExecutionException``
if the command fails; ``synchronous=False`` returns at once, and you must ``.wait()``.

**The REST API.** The tracking server speaks JSON over HTTP; MLflow's Python client is one
user of it among others (the R and Java clients, ``curl``, any language). Every call is
``POST`` (or ``GET``) to ``{tracking_uri}/api/2.0/mlflow/<endpoint>``:

* ``runs/create`` ``{"experiment_id": "1", "start_time": <ms>, "run_name": "..."}``
  answers ``{"run": {"info": {"run_id": "...", "status": "RUNNING", ...}}}``;
* ``runs/log-batch`` ``{"run_id": "...", "params": [{"key": "alpha", "value": "0.5"}],
  "metrics": [{"key": "rmse", "value": 0.8, "timestamp": <ms>, "step": 0}]}``: param
  values are strings, metric values numbers, timestamps milliseconds since 1970;
* ``runs/update`` ``{"run_id": "...", "status": "FINISHED", "end_time": <ms>}``: a run
  stays ``RUNNING`` until someone says otherwise.

An error answer has a status of 400 or more and a JSON body such as
``{"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "No Experiment with id=42 exists"}``
(404); ``INVALID_PARAMETER_VALUE`` comes with 400.
"""

import json
import subprocess
import time
import urllib.error
import urllib.request

import mlflow
from mlflow.utils.mlflow_tags import MLFLOW_GIT_BRANCH, MLFLOW_GIT_COMMIT


def log_code_version(experiment_id: str, repo_dir: str) -> str:
    """Start one run in ``experiment_id`` that records the code version of the git repository at ``repo_dir``; return its id.

    Steps:

    1. Ask git for the full hash of ``HEAD``:
       ``subprocess.run(["git", "-C", repo_dir, "rev-parse", "HEAD"],
       capture_output=True, text=True, check=True).stdout.strip()``.
    2. And for the branch: the same with ``["rev-parse", "--abbrev-ref", "HEAD"]``.
    3. ``with mlflow.start_run(experiment_id=experiment_id) as run:`` set the two
       system tags, ``mlflow.set_tags({MLFLOW_GIT_COMMIT: commit, MLFLOW_GIT_BRANCH:
       branch})`` (the constants from ``mlflow.utils.mlflow_tags``).
    4. Return ``run.info.run_id``.

    The grader makes git repositories with random branch names and commits, and checks
    that exactly one new FINISHED run holds both tags equal to the repository's; then it
    commits again, calls you again, and expects the new hash.

    Traps:

    * ``git rev-parse --short HEAD`` (7 characters) is not what MLflow records.
    * Read the repository at ``repo_dir``, not the folder your code runs in.
    """
    ### BEGIN SOLUTION
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", repo_dir, *args], capture_output=True, text=True, check=True).stdout.strip()

    commit, branch = git("rev-parse", "HEAD"), git("rev-parse", "--abbrev-ref", "HEAD")
    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.set_tags({MLFLOW_GIT_COMMIT: commit, MLFLOW_GIT_BRANCH: branch})
    return run.info.run_id
    ### END SOLUTION


def run_project(project_uri: str, experiment_id: str, params: dict) -> str:
    """Run the MLflow Project at ``project_uri`` (entry point ``main``, these ``params``) in ``experiment_id``, in this Python environment; return its run id.

    Steps:

    1. ``submitted = mlflow.projects.run(project_uri, entry_point="main",
       parameters=params, experiment_id=experiment_id, env_manager="local",
       synchronous=True)``. It waits for the project's command to finish, and raises
       ``mlflow.exceptions.ExecutionException`` if the command fails: let it.
    2. Return ``submitted.run_id``.

    The grader writes projects (random parameter names and values, a ``train.py``
    whose metric depends on them) in git repositories, and checks the run: FINISHED,
    ``mlflow.source.type`` = ``PROJECT``, entry point ``main``, the params, the
    script's metric and ``mlflow.source.git.commit`` = the repository's ``HEAD``. A
    project whose script fails must make your function raise, and leave no run
    active.

    Traps:

    * Without ``env_manager="local"`` MLflow tries to build a new environment
      (virtualenv or conda), which needs the network.
    * ``synchronous=False`` returns before the run ends: the grader would find it
      still RUNNING (or you must call ``submitted.wait()``).
    * Do not open a run yourself around it: the project makes its own.
    """
    ### BEGIN SOLUTION
    submitted = mlflow.projects.run(
        project_uri,
        entry_point="main",
        parameters=params,
        experiment_id=experiment_id,
        env_manager="local",
        synchronous=True,
    )
    return submitted.run_id
    ### END SOLUTION


def log_run_rest(tracking_uri: str, experiment_id: str, params: dict, metrics: dict) -> str:
    """With MLflow's REST API alone (plain HTTP, no ``mlflow``), create a run in ``experiment_id``, log ``params`` and ``metrics``, end it FINISHED; return its id.

    ``tracking_uri`` is a tracking server's address, such as ``"http://127.0.0.1:5000"``.

    Steps:

    1. Write a small helper that POSTs JSON to
       ``f"{tracking_uri}/api/2.0/mlflow/{endpoint}"`` and returns the answer's JSON,
       with ``urllib.request`` (standard library) or ``requests``. When the answer is
       an error (an ``HTTPError`` with urllib, ``not response.ok`` with requests),
       raise an exception whose text holds the HTTP status and the ``error_code`` of
       the JSON body.
    2. ``runs/create`` with ``{"experiment_id": experiment_id, "start_time":
       now_ms}``; the id is ``answer["run"]["info"]["run_id"]``.
    3. ``runs/log-batch`` with ``{"run_id": run_id, "params": [{"key": k, "value":
       str(v)} ...], "metrics": [{"key": k, "value": v, "timestamp": now_ms, "step":
       0} ...]}``.
    4. ``runs/update`` with ``{"run_id": run_id, "status": "FINISHED", "end_time":
       now_ms}``; return ``run_id``.

    ``now_ms`` is ``int(time.time() * 1000)``. The grader starts a real ``mlflow
    server`` and checks the run in its store (FINISHED, an end time, the params as
    strings, the metrics); with an experiment id that does not exist your function
    must raise, naming 404 and ``RESOURCE_DOES_NOT_EXIST``; and it reads your
    function's code to check it uses no ``mlflow`` name.

    Traps:

    * Param values must be strings in the JSON (``"0.5"``, not ``0.5``): the server
      refuses other types.
    * A run you do not update stays RUNNING forever.
    * urllib raises ``HTTPError`` on an error status: read its body
      (``error.read()``) for the ``error_code``.
    """
    ### BEGIN SOLUTION
    def post(endpoint: str, body: dict) -> dict:
        request = urllib.request.Request(
            f"{tracking_uri.rstrip('/')}/api/2.0/mlflow/{endpoint}",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return json.loads(answer.read() or b"{}")
        except urllib.error.HTTPError as error:
            said = error.read().decode(errors="replace")
            try:
                code = json.loads(said).get("error_code", "")
            except ValueError:
                code = ""
            raise RuntimeError(f"{endpoint} answered HTTP {error.code} {code}: {said}") from None

    now_ms = int(time.time() * 1000)
    run_id = post("runs/create", {"experiment_id": experiment_id, "start_time": now_ms})["run"]["info"]["run_id"]
    post("runs/log-batch", {
        "run_id": run_id,
        "params": [{"key": key, "value": str(value)} for key, value in params.items()],
        "metrics": [{"key": key, "value": value, "timestamp": now_ms, "step": 0} for key, value in metrics.items()],
    })
    post("runs/update", {"run_id": run_id, "status": "FINISHED", "end_time": int(time.time() * 1000)})
    return run_id
    ### END SOLUTION
