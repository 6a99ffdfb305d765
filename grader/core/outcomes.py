"""What can happen to a learner's call, as exceptions a check raises.

A check that cannot even get a result from the learner's function stops with one of
these; the plugin turns it into the function's status and a plain sentence, never a
traceback of the grader.
"""
from __future__ import annotations

import re

from grader.core.text import without_data
from grader.sandbox.protocol import CallResult, Status


class LearnerOutcome(Exception):
    status = "error"


class NotAttempted(LearnerOutcome):
    status = "not_attempted"


class LearnerError(LearnerOutcome):
    status = "error"

    def __init__(self, message: str, raised: str | None = None):
        super().__init__(message)
        self.raised = raised  # the exception the learner's function raised, when it did


class BrokenModule(LearnerError):
    """The learner's module cannot be imported (a syntax error, a failing import, an
    exception at import): no function of it can run. ``problem`` says where, once, for the
    summary: {"error", "line", "column", "text"}; the message of each check only points at it."""

    def __init__(self, module: str, function: str, problem: dict):
        self.module, self.function, self.problem = module, function, problem
        where = f"{module}.py, line {problem['line']}" if problem.get("line") else f"{module}.py"
        super().__init__(
            f"`{function}` could not run: {module}.py cannot be imported ({where}: {problem['error']}). "
            "Fix that first; then every function of it can be checked."
        )


# What learners commonly return instead of plain data, and what to return instead.
RETURN_INSTEAD = {
    "mlflow.entities.run.Run": "a Run object: return its id, `run.info.run_id`",
    "mlflow.entities.run_info.RunInfo": "a RunInfo object: return its id, `run_info.run_id`",
    "mlflow.tracking.fluent.ActiveRun": "the ActiveRun of `mlflow.start_run`: return its id, `run.info.run_id`",
    "mlflow.entities.experiment.Experiment": "an Experiment object: return its id, `experiment.experiment_id`",
    "mlflow.entities.model_registry.model_version.ModelVersion":
        "a ModelVersion object: return its number as an int, `int(model_version.version)`",
    "mlflow.models.model.ModelInfo": "the ModelInfo of `log_model`: return its URI, `model_info.model_uri`",
    "mlflow.entities.logged_model.LoggedModel": "a LoggedModel object: return its URI, `f\"models:/{model.model_id}\"`",
    "pandas.core.frame.DataFrame": "a pandas DataFrame (what `mlflow.search_runs` gives): return the one value asked for",
}

# Errors whose own words do not tell a learner what to do, and what does (``\g<name>`` in
# it: what the pattern's group of that name found).
KNOWN_ERRORS = (
    (re.compile(r"untrusted types", re.IGNORECASE),
     'Since MLflow 3.14 scikit-learn models are saved with skops, which refuses tree models such as a random '
     'forest: pass serialization_format="cloudpickle" to mlflow.sklearn.log_model (or save_model), as the '
     "docstring says."),
    (re.compile(r"No space left on device|Disk quota exceeded"),
     "The code filled the space a learner's code is given (its folder and /tmp are capped in bytes and in "
     "files; results.json's extra_data.sandbox says how much): a function of the lesson writes a few files, "
     "not thousands."),
    # MLflow's message quotes the whole input first: its cause, last, is what to read.
    # (Linear: no second "Failed to enforce" inside, so a long message cannot make it scan from every start.)
    (re.compile(r"Failed to enforce schema of (?:(?!Failed to enforce schema of ).)*?Error: (?P<cause>[^\n]{1,600})",
                re.DOTALL),
     "The model's signature refused the input: MLflow checks what a model is given against the columns and "
     "types it was logged with, and found: \\g<cause>\nGive it a pandas DataFrame with those columns and types "
     "(X itself: X.values, X.to_numpy() or a list lose the column names)."),
    # MLflow suggests nested=True; in these exercises the cause is a run that was never ended.
    (re.compile(r"Run with UUID \w+ is already active"),
     "That run was started earlier and never ended: a `mlflow.start_run(...)` outside a `with` block, earlier "
     "in this call (an earlier line, the loop's previous turn) or in a helper it used. End each run where it "
     "should end, rather than nesting: open it with `with mlflow.start_run(...):` (it ends with the block), or "
     "call mlflow.end_run() before starting the next. nested=True only makes the new run a child of the open "
     "one, which stays open; it is for child runs meant to sit inside a parent, as in tune_hyperparameters."),
)


