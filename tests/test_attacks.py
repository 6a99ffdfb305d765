"""Attacks on the batch sandbox (issue 13), each a real submission in a real bubblewrap
batch on one slot, each graded right before an honest learner (tests/submissions/attacks/).

The honest learners run the reference solution, failing loudly should anything of an
earlier learner reach them (files, processes, a shared memory segment, a slower worker):
every honest row must equal a standalone `pytest grader` of the same code at the same
seed. The attackers point links at a host canary file, the gradebook and a .pth file
Python would run: no canary text may appear in any output, nothing may be planted, and
nothing may be left in /dev/shm or in the process table.
"""
from __future__ import annotations

import csv
import json
import os
import shutil
import sqlite3
import sysconfig
import uuid
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import FULL_MARKS, REPO, SEED, deep_tree, grade, grade_batch, plant
from grader.core.store import StoreFactory
from grader.sandbox import isolation

ATTACKS = Path(__file__).resolve().parent / "submissions" / "attacks"
MARK = f"attack-{uuid.uuid4().hex[:10]}"
SHM_KEY = zlib.crc32(MARK.encode()) & 0x7FFFFFFF
CANARY_TEXT = f"canary {uuid.uuid4().hex}"
PTH = Path(sysconfig.get_paths()["purelib"]) / f"{MARK}.pth"
CALL_TIMEOUT = 10
ZERO = {key: 0 for key in FULL_MARKS}
# attacker -> the row its untouched functions earn (stubs, and what the attack is worth)
EXPECTED = {
    "restore_through_link": ZERO,
    "links_to_host_files": ZERO,
    "renices_its_worker": ZERO,
    "reforks_past_the_sweep": ZERO,
    "fills_memory_and_files": ZERO,
    "deep_tree": ZERO,
    "kernel_calls": ZERO,
    "loud_message": ZERO,
    "fills_inodes": ZERO,
    # Rows written with sqlite3 are what MLflow would have written: accepted, as the issue notes.
    "raw_sqlite_log_run": {**ZERO, "ex01_tracking.log_run": FULL_MARKS["ex01_tracking.log_run"]},
}
# Handed in as a .zip that nests a module thousands of folders deep: no code runs at all.
DEEP_ZIP = "deep_zip"
DEEP_ZIP_FOLDERS = 2000
pytestmark = pytest.mark.skipif(not isolation.bwrap_available(), reason="the attacks target the bubblewrap sandbox")


@dataclass
class Batch:
    rows: dict[str, dict]
    out: Path
    stderr: str
    shm_folder: Path
    canary: Path

    def results(self, learner: str) -> dict:
        return json.loads((self.out / learner / "results.json").read_text())

    def feedback(self, learner: str) -> str:
        return (self.out / learner / "feedback.md").read_text()


ATTACKERS = sorted([*EXPECTED, DEEP_ZIP])


def attacker(name: str) -> str:
    return f"{ATTACKERS.index(name):02d}-attack-{name}"


def honest(name: str) -> str:
    return f"{ATTACKERS.index(name):02d}-honest"


def deep_zip(archive: Path) -> None:
    """The stubs, and a copy of one module thousands of folders down."""
    with zipfile.ZipFile(archive, "w") as bundle:
        for module in sorted((REPO / "exercises").glob("*.py")):
            bundle.write(module, module.name)
        bundle.writestr("d/" * DEEP_ZIP_FOLDERS + "ex01_tracking.py", "raise SystemExit('never imported')\n")


