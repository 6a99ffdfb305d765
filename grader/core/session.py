"""A grading session: one learner's code, one seed, one sandbox, many fresh stores.

Checks talk to the learner's code through ``Learner``, bound to one curriculum function:
``learner.call(store, *args)`` runs that function in the sandbox against ``store`` and
returns what came back, or raises the outcome (not attempted, error, timeout...);
``learner.probe`` and ``learner.prepare`` run a sandbox step of the checks' own there
(grader/sandbox/protocol.py's ``sandbox_step``); ``learner.start_service`` runs one whose
processes stay (a server later calls use, on the sandbox's own loopback) until stopped.

Threads: each check class's ``scenario`` runs on a thread of the session's scenario pool,
ahead of that class's tests (which wait for it only when they read it); a scenario may
start learner calls on the call pool (``Learner.start``) and go on meanwhile. The sandbox
serves the calls of every thread at once.
"""
from __future__ import annotations

import threading
import time
from collections import defaultdict
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from typing import Callable

from grader.core import catalogue
from grader.core.inputs import Inputs
from grader.core.source import compile_problem, is_untouched_stub, read_module
from grader.core.outcomes import BrokenModule, LearnerError, LearnerOutcome, notes_of, outcome_of
from grader.core.store import Store, StoreFactory
from grader.sandbox.protocol import DEFAULT_CALL_TIMEOUT, CallResult, Runner, Status, call_request, step_request

# Scenarios run ahead of their checks, a few at once: while one waits on learner code in the
# sandbox, another prepares its store. Three keeps two cores busy without crowding them.
SCENARIO_THREADS = 3
# Calls a scenario starts without waiting for them (Learner.start), at most this many at once.
CALL_THREADS = 6
# A step of the grader's own (a set-up, a service) runs within this, or the call timeout if
# longer: a short --call-timeout, meant for learner code that hangs, must not fail it.
GRADER_STEP_TIMEOUT = DEFAULT_CALL_TIMEOUT


MAX_NOTES = 10  # per function: learner code decides how many warnings and ignored calls it makes


class Scenario(SimpleNamespace):
    """What a check class's ``scenario`` set up and got from the learner, by name
    (``scenario.store``, ``scenario.call``): the one shape every check reads."""


class GradingSession:
    def __init__(
        self,
        sources: Path,
        scratch: Path,
        seed: int,
        sandbox: Runner,
        *,
        timeout: float = DEFAULT_CALL_TIMEOUT,
        stores: StoreFactory | None = None,
        sqlite_stores: StoreFactory | None = None,
    ):
        self.sources = sources
        # Read once, before any learner code runs: learner code can write the copy.
        self.source_texts = {m.name: read_module(sources, m.name) for m in catalogue.load().modules}
        self.scratch = scratch
        self.seed = seed
        self.timeout = timeout
        self.stores = stores or StoreFactory(scratch, sandbox.template)  # or a tracking server's (grader/core/tracking_server.py)
        # SQLite stores even when ``stores`` are a tracking server's (a check serving its own).
        self.sqlite_stores = sqlite_stores or (self.stores if isinstance(self.stores, StoreFactory)
                                               else StoreFactory(scratch / "sqlite-stores", sandbox.template))
        self.sandbox = sandbox
        self.timings: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        self._timing_lock = threading.Lock()
        self.notes: dict[str, list[str]] = {}  # module.function -> deprecations, ignored calls (outcomes.notes_of)
        self._scenarios: dict[str, Future] = {}
        self._services: list[Service] = []  # kept running in the sandbox: stopped at the latest by close()
        self._services_lock = threading.Lock()
        self._pool = ThreadPoolExecutor(SCENARIO_THREADS, thread_name_prefix="scenario")
        self.calls = ThreadPoolExecutor(CALL_THREADS, thread_name_prefix="call")  # for Learner.start

    def spent(self, key: str, part: str, seconds: float) -> None:
        with self._timing_lock:
            self.timings[key][part] += seconds

    def note(self, key: str, notes: list[str]) -> None:
        """What a learner call should know of, at no cost in points (each note once)."""
        if not notes:
            return
        with self._timing_lock:
            kept = self.notes.setdefault(key, [])
            kept += [n for n in dict.fromkeys(notes) if n not in kept][:max(0, MAX_NOTES - len(kept))]

    def timing_report(self) -> dict:
        """Seconds per function: the learner's calls, the grader's set-up, its checks."""
        report = {}
        for key, parts in self.timings.items():
            learner = parts["learner_call"]
            report[key] = {
                "learner_call": round(learner, 3),
                "store_preparation": round(max(parts["scenario"] - learner - parts["probe"], 0.0), 3),
                "checks": round(parts["checks"] + parts["probe"], 3),
            }
        return report

    def resource_report(self) -> dict:
        import resource

        return {
            "scoring_process_max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "learner_process_max_rss_mb": round(self.sandbox.max_rss_kb / 1024, 1),
        }

    # -- scenarios: what a check class sets up and asks of the learner, run ahead of its checks
    def start_scenario(self, check_class: type, module: str) -> None:
        function = catalogue.function_of(check_class)
        key = f"{module}.{function}"
        if key not in self._scenarios:
            self._scenarios[key] = self._pool.submit(self._run_scenario, check_class, module, function)

    def scenario(self, check_class: type, module: str):
        """The scenario's result; raises what it raised (for instance NotAttempted)."""
        self.start_scenario(check_class, module)
        return self._scenarios[f"{module}.{catalogue.function_of(check_class)}"].result()

    def _run_scenario(self, check_class: type, module: str, function: str):
        learner = self.learner(module, function)
        learner.raise_if_broken()
        learner.raise_if_untouched()
        started = time.monotonic()
        try:
            made = check_class.scenario(learner, self.inputs(module, function))
        finally:
            self.spent(learner.key, "scenario", time.monotonic() - started)
        if not isinstance(made, Scenario):  # an author's slip: say so, not a confusing error in each check
            raise TypeError(f"{check_class.__name__}.scenario returned a {type(made).__name__}: a scenario returns "
                            "Scenario(name=value, ...) (grader.core.session.Scenario)")
        return made

    def learner(self, module: str, function: str) -> "Learner":
        return Learner(self, module, function)

    def inputs(self, module: str, function: str) -> Inputs:
        return Inputs(self.seed, f"{module}.{function}")

    def kept(self, service: "Service") -> None:
        with self._services_lock:
            self._services.append(service)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self.calls.shutdown(wait=True, cancel_futures=True)
        with self._services_lock:
            services, self._services = self._services, []
        for service in services:
            service.stop()
        self.sandbox.close()


