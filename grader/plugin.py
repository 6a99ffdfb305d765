"""The pytest plugin that turns a pytest session into a grade.

Options are declared here, in one place. Each test is one check of the catalogue: its
file names the module (``test_ex01_tracking.py``), its class the function
(``Test_log_run``), its method the check (``test_params_and_metrics``).
"""
from __future__ import annotations

import gc
import json
import logging
import os
import shutil
import tempfile
import time
import warnings
from pathlib import Path

import pytest

from grader.sandbox import mlflow_patches, speedups

# Before anything imports MLflow: no telemetry from grading, ever.
os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
speedups.one_blas_thread()  # before anything imports NumPy

# Light imports only up to pytest_configure, which starts the learner-side worker: its
# imports of MLflow and scikit-learn then overlap with the grader's own.
from grader.core import board, catalogue, options, summary  # noqa: E402
from grader.core.outcomes import BrokenModule, LearnerOutcome  # noqa: E402
from grader.core.places import Places, grader_made  # noqa: E402
from grader.core.results import CheckResult, Grade, new_seed  # noqa: E402
from grader.core.source import TargetError, anything_attempted, copy_sources, fingerprints, resolve_target  # noqa: E402
from grader.core.store import scratch_parent, template_path  # noqa: E402
from grader.sandbox import client as sandbox_client  # noqa: E402
from grader.sandbox import isolation  # noqa: E402
from grader.sandbox.client import Sandbox  # noqa: E402

__all__ = [
    "pytest_addoption", "pytest_configure", "pytest_report_header", "pytest_collection_modifyitems",
    "pytest_collection_finish", "pytest_runtest_makereport", "pytest_terminal_summary",
    "pytest_sessionfinish", "grading", "scenario", "learner", "inputs",
]

REPO = Path(__file__).resolve().parent.parent
CHECK = pytest.StashKey[tuple]()
STATE = pytest.StashKey[dict]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mlflow-kit", "MLflow exercise kit")
    options.add(group, "target", "seed", "call_timeout", "isolation")  # shared with `python -m grader watch`
    group.addoption("--grade-json", default=None, metavar="PATH", help="also write the result in Gradescope's results.json format")
    group.addoption("--keep-stores", action="store_true", help="keep the temporary MLflow stores and print where they are")
    group.addoption("--tracking-server", action="store_true",
                    help="have learner code log to a real local `mlflow server` that the grader starts and stops "
                         "(one workspace per store), to prove it works against a remote server too; needs the "
                         "network, so not with --isolation bwrap")


def _check_of(item: pytest.Item) -> tuple[catalogue.Exercise, catalogue.Check]:
    module = getattr(item.module, "MODULE", None)
    function = item.cls.__name__.removeprefix("Test_") if item.cls else None
    check = item.originalname.removeprefix("test_")
    try:
        exercise = catalogue.load().exercise(module, function)
        return exercise, exercise.check(check)
    except KeyError as error:
        raise pytest.UsageError(f"{item.nodeid} is not a check of catalogue.toml: {error}") from None


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("tbstyle") == "auto":
        config.option.tbstyle = "no"  # the summary says what failed, in plain words
        config.option.reportchars = ""
    # Warnings come from MLflow's internals, not from the learner's code (that runs elsewhere).
    config.addinivalue_line("filterwarnings", "ignore")
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    logging.getLogger("alembic").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="mlflow")
    state: dict = {"started": time.monotonic(), "checks": [], "session": None, "broken": {}}
    config.stash[STATE] = state
    target_option = config.getoption("target")
    target = Path(config.invocation_params.dir, target_option) if target_option else REPO / "exercises"
    try:
        state["target"] = resolve_target(target)
    except TargetError as error:
        raise pytest.UsageError(f"--target: {error}") from None
    state["places"] = Places(state["target"], config.invocation_params.dir)
    seed = config.getoption("seed")
    state["seed"] = seed if seed is not None else new_seed()
    # The learner's MLFLOW_* settings are not read while grading, and given back after.
    state["saved_env"] = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("MLFLOW_") and k != "MLFLOW_DISABLE_TELEMETRY"}
    _refuse_server_without_network(config)
    if not config.option.collectonly:
        _start_worker(config)
        _start_tracking_server(config)


def pytest_report_header(config: pytest.Config) -> list[str]:
    state = config.stash[STATE]
    return [
        f"MLflow exercise kit: grading {state['target']}",
        f"seed {state['seed']} (reproduce this run with: pytest grader --seed {state['seed']})",
        *([f"learner code logs to an mlflow server at {state['server'].url}, started for this session"] if "server" in state else []),
    ]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        item.stash[CHECK] = _check_of(item)


