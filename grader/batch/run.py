"""The batch's client: it finds the learners, has an engine grade them, and alone writes
what comes back, as it comes: the gradebook's rows, each learner's files, the progress bar,
then the class report.

The engine is this machine's grading hosts (local_engine.py, ``--workers`` at a time) or a
Dask cluster (dask_engine.py, ``--dask``); both grade a learner with grading.py and hand
back the same GradingOutcome, so everything here is the same for both.
"""
from __future__ import annotations

import json
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from grader.batch import feedback, report
from grader.batch.collect import Submission, collect
from grader.batch.gradebook import Gradebook, Row, columns
from grader.batch.grading import EngineError, GradingOutcome, GradingSettings, error_row
from grader.batch.outputs import FACTS, FEEDBACK, GRADEBOOK, LOG, RESULTS, OutputError, write_learner_files
from grader.batch.progress import Progress
from grader.batch.roster import Roster, same_name
from grader.core import catalogue
from grader.core.results import Results
from grader.core.text import printable, visible
from grader.ground.exits import Exit


@dataclass
class Options:
    submissions: Path
    out: Path
    grading: GradingSettings
    slots: int  # on this machine: learners graded at once (--workers; and Dask workers of --dask local)
    dask: str | None = None  # --dask: a Dask scheduler's address, or local[:N]
    dask_tls: dict[str, str] = field(default_factory=dict)  # --tls-*: distributed.Security's tls_* settings
    keep: bool = False  # go on with the gradebook's rows (--resume, --regrade)
    regrade: tuple[str, ...] = ()  # grade only these learners again, replacing their rows
    roster: Roster | None = None
    excel: bool = False  # a new gradebook.csv starts with a UTF-8 byte order mark
    duplicates: str = "error"  # entries naming one learner: an error row, or the newest graded (collect.py)
    similarity: object = None  # --similarity: similarity.Settings, compared once every learner is graded


REGRADE_FAILED = "failed"  # --regrade failed


class BatchError(Exception):
    """The batch cannot start as asked; in words for the instructor."""


class Stopped(Exception):
    """The batch stopped before every learner was graded: the rows written stay, the
    learners being graded were dropped, and ``--resume`` grades the rest."""

    def __init__(self, signum: int | None, reason: str | None, written: int, left: list[str]):
        super().__init__(reason or signal.Signals(signum).name)
        self.signum, self.reason = signum, reason  # the signal that stopped it, or what stopped the engine
        self.exit_code = Exit.signalled(signum) if signum else Exit.REFUSED
        self.written, self.left = written, left


def _record(submission: Submission, outcome: GradingOutcome, settings: GradingSettings, options: Options) -> Row:
    """Write the learner's results.json, feedback.md and grading.log, and return the row
    for the gradebook (an error row when the files cannot be written)."""
    row = outcome.row
    if submission.note:  # which of several entries was graded: on the row and in the feedback
        row.reason = f"{submission.note}; {row.reason}" if row.reason else submission.note
    if submission.named_ok:  # else its name cannot be a folder in OUT: the row says why
        try:
            write_learner_files(options.out, submission.learner, _learner_files(outcome, settings))
        except OutputError as error:
            row = error_row(submission.learner, str(error), settings)
    row.student = _student(options.roster, submission.learner)
    return row


def _learner_files(outcome: GradingOutcome, settings: GradingSettings) -> dict[str, str]:
    row, results, reply = outcome.row, outcome.results, outcome.reply
    if row.status != "graded" or results is None:
        results = Results.not_graded(max_score=row.max_score, seconds=row.seconds, reason=row.reason, seed=row.seed,
                                     isolation=settings.isolation)
    if reply.sandbox:  # how the learner was fenced in, graded or not
        results.extra.setdefault("sandbox", reply.sandbox)
    results.extra["status"] = row.status
    facts = {"peak_rss_kb": reply.peak_rss_kb, "peak_pss_kb": reply.peak_pss_kb,
             "isolation": results.extra.get("isolation"), "sandbox": results.extra.get("sandbox")}
    return {RESULTS: results.dumps(),
            FEEDBACK: feedback.render(row, results if row.status == "graded" else None, outcome.source),
            LOG: visible(outcome.log or row.reason + "\n"), FACTS: json.dumps(facts)}


