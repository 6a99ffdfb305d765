"""`python -m grader batch --dask`: a real Dask cluster started with the `dask` CLI on
127.0.0.1 (a scheduler, two Dask worker processes with one grading slot each) grades a mixed
class exactly as one machine does; a Dask worker killed mid-learner costs no row, and one
killed under the same learner three times gives that learner an `error` row that says why;
Ctrl-C, or a client killed outright, leaves a gradebook that --resume completes and nothing
running on the Dask workers once it has. Neither a learner's `pytest grader` nor a batch on
one machine imports Dask."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from distributed import Client, Security

from conftest import REPO, batch_command, plant, scoring_processes
from grader.batch.dask_engine import PLUGIN_PREFIX, plugins_and_clients
from grader.ground.processes import descendants
from test_batch_runs import GET_POINTS, SEED, batch, notebook, read_rows, solution_code, solved

HOSTILE = Path(__file__).resolve().parent / "submissions" / "hostile"
WRONG = '''
def get_or_create_experiment(name, tags=None):
    import mlflow
    return mlflow.create_experiment(name)  # fails on a name that exists, and forgets the tags
'''
START_SECONDS = 120


def start_batch(submissions: Path, out: Path, *args: str, env: dict | None = None) -> subprocess.Popen:
    """A batch in a session of its own: a terminal's Ctrl-C reaches all of its process group."""
    command = batch_command(submissions, out, "--seed", SEED, *args)
    return subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})}, start_new_session=True)


def without_seconds(rows: dict[str, dict]) -> dict[str, dict]:
    return {learner: {k: v for k, v in row.items() if k != "seconds"} for learner, row in rows.items()}


class Cluster:
    """A scheduler and two Dask workers, each started with the `dask` CLI in a session of
    its own, so that all a command started is stopped by its pid. ``tls``: all of it
    speaks TLS only, with certificates Dask made for the test (``--tls-*`` files)."""

    def __init__(self, tmp: Path, tls: bool = False):
        self.scheduler_file = tmp / "scheduler.json"
        env = {**os.environ, "PYTHONPATH": str(REPO), "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "2",
               "DASK_TEMPORARY_DIRECTORY": str(tmp)}
        self.tls_files = certificates(tmp) if tls else {}
        secure = [argument for option, path in self.tls_files.items() for argument in (option, str(path))]
        protocol = ["--protocol", "tls"] if tls else []
        self.started = [self._start(["scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard", *protocol,
                                     *secure, "--scheduler-file", str(self.scheduler_file)], env, tmp / "scheduler.log")]
        deadline = time.monotonic() + START_SECONDS
        while not self.scheduler_file.is_file() and time.monotonic() < deadline:
            time.sleep(0.1)
        for n in range(2):
            self.started.append(self._start(
                ["worker", "--scheduler-file", str(self.scheduler_file), "--nworkers", "1", "--nthreads", "1",
                 "--resources", "grading-slot=1", "--no-dashboard", "--host", "127.0.0.1", *protocol, *secure],
                env, tmp / f"worker-{n}.log"))
        self.client: Client | None = None

    def wait_until_ready(self) -> None:
        security = Security(tls_ca_file=str(self.tls_files["--tls-ca-file"]), tls_client_cert=str(self.tls_files["--tls-cert"]),
                            tls_client_key=str(self.tls_files["--tls-key"]), require_encryption=True) if self.tls_files else None
        self.client = Client(scheduler_file=str(self.scheduler_file), timeout=START_SECONDS, security=security)
        self.client.wait_for_workers(2, timeout=START_SECONDS)
        self.address = json.loads(self.scheduler_file.read_text())["address"]

    @staticmethod
    def _start(arguments: list[str], env: dict, log: Path) -> subprocess.Popen:
        with open(log, "wb") as handle:
            return subprocess.Popen([sys.executable, "-m", "dask", *arguments], cwd=REPO, env=env, stdout=handle,
                                    stderr=subprocess.STDOUT, start_new_session=True)

    def worker_pids(self) -> dict[str, int]:
        """Each Dask worker process (the child of its `dask worker` command), by address."""
        return self.client.run(os.getpid, on_error="ignore")

    def stop(self) -> None:
        if self.client is not None:
            self.client.close()
        for process in reversed(self.started):
            with_children = [process.pid, *descendants(process.pid)]
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
            for pid in with_children:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            process.wait()


