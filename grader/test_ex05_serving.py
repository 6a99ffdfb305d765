"""Module 5 — serving a model. Each class is one function of exercises/ex05_serving.py;
each test is one check, worth the points catalogue.toml gives it.

Every server here is MLflow's own scoring server, run in the learner's sandbox and
reached on its loopback (ARCHITECTURE.md, "Servers in the sandbox"): the grader's, for
``score_with_server``, is a service the checks stop when done; the learner's command, for
``serve_command``, runs inside the learner's call and dies with it.
A class's ``scenario`` runs on a background thread, ahead of its tests and beside
other classes' (AUTHORING.md); its tests read what it returned.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

import mlflow
import mlflow.models
import mlflow.pyfunc
from sklearn.linear_model import LogisticRegression

from grader.core import steps
from grader.core.steps import START_LIMIT, forked_server, http, logged_models, wait_until_answering
from grader.core.read import assert_same_predictions
from grader.core.text import quoted
from grader.sandbox.protocol import sandbox_step
from grader.core.session import Scenario

LOOPBACK = ("127.0.0.1", "::1")
SERVE_TRIES = 3  # ports serve_command is asked for, one after the other, should one be taken
PORTS = range(20000, 30000)  # for the learner's server: below the ephemeral ports other servers get


# ------------------------------------------------------------------ sandbox steps
def _listeners(port: int) -> list[tuple[str, str]]:
    """(address, socket inode) of each socket listening on ``port``, in this network namespace."""
    import socket

    found = []
    for table, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
        try:
            with open(table) as handle:
                rows = [line.split() for line in handle.readlines()[1:]]
        except OSError:
            continue
        for row in rows:
            address, hex_port = row[1].split(":")
            if row[3] == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                raw = bytes.fromhex(address)  # the kernel's words, each little-endian
                raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
                found.append((socket.inet_ntop(family, raw), row[9]))
    return found


def _listening(port: int) -> list[str]:
    """The addresses a socket listens on at ``port``, in this network namespace."""
    return sorted({address for address, _ in _listeners(port)})


def _held_here(port: int) -> bool:
    """Whether a process of this call's session (the command it ran, or what that started)
    holds the socket listening on ``port``: not another program on the same loopback
    (another grading's server, where gradings share one, picked the same port)."""
    sockets = {f"socket:[{inode}]" for _, inode in _listeners(port)}
    session = os.getsid(0)
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as handle:
                if int(handle.read().rsplit(")", 1)[1].split()[3]) != session:
                    continue
            if any(os.readlink(f"/proc/{pid}/fd/{fd}") in sockets for fd in os.listdir(f"/proc/{pid}/fd")):
                return True
        except (OSError, ValueError, IndexError):
            continue
    return False


def _end(process: subprocess.Popen) -> None:
    """Kill the command; what it started (uvicorn) is in the call's process group, which
    the worker kills as soon as this call returns."""
    process.kill()
    process.wait()


@sandbox_step
def read_payload(payload, model_uri):
    """Applied to what ``serving_payload`` returned: through JSON and back, then read by
    MLflow as its scoring server reads a request body (``mlflow.models.predict``, which
    replaced the deprecated ``validate_serving_input``), for the grader's model."""
    try:
        text = json.dumps(payload)
    except (TypeError, ValueError) as error:
        return {"problem": f"json.dumps cannot turn what it returned into JSON ({error})"}
    loaded = json.loads(text)
    split = loaded.get("dataframe_split") if isinstance(loaded, dict) else None
    shape = {
        "keys": sorted(loaded) if isinstance(loaded, dict) else None,
        "type": type(loaded).__name__,
        "columns": split.get("columns") if isinstance(split, dict) else None,
        "rows": len(split["data"]) if isinstance(split, dict) and isinstance(split.get("data"), list) else None,
    }
    with tempfile.TemporaryDirectory() as folder:
        request, answer = os.path.join(folder, "request.json"), os.path.join(folder, "predictions.json")
        with open(request, "w") as handle:
            handle.write(text)
        try:
            mlflow.models.predict(model_uri, input_path=request, output_path=answer, content_type="json",
                                  env_manager="local")
            with open(answer) as handle:
                shape["predictions"] = json.load(handle)["predictions"]
        except Exception as error:  # noqa: BLE001 - what MLflow says is the verdict
            said = str(error).strip().splitlines() or [type(error).__name__]
            shape["unreadable"] = f"{type(error).__name__}: {said[-1][:400]}"
    return shape


@sandbox_step
def model_server(model_uri, refused_rows):
    """A service: MLflow's scoring server for the grader's model (its FastAPI app, as
    ``mlflow models serve`` runs it). Its port, and what it answers to rows it must refuse."""
    from mlflow.pyfunc import scoring_server

    port = forked_server(lambda: scoring_server.init(mlflow.pyfunc.load_model(model_uri)), "/ping")
    status, text = http(port, "/invocations", {"dataframe_split": refused_rows.to_dict(orient="split", index=False)})
    answer = json.loads(text)
    return {"port": port, "refused": {"status": status, "error_code": answer.get("error_code"), "message": answer.get("message")}}


def _cli_problem(command, port) -> str | None:
    """Why a command is not MLflow's CLI serving a model here, read as MLflow's CLI reads its
    arguments; None when it is (then running it tells the rest)."""
    import click
    from mlflow.models.cli import serve

    if not isinstance(command, (list, tuple)) or not command:
        return f"it returned {type(command).__name__} {command!r:.200}, not a list of arguments"
    strangers = [item for item in command if not isinstance(item, str)]
    if strangers:
        return f"every item of the list must be a string, but {strangers[0]!r} is a {type(strangers[0]).__name__} (use str(port))"
    if os.path.basename(command[0]) != "mlflow" and list(command[1:3]) != ["-m", "mlflow"]:
        return f"{command[0]!r} is not MLflow's CLI: start with sys.executable, \"-m\", \"mlflow\" (or \"mlflow\")"
    rest = _cli_arguments(command)
    if rest[:2] != ["models", "serve"]:
        return f"it runs `mlflow {' '.join(rest[:2])}`, not `mlflow models serve`"
    try:
        params = serve.make_context("serve", rest[2:]).params
    except click.ClickException as error:
        return f"MLflow's CLI refuses its options: {error.format_message()}"
    if params["env_manager"] != "local":
        return (f"it serves with the {params['env_manager']!r} environment manager, which first builds a new "
                "environment for the model (minutes, and the network): add \"--env-manager\", \"local\"")
    if int(params["port"]) != port:
        return f"it serves on port {params['port']}, not on the port it was given ({port})"
    return None


def _cli_arguments(command) -> list[str]:
    """What MLflow's CLI reads of a command ``_cli_problem`` accepted: the words after ``mlflow``."""
    return list(command[1:] if os.path.basename(command[0]) == "mlflow" else command[3:])


def _said_serving(log_path: str, port: int, process, limit: float = 5.0) -> bool:
    """Whether the command's own output says its uvicorn serves on ``port`` (it logs so once it
    listens): where this call may not read its processes' descriptors (a confined call's
    children are not dumpable), the proof that the server answering is the command's."""
    deadline = time.monotonic() + limit
    while True:
        with open(log_path, "rb") as log:
            said = log.read().decode(errors="replace")
        if any("Uvicorn running on" in line and f":{port} " in line for line in said.splitlines()):
            return True
        if process.poll() is not None or time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def _taken(port: int) -> dict:
    """Another program took the port first: not the learner's doing (the scenario asks again
    on another port; after the last, this is what the learner reads)."""
    return {"taken": True, "ran": True,
            "problem": f"another program on this machine took port {port} first, so your server could not be "
                       "tested there; nothing is wrong with your command as far as this says: run the check again"}


@sandbox_step
def serve_and_score(command, port, X, limit):
    """Applied to what ``serve_command`` returned: run exactly that argument list (no
    shell), wait for ``/ping``, score ``X`` over HTTP, see where it listens; then end it."""
    problem = _cli_problem(command, port)
    if problem:
        return {"problem": problem, "ran": False}
    log_path = os.path.join(tempfile.gettempdir(), "served.log")
    started = time.monotonic()
    with open(log_path, "wb") as log:
        # This environment's MLflow CLI runs in a fork of this warm call (the worker's
        # grader/sandbox/warm.py): MLflow imported once, not twice in new Pythons. Another
        # Python, another MLflow: only running it as it is tells what it does.
        warm = sys.modules.get("_kit_warm")
        arguments = warm.arguments_of(list(command)) if warm else None
        try:
            if arguments:
                process = warm.start(arguments, output=log.fileno())
            else:
                process = subprocess.Popen(list(command), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        except OSError as error:
            return {"problem": f"it could not be started: {error}"}
    try:
        problem = wait_until_answering(port, "/ping", limit, running=lambda: process.poll() is None)
        if problem is None and not (_held_here(port) or _said_serving(log_path, port, process)):
            return _taken(port)
        if problem is None:
            served = {"ping_seconds": round(time.monotonic() - started, 2), "listening": _listening(port)}
            status, text = http(port, "/invocations", {"dataframe_split": X.to_dict(orient="split", index=False)})
            if status == 200:
                return {**served, "predictions": json.loads(text)["predictions"]}
            problem = f"it answered {status} to rows the model accepts: {text[:300]}"
    finally:
        _end(process)
    with open(log_path, "rb") as log:
        said = log.read()[-1500:].decode(errors="replace").strip()
    if "address already in use" in said.lower():  # another program had it first
        return _taken(port)
    return {"problem": problem + (f". What it printed last:\n{said}" if said else ""), "ran": True}


@sandbox_step
def registered_versions(experiment_id, X_example, specs, ports):
    """Set-up: registered versions (``logged_models``) and SERVE_TRIES ports free on this
    sandbox's loopback: the first of ``ports`` that is (the seed's: the same in every run),
    then others drawn at random, should it be taken (gradings with one seed would otherwise
    all ask for the same ones)."""
    import random
    import socket

    def free(port):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                return False
        return True

    made = logged_models(experiment_id, X_example, specs)  # a name, not steps.: it travels by value
    first = next((port for port in ports if free(port)), None)
    drawn = random.SystemRandom()
    others = [port for port in drawn.sample(PORTS, 50) if port != first and free(port)]
    chosen = ([first] if first else []) + others
    if len(chosen) < SERVE_TRIES:
        raise RuntimeError(f"not {SERVE_TRIES} free ports between {PORTS.start} and {PORTS.stop}")
    return {"versions": made, "ports": chosen[:SERVE_TRIES]}


# ------------------------------------------------------------------ the checks
def served_data(inputs):
    """The grader's data, and a model of its own fitted on it."""
    data = inputs.classification(2)
    X_train, X_test, y_train, _ = data
    return data, LogisticRegression(**inputs.logistic_params()).fit(X_train, y_train)


def shuffled_columns(inputs, X):
    """``X`` with its columns in an order other than sorted: a payload that sorts them shows."""
    columns = list(X.columns)
    while columns == sorted(columns):
        inputs.rng.shuffle(columns)
    return X[columns]


def grader_model(learner, inputs, prefix: str):
    """A fresh store holding the grader's own model, logged with a signature: (store, the
    data, the model, what logging it made)."""
    store = learner.store()
    experiment_id = store.new_experiment(inputs.name(prefix))
    data, model = served_data(inputs)
    return store, data, model, learner.prepare(store, steps.logged_model, experiment_id, model, data[0].head(5))


class Test_serving_payload:
    @staticmethod
    def scenario(learner, inputs):
        store, data, model, made = grader_model(learner, inputs, "serving")
        X = shuffled_columns(inputs, data[1])
        call = learner.attempt(store, X, then=(read_payload, made["model_uri"]))
        return Scenario(call=call, X=X, expected=model.predict(X))

    @staticmethod
    def read(scenario) -> dict:
        read = scenario.call.value()
        assert "problem" not in read, f"serving_payload(X): {read.get('problem')}"
        return read

    def test_dataframe_split(self, scenario):
        read, X = self.read(scenario), scenario.X
        assert read["keys"] == ["dataframe_split"], (
            f"the payload is a {read['type']} with keys {read['keys']}; expected one key, \"dataframe_split\", "
            "holding X.to_dict(orient=\"split\", index=False)"
        )
        assert read["columns"] == list(X.columns), (
            f"payload[\"dataframe_split\"][\"columns\"] is {read['columns']}, expected X's columns in X's order: {list(X.columns)}"
        )
        assert read["rows"] == len(X), f"payload[\"dataframe_split\"][\"data\"] holds {read['rows']} rows; X has {len(X)}"

    def test_mlflow_reads_it(self, scenario):
        read = self.read(scenario)
        assert "unreadable" not in read, (
            f"MLflow cannot read the payload as a request to its scoring server: {read['unreadable']}"
        )
        assert_same_predictions(read["predictions"], scenario.expected, "the model, fed your payload by MLflow,")


class Test_score_with_server:
    @staticmethod
    def scenario(learner, inputs):
        store, data, model, made = grader_model(learner, inputs, "scoring")
        X = data[1]
        missing = inputs.rng.choice(list(X.columns))
        refused_rows = X.drop(columns=[missing]).head(3)
        server = learner.start_service(store, model_server, made["model_uri"], refused_rows)
        url = f"http://127.0.0.1:{server.value['port']}"
        scored = learner.start(store, url, X, returns="array")
        refused = learner.start(store, url, refused_rows, returns="array")
        scored.wait(), refused.wait()
        server.stop()  # both calls are done with it
        return Scenario(scored=scored, refused=refused, expected=model.predict(X), missing=missing,
                        answer=server.value["refused"], url=url)

    def test_predictions_match(self, scenario):
        held = scenario.scored.result().array()
        assert_same_predictions(held, scenario.expected, "score_with_server(url, X)")

    def test_errors_name_status_and_message(self, scenario):
        answer = scenario.answer
        # The part of the server's message that says what is wrong ("Model is missing inputs [...]").
        said = (answer["message"] or "").rsplit("Error: ", 1)[-1].strip().rstrip(".")
        asked = f"rows without column {scenario.missing!r}, which the server refuses with {answer['status']} {answer['error_code']}"
        if scenario.refused.succeeded:
            raise AssertionError(
                f"score_with_server returned {scenario.refused.result().array()!r:.200} for {asked}; "
                "it should raise an exception naming the status code and the server's message"
            )
        raised = scenario.refused.raised_text()
        assert str(answer["status"]) in raised and said in raised, (
            f"for {asked}, score_with_server raised:\n{quoted(raised)}\n"
            f"The exception should name the status code ({answer['status']}) and the server's message "
            f"(it ends: {said!r}), read from response.json()[\"message\"]"
        )


class Test_serve_command:
    starts_first = True  # its scenario waits for the learner's server to start: ahead of the others

    @staticmethod
    def scenario(learner, inputs):
        store = learner.store()
        experiment_id = store.new_experiment(inputs.name("served"))
        data, model = served_data(inputs)
        X_train, X_test, y_train, _ = data
        # Two versions that disagree on every row; the alias points at one of them, so
        # serving the latest version (or a hard-coded one) shows.
        models = [model, LogisticRegression(max_iter=500).fit(X_train, 1 - y_train)]
        name, alias = inputs.name("served"), inputs.word()
        chosen = inputs.rng.choice([1, 2])
        specs = [dict(model=m, register_as=name, alias=alias if number == chosen else None)
                 for number, m in enumerate(models, start=1)]
        ports = inputs.rng.sample(PORTS, 20)
        made = learner.prepare(store, registered_versions, experiment_id, X_train.head(5), specs, ports)
        uri = f"models:/{name}@{alias}"
        # Gradings that share a loopback (no bubblewrap) and a seed pick the same port: the
        # one whose server did not get it (serve_and_score says "taken") asks again, with
        # the next port; the learner's function is called again, as it may be.
        for port in made["ports"]:
            call = learner.attempt(store, uri, port, then=(serve_and_score, port, X_test, START_LIMIT),
                                   more_seconds=START_LIMIT + 30)  # + scoring, and ending it
            if not (call.succeeded and call.value().get("taken")):
                break
        return Scenario(call=call, uri=uri, port=port, expected=models[chosen - 1].predict(X_test), chosen=chosen)

    @staticmethod
    def served(scenario) -> dict:
        served = scenario.call.value()
        how = "ran the command it returned as it is (no shell)" if served.get("ran") else "read the command it returned"
        assert "problem" not in served, (
            f"for serve_command({scenario.uri!r}, {scenario.port}) the grader {how}: {served.get('problem')}"
        )
        return served

    def test_serves_alias_version(self, scenario):
        served = self.served(scenario)
        assert_same_predictions(served["predictions"], scenario.expected,
                                f"the server of {scenario.uri} (version {scenario.chosen})")

    def test_listens_on_localhost_only(self, scenario):
        listening = self.served(scenario)["listening"]
        exposed = [address for address in listening if address not in LOOPBACK]
        assert not exposed, (
            f"the server listens on {', '.join(exposed)}, which accepts connections from the whole network; "
            "serve on \"--host\", \"127.0.0.1\" only"
        )