def run_batch(tmp: Path, attacks: list[str], *, prefix: list[str] = ()) -> Batch:
    """Each attack then an honest learner, on one slot of a bubblewrap batch."""
    submissions, out, canary = tmp / "submissions", tmp / "out", tmp / "canary.txt"
    canary.write_text(CANARY_TEXT)
    canary.chmod(0o644)  # readable by anyone: only not following the links keeps it out
    fill = {"@MARK@": MARK, "@CANARY@": str(canary), "@SOLUTION@": str(REPO / "solutions" / "ex01_tracking.py"),
            "@GRADEBOOK@": str(out / "gradebook.csv"), "@PTH@": str(PTH), "@SHM_KEY@": str(SHM_KEY)}
    for name in attacks:  # attacker, honest, attacker, honest...
        if name == DEEP_ZIP:
            submissions.mkdir(parents=True, exist_ok=True)
            deep_zip(submissions / f"{attacker(name)}.zip")
        else:
            plant(ATTACKS / f"{name}.py", submissions / attacker(name), fill)
        plant(ATTACKS / "honest_snoop.py", submissions / honest(name), fill)
    # The batch's folders go in a folder of this test's, in shared memory as by default.
    shm_folder = Path("/dev/shm") / f"attacks-{uuid.uuid4().hex[:8]}"
    shm_folder.mkdir()
    try:
        completed = grade_batch(submissions, out, "--workers", "1", "--seed", str(SEED), "--timeout", "300",
                                "--call-timeout", str(CALL_TIMEOUT), "--isolation", "bwrap",
                                prefix=prefix, timeout=900, env={"TMPDIR": str(shm_folder)})
        assert (out / "gradebook.csv").is_file(), completed.stdout + completed.stderr
        with open(out / "gradebook.csv", newline="") as handle:
            rows = {row.get("learner"): row for row in csv.DictReader(handle)}
    except BaseException:
        tidy(Batch({}, out, "", shm_folder, canary))
        raise
    return Batch(rows, out, completed.stderr, shm_folder, canary)


def tidy(batch: Batch) -> None:
    PTH.unlink(missing_ok=True)
    for leftover in _marked_processes():
        os.kill(leftover, 9)
    shutil.rmtree(batch.shm_folder, ignore_errors=True)


@pytest.fixture(scope="module")
def batch(tmp_path_factory) -> Batch:
    batch = run_batch(tmp_path_factory.mktemp("attacks"), ATTACKERS)
    yield batch
    tidy(batch)


@pytest.fixture(scope="module")
def honest_reference(batch, tmp_path_factory) -> dict:
    """The honest learners' code graded by a standalone `pytest grader`, after the batch
    (so that its snooping, too, would see whatever of the attackers outlived them)."""
    tmp = tmp_path_factory.mktemp("honest")
    plant(ATTACKS / "honest_snoop.py", tmp / "honest", {"@MARK@": MARK, "@SHM_KEY@": str(SHM_KEY)})
    return grade(tmp / "honest", out=tmp / "results.json").results


def scores(row: dict) -> dict[str, int]:
    return {key: int(row[key]) for key in FULL_MARKS}