def certificates(tmp: Path) -> dict[str, Path]:
    """A certificate authority and one certificate for all, as Dask makes them for tests, in files."""
    made = Security.temporary()
    files = {"--tls-ca-file": made.tls_ca_file, "--tls-cert": made.tls_scheduler_cert, "--tls-key": made.tls_scheduler_key}
    for option, pem in files.items():
        (tmp / f"{option[2:]}.pem").write_text(pem)
    return {option: tmp / f"{option[2:]}.pem" for option in files}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    running = Cluster(tmp_path_factory.mktemp("dask"))
    try:
        running.wait_until_ready()
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def mixed_class(tmp_path_factory) -> tuple[Path, dict[str, dict], Path, str]:
    """Good, wrong, a broken zip, a learner who kills their sandbox worker and a notebook;
    graded on this machine (with -X importtime): (submissions, rows, out, stderr)."""
    tmp = tmp_path_factory.mktemp("class")
    submissions, out = tmp / "in", tmp / "local"
    solved(submissions / "good", {"get_or_create_experiment"})
    solved(submissions / "wrong", set(), WRONG)
    solved(submissions / "hostile", {"get_or_create_experiment"}, (HOSTILE / "kills_its_worker.py").read_text())
    (submissions / "broken.zip").write_bytes(b"PK\x03\x04 not really a zip")
    notebook(submissions / "nora.ipynb", "import mlflow\nfrom mlflow import MlflowClient", solution_code({"get_or_create_experiment"}))
    local = batch(submissions, out, "--workers", "2", python_options=("-X", "importtime"))
    rows = read_rows(out / "gradebook.csv")
    assert set(rows) == {"good", "wrong", "hostile", "broken", "nora"}, local.stderr[-3000:]
    return submissions, rows, out, local.stderr


def headings(feedback: Path) -> list[str]:
    """Every function's status and points, and the total."""
    return [line for line in feedback.read_text().splitlines() if line.startswith(("Score:", "#"))]


def imported_modules(importtime_output: str) -> set[str]:
    return {line.rsplit("|", 1)[1].strip() for line in importtime_output.splitlines() if line.startswith("import time:")}


def test_the_class_graded_on_this_machine_is_what_it_should_be(mixed_class):
    _, rows, _, _ = mixed_class
    statuses = {learner: (row["status"], row["score"]) for learner, row in rows.items()}
    get = "ex01_tracking.get_or_create_experiment"
    assert statuses["broken"] == ("error", "0") and statuses["good"] == ("graded", rows["good"][get])
    assert rows["good"][get] == rows["nora"][get] == rows["hostile"][get] != "0", statuses
    assert rows["wrong"]["status"] == "graded" and int(rows["wrong"][get]) < int(rows["good"][get]), statuses
    assert rows["hostile"]["ex01_tracking.log_run"] == "0" and rows["hostile"]["status"] == "graded"


def test_a_batch_on_this_machine_imports_no_dask(mixed_class):
    _, _, _, stderr = mixed_class
    modules = imported_modules(stderr)
    assert "grader.batch.run" in modules, "-X importtime lists the batch's imports"
    assert not {m for m in modules if m.split(".")[0] in ("dask", "distributed")}, sorted(modules)


def test_a_learners_pytest_grader_imports_no_dask():
    # -s: pytest's capture would swallow what -X importtime writes while it collects.
    completed = subprocess.run([sys.executable, "-X", "importtime", "-m", "pytest", "grader", "-q", "-s", "-p",
                                "no:cacheprovider", "--target", "solutions", "-k", "get_or_create_experiment"],
                               cwd=REPO, capture_output=True, text=True, timeout=600)
    modules = imported_modules(completed.stderr)
    assert "grader.plugin" in modules and "mlflow" in modules, completed.stdout[-2000:]
    assert not {m for m in modules if m.split(".")[0] in ("dask", "distributed")}, sorted(modules)


