"""CURRICULUM.md, the kit's curriculum in one page, made from the catalogue and the solutions:
each module, each function a learner writes (its signature and its docstring's first line,
read with ``ast``), its points, each check with its points and the test method that proves
it, and its hints. ``python -m grader generate`` writes it; ``pytest tests`` and ``python -m grader
check`` fail when the committed file differs. The independent implementation in
tests/submissions/independent/ is written from it alone."""
from __future__ import annotations

import ast
import re
from pathlib import Path

from grader import KIT_ROOT
from grader.authoring.notebooks import markdown
from grader.authoring.stubgen import top_level_definitions
from grader.core import catalogue

CURRICULUM = KIT_ROOT / "CURRICULUM.md"

INTRO = """# Curriculum

<!-- Made from grader/catalogue.toml and solutions/ by `python -m grader generate`: edit those, not this file. -->

What the MLflow exercise kit teaches and grades, in lesson order: each module, the functions
a learner writes in it (with the signature their stub has in `exercises/`), the points each is
worth, the checks that grade it, what they prove, and its hints. A check is the method
`test_<check>` of the class `Test_<function>` in `grader/test_<module>.py`. A function's
docstring, in `exercises/`, says more: what to do, which MLflow API to use, and what the
checks look at. {points} points in all.

What every check stands on:

- Learner code runs against a temporary MLflow store (tracking and registry on SQLite, or
  a real `mlflow server` with `--tracking-server`) in a temporary folder: nothing is
  written to the learner's own `mlflow.db`, `mlruns/` or working folder, and their
  `MLFLOW_*` settings are neither read nor changed.
- Every check reads what the learner's code left in that store (through `MlflowClient`),
  not only what the function returned. FINISHED means the run's status in the store; no
  call may leave a run active.
- Names, parameter values, metric values and data splits are drawn at random from a seed
  the grader prints: a hard-coded answer fails, and `--seed` replays any failure.
- A failing check says what the store holds against what was expected, and the hint names
  the MLflow API to use; a stub that still raises `NotImplementedError` is "not attempted".
"""


def text(solutions: Path = KIT_ROOT / "solutions") -> str:
    loaded = catalogue.load()
    sections = [INTRO.format(points=loaded.points)]
    for number, module in enumerate(loaded.modules, start=1):
        sections.append(_module(number, module, (solutions / f"{module.name}.py").read_text(encoding="utf-8")))
    return "\n".join(sections)


def _module(number: int, module: catalogue.Module, source: str) -> str:
    """One module's section: its definitions in the order of its solution, as the notebook has them."""
    definitions = top_level_definitions(source)
    missing = [e.function for e in module.exercises if e.function not in definitions]
    if missing:  # python -m grader check names each; generating must not write a curriculum without them
        raise ValueError(f"solutions/{module.name}.py defines no {', '.join(missing)}, which grader/catalogue.toml lists")
    exercises = {e.function: e for e in module.exercises}
    lines = [f"## {number}. {module.title} · {module.points} points", "",
             f"`exercises/{module.name}.py`: {module.teaches}", ""]
    for name, node in definitions.items():
        lines += _exercise(exercises[name], node, source) if name in exercises else _helper(node, source)
    return "\n".join(lines)


def _exercise(exercise: catalogue.Exercise, node: ast.AST, source: str) -> list[str]:
    more = [f"Its second hint (`python -m grader hint {exercise.function} --more`): {_plain(exercise.more)}", ""]
    return [f"### `{exercise.function}` · {exercise.points} points", "", *_signature(node, source), _first_line(node), "",
            *(f"- {check.name.replace('_', ' ')} · {check.points} point{'s' if check.points != 1 else ''} "
              f"(`test_{check.name}`)" for check in exercise.checks), "",
            f"What the checks prove: {_plain(exercise.proves)}.", "",
            f"The hint a learner reads when a check fails: {_plain(exercise.hint)}", "", *(more if exercise.more else [])]


def _plain(text: str) -> str:
    """Catalogue text shown as written: outside its `code`, no emphasis (``**params``, a word's
    edge ``_``) and no HTML tag (``best_<param>``)."""
    special = re.compile(r"[\\*<]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")
    return "`".join(part if index % 2 else special.sub(lambda found: "\\" + found.group(), part)
                    for index, part in enumerate(text.split("`")))


def _helper(node: ast.AST, source: str) -> list[str]:
    """A definition the catalogue does not grade on its own (a class an exercise uses): the
    learner writes it too."""
    methods = [m for m in getattr(node, "body", []) if isinstance(m, (ast.FunctionDef, ast.AsyncFunctionDef))]
    return [f"### `{node.name}`, used by the exercises after it (no points of its own)", "",
            *_signature(node, source, methods), _first_line(node), "",
            *(f"- `{method.name}`: {_first_line(method)}" for method in methods), *([""] if methods else [])]


def _signature(node: ast.AST, source: str, methods: tuple[ast.AST, ...] | list[ast.AST] = ()) -> list[str]:
    """The definition's header as its source writes it (as the stub shows it), and its methods'."""
    headers = [_header(node, source), *(_header(method, source) for method in methods)]
    return ["```python", *headers, "```", ""]


def _header(node: ast.AST, source: str) -> str:
    """From ``def``/``class`` to the colon before its body (its docstring)."""
    lines = source.splitlines()[node.lineno - 1:node.body[0].lineno - 1]
    return "\n".join(lines).rstrip()


def _first_line(node: ast.AST) -> str:
    return markdown((ast.get_docstring(node) or "").strip().split("\n", 1)[0])


def expected_files(curriculum: Path = CURRICULUM) -> dict[Path, str]:
    return {curriculum: text()}
