"""exercises/, the README's table and CURRICULUM.md are generated from solutions/ and the
catalogue, and must never drift from them."""
from __future__ import annotations

import ast

import pytest

from conftest import REPO
from grader.authoring import curriculum, readme, stubgen
from grader.core import catalogue


def test_committed_stubs_match_the_generator():
    for name, text in stubgen.expected_stubs().items():
        committed = (REPO / "exercises" / name).read_text(encoding="utf-8")
        assert committed == text, f"exercises/{name} differs from solutions/{name}: run `python -m grader generate`"


def test_committed_readme_table_matches_the_catalogue():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert readme.with_table(text) == text, "README.md's points table differs from grader/catalogue.toml: run `python -m grader generate`"
    for module in catalogue.load().modules:  # each row sums its module's checks
        assert f"| `exercises/{module.name}.py` | {module.teaches} | {sum(c.points for e in module.exercises for c in e.checks)} |" in text


def test_committed_curriculum_matches_the_catalogue_and_the_solutions():
    assert curriculum.CURRICULUM == REPO / "CURRICULUM.md"
    assert (REPO / "CURRICULUM.md").read_text(encoding="utf-8") == curriculum.text(), (
        "CURRICULUM.md differs from grader/catalogue.toml and solutions/: run `python -m grader generate`")


def test_the_curriculum_holds_every_module_function_signature_check_and_what_they_prove():
    text = (REPO / "CURRICULUM.md").read_text(encoding="utf-8")
    assert f"{catalogue.load().points} points in all" in text
    for number, module in enumerate(catalogue.load().modules, start=1):
        assert f"## {number}. {module.title} · {module.points} points\n\n`exercises/{module.name}.py`: {module.teaches}\n" in text
        solution = stubgen.top_level_definitions((REPO / "solutions" / f"{module.name}.py").read_text(encoding="utf-8"))
        for exercise in module.exercises:
            node = solution[exercise.function]
            section = text.split(f"### `{exercise.function}` · {exercise.points} points\n", 1)[1].split("\n### ", 1)[0]
            assert f"def {exercise.function}(" in section and f"\n{ast.get_docstring(node).splitlines()[0].replace('``', '`')}\n" in section
            for check in exercise.checks:
                assert f"- {check.name.replace('_', ' ')} · {check.points} point" in section and f"(`test_{check.name}`)" in section
            assert "\nWhat the checks prove: " in section and exercise.proves.split("`")[0][:40] in section
    assert "### `ThresholdModel`, used by the exercises after it" in text  # a class the learner writes too


@pytest.mark.parametrize("exercise", catalogue.load().exercises, ids=lambda e: e.key)
def test_every_stub_keeps_the_signature_and_raises(exercise):
    def functions(path):
        return stubgen.top_level_definitions(path.read_text(encoding="utf-8"))

    stub = functions(REPO / "exercises" / f"{exercise.module}.py")[exercise.function]
    solution = functions(REPO / "solutions" / f"{exercise.module}.py")[exercise.function]
    assert isinstance(stub, ast.FunctionDef) and isinstance(solution, ast.FunctionDef)
    assert ast.dump(stub.args) == ast.dump(solution.args)
    assert ast.get_docstring(stub) == ast.get_docstring(solution) and ast.get_docstring(stub)
    body = [n for n in stub.body if not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))]
    assert len(body) == 1 and isinstance(body[0], ast.Raise) and "NotImplementedError" in ast.unparse(body[0])


def test_solution_markers_are_checked():
    with pytest.raises(stubgen.MarkerError, match="never closed"):
        stubgen.make_stub("def f():\n    ### BEGIN SOLUTION\n    return 1\n", "m.py")
    with pytest.raises(stubgen.MarkerError, match="without BEGIN"):
        stubgen.make_stub("def f():\n    return 1\n    ### END SOLUTION\n", "m.py")


def test_regions_become_raise_in_their_function():
    stub = stubgen.make_stub(
        'import os\n\nclass C:\n    def go(self):\n        """Doc."""\n        ### BEGIN SOLUTION\n        return 1\n        ### END SOLUTION\n',
        "m.py",
    )
    assert 'raise NotImplementedError("go: replace this line with your code")' in stub
    assert "return 1" not in stub and "import os" in stub and '"""Doc."""' in stub
