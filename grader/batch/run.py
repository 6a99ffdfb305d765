"""Grading one learner of a batch, and the batch itself.

Each of the ``--workers`` slots is a warm grading host (grader/host/) with a sandboxed worker
of its own; a slot grades one learner at a time. Per learner: a private copy of the
submission in a fresh temporary folder, then ``pytest grader --target COPY --isolation
MODE`` in a scoring process the host forks for it. That process never runs learner code
(the worker does) and reads back only JSON and .npy. The host enforces the per-submission
wall clock and kills everything the grading started. The orchestrator (this module) then
reads the results.json the scoring process wrote, checks it is consistent, and writes the row.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from grader.batch import feedback, report, scratch
from grader.batch.collect import Source, Submission, SubmissionError, collect, unpack
from grader.batch.gradebook import Gradebook, Row, columns
from grader.batch.outputs import FACTS, FEEDBACK, GRADEBOOK, LOG, RESULTS, OutputError, printable, write_learner_files
from grader.batch.progress import Progress
from grader.batch.roster import Roster, same_name
from grader.core import catalogue
from grader.core.options import grading_args
from grader.core.store import scratch_parent
from grader.host.client import HostPool, HostReply

LOG_TAIL_CHARS = 20_000
# Environment variables the grading may see; everything else (tokens, cloud keys, the
# instructor's MLFLOW_* settings) stays behind.
PASSED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "XDG_CACHE_HOME", "TZ")


@dataclass
class Options:
    submissions: Path
    out: Path
    slots: int  # learners graded at once (--workers), each by a grading host of its own
    seed: int
    timeout: float  # per submission, wall clock
    call_timeout: float  # per learner call, wall clock
    isolation: str  # bwrap | limits
    keep: bool = False  # go on with the gradebook's rows (--resume, --regrade)
    regrade: tuple[str, ...] = ()  # grade only these learners again, replacing their rows
    roster: Roster | None = None
    excel: bool = False  # a new gradebook.csv starts with a UTF-8 byte order mark


class BatchError(Exception):
    """The batch cannot start as asked; in words for the instructor."""


class Interrupted(Exception):
    """SIGINT or SIGTERM stopped the batch: the learners being graded were dropped."""

    def __init__(self, signum: int, written: int, left: list[str]):
        super().__init__(signal.Signals(signum).name)
        self.signum, self.written, self.left = signum, written, left


def grading_env(temporary: Path) -> dict[str, str]:
    """The hosts' environment. Their temporary files go in ``temporary``, inside the batch's
    scratch folder: a host killed mid-way (Ctrl-C, a hung grading) leaves nothing elsewhere."""
    env = {k: os.environ[k] for k in PASSED_ENV if k in os.environ}
    temporary.mkdir(exist_ok=True)
    env.update(MLFLOW_DISABLE_TELEMETRY="true", PYTHONDONTWRITEBYTECODE="1", TMPDIR=str(temporary))
    return env


def grader_args(target: Path, results: Path, options: Options) -> list[str]:
    return grading_args(target, seed=options.seed, results=results, isolation=options.isolation,
                       call_timeout=options.call_timeout)


def run_grader(target: Path, private: Path, options: Options, hosts: HostPool,
               timeout: float) -> tuple[HostReply, dict | None, str]:
    """(the host's reply, results.json or None, the tail of pytest's output), graded by
    whichever host is free within ``timeout`` seconds."""
    results_path, log_path = private / "results.json", private / "pytest.log"
    reply = hosts.grade(grader_args(target, results_path, options), cwd=private, log=log_path, timeout=timeout)
    log = log_path.read_text(errors="replace")[-LOG_TAIL_CHARS:] if log_path.is_file() else ""
    return reply, _read_json(results_path), log


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def problem_with(results: dict, isolation: str) -> str | None:
    """Why a results.json cannot be trusted as the scoring process's own, if it cannot."""
    try:
        exercises = results["extra_data"]["exercises"]
        maxima = {e.key: e.points for e in catalogue.load().exercises}
        if set(exercises) - set(maxima):
            return "results.json names functions the catalogue does not have"
        if any(not 0 <= e["score"] <= min(e["max_score"], maxima[k]) for k, e in exercises.items()):
            return "results.json holds impossible scores"
        if results["score"] != sum(e["score"] for e in exercises.values()):
            return "results.json's total does not add up"
        if results["extra_data"].get("isolation") != isolation:
            return "results.json was not written by this batch's grading"
    except (KeyError, TypeError, AttributeError):
        return "results.json is malformed"
    return None


