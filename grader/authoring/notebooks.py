"""Build the lesson notebook and the nbgrader course from the solutions.

One source, three outputs, like the stubs (``stubgen.py``):

- ``notebooks/mlflow_lesson.ipynb``: the learner's notebook for the whole lesson. Each
  module's docstring becomes a teaching section, each function's stub its own cell, and
  right after it a cell ``check("<module>", "<function>")`` that grades that function
  with the kit's grader (``grader/notebook.py``).
- ``course/``: an nbgrader course (``nbgrader_config.py`` and
  ``source/mlflow_lesson/mlflow_lesson.ipynb``) with the same cells carrying nbgrader
  metadata: solution cells between ``### BEGIN SOLUTION`` / ``### END SOLUTION``,
  autograded check cells worth the catalogue's points, everything else locked.

A notebook made from either is read back into modules by grader/core/submission.py.

It works as a pipeline of small steps: ``plan`` cuts the solutions into parts (teaching
text, imports, one definition each, checks), and one renderer per output turns the parts
into cells. ``python -m grader generate`` writes everything; ``pytest tests`` fails when the
committed files drift from it.
"""
from __future__ import annotations

import ast
import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import nbformat

from grader import KIT_ROOT
from grader.authoring import stubgen
from grader.core import catalogue
from grader.core.submission import first_line

LESSON_PATH = KIT_ROOT / "notebooks" / "mlflow_lesson.ipynb"
COURSE = KIT_ROOT / "course"
ASSIGNMENT = "mlflow_lesson"

# --------------------------------------------------------------------------- the parts


@dataclass(frozen=True)
class Part:
    """One cell-to-be. ``role`` says what it is; ``text`` is markdown, or code (for
    definitions: the solution with its markers)."""

    role: str  # markdown | setup | imports | definition | check | total
    key: str  # unique, stable: becomes the cell id and nbgrader's grade_id
    text: str
    module: str = ""
    name: str = ""
    points: int = 0


INTRO = """# Learn MLflow by doing

**Experiment tracking** is the lab notebook of machine learning. You try many things —
other features, other models, other hyperparameters — and tracking writes down every
attempt in a systematic way: what went in (params, data, code), what came out (metrics,
plots, the model). Later you can compare attempts, pick the best one and reproduce it,
instead of trusting your memory or a spreadsheet.

**MLflow** is an open-source platform for the whole machine learning lifecycle. This
lesson uses three of its parts:

1. **MLflow Tracking** records *experiments* and their *runs*: params, metrics, tags,
   artifacts (files), datasets and models, and shows them in a web UI.
2. **MLflow Models** is a standard format for packaging a model so that any tool can load
   it again (*flavors*, *signatures*, *model URIs*), and a *serving stack*: MLflow's
   scoring server puts any such model behind a web server with one command.
3. **The Model Registry** is the central catalogue of the models you use: names,
   versions, lineage back to runs, annotations and aliases.

A **practice** task puts the three together; then you serve models over HTTP, record the
code version of a run, run an MLflow *Project* (code packaged into a reproducible run)
and log a run through MLflow's REST API, as any language can.

## How this notebook works

Each exercise is a function to fill in. Its docstring says what to do, which MLflow API
to reach for and what is checked. Replace the `raise NotImplementedError(...)` line with
your code, run the cell, then run the **check** cell right under it. The check runs your
function in a separate process against a fresh, temporary MLflow store (so it never
touches your own runs) and prints what it found, with a hint when something is wrong:

- `passed`: every check holds; `failed`: some check does not, the message says what the
  store holds against what was expected; `error`: your function raised or hung;
  `not attempted`: it still raises `NotImplementedError`.

The check reads the imports and definitions of the cells you ran (not the other code),
so keep what a function needs inside it. Run the setup cell below first.
"""

SETUP = """# Setup: make the kit's grader importable. The kit is the folder holding
# grader/catalogue.toml: open this notebook from inside it, or set KIT_ROOT to it.
import os
import sys
from pathlib import Path

KIT_ROOT = os.environ.get("KIT_ROOT") or next(
    (str(folder) for folder in [Path.cwd(), *Path.cwd().parents] if (folder / "grader" / "catalogue.toml").is_file()),
    None,
)
assert KIT_ROOT, "Cannot find the MLflow exercise kit: set the KIT_ROOT environment variable to its folder."
if KIT_ROOT not in sys.path:
    sys.path.insert(0, KIT_ROOT)
from grader.notebook import check, check_all, start_grading

start_grading()  # the grader warms up in the background, so the first check is quick
"""

UI = """## Seeing your own runs in the MLflow UI

The checks above work in temporary stores that are deleted afterwards. To look at runs in
the MLflow UI, call your functions yourself against a store of your own, then start the UI
on it. In a terminal, from the folder of your choice:

```bash
export MLFLOW_TRACKING_URI=sqlite:///mlflow.db
mlflow ui --backend-store-uri sqlite:///mlflow.db      # then open http://127.0.0.1:5000
```

and in a new cell of this notebook (after the cell of `run_practice`; outside your
functions, which must never set the tracking URI themselves), for example:

```python
import mlflow
mlflow.set_tracking_uri("sqlite:///mlflow.db")     # the same file the UI reads
print(run_practice("wine-practice", "wine-classifier"))
```

In the UI, open the experiment `wine-practice`: compare the candidate runs side by side
(select them, then *Compare*), look at a run's params, metrics, artifacts and logged model,
then open *Models* → `wine-classifier` to see its versions, the run each came from and the
`champion` alias.
"""


