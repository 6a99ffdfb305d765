"""The pytest plugin that turns a pytest session into a grade.

Options are declared in grader/core/options.py. Each test is one check of the catalogue:
its file names the module (``test_ex01_tracking.py``), its class the function
(``Test_log_run``), its method the check (``test_params_and_metrics``).

A grading is one ``GradingPlugin`` object, as pytest's own junitxml is one ``LogXML``:
the module's ``pytest_configure`` registers one and keeps it in the config's stash under
``PLUGIN``, or takes the one a warm grading host passed to ``pytest.main(args,
plugins=[GradingPlugin(lent=worker)])`` (its learner code then runs in the host's warm
worker). Its hooks and fixtures read and fill its ``GradingRun``; nothing else does.
``pytest grader`` reaches the module's three hooks through grader/conftest.py.
"""
from __future__ import annotations

import gc
import logging
import os
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from grader.sandbox import mlflow_patches, speedups

# Before anything imports MLflow: no telemetry from grading, ever.
os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
speedups.one_blas_thread()  # before anything imports NumPy

# Light imports only up to pytest_configure, which starts the learner-side worker: its
# imports of MLflow and scikit-learn then overlap with the grader's own.
from grader import KIT_ROOT  # noqa: E402
from grader.core import board, catalogue, options, summary  # noqa: E402
from grader.ground import files  # noqa: E402
from grader.core.outcomes import BrokenModule, LearnerOutcome  # noqa: E402
from grader.core.places import Places  # noqa: E402
from grader.core.results import CheckResult, Grade, Results  # noqa: E402
from grader.core.source import anything_attempted, fingerprints, one_parse_at_a_time  # noqa: E402
from grader.core.store import scratch_parent, template_path  # noqa: E402
from grader.core.submission import TargetError, copy_sources, resolve_target  # noqa: E402
from grader.core.text import shown  # noqa: E402
from grader.sandbox import isolation  # noqa: E402
from grader.sandbox.client import LentWorker, Sandbox  # noqa: E402

if TYPE_CHECKING:
    from grader.core.session import GradingSession
    from grader.core.tracking_server import TrackingServer


@dataclass
class Setup:
    """What a grading that will run learner code set up first: its folders and its sandbox."""

    scratch: Path  # shared with learner code: stores, call folders, the copy of its modules
    private: Path  # the grader's own, never shown to learner code
    sources: Path  # the learner's modules, copied (learner code imports them from here)
    sandbox: Sandbox


@dataclass
class GradingRun:
    """One grading: what it grades, and all it has found so far."""

    target: Path
    places: Places
    seed: int
    saved_env: dict[str, str]  # the learner's MLFLOW_* settings, given back at the end
    started: float = field(default_factory=time.monotonic)
    lent: LentWorker | None = None
    setup: Setup | None = None  # None: nothing is graded (--collect-only)
    sandbox_facts: dict | None = None  # how learner code was fenced in, for results.json
    server: "TrackingServer | None" = None  # --tracking-server
    checks: list[CheckResult] = field(default_factory=list)
    broken: dict[str, dict] = field(default_factory=dict)  # module -> why it cannot be imported


