"""Grading one learner of a batch, the same wherever it runs: in a thread of the batch on
this machine (local_engine.py) or in a task on a Dask worker (dask_engine.py).

``grade_packed`` takes a submission's bytes (collect.Packed), unpacks them into a private
copy in a fresh temporary folder, and runs ``pytest grader --target COPY --isolation MODE``
in a scoring process that one of the warm grading hosts (grader/host/) forks for it. That
process never runs learner code (the host's sandboxed worker does) and reads back only JSON
and .npy. The host enforces the per-submission wall clock and kills everything the grading
started. What comes back (GradingOutcome: the row, results.json as the scoring process
wrote it after checking it is consistent, the tail of its output) is all the batch's client
needs: the client alone writes the gradebook and the learner's files.
"""
from __future__ import annotations

import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from grader.batch.collect import Packed, Source, SubmissionError, unpack
from grader.batch.gradebook import Row
from grader.core import catalogue
from grader.core.results import Results, ResultsError
from grader.ground import files
from grader.core.options import grading_args
from grader.core.text import shown, visible
from grader.host.client import HostPool, HostReply

LOG_TAIL_CHARS = 20_000
REASON_CHARS = 1000  # a row's reason: a cell of the gradebook
# Environment variables the grading may see; everything else (tokens, cloud keys, the
# instructor's MLFLOW_* settings) stays behind.
PASSED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "XDG_CACHE_HOME", "TZ")
# A grading host that dies under a learner (killed, out of memory) is the machine's fault,
# not the learner's: the learner is graded again by a fresh host, at most this many times.
REGRADES_AFTER_A_HOST_DIES = 2


class EngineError(Exception):
    """An engine cannot grade (start, or go on) as asked; in words for the instructor."""


@dataclass(frozen=True)
class GradingSettings:
    """What grading one learner needs to know; the same for every learner of a batch."""

    seed: int
    timeout: float  # per submission, wall clock
    call_timeout: float  # per learner call, wall clock
    isolation: str  # bwrap | limits; auto until the engine has chosen


@dataclass
class GradingOutcome:
    """One learner's grading, as it travels back to the batch's client."""

    row: Row
    results: Results | None  # results.json, when the scoring process wrote one the batch can trust
    log: str  # the tail of the grader's output, temporary paths scrubbed
    source: Source | None  # how the learner knows their code, for the feedback
    reply: HostReply  # what the grading host said of it (exit, time, memory, sandbox, host_lost)


def grading_env(temporary: Path) -> dict[str, str]:
    """The hosts' environment. Their temporary files go in ``temporary``, inside the batch's
    scratch folder: a host killed mid-way (Ctrl-C, a hung grading) leaves nothing elsewhere."""
    env = {k: os.environ[k] for k in PASSED_ENV if k in os.environ}
    temporary.mkdir(exist_ok=True)
    env.update(MLFLOW_DISABLE_TELEMETRY="true", PYTHONDONTWRITEBYTECODE="1", TMPDIR=str(temporary))
    return env


def grade_packed(packed: Packed, settings: GradingSettings, work_root: Path, hosts: HostPool,
                 stop: threading.Event) -> GradingOutcome:
    """Grade one learner with whichever of ``hosts`` is free; ``work_root`` is the batch's
    scratch folder on this machine. ``stop`` ends a notebook's reading early and any regrade."""
    for attempt in range(1 + REGRADES_AFTER_A_HOST_DIES):
        outcome = _grade_once(packed, settings, work_root, hosts, stop)
        if not outcome.reply.host_lost or stop.is_set():
            if attempt:  # the row says so: an instructor may wonder why it took longer
                retried = f"graded again after its grading host died ({attempt} time{'s' * (attempt > 1)})"
                outcome.row.reason = f"{retried}; {outcome.row.reason}" if outcome.row.reason else retried
            return outcome
    outcome.row = error_row(packed.learner, f"its grading host died while grading it, {attempt + 1} times", settings)
    return outcome


