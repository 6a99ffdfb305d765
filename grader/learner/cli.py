"""The learner's commands around `pytest grader`: ``watch``, ``hint``, ``reset``, ``progress`` and ``ui``."""
from __future__ import annotations

import argparse
import difflib
import shutil
import sys
import time
from pathlib import Path

from grader import KIT_ROOT
from grader.core import catalogue, options
from grader.core.options import grade_command
from grader.ground.exits import Exit


def add_parser(commands) -> None:
    watch = commands.add_parser(
        "watch", help="grade your exercises again at every save, and show the whole board",
        description="Watch exercises/ (or --target): at every save, grade again the functions whose code "
                    "changed, with the same checks as `pytest grader`, and show every function's status, "
                    "how many are done, the points and the next thing to do. Press q (or Ctrl-C) to stop.")
    options.add(watch, "target", "seed", "call_timeout", "isolation")
    watch.set_defaults(handler=_watch)

    hint = commands.add_parser("hint", help="the hint for one function (--more: a more specific one)",
                               description="Print the hint for FUNCTION (for example log_run).")
    hint.add_argument("function", metavar="FUNCTION", help="an exercise function, such as log_run")
    hint.add_argument("--more", action="store_true", help="also the second, more specific hint, where there is one")
    hint.set_defaults(handler=_hint)

    reset = commands.add_parser(
        "reset", help="put back the stub of one function or class (asks first)",
        description="Replace FUNCTION in your exercise file with its original stub, leaving everything else "
                    "in the file as it is. FUNCTION may be a class the stubs hold (ThresholdModel) or one of "
                    "its methods (ThresholdModel.predict). Your code for it is kept in the kit's cache folder.")
    reset.add_argument("function", metavar="FUNCTION",
                       help="an exercise function (log_run), a class of the stubs (ThresholdModel) or one of its methods")
    options.add(reset, "target")
    reset.add_argument("--yes", action="store_true", help="do not ask (for scripts)")
    reset.set_defaults(handler=_reset)

    progress = commands.add_parser(
        "progress", help="the board from your last gradings, without grading again",
        description="Show every function's status and points as your last `pytest grader` or `watch` left "
                    "them; a function you edited since is shown as not checked.")
    options.add(progress, "target")
    progress.set_defaults(handler=_progress)

    ui = commands.add_parser(
        "ui", help="grade one function, then see what it logged in MLflow's UI (until Ctrl-C)",
        description="Grade FUNCTION as `pytest grader -k FUNCTION` does (the same checks and verdict; the same "
                    "--seed gives the same inputs), keep the MLflow stores its checks read, and serve the first with "
                    "MLflow's own UI (`mlflow server`) on 127.0.0.1, on a free port. It prints the verdict, the URL "
                    "and what each store holds: experiments with their ids, runs and registered models, each with "
                    "its link. It runs until Ctrl-C, which stops the server and removes the stores; nothing is "
                    "written into your folder. It runs the code as `pytest grader` does on your machine, outside "
                    "any sandbox: point it at your own code, never at someone else's submission.")
    ui.add_argument("function", metavar="FUNCTION", help="an exercise function, such as log_run")
    options.add(ui, "target", "seed")
    ui.add_argument("--store", type=int, default=1, metavar="N",
                    help="which store to serve, when the checks made several (default: the first)")
    ui.set_defaults(handler=_ui)


def exercise_named(name: str) -> catalogue.Exercise:
    """``log_run`` or ``ex01_tracking.log_run``; a clear error naming close matches otherwise."""
    exercises = catalogue.load().exercises
    found = [e for e in exercises if name in (e.function, e.key)]
    if found:
        return found[0]
    raise SystemExit(_unknown(name, [e.function for e in exercises], "exercise", "functions"))


def _unknown(name: str, known: list[str], kind: str, plural: str) -> str:
    close = difflib.get_close_matches(name, known, n=3)
    maybe = f" Did you mean {' or '.join(f'`{c}`' for c in close)}?" if close else ""
    return f"There is no {kind} called `{name}`.{maybe} The {plural} are: " + ", ".join(known)


def stub_named(name: str) -> tuple[str, str]:
    """(module, name) of what ``reset`` can put back: an exercise function (``log_run``,
    ``ex01_tracking.log_run``), or a class the stubs hold and its methods (``ThresholdModel``,
    ``ThresholdModel.predict``): the names ``generate`` protects."""
    from grader.authoring.stubgen import expected_stubs, stub_names

    names = sorted((file.removesuffix(".py"), defined) for file, text in expected_stubs().items()
                   for defined in stub_names(text))
    matches = [(module, defined) for module, defined in names if name in (defined, f"{module}.{defined}")]
    if matches:
        return matches[0]
    raise SystemExit(_unknown(name, [defined for _, defined in names], "function or class", "functions and classes"))


