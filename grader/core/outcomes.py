"""What can happen to a learner's call, as exceptions a check raises.

A check that cannot even get a result from the learner's function stops with one of
these; the plugin turns it into the function's status and a plain sentence, never a
traceback of the grader.
"""
from __future__ import annotations

from grader.sandbox.client import CallResult


class LearnerOutcome(Exception):
    status = "error"


class NotAttempted(LearnerOutcome):
    status = "not_attempted"


class LearnerError(LearnerOutcome):
    status = "error"


def outcome_of(result: CallResult, module: str, function: str, timeout: float) -> LearnerOutcome | None:
    """The exception a check raises for this call, or None when it returned normally."""
    where = f"`{function}` in {module}.py"
    output = f"\nWhat it printed last:\n{result.output.strip()}" if result.output.strip() else ""
    if result.status == "ok":
        return None
    if result.status == "not_implemented":
        return NotAttempted(
            f"Not attempted yet: {where} still raises NotImplementedError. "
            "Replace that line with your code."
        )
    if result.status == "missing":
        return LearnerError(f"{module}.py has no function called `{function}`: keep the name from the stub.")
    if result.status == "timeout":
        return LearnerError(
            f"{where} did not finish within {timeout:g} seconds and was stopped "
            f"(an endless loop, or waiting for something that never comes?).{output}"
        )
    if result.status == "crashed":
        return LearnerError(f"{where} crashed: {result.error}.{output}")
    if result.status == "bad_return":
        return LearnerError(f"{where} returned something the grader cannot use: {result.error}")
    return LearnerError(f"{where} raised an exception:\n{result.error}{output}")