TOTAL = """## Your total

The last cell checks the whole lesson: a function checked since you last ran its cell keeps
its result, the others are checked now. It shows every function, how many are done and
your total.
"""


def markdown(docstring_text: str) -> str:
    """Docstring text as Markdown: reStructuredText's ``code`` becomes `code`."""
    return re.sub(r"``([^`]+)``", r"`\1`", docstring_text)


def _markdown_of(docstring: str, title: str, points: int) -> str:
    """A module docstring as a teaching section: its first line is the heading."""
    first, _, rest = docstring.partition("\n")
    heading = first.strip().rstrip(".")
    return f"## {heading} · {points} points\n\n{markdown(rest.strip())}\n"


def _top_level_parts(source: str) -> tuple[str, list[tuple[str, str]]]:
    """(imports, [(name, definition source)]) of a solution module, in source order."""
    tree = ast.parse(source)
    lines = source.splitlines(keepends=True)
    definitions = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
    imports = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    imports_text = "\n".join(ast.get_source_segment(source, n) for n in imports) + "\n"
    starts = [first_line(n) for n in tree.body] + [len(lines) + 1]
    parts = []
    for node in definitions:
        # A definition runs up to the next statement: its closing `### END SOLUTION` is a comment.
        end = next(s for s in starts if s > node.lineno) - 1
        parts.append((node.name, "".join(lines[first_line(node) - 1:end]).rstrip() + "\n"))
    return imports_text, parts


def plan(only: Iterable[str] | None = None, solutions: Path = KIT_ROOT / "solutions") -> list[Part]:
    """The lesson as parts. ``only``: exercise keys (``module.function``) to keep; a module
    without any is left out, its helpers (such as a class) are kept with it."""
    wanted = set(only) if only is not None else None
    cat = catalogue.load()
    parts = [Part("markdown", "intro", INTRO), Part("setup", "setup", SETUP)]
    for number, module in enumerate(cat.modules, start=1):
        exercises = {e.function: e for e in module.exercises if wanted is None or e.key in wanted}
        if not exercises:
            continue
        source = (solutions / f"{module.name}.py").read_text(encoding="utf-8")
        imports, definitions = _top_level_parts(source)
        points = sum(e.points for e in exercises.values())
        parts.append(Part("markdown", f"{module.name}-intro", _markdown_of(ast.get_docstring(ast.parse(source)), module.title, points), module.name))
        parts.append(Part("imports", f"{module.name}-imports", f"# The imports of {module.name}: run this cell first.\n{imports}", module.name))
        parts += _definition_parts(module, number, definitions, exercises)
    parts.append(Part("markdown", "ui", UI))
    parts.append(Part("markdown", "total-intro", TOTAL))
    parts.append(Part("total", "check-all", "check_all()"))
    return parts


def _definition_parts(module: catalogue.Module, number: int, definitions, exercises: dict) -> list[Part]:
    parts, index = [], 0
    in_catalogue = {e.function for e in module.exercises}
    for name, text in definitions:
        if name in in_catalogue and name not in exercises:
            continue  # filtered out
        key = f"{module.name}-{name}"
        if name in exercises:
            index += 1
            exercise = exercises[name]
            heading = f"### Exercise {number}.{index} · `{name}` · {exercise.points} points\n\nFill in the function, run its cell, then run the check under it.\n"
            parts.append(Part("markdown", f"{key}-intro", heading, module.name, name))
            parts.append(Part("definition", key, text, module.name, name))
            parts.append(Part("check", f"check-{key}", f'check("{module.name}", "{name}")', module.name, name, exercise.points))
        else:
            heading = f"### A helper: `{name}`\n\nThe exercise after it uses this {'class' if text.lstrip().startswith(('class', '@')) else 'function'}; fill it in too.\n"
            parts.append(Part("markdown", f"{key}-intro", heading, module.name, name))
            parts.append(Part("definition", key, text, module.name, name))
    return parts


# --------------------------------------------------------------------------- renderers

KERNEL = {
    "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
    "language_info": {"name": "python"},
}


def _cell(part: Part, source: str) -> nbformat.NotebookNode:
    make = nbformat.v4.new_markdown_cell if part.role == "markdown" else nbformat.v4.new_code_cell
    cell = make(source.rstrip("\n"))
    cell.id = part.key[:64]  # stable ids, so the generated file is stable
    if part.role in ("definition", "check"):
        cell.metadata["kit"] = {"role": part.role, "module": part.module, "name": part.name}
    return cell


def _notebook(cells: list) -> nbformat.NotebookNode:
    notebook = nbformat.v4.new_notebook(cells=cells, metadata=dict(KERNEL))
    nbformat.validate(notebook)
    return notebook


