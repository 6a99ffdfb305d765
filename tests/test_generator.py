"""exercises/ is generated from solutions/ and must never drift from it."""
from __future__ import annotations

import ast

import pytest

from conftest import REPO
from grader.authoring import readme, stubgen
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


@pytest.mark.parametrize("exercise", catalogue.load().exercises, ids=lambda e: e.key)
def test_every_stub_keeps_the_signature_and_raises(exercise):
    def functions(path):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        return {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}

    stub = functions(REPO / "exercises" / f"{exercise.module}.py")[exercise.function]
    solution = functions(REPO / "solutions" / f"{exercise.module}.py")[exercise.function]
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
