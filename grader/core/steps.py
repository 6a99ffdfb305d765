"""Sandbox steps that checks of several modules use: grader code that runs in the learner's
sandbox, not in the scoring process (grader/sandbox/protocol.py's ``sandbox_step``).

A step that only one check module uses is declared in that module, next to its checks.
Steps travel to the sandbox by value and run where the grader package is not: they use
MLflow, scikit-learn, NumPy and each other, nothing else of the grader.
"""
from __future__ import annotations

import json
import os
import time

import mlflow
import mlflow.pyfunc
import mlflow.sklearn

from grader.sandbox.protocol import sandbox_step

# Seconds a server may take to answer: MLflow's CLI took 5 to 14 s here (it imports MLflow
# twice: the CLI, then uvicorn's app); a server forked from a warm call, under a second.
# The grader's time: given on top of the learner's call timeout where a learner's call
# waits for it (a short --call-timeout, meant for learner code that hangs, must not fail
# a server that starts as it should).
START_LIMIT = 60.0


@sandbox_step
def pyfunc_predict(model_uri, X):
    """Load a model (learner-made: loading runs its code) and predict ``X`` with it."""
    model = mlflow.pyfunc.load_model(model_uri)
    try:
        return model.predict(X)
    except Exception as error:
        problem = predict_order_problem(model)
        if problem:  # the error itself (scikit-learn's "Expected 2D array") names a symptom only
            error.add_note(problem)
        raise


def predict_order_problem(model) -> str | None:
    """Why a custom PythonModel's predict got MLflow's context as its data: MLflow passes the
    context first, to every predict with a parameter called context (or with two)."""
    import inspect

    try:
        python_model = model.unwrap_python_model()
    except Exception:  # noqa: BLE001 - a flavor's model, not a PythonModel
        return None
    names = [n for n in inspect.signature(python_model.predict).parameters if n != "params"]
    context_first = "context" in names or len(names) == 2  # MLflow's own rule (mlflow.models.signature)
    if not context_first or names[0] in ("context", "ctx") or not {"context", "ctx"} & set(names[1:]):
        return None
    return (f"The cause: {type(python_model).__name__}.predict(self, {', '.join(names)}) takes its parameters in "
            "another order than MLflow gives them. MLflow calls predict(context, model_input, params=None), the "
            f"context first, so `{names[0]}` got the context instead of the data: define "
            "`def predict(self, context, model_input, params=None)`.")


@sandbox_step
def predict_with(model, X):
    """Applied to what a learner function returned: its predictions for ``X``."""
    return model.predict(X)


@sandbox_step
def logged_model(experiment_id, model, X_example, *, name="model", run_name=None, metrics=None,
                 register_as=None, alias=None):
    """Set-up: a run holding a logged scikit-learn model, maybe registered and aliased;
    {"run_id", "model_uri", "model_id"[, "version"]}."""
    from mlflow.models import infer_signature

    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name) as run:
        if metrics:
            mlflow.log_metrics(metrics)
        info = mlflow.sklearn.log_model(
            model,
            name=name,
            signature=infer_signature(X_example, model.predict(X_example)),
            serialization_format="cloudpickle",
        )
    made = {"run_id": run.info.run_id, "model_uri": info.model_uri, "model_id": info.model_id}
    if register_as:
        version = mlflow.register_model(f"runs:/{run.info.run_id}/{name}", register_as)
        made["version"] = int(version.version)
        if alias:
            mlflow.MlflowClient().set_registered_model_alias(register_as, alias, version.version)
    return made


@sandbox_step
def logged_models(experiment_id, X_example, specs):
    """Several of ``logged_model`` in one call (one fork, one store opening), in order."""
    return [logged_model(experiment_id, spec.pop("model"), X_example, **spec) for spec in specs]


# ------------------------------------------------------------------ servers in the sandbox
def http(port: int, path: str, body: dict | None = None, timeout: float = 30.0) -> tuple[int, str]:
    """(status, text) of a GET, or of a POST of ``body`` as JSON, to this sandbox's loopback."""
    import urllib.error
    import urllib.request

    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data,
                                     headers={"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return answer.status, answer.read().decode(errors="replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")


def wait_until_answering(port: int, path: str, limit: float, running=lambda: True) -> str | None:
    """None once ``path`` answers 200; else why not, after at most ``limit`` seconds."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if not running():
            return f"it ended before answering {path}"
        try:
            if http(port, path, timeout=2)[0] == 200:
                return None
        except OSError:
            pass
        time.sleep(0.1)
    return f"it did not answer http://127.0.0.1:{port}{path} within {limit:g} seconds"


def forked_server(make_app, ready_path: str, limit: float = START_LIMIT) -> int:
    """Serve the ASGI app ``make_app()`` builds with uvicorn, as MLflow's CLI does, in a
    process forked from this (warm) call rather than a new Python: it answers in about a
    second instead of several. Its port, once ``ready_path`` answers. Run from a kept step
    (``learner.start_service``): the server outlives the step until the service stops."""
    import socket

    ready_read, ready_write = os.pipe()
    if os.fork() == 0:  # the server: builds the app, listens, says its port, serves
        try:
            os.close(ready_read)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            import uvicorn

            app = make_app()
            listener = socket.socket()
            listener.bind(("127.0.0.1", 0))
            listener.listen(64)
            os.write(ready_write, str(listener.getsockname()[1]).encode())
            os.close(ready_write)
            uvicorn.Server(uvicorn.Config(app, log_level="error")).run(sockets=[listener])
        finally:
            os._exit(0)
    os.close(ready_write)
    port = int(os.read(ready_read, 16) or 0)
    if not port:
        raise RuntimeError("the grader's server could not be built")
    problem = wait_until_answering(port, ready_path, limit)
    if problem:
        raise RuntimeError(f"the grader's server: {problem}")
    return port
