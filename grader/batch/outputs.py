"""What a batch writes into its output folder, and the learner names that may become
folders there.

OUT/gradebook.csv, OUT/report.html, the exports and similarity.csv (with its pages in
OUT/similarity/) sit beside one folder per learner
(OUT/<learner>/feedback.md, results.json, grading.log, batch.json). A learner is named by
their submission, a name the learner chose: a name that would collide with one of the
batch's own files, climb out of OUT, hide a formula or control characters gets an error
row and no folder, never an aborted batch.
"""
from __future__ import annotations

import os
import stat
import unicodedata
from pathlib import Path

from grader.core.text import HIDDEN_CATEGORIES

GRADEBOOK = "gradebook.csv"
REPORT = "report.html"
EXPORTS = {"canvas": "canvas.csv", "moodle": "moodle.csv"}
FUNCTIONS = "functions.csv"  # per function and check: the share with full marks, the mean share of points
SIMILARITY, SIMILARITY_PAGES = "similarity.csv", "similarity"  # similar submissions (similarity.py): pairs, their pages
FEEDBACK, RESULTS, LOG, FACTS = "feedback.md", "results.json", "grading.log", "batch.json"
RESERVED = {GRADEBOOK, REPORT, FUNCTIONS, SIMILARITY, SIMILARITY_PAGES, *EXPORTS.values()}
MAX_NAME_CHARS = 100
# A spreadsheet reads a cell starting with these as a formula (sheets.py neutralises such
# cells with a leading "'", so a name may not start with that either).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class OutputError(Exception):
    """A learner's output folder cannot be written; in words for the instructor."""


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a learner (and their folder in OUT), or None."""
    if not name.strip():
        return "the submission's name is empty"
    if len(name) > MAX_NAME_CHARS:
        return f"the submission's name is longer than {MAX_NAME_CHARS} characters"
    if name.casefold() in {r.casefold() for r in RESERVED}:
        return f"the submission's name is {name}, a file the batch writes itself"
    if "/" in name or "\\" in name or name in (".", ".."):
        return "the submission's name holds a path separator"
    if any(unicodedata.category(c) in HIDDEN_CATEGORIES for c in name):
        return "the submission's name holds control or invisible characters"
    if name.startswith((*FORMULA_STARTS, "'")):
        return f"the submission's name starts with {name[0]!r}, which a spreadsheet reads as a formula"
    return None


def replace_file(path: Path, text: str) -> None:
    """Write ``text`` to a new hidden file beside ``path`` and rename it over ``path``: a
    reader sees the old file or the new one, never half, and a link at ``path`` is
    replaced, never followed."""
    temporary = path.with_name(f".{path.name}.{os.urandom(6).hex()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_learner_files(out: Path, learner: str, files: dict[str, str]) -> None:
    """OUT/<learner>/<name> for each of ``files``, each replaced whole. Raises OutputError."""
    folder = out / learner
    try:
        try:
            os.mkdir(folder, 0o755)
        except FileExistsError:
            pass
        if not stat.S_ISDIR(os.lstat(folder).st_mode):
            raise OutputError(f"{folder} exists and is not a folder")
        for name, text in files.items():
            replace_file(folder / name, text)
    except OSError as error:
        raise OutputError(f"its output folder {folder} cannot be written ({error.strerror or error})") from None


def learner_file(out: Path, learner: str, name: str) -> Path | None:
    """OUT/<learner>/<name> when the batch wrote it (a regular file, not a link)."""
    if name_problem(learner):
        return None
    path = out / learner / name
    try:
        folder_ok = stat.S_ISDIR(os.lstat(path.parent).st_mode)
        return path if folder_ok and stat.S_ISREG(os.lstat(path).st_mode) else None
    except OSError:
        return None