def lesson_notebook(variant: str = "stubs", only: Iterable[str] | None = None) -> nbformat.NotebookNode:
    """The learner's notebook: ``variant`` "stubs" (committed) or "solutions" (filled in)."""
    fill = {"stubs": lambda text, key: stubgen.strip_solutions(text, key), "solutions": lambda text, key: stubgen.drop_markers(text)}[variant]
    cells = [_cell(p, fill(p.text, p.key) if p.role == "definition" else p.text) for p in plan(only)]
    return _notebook(cells)


def solution_code(module: str, name: str) -> str:
    """The solution of one definition cell, as a learner who solved it would hand it in."""
    return _solutions()[(module, name)]


@functools.cache  # a notebook asks once per cell; the solutions do not change while a process runs
def _solutions() -> dict[tuple[str, str], str]:
    return {(p.module, p.name): stubgen.drop_markers(p.text) for p in plan() if p.role == "definition"}


def filled(notebook: nbformat.NotebookNode, code_of) -> nbformat.NotebookNode:
    """A learner's notebook made from ``notebook`` (the lesson, or nbgrader's release): each
    definition cell replaced by ``code_of(module, name)`` (None keeps it)."""
    made = nbformat.from_dict(notebook)
    for cell in made.cells:
        kit = cell.metadata.get("kit", {})
        if kit.get("role") == "definition":
            code = code_of(kit["module"], kit["name"])
            if code is not None:
                cell.source = code
    return made


def released(course: Path) -> nbformat.NotebookNode:
    """The learners' notebook `nbgrader generate_assignment` wrote into ``course``."""
    return nbformat.read(str(course / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"), as_version=4)


def submitted(course: Path, student: str) -> Path:
    """Where nbgrader looks for ``student``'s notebook (`nbgrader autograde` reads it there)."""
    return course / "submitted" / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"


def _nbgrader(part: Part) -> dict:
    """nbgrader's cell metadata: definitions are solution cells, checks are autograded
    tests worth the catalogue's points, the rest is locked."""
    meta = {"grade": False, "grade_id": part.key, "locked": True, "schema_version": 3, "solution": False, "task": False}
    if part.role == "definition":
        meta.update(locked=False, solution=True)
    elif part.role == "check":
        meta.update(grade=True, points=part.points)
    return meta


def course_notebook(only: Iterable[str] | None = None) -> nbformat.NotebookNode:
    """The nbgrader source notebook: solutions keep their markers, nbgrader clears them."""
    cells = []
    for part in plan(only):
        cell = _cell(part, part.text)
        cell.metadata["nbgrader"] = _nbgrader(part)
        cells.append(cell)
    return _notebook(cells)


NBGRADER_CONFIG = '''"""nbgrader configuration of the MLflow exercise kit's course.

Generated by `python -m grader generate` (grader/authoring/notebooks.py): edit the generator.
Run nbgrader from this folder: nbgrader generate_assignment {assignment}, then
nbgrader autograde {assignment}, then nbgrader export.
"""
c = get_config()  # noqa: F821 (nbgrader provides it)

c.CourseDirectory.course_id = "mlflow-kit"
# Each check cell grades one function in a fresh process against fresh MLflow stores: give it
# time (nbgrader's default of 30 s per cell would cut the checks off).
c.Execute.timeout = 900
c.ExecutePreprocessor.timeout = 900
# Learners hand in the notebook; any module file they hand in with it is theirs, never
# replaced by a copy from source/.
c.Autograde.exclude_overwriting = {{"{assignment}": {modules}}}
# nbgrader replaces each solution region with this line; the grader reads NotImplementedError
# as "not attempted".
c.ClearSolutions.code_stub = {{"python": 'raise NotImplementedError("replace this line with your code")'}}
'''


def nbgrader_config() -> str:
    modules = [f"{m.name}.py" for m in catalogue.load().modules]
    return NBGRADER_CONFIG.format(assignment=ASSIGNMENT, modules=modules)


# --------------------------------------------------------------------------- writing


def expected_files(course: Path = COURSE, lesson: Path = LESSON_PATH, only: Iterable[str] | None = None) -> dict[Path, str]:
    """Every generated file with its text."""
    only = list(only) if only is not None else None
    return {
        lesson: nbformat.writes(lesson_notebook("stubs", only)) + "\n",
        course / "nbgrader_config.py": nbgrader_config(),
        course / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb": nbformat.writes(course_notebook(only)) + "\n",
    }


def unsafe_overwrites(lesson: Path = LESSON_PATH) -> dict[Path, list[str]]:
    """The lesson notebook, if generating would overwrite function cells someone filled in."""
    try:
        current = nbformat.read(str(lesson), as_version=4)
    except (OSError, ValueError):
        return {}
    fresh = {cell.id: cell.source for cell in lesson_notebook("stubs").cells}
    work = [
        name
        for cell in current.cells
        if cell.cell_type == "code" and cell.get("metadata", {}).get("kit", {}).get("role") == "definition"
        for name in stubgen.learner_work(cell.source, fresh.get(cell.get("id"), ""))
    ]
    return {lesson: work} if work else {}
