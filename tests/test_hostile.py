"""Batch grading of untrusted submissions: one batch mixing correct, partly wrong, broken
and hostile learners (tests/submissions/hostile/, one hostile thing each) on 2 workers.

Every learner gets the score it earned honestly and a clear message, the batch completes,
the honest learners' rows equal their single grading, and nothing escapes. Where
bubblewrap is missing the batch falls back to process limits, which cannot hide files or
the network: the assertions only bubblewrap can keep are made when it was applied.
"""
from __future__ import annotations

import csv
import json
import shutil
import socket
import subprocess
import threading
import time
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import FULL_MARKS, REPO, SEED, grade_batch, plant
from grader.sandbox import isolation

HOSTILE = Path(__file__).resolve().parent / "submissions" / "hostile"
MARK = f"hostile-{uuid.uuid4().hex[:10]}"
ISOLATION = isolation.best_mode()
SANDBOXED = ISOLATION == "bwrap"
TARGET = "ex01_tracking.get_or_create_experiment"
CALL_TIMEOUT = 10  # honest calls take under 2 s even here (2 slots on 2 cores): they must never hit it


@dataclass
class Batch:
    rows: dict[str, dict]
    out: Path
    stderr: str
    seconds: float
    network_heard: list[bytes]
    trap: Path

    def results(self, learner: str) -> dict:
        return json.loads((self.out / learner / "results.json").read_text())

    def messages(self, learner: str) -> str:
        return "\n".join(t["output"] for t in self.results(learner)["tests"]) + (self.out / learner / "feedback.md").read_text()


def broken_entries(folder: Path) -> None:
    (folder / "empty").mkdir()
    (folder / "stray.txt").write_text("not a submission")
    (folder / "corrupt.zip").write_bytes(b"PK\x03\x04 this is not really a zip")
    with zipfile.ZipFile(folder / "climbing.zip", "w") as bundle:
        bundle.writestr("exercises/ex01_tracking.py", "x = 1")
        bundle.writestr("../../escaped.py", "x = 1")


def listen() -> tuple[socket.socket, list[bytes]]:
    """A local server the network learner tries to reach: under bubblewrap it never hears it."""
    server = socket.create_server(("127.0.0.1", 0))
    heard: list[bytes] = []

    def accept():
        while True:
            try:
                connection, _ = server.accept()
            except OSError:
                return
            with connection:
                heard.append(connection.recv(100))

    threading.Thread(target=accept, daemon=True).start()
    return server, heard


@pytest.fixture(scope="module")
def batch(tmp_path_factory) -> Batch:
    tmp = tmp_path_factory.mktemp("hostile")
    submissions, out, trap = tmp / "submissions", tmp / "out", tmp / f"{MARK}-trap"
    submissions.mkdir()
    server, heard = listen()
    fill = {"@MARK@": MARK, "@REPO@": str(REPO), "@OUT@": str(out), "@TRAP@": str(trap),
            "@PORT@": str(server.getsockname()[1])}
    shutil.copytree(REPO / "solutions", submissions / "alice")  # correct
    shutil.copytree(REPO / "exercises", submissions / "stubs")  # not attempted
    broken_entries(submissions)
    for snippet in sorted(HOSTILE.glob("*.py")):
        plant(snippet, submissions / snippet.stem, fill)
    started = time.monotonic()
    completed = grade_batch(submissions, out, "--workers", "2", "--seed", str(SEED), "--timeout", "300",
                            "--call-timeout", str(CALL_TIMEOUT), timeout=1200)
    seconds = time.monotonic() - started
    server.close()
    assert (out / "gradebook.csv").is_file(), completed.stdout + completed.stderr
    with open(out / "gradebook.csv", newline="") as handle:
        rows = {row["learner"]: row for row in csv.DictReader(handle)}
    yield Batch(rows, out, completed.stderr, seconds, heard, trap)
    _remove_what_escaped(out)


def _escape_sentinels(out: Path) -> list[Path]:
    places = [REPO / "grader", out, Path("/tmp"), Path.home()]
    return [place / f"{MARK}-written" for place in places] + [Path("/tmp/results.json")]


def _remove_what_escaped(out: Path) -> None:
    """Under the fallback the hostile learners may really write outside: tidy up."""
    for sentinel in _escape_sentinels(out):
        if sentinel.name != "results.json" or not SANDBOXED:
            sentinel.unlink(missing_ok=True)


def exercise_scores(row: dict) -> dict[str, int]:
    return {key: int(row[key]) for key in FULL_MARKS}


def test_the_batch_completes_with_one_row_per_learner(batch):
    expected = {"alice", "stubs", "empty", "stray", "corrupt", "climbing"} | {p.stem for p in HOSTILE.glob("*.py")}
    assert set(batch.rows) == expected, f"rows: {sorted(batch.rows)}\n{batch.stderr[-3000:]}"
    assert all(row["status"] in ("graded", "error", "timeout") for row in batch.rows.values())
    assert all(row["seed"] == str(SEED) for row in batch.rows.values())
    print(f"hostile batch of {len(batch.rows)} learners on 2 workers, isolation {ISOLATION}: {batch.seconds:.0f} s")


def test_honest_learners_equal_their_single_grading(batch, reference_grades):
    for learner, reference in (("alice", "solutions"), ("stubs", "exercises")):
        row, single = batch.rows[learner], reference_grades[reference]
        assert row["status"] == "graded", f"{learner}: {row}"
        assert exercise_scores(row) == single.scores(), f"{learner}: batch {exercise_scores(row)} != single {single.scores()}"
        assert int(row["score"]) == single.results["score"]
        batch_statuses = {k: e["status"] for k, e in batch.results(learner)["extra_data"]["exercises"].items()}
        assert batch_statuses == single.statuses(), f"{learner}: statuses differ from single grading"


