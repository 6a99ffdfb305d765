"""What a learner handed in, read into the folder of modules the grader grades.

- A folder: the modules, or a folder holding ``exercises/`` (``resolve_target``); copied
  as regular files only (``copy_sources``), or zipped so for a batch (``zip_folder``).
- A ``.zip`` of one, as bytes (``extract_zip``), with limits a bomb cannot pass.
- A notebook: its cells' imports, definitions and constants, read with ``ast`` and never
  run, become each module (a notebook is one namespace), with ``cells.json`` beside them
  saying which cell each line came from (``module_from_cells``, ``write_modules``). A
  running kernel's cells (grader/notebook.py) and a submitted ``.ipynb``
  (``extract_submission``, in a reader process of its own for a batch) go the same way.

Batch grading (grader/batch/collect.py) and notebooks (grader/notebook.py) share this;
the generators that make the lesson notebook live apart, in grader/authoring/.
"""
from __future__ import annotations

import ast
import errno
import io
import json
import os
import shutil
import stat
import subprocess
import threading
import time
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath

from grader import KIT_ROOT
from grader.core import catalogue
from grader.ground import files
from grader.core.places import CELLS_FILE
from grader.ground.processes import isolated_python, kill_group
from grader.core.source import compile_problem

# A submission (a folder, an archive, a notebook) may hold at most this much, so a bomb
# cannot fill the disk or the memory.
MAX_UNPACKED_BYTES = 50 * 1024**2
MAX_ARCHIVE_MEMBERS = 2000
MAX_FOLDER_DEPTH = 20
# Code in a notebook's cells (outputs, such as plots, do not count). The lesson's is about
# 40 kB; reading code costs time that grows faster than its size (README.md, Speed).
MAX_NOTEBOOK_CODE_BYTES = 1024**2
NOTEBOOK_READER_MEMORY_BYTES = 2 * 1024**3


class SubmissionError(Exception):
    """Why a submission cannot be graded, in words for the instructor."""


class TargetError(Exception):
    """The folder to grade is not one the grader can read."""


def resolve_target(path: Path) -> Path:
    """The folder holding the modules: ``path`` itself, or its ``exercises/`` subfolder."""
    modules = [m.name for m in catalogue.load().modules]
    if not path.is_dir():
        raise TargetError(f"{path} is not a folder")
    for folder in (path / "exercises", path):
        if any((folder / f"{name}.py").is_file() for name in modules):
            return folder
    raise TargetError(f"{path} holds none of {', '.join(m + '.py' for m in modules)}")


def copy_sources(folder: Path, destination: Path) -> Path:
    """Learner modules are imported from a copy, so nothing is ever written beside them.
    Regular files only: a link could name any file of the machine."""
    files.make_shared_folder(destination)
    for source in folder.glob("*.py"):
        if source.is_file() and not source.is_symlink():
            shutil.copyfile(source, destination / source.name)
    return destination


def zip_folder(folder: Path) -> bytes:
    """Regular files only, never through a link (one could point at another learner's work
    or the solutions); hidden entries, __pycache__ and names that are not UTF-8 are left out."""
    if not any(folder.iterdir()):
        raise SubmissionError("the folder is empty")
    buffer, count, size = io.BytesIO(), 0, 0
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as bundle:
        for path in _regular_files(folder):
            count += 1
            if count > MAX_ARCHIVE_MEMBERS:
                raise SubmissionError(f"the folder holds more than {MAX_ARCHIVE_MEMBERS} files")
            data = read_file(folder, path, MAX_UNPACKED_BYTES - size,
                             f"the folder holds more than {MAX_UNPACKED_BYTES // 1024**2} MB")
            size += len(data)
            bundle.writestr(path.relative_to(folder).as_posix(), data)
    if not count:
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