def _student(roster: Roster | None, learner: str) -> dict[str, str]:
    if roster is None:
        return {}
    return roster.student(learner) or {c: "" for c in roster.columns}


def _todo(submissions: list[Submission], gradebook: Gradebook, options: Options) -> list[Submission]:
    if options.regrade == (REGRADE_FAILED,):  # every row not graded (error, timeout) or missing, handed in since
        named = {same_name(s.learner): s for s in submissions}
        failed = [row["learner"] for row in gradebook.rows() if row["status"] != "graded"]
        return [named[same_name(n)] for n in failed if same_name(n) in named]
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
            gradebook.write(Row(learner, "missing", max_score=catalogue.load().points, seed=options.grading.seed,
                                reason="no submission", student=options.roster.student(learner)))


def run_batch(options: Options) -> list[Row]:
    """Grade the learners this run is for. Raises Stopped when SIGINT, SIGTERM or the
    engine stops it, BatchError when it cannot start."""
    gradebook, todo = _prepare(options)
    stop, finished = threading.Event(), []
    with stopping_on_signals(stop) as received:
        try:
            _grade_all(options, gradebook, todo, stop, finished)
        except EngineError as error:
            raise _stopped(None, str(error), todo, finished) from None
    if received and len(finished) < len(todo):
        raise _stopped(received[0], None, todo, finished)
    similar = ""
    if options.similarity is not None:
        from grader.batch import similarity

        found = similarity.run(options.submissions, options.similarity, options.grading.timeout)
        similarity.write(options.out, found)
        similar = similarity.section(found)
    report.write(options.out, gradebook.rows(), list(options.roster.columns) if options.roster else [], similar)
    return finished


def _stopped(signum: int | None, reason: str | None, todo: list[Submission], finished: list[Row]) -> Stopped:
    written = {row.learner for row in finished}
    return Stopped(signum, reason, len(finished), [s.learner for s in todo if s.learner not in written])


def _prepare(options: Options) -> tuple[Gradebook, list[Submission]]:
    """(the gradebook, with the roster's missing students in it; the learners to grade)."""
    options.out.mkdir(parents=True, exist_ok=True)
    submissions = collect(options.submissions, options.duplicates)
    header = columns(options.roster.columns if options.roster else ())
    gradebook = Gradebook(options.out / GRADEBOOK, header, keep=options.keep, excel=options.excel)
    todo = _todo(submissions, gradebook, options)
    _roster_rows(submissions, gradebook, options)
    return gradebook, todo


def _grade_all(options: Options, gradebook: Gradebook, todo: list[Submission], stop: threading.Event,
               finished: list[Row]) -> None:
    """Write each learner's row and files as the engine hands back their outcome, until all
    are written or ``stop``; ``finished`` gets the rows."""
    if not todo:
        Progress(0).close()
        return
    with _engine(options, len(todo)) as engine:
        _announce(engine)
        progress = Progress(len(todo))
        try:
            for submission, outcome in engine.outcomes(todo, stop):
                row = _record(submission, outcome, engine.settings, options)
                gradebook.write(row)
                finished.append(row)
                progress.update(row)
        finally:
            progress.close()


def _engine(options: Options, learners: int):
    if options.dask:
        from grader.batch.dask_engine import DaskEngine  # only a batch on Dask imports Dask

        return DaskEngine(options.dask, options.grading, min(options.slots, learners), options.dask_tls)
    from grader.batch.local_engine import LocalEngine

    return LocalEngine(options.grading, min(options.slots, learners))


def _announce(engine) -> None:
    mode = engine.settings.isolation
    print(f"grading on {engine.description}, isolation {mode}", file=sys.stderr)
    if mode != "bwrap":
        print(f"warning: isolation {mode}: learner code runs with process limits only, not bubblewrap "
              "(it can read the grading machine's files and reach the network)", file=sys.stderr)


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
