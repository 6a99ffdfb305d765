"""feedback.md: what a learner reads back, per function: status, points, message and hint."""
from __future__ import annotations

from grader.core import catalogue
from grader.core.summary import MARKS, WORDS
from grader.batch.gradebook import Row


def _message_of(results: dict, key: str) -> str:
    """The first unmet check's message, without the hint (printed on its own line)."""
    for test in results.get("tests", []):
        if test["name"].startswith(f"{key}:") and test["status"] != "passed":
            return test.get("output", "").split("\nHint: ")[0].strip()
    return ""


def render(row: Row, results: dict | None) -> str:
    lines = [f"# Feedback for {row.learner}", ""]
    if results is None:
        what = "did not finish in time" if row.status == "timeout" else "could not be graded"
        lines += [f"Your submission {what}: {row.message}", "", f"Score: 0/{row.max_score}"]
        return "\n".join(lines) + "\n"
    lines += [f"Score: **{row.score}/{row.max_score}** (seed {row.seed})", ""]
    graded = results["extra_data"]["exercises"]
    for exercise in catalogue.load().exercises:
        result = graded.get(exercise.key)
        if result is None:
            continue
        status = result["status"]
        lines.append(f"## {MARKS[status]} `{exercise.function}` ({exercise.module}.py): "
                     f"{WORDS[status]}, {result['score']}/{result['max_score']}")
        if status != "passed":
            message = _message_of(results, exercise.key)
            if message:
                lines += ["", "```", message, "```"]
            lines += ["", f"Hint: {exercise.hint}"]
        lines.append("")
    return "\n".join(lines)
