"""Finding the learners in a submissions folder, and unpacking each into a private copy.

Every entry of the folder is one learner, named by the entry without its extension. What
cannot be graded still becomes a learner, with the reason, so it gets a row of its own.
"""
from __future__ import annotations

import shutil
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from grader.core.source import TargetError, resolve_target

# An archive may hold at most this much, so a zip bomb cannot fill the instructor's disk.
MAX_UNPACKED_BYTES = 50 * 1024**2
MAX_ARCHIVE_MEMBERS = 2000


class SubmissionError(Exception):
    """Why a submission cannot be graded, in words for the instructor."""


@dataclass
class Submission:
    learner: str
    path: Path
    problem: str | None = None  # set when the entry cannot be graded at all


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
        submissions.append(Submission(learner, entry, problem))
    return submissions


def _first_problem(entry: Path) -> str | None:
    if entry.is_symlink():
        return "a symbolic link, not a folder or a .zip"
    if entry.is_dir() or entry.suffix.lower() in (".zip", ".ipynb"):
        return None
    return f"a stray file ({entry.name}): a submission is a folder, a .zip or a notebook"


def unpack(submission: Submission, destination: Path) -> Path:
    """A private copy of the submission's modules in ``destination``; returns the folder
    to pass as ``--target``. Raises SubmissionError when there is nothing to grade."""
    entry = submission.path
    if entry.is_dir():
        _copy_folder(entry, destination)
    elif entry.suffix.lower() == ".zip":
        _extract_zip(entry, destination)
    elif entry.suffix.lower() == ".ipynb":
        _extract_notebook(entry, destination)
    else:
        raise SubmissionError(submission.problem or "not a folder, a .zip or a notebook")
    return _target_in(destination)


def _copy_folder(source: Path, destination: Path) -> None:
    # Regular files only: a symlink could point at another learner's work or the solutions.
    def ignore(folder: str, names: list[str]) -> list[str]:
        return [n for n in names if Path(folder, n).is_symlink() or n.startswith(".") or n == "__pycache__"]

    if not any(source.iterdir()):
        raise SubmissionError("the folder is empty")
    shutil.copytree(source, destination, ignore=ignore, symlinks=False)


def _extract_zip(archive: Path, destination: Path) -> None:
    try:
        with zipfile.ZipFile(archive) as bundle:
            members = bundle.infolist()
            _check_members(members)
            destination.mkdir(parents=True)
            for member in members:
                if member.is_dir():
                    continue
                target = destination.joinpath(*PurePosixPath(member.filename).parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                with bundle.open(member) as source, open(target, "wb") as out:
                    shutil.copyfileobj(source, out)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, NotImplementedError) as error:
        raise SubmissionError(f"the .zip cannot be read ({error})") from None


def _check_members(members: list[zipfile.ZipInfo]) -> None:
    if not members:
        raise SubmissionError("the .zip is empty")
    if len(members) > MAX_ARCHIVE_MEMBERS:
        raise SubmissionError(f"the .zip holds {len(members)} files, more than {MAX_ARCHIVE_MEMBERS}")
    if sum(m.file_size for m in members) > MAX_UNPACKED_BYTES:
        raise SubmissionError(f"the .zip unpacks to more than {MAX_UNPACKED_BYTES // 1024**2} MB")
    for member in members:
        path = PurePosixPath(member.filename.replace("\\", "/"))
        if path.is_absolute() or ".." in path.parts:
            raise SubmissionError(f"the .zip holds a path that climbs out of its folder: {member.filename!r}")
        if stat.S_ISLNK(member.external_attr >> 16):
            raise SubmissionError(f"the .zip holds a symbolic link: {member.filename!r}")


def _extract_notebook(notebook: Path, destination: Path) -> None:
    """The one place a notebook submission is turned into modules."""
    try:
        from grader.authoring.notebooks import extract_submission
    except ImportError:
        raise SubmissionError("notebook submissions are not supported yet") from None
    destination.mkdir(parents=True)
    try:
        extract_submission(notebook, destination)
    except Exception as error:  # a learner's notebook may be anything
        raise SubmissionError(f"the notebook cannot be read ({type(error).__name__}: {error})") from None


def _target_in(folder: Path) -> Path:
    """The folder holding the modules, accepting one wrapping folder (as zips often have)."""
    candidates = [folder] + [p for p in sorted(folder.iterdir()) if p.is_dir()]
    for candidate in candidates:
        try:
            return resolve_target(candidate)
        except TargetError:
            continue
    try:
        resolve_target(folder)
    except TargetError as error:
        raise SubmissionError(str(error).replace(str(folder), "the submission")) from None
    raise SubmissionError("no modules to grade")