def _failure_message(reply: HostReply, log: str, options: Options) -> str:
    if reply.timed_out:
        return f"grading took longer than the per-submission limit of {options.timeout:g} s"
    if reply.reason:
        return f"the grader could not grade it: {reply.reason}"
    lines = [line for line in log.strip().splitlines() if line.strip()]
    said = next((l for l in reversed(lines) if "error" in l.lower()), lines[-1] if lines else "")
    return f"the grader stopped with exit code {reply.exit}: {said.strip()[:300]}"


def row_for(learner: str, reply: HostReply, results: dict | None, log: str, options: Options) -> Row:
    max_score = catalogue.load().points
    common = dict(max_score=max_score, seconds=reply.seconds, seed=options.seed)
    if reply.timed_out:
        return Row(learner, "timeout", reason=_failure_message(reply, log, options), **common)
    if results is None or not reply.graded:
        return Row(learner, "error", reason=_failure_message(reply, log, options), **common)
    problem = problem_with(results, options.isolation)
    if problem:
        return Row(learner, "error", reason=problem, **common)
    exercises = {k: e["score"] for k, e in results["extra_data"]["exercises"].items()}
    return Row(learner, "graded", score=results["score"], exercises=exercises, **{**common, "max_score": results["max_score"]})


def failed_results(row: Row, isolation: str) -> dict:
    """results.json for a learner that could not be graded, in the same format."""
    return {"score": 0, "max_score": row.max_score, "execution_time": row.seconds, "output": row.reason,
            "tests": [], "extra_data": {"seed": row.seed, "exercises": {}, "isolation": isolation,
                                        "status": row.status}}


def _error_row(learner: str, reason: str, options: Options) -> Row:
    return Row(learner, "error", max_score=catalogue.load().points, seed=options.seed, reason=reason)


def _scrubbed(text: str, private: Path, work_root: Path) -> str:
    """The batch's temporary folders mean nothing to a learner or an instructor."""
    return text.replace(str(private), "<submission copy>").replace(str(work_root), "<batch scratch>")


def grade_learner(submission: Submission, options: Options, work_root: Path, hosts: HostPool,
                  stop: threading.Event) -> Row | None:
    """Grade one learner and write their results.json, feedback.md and grading.log. None
    when the batch was stopped meanwhile: then nothing of theirs is written."""
    row, results, log, source, reply = _grade(submission, options, work_root, hosts, stop)
    if stop.is_set():
        return None
    if submission.named_ok:  # else its name cannot be a folder in OUT: the row says why
        try:
            write_learner_files(options.out, submission.learner, _learner_files(row, results, log, source, reply, options))
        except OutputError as error:
            row = _error_row(submission.learner, str(error), options)
    row.student = _student(options.roster, submission.learner)
    return row


def _grade(submission: Submission, options: Options, work_root: Path, hosts: HostPool,
           stop: threading.Event) -> tuple[Row, dict | None, str, Source | None, HostReply]:
    """(the row, results.json, the grader's output, how the learner knows their code, the
    host's reply), in a private copy of the submission removed on the way out."""
    private = Path(tempfile.mkdtemp(prefix="learner-", dir=work_root))
    reply = HostReply(None, reason="not graded")
    results, log, source = None, "", None
    try:
        unpacked = unpack(submission, private / "submission", options.timeout, stop)
        source = unpacked.source
        reply, results, log = run_grader(unpacked.target, private, options, hosts,
                                         max(1.0, options.timeout - unpacked.seconds))
        row = row_for(submission.learner, reply, results, log, options)
    except SubmissionError as error:
        row = _error_row(submission.learner, str(error), options)
    except Exception as error:  # one learner's surprise must not end the batch
        row = _error_row(submission.learner, f"the batch could not grade it ({type(error).__name__}: {error})", options)
    finally:
        shutil.rmtree(private, ignore_errors=True)
    row.reason, log = _scrubbed(row.reason, private, work_root), _scrubbed(log, private, work_root)
    return row, results, log, source, reply


def _learner_files(row: Row, results: dict | None, log: str, source: Source | None, reply: HostReply,
                   options: Options) -> dict[str, str]:
    if row.status != "graded" or results is None:
        results = failed_results(row, options.isolation)
    if reply.sandbox:  # how the learner was fenced in, graded or not
        results["extra_data"].setdefault("sandbox", reply.sandbox)
    results["extra_data"]["status"] = row.status
    facts = {"peak_rss_kb": reply.peak_rss_kb, "peak_pss_kb": reply.peak_pss_kb,
             "isolation": results["extra_data"].get("isolation"), "sandbox": results["extra_data"].get("sandbox")}
    return {RESULTS: json.dumps(results, indent=2),
            FEEDBACK: feedback.render(row, results if row.status == "graded" else None, source),
            LOG: log or row.reason + "\n", FACTS: json.dumps(facts)}


