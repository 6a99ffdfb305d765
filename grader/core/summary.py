"""The learner's summary: every graded function with its points and status, the total,
and the next thing to do, in plain words."""
from __future__ import annotations

import textwrap

from grader.core import catalogue
from grader.core.board import CHECKING, NOT_RUN, UNCHECKED
from grader.core.results import Grade

MARKS = {"passed": "✔", "failed": "✘", "error": "!", "not_attempted": "·", UNCHECKED: "?", CHECKING: "…", NOT_RUN: "?"}
WORDS = {"passed": "passed", "failed": "failed", "error": "error", "not_attempted": "not attempted",
         UNCHECKED: "not checked", CHECKING: "checking…", NOT_RUN: "not run"}


def _indent(text: str, prefix: str = "      ") -> list[str]:
    lines = []
    for line in text.strip().splitlines() or [""]:
        wrapped = textwrap.wrap(line, 96, subsequent_indent="  ") or [""]
        lines += [prefix + part for part in wrapped]
    return lines


def module_heading(module) -> str:
    return f"{module.name}.py · {module.title}"


def render(grade: Grade, *, details: bool = True, heading=module_heading, next_line=None,
           places=None, board=None) -> list[str]:
    """``heading`` names a module's block; ``next_line`` says what to do next (other
    commands, such as ``python -m grader inspect``, grade things that are not files).
    ``places`` names the learner's files; ``board`` (grader/core/board.py) knows the whole
    kit, for the count of functions done and a "Next:" beyond the functions just checked."""
    results = grade.exercises()
    lines = []
    for module in grade.catalogue.modules:
        in_module = [r for r in results if r.exercise.module == module.name]
        if not in_module:
            continue
        earned = sum(r.score for r in in_module)
        possible = sum(r.max_score for r in in_module)
        lines.append(module_line(heading(module), earned, possible))
        broken = grade.broken.get(module.name)
        if broken:
            lines += broken_module(broken, module.name, places)
        for result in in_module:
            lines.append(function_line(result.exercise.function, result.status, result.score, result.max_score))
            if details and result.status in ("failed", "error") and not broken:
                said = set()
                for check in result.checks:
                    if check.status != "passed" and check.message not in said:
                        said.add(check.message)
                        lines += _indent(f"[{check.check.replace('_', ' ')}] {check.message}")
                lines += _indent(f"Hint: {result.exercise.hint}")
            for note in grade.notes.get(result.exercise.key, []):
                lines += _indent(f"Note: {note}")
        lines.append("")
    lines.append(total_line(grade, board))
    if next_line is not None:
        lines.append(next_line(grade))
    elif board is not None:
        lines.append(board.next_step(places))
    return lines


def module_line(heading: str, earned: int, possible: int) -> str:
    return f"{heading:<59} {earned:>3}/{possible}"  # a long title still leaves a space before the points


def lone_verdict(exercise: catalogue.Exercise, status: str, message: str) -> list[str]:
    """A verdict no grading made (a notebook's function that no cell run defines), shown as
    ``render`` shows a grading's: the module, the function, why."""
    heading = module_heading(catalogue.load().module(exercise.module))
    return [module_line(heading, 0, exercise.points), function_line(exercise.function, status, 0, exercise.points),
            *_indent(message)]


def function_line(function: str, status: str, score: int, max_score: int) -> str:
    return f"  {MARKS[status]} {function}".ljust(47) + f"{WORDS[status]:<14}{score:>2}/{max_score}"


def entry_lines(exercise, entry, *, details: bool) -> list[str]:
    """One function's line on a board (grader/core/board.py's ``Entry``) and, with
    ``details``, what its checks said and the hint."""
    lines = [function_line(exercise.function, entry.status, entry.score, exercise.points)]
    if details:
        lines += [line for said in entry.messages for line in _indent(said)]
        lines += _indent(f"Hint: {exercise.hint}")
    return lines


def broken_module(problem: dict, module: str, places=None) -> list[str]:
    """A module that cannot be imported, said once: the file, the line and a caret."""
    what = "the code of your cells" if places is not None and places.cells else (
        places.file(module) if places is not None else f"{module}.py")
    line, text, column = problem.get("line"), problem.get("text"), problem.get("column")
    if line and places is not None and places.cells:
        what += f" ({places.where(module, line)})"
    elif line:
        what += f" (line {line})"
    lines = [f"  {MARKS['error']} {what} cannot be imported: {problem['error']}"]
    if line and text:
        shown = text.expandtabs(4)
        stripped = shown.lstrip()
        number = str(places.line_shown(module, line) if places is not None else line)
        lines.append(f"      {number} | {stripped}")
        if column:
            caret = max(0, min(len(text[:column - 1].expandtabs(4)) - (len(shown) - len(stripped)), len(stripped)))
            lines.append(f"      {' ' * len(number)} | {' ' * caret}^")
    if problem.get("output"):
        lines += _indent(f"What it printed:\n{problem['output']}")
    return lines


def total_line(grade: Grade, board=None) -> str:
    total = f"Total: {grade.score}/{grade.max_score}"
    if board is None:
        return total
    checked = len(grade.exercises())
    if checked == len(grade.catalogue.exercises):
        return f"{total} · {board.done()}/{checked} done"
    return f"{total} for the {checked} function(s) checked now · the whole kit: {board.tally()}"


def render_board(view, places, *, command: str | None = "pytest grader", rows: int | None = None) -> list[str]:
    """The whole kit from a board (grader/core/board.py): each function's status and points,
    the messages of the one to work on next, the count done, the total and what to do next.
    ``rows``: the screen's height; modules all of one status fold into one line to fit."""
    cat = catalogue.load()
    kind, what = view.next_target()
    blocks = []
    for module in cat.modules:
        entries = [(e, view.entries[e.key]) for e in module.exercises]
        earned = sum(entry.score for _, entry in entries)
        block = [module_line(module_heading(module), earned, module.points)]
        if module.name in view.broken:
            block += broken_module(view.broken[module.name], module.name, places)
        for exercise, entry in entries:
            block += entry_lines(exercise, entry, details=kind == "fix" and exercise is what and module.name not in view.broken)
        statuses = {entry.status for _, entry in entries}
        uniform = len(statuses) == 1 and len(block) == 1 + len(entries)  # one status, nothing more to say
        folded = f"{block[0]}  ({len(entries)} × {WORDS[statuses.pop()]})" if uniform else None
        blocks.append((block, folded))
    tail = ["", view.tally(), view.next_step(places, command)]
    lines = [line for block, _ in blocks for line in [*block, ""]]
    if rows is not None and len(lines) + len(tail) > rows:
        lines = [line for block, folded in blocks for line in ([folded] if folded else [*block, ""])]
    return lines[:-1] + tail if lines and not lines[-1] else lines + tail