PLUGIN_NAME = "mlflow-kit-grading"
CHECK = pytest.StashKey[tuple[catalogue.Exercise, catalogue.Check]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mlflow-kit", "MLflow exercise kit")
    options.add(group, "target", "seed", "call_timeout", "isolation")  # shared with `python -m grader watch`
    group.addoption("--grade-json", default=None, metavar="PATH", help="also write the result in Gradescope's results.json format")
    group.addoption("--keep-stores", action="store_true", help="keep the temporary MLflow stores and print where they are")
    group.addoption("--tracking-server", action="store_true",
                    help="have learner code log to a real local `mlflow server` that the grader starts and stops "
                         "(one workspace per store), to prove it works against a remote server too; needs the "
                         "network, so not with --isolation bwrap")
    group.addoption("--no-progress", action="store_true",
                    help="leave the learner's progress (the board `python -m grader progress` shows) as it was: "
                         "for a grading of a copy the kit made (a batch's, a notebook's)")


def pytest_configure(config: pytest.Config) -> None:
    """Register this session's GradingPlugin (or take the one a host passed), and start it."""
    plugin = next((p for p in config.pluginmanager.get_plugins() if isinstance(p, GradingPlugin)), None)
    if plugin is None:
        plugin = GradingPlugin()
        config.pluginmanager.register(plugin, PLUGIN_NAME)
    config.stash[PLUGIN] = plugin
    plugin.configure(config)


def pytest_unconfigure(config: pytest.Config) -> None:
    plugin = config.stash.get(PLUGIN, None)
    if plugin is not None and config.pluginmanager.get_plugin(PLUGIN_NAME) is plugin:
        config.pluginmanager.unregister(plugin)


class GradingPlugin:
    """One grading: its hooks and fixtures, and its ``run`` (what it grades, all it found)."""

    def __init__(self, lent: LentWorker | None = None):
        self.lent = lent  # a warm host's worker, lent to this grading
        self.config: pytest.Config | None = None
        self.run: GradingRun | None = None
        self.session: GradingSession | None = None  # made once the checks are collected
        self.results: Results | None = None  # results.json, once made
        self.board: board.Board | None = None  # the whole kit after this grading, once made

    # -- configure
    def configure(self, config: pytest.Config) -> None:
        _refuse_unmatched_checks()  # first: before a worker starts, or the checks' modules import MLflow
        one_parse_at_a_time()  # scenarios and checks run in threads (grader/core/source.py says why)
        if config.getoption("tbstyle") == "auto":
            config.option.tbstyle = "no"  # the summary says what failed, in plain words
            config.option.reportchars = ""
        # Warnings come from MLflow's internals, not from the learner's code (that runs elsewhere).
        config.addinivalue_line("filterwarnings", "ignore")
        logging.getLogger("mlflow").setLevel(logging.ERROR)
        logging.getLogger("alembic").setLevel(logging.ERROR)
        warnings.filterwarnings("ignore", module="mlflow")
        target_option = config.getoption("target")
        try:
            target = resolve_target(Path(config.invocation_params.dir, target_option) if target_option else KIT_ROOT / "exercises")
        except TargetError as error:
            raise pytest.UsageError(f"--target: {error}") from None
        seed = config.getoption("seed")
        self.config = config
        self.run = run = GradingRun(
            target, Places(target, config.invocation_params.dir), seed if seed is not None else options.new_seed(),
            # The learner's MLFLOW_* settings are not read while grading, and given back after.
            {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("MLFLOW_") and k != "MLFLOW_DISABLE_TELEMETRY"},
            lent=self.lent,
        )
        _refuse_server_without_network(config)
        if not config.option.collectonly:
            _start_worker(config, run)
            _start_tracking_server(config, run)

    def pytest_report_header(self) -> list[str]:
        run = self.run
        return [
            f"MLflow exercise kit: grading {run.target}",
            f"seed {run.seed} (reproduce this run with: pytest grader --seed {run.seed})",
            *([f"learner code logs to an mlflow server at {run.server.url}, started for this session"] if run.server else []),
        ]

    # -- collection
    @pytest.hookimpl(trylast=True)  # after pytest's own -k has deselected
    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        for item in items:
            item.stash[CHECK] = _check_of(item)
        _exactly_the_function(config, items)

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        # MLflow, scikit-learn and pandas are imported now and stay for the whole session:
        # the garbage collector need not walk them again (it did, at every full collection and
        # at exit).
        gc.freeze()
        if not session.items or self.run.setup is None:  # --collect-only starts nothing
            return
        grading = self._session()
        classes = {item.cls: catalogue.module_of(item.path) for item in session.items if hasattr(item.cls, "scenario")}
        # A class marked ``starts_first`` waits on something slow to start (a server, a new Python): its
        # scenario goes first, so that wait overlaps the other scenarios instead of ending the grading.
        for cls in sorted(classes, key=lambda cls: not getattr(cls, "starts_first", False)):
            grading.start_scenario(cls, classes[cls])

    def _session(self) -> GradingSession:
        from grader.core.session import GradingSession
        from grader.core.store import StoreFactory

        if self.session is None:
            run, setup = self.run, self.run.setup
            mlflow_patches.speed_up_sqlite_stores()  # before the first store opens
            server = _tracking_server_stores(run, setup.scratch)
            # SQLite stores, for the checks that need one even under --tracking-server (apart from its stores,
            # in a folder made now, before any learner code runs: never a name it could have planted).
            sqlite = setup.scratch
            if server:
                sqlite = setup.scratch / "sqlite-stores"
                sqlite.mkdir()
            sqlite = StoreFactory(sqlite, setup.sandbox.template, setup.private)
            self.session = GradingSession(setup.sources, setup.scratch, run.seed, setup.sandbox,
                                          timeout=self.config.getoption("call_timeout"), stores=server or sqlite,
                                          sqlite_stores=sqlite)
        return self.session

    # -- the fixtures checks use
    @pytest.fixture(scope="session")
    def grading(self) -> GradingSession:
        return self._session()

    @pytest.fixture(scope="class")
    def scenario(self, request: pytest.FixtureRequest, grading):
        """What this class's ``scenario`` set up and got from the learner. Every scenario starts
        on a thread of the session's pool once the checks are collected, ahead of its tests:
        this waits for it."""
        try:
            return grading.scenario(request.cls, catalogue.module_of(request.path))
        except LearnerOutcome as outcome:
            return Unavailable(outcome)

    @pytest.fixture(scope="class")
    def learner(self, request: pytest.FixtureRequest, grading):
        """The learner's implementation of the function this class checks."""
        return grading.learner(catalogue.module_of(request.path), catalogue.function_of(request.cls))

    @pytest.fixture(scope="class")
    def inputs(self, learner, grading):
        """Random inputs for this function, drawn from the session seed."""
        return grading.inputs(learner.module, learner.function)

    # -- each check
    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo):
        report = yield
        exercise, check = item.stash[CHECK]
        run = self.run
        if self.session is not None:
            self.session.spent(exercise.key, "checks", report.duration)
        if report.when == "call" and report.passed:
            run.checks.append(CheckResult(exercise, check.name, check.points, "passed"))
        elif report.failed and call.excinfo is not None:
            status, message = _plain_message(call.excinfo)
            message = run.places.scrub(message)  # no temporary path reaches a learner
            if isinstance(call.excinfo.value, BrokenModule):
                run.broken.setdefault(exercise.module, _scrubbed(run.places, call.excinfo.value.problem))
            run.checks.append(CheckResult(exercise, check.name, check.points, status, message))
            if status != "error" or isinstance(call.excinfo.value, LearnerOutcome):
                report.longrepr = message
        return report

    # -- the grade
    def grade(self) -> Grade:
        run, session = self.run, self.session
        notes = {key: [shown(run.places.scrub(n)) for n in said] for key, said in session.notes.items()} if session else {}
        return Grade(catalogue.load(), run.checks, run.seed, time.monotonic() - run.started, broken=run.broken, notes=notes)

    def results_json(self) -> Results:
        """This grading in results.json's format (Gradescope's), with what the board needs."""
        if self.results is None:
            run, mode = self.run, self.config.getoption("isolation")
            extra = {"target": str(run.target), "isolation": mode, "sandbox": run.sandbox_facts or isolation.facts(mode),
                     "fingerprints": fingerprints(run.setup.sources) if run.setup else {}}
            if self.session is not None:
                extra["timing"] = self.session.timing_report()
                extra["resources"] = self.session.resource_report()
            self.results = self.grade().results(extra)
        return self.results

    def keeps_progress(self) -> bool:
        """A learner's grading of their own folder updates their board (grader/core/board.py);
        one given --no-progress (a batch's, a notebook's: copies the kit made) does not."""
        return not self.config.getoption("no_progress") and self.run.setup is not None

    def whole_board(self) -> board.Board:
        """The whole kit as it stands after this grading: earlier verdicts of unchanged functions too."""
        if self.board is None:
            known = board.load(self.run.target) if self.keeps_progress() else board.Board()
            known.record(self.results_json())
            self.board = known.against(self.run.setup.sources)
        return self.board

    def pytest_terminal_summary(self, terminalreporter) -> None:
        run = self.run
        if not run.checks:
            return
        terminalreporter.section(f"MLflow exercise kit · seed {run.seed}", sep="=", bold=True)
        command = options.grade_command(self.config.getoption("target"))  # grades the same folder again
        known = self.whole_board()
        lines = summary.render(self.grade(), places=run.places, board=known,
                               next_line=lambda g: known.next_step(run.places, command))
        for line in lines:
            terminalreporter.line(line)
        if self.config.getoption("keep_stores") and self.session is not None:
            terminalreporter.line(f"Temporary stores kept in {self.session.scratch}")

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        config, run = self.config, self.run
        path = config.getoption("grade_json")
        if path:
            self.results_json().write(Path(config.invocation_params.dir, path))
        if run.checks:  # now, while the copy of the learner's files is there (the summary comes after)
            known = self.whole_board()
            if self.keeps_progress():
                board.save(run.target, known)
        if self.session is not None:
            self.session.close()
        _stop_tracking_server(run)  # once no scenario talks to it, before its folder goes
        if run.setup is not None:
            run.setup.sandbox.close()
            files.remove_tree(run.setup.private)
            if not config.getoption("keep_stores"):
                files.remove_tree(run.setup.scratch)  # learner code filled it: any depth, no link followed
        os.environ.update(run.saved_env)
        gc.freeze()  # what the session made dies with the process: no need to collect it first