class Service:
    """What a kept sandbox step started, still running in the sandbox: the step's value
    (such as the port a server listens on), and ``stop()``, which ends all of it."""

    def __init__(self, value, stop: Callable[[], None]):
        self.value = value
        self._stop = stop
        self._stopped = threading.Event()

    def stop(self) -> None:
        if not self._stopped.is_set():
            self._stopped.set()
            self._stop()


class Attempt:
    """One learner call: its result, or the outcome (not attempted, error...) it ended in."""

    def __init__(self, result: CallResult | None, outcome: LearnerOutcome | None = None):
        self._result, self._outcome = result, outcome

    def result(self) -> CallResult:
        if self._outcome is not None:
            raise self._outcome
        return self._result

    def value(self):
        return self.result().value

    @property
    def succeeded(self) -> bool:
        return self._outcome is None

    def raised(self) -> str | None:
        """The exception the learner's function raised, as text, when that is how the call
        ended (a check that expects it to raise reads what it says)."""
        return getattr(self._outcome, "raised", None)

    def raised_text(self) -> str | None:
        """For a check that expects the call to raise: what it raised; any other ending (not
        attempted, a crash, a timeout) is raised as it is, to say what happened."""
        raised = self.raised()
        if raised is None:
            self.result()
        return raised

    def wait(self) -> "Attempt":
        return self


class PendingAttempt(Attempt):
    """An Attempt still running: reading it waits for it."""

    def __init__(self, future: Future):
        self._future = future

    def result(self) -> CallResult:
        return self._future.result().result()

    @property
    def succeeded(self) -> bool:
        return self._future.result().succeeded

    def raised(self) -> str | None:
        return self._future.result().raised()

    def wait(self) -> "Attempt":
        return self._future.result()