def read_file(root: Path, path: Path | str, limit: int, too_big: str) -> bytes:
    """A regular file below ``root``, reached without following a link (files.read_bytes);
    SubmissionError(too_big) past ``limit`` bytes."""
    try:
        return files.read_bytes(root, path, limit)
    except OSError as error:
        if error.errno == errno.EFBIG:
            raise SubmissionError(too_big) from None
        if error.errno in (errno.EINVAL, errno.ELOOP):
            raise SubmissionError(f"{Path(path).name} is not a regular file") from None
        raise


def extract_zip(archive: bytes, destination: Path) -> None:
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
        if len(path.parts) - 1 > MAX_FOLDER_DEPTH:
            raise SubmissionError(f"the .zip nests a file {len(path.parts) - 1} folders deep, more than "
                                  f"{MAX_FOLDER_DEPTH}: {member.filename[:80]!r}…")


def extract_notebook(notebook: Path, destination: Path, time_limit: float, stop: threading.Event) -> None:
    """The one place a notebook submission is turned into modules: in a process of its
    own, since reading a hostile notebook can take minutes or gigabytes. Its size was
    bounded when it was packed (grader/batch/collect.py)."""
    destination.mkdir(parents=True)
    command = [*isolated_python(), "-c", READ_NOTEBOOK, str(KIT_ROOT), str(notebook), str(destination)]
    reader = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=destination,
                              env={"PATH": os.environ.get("PATH", ""), "MLFLOW_DISABLE_TELEMETRY": "true"},
                              start_new_session=True)
    deadline = time.monotonic() + time_limit
    while reader.poll() is None and time.monotonic() < deadline and not stop.is_set():
        time.sleep(0.05)
    if reader.poll() is None:
        kill_group(reader.pid)
        reader.wait()
        raise SubmissionError(f"reading the notebook took longer than the per-submission limit of {time_limit:g} s")
    said = reader.stderr.read().decode(errors="replace").strip().splitlines()
    reader.stderr.close()
    if reader.returncode != 0:
        reason = said[-1] if said else f"its reader ended with code {reader.returncode}"
        raise SubmissionError(f"the notebook cannot be read ({reason[:300]})")


# Run by extract_notebook as `python -I -c READ_NOTEBOOK KIT_ROOT NOTEBOOK DESTINATION`.
READ_NOTEBOOK = f"""
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, ({NOTEBOOK_READER_MEMORY_BYTES}, {NOTEBOOK_READER_MEMORY_BYTES}))
sys.path.insert(0, sys.argv[1])
from grader.core.submission import SubmissionError, read_notebook
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
    with open(notebook, encoding="utf-8") as handle:
        cells = json.load(handle).get("cells", [])
    code = sum(len("".join(c.get("source", "")).encode()) for c in cells if c.get("cell_type") == "code")
    if code > MAX_NOTEBOOK_CODE_BYTES:
        raise SubmissionError(f"its code cells hold {code / 1024**2:.1f} MB, more than the "
                              f"{MAX_NOTEBOOK_CODE_BYTES // 1024**2} MB a notebook may have")
    extract_submission(Path(notebook), Path(destination))


def cells_of(target: Path) -> dict | None:
    """cells.json, written beside the modules by extract_submission (when it does)."""
    try:
        cells = json.loads((target / "cells.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return cells if isinstance(cells, dict) else None


def target_in(folder: Path) -> Path:
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


def first_line(node: ast.stmt) -> int:
    return min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])


KEPT = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def _python_of(cell_source: str) -> str:
    """Cell text as plain Python: IPython magics (%, !) become calls, which are then dropped."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager
    except ImportError:  # no IPython: drop magic lines
        return "\n".join(line for line in cell_source.splitlines() if not line.lstrip().startswith(("%", "!")))
    return TransformerManager().transform_cell(cell_source)


def _is_kit_import(node: ast.stmt) -> bool:
    """The setup cell imports the kit's own grader: never part of a submission."""
    if isinstance(node, ast.ImportFrom):
        return (node.module or "").split(".")[0] == "grader"
    return isinstance(node, ast.Import) and any(a.name.split(".")[0] == "grader" for a in node.names)