def _start_worker(config: pytest.Config) -> None:
    """Start the learner-side worker as early as possible, if any learner code will run."""
    state = config.stash[STATE]
    # In a warm grading host (grader/host/), its worker is lent to this grading, with the
    # scratch folder its sandbox shows and how it fences the learner in.
    lent = sandbox_client.LENT_WORKER
    mode = config.getoption("isolation")
    if lent is not None and lent.scratch is not None:
        scratch = lent.scratch
    else:  # kept stores outlive the session: those go to disk, not to memory
        scratch = Path(tempfile.mkdtemp(prefix="mlflow-kit-", dir=None if config.getoption("keep_stores") else scratch_parent()))
    # The grader's own folder, beside the scratch (a host gives one): never shown to learner code.
    private = Path(tempfile.mkdtemp(prefix="mlflow-kit-grader-", dir=None if lent is not None else scratch.parent))
    sources = copy_sources(state["target"], scratch / "src")
    template = (lent and lent.template) or template_path()
    if not template.is_file():  # the first grading with this MLflow version makes it
        from grader.core.store import template_db

        template = template_db(scratch)
    timeout = config.getoption("call_timeout")
    wrap, limits = isolation.settings(mode, scratch, template, timeout)
    sandbox = Sandbox(scratch, wrap=wrap, limits=limits, template=template, lent=lent)
    if anything_attempted(sources):
        sandbox.start()
    state["sandbox_facts"] = (lent and lent.sandbox) or isolation.facts(mode, fresh_per_learner=mode != "none")
    state["early"] = (scratch, private, sources, sandbox)


def _session(config: pytest.Config) -> "GradingSession":  # noqa: F821
    from grader.core.session import GradingSession

    from grader.core.store import StoreFactory

    state = config.stash[STATE]
    if state["session"] is None:
        mlflow_patches.speed_up_sqlite_stores()  # before the first store opens
        scratch, private, sources, sandbox = state["early"]
        stores = _tracking_server_stores(config, scratch) or StoreFactory(scratch, sandbox.template, private)
        state["session"] = GradingSession(sources, scratch, state["seed"], sandbox, timeout=config.getoption("call_timeout"), stores=stores)
    return state["session"]


# -- --tracking-server: learner code logs to a real local `mlflow server` (grader/core/tracking_server.py)
def _refuse_server_without_network(config: pytest.Config) -> None:
    if config.getoption("tracking_server") and config.getoption("isolation") == "bwrap":
        raise pytest.UsageError(
            "--tracking-server cannot be used with --isolation bwrap: the bubblewrap sandbox has no network, "
            "not even 127.0.0.1, so learner code could not reach the server. Use --isolation none or limits."
        )


def _start_tracking_server(config: pytest.Config) -> None:
    """Start the server now, if any learner code will run: it boots while checks are collected."""
    state = config.stash[STATE]
    scratch, _, sources, _ = state["early"]
    if config.getoption("tracking_server") and anything_attempted(sources):
        from grader.core.tracking_server import TrackingServer
        from grader.core.store import template_db

        state["server"] = TrackingServer(scratch / "tracking-server", template_db(scratch))


def _tracking_server_stores(config: pytest.Config, scratch: Path):
    """Stores that are workspaces of the tracking server, once it answers (None: SQLite stores)."""
    server = config.stash[STATE].get("server")
    if server is None:
        return None
    from grader.core.tracking_server import ServerError, WorkspaceStoreFactory

    try:
        server.wait_ready()
    except ServerError as error:
        raise pytest.UsageError(f"--tracking-server: {error}") from None
    return WorkspaceStoreFactory(server, scratch)


def _stop_tracking_server(config: pytest.Config) -> None:
    server = config.stash[STATE].pop("server", None)
    if server is not None:
        server.stop()


def pytest_collection_finish(session: pytest.Session) -> None:
    # MLflow, scikit-learn and pandas are imported now and stay for the whole session:
    # the garbage collector need not walk them again (it did, for seconds, at every full
    # collection and at exit).
    gc.freeze()
    if not session.items or "early" not in session.config.stash[STATE]:  # --collect-only starts nothing
        return
    grading = _session(session.config)
    classes = {item.cls: item.module.MODULE for item in session.items if hasattr(item.cls, "scenario")}
    for cls, module in classes.items():
        grading.start_scenario(cls, module)


@pytest.fixture(scope="session")
def grading(request: pytest.FixtureRequest) -> "GradingSession":  # noqa: F821
    return _session(request.config)


@pytest.fixture(scope="class")
def scenario(request: pytest.FixtureRequest, grading):
    """What this class's ``scenario`` set up and got from the learner (started early)."""
    try:
        return grading.scenario(request.cls, request.module.MODULE)
    except LearnerOutcome as outcome:
        return Unavailable(outcome)


class Unavailable:
    """A scenario that ended in a learner outcome: each check that reads it fails with it
    (a failed check, not an error of the grader's set-up)."""

    def __init__(self, outcome: LearnerOutcome):
        self._outcome = outcome

    def __getattr__(self, name):
        raise self._outcome

    def __iter__(self):
        raise self._outcome


@pytest.fixture(scope="class")
def learner(request: pytest.FixtureRequest, grading):
    """The learner's implementation of the function this class checks."""
    return grading.learner(request.module.MODULE, request.cls.__name__.removeprefix("Test_"))


