"""Check one exercise from inside a notebook: ``check("ex01_tracking", "log_run")``.

The notebook's cells are the learner's module. ``check`` takes the imports, definitions
and constants of the cells run so far (read, never run here: the same filter as notebook
submissions), writes them as ``<module>.py`` into a temporary folder and grades that one
function with the kit's grader, exactly as ``pytest grader -k <function>`` would: same
checks, same messages, same points. The grading runs in a warm grading host (grader/host/)
that the notebook's setup cell starts (``start_grading``), or else its first check. The learner's code runs only in the
grader's sandbox, against fresh temporary MLflow stores.

It prints the grader's summary for the function and returns the points earned. A check
cell's value is that number, which is how nbgrader gives partial credit to an autograded
cell; and it prints to stdout only, since nbgrader gives 0 to a cell that writes to stderr.

``KIT_SEED`` in the environment (or ``seed=``) fixes the random inputs, to replay a check.
"""
from __future__ import annotations

import atexit
import json
import os
import random
import shutil
import tempfile
from pathlib import Path

from grader.core import catalogue
from grader.core.source import is_untouched_stub
from grader.core.store import scratch_parent
from grader.host.client import Host
from grader.sandbox.client import DEFAULT_CALL_TIMEOUT

KIT_ROOT = Path(__file__).resolve().parent.parent
HEADER_MARK = "MLflow exercise kit · seed"
CHECK_TIMEOUT = 900.0  # seconds for one function's checks, as the course's nbgrader cells allow
_HOST: Host | None = None


def check(module: str, function: str, *, seed: int | None = None) -> int:
    exercise = catalogue.load().exercise(module, function)
    seed = _seed(seed)
    code = _module_from_kernel()
    print(f"Checking `{function}` (seed {seed})...", flush=True)
    if is_untouched_stub(code, function):  # every check would say "not attempted": skip the grader
        lines, status, points = _not_attempted(exercise, seed)
    else:
        lines, status, points = _grade(code, exercise, seed)
    for line in lines:
        print(line)
    print(_next_step(function, status))
    return points


def _seed(seed: int | None) -> int:
    if seed is not None:
        return seed
    if os.environ.get("KIT_SEED"):
        return int(os.environ["KIT_SEED"])
    return random.SystemRandom().randrange(1, 10**6)


def _module_from_kernel() -> str:
    """The module made of the cells this kernel ran, in the order it ran them."""
    try:
        from IPython import get_ipython
    except ImportError:
        get_ipython = lambda: None  # noqa: E731
    shell = get_ipython()
    if shell is None:
        raise RuntimeError("check() reads the cells of a running notebook; outside one, use `pytest grader -k <function>`.")
    from grader.authoring.notebooks import definitions_only

    return definitions_only(shell.history_manager.input_hist_parsed)


def _not_attempted(exercise: catalogue.Exercise, seed: int) -> tuple[list[str], str, int]:
    """The grader's own result for a stub, made with its own outcome and summary code."""
    from grader.core import summary
    from grader.core.outcomes import outcome_of
    from grader.core.results import CheckResult, Grade
    from grader.sandbox.client import CallResult

    message = str(outcome_of(CallResult("not_implemented", Path()), exercise.module, exercise.function, 0))
    checks = [CheckResult(exercise, c.name, c.points, "not_attempted", message) for c in exercise.checks]
    grade = Grade(catalogue.load(), checks, seed)
    return _until_total(summary.render(grade)), "not_attempted", 0


def _grade(code: str, exercise: catalogue.Exercise, seed: int) -> tuple[list[str], str, int]:
    with tempfile.TemporaryDirectory(prefix="mlflow-kit-notebook-", dir=scratch_parent()) as scratch:
        folder = Path(scratch)
        (folder / "src").mkdir()
        (folder / "src" / f"{exercise.module}.py").write_text(code, encoding="utf-8")
        results, log = folder / "results.json", folder / "pytest.log"
        _host().grade(_grader_args(exercise, folder / "src", results, seed), cwd=folder, log=log, timeout=CHECK_TIMEOUT)
        graded = json.loads(results.read_text()) if results.exists() else None
        output = log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
    result = (graded or {}).get("extra_data", {}).get("exercises", {}).get(exercise.key)
    if result is None:  # the grader itself could not run: say why, on stdout
        tail = output.strip().splitlines()[-20:]
        return ["The grader could not check this function:", *tail], "error", 0
    return _summary_lines(output), result["status"], result["score"]


def start_grading() -> None:
    """Start the kernel's grading host now (the setup cell does): it imports MLflow while
    the notebook's own imports run and the learner reads, so the first check need not wait
    for it."""
    _host()


def _host() -> Host:
    """The kernel's warm grading host, started by its first check: later checks cost a
    fork, not a new Python with MLflow to import. It ends with the kernel."""
    global _HOST
    if _HOST is None:
        root = Path(tempfile.mkdtemp(prefix="mlflow-kit-notebook-host-", dir=scratch_parent()))
        _HOST = Host(root / "host", "none", DEFAULT_CALL_TIMEOUT)
        atexit.register(_close_host, _HOST, root)
    return _HOST


def _close_host(host: Host, root: Path) -> None:
    host.stop()  # the kernel is ending, and with it every check: nothing there to wait for
    shutil.rmtree(root, ignore_errors=True)


def _grader_args(exercise: catalogue.Exercise, target: Path, results: Path, seed: int) -> list[str]:
    checks = KIT_ROOT / "grader" / f"test_{exercise.module}.py"
    return [
        f"{checks}::Test_{exercise.function}", "-p", "no:cacheprovider", "-q",
        "--target", str(target), "--seed", str(seed), "--grade-json", str(results),
    ]


def _summary_lines(stdout: str) -> list[str]:
    """The lines of the grader's summary section, as `pytest grader` prints them."""
    lines = stdout.splitlines()
    start = next((i for i, line in enumerate(lines) if HEADER_MARK in line), None)
    return _until_total(lines[start + 1:]) if start is not None else []


def _until_total(lines: list[str]) -> list[str]:
    """The summary without its last lines, whose advice is for the command line."""
    kept = []
    for line in lines:
        if line.startswith("Total:"):
            break
        kept.append(line)
    while kept and not kept[-1].strip():
        kept.pop()
    return kept


def _next_step(function: str, status: str) -> str:
    if status == "passed":
        return "Next: well done, go on to the next exercise."
    if status == "not_attempted":
        return f"Next: write `{function}` in its cell above, run that cell, then run this one again."
    return f"Next: fix `{function}` in its cell above (see the message), run that cell, then run this one again."