def _student(roster: Roster | None, learner: str) -> dict[str, str]:
    if roster is None:
        return {}
    return roster.student(learner) or {c: "" for c in roster.columns}


def _todo(submissions: list[Submission], gradebook: Gradebook, options: Options) -> list[Submission]:
    if options.regrade:
        named = {same_name(s.learner): s for s in submissions}
        unknown = [n for n in options.regrade if same_name(n) not in named]
        if unknown:
            raise BatchError(f"--regrade: {options.submissions} has no submission named {', '.join(unknown)}")
        return [named[same_name(n)] for n in dict.fromkeys(options.regrade)]
    if not options.keep:
        return submissions
    done = {row["learner"] for row in gradebook.rows() if row["status"] != "missing"}
    return [s for s in submissions if s.learner not in done]


def _roster_rows(submissions: list[Submission], gradebook: Gradebook, options: Options) -> None:
    """A ``missing`` row for each roster student without a submission, and a warning for
    each submission the roster does not know."""
    if options.roster is None:
        return
    submitted = {same_name(s.learner) for s in submissions}
    unknown = [s.learner for s in submissions if options.roster.student(s.learner) is None]
    if unknown:
        print(f"warning: {len(unknown)} submission(s) have no entry in the roster: "
              f"{printable(', '.join(unknown))}", file=sys.stderr)
    seen = {same_name(learner) for learner in gradebook.seen()}
    for learner in options.roster.learners():
        if learner not in submitted and learner not in seen:
            gradebook.write(Row(learner, "missing", max_score=catalogue.load().points, seed=options.seed,
                                reason="no submission", student=options.roster.student(learner)))


def run_batch(options: Options) -> list[Row]:
    """Grade the learners this run is for, ``options.slots`` at a time. Raises
    Interrupted when SIGINT or SIGTERM stops it, BatchError when it cannot start."""
    stop = threading.Event()
    with stopping_on_signals(stop) as received:
        gradebook, todo, finished = _run(options, stop)
    if received and len(finished) < len(todo):
        written = {row.learner for row in finished}
        raise Interrupted(received[0], len(finished), [s.learner for s in todo if s.learner not in written])
    report.write(options.out, gradebook.rows(), list(options.roster.columns) if options.roster else [])
    return finished


def _run(options: Options, stop: threading.Event) -> tuple[Gradebook, list[Submission], list[Row]]:
    """(the gradebook, the learners to grade, the rows written), until done or ``stop``."""
    options.out.mkdir(parents=True, exist_ok=True)
    submissions = collect(options.submissions)
    header = columns(options.roster.columns if options.roster else ())
    gradebook = Gradebook(options.out / GRADEBOOK, header, keep=options.keep, excel=options.excel)
    todo = _todo(submissions, gradebook, options)
    _roster_rows(submissions, gradebook, options)
    progress = Progress(len(todo))
    finished: list[Row] = []
    if todo:
        with scratch.batch_folder(scratch_parent()) as work_root, \
                HostPool(work_root, min(max(1, options.slots), len(todo)), options.isolation,
                         options.call_timeout, grading_env(work_root / "tmp")) as hosts:
            _grade_all(todo, options, work_root, hosts, stop, lambda row: _record(row, gradebook, progress, finished))
    progress.close()
    return gradebook, todo, finished


def _record(row: Row, gradebook: Gradebook, progress: Progress, finished: list[Row]) -> None:
    gradebook.write(row)
    finished.append(row)
    progress.update(row)


@contextmanager
def stopping_on_signals(stop: threading.Event) -> Iterator[list[int]]:
    """SIGINT and SIGTERM set ``stop`` (and are listed) instead of raising where they land."""
    received: list[int] = []

    def handler(signum, _frame) -> None:
        received.append(signum)
        stop.set()

    if threading.current_thread() is not threading.main_thread():
        yield received
        return
    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield received
    finally:
        for number, old in previous.items():
            signal.signal(number, old)


def _grade_all(todo: list[Submission], options: Options, work_root: Path, hosts: HostPool,
               stop: threading.Event, record) -> None:
    with ThreadPoolExecutor(max(1, len(hosts.hosts))) as pool:
        pending: set[Future] = {pool.submit(grade_learner, s, options, work_root, hosts, stop) for s in todo}
        while pending and not stop.is_set():
            done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            for future in done:
                _record_result(future, record)
        if stop.is_set():
            for future in pending:
                future.cancel()
            hosts.stop()  # ends the gradings in progress, and what they started
            for future in pending:
                if not future.cancelled():
                    _record_result(future, record)  # a learner whose files were all written


def _record_result(future: Future, record) -> None:
    row = future.result()
    if row is not None:
        record(row)
