"""Grading a batch on this machine: ``--workers`` slots, each a warm grading host
(grader/host/) with a sandboxed worker of its own, a thread per slot feeding it learner
after learner. The batch's client (run.py) takes the outcomes as they come."""
from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import ExitStack
from dataclasses import replace

from grader.batch import scratch
from grader.batch.collect import Submission, pack
from grader.batch.grading import GradingOutcome, GradingSettings, grade_packed, grading_env
from grader.core.store import scratch_parent
from grader.host.client import HostPool
from grader.sandbox import isolation


class LocalEngine:
    """A context: the batch's scratch folder and ``slots`` grading hosts, started in the
    calling thread (a host dies with the thread that started it), gone on the way out."""

    def __init__(self, settings: GradingSettings, slots: int):
        mode = isolation.best_mode() if settings.isolation == "auto" else settings.isolation
        self.settings, self.slots = replace(settings, isolation=mode), max(1, slots)
        self.description = f"{self.slots} grading slot(s) on this machine"
        self._resources = ExitStack()

    def __enter__(self) -> "LocalEngine":
        with ExitStack() as starting:
            self.work_root = starting.enter_context(scratch.batch_folder(scratch_parent()))
            self.hosts = starting.enter_context(HostPool(
                self.work_root, self.slots, self.settings.isolation, self.settings.call_timeout,
                grading_env(self.work_root / "tmp")))
            self._resources = starting.pop_all()
        return self

    def __exit__(self, *exc) -> None:
        self._resources.close()

    def outcomes(self, todo: list[Submission], stop: threading.Event) -> Iterator[tuple[Submission, GradingOutcome]]:
        """Each learner of ``todo`` with their outcome, in the order they finish, until
        ``stop``: then the gradings in progress end and are dropped."""
        with ThreadPoolExecutor(self.slots) as pool:
            pending: dict[Future, Submission] = {pool.submit(self._grade, s, stop): s for s in todo}
            try:
                while pending and not stop.is_set():
                    done, _ = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                    for future in [f for f in pending if f in done]:  # in the order given, not a set's
                        yield pending.pop(future), future.result()
            finally:
                for future in pending:
                    future.cancel()
                if pending:
                    self.hosts.stop()  # ends the gradings in progress, and what they started

    def _grade(self, submission: Submission, stop: threading.Event) -> GradingOutcome:
        return grade_packed(pack(submission), self.settings, self.work_root, self.hosts, stop)