class Learner:
    """The learner's implementation of one curriculum function, as the checks see it."""

    def __init__(self, session: GradingSession, module: str, function: str):
        self.session = session
        self.module = module
        self.function = function

    @property
    def key(self) -> str:
        return f"{self.module}.{self.function}"

    def source(self) -> str | None:
        return self.session.source_texts.get(self.module)

    @property
    def call_timeout(self) -> float:
        """Seconds one call of the learner's may take (``--call-timeout``)."""
        return self.session.timeout

    def untouched(self) -> bool:
        source = self.source()
        return source is not None and is_untouched_stub(source, self.function)

    def raise_if_broken(self) -> None:
        """A module that does not even compile: say so once, without running anything."""
        source = self.source()
        problem = compile_problem(source, f"{self.module}.py") if source is not None else None
        if problem:
            raise BrokenModule(self.module, self.function, problem)

    def raise_if_untouched(self) -> None:
        """A stub nobody edited is not attempted: say so without setting anything up."""
        if self.untouched():
            raise outcome_of(CallResult(Status.NOT_IMPLEMENTED, Path()), self.module, self.function, self.session.timeout)

    def store(self) -> Store:
        return self.session.stores.new(self.function)

    def sqlite_store(self) -> Store:
        """A fresh SQLite store even under ``--tracking-server``: for a check that serves
        the store itself (a tracking server of the grader's that learner code talks to)."""
        return self.session.sqlite_stores.new(self.function)

    def _where(self, store: Store) -> dict:
        """What every request says of where it runs: against ``store``, from its folder,
        with the learner's modules importable."""
        return {"env": store.env, "cwd": str(store.root), "src": str(self.session.sources)}

    def _run(self, store: Store, request: dict, part: str | None = None, timeout: float | None = None) -> CallResult:
        """One request to the sandbox, timed as ``part`` (if given), within ``timeout`` (the
        session's call timeout by default); should the worker die under it, it runs again
        from the store as it was."""
        started = time.monotonic()
        try:
            with store.kept() as restore:
                return self.session.sandbox.run(request, timeout or self.session.timeout, before_retry=restore)
        finally:
            if part:
                self.session.spent(self.key, part, time.monotonic() - started)

    def attempt(self, store: Store, *args, then: tuple | None = None, returns: str = "value", more_seconds: float = 0.0,
                **kwargs) -> "Attempt":
        """Call the learner's function and keep what happened, good or bad, for the checks
        to look at: one failing call costs only the checks that read it."""
        try:
            return Attempt(self.call(store, *args, then=then, returns=returns, more_seconds=more_seconds, **kwargs))
        except LearnerOutcome as outcome:
            return Attempt(None, outcome)

    def start(self, store: Store, *args, then: tuple | None = None, returns: str = "value", more_seconds: float = 0.0,
              **kwargs) -> PendingAttempt:
        """``attempt`` without waiting: the call runs while the scenario goes on. Only for a
        call whose store the scenario does not touch again; so a function that hangs costs
        one call's timeout, not one per case."""
        return PendingAttempt(self.session.calls.submit(self.attempt, store, *args, then=then, returns=returns,
                                                        more_seconds=more_seconds, **kwargs))

    def call(self, store: Store, *args, then: tuple | None = None, returns: str = "value", more_seconds: float = 0.0,
             **kwargs) -> CallResult:
        """Run the learner's function once, in a fresh process, against ``store``.
        ``then=(step, *step_args)``: a sandbox step applied there to what it returned
        (loading a model it returned runs learner code); ``more_seconds`` beyond the
        learner's own call timeout, for a call that rightly starts new processes (a server
        the learner described, a project's own Python importing MLflow);
        ``returns``: "value" (plain data) or "array" (what comes back is read as a NumPy
        array, ``result.array()``)."""
        if self.source() is None:
            raise LearnerError(f"{self.module}.py is missing from the folder being graded.")
        request = call_request(self.module, self.function, args, kwargs, then=then, returns=returns, **self._where(store))
        timeout = self.session.timeout + more_seconds
        result = self._run(store, request, "learner_call", timeout)
        self.session.note(self.key, notes_of(result))
        outcome = outcome_of(result, self.module, self.function, timeout, self.source())
        if outcome is not None:
            raise outcome
        return result

    def probe(self, store: Store, step: Callable, *args, **kwargs) -> CallResult:
        """Run a sandbox step that must touch learner-made files (such as loading a model)
        and returns an array; the caller decides what a failure means."""
        return self._run(store, step_request(step, args, kwargs, returns="array", **self._where(store)), "probe")

    def start_service(self, store: Store, step: Callable, *args, **kwargs) -> Service:
        """Run a sandbox step whose processes keep running once it returns (a server it
        starts and waits for), for later calls in the same sandbox to use. It must succeed;
        ``stop()`` ends them, and the session does at its end if no check did."""
        request = step_request(step, args, kwargs, keep=True, **self._where(store))
        result = self._run(store, request, timeout=max(self.session.timeout, GRADER_STEP_TIMEOUT))
        if result.status != Status.OK:
            raise RuntimeError(f"the grader could not start {step.__name__}: {result.status} {result.error}\n{result.output}")
        service = Service(result.value, lambda: self.session.sandbox.release(result.call_id))
        self.session.kept(service)
        return service

    def prepare(self, store: Store, step: Callable, *args, **kwargs):
        """Run a sandbox step of the grader's set-up (logging models with MLflow's own
        calls); it must succeed. Its plain-data value."""
        request = step_request(step, args, kwargs, **self._where(store))
        result = self._run(store, request, timeout=max(self.session.timeout, GRADER_STEP_TIMEOUT))  # timed as store preparation
        if result.status != Status.OK:
            raise RuntimeError(f"the grader could not prepare {step.__name__}: {result.status} {result.error}\n{result.output}")
        return result.value
