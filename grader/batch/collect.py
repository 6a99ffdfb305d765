"""Finding the learners in a submissions folder, packing each into bytes, and unpacking
those bytes into a private copy where it is graded (this machine, or a Dask worker).

Every entry of the folder is one learner, named by the entry without its extension. What
cannot be graded still becomes a learner, with the reason, so it gets a row of its own.
The limits (MAX_*) hold for every kind of submission, wherever it is graded.
"""
from __future__ import annotations

import io
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
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from grader.batch.outputs import name_problem
from grader.core.source import TargetError, resolve_target

REPO = Path(__file__).resolve().parents[2]
# A submission (a folder, an archive, a notebook) may hold at most this much, so a bomb
# cannot fill the disk or the memory.
MAX_UNPACKED_BYTES = 50 * 1024**2
MAX_ARCHIVE_MEMBERS = 2000
MAX_FOLDER_DEPTH = 20
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
            return Packed(learner, entry.name, "folder", _zip_folder(entry))
        kind = {".zip": "zip", ".ipynb": "notebook"}.get(entry.suffix.lower())
        if kind is None:
            raise SubmissionError("not a folder, a .zip or a notebook")
        too_big = f"the {'.zip' if kind == 'zip' else kind} is larger than {MAX_UNPACKED_BYTES // 1024**2} MB"
        return Packed(learner, entry.name, kind, _read_file(entry, MAX_UNPACKED_BYTES, too_big))
    except SubmissionError as error:
        return Packed(learner, entry.name, problem=str(error))
    except OSError as error:
        return Packed(learner, entry.name, problem=f"the submission cannot be read ({error.strerror or error})")


def _zip_folder(folder: Path) -> bytes:
    """Regular files only, never through a link (one could point at another learner's work
    or the solutions); hidden entries, __pycache__ and names that are not UTF-8 are left out."""
    if not any(folder.iterdir()):
        raise SubmissionError("the folder is empty")
    buffer, files, size = io.BytesIO(), 0, 0
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as bundle:
        for path in _regular_files(folder):
            files += 1
            if files > MAX_ARCHIVE_MEMBERS:
                raise SubmissionError(f"the folder holds more than {MAX_ARCHIVE_MEMBERS} files")
            data = _read_file(path, MAX_UNPACKED_BYTES - size,
                              f"the folder holds more than {MAX_UNPACKED_BYTES // 1024**2} MB")
            size += len(data)
            bundle.writestr(path.relative_to(folder).as_posix(), data)
    if not files:
        raise SubmissionError("the folder holds no files to grade (hidden files, links and __pycache__ are left out)")
    return buffer.getvalue()


def _regular_files(folder: Path, depth: int = 0) -> Iterator[Path]:
    if depth > MAX_FOLDER_DEPTH:
        raise SubmissionError(f"the folder nests more than {MAX_FOLDER_DEPTH} folders deep")
    with os.scandir(folder) as entries:
        for entry in sorted(entries, key=lambda e: e.name):
            if entry.name.startswith(".") or entry.name == "__pycache__" or entry.is_symlink() or not _utf8(entry.name):
                continue
            if entry.is_dir(follow_symlinks=False):
                yield from _regular_files(Path(entry.path), depth + 1)
            elif entry.is_file(follow_symlinks=False):
                yield Path(entry.path)


def _utf8(name: str) -> bool:
    """A name a zip can carry (a name that is not UTF-8 is no module of the lesson's)."""
    try:
        name.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def _read_file(path: Path, limit: int, too_big: str) -> bytes:
    """A regular file's bytes, never through a link; SubmissionError(too_big) past ``limit`` bytes."""
    descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(descriptor, "rb") as handle:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise SubmissionError(f"{path.name} is not a regular file")
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise SubmissionError(too_big)
    return data


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
        _extract_notebook(notebook, destination, time_limit, stop or threading.Event())
        target = _target_in(destination)
        source = Source("notebook", notebook=packed.name, cells=_cells_of(target))
    elif packed.kind in ("folder", "zip"):
        _extract_zip(packed.data, destination)
        target = _target_in(destination)
        folder = target.relative_to(destination).as_posix()
        source = Source("files", folder="" if folder == "." else folder + "/")
    else:
        raise SubmissionError("not a folder, a .zip or a notebook")
    return Unpacked(target, source, time.monotonic() - started)


def _extract_zip(archive: bytes, destination: Path) -> None:
    try:
        with zipfile.ZipFile(io.BytesIO(archive)) as bundle:
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