@pytest.fixture(scope="class")
def inputs(learner, grading):
    """Random inputs for this function, drawn from the session seed."""
    return grading.inputs(learner.module, learner.function)


def _plain_message(excinfo: pytest.ExceptionInfo) -> tuple[str, str]:
    """(status, message) for a failed check, in words a learner understands."""
    error = excinfo.value
    if isinstance(error, LearnerOutcome):
        return error.status, str(error)
    if isinstance(error, AssertionError):
        # pytest appends its own explanation after the message; the message is enough.
        return "failed", str(error).split("\nassert ")[0].strip() or "a check failed"
    return "error", f"the grader hit an internal error ({type(error).__name__}: {error}); rerun with --tb=short to see where"


def _scrubbed(places: Places, problem: dict) -> dict:
    return {k: places.scrub(v) if isinstance(v, str) else v for k, v in problem.items()}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    exercise, check = item.stash[CHECK]
    state = item.config.stash[STATE]
    if state["session"] is not None:
        state["session"].spent(exercise.key, "checks", report.duration)
    if report.when == "call" and report.passed:
        state["checks"].append(CheckResult(exercise, check.name, check.points, "passed"))
    elif report.failed and call.excinfo is not None:
        status, message = _plain_message(call.excinfo)
        message = state["places"].scrub(message)  # no temporary path reaches a learner
        if isinstance(call.excinfo.value, BrokenModule):
            state["broken"].setdefault(exercise.module, _scrubbed(state["places"], call.excinfo.value.problem))
        state["checks"].append(CheckResult(exercise, check.name, check.points, status, message))
        if status != "error" or isinstance(call.excinfo.value, LearnerOutcome):
            report.longrepr = message
    return report


def _grade(config: pytest.Config) -> Grade:
    state = config.stash[STATE]
    places, session = state["places"], state["session"]
    notes = {key: [places.scrub(n) for n in said] for key, said in session.notes.items()} if session else {}
    return Grade(catalogue.load(), state["checks"], state["seed"], time.monotonic() - state["started"],
                 broken=state["broken"], notes=notes)


def _results(config: pytest.Config) -> dict:
    """This grading in results.json's format (Gradescope's), with what the board needs."""
    state = config.stash[STATE]
    if "results" not in state:
        extra = {"target": str(state["target"]), "isolation": config.getoption("isolation"),
                 "sandbox": state.get("sandbox_facts") or isolation.facts(config.getoption("isolation")),
                 "fingerprints": fingerprints(state["early"][2]) if "early" in state else {}}
        if state["session"] is not None:
            extra["timing"] = state["session"].timing_report()
            extra["resources"] = state["session"].resource_report()
        state["results"] = _grade(config).to_gradescope(extra)
    return state["results"]


def _keeps_progress(config: pytest.Config) -> bool:
    """A learner's own grading of their own folder updates their board (grader/core/board.py);
    a batch's, a notebook's (folders the grader made) and a sandboxed one do not."""
    state = config.stash[STATE]
    return config.getoption("isolation") == "none" and not grader_made(state["target"]) and "early" in state


def _board(config: pytest.Config) -> board.Board:
    """The whole kit as it stands after this grading: earlier verdicts of unchanged functions too."""
    state = config.stash[STATE]
    if "board" not in state:
        known = board.load(state["target"]) if _keeps_progress(config) else board.Board()
        known.record(_results(config))
        state["board"] = known.against(state["early"][2])
    return state["board"]


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    state = config.stash[STATE]
    if not state["checks"]:
        return
    grade = _grade(config)
    terminalreporter.section(f"MLflow exercise kit · seed {state['seed']}", sep="=", bold=True)
    target = config.getoption("target")
    command = "pytest grader" if target is None else f"pytest grader --target {target}"  # grades the same folder again
    known = _board(config)
    lines = summary.render(grade, places=state["places"], board=known,
                           next_line=lambda g: known.next_step(state["places"], command))
    for line in lines:
        terminalreporter.line(line)
    if config.getoption("keep_stores") and state["session"] is not None:
        terminalreporter.line(f"Temporary stores kept in {state['session'].scratch}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    state = config.stash[STATE]
    path = config.getoption("grade_json")
    if path:
        Path(config.invocation_params.dir, path).write_text(json.dumps(_results(config), indent=2))
    if state["checks"] and _keeps_progress(config):
        board.save(state["target"], _board(config))
    if state["session"] is not None:
        state["session"].close()
    _stop_tracking_server(config)  # once no scenario talks to it, before its folder goes
    if "early" in state:
        scratch, private, _, sandbox = state["early"]
        sandbox.close()
        shutil.rmtree(private, ignore_errors=True)
        if not config.getoption("keep_stores"):
            shutil.rmtree(scratch, ignore_errors=True)
    os.environ.update(state["saved_env"])
    gc.freeze()  # what the session made dies with the process: no need to collect it first