def test_a_dask_cluster_grades_the_class_as_one_machine_does(cluster, mixed_class, tmp_path):
    submissions, local_rows, local_out, _ = mixed_class
    completed = batch(submissions, tmp_path / "out", "--dask", cluster.address)
    rows = read_rows(tmp_path / "out" / "gradebook.csv")
    assert without_seconds(rows) == without_seconds(local_rows), completed.stderr[-3000:]
    for learner in rows:  # the same feedback (its messages may quote a store's timestamps)
        assert headings(tmp_path / "out" / learner / "feedback.md") == headings(local_out / learner / "feedback.md"), learner
    assert "2 grading slot(s) on 2 Dask worker(s)" in completed.stderr and completed.returncode == 1, completed.stderr


def kill_a_dask_worker_mid_grading(cluster: Cluster, running: subprocess.Popen) -> tuple[int, list[int]]:
    """kill -9 of a Dask worker process while it grades a learner: (its pid, the processes below it then)."""
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline and running.poll() is None:
        for pid in cluster.worker_pids().values():
            if scoring_processes(pid):
                below = descendants(pid)
                os.kill(pid, signal.SIGKILL)
                return pid, below
        time.sleep(0.05)
    raise AssertionError(f"no Dask worker was seen grading: {running.communicate()[1][-3000:]}")


def gone(pids: list[int], within: float = 20) -> list[int]:
    deadline = time.monotonic() + within
    while (alive := [pid for pid in pids if os.path.exists(f"/proc/{pid}")]) and time.monotonic() < deadline:
        time.sleep(0.1)
    return alive


def test_a_dask_worker_killed_mid_learner_costs_no_row(cluster, mixed_class, tmp_path):
    submissions, local_rows, _, _ = mixed_class
    running = start_batch(submissions, tmp_path / "out", "--dask", cluster.address)
    killed, below = kill_a_dask_worker_mid_grading(cluster, running)
    _, stderr = running.communicate(timeout=600)
    assert not gone([killed, *below]), "the grading hosts die with their Dask worker, and all below them"
    rows = read_rows(tmp_path / "out" / "gradebook.csv")
    # The learners that Dask worker held (the one it graded, and one waiting there) say so on their rows.
    note = "graded on another Dask worker after the one it was given was lost (1 time)"
    retried = [name for name, row in rows.items() if row["reason"].startswith(note)]
    assert 1 <= len(retried) <= 2, {name: row["reason"] for name, row in rows.items()}
    for name in retried:
        rows[name]["reason"] = rows[name]["reason"].removeprefix(note).removeprefix("; ")
    assert without_seconds(rows) == without_seconds(local_rows), stderr[-3000:]
    assert len((tmp_path / "out" / "gradebook.csv").read_text().splitlines()) == 1 + len(local_rows)
    assert killed not in cluster.worker_pids().values()


def test_a_learner_whose_dask_workers_keep_dying_gets_an_error_row(cluster, tmp_path):
    """The scheduler regrades it twice (allowed-failures 2), then gives up on it."""
    submissions = tmp_path / "in"
    # Every function solved: its grading lasts long enough to be caught in flight (a
    # learner with one function done is graded in a fraction of a second).
    shutil.copytree(REPO / "solutions", submissions / "unlucky", ignore=shutil.ignore_patterns("__pycache__"))
    running = start_batch(submissions, tmp_path / "out", "--dask", cluster.address)
    for _ in range(3):
        cluster.client.wait_for_workers(2, timeout=START_SECONDS)
        killed, _ = kill_a_dask_worker_mid_grading(cluster, running)
        assert not gone([killed])
    _, stderr = running.communicate(timeout=600)
    rows = read_rows(tmp_path / "out" / "gradebook.csv")
    assert len(rows) == 1, stderr[-3000:]
    [row] = rows.values()
    assert row["status"] == "error" and "the Dask worker grading it died, 3 times" in row["reason"], (row, stderr[-3000:])
    assert "died, 3 times" in (tmp_path / "out" / "unlucky" / "feedback.md").read_text()


