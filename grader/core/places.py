"""Where the learner's code lives, named the way the learner knows it, and messages cleaned
of the grader's own temporary paths before anyone reads them.

Learner code runs from a private copy of their files, against stores in temporary folders
(``/dev/shm/mlflow-kit-…``): paths the learner never saw. Every message a check, a learner
call or the summary produces goes through ``Places.scrub``: the copy of a module becomes
``exercises/<module>.py`` (or the file name alone, when the grader itself made the folder
graded, as for a batch or a notebook), a store becomes "<grader's temporary store>", any
other temporary folder "<grader's temporary folder>". When the folder holds ``cells.json``
(a notebook made it: grader/core/submission.py), lines are named by their cell.
"""
from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path

from grader.core import catalogue

# Every temporary folder the grader makes is named so (plugin, notebooks, batch, watch):
# tempfile's prefix "mlflow-kit-[what-]" and its 8 random characters.
TEMPORARY_FOLDER = re.compile(r"^mlflow-kit-(?:[a-z]+-)*[a-z0-9_]{8}$")
STORE = "<grader's temporary store>"
FOLDER = "<grader's temporary folder>"
CELLS_FILE = "cells.json"
MAX_CELLS_BYTES = 1 << 20

# A path, maybe behind a URI scheme (sqlite:///, file://), up to a quote or a space.
_PATH = re.compile(r"(?P<scheme>\b[a-z][a-z0-9+.-]*:/*)?(?P<path>/[^\s'\"`<>|]+)")
_STORE_FOLDER = re.compile(r"^(store-\d+-[^/]+|tracking-server)$")
_TRAILING = ".,:;)]}"


def grader_made(path: Path) -> bool:
    """Whether a folder is one the grader made (a batch's or a notebook's copy): inside a
    temporary folder of the grader's, itself in a place for temporary files."""
    path = Path(path).resolve()
    places = {tempfile.gettempdir(), "/tmp", "/dev/shm", os.environ.get("TMPDIR") or "/tmp"}
    return any(TEMPORARY_FOLDER.match(part) for part in path.parts) and any(
        path.is_relative_to(Path(place).resolve()) for place in places)


class Places:
    def __init__(self, target: Path, cwd: Path | None = None):
        self.target = Path(target)
        self.folder = self._shown_folder(cwd or Path.cwd())
        self.cells = read_cells(self.target)

    def _shown_folder(self, cwd: Path) -> str:
        """``exercises/`` as the learner would type it; nothing for a folder the grader made."""
        if grader_made(self.target):
            return ""
        try:
            relative = os.path.relpath(self.target, cwd)
        except ValueError:
            relative = str(self.target)
        if relative == ".":
            return ""
        return f"{relative if not relative.startswith('..' + os.sep + '..') else self.target}/"

    def file(self, module: str) -> str:
        return f"{self.folder}{module}.py"

    def where(self, module: str, line: int | None) -> str:
        """``exercises/ex01_tracking.py, line 12``, or ``cell 12 (`def log_run`), line 3``."""
        cell = self.cell_of(module, line)
        if cell is not None:
            definition = f" (`def {cell['definition']}`)" if cell.get("definition") else ""
            return f"{cell.get('label') or 'cell ' + str(cell['cell'])}{definition}, line {self.line_shown(module, line)}"
        return self.file(module) + (f", line {line}" if line else "")

    def line_shown(self, module: str, line: int) -> int:
        """A module's line as the learner numbers it: in its cell, if it came from one."""
        cell = self.cell_of(module, line)
        return line if cell is None else line - cell["first_line"] + cell.get("cell_line", 1)

    def cell_of(self, module: str, line: int | None) -> dict | None:
        if not line:
            return None
        return next((c for c in self.cells.get(f"{module}.py", []) if c["first_line"] <= line <= c["last_line"]), None)

    def scrub(self, text: str) -> str:
        """``text`` without the grader's temporary paths, and with module lines named by cell
        where the learner wrote cells."""
        text = _PATH.sub(self._replace_path, text)
        if not self.cells:
            return text
        # A notebook's learner never saw the module files made from their cells.
        text = _FRAME.sub(self._replace_frame, text)
        text = _IN_FILE.sub(lambda m: f"`{m['function']}` in {self.cell_defining(m['function'])}", text)
        return _FILE.sub("your notebook's code", text)

    def cell_defining(self, name: str) -> str:
        """The cell that defines ``name`` last (the definition that counts)."""
        found = [c for cells in self.cells.values() for c in cells if c.get("definition") == name]
        return (found[-1].get("label") or f"cell {found[-1]['cell']}") if found else "your notebook"

    def _replace_path(self, match: re.Match) -> str:
        scheme, path = match["scheme"] or "", match["path"]
        trailing = ""
        while path and path[-1] in _TRAILING:
            path, trailing = path[:-1], path[-1] + trailing
        parts = path.split("/")
        inside = [i for i, part in enumerate(parts) if TEMPORARY_FOLDER.match(part)]
        if not inside:
            return match.group(0)
        rest = parts[inside[-1] + 1:]
        if rest[:1] == ["src"]:  # the private copy of the learner's files
            return (self.folder + "/".join(rest[1:]) or "the folder graded") + trailing
        if rest and _STORE_FOLDER.match(rest[0]):
            return scheme + "/".join([STORE, *rest[1:]]) + trailing
        return scheme + "/".join([FOLDER, *rest]) + trailing

    def _replace_frame(self, match: re.Match) -> str:
        module, line = match["file"].removesuffix(".py"), int(match["line"])
        return self.where(module, line) if self.cell_of(module, line) else match.group(0)


def _module_files() -> str:
    return "|".join(re.escape(f"{m.name}.py") for m in catalogue.load().modules)


_FRAME = re.compile(rf"(?:[\w./-]*/)?(?P<file>{_module_files()}), line (?P<line>\d+)")
_IN_FILE = re.compile(rf"`(?P<function>\w+)` in (?:[\w./-]*/)?(?:{_module_files()})")
_FILE = re.compile(rf"(?:[\w./-]*/)?\b(?:{_module_files()})")


def read_cells(folder: Path) -> dict[str, list[dict]]:
    """``cells.json`` beside the modules: which lines of a module came from which notebook
    cell. The folder may be a learner's: the file is never followed through a link, and
    anything malformed is ignored (it only names places in messages)."""
    try:
        handle = os.open(folder / CELLS_FILE, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return {}
    try:
        data = json.loads(os.read(handle, MAX_CELLS_BYTES + 1)[:MAX_CELLS_BYTES])
    except ValueError:
        return {}
    finally:
        os.close(handle)
    if not isinstance(data, dict):
        return {}
    cells = {}
    for name, entries in data.items():
        if isinstance(name, str) and isinstance(entries, list):
            cells[name] = [e for e in entries if _valid_cell(e)]
    return cells


def _valid_cell(entry) -> bool:
    return (
        isinstance(entry, dict)
        and all(isinstance(entry.get(k), int) for k in ("first_line", "last_line", "cell"))
        and isinstance(entry.get("cell_line", 1), int)
        and all(isinstance(entry.get(k), (str, type(None))) and len(entry.get(k) or "") < 200 for k in ("definition", "label"))
    )
