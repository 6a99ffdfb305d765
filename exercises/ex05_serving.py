# Your exercise file: replace each `raise NotImplementedError(...)` with your code,
# then check your work with `pytest grader` (README.md says more).
# (Generated from solutions/ex05_serving.py by `python -m grader generate`.)
"""Module 5: serving a model with MLflow's scoring server.

MLflow Models do not stop at saving and loading: the lesson says they also
"create a serving stack for the model". Any model with the ``python_function``
flavor can be put behind a web server with one command, and any program that
speaks HTTP can then ask it for predictions, in any language.

MLflow's **scoring server** is a small FastAPI application run by uvicorn. It
loads one model and answers four routes:

* ``GET /ping`` and ``GET /health``: 200 once the model is loaded (use them to
  wait until the server is up);
* ``GET /version``: the MLflow version serving the model;
* ``POST /invocations``: predictions. The body is JSON (``Content-Type:
  application/json``) or CSV (``text/csv``); the answer is JSON,
  ``{"predictions": [...]}``.

A JSON body carries the rows under exactly one of four keys, its
**orientation**:

* ``dataframe_split``: ``{"columns": [...], "data": [[...], ...]}`` (and an
  optional ``"index"``), what ``DataFrame.to_dict(orient="split")`` gives. The
  column names are listed once, in order, and every row is a list in that
  order: the DataFrame comes back exactly as it was, column order included.
* ``dataframe_records``: ``[{"column": value, ...}, ...]``, one JSON object
  per row. The names repeat in every row, and a JSON object has no order: the
  server rebuilds the columns from whatever keys it finds, so their order (and
  a column missing from one row) is not guaranteed.
* ``instances`` and ``inputs``: lists or tensors, for models that take arrays
  (TensorFlow-style); for a DataFrame model they lose the names.

When the rows do not match the model's **signature** (a missing column, a
wrong type), the server does not guess: it answers **400** with a JSON body
``{"error_code": "INVALID_PARAMETER_VALUE", "message": "..."}`` that says
what is wrong. A client must check the status code and report that message.

Start a server from a terminal with MLflow's CLI::

    mlflow models serve --model-uri models:/wine-classifier@champion \\
        --host 127.0.0.1 --port 5001 --env-manager local

* ``--model-uri`` (``-m``) takes any model URI: ``models:/<name>@<alias>``
  serves whichever version the alias points at when the server starts.
* ``--host 127.0.0.1`` listens on this machine only; ``0.0.0.0`` would accept
  connections from the whole network, with no authentication.
* ``--env-manager``: by default (``virtualenv``) MLflow builds a new Python
  environment from the model's ``requirements.txt`` before serving (minutes,
  and it needs the network). ``local`` serves it with the Python environment
  you run the command in, which already has everything: use it here.

To check a payload without a server, ``mlflow.models.predict(model_uri,
input_path=..., content_type="json", env_manager="local")`` reads a request
body exactly as the scoring server does (it replaces the deprecated
``mlflow.models.validate_serving_input``).
"""

import sys

import numpy as np
import pandas as pd
import requests


def serving_payload(X: pd.DataFrame) -> dict:
    """The JSON body ``POST /invocations`` accepts for the rows of ``X``, in the ``dataframe_split`` orientation.

    Steps:

    1. ``X.to_dict(orient="split", index=False)`` gives
       ``{"columns": [...], "data": [[...], ...]}``: the column names in
       ``X``'s order and one list per row, with plain Python numbers.
    2. Return it under the key ``"dataframe_split"``:
       ``{"dataframe_split": {"columns": [...], "data": [...]}}``.

    The grader turns your dict into JSON and back (``json.dumps`` /
    ``json.loads``), checks the orientation and the column order, then has
    MLflow read it as the scoring server would (``mlflow.models.predict``) for
    a model with a signature, and compares the predictions with the model's
    own on ``X``.

    Traps:

    * ``X.values`` is a NumPy array: ``json.dumps`` refuses it. Build the
      body from ``to_dict`` (or ``.tolist()``), which gives Python numbers.
    * ``orient="records"`` is a different orientation
      (``dataframe_records``); the exercise asks for the split one, which
      keeps the column order.
    * Keep the columns in ``X``'s order; do not sort them.
    """
    raise NotImplementedError("serving_payload: replace this line with your code")


def score_with_server(url: str, X: pd.DataFrame) -> np.ndarray:
    """POST the rows of ``X`` to ``{url}/invocations`` and return the server's predictions as an array.

    ``url`` is where a scoring server listens, such as
    ``"http://127.0.0.1:5001"``.

    Steps:

    1. Build the body in the ``dataframe_split`` orientation, as in
       ``serving_payload`` (write it here again: each function is checked on
       its own).
    2. ``response = requests.post(f"{url}/invocations", json=body, timeout=60)``:
       ``json=`` serializes the body and sets ``Content-Type:
       application/json``.
    3. If the answer is not a success (``not response.ok``: a status of 400
       or more), raise an exception whose text holds the status code and the
       server's message, for example
       ``RuntimeError(f"{response.status_code} {error_code}: {message}")``,
       reading ``error_code`` and ``message`` from ``response.json()`` (fall
       back on ``response.text`` when the body is not JSON).
    4. Otherwise return ``np.asarray(response.json()["predictions"])``.

    The grader starts MLflow's scoring server for a model of its own and
    calls your function with its URL: once with good rows (your predictions
    must equal the model's) and once with rows that lack a column, which the
    server refuses with a 400 (your exception must name the code and the
    server's message).

    Traps:

    * ``response.raise_for_status()`` raises, but its text only says "400
      Client Error: Bad Request": the server's message, the part that says
      which column is missing, is lost. Put the message in your exception.
    * Without a ``timeout=``, a server that never answers hangs the caller
      forever.
    """
    raise NotImplementedError("score_with_server: replace this line with your code")


def serve_command(model_uri: str, port: int) -> list[str]:
    """The command, as a list of arguments, that serves ``model_uri`` with MLflow's CLI on 127.0.0.1 at ``port``.

    It returns the command; it does not run it. A list of arguments (not one
    string for a shell) is what ``subprocess.Popen(command)`` runs as it is,
    with no shell to split it or to misread a quote in a model name.

    Steps:

    1. Start with the Python you are running, ``sys.executable``, and
       ``"-m", "mlflow"``: MLflow's CLI from this very environment (a bare
       ``"mlflow"`` is whichever one comes first on ``PATH``).
    2. Then ``"models", "serve"`` and the options: ``"--model-uri",
       model_uri``, ``"--host", "127.0.0.1"``, ``"--port", str(port)`` and
       ``"--env-manager", "local"``.

    The grader runs exactly your list (no shell) for
    ``models:/<name>@<alias>`` of a model it registered, waits until
    ``/ping`` answers, posts rows to ``/invocations`` and compares the
    predictions with those of the version the alias points at; it checks the
    server listens on 127.0.0.1 only. Then it stops the server and every
    process it started.

    Traps:

    * Every item must be a string: ``str(port)``.
    * Without ``--env-manager local`` MLflow tries to build a virtualenv for
      the model first: slow, and it needs the network.
    * ``--host 0.0.0.0`` would expose the model to the whole network.
    """
    raise NotImplementedError("serve_command: replace this line with your code")