PLUGIN = pytest.StashKey[GradingPlugin]()


def _check_of(item: pytest.Item) -> tuple[catalogue.Exercise, catalogue.Check]:
    module = catalogue.module_of(item.path)
    function = catalogue.function_of(item.cls) if item.cls else None
    check = item.originalname.removeprefix("test_")
    try:
        exercise = catalogue.load().exercise(module, function)
        return exercise, exercise.check(check)
    except KeyError as error:
        raise pytest.UsageError(f"{item.nodeid} is not a check of catalogue.toml: {error}") from None



def _refuse_unmatched_checks() -> None:
    """The whole kit, whatever -k or node ids select, read from the files: a catalogue check
    without its test method would otherwise drop out of the grade unseen (no item maps to it)."""
    problems = catalogue.unmatched_checks()
    if problems:
        raise pytest.UsageError("grader/catalogue.toml and the checks of grader/test_*.py disagree; nothing was graded:\n"
                                + "\n".join(f"  {problem}" for problem in problems))


def _exactly_the_function(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``-k log_run`` (or ``-k "log_run or find_best_run"``) checks exactly those functions,
    as the summary's "Next:" lines mean, not every function whose name holds those letters
    too (``log_run_rest``)."""
    named = {name.strip() for name in (config.getoption("keyword") or "").split(" or ")}
    if not named or not named <= {e.function for e in catalogue.load().exercises}:
        return
    others = [item for item in items if item.stash[CHECK][0].function not in named]
    if others:
        items[:] = [item for item in items if item not in others]
        config.hook.pytest_deselected(items=others)



def _start_worker(config: pytest.Config, run: GradingRun) -> None:
    """Start the learner-side worker as early as possible, if any learner code will run."""
    # In a warm grading host (grader/host/), its worker is lent to this grading, with the
    # scratch folder its sandbox shows and how it fences the learner in.
    lent = run.lent
    mode = config.getoption("isolation")
    if lent is not None and lent.scratch is not None:
        scratch = lent.scratch
    else:  # kept stores outlive the session: those go to disk, not to memory
        scratch = Path(tempfile.mkdtemp(prefix="mlflow-kit-", dir=None if config.getoption("keep_stores") else scratch_parent()))
    # The grader's own folder, beside the scratch (a host gives one): never shown to learner code.
    private = Path(tempfile.mkdtemp(prefix="mlflow-kit-grader-", dir=None if lent is not None else scratch.parent))
    sources = copy_sources(run.target, scratch / "src")
    template = (lent and lent.template) or template_path()
    if not template.is_file():  # the first grading with this MLflow version makes it
        from grader.core.store import template_db

        template = template_db(scratch)
    timeout = config.getoption("call_timeout")
    wrap, limits = isolation.settings(mode, scratch, template, timeout)
    sandbox = Sandbox(scratch, wrap=wrap, limits=limits, template=template, lent=lent)
    if anything_attempted(sources):
        sandbox.start()
    run.sandbox_facts = (lent and lent.sandbox) or isolation.facts(mode, fresh_per_learner=mode != "none")
    run.setup = Setup(scratch, private, sources, sandbox)



def _refuse_server_without_network(config: pytest.Config) -> None:
    if config.getoption("tracking_server") and config.getoption("isolation") == "bwrap":
        raise pytest.UsageError(
            "--tracking-server cannot be used with --isolation bwrap: the bubblewrap sandbox has no network, "
            "not even 127.0.0.1, so learner code could not reach the server. Use --isolation none or limits."
        )


def _start_tracking_server(config: pytest.Config, run: GradingRun) -> None:
    """Start the server now, if any learner code will run: it boots while checks are collected."""
    if config.getoption("tracking_server") and anything_attempted(run.setup.sources):
        from grader.core.store import template_db
        from grader.core.tracking_server import TrackingServer

        run.server = TrackingServer(run.setup.scratch / "tracking-server", template_db(run.setup.scratch))


def _tracking_server_stores(run: GradingRun, scratch: Path):
    """Stores that are workspaces of the tracking server, once it answers (None: SQLite stores)."""
    server = run.server
    if server is None:
        return None
    from grader.core.tracking_server import ServerError, WorkspaceStoreFactory

    try:
        server.wait_ready()
    except ServerError as error:
        raise pytest.UsageError(f"--tracking-server: {error}") from None
    return WorkspaceStoreFactory(server, scratch)


def _stop_tracking_server(run: GradingRun) -> None:
    if run.server is not None:
        run.server.stop()
        run.server = None



class Unavailable:
    """A scenario that ended in a learner outcome: each check that reads it fails with it
    (a failed check, not an error of the grader's set-up)."""

    def __init__(self, outcome: LearnerOutcome):
        self._outcome = outcome

    def __getattr__(self, name):
        raise self._outcome



def _plain_message(excinfo: pytest.ExceptionInfo) -> tuple[str, str]:
    """(status, message) for a failed check, in words a learner understands."""
    error = excinfo.value
    if isinstance(error, LearnerOutcome):
        return error.status, shown(str(error))
    if isinstance(error, AssertionError):
        # pytest appends its own explanation after the message; the message is enough.
        return "failed", shown(str(error).split("\nassert ")[0].strip() or "a check failed")
    return "error", shown(f"the grader hit an internal error ({type(error).__name__}: {error}); rerun with --tb=short to see where")


def _scrubbed(places: Places, problem: dict) -> dict:
    return {k: shown(places.scrub(v)) if isinstance(v, str) else v for k, v in problem.items()}

