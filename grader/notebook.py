"""Check exercises from inside a notebook: ``check("ex01_tracking", "log_run")``, and the
whole lesson at the end: ``check_all()``.

The notebook's cells are the learner's module. ``check`` takes the imports, definitions
and constants of the cells run so far (read, never run here: the same filter as notebook
submissions), writes them as the kit's modules into a temporary folder, with ``cells.json``
saying which cell each line came from, and grades that one function with the kit's grader,
exactly as ``pytest grader -k <function>`` would: same checks, same messages (naming cells,
not files), same points. A function no cell run so far defines is not graded: the check
says why (a cell not run yet, one that is not valid Python, a renamed function: ``_absent``). The grading runs in a warm grading host (grader/host/) that the
notebook's setup cell starts (``start_grading``), or else its first check. The learner's
code runs only in the grader's sandbox, against fresh temporary MLflow stores.

It prints the grader's summary for the function, how many of the lesson's functions are
done so far in this kernel, and returns the points earned. A check cell's value is that
number, which is how nbgrader gives partial credit to an autograded cell; and it prints to
stdout only, since nbgrader gives 0 to a cell that writes to stderr.

``KIT_SEED`` in the environment (or ``seed=``) fixes the random inputs, to replay a check.
"""
from __future__ import annotations

import atexit
import difflib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from grader.core import catalogue
from grader.ground import files
from grader.core.board import NOT_RUN, UNCHECKED, Board, Entry
from grader.core.options import grading_args, new_seed
from grader.core.places import Places
from grader.core.source import is_untouched_stub, may_bind
from grader.core.store import scratch_parent
from grader.core.summary import lone_verdict
from grader.core.text import shown
from grader.host.client import Host
from grader.sandbox.protocol import DEFAULT_CALL_TIMEOUT

HEADER_MARK = "MLflow exercise kit · seed"
CHECK_TIMEOUT = 900.0  # seconds for one grading, as the course's nbgrader cells allow
CELL_LABEL = "cell [{}]"  # a kernel knows cells by execution count, shown beside each cell


class Kernel:
    """What one notebook kernel keeps between checks: its warm grading host, and the board
    of the functions checked so far (a function edited since its check counts as not checked).
    It lives on the kernel's IPython shell (``_kernel``), out of the learner's namespace."""

    def __init__(self):
        self.host: Host | None = None
        self.board = Board()

    def start_host(self) -> Host:
        """Started by the setup cell or the first check: later checks cost a fork, not a new
        Python with MLflow to import. It ends with the kernel."""
        if self.host is None:
            root = Path(tempfile.mkdtemp(prefix="mlflow-kit-notebook-host-", dir=scratch_parent()))
            self.host = Host(root / "host", "none", DEFAULT_CALL_TIMEOUT)
            atexit.register(_close_host, self.host, root)
        return self.host


SHELL_ATTRIBUTE = "mlflow_kit_kernel"  # where a shell keeps its Kernel


def _shell():
    """The IPython shell of the running notebook kernel."""
    try:
        from IPython import get_ipython
    except ImportError:
        get_ipython = lambda: None  # noqa: E731
    shell = get_ipython()
    if shell is None:
        raise RuntimeError("check() reads the cells of a running notebook; outside one, use `pytest grader -k <function>`.")
    return shell


def _kernel() -> Kernel:
    """This kernel's Kernel, made at its first use (the setup cell, or the first check)."""
    shell = _shell()
    kernel = getattr(shell, SHELL_ATTRIBUTE, None)
    if kernel is None:
        kernel = Kernel()
        setattr(shell, SHELL_ATTRIBUTE, kernel)
    return kernel


def check(module: str, function: str, *, seed: int | None = None) -> int:
    exercise = catalogue.load().exercise(module, function)
    seed = _seed(seed)
    print(f"Checking `{function}` (seed {seed})...", flush=True)
    ran = _ran()
    absent = _absent(exercise, ran)
    if absent:  # no code of it to grade: the grader could only say it found no such function
        lines, status, points = lone_verdict(exercise, *absent), absent[0], 0
    elif is_untouched_stub(ran.code, function):  # every check would say "not attempted": skip the grader
        lines, status, points = _not_attempted(exercise, seed)
    else:
        lines, status, points = _grade(ran, [exercise], seed)
    for line in lines:
        print(line)
    view, _ = _view(ran)
    print(f"Progress: {view.tally()}")
    broken = module in view.broken and not absent  # running its cell comes first: its code may be fine
    print(_next_step(function, "broken" if broken else status))
    return points