def target_folder(args: argparse.Namespace) -> Path:
    from grader.core.submission import TargetError, resolve_target

    try:
        return resolve_target(Path(args.target) if args.target else KIT_ROOT / "exercises")
    except TargetError as error:
        raise SystemExit(f"--target: {error}") from None


# ------------------------------------------------------------------ hint
def _hint(args: argparse.Namespace) -> int:
    exercise = exercise_named(args.function)
    print(f"Hint for `{exercise.function}` ({exercise.module}.py, {exercise.points} points):")
    print(f"  {exercise.hint}")
    if args.more and exercise.more:
        print("More specifically:")
        print(f"  {exercise.more}")
    elif exercise.more:
        print(f"A more specific hint: python -m grader hint {exercise.function} --more")
    else:
        print(f"This is the most specific hint; the docstring of `{exercise.function}` says the rest.")
    return Exit.OK


# ------------------------------------------------------------------ reset
def _reset(args: argparse.Namespace) -> int:
    from grader.authoring.stubgen import stub_of
    from grader.core.places import Places
    from grader.core.source import compile_problem, definition_span

    module, name = stub_named(args.function)
    folder = target_folder(args)
    path, shown = folder / f"{module}.py", Places(folder).file(module)
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    problem = compile_problem(text, path.name)
    if problem:
        print(f"{shown} does not parse ({problem['error']}, line {problem['line']}): fix that first, "
              f"then reset `{name}`.", file=sys.stderr)
        return Exit.NOT_DONE
    stub, span = stub_of(module, name), definition_span(text, name)
    if span is None and "." in name:  # a method, but its class is not there as the stub has it
        print(f"{shown} has no `{name}`: reset the whole class with "
              f"`python -m grader reset {name.split('.')[0]}`.", file=sys.stderr)
        return Exit.NOT_DONE
    lines = text.splitlines(keepends=True)
    mine = "".join(lines[span[0] - 1:span[1]]) if span else ""
    if mine == stub:
        print(f"`{name}` in {shown} is already its stub: nothing to do.")
        return Exit.OK
    what = (f"Replace your `{name}` in {shown} (lines {span[0]}–{span[1]}) with its stub?"
            if span else f"{shown} has no `{name}`: add its stub at the end?")
    if not args.yes and not _confirmed(what):
        print("Nothing changed.")
        return Exit.NOT_DONE
    kept = _keep(module, name, mine) if mine else None
    if span:
        new = "".join(lines[:span[0] - 1]) + stub + "".join(lines[span[1]:])
    else:
        new = text + ("" if text.endswith("\n") or not text else "\n") + "\n\n" + stub
    path.write_text(new, encoding="utf-8")
    print(f"`{name}` is a stub again in {shown}." + (f" Your code for it is kept in {kept}." if kept else ""))
    return Exit.OK


def _confirmed(question: str) -> bool:
    if not sys.stdin.isatty():
        print(f"{question}\nreset asks before replacing your code: answer at a terminal, or pass --yes.",
              file=sys.stderr)
        return False
    return input(f"{question} Your code for it is kept aside. [y/N] ").strip().lower() in ("y", "yes")


def _keep(module: str, name: str, code: str) -> Path:
    """The learner's code of a function being reset, kept in the cache folder (not theirs)."""
    from grader.core.store import _cache_dir

    folder = _cache_dir() / "reset"
    folder.mkdir(parents=True, exist_ok=True)
    kept = folder / f"{module}.{name}.{time.strftime('%Y%m%d-%H%M%S')}.py"
    kept.write_text(code, encoding="utf-8")
    return kept


# ------------------------------------------------------------------ progress
def _progress(args: argparse.Namespace) -> int:
    from grader.core import board, summary
    from grader.core.places import Places

    folder = target_folder(args)
    known = board.load(folder)
    if not known.entries:
        print(f"No grading of {Places(folder).folder or folder} is recorded yet: run `{grade_command(args.target)}` "
              "or `python -m grader watch`.")
    rows = shutil.get_terminal_size((100, 60)).lines if sys.stdout.isatty() else None
    for line in summary.render_board(known.against(folder), Places(folder), command=grade_command(args.target), rows=rows):
        print(line)
    return Exit.OK


def _watch(args: argparse.Namespace) -> int:
    from grader.learner.watch import watch

    return watch(target_folder(args), args)


def _ui(args: argparse.Namespace) -> int:
    from grader.learner.ui import ui

    return ui(exercise_named(args.function), target_folder(args), args)