@pytest.mark.parametrize("learner, message", [
    ("empty", "the folder is empty"),
    ("stray", "a stray file"),
    ("corrupt", "cannot be read"),
    ("climbing", "climbs out of its folder"),
])
def test_broken_entries_get_an_error_row_saying_what_is_wrong(batch, learner, message):
    row = batch.rows[learner]
    assert row["status"] == "error" and row["score"] == "0", row
    feedback = (batch.out / learner / "feedback.md").read_text()
    assert message in feedback, feedback
    assert batch.results(learner)["extra_data"]["status"] == "error"


# What each hostile learner earns honestly, and a phrase its messages must contain.
HOSTILE_EXPECTED = {
    "infinite_loop": f"did not finish within {CALL_TIMEOUT} seconds",
    "long_sleep": f"did not finish within {CALL_TIMEOUT} seconds",
    "memory_hog": "MemoryError",
    "child_processes": "",
    "os_exit_at_import": "exited with code 0",
    "sys_exit_at_import": "sys.exit(0)",
    "os_exit_in_function": "exited with code 0",
    "sys_exit_in_function": "sys.exit(0)",
    "syntax_error": "SyntaxError",
    "missing_import": "ModuleNotFoundError",
    "forged_results": "",
    "unpickle_runs_code": "returned something the grader cannot use",
    "stdout_flood": "crashed",  # the output file reached its size limit
    "kills_its_worker": "the grading worker died",  # and the slot's next learners get a new one
    "network": "",
    "writes_outside": "",
    "tracking_uri_elsewhere": "",
}
# Where learner code runs as a uid of its own, what it cannot do at all says so instead.
REFUSED_WITH_A_UID_OF_ITS_OWN = {"kills_its_worker": "Operation not permitted"}
# Pointing MLFLOW_TRACKING_URI elsewhere logs nothing where the grader looks; the one check
# it can pass only compares the ids its two calls returned (as in a single grading).
EARNED_AT_MOST = {"tracking_uri_elsewhere": 2}


@pytest.mark.parametrize("learner", sorted(HOSTILE_EXPECTED))
def test_each_hostile_learner_earns_nothing_and_gets_a_clear_message(batch, learner):
    row = batch.rows[learner]
    assert row["status"] == "graded", f"{learner}: {row}\n{(batch.out / learner / 'grading.log').read_text()[-2000:]}"
    earned = {key: score for key, score in exercise_scores(row).items() if score}
    assert int(row["score"]) <= EARNED_AT_MOST.get(learner, 0) and set(earned) <= {TARGET}, \
        f"{learner} earned {row['score']}: {earned}"
    expected = HOSTILE_EXPECTED[learner]
    if batch.results(learner)["extra_data"]["sandbox"]["uid"] == "separate":
        expected = REFUSED_WITH_A_UID_OF_ITS_OWN.get(learner, expected)
    assert expected in batch.messages(learner), batch.messages(learner)[:3000]


def test_monkeypatching_the_grader_changes_nothing(batch):
    """Solutions plus one function that patches pytest, the grader and MLflow to claim success."""
    scores = exercise_scores(batch.rows["monkeypatch_claims_success"])
    assert scores == {**FULL_MARKS, TARGET: 0}, scores


def test_reading_the_solutions_earns_nothing_in_the_sandbox(batch):
    scores = exercise_scores(batch.rows["reads_solutions"])
    if not SANDBOXED:
        pytest.skip(f"isolation {ISOLATION} cannot hide solutions/ (it scored {sum(scores.values())})")
    assert sum(scores.values()) == 0, scores


def test_nothing_escapes(batch):
    leftovers = subprocess.run(["pgrep", "-f", MARK], capture_output=True, text=True).stdout.split()
    assert not leftovers, f"processes still running: {leftovers}"
    assert not batch.trap.exists(), "something unpickled the learner's return value"
    assert not (REPO / "mlflow.db").exists() and not (REPO / "mlruns").exists()
    assert batch.results("alice")["score"] == 100, "another learner overwrote alice's results.json"
    assert batch.results("forged_results")["score"] == 0
    if SANDBOXED:
        escaped = [str(p) for p in _escape_sentinels(batch.out) if p.exists()]
        assert not escaped, f"written outside the sandbox: {escaped}"
        assert not batch.network_heard, f"the network learner reached the host: {batch.network_heard}"
        assert not Path(f"{batch.trap}-elsewhere.db").exists(), "MLFLOW_TRACKING_URI pointed outside"


def test_isolation_is_recorded_and_reported(batch):
    for learner in batch.rows:
        assert batch.results(learner)["extra_data"]["isolation"] == ISOLATION, learner
    report = (batch.out / "report.html").read_text()
    assert "<svg" in report and "http://" not in report.replace("http://www.w3.org", "")
    assert report.count("<script") == 1 and "Content-Security-Policy" in report, "only the report's own sorting script"
    assert ("Warning:" in report) != SANDBOXED, "the report must warn exactly when bubblewrap was not applied"
    for section in ("Score distribution", "Pass rate per function", "Slowest submissions", "Failing submissions"):
        assert section in report


def test_progress_is_shown_on_stderr(batch):
    total = len(batch.rows)
    assert f"{total}/{total} failures" in batch.stderr, batch.stderr[-2000:]
    assert "ETA" in batch.stderr