def check_all(*, seed: int | None = None) -> int:
    """The whole lesson: functions checked since their last edit keep their verdict, the
    others are checked now (in one grading), but those no cell the kernel ran defines (they
    show why); prints the board and returns the total."""
    seed = _seed(seed)
    ran = _ran()
    view, names = _view(ran)
    stale = [e for e in catalogue.load().exercises if view.entries[e.key].status == UNCHECKED]
    if stale:
        print(f"Checking {', '.join(f'`{e.function}`' for e in stale)} (seed {seed})...", flush=True)
        _grade(ran, stale, seed)
        view, names = _view(ran)
    for line in _board_lines(view, names):
        print(line)
    return view.score()


def _seed(seed: int | None) -> int:
    if seed is not None:
        return seed
    if os.environ.get("KIT_SEED"):
        return int(os.environ["KIT_SEED"])
    return new_seed()


@dataclass
class Ran:
    """What this kernel ran: the module its cells make, which cell each of its lines came
    from, and the cells themselves (number, text)."""
    code: str
    places: list[dict]
    cells: list[tuple[int, str]]


def _ran() -> Ran:
    """The cells this kernel ran, in the order it ran them, as one module.

    Why the kernel's cells and not the notebook's file: the file is only what was last saved
    (Jupyter saves now and then), so it may be older than the cells on screen, and it holds
    cells the kernel never ran, whose functions a learner's own calls could not use either
    (a NameError). What ran is what the learner sees work; a function whose cell did not run
    gets "not run" and the advice to run it (``_absent``), never a grade of other code.
    (What is handed in is the file: batch grading reads all its cells, nbgrader runs them all.)"""
    from grader.core.submission import module_from_cells

    # As typed (a cell magic's body stays code to look at), read as a submitted notebook's are.
    cells = list(enumerate(_shell().history_manager.input_hist_raw))
    return Ran(*module_from_cells(cells, CELL_LABEL), cells)


def _absent(exercise: catalogue.Exercise, ran: Ran) -> tuple[str, str] | None:
    """Why the kernel holds no code of ``exercise``'s function, as (status, message); None
    when a cell it ran defines it. Grading would only say "no function called ...": true of
    the kernel, but it sends a learner who has simply not run the cell to rename things."""
    name = exercise.function
    if may_bind(ran.code, name):
        return None
    defines = re.compile(rf"^(?:async\s+)?def\s+{re.escape(name)}\b", re.MULTILINE)
    for number, cell in reversed(ran.cells):  # the last cell that says `def name` and ran
        said = _unread(number, cell, name) if defines.search(cell) else None
        if said:
            return "error", shown(said)
    lesson = {e.function for e in catalogue.load().exercises}
    defined = [place for place in ran.places if place["definition"] and place["definition"] not in lesson]
    close = difflib.get_close_matches(name, [place["definition"] for place in defined], n=1, cutoff=0.8)
    if close:  # renamed: running the cell again would not help
        label = next(place["label"] for place in reversed(defined) if place["definition"] == close[0])
        return "error", shown(f"{label} defines `{close[0]}`, not `{name}`: keep the name from the stub.")
    return NOT_RUN, f"The cell that defines `{name}` has not been run yet: a check takes only the code of the cells you ran."


def _unread(number: int, cell: str, name: str) -> str | None:
    """Why the cell ``number``, which ran and says ``def name``, gave the check no ``name``;
    None when it is not for a reason the cell shows (then it never defined it: in a string)."""
    from grader.core.submission import cell_problem

    problem = cell_problem(cell)
    label = CELL_LABEL.format(number)
    if problem:  # the kernel printed the SyntaxError too, and defined nothing
        return (f"{label}, which defines `{name}`, is not valid Python (line {problem['line']}: "
                f"{problem['error']}), so it defined nothing: fix it, then run it.")
    first = cell.lstrip().partition("\n")[0]
    if first.startswith("%%"):  # the magic gets the cell as a string: no definition a check can read
        return (f"{label} defines `{name}` under the cell magic `{first}`, which a check cannot read: "
                "take that line out, then run the cell.")
    return None