def _grade_once(packed: Packed, settings: GradingSettings, work_root: Path, hosts: HostPool,
                stop: threading.Event) -> GradingOutcome:
    """In a private copy of the submission, removed on the way out."""
    private = Path(tempfile.mkdtemp(prefix="learner-", dir=work_root))
    reply = HostReply(None, reason="not graded")
    results, log, source = None, "", None
    try:
        unpacked = unpack(packed, private / "submission", settings.timeout, stop)
        source = unpacked.source
        reply, results, log = run_grader(unpacked.target, private, settings, hosts,
                                         max(1.0, settings.timeout - unpacked.seconds))
        row = row_for(packed.learner, reply, results, log, settings)
    except SubmissionError as error:
        row = error_row(packed.learner, str(error), settings)
    except Exception as error:  # one learner's surprise must not end the batch
        row = error_row(packed.learner, f"the batch could not grade it ({type(error).__name__}: {error})", settings)
    finally:
        files.remove_tree(private)
    row.reason = shown(_scrubbed(row.reason, private, work_root), REASON_CHARS)
    log = visible(_scrubbed(log, private, work_root))
    return GradingOutcome(row, results if isinstance(results, Results) else None, log, source, reply)


def grader_args(target: Path, results: Path, settings: GradingSettings) -> list[str]:
    return grading_args(target, seed=settings.seed, results=results, isolation=settings.isolation, progress=False,
                        call_timeout=settings.call_timeout)


def run_grader(target: Path, private: Path, settings: GradingSettings, hosts: HostPool,
               timeout: float) -> tuple[HostReply, Results | ResultsError | None, str]:
    """(the host's reply, results.json as read, the tail of pytest's output), graded by
    whichever host is free within ``timeout`` seconds. results.json as read: None when the
    scoring process left none that parses (its output says why), a ResultsError when what
    it left is not results.json."""
    results_path, log_path = private / "results.json", private / "pytest.log"
    reply = hosts.grade(grader_args(target, results_path, settings), cwd=private, log=log_path, timeout=timeout)
    log = log_path.read_text(errors="replace")[-LOG_TAIL_CHARS:] if log_path.is_file() else ""
    try:
        return reply, Results.read(results_path), log
    except ResultsError as error:
        return reply, None if "not JSON" in str(error) or not results_path.exists() else error, log


def _failure_message(reply: HostReply, log: str, settings: GradingSettings) -> str:
    if reply.timed_out:
        return f"grading took longer than the per-submission limit of {settings.timeout:g} s"
    if reply.reason:
        return f"the grader could not grade it: {reply.reason}"
    lines = [line for line in log.strip().splitlines() if line.strip()]
    said = next((l for l in reversed(lines) if "error" in l.lower()), lines[-1] if lines else "")
    return f"the grader stopped with exit code {reply.exit}: {said.strip()[:300]}"


def row_for(learner: str, reply: HostReply, results: Results | ResultsError | None, log: str,
            settings: GradingSettings) -> Row:
    max_score = catalogue.load().points
    common = dict(max_score=max_score, seconds=reply.seconds, seed=settings.seed)
    if reply.timed_out:
        return Row(learner, "timeout", reason=_failure_message(reply, log, settings), **common)
    if results is None or not reply.graded:
        return Row(learner, "error", reason=_failure_message(reply, log, settings), **common)
    problem = str(results) if isinstance(results, ResultsError) else results.problem(
        {e.key: e.points for e in catalogue.load().exercises}, settings.isolation)
    if problem:
        return Row(learner, "error", reason=problem, **common)
    exercises = {key: entry.score for key, entry in results.exercises.items()}
    return Row(learner, "graded", score=results.score, exercises=exercises, **{**common, "max_score": results.max_score})


def error_row(learner: str, reason: str, settings: GradingSettings) -> Row:
    return Row(learner, "error", max_score=catalogue.load().points, seed=settings.seed, reason=shown(reason, REASON_CHARS))


def _scrubbed(text: str, private: Path, work_root: Path) -> str:
    """The batch's temporary folders mean nothing to a learner or an instructor."""
    return text.replace(str(private), "<submission copy>").replace(str(work_root), "<batch scratch>")