def test_a_dask_batch_stopped_by_ctrl_c_or_killed_is_completed_by_resume(cluster, tmp_path):
    """Ctrl-C ends the gradings in flight and prints the command that grades the rest. A
    client killed outright leaves its grading hosts on the Dask workers until the next batch
    removes its plugin. --resume then completes the gradebook, each learner once."""
    submissions, out = tmp_path / "in", tmp_path / "out"
    for learner in ("ann", "bob"):  # every function solved: gradings long enough to catch in flight
        shutil.copytree(REPO / "solutions", submissions / learner, ignore=shutil.ignore_patterns("__pycache__"))
    grading = lambda: any(scoring_processes(pid) for pid in cluster.worker_pids().values())  # noqa: E731

    running = start_batch(submissions, out, "--dask", cluster.address)
    wait_until(grading, running)
    running.send_signal(signal.SIGINT)
    _, stderr = running.communicate(timeout=120)
    assert running.returncode == 128 + signal.SIGINT and "Traceback" not in stderr, stderr
    resume = stderr.strip().splitlines()[-1]
    assert resume.startswith("To grade the rest:") and resume.endswith("--resume") and "--dask" in resume, stderr
    assert {p.name for p in out.iterdir() if p.is_dir()} == set(read_rows(out / "gradebook.csv")), \
        "a learner in flight was dropped whole"
    assert not grading(), "the gradings in flight were ended"

    running = start_batch(submissions, out, "--dask", cluster.address, "--resume")
    wait_until(grading, running)
    running.kill()
    running.communicate()
    left_running = [below for pid in cluster.worker_pids().values() for below in descendants(pid)]
    assert left_running and [p for p in plugins_and_clients_now(cluster)[0] if p.startswith(PLUGIN_PREFIX)]

    resumed = batch(submissions, out, "--dask", cluster.address, "--resume")
    assert not gone(left_running), "the next batch ended the hosts of the killed one"
    assert not [p for p in plugins_and_clients_now(cluster)[0] if p.startswith(PLUGIN_PREFIX)]
    rows = read_rows(out / "gradebook.csv")
    assert set(rows) == {"ann", "bob"} and {r["status"] for r in rows.values()} == {"graded"}, resumed.stderr
    assert len((out / "gradebook.csv").read_text().splitlines()) == 3


def plugins_and_clients_now(cluster: Cluster) -> tuple[list[str], list[str]]:
    return cluster.client.run_on_scheduler(plugins_and_clients)


def test_a_local_dask_cluster_stops_with_the_terminals_ctrl_c_and_leaves_nothing(mixed_class, tmp_path):
    """--dask local:1: Ctrl-C reaches the batch's whole process group, its Dask worker
    processes too; the batch stops cleanly, ends them, leaves nothing in TMPDIR, and
    --resume completes the gradebook as one machine grades it."""
    submissions, local_rows, _, _ = mixed_class
    class_, out, place = tmp_path / "in", tmp_path / "out", tmp_path / "tmp"
    shutil.copytree(submissions / "good", class_ / "good")
    shutil.copy(submissions / "broken.zip", class_)
    place.mkdir()
    running = start_batch(class_, out, "--dask", "local:1", env={"TMPDIR": str(place)})
    wait_until(lambda: scoring_processes(running.pid), running)
    below = descendants(running.pid)
    os.killpg(running.pid, signal.SIGINT)
    _, stderr = running.communicate(timeout=120)
    assert running.returncode == 128 + signal.SIGINT and "Traceback" not in stderr, stderr
    assert not gone(below), "the LocalCluster's Dask workers and their grading hosts end with the batch"
    assert not list(place.iterdir()), list(place.rglob("*"))
    resumed = batch(class_, out, "--dask", "local:1", "--resume", env={"TMPDIR": str(place)})
    expected = {learner: row for learner, row in local_rows.items() if learner in ("good", "broken")}
    assert without_seconds(read_rows(out / "gradebook.csv")) == without_seconds(expected), resumed.stderr[-3000:]
    assert not list(place.iterdir()), list(place.rglob("*"))