def _is_constant(node: ast.stmt) -> bool:
    """``NAME = <literal>`` (or annotated): safe to keep, nothing runs to compute it."""
    if isinstance(node, ast.Assign):
        targets, value = node.targets, node.value
    elif isinstance(node, ast.AnnAssign) and node.value is not None:
        targets, value = [node.target], node.value
    else:
        return False
    try:
        ast.literal_eval(value)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return all(isinstance(t, ast.Name) for t in targets)


def _kept_statements(source: str) -> list[tuple[str, int, str | None]]:
    """The imports, definitions and constants of one cell, never run: (source text, its
    first line in the cell, the name it defines if it is a definition)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []  # a cell that is not valid Python defines nothing (as in the kernel)
    lines = source.splitlines(keepends=True)
    kept = []
    for node in tree.body:
        if (isinstance(node, KEPT) and not _is_kit_import(node)) or _is_constant(node):
            if isinstance(node, (ast.Import, ast.ImportFrom, ast.Assign, ast.AnnAssign)):
                kept.append((ast.get_source_segment(source, node), node.lineno, None))
            else:
                first = first_line(node)
                kept.append(("".join(lines[first - 1:node.end_lineno]).rstrip("\n"), first, node.name))
    return kept


def cell_problem(cell: str) -> dict | None:
    """Why a cell is not valid Python, so defines nothing (``_kept_statements``), as
    ``compile_problem`` says it (lines counted in the cell); None when it is valid."""
    return compile_problem(_python_of(cell), "cell")


MODULE_HEADER = "# Made by the MLflow exercise kit from notebook cells: imports, definitions and constants only.\n"


def module_from_cells(cells: Iterable[tuple[int, str]], label: str | None = None) -> tuple[str, list[dict]]:
    """One module from numbered notebook cells, in order (a later definition wins, as in the
    kernel), and where each of its pieces came from: [{"first_line", "last_line" (in the
    module), "cell" (its number), "cell_line" (where the piece starts in the cell),
    "definition" (the name it defines, or None)}], and "label" (how to name the cell, such
    as "cell [12]") when ``label`` is given as a format."""
    chunks, origins, line = [], [], MODULE_HEADER.count("\n") + 1
    for number, cell in cells:
        for text, cell_line, name in _kept_statements(_python_of(cell)):
            last = line + text.count("\n")
            place = {"first_line": line, "last_line": last, "cell": number, "cell_line": cell_line, "definition": name}
            if label:
                place["label"] = label.format(number)
            origins.append(place)
            chunks.append(text)
            line = last + 3  # the two blank lines between pieces
    return MODULE_HEADER + "\n\n\n".join(chunks) + "\n", origins


def definitions_only(cells: Iterable[str]) -> str:
    """One module from notebook cells, in order (a later definition wins, as in the kernel)."""
    return module_from_cells(enumerate(cells, start=1))[0]


def write_modules(code: str, origins: list[dict], dest: Path) -> None:
    """The ``<module>.py`` files (a notebook is one namespace: each gets all of its code)
    and ``cells.json``, which lets every message name a line by its cell."""
    dest.mkdir(parents=True, exist_ok=True)
    names = [f"{module.name}.py" for module in catalogue.load().modules]
    for name in names:
        (dest / name).write_text(code, encoding="utf-8")
    (dest / CELLS_FILE).write_text(json.dumps({name: origins for name in names}, indent=1), encoding="utf-8")


def extract_submission(ipynb: Path, dest: Path) -> None:
    """Write the ``<module>.py`` files of a notebook submission into ``dest``, and
    ``cells.json`` beside them. Cells are numbered as a person counts them in the notebook:
    from 1, markdown and code cells alike. Nothing of the notebook is executed here."""
    import nbformat

    notebook = nbformat.read(str(ipynb), as_version=4)
    numbered = [(number, cell.source) for number, cell in enumerate(notebook.cells, start=1) if cell.cell_type == "code"]
    write_modules(*module_from_cells(numbered), dest)
