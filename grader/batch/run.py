"""Grading one learner of a batch, and the batch itself.

Each of ``--workers`` slots is a warm grading host (grader/host/) with a sandboxed worker
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
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from grader.batch import feedback, report
from grader.batch.collect import Submission, SubmissionError, collect, unpack
from grader.batch.gradebook import Gradebook, Row
from grader.batch.progress import Progress
from grader.core import catalogue
from grader.core.store import scratch_parent
from grader.host.client import HostPool

REPO = Path(__file__).resolve().parents[2]
LOG_TAIL_CHARS = 20_000
# Environment variables the grading may see; everything else (tokens, cloud keys, the
# instructor's MLFLOW_* settings) stays behind.
PASSED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "XDG_CACHE_HOME", "TZ")


@dataclass
class Options:
    submissions: Path
    out: Path
    workers: int
    seed: int
    timeout: float  # per submission, wall clock
    call_timeout: float  # per learner call, wall clock
    resume: bool
    isolation: str  # bwrap | limits


def grading_env() -> dict[str, str]:
    env = {k: os.environ[k] for k in PASSED_ENV if k in os.environ}
    env.update(MLFLOW_DISABLE_TELEMETRY="true", PYTHONDONTWRITEBYTECODE="1")
    return env


def grader_args(target: Path, results: Path, options: Options) -> list[str]:
    return [str(REPO / "grader"), "-p", "no:cacheprovider", "-q",
            "--target", str(target), "--seed", str(options.seed), "--grade-json", str(results),
            "--isolation", options.isolation, "--call-timeout", str(options.call_timeout)]


def run_grader(target: Path, private: Path, options: Options, hosts: HostPool) -> tuple[dict, dict | None, str]:
    """(the host's figures, results.json or None, the tail of pytest's output), graded by
    whichever host is free."""
    results_path, log_path = private / "results.json", private / "pytest.log"
    stats = hosts.grade(grader_args(target, results_path, options), cwd=private, log=log_path, timeout=options.timeout)
    log = log_path.read_text(errors="replace")[-LOG_TAIL_CHARS:] if log_path.is_file() else ""
    return stats, _read_json(results_path), log


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


def _failure_message(stats: dict, log: str, options: Options) -> str:
    if stats.get("timed_out"):
        return f"grading took longer than the per-submission limit of {options.timeout:g} s"
    lines = [line for line in log.strip().splitlines() if line.strip()]
    said = next((l for l in reversed(lines) if "error" in l.lower()), lines[-1] if lines else "")
    return f"the grader stopped with exit code {stats.get('exit')}: {said.strip()[:300]}"


def row_for(learner: str, stats: dict, results: dict | None, log: str, options: Options) -> Row:
    max_score = catalogue.load().points
    common = dict(max_score=max_score, seconds=stats.get("seconds", 0.0), seed=options.seed)
    if stats.get("timed_out"):
        return Row(learner, "timeout", message=_failure_message(stats, log, options), **common)
    if results is None or stats.get("exit") not in (0, 1):
        return Row(learner, "error", message=_failure_message(stats, log, options), **common)
    problem = problem_with(results, options.isolation)
    if problem:
        return Row(learner, "error", message=problem, **common)
    exercises = {k: e["score"] for k, e in results["extra_data"]["exercises"].items()}
    return Row(learner, "graded", score=results["score"], exercises=exercises, **{**common, "max_score": results["max_score"]})


def failed_results(row: Row, isolation: str) -> dict:
    """results.json for a learner that could not be graded, in the same format."""
    return {"score": 0, "max_score": row.max_score, "execution_time": row.seconds, "output": row.message,
            "tests": [], "extra_data": {"seed": row.seed, "exercises": {}, "isolation": isolation,
                                        "status": row.status}}


def grade_learner(submission: Submission, options: Options, work_root: Path, hosts: HostPool) -> tuple[Row, dict]:
    """Grade one learner and write their results.json, feedback.md and grading.log."""
    out = options.out / submission.learner
    out.mkdir(parents=True, exist_ok=True)
    private = Path(tempfile.mkdtemp(prefix="learner-", dir=work_root))
    stats: dict = {"peak_rss_kb": 0, "seconds": 0.0}
    try:
        if submission.problem:
            raise SubmissionError(submission.problem)
        target = unpack(submission, private / "submission")
        stats, results, log = run_grader(target, private, options, hosts)
        row = row_for(submission.learner, stats, results, log, options)
        (out / "grading.log").write_text(log)
    except SubmissionError as error:
        row, results = Row(submission.learner, "error", max_score=catalogue.load().points, seed=options.seed,
                           message=str(error)), None
    except Exception as error:  # one learner's surprise must not end the batch
        row, results = Row(submission.learner, "error", max_score=catalogue.load().points, seed=options.seed,
                           message=f"the batch could not grade it ({type(error).__name__}: {error})"), None
    finally:
        shutil.rmtree(private, ignore_errors=True)
    if row.status != "graded":
        results = failed_results(row, options.isolation)
    if stats.get("sandbox"):  # how the learner was fenced in, graded or not
        results["extra_data"].setdefault("sandbox", stats["sandbox"])
    results["extra_data"]["status"] = row.status
    (out / "results.json").write_text(json.dumps(results, indent=2))
    (out / "feedback.md").write_text(feedback.render(row, results if row.status == "graded" else None))
    return row, {"peak_rss_kb": stats.get("peak_rss_kb", 0), "peak_pss_kb": stats.get("peak_pss_kb", 0),
                 "isolation": results["extra_data"].get("isolation"),
                 "message": row.message}


def run_batch(options: Options) -> list[Row]:
    """Grade every learner not yet in the gradebook, ``options.workers`` at a time."""
    options.out.mkdir(parents=True, exist_ok=True)
    gradebook = Gradebook(options.out / "gradebook.csv", resume=options.resume)
    done = gradebook.learners_done() if options.resume else set()
    todo = [s for s in collect(options.submissions) if s.learner not in done]
    progress = Progress(len(todo))
    finished: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="mlflow-kit-batch-", dir=scratch_parent()) as work_root, \
            HostPool(Path(work_root), min(max(1, options.workers), len(todo)), options.isolation,
                     options.call_timeout, grading_env()) as hosts:
        _grade_all(todo, options, Path(work_root), hosts, gradebook, progress, finished)
    progress.close()
    report.write(options.out, gradebook.rows())
    return finished


def _grade_all(todo: list[Submission], options: Options, work_root: Path, hosts: HostPool,
               gradebook: Gradebook, progress: Progress, finished: list[Row]) -> None:
    with ThreadPoolExecutor(max(1, len(hosts.hosts))) as pool:
        futures = {pool.submit(grade_learner, s, options, work_root, hosts): s for s in todo}
        try:
            for future in as_completed(futures):
                row, facts = future.result()
                gradebook.append(row)
                finished.append(row)
                progress.update(row)
                (options.out / options_facts_name(row.learner)).write_text(json.dumps(facts))
        except KeyboardInterrupt:
            for future in futures:
                future.cancel()
            hosts.stop()  # ends the gradings in progress, and what they started
            raise


def options_facts_name(learner: str) -> str:
    """Per-learner facts for the report that are not in results.json (peak memory)."""
    return f"{learner}/batch.json"