def _marked_processes() -> list[int]:
    """Processes whose command line holds this test's mark (only attackers' can)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if MARK.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(int(pid))
        except OSError:
            pass
    return [pid for pid in found if pid != os.getpid()]


def test_every_learner_gets_a_row_and_the_sandbox_is_recorded(batch):
    expected = {attacker(n) for n in ATTACKERS} | {honest(n) for n in ATTACKERS}
    assert set(batch.rows) == expected, f"rows: {sorted(batch.rows)}\n{batch.stderr[-3000:]}"
    for learner in set(batch.rows) - {attacker(DEEP_ZIP)}:  # that one is refused before it reaches a sandbox
        extra = batch.results(learner)["extra_data"]
        assert extra["isolation"] == "bwrap" and extra["sandbox"]["mode"] == "bwrap", (learner, extra)
        assert extra["sandbox"]["fresh_per_learner"] is True, extra["sandbox"]
        if os.geteuid() == 0:  # a root host separates users, caps the scratch, and finds cgroups on these machines
            assert extra["sandbox"]["uid"] == "separate" and extra["sandbox"]["cgroup"] != "none", extra["sandbox"]
            assert extra["sandbox"]["scratch_inodes"] == isolation.SCRATCH_INODES, extra["sandbox"]
        if extra["sandbox"]["seccomp"] is not None:
            assert {"add_key", "keyctl", "unshare", "mount", "bpf", "ptrace"} <= set(extra["sandbox"]["seccomp"])
    assert (batch.out / "report.html").is_file(), batch.stderr[-3000:]


@pytest.mark.parametrize("name", ATTACKERS)
def test_the_honest_learner_after_each_attack_is_graded_as_alone(batch, honest_reference, name):
    row = batch.rows[honest(name)]
    reference = {key: e["score"] for key, e in honest_reference["extra_data"]["exercises"].items()}
    assert reference == FULL_MARKS, honest_reference  # the reference itself found nothing
    assert row["status"] == "graded" and scores(row) == reference, (
        f"after {name}: {row}\n{batch.feedback(honest(name))[:3000]}")


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_attacker_earns_what_its_functions_earn(batch, name):
    row = batch.rows[attacker(name)]
    assert row["status"] == "graded", f"{name}: {row}\n{batch.feedback(attacker(name))[:3000]}"
    assert scores(row) == EXPECTED[name], f"{name}: {scores(row)}\n{batch.feedback(attacker(name))[:3000]}"


def test_a_zip_nesting_too_deep_is_an_error_row_that_says_so(batch):
    row = batch.rows[attacker(DEEP_ZIP)]
    assert row["status"] == "error" and f"{DEEP_ZIP_FOLDERS} folders deep, more than" in row["reason"], row


def test_the_kernel_refuses_what_no_grader_needs(batch):
    """Each call of kernel_calls.py, made by real learner code, answered EPERM (seccomp)."""
    facts = batch.results(attacker("kernel_calls"))["extra_data"]["sandbox"]
    if facts["seccomp"] is None:
        pytest.skip(f"no seccomp filter here: {facts.get('notes')}")
    said = batch.feedback(attacker("kernel_calls"))
    if "not x86_64" in said:
        pytest.skip("the attack's system call numbers are x86_64's")
    calls = ("add_key", "keyctl", "request_key", "unshare(user)", "unshare(mount)", "clone(user)", "mount", "setns",
             "bpf", "ptrace", "perf_event_open")
    assert all(f"{call}=Operation not permitted" in said for call in calls), said


def test_learner_text_reaches_no_file_or_terminal_raw_and_is_capped(batch):
    raw = ("\x1b", "\x07", "\u202e")
    for path in batch.out.rglob("*"):
        if path.is_file():
            text = path.read_text(errors="replace")
            assert not any(c in text for c in raw), f"a control character reached {path}"
    assert not any(c in batch.stderr for c in raw), "a control character reached the console"
    feedback = batch.feedback(attacker("loud_message"))
    assert "\\x1b[2J\\x1b[H\\x1b]0;" in feedback and "\\u202e" in feedback, feedback[:3000]
    assert "characters in all)" in feedback and len(feedback) < 64_000, len(feedback)
    assert (batch.out / attacker("loud_message") / "results.json").stat().st_size < 200_000


def test_a_learner_that_fills_its_scratch_with_files_is_stopped_and_told(batch):
    facts = batch.results(attacker("fills_inodes"))["extra_data"]["sandbox"]
    if facts["scratch_inodes"] is None:
        pytest.skip("the scratch is not capped here (the batch does not run as root)")
    feedback = batch.feedback(attacker("fills_inodes"))
    assert "No space left on device" in feedback and "filled the space" in feedback, feedback[:3000]


def test_no_link_leads_the_grader_to_a_host_file(batch):
    assert_no_link_followed(batch)


def assert_no_link_followed(batch: Batch) -> None:
    assert batch.canary.read_text() == CANARY_TEXT, "a host file was written through a link"
    assert not PTH.exists(), f"{PTH} was planted: Python would run it"
    solution_marker = "### BEGIN SOLUTION"
    for path in batch.out.rglob("*"):
        if path.is_file():
            text = path.read_text(errors="replace")
            assert CANARY_TEXT not in text, f"the canary's text reached {path}"
            assert solution_marker not in text, f"the solutions' source reached {path}"
            assert "forged by" not in text, f"a forged store reached {path}"
    with open(batch.out / "gradebook.csv", newline="") as handle:
        assert [row["learner"] for row in csv.DictReader(handle)] == sorted(batch.rows), "the gradebook was rewritten"


def test_learner_code_cannot_reach_its_worker(batch):
    """With a uid of its own, learner code can neither renice, reschedule nor kill the
    worker that runs it (else only its own fresh worker suffers)."""
    facts = batch.results(attacker("renices_its_worker"))["extra_data"]["sandbox"]
    feedback = batch.feedback(attacker("renices_its_worker"))
    if facts["uid"] != "separate":
        pytest.skip("learner code shares the worker's uid: only the next learner's fresh worker is checked")
    assert ": done" not in feedback and "nice 1: Operation not permitted" in feedback, feedback
    assert "killing the worker: Operation not permitted" in batch.feedback(attacker("restore_through_link"))


def test_a_learner_that_fills_memory_is_told_so(batch):
    facts = batch.results(attacker("fills_memory_and_files"))["extra_data"]["sandbox"]
    if facts["cgroup"] == "none":
        pytest.skip("no cgroup: nothing limits a learner's memory as a whole")
    feedback = batch.feedback(attacker("fills_memory_and_files"))
    assert "MemoryError" in feedback and f"{facts['memory_limit_mb']} MB" in feedback, feedback


def test_nothing_is_left_behind(batch):
    assert not _marked_processes(), "processes outlived their learner"
    assert not list(batch.shm_folder.iterdir()), f"left in shared memory: {list(batch.shm_folder.iterdir())}"
    assert not [p for p in Path("/dev/shm").iterdir() if MARK in p.name]
    with open("/proc/sysvipc/shm") as segments:
        assert not [line for line in segments if line.split()[0] == str(SHM_KEY)]


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None, reason="needs root to play a user without it")
def test_without_root_the_batch_falls_back_and_says_so(tmp_path, honest_reference):
    """An instructor without root (played here in a user namespace where the batch is not
    root): learner code shares the grader's uid and no cgroup limits it, which the
    results say; the learners are still graded right, and no link is followed."""
    attacks = ["links_to_host_files"]
    batch = run_batch(tmp_path, attacks, prefix=["unshare", "--user", "--map-user=1000", "--map-group=1000"])
    try:
        facts = batch.results(honest(attacks[0]))["extra_data"]["sandbox"]
        assert facts["uid"] == "shared" and facts["cgroup"] == "none" and facts["memory_limit_mb"] is None, facts
        assert any("not run as root" in note for note in facts["notes"]), facts
        assert scores(batch.rows[attacker(attacks[0])]) == EXPECTED[attacks[0]]
        reference = {key: e["score"] for key, e in honest_reference["extra_data"]["exercises"].items()}
        assert scores(batch.rows[honest(attacks[0])]) == reference, batch.feedback(honest(attacks[0]))[:3000]
        assert_no_link_followed(batch)
        assert not list(batch.shm_folder.iterdir())
    finally:
        tidy(batch)


def test_a_store_put_back_never_follows_a_link(tmp_path):
    """Where learner code shares the grader's uid (no root), it can replace the database
    itself: putting the store back replaces the link, and the file it named is untouched."""
    target = tmp_path / "host-file.txt"
    target.write_text(CANARY_TEXT)
    (tmp_path / "scratch").mkdir()
    (tmp_path / "private").mkdir()
    store = StoreFactory(tmp_path / "scratch", private=tmp_path / "private").new("kept")
    with store.kept() as restore:
        store.db.rename(store.root / "moved.db")
        store.db.symlink_to(target)
        (store.root / "mlflow.db-journal").symlink_to(target)
        restore()
    assert target.read_text() == CANARY_TEXT
    assert store.db.is_file() and not store.db.is_symlink()
    with sqlite3.connect(store.db) as db:
        assert db.execute("SELECT count(*) FROM experiments").fetchone() == (1,)
    assert sorted(p.name for p in store.root.iterdir()) == ["mlflow.db"]
    assert not list((tmp_path / "private").iterdir()), "the copy put back stayed behind"


def test_a_killed_batchs_deep_leftovers_do_not_stop_the_next_batch(tmp_path):
    """What a batch killed mid-learner left in TMPDIR (a learner's tree 5000 deep, links in
    it) is swept by the next batch, which grades as usual."""
    place = tmp_path / "tmp"
    leftover = place / "mlflow-kit-batch-killed01"
    (leftover / "slot-0" / "learner-0").mkdir(parents=True)
    (leftover / "batch.lock").touch()  # no live batch holds its lock
    outside = tmp_path / "outside"
    outside.mkdir()
    kept = outside / "kept.txt"
    kept.write_text(CANARY_TEXT)
    deep_tree(leftover / "slot-0" / "learner-0", outside)
    submissions = tmp_path / "submissions"
    shutil.copytree(REPO / "exercises", submissions / "ada", ignore=shutil.ignore_patterns("__pycache__"))
    completed = grade_batch(submissions, tmp_path / "out", "--workers", "1", "--seed", str(SEED), "--isolation", "bwrap",
                            timeout=300, env={"TMPDIR": str(place)})
    assert completed.returncode == 0, completed.stderr[-3000:]  # every learner graded
    assert (tmp_path / "out" / "report.html").is_file(), completed.stderr[-3000:]
    assert not list(place.iterdir()), list(place.iterdir())
    assert kept.read_text() == CANARY_TEXT