def advice_for(error: str) -> str:
    return "".join(f"\n{match.expand(advice)}" for pattern, advice in KNOWN_ERRORS if (match := pattern.search(error or "")))


def notes_of(result: CallResult) -> list[str]:
    """What a call did that costs no points but the learner should know: MLflow's deprecation
    warnings, and calls the grader ignored (a tracking URI of the learner's)."""
    return [f"MLflow warned during your call: {said}" for said in result.warnings] + [
        ignored_note(call["api"], call["uri"]) for call in result.ignored]


_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")


def ignored_note(api: str, uri: str) -> str:
    """Why the grader ignored the learner's ``mlflow.set_tracking_uri(uri)`` (or registry URI)."""
    note = (f"Your code called {api}({uri!r}), and the grader ignored it: while grading, each check gives your "
            "code a temporary store of its own, so a function need not choose one (choose yours where you run your "
            "code yourself, such as export MLFLOW_TRACKING_URI=sqlite:///mlflow.db).")
    scheme = _SCHEME.match(uri)  # not urlparse: it raises on some learner URIs ("http://[::1")
    if scheme is None or scheme[1].lower() == "file":  # MLflow 3 refuses these itself
        note += (" Outside the grader, MLflow 3 refuses a file store ('file:' or a plain folder) unless "
                 "MLFLOW_ALLOW_FILE_STORE=true: use 'sqlite:///mlflow.db' or a tracking server (http://...).")
    return note


def outcome_of(result: CallResult, module: str, function: str, timeout: float,
               source: str | None = None) -> LearnerOutcome | None:
    """The exception a check raises for this call, or None when it returned normally
    (``source``: the learner's module, to quote the line a stopped call was stuck on)."""
    where = f"`{function}` in {module}.py"
    output = f"\nWhat it printed last:\n{result.output.strip()}" if result.output.strip() else ""
    if result.status == Status.OK:
        return None
    if result.status == Status.NOT_IMPLEMENTED:
        return NotAttempted(
            f"Not attempted yet: {where} still raises NotImplementedError. "
            "Replace that line with your code."
        )
    if result.status == Status.MISSING:
        return LearnerError(f"{module}.py has no function called `{function}`: keep the name from the stub.")
    if result.status == Status.TIMEOUT:
        return LearnerError(
            f"{where} did not finish within {timeout:g} seconds and was stopped "
            f"(an endless loop, or waiting for something that never comes?).{stuck_line(result, module, source)}{output}"
        )
    if result.status == Status.CRASHED:
        return LearnerError(f"{where} crashed: {result.error}.{output}{advice_for(output)}")
    if result.status == Status.BAD_RETURN:
        instead = RETURN_INSTEAD.get(result.type or "")
        if instead:
            return LearnerError(f"{where} returned {instead}.")
        return LearnerError(f"{where} returned something the grader cannot use: {without_data(result.error or '')}")
    if result.at_import:
        return BrokenModule(module, function, import_problem(result.error or "", module, output))
    return LearnerError(f"{where} raised an exception:\n{without_data(result.error or '')}{advice_for(result.error)}{output}",
                        raised=result.error or "")


def stuck_line(result: CallResult, module: str, source: str | None) -> str:
    """Where in the learner's module a stopped call was: its innermost frame there."""
    frame = next(((line, function) for name, line, function in result.stuck_at if name == f"{module}.py"), None)
    if frame is None:
        return ""
    line, function = frame
    lines = (source or "").splitlines()
    text = f": {lines[line - 1].strip()[:200]}" if 0 < line <= len(lines) else ""
    return f"\nIt was stopped at line {line} of {module}.py, in `{function[:100]}`{text}"


_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*: ")
_FRAME = re.compile(r"^\s*(?P<file>[^,\n]+\.py), line (?P<line>\d+), in <module>: (?P<text>.*)$", re.MULTILINE)


def import_problem(error: str, module: str, output: str = "") -> dict:
    """{"error", "line", "column", "text"} of a module that raised while being imported, read
    from the worker's account of it (the exception, then the learner's frames)."""
    frames = [f for f in _FRAME.finditer(error) if f["file"].endswith(f"{module}.py")]
    lines = error.strip().splitlines() or ["it raised an exception"]
    said = next((line for line in lines if _EXCEPTION_LINE.match(line)), lines[0])
    problem = {"error": said.strip()[:300], "line": None, "column": None, "text": None}
    if frames:
        problem.update(line=int(frames[-1]["line"]), text=frames[-1]["text"][:300])
    if output:
        problem["output"] = output.strip()[-1000:]
    return problem