def wait_until(condition, running: subprocess.Popen) -> None:
    deadline = time.monotonic() + START_SECONDS
    while not condition():
        assert running.poll() is None and time.monotonic() < deadline, running.communicate()[1][-3000:]
        time.sleep(0.05)


def test_a_learner_who_leaves_a_deep_tree_costs_no_one_on_a_local_cluster(tmp_path):
    """A learner whose code leaves trees 5000 folders deep (links in them) and a message of
    4 MB full of escape sequences, before honest learners, on `--dask local:2`: every row
    is written within the batch's limits, the honest ones at their marks, and nothing is
    left in TMPDIR."""
    attacks = Path(__file__).resolve().parent / "submissions" / "attacks"
    submissions, out, place = tmp_path / "in", tmp_path / "out", tmp_path / "tmp"
    place.mkdir()
    canary = tmp_path / "canary.txt"
    canary.write_text("canary")
    fill = {"@MARK@": "dask-attack", "@CANARY@": str(canary)}
    plant(attacks / "deep_tree.py", submissions / "a-deep", fill)
    plant(attacks / "loud_message.py", submissions / "b-loud", fill)
    for name in ("c-honest", "d-honest"):
        solved(submissions / name, {"get_or_create_experiment"})
    started = time.monotonic()
    completed = batch(submissions, out, "--dask", "local:2", "--timeout", "300", env={"TMPDIR": str(place)})
    rows = read_rows(out / "gradebook.csv")
    assert set(rows) == {"a-deep", "b-loud", "c-honest", "d-honest"}, completed.stderr[-3000:]
    assert all(rows[name]["status"] == "graded" for name in rows), rows
    assert all(rows[name]["ex01_tracking.get_or_create_experiment"] == GET_POINTS for name in ("c-honest", "d-honest")), rows
    assert (out / "report.html").is_file() and time.monotonic() - started < 300
    assert "\x1b" not in (out / "b-loud" / "feedback.md").read_text() + completed.stderr
    assert not list(place.iterdir()), list(place.rglob("*"))[:10]
    assert canary.read_text() == "canary"



def test_a_cluster_behind_tls_grades_the_class_as_one_machine_does(mixed_class, tmp_path):
    """Scheduler, Dask workers and the batch's client speak TLS only (certificates Dask made):
    the same rows as on one machine; without the certificates the client is refused."""
    submissions, local_rows, _, _ = mixed_class
    (tmp_path / "cluster").mkdir()
    running = Cluster(tmp_path / "cluster", tls=True)
    try:
        running.wait_until_ready()
        assert running.address.startswith("tls://127.0.0.1:"), running.address
        secure = [argument for option, path in running.tls_files.items() for argument in (option, str(path))]
        graded = batch(submissions, tmp_path / "out", "--dask", running.address, *secure)
        assert "without TLS" not in graded.stderr, graded.stderr[-2000:]
        assert without_seconds(read_rows(tmp_path / "out" / "gradebook.csv")) == without_seconds(local_rows), graded.stderr[-3000:]
        plain = batch(submissions, tmp_path / "plain", "--dask", running.address.replace("tls://", "tcp://"))
        assert plain.returncode == 2 and "cannot reach the Dask scheduler" in plain.stderr, plain.stderr[-2000:]
    finally:
        running.stop()


def test_a_scheduler_on_another_machine_without_tls_is_warned_of():
    from grader.batch.dask_engine import warn_if_open

    import contextlib
    import io

    for address, warned in (("tcp://10.0.0.5:8786", True), ("10.0.0.5:8786", True), ("tls://10.0.0.5:8786", False),
                            ("tcp://127.0.0.1:8786", False)):
        said = io.StringIO()
        with contextlib.redirect_stderr(said):
            warn_if_open(address)
        assert ("without TLS" in said.getvalue()) == warned, address
