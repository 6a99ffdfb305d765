"""Grading one learner where a platform put their work: the same path as a batch's learner.

The platform's folder (``/autograder/submission``, ``/grade/student``, a Classroom
repository) is read as a batch reads a learner's entry (grader/batch/collect.py): the
modules it holds, or else the one ``.zip`` or lesson notebook in it, through
core/submission.py only (regular files, no links followed, bounded sizes). The learner is
then graded by a batch's engine with one grading host and ``--isolation limits``: the
platform's container is the sandbox, and bubblewrap rarely works inside one. What comes
back is the kit's own results.json (the score `pytest grader --grade-json` writes) and
the learner's feedback.md, or why there is nothing to grade.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import sys
import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from grader.batch.collect import Source, Submission
from grader.core import catalogue
from grader.core.results import HINT, Results, TestEntry
from grader.core.submission import SubmissionError, zip_folder
from grader.sandbox.protocol import DEFAULT_CALL_TIMEOUT

# A platform stops a grading at its own limit (Gradescope's default is 10 minutes) and then
# shows nothing: the kit stops first, so the learner reads why.
GRADING_SECONDS = 480
ISOLATION = "limits"
LEARNER = "submission"  # how feedback.md names the learner: the platform knows who it is
# Of the kit's extra_data, what a platform keeps: nothing that names a temporary folder.
KEPT_EXTRA = ("seed", "exercises", "broken_modules", "isolation")


@dataclass
class PlatformGrading:
    """One learner graded on a platform: the kit's results.json and feedback.md, or
    ``problem``, why the submission could not be graded at all (then ``results`` is None)."""

    results: Results | None
    feedback: str  # Markdown, the kit's feedback.md
    seed: int
    max_score: int
    problem: str | None = None
    source: Source | None = None  # how the learner knows their code (a notebook's cells)

    @property
    def score(self) -> int:
        return self.results.score if self.results else 0

    def extra_data(self) -> dict:
        extra = self.results.to_json()["extra_data"] if self.results else {}
        return {key: extra[key] for key in KEPT_EXTRA if key in extra} | {"seed": self.seed}

    def summary(self) -> str:
        """One line for the platform's log (the instructor's)."""
        return f"score {self.score}/{self.max_score}, seed {self.seed}" + (f": not graded: {self.problem}" if self.problem else "")

    def tests(self) -> list[TestEntry]:
        return list(self.results.tests) if self.results else []


def module_files() -> set[str]:
    return {f"{module.name}.py" for module in catalogue.load().modules}


def find_submission(folder: Path) -> Submission:
    """The learner's entry, as a batch would take it: ``folder`` itself when it holds the
    modules (at its top, in a folder, in exercises/), else its one ``.zip``, else its one
    notebook; a batch Submission with ``problem`` set when there is none of these."""
    try:  # the folder's regular files, as a batch packs them: no link is followed
        names = zipfile.ZipFile(io.BytesIO(zip_folder(folder))).namelist()
    except SubmissionError as error:
        return Submission(LEARNER, folder, problem=f"the submission cannot be graded: {error}")
    modules = module_files()
    if any(PurePosixPath(name).name in modules for name in names):
        return Submission(LEARNER, folder)
    for suffix, what in ((".zip", ".zip files"), (".ipynb", "notebooks")):
        found = sorted(name for name in names if "/" not in name and name.lower().endswith(suffix))
        if len(found) == 1:
            return Submission(LEARNER, folder / found[0])
        if found:
            return Submission(LEARNER, folder, problem=f"the submission holds several {what} ({', '.join(found)}): "
                                                       "hand in one")
    return Submission(LEARNER, folder, problem="the submission holds none of " + ", ".join(sorted(modules)) +
                      ", nor a .zip of them, nor the lesson's notebook (.ipynb)")


def grade(folder: Path, seed: int | None = None, timeout: float = GRADING_SECONDS) -> PlatformGrading:
    """Grade the learner's work in ``folder``. Never raises: whatever goes wrong becomes
    ``problem``, so the platform always gets a result that says why."""
    from grader.core.options import new_seed

    seed = new_seed() if seed is None else seed
    try:
        return _grade(folder, seed, timeout)
    except Exception as error:  # the platform must get a result, whatever happened
        problem = f"the autograder could not grade it ({type(error).__name__}: {error})"
        return PlatformGrading(None, f"Your submission could not be graded: {problem}\n", seed,
                               catalogue.load().points, problem)


def _grade(folder: Path, seed: int, timeout: float) -> PlatformGrading:
    from grader.batch import feedback
    from grader.batch.grading import GradingSettings
    from grader.batch.local_engine import LocalEngine

    settings = GradingSettings(seed, timeout, min(DEFAULT_CALL_TIMEOUT, timeout / 4), ISOLATION)
    with LocalEngine(settings, 1) as engine:
        [(_, outcome)] = list(engine.outcomes([find_submission(folder)], threading.Event()))
    row = outcome.row
    print(outcome.log, file=sys.stderr)  # the instructor's log: what `pytest grader` printed
    graded = row.status == "graded" and outcome.results is not None
    return PlatformGrading(outcome.results if graded else None,
                           feedback.render(row, outcome.results if graded else None, outcome.source),
                           seed, row.max_score, None if graded else row.reason or row.status, outcome.source)


def arguments(description: str) -> argparse.ArgumentParser:
    """The entry point's arguments on every platform: where the learner's work is, where the
    results go, and how to grade."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("submission", type=Path, help="the folder the platform put the learner's work in")
    parser.add_argument("results", type=Path, help="the results file the platform reads")
    parser.add_argument("--seed", type=int, default=None, help="seed of the random inputs (default: a new one each time)")
    parser.add_argument("--timeout", type=float, default=GRADING_SECONDS,
                        help="wall-clock seconds the grading may take (default %(default)s)")
    return parser


def write_json(path: Path, data: dict) -> None:
    """Written whole or not at all: a platform reads the file once the entry point ends."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(data, indent=2), encoding="utf-8")
    os.replace(partial, path)


def exercise_of(test: TestEntry) -> catalogue.Exercise:
    """The function a test of results.json checks, from its name (core/results.py's test_name)."""
    module, function = test.function.split(".", 1)
    return catalogue.load().exercise(module, function)


def said(grading: PlatformGrading, test: TestEntry) -> tuple[str, str, str]:
    """(message, hint, notes) the kit wrote for one check, the learner's text in the
    learner's terms (a notebook's cells, not the modules made from it); the hint only where
    the kit gave it (a check not met, in a module that runs)."""
    from grader.batch.feedback import in_notebook_terms

    hint = exercise_of(test).hint
    message, hinted, notes = test.output.partition(f"{HINT}{hint}")
    if grading.source is not None and grading.source.kind == "notebook":
        message, notes = in_notebook_terms(message, grading.source), in_notebook_terms(notes, grading.source)
    return message.strip(), hint if hinted else "", notes.strip()


def said_in_markdown(grading: PlatformGrading, test: TestEntry) -> str:
    """One check's output as Markdown: the learner's text fenced (never read as Markdown or
    HTML), the hint as the kit wrote it."""
    from grader.batch.feedback import code_block

    message, hint, notes = said(grading, test)
    lines = code_block(message) if message else []
    lines += [f"Hint: {hint}", ""] if hint else []
    lines += code_block(notes) if notes else []
    return "\n".join(lines).strip("\n")


def said_in_text(grading: PlatformGrading, test: TestEntry) -> str:
    """One check's output as plain text, for a platform that shows it as it is."""
    message, hint, notes = said(grading, test)
    return "\n".join(part for part in (message, hint and f"Hint: {hint}", notes) if part)