def _not_attempted(exercise: catalogue.Exercise, seed: int) -> tuple[list[str], str, int]:
    """The grader's own result for a stub, made with its own outcome and summary code."""
    from grader.core import summary
    from grader.core.outcomes import outcome_of
    from grader.core.results import CheckResult, Grade
    from grader.sandbox.protocol import CallResult, Status

    message = str(outcome_of(CallResult(Status.NOT_IMPLEMENTED, Path()), exercise.module, exercise.function, 0))
    checks = [CheckResult(exercise, c.name, c.points, "not_attempted", message) for c in exercise.checks]
    grade = Grade(catalogue.load(), checks, seed)
    return _until_total(summary.render(grade)), "not_attempted", 0


def _grade(ran: Ran, exercises: list[catalogue.Exercise], seed: int) -> tuple[list[str], str, int]:
    """Grade ``exercises`` on the kernel's code: (the summary's lines, the status and points
    of the first); the kernel's board takes in the verdicts."""
    from grader.core.results import read_grading
    from grader.core.submission import write_modules

    with tempfile.TemporaryDirectory(prefix="mlflow-kit-notebook-", dir=scratch_parent()) as scratch:
        folder = Path(scratch)
        write_modules(ran.code, ran.places, folder / "src")
        results, log = folder / "results.json", folder / "pytest.log"
        kernel = _kernel()
        kernel.start_host().grade(grading_args(folder / "src", seed=seed, results=results, only=exercises, progress=False),
                                  cwd=folder, log=log, timeout=CHECK_TIMEOUT)
        graded, tail = read_grading(results, log, 20)
        output = log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
    if graded is not None:
        kernel.board.record(graded)
    result = graded.exercises.get(exercises[0].key) if graded is not None else None
    if result is None:  # the grader itself could not run: say why, on stdout
        tail = tail or output.strip().splitlines()[-20:]
        return ["The grader could not check this function:", *tail], "error", 0
    return _summary_lines(output), result.status, result.score


def _view(ran: Ran) -> tuple[Board, Places]:
    """The kernel's board against the code of its cells now (a function no cell it ran
    defines says why), and the cells' names."""
    from grader.core.submission import write_modules

    with tempfile.TemporaryDirectory(prefix="mlflow-kit-notebook-", dir=scratch_parent()) as scratch:
        write_modules(ran.code, ran.places, Path(scratch))
        view, names = _kernel().board.against(Path(scratch)), Places(Path(scratch))
    for exercise in catalogue.load().exercises:
        absent = _absent(exercise, ran)
        if absent:  # a verdict of now: an error of it comes before older ones (Board.next_target)
            view.entries[exercise.key] = Entry(absent[0], 0, messages=[absent[1]])
            view.fresh.append(exercise.key)
    return view, names


def _board_lines(view: Board, names: Places) -> list[str]:
    from grader.core import summary

    lines = summary.render_board(view, names, command=None)
    kind, what = view.next_target()
    return lines[:-1] + [_lesson_next(kind, what)]


def start_grading() -> None:
    """Start the kernel's grading host now (the setup cell does): it imports MLflow while
    the notebook's own imports run and the learner reads, so the first check need not wait
    for it."""
    _kernel().start_host()


def _close_host(host: Host, root: Path) -> None:
    host.stop()  # the kernel is ending, and with it every check: nothing there to wait for
    files.remove_tree(root)


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
    if status == "broken":
        return "Next: fix the cell named above (the lesson's code fails when imported), run it, then run this one again."
    if status == "passed":
        return "Next: well done, go on to the next exercise."
    if status == "not_attempted":
        return f"Next: write `{function}` in its cell above, run that cell, then run this one again."
    if status == NOT_RUN:
        return f"Next: run the cell that defines `{function}` (Shift-Enter), then run this one again."
    return f"Next: fix `{function}` in its cell above (see the message), run that cell, then run this one again."


def _lesson_next(kind: str, what) -> str:
    """The board's next step, in a notebook's words (cells, not files or commands)."""
    if kind == "done":
        return "Next: nothing left. Well done: every exercise of the lesson passes."
    if kind == "broken":
        return "Next: fix the cell named above, which fails when the lesson's code is imported, then check again."
    if kind == "run":
        return f"Next: run the cell that defines `{what.function}` (Shift-Enter), then its check cell."
    verb = {"fix": "fix", "check": "run the check cell of", "implement": "write"}[kind]
    return f"Next: {verb} `{what.function}`" + (", in its cell, then run its check cell." if kind != "check" else ".")
