"""The learner's summary: every graded function with its points and status, the total,
and the next thing to do, in plain words."""
from __future__ import annotations

import textwrap

from grader.core.results import Grade

MARKS = {"passed": "✔", "failed": "✘", "error": "!", "not_attempted": "·"}
WORDS = {"passed": "passed", "failed": "failed", "error": "error", "not_attempted": "not attempted"}


def _indent(text: str, prefix: str = "      ") -> list[str]:
    lines = []
    for line in text.strip().splitlines() or [""]:
        wrapped = textwrap.wrap(line, 96, subsequent_indent="  ") or [""]
        lines += [prefix + part for part in wrapped]
    return lines


def module_heading(module) -> str:
    return f"{module.name}.py · {module.title}"


def render(grade: Grade, *, details: bool = True, heading=module_heading, next_line=None) -> list[str]:
    """``heading`` names a module's block; ``next_line`` says what to do next (other
    commands, such as ``python -m grader inspect``, grade things that are not files)."""
    results = grade.exercises()
    lines = []
    for module in grade.catalogue.modules:
        in_module = [r for r in results if r.exercise.module == module.name]
        if not in_module:
            continue
        earned = sum(r.score for r in in_module)
        possible = sum(r.max_score for r in in_module)
        lines.append(heading(module).ljust(60) + f"{earned:>3}/{possible}")
        for result in in_module:
            status = result.status
            lines.append(
                f"  {MARKS[status]} {result.exercise.function}".ljust(47)
                + f"{WORDS[status]:<14}{result.score:>2}/{result.max_score}"
            )
            if details and status in ("failed", "error"):
                said = set()
                for check in result.checks:
                    if check.status != "passed" and check.message not in said:
                        said.add(check.message)
                        lines += _indent(f"[{check.check.replace('_', ' ')}] {check.message}")
                lines += _indent(f"Hint: {result.exercise.hint}")
        lines.append("")
    lines.append(f"Total: {grade.score}/{grade.max_score}")
    lines.append((next_line or next_step)(grade))
    return lines


def next_step(grade: Grade, *, command: str = "pytest grader", folder: str = "exercises/") -> str:
    """What to do next, as a command the learner can paste (``command`` and ``folder`` say
    how this grading was run, so the advice grades the same folder again)."""
    results = grade.exercises()
    for status in ("error", "failed"):
        for r in results:
            if r.status == status:
                return (
                    f"Next: fix `{r.exercise.function}` in {r.exercise.module}.py (see the message above), "
                    f"then rerun: {command} -k {r.exercise.function}"
                )
    for r in results:
        if r.status == "not_attempted":
            return (
                f"Next: implement `{r.exercise.function}` in {folder}{r.exercise.module}.py, "
                f"then check it: {command} -k {r.exercise.function}"
            )
    return "Next: nothing left to fix. Open your own runs in the MLflow UI (see the README)."
