"""Finding the learners in a submissions folder, and unpacking each into a private copy.

Every entry of the folder is one learner, named by the entry without its extension. What
cannot be graded still becomes a learner, with the reason, so it gets a row of its own.
How a folder, a .zip or a notebook is read is grader/core/submission.py's.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

from grader.batch.outputs import name_problem
from grader.core.submission import (
    SubmissionError, cells_of, copy_folder, extract_notebook, extract_zip, target_in,
)


@dataclass
class Submission:
    learner: str
    path: Path
    problem: str | None = None  # set when the entry cannot be graded at all
    named_ok: bool = True  # False: the name cannot be a folder in OUT (outputs.name_problem)


@dataclass
class Source:
    """How the learner knows their code: files (``folder`` their modules are in, inside
    their submission, "" at its top) or a notebook (its file name, and cells.json: which
    cell each line of the modules made from it came from)."""

    kind: str  # files | notebook
    folder: str = ""
    notebook: str = ""
    cells: dict | None = None


@dataclass
class Unpacked:
    target: Path  # the folder to pass as --target
    source: Source
    seconds: float  # spent unpacking, out of the submission's time limit


def collect(folder: Path) -> list[Submission]:
    """One submission per entry, sorted by learner name; hidden entries are skipped."""
    submissions, seen = [], set()
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            continue
        learner = entry.stem if entry.is_file() else entry.name
        problem = _first_problem(entry)
        if learner in seen:  # alice/ and alice.zip: grading both would overwrite one row
            learner, problem = entry.name, f"another entry is also named {learner}"
        seen.add(learner)
        bad_name = name_problem(learner)
        submissions.append(Submission(learner, entry, bad_name or problem, named_ok=bad_name is None))
    return submissions


def _first_problem(entry: Path) -> str | None:
    if entry.is_symlink():
        return "a symbolic link, not a folder or a .zip"
    if entry.is_dir() or entry.suffix.lower() in (".zip", ".ipynb"):
        return None
    return f"a stray file ({entry.name}): a submission is a folder, a .zip or a notebook"


def unpack(submission: Submission, destination: Path, time_limit: float = 900.0,
           stop: threading.Event | None = None) -> Unpacked:
    """A private copy of the submission's modules in ``destination``. A notebook is read
    in a process of its own within ``time_limit`` (ended early when ``stop`` is set).
    Raises SubmissionError when there is nothing to grade."""
    started, entry = time.monotonic(), submission.path
    if submission.problem:
        raise SubmissionError(submission.problem)
    if entry.is_dir():
        copy_folder(entry, destination)
    elif entry.suffix.lower() == ".zip":
        extract_zip(entry, destination)
    elif entry.suffix.lower() == ".ipynb":
        extract_notebook(entry, destination, time_limit, stop or threading.Event())
    else:
        raise SubmissionError("not a folder, a .zip or a notebook")
    target = target_in(destination)
    if entry.suffix.lower() == ".ipynb" and not entry.is_dir():
        source = Source("notebook", notebook=entry.name, cells=cells_of(target))
    else:
        folder = target.relative_to(destination).as_posix()
        source = Source("files", folder="" if folder == "." else folder + "/")
    return Unpacked(target, source, time.monotonic() - started)


