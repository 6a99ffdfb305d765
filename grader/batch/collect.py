"""Finding the learners in a submissions folder, and unpacking each into a private copy.

Every entry of the folder is one learner, named by the entry without its extension. What
cannot be graded still becomes a learner, with the reason, so it gets a row of its own.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from grader.batch.outputs import name_problem
from grader.core.source import TargetError, resolve_target

REPO = Path(__file__).resolve().parents[2]
# An archive or a notebook may hold at most this much, so a bomb cannot fill the disk.
MAX_UNPACKED_BYTES = 50 * 1024**2
MAX_ARCHIVE_MEMBERS = 2000
# Code in a notebook's cells (outputs, such as plots, do not count). The lesson's is about
# 40 kB; reading code costs time that grows faster than its size (4 MB took minutes).
MAX_NOTEBOOK_CODE_BYTES = 1024**2
NOTEBOOK_READER_MEMORY_BYTES = 2 * 1024**3


class SubmissionError(Exception):
    """Why a submission cannot be graded, in words for the instructor."""


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
        _copy_folder(entry, destination)
    elif entry.suffix.lower() == ".zip":
        _extract_zip(entry, destination)
    elif entry.suffix.lower() == ".ipynb":
        _extract_notebook(entry, destination, time_limit, stop or threading.Event())
    else:
        raise SubmissionError("not a folder, a .zip or a notebook")
    target = _target_in(destination)
    if entry.suffix.lower() == ".ipynb" and not entry.is_dir():
        source = Source("notebook", notebook=entry.name, cells=_cells_of(target))
    else:
        folder = target.relative_to(destination).as_posix()
        source = Source("files", folder="" if folder == "." else folder + "/")
    return Unpacked(target, source, time.monotonic() - started)


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


def _extract_notebook(notebook: Path, destination: Path, time_limit: float, stop: threading.Event) -> None:
    """The one place a notebook submission is turned into modules: in a process of its
    own, since reading a hostile notebook can take minutes or gigabytes."""
    if notebook.stat().st_size > MAX_UNPACKED_BYTES:
        raise SubmissionError(f"the notebook is larger than {MAX_UNPACKED_BYTES // 1024**2} MB")
    destination.mkdir(parents=True)
    command = [sys.executable, "-I", "-c", READ_NOTEBOOK, str(REPO), str(notebook), str(destination)]
    reader = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=destination,
                              env={"PATH": os.environ.get("PATH", ""), "MLFLOW_DISABLE_TELEMETRY": "true"},
                              start_new_session=True)
    deadline = time.monotonic() + time_limit
    while reader.poll() is None and time.monotonic() < deadline and not stop.is_set():
        time.sleep(0.05)
    if reader.poll() is None:
        os.killpg(reader.pid, signal.SIGKILL)
        reader.wait()
        raise SubmissionError(f"reading the notebook took longer than the per-submission limit of {time_limit:g} s")
    said = reader.stderr.read().decode(errors="replace").strip().splitlines()
    reader.stderr.close()
    if reader.returncode != 0:
        reason = said[-1] if said else f"its reader ended with code {reader.returncode}"
        raise SubmissionError(f"the notebook cannot be read ({reason[:300]})")


# Run by _extract_notebook as `python -I -c READ_NOTEBOOK REPO NOTEBOOK DESTINATION`.
READ_NOTEBOOK = f"""
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, ({NOTEBOOK_READER_MEMORY_BYTES}, {NOTEBOOK_READER_MEMORY_BYTES}))
sys.path.insert(0, sys.argv[1])
from grader.batch.collect import SubmissionError, read_notebook
try:
    read_notebook(sys.argv[2], sys.argv[3])
except SubmissionError as error:
    print(error, file=sys.stderr)
    sys.exit(1)
except Exception as error:  # a learner's notebook may be anything
    print(f"{{type(error).__name__}}: {{error}}", file=sys.stderr)
    sys.exit(1)
"""


def read_notebook(notebook: str, destination: str) -> None:
    """In the notebook's own reader process: refuse too much code, then extract."""
    from grader.authoring.notebooks import extract_submission

    with open(notebook, encoding="utf-8") as handle:
        cells = json.load(handle).get("cells", [])
    code = sum(len("".join(c.get("source", "")).encode()) for c in cells if c.get("cell_type") == "code")
    if code > MAX_NOTEBOOK_CODE_BYTES:
        raise SubmissionError(f"its code cells hold {code / 1024**2:.1f} MB, more than the "
                              f"{MAX_NOTEBOOK_CODE_BYTES // 1024**2} MB a notebook may have")
    extract_submission(Path(notebook), Path(destination))


def _cells_of(target: Path) -> dict | None:
    """cells.json, written beside the modules by extract_submission (when it does)."""
    try:
        cells = json.loads((target / "cells.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return cells if isinstance(cells, dict) else None


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
