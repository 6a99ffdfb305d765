"""Finding the learners in a submissions folder, packing each into bytes, and unpacking
those bytes into a private copy where it is graded (this machine, or a Dask worker).

Every entry of the folder is one learner, named by the entry without its extension. What
cannot be graded still becomes a learner, with the reason, so it gets a row of its own.
How a folder, a .zip or a notebook is read, and the limits (MAX_*) that hold for every
kind wherever it is graded, are grader/core/submission.py's.
"""
from __future__ import annotations

import contextlib
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from grader.batch.outputs import name_problem
from grader.core.submission import (
    MAX_ARCHIVE_MEMBERS, MAX_UNPACKED_BYTES, SubmissionError, cells_of, extract_notebook, extract_zip, read_file, target_in,
    zip_folder,
)


@dataclass
class Submission:
    learner: str
    path: Path
    problem: str | None = None  # set when the entry cannot be graded at all
    named_ok: bool = True  # False: the name cannot be a folder in OUT (outputs.name_problem)
    note: str = ""  # what the instructor should know of a graded entry (which of several was graded)


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


DUPLICATES = ("error", "newest")


def collect(folder: Path, duplicates: str = "error") -> list[Submission]:
    """One submission per learner, sorted by name; hidden entries are skipped. Entries that
    name one learner (``ada/`` and ``ada.zip``) are never a silent choice: an ``error``
    naming them all, or with ``duplicates="newest"`` the newest of them, said so."""
    by_learner: dict[str, list[Path]] = {}
    for entry in sorted(folder.iterdir()):
        if not entry.name.startswith("."):
            by_learner.setdefault(entry.stem if entry.is_file() else entry.name, []).append(entry)
    submissions = []
    for learner, entries in sorted(by_learner.items()):
        bad_name = name_problem(learner)
        entry, problem, note = entries[0], _first_problem(entries[0]), ""
        if len(entries) > 1:
            named = ", ".join(_shown(e) for e in entries)
            if duplicates == "newest":
                entry = max(entries, key=_newest_change)
                problem, note = _first_problem(entry), f"graded {_shown(entry)}, the newest of {named} (--duplicates newest)"
            else:
                problem = f"several entries are named {learner}: {named}; keep one, or grade with --duplicates newest"
        submissions.append(Submission(learner, entry, bad_name or problem, named_ok=bad_name is None, note=note))
    return submissions


def _shown(entry: Path) -> str:
    return entry.name + ("/" if entry.is_dir() and not entry.is_symlink() else "")


def _newest_change(entry: Path) -> float:
    """When the entry last changed: a folder's, its newest file's (at most a submission's worth)."""
    newest = entry.lstat().st_mtime
    if entry.is_dir() and not entry.is_symlink():
        for count, (root, _, names) in enumerate(os.walk(entry)):
            if count > MAX_ARCHIVE_MEMBERS:
                break
            for name in names[:MAX_ARCHIVE_MEMBERS]:
                with contextlib.suppress(OSError):
                    newest = max(newest, os.lstat(os.path.join(root, name)).st_mtime)
    return newest


def _first_problem(entry: Path) -> str | None:
    if entry.is_symlink():
        return "a symbolic link, not a folder or a .zip"
    if entry.is_dir() or entry.suffix.lower() in (".zip", ".ipynb"):
        return None
    return f"a stray file ({entry.name}): a submission is a folder, a .zip or a notebook"


@dataclass(frozen=True)
class Packed:
    """A submission as it travels to whatever grades it (a thread of this batch, a Dask
    worker on another machine): its bytes and what they are, nothing that names a file here."""

    learner: str
    name: str  # the entry's name in the submissions folder (a notebook's is in the feedback)
    kind: str = ""  # folder (a zip the batch made of it) | zip | notebook
    data: bytes = b""
    problem: str | None = None  # why it cannot be graded at all


def pack(submission: Submission) -> Packed:
    """The submission's bytes: a folder's regular files zipped by the rules of a private
    copy, a .zip or a notebook as it is, at most MAX_UNPACKED_BYTES each."""
    entry, learner = submission.path, submission.learner
    if submission.problem:
        return Packed(learner, entry.name, problem=submission.problem)
    try:
        if entry.is_dir():
            return Packed(learner, entry.name, "folder", zip_folder(entry))
        kind = {".zip": "zip", ".ipynb": "notebook"}.get(entry.suffix.lower())
        if kind is None:
            raise SubmissionError("not a folder, a .zip or a notebook")
        too_big = f"the {'.zip' if kind == 'zip' else kind} is larger than {MAX_UNPACKED_BYTES // 1024**2} MB"
        return Packed(learner, entry.name, kind, read_file(entry.parent, entry.name, MAX_UNPACKED_BYTES, too_big))
    except SubmissionError as error:
        return Packed(learner, entry.name, problem=str(error))
    except OSError as error:
        return Packed(learner, entry.name, problem=f"the submission cannot be read ({error.strerror or error})")
    except Exception as error:  # one learner's surprise must not end the batch (pack runs outside any grading)
        return Packed(learner, entry.name, problem=f"the batch could not read it ({type(error).__name__}: {error})")


def unpack(packed: Packed, destination: Path, time_limit: float = 900.0,
           stop: threading.Event | None = None) -> Unpacked:
    """A private copy of the submission's modules in ``destination``, made from its bytes
    wherever it is graded. A notebook is read in a process of its own within ``time_limit``
    (ended early when ``stop`` is set). Raises SubmissionError when there is nothing to grade."""
    started = time.monotonic()
    if packed.problem:
        raise SubmissionError(packed.problem)
    if packed.kind == "notebook":
        notebook = destination.with_name(destination.name + ".ipynb")
        notebook.write_bytes(packed.data)
        extract_notebook(notebook, destination, time_limit, stop or threading.Event())
        target = target_in(destination)
        source = Source("notebook", notebook=packed.name, cells=cells_of(target))
    elif packed.kind in ("folder", "zip"):
        extract_zip(packed.data, destination)
        target = target_in(destination)
        folder = target.relative_to(destination).as_posix()
        source = Source("files", folder="" if folder == "." else folder + "/")
    else:
        raise SubmissionError("not a folder, a .zip or a notebook")
    return Unpacked(target, source, time.monotonic() - started)
