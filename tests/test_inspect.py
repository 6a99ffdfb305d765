"""`python -m grader inspect`: the open practice graded where it lives, never written to.

The stores are real: the kit's own solution (solutions/ex04_practice.py) runs in a
subprocess against an SQLite file, and two learners log to a real `mlflow server`
(SQLite backend, proxied artifacts) that this module starts on 127.0.0.1.
"""
from __future__ import annotations

import csv
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"

from grader.__main__ import main  # noqa: E402
from grader.core.store import StoreFactory  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SERVER_BOOT_SECONDS = 180

# The full practice: the kit's solution of run_practice alone, which also describes its
# champion (what the `documented` item asks for).
FULL_PRACTICE = """
import sys
sys.path.insert(0, sys.argv[1])  # solutions/
import ex04_practice
ex04_practice.run_practice("wine-practice", "wine-classifier")
"""

# A practice half done: one FAILED run, a model without a signature, and a registered
# model with a second version taken from another experiment's run.
HALF_DONE = """
import mlflow, mlflow.sklearn
from sklearn.datasets import load_wine
from sklearn.tree import DecisionTreeClassifier

X, y = load_wine(return_X_y=True, as_frame=True)
mine, other = mlflow.create_experiment("mine"), mlflow.create_experiment("other")
model = DecisionTreeClassifier(max_depth=2).fit(X, y)
with mlflow.start_run(experiment_id=mine) as good:
    mlflow.log_param("max_depth", 2)
    mlflow.log_metric("accuracy", model.score(X, y))
    mlflow.sklearn.log_model(model, name="model", serialization_format="cloudpickle")
try:
    with mlflow.start_run(experiment_id=mine):
        mlflow.log_param("max_depth", 3)
        raise RuntimeError("training crashed")
except RuntimeError:
    pass
with mlflow.start_run(experiment_id=other) as elsewhere:
    info = mlflow.sklearn.log_model(model, name="model", serialization_format="cloudpickle")
mlflow.register_model(f"runs:/{good.info.run_id}/model", "half")
mlflow.register_model(info.model_uri, "half")
"""


# Two learners on the class server, each as a learner would do it by hand:
# alice in her own tagged experiment, three runs, a signed model, registered with an
# alias but no description (90); bob in a shared experiment, three tagged runs with
# params and metrics and no model (30).
LEARNERS = """
import os, time, urllib.request
deadline = time.monotonic() + 180
while time.monotonic() < deadline:  # the server boots while this process imports MLflow and scikit-learn
    try:
        urllib.request.urlopen(os.environ["MLFLOW_TRACKING_URI"] + "/health", timeout=2).close()
        break
    except OSError:
        time.sleep(0.3)
import mlflow, mlflow.sklearn
from mlflow import MlflowClient
from mlflow.models import infer_signature
from sklearn.datasets import load_wine
from sklearn.tree import DecisionTreeClassifier

X, y = load_wine(return_X_y=True, as_frame=True)
client = MlflowClient()
alice = client.create_experiment("practice-alice", tags={"learner": "alice"})
for depth in (1, 2, 3):
    with mlflow.start_run(experiment_id=alice):
        model = DecisionTreeClassifier(max_depth=depth, random_state=0).fit(X, y)
        mlflow.log_param("max_depth", depth)
        mlflow.log_metric("accuracy", model.score(X, y))
        if depth == 3:
            info = mlflow.sklearn.log_model(model, name="model", signature=infer_signature(X, model.predict(X)),
                                            serialization_format="cloudpickle")
version = mlflow.register_model(info.model_uri, "wine-alice")
client.set_registered_model_alias("wine-alice", "champion", version.version)

shared = mlflow.create_experiment("class-shared")
for c in (0.1, 1.0, 10.0):
    with mlflow.start_run(experiment_id=shared, tags={"learner": "bob"}):
        mlflow.log_param("C", c)
        mlflow.log_metric("accuracy", 0.8 + c / 100)
"""


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    return {**env, "MLFLOW_DISABLE_TELEMETRY": "true", "PYTHONPATH": str(REPO), **extra}


# Inferring a logged model's pip requirements starts a Python per model (seconds each) and
# is beside the point of these stores: take the flavor's defaults, as the grader's worker does.
DEFAULT_REQUIREMENTS = """
import mlflow.models
mlflow.models.infer_pip_requirements = lambda model_uri, flavor, fallback=None, *args, **kwargs: list(fallback or [])
"""


