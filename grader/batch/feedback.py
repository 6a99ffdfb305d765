"""feedback.md: what a learner reads back: per module and function, the status, points,
every unmet check's message and the hint; a module that cannot be run, once, where it is
in the learner's own files (the cell, for a notebook).

Instructors paste this into an LMS or open it in a Markdown viewer, and much of it is
learner text (names, exception messages, source lines). Learner text is only ever inside
a code span or a fenced block whose fence is longer than any run of backticks in it, so
no learner text is read as Markdown or HTML. The hints and headings are the kit's own.
"""
from __future__ import annotations

import re

from grader.batch.collect import Source
from grader.batch.gradebook import Row
from grader.core import catalogue
from grader.core.results import FunctionEntry, Results
from grader.core.summary import MARKS, WORDS
from grader.core.text import printable, visible


def _longest_backtick_run(text: str) -> int:
    return max((len(run) for run in re.findall(r"`+", text)), default=0)


def code_span(text: str) -> str:
    """``text`` as inline code, whatever it holds."""
    text = printable(text)  # a line break would end the span's paragraph
    fence = "`" * (_longest_backtick_run(text) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text.strip() else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def code_block(text: str) -> list[str]:
    """``text`` as a fenced block, whatever it holds (a block at the top level: inside a
    list item, a less indented line would end it)."""
    text = visible(text)  # no escape sequence reaches the terminal that shows the file
    fence = "`" * max(3, _longest_backtick_run(text) + 1)
    return ["", fence, *text.split("\n"), fence, ""]


def _file_name(source: Source, module: str) -> str:
    return f"{source.folder}{module}.py"


def _cell_of(source: Source, module: str, line: int | None = None, definition: str | None = None) -> dict | None:
    """The cells.json entry holding ``line`` (or defining ``definition``) of a module."""
    for entry in (source.cells or {}).get(f"{module}.py", []):
        if not isinstance(entry, dict):
            continue
        if line is not None and entry.get("first_line", 0) <= line <= entry.get("last_line", -1):
            return entry
        if definition is not None and entry.get("definition") == definition:
            return entry
    return None


def _cell_words(entry: dict) -> str:
    definition = entry.get("definition")
    return f"cell {entry.get('cell')}" + (f", `def {definition}`" if isinstance(definition, str)
                                          and definition.isidentifier() else "")


def _where(source: Source, module: str, line: int | None, column: int | None) -> str:
    """Where a module's problem is, in the learner's own terms (Markdown)."""
    if source.kind == "notebook":
        entry = _cell_of(source, module, line=line) if line else None
        return _cell_words(entry) if entry else f"your notebook {code_span(source.notebook)}"
    where = code_span(_file_name(source, module))
    if line:
        where += f", line {line}" + (f", column {column}" if column else "")
    return where


def in_notebook_terms(text: str, source: Source) -> str:
    """A message about the modules made from a notebook, in terms of the notebook: the
    cell for a file and line, "your notebook" for a module's file name."""
    names = "|".join(re.escape(m.name) for m in catalogue.load().modules)
    pattern = re.compile(rf'(?:File ")?[^\s"\'`]*?\b({names})\.py"?(?:, line (\d+)|:(\d+))?')

    def words(match: re.Match) -> str:
        line = match.group(2) or match.group(3)
        entry = _cell_of(source, match.group(1), line=int(line)) if line else None
        return _cell_words(entry).replace("`", "") if entry else "your notebook"

    return pattern.sub(words, text)


def _broken_lines(source: Source, module: str, info: dict) -> list[str]:
    line, column = info.get("line"), info.get("column")
    line = line if isinstance(line, int) else None
    column = column if isinstance(column, int) else None
    said = str(info.get("error", "it cannot be imported"))
    if info.get("text"):
        said += "\n    " + str(info["text"]).rstrip()
    return [f"It cannot be run, so none of its functions could be checked. The problem is at "
            f"{_where(source, module, line, column)}:", *code_block(said)]


def render(row: Row, results: Results | None, source: Source | None = None) -> str:
    lines = [f"# Feedback for {code_span(row.learner)}", ""]
    if results is None:
        what = "did not finish in time" if row.status == "timeout" else "could not be graded"
        return "\n".join(lines + [f"Your submission {what}:", *code_block(row.reason), f"Score: 0/{row.max_score}"]) + "\n"
    source = source or Source("files")
    lines += [f"Score: **{row.score}/{row.max_score}** (seed {row.seed})", ""]
    if row.reason:  # a note for a graded submission, such as which of several entries was graded
        lines += [f"Note: {code_span(row.reason)}", ""]
    broken, graded = results.broken_modules, results.exercises
    notebook = source.kind == "notebook"
    if notebook and broken:  # one notebook makes every module: say each problem once
        lines += [f"## Your notebook {code_span(source.notebook)} cannot be run", ""]
        told = set()
        for module, info in broken.items():
            text = "\n".join(_broken_lines(source, module, info))
            if text not in told:
                told.add(text)
                lines += text.split("\n")
    for module in catalogue.load().modules:
        in_module = [e for e in module.exercises if e.key in graded]
        if not in_module:
            continue
        earned = sum(graded[e.key].score for e in in_module)
        heading = module.title if notebook else f"{code_span(_file_name(source, module.name))} · {module.title}"
        lines += [f"## {heading}: {earned}/{module.points}", ""]
        if module.name in broken and not notebook:
            lines += _broken_lines(source, module.name, broken[module.name])
        for exercise in in_module:
            lines += _exercise_lines(exercise, graded[exercise.key], results, source,
                                     module_broken=module.name in broken)
    return "\n".join(lines).rstrip("\n") + "\n"


def _exercise_lines(exercise, result: FunctionEntry, results: Results, source: Source, *, module_broken: bool) -> list[str]:
    status = result.status
    where = ""
    if source.kind == "notebook":
        entry = _cell_of(source, exercise.module, definition=exercise.function)
        where = f" (cell {entry.get('cell')})" if entry else ""
    lines = [f"### {MARKS[status]} `{exercise.function}`{where}: {WORDS[status]}, "
             f"{result.score}/{result.max_score}", ""]
    if status in ("passed", "not_attempted"):
        return lines
    if module_broken:
        return lines + ["Not checked: its code cannot be run (see above).", ""]
    for check, message in results.messages(exercise.key):
        if source.kind == "notebook":
            message = in_notebook_terms(message, source)
        lines += [f"**{check}**:", *code_block(message)]
    return lines + [f"Hint: {exercise.hint}", ""]