def start_script(script: str, tracking_uri: str, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", DEFAULT_REQUIREMENTS + script, str(REPO / "solutions")], cwd=cwd,
                            env=clean_env(MLFLOW_TRACKING_URI=tracking_uri),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(process: subprocess.Popen) -> None:
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 0, output[-3000:]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def tree_hash(*paths: Path) -> dict[str, str]:
    """Every file below ``paths`` with the SHA-256 of its bytes."""
    hashes = {}
    for root in paths:
        for path in sorted([root] if root.is_file() else root.rglob("*")):
            if path.is_file():
                hashes[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return hashes


@dataclass
class Server:
    url: str
    root: Path
    process: subprocess.Popen

    def files(self) -> dict[str, str]:
        return tree_hash(self.root / "mlflow.db", self.root / "artifacts")


def start_server(root: Path) -> Server:
    port = free_port()
    command = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
               "--artifacts-destination", str(root / "artifacts"), "--host", "127.0.0.1", "--port", str(port),
               "--workers", "1"]
    log = open(root / "server.log", "wb")
    # No job runner: its dozen huey processes serve GenAI jobs nobody starts here, and it
    # leaves a folder in /dev/shm behind each server.
    process = subprocess.Popen(command, cwd=root, env=clean_env(MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false"),
                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    return Server(f"http://127.0.0.1:{port}", root, process)


def wait_healthy(server: Server) -> None:
    deadline = time.monotonic() + SERVER_BOOT_SECONDS
    while time.monotonic() < deadline:
        assert server.process.poll() is None, (server.root / "server.log").read_text()[-3000:]
        try:
            with urllib.request.urlopen(f"{server.url}/health", timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"mlflow server did not answer within {SERVER_BOOT_SECONDS} s")


def stop(server: Server) -> None:
    if server.process.poll() is None:
        os.killpg(server.process.pid, signal.SIGTERM)
        try:
            server.process.wait(timeout=2)  # mlflow server is slow to heed SIGTERM; its data is scratch
        except subprocess.TimeoutExpired:
            os.killpg(server.process.pid, signal.SIGKILL)
            server.process.wait()


@dataclass
class World:
    practice_db: Path   # an SQLite store holding the full practice
    half_done_db: Path  # an SQLite store holding a practice half done
    server: Server      # a class server holding alice's and bob's work
    server_before: dict[str, str]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Both stores, made side by side: the server boots while the practices import and train."""
    root = tmp_path_factory.mktemp("inspect")
    (root / "server").mkdir()
    server = start_server(root / "server")
    scripts = []
    try:
        stores = StoreFactory(root / "stores")
        store = stores.new("practice")
        scripts.append(start_script(FULL_PRACTICE, store.uri, store.root))
        half_done = stores.new("half")
        scripts.append(start_script(HALF_DONE, half_done.uri, half_done.root))
        scripts.append(start_script(LEARNERS, server.url, root))
        wait_healthy(server)
        for process in scripts:
            finish(process)
        yield World(store.db, half_done.db, server, server.files())
    finally:
        for process in scripts:
            if process.poll() is None:  # only when set-up failed half-way
                process.kill()
                process.wait()
        stop(server)


def inspect(capsys, *args: str) -> tuple[int, str]:
    """The command's exit code and what it said, whitespace folded (the summary wraps long lines)."""
    code = main(["inspect", *args])
    captured = capsys.readouterr()
    return code, " ".join((captured.out + captured.err).split())


# ---------------------------------------------------------------- an SQLite file
def test_full_practice_scores_100_and_the_store_is_unchanged(world, tmp_path):
    store = world.practice_db.parent
    before = tree_hash(store)
    results = tmp_path / "results.json"
    command = [sys.executable, "-m", "grader", "inspect", "--tracking-uri", str(world.practice_db),
               "--grade-json", str(results)]
    done = subprocess.run(command, cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Total: 100/100" in done.stdout and "experiment 'wine-practice'" in done.stdout
    grade = json.loads(results.read_text())
    assert (grade["score"], grade["max_score"]) == (100, 100)
    assert grade["extra_data"]["registered_model"] == "wine-classifier"
    assert set(grade["extra_data"]["exercises"]) == {
        "practice.tracked_runs", "practice.logged_model", "practice.registered_lineage", "practice.alias",
        "practice.documented"}
    assert tree_hash(store) == before, "inspecting changed the learner's store"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"], "inspecting wrote into the working folder"


def test_half_done_practice_says_what_is_missing(world, capsys):
    code, out = inspect(capsys, "--tracking-uri", str(world.half_done_db))
    assert code == 1 and "Total: 0/100" in out
    assert "experiment 'mine' has 1 FINISHED runs with params and metrics, expected at least 3" in out
    assert "has no signature" in out
    assert "version(s) 2 of registered model 'half' do not come from a run of experiment 'mine'" in out
    assert "registered model 'half' has no alias on any version" in out


def test_sqlite_uri_and_named_experiment(world, capsys):
    code, out = inspect(capsys, "--tracking-uri", f"sqlite:///{world.practice_db}", "--experiment", "wine-practice",
                        "--model", "wine-classifier")
    assert code == 0 and "Total: 100/100" in out


def test_missing_experiment_is_named(world, capsys, tmp_path):
    results = tmp_path / "results.json"
    code, out = inspect(capsys, "--tracking-uri", str(world.practice_db), "--experiment", "nope",
                        "--grade-json", str(results))
    assert code == 1
    assert "no experiment called 'nope'" in out and "'wine-practice'" in out
    grade = json.loads(results.read_text())
    assert grade["score"] == 0 and {e["status"] for e in grade["extra_data"]["exercises"].values()} == {"failed"}


def test_missing_model_fails_lineage_alias_and_description(world, capsys):
    code, out = inspect(capsys, "--tracking-uri", str(world.practice_db), "--model", "nope")
    assert code == 1 and "Total: 50/100" in out
    assert "the registry has no model called 'nope'; it holds 'wine-classifier'" in out


def test_empty_store(world, capsys, tmp_path):
    empty = StoreFactory(tmp_path / "stores").new("empty")
    code, out = inspect(capsys, "--tracking-uri", str(empty.db))
    assert code == 1 and "the store is empty: it holds no runs yet" in out


@pytest.mark.parametrize("content, says", [
    (b"", "is empty: no MLflow store has been written to it yet"),
    (b"name,score\nada,3\n", "is not an SQLite database, so it is not an MLflow store"),
    (None, "is an SQLite database but not an MLflow store"),
    ("missing", "does not exist"),
])
def test_not_an_mlflow_store(capsys, tmp_path, content, says):
    path = tmp_path / "mlflow.db"
    if content is None:
        import sqlite3

        with sqlite3.connect(path) as db:
            db.execute("CREATE TABLE grades (name TEXT)")
    elif isinstance(content, bytes):
        path.write_bytes(content)
    before = tree_hash(tmp_path)
    results = tmp_path.parent / f"{tmp_path.name}-results.json"
    code, out = inspect(capsys, "--tracking-uri", str(path), "--grade-json", str(results))
    assert code == 2 and says in out
    assert {e["status"] for e in json.loads(results.read_text())["extra_data"]["exercises"].values()} == {"error"}
    assert tree_hash(tmp_path) == before


# ---------------------------------------------------------------- a server
def test_unreachable_server(capsys):
    started = time.monotonic()
    code, out = inspect(capsys, "--tracking-uri", f"http://127.0.0.1:{free_port()}")
    assert code == 2 and "cannot reach an MLflow server at http://127.0.0.1:" in out
    assert time.monotonic() - started < 20, "an unreachable server must be reported at once, not after retries"


def test_one_learner_on_the_server(world, capsys, tmp_path):
    results = tmp_path / "results.json"
    code, out = inspect(capsys, "--tracking-uri", world.server.url, "--experiment", "practice-alice",
                        "--grade-json", str(results))
    assert code == 1 and "Total: 90/100" in out
    assert "registered model 'wine-alice' and its versions have no description and no tags" in out
    statuses = {k: e["status"] for k, e in json.loads(results.read_text())["extra_data"]["exercises"].items()}
    assert statuses == {"practice.tracked_runs": "passed", "practice.logged_model": "passed",
                        "practice.registered_lineage": "passed", "practice.alias": "passed",
                        "practice.documented": "failed"}


def test_gradebook_of_a_class_server(world, capsys, tmp_path):
    book = tmp_path / "gradebook.csv"
    code, out = inspect(capsys, "--tracking-uri", world.server.url, "--learners-tag", "learner",
                        "--gradebook", str(book))
    assert code == 0, out
    with open(book, newline="") as handle:
        reader = csv.DictReader(handle)
        rows = {row["learner"]: row for row in reader}
    assert reader.fieldnames == ["learner", "status", "score", "max_score", "practice.tracked_runs",
                                 "practice.logged_model", "practice.registered_lineage", "practice.alias",
                                 "practice.documented", "seconds"]
    assert {name: (row["status"], row["score"]) for name, row in rows.items()} == {
        "alice": ("graded", "90"), "bob": ("graded", "30")}
    assert rows["bob"]["practice.tracked_runs"] == "30" and rows["bob"]["practice.logged_model"] == "0"


def test_server_store_is_unchanged(world, capsys):
    """Last in the module: every inspection above read the server; none wrote to it."""
    inspect(capsys, "--tracking-uri", world.server.url)
    assert world.server.files() == world.server_before, "inspecting changed the server's store"


def test_the_client_offers_read_calls_only(world, tmp_path):
    from grader.inspect.source import open_store

    store = open_store(str(world.practice_db), tmp_path)
    with pytest.raises(AttributeError, match="not a read call"):
        store.client.create_experiment("written")
    with pytest.raises(AttributeError, match="not a read call"):
        store.client.set_registered_model_alias("wine-classifier", "x", "1")
