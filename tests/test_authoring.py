"""Adding an exercise touches three places (AUTHORING.md): its solution, its catalogue entry
and its check class. Proved on a throw-away exercise in a copy of the kit: a new module
whose check sets up its store with a sandbox step declared next to it; `python -m grader
generate` makes everything else; the grader grades it at once; and the kit's own tests
that read the catalogue pass on it with none of them edited."""
from __future__ import annotations

import json
import subprocess
import sys

from conftest import KIT_PARTS, copy_kit, kit_env
from grader.core.catalogue import load as load_catalogue

SOLUTION = '''"""A throw-away module: reading a run's tag."""
import mlflow


def tag_of_run(run_id: str) -> str:
    """Return the value of the tag ``given`` of the run ``run_id``."""
    ### BEGIN SOLUTION
    return mlflow.MlflowClient().get_run(run_id).data.tags["given"]
    ### END SOLUTION
'''

CATALOGUE_ENTRY = '''
[[module]]
name = "ex99_throwaway"
title = "A throw-away module"
teaches = "reading a run's tags"

[[exercise]]
module = "ex99_throwaway"
function = "tag_of_run"
hint = "MlflowClient().get_run(run_id).data.tags holds the run's tags."
checks = { returns_the_tag = 2, leaves_the_run_alone = 1 }
proves = "the function returns the tag the grader set on a run it made, and leaves the run's tags as they were"
'''

CHECKS = '''"""Module 99: a throw-away exercise. Each class is one function; each test one check."""
from __future__ import annotations

from grader.core.session import Scenario
from grader.sandbox.protocol import sandbox_step


@sandbox_step
def run_with_tag(experiment_id, value):
    """Set-up, in the learner's sandbox: a finished run tagged given=value."""
    import mlflow

    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.set_tag("given", value)
    return run.info.run_id


class Test_tag_of_run:
    @staticmethod
    def scenario(learner, inputs):
        store = learner.store()
        value = inputs.word()
        run_id = learner.prepare(store, run_with_tag, store.new_experiment(inputs.name("throwaway")), value)
        return Scenario(store=store, run_id=run_id, value=value, call=learner.attempt(store, run_id))

    def test_returns_the_tag(self, scenario):
        value, returned = scenario.value, scenario.call.value()
        assert returned == value, f"the run's tag `given` is {value!r}; the function returned {returned!r}"

    def test_leaves_the_run_alone(self, scenario):
        scenario.call.result()
        assert scenario.store.client.get_run(scenario.run_id).data.tags["given"] == scenario.value, "the run's tag changed"
'''

def _grade(kit, tmp_path, name, *args):
    out = tmp_path / f"{name}.json"
    done = subprocess.run([sys.executable, "-m", "pytest", "grader", "-p", "no:cacheprovider", "-k", "tag_of_run",
                           "--seed", "7", "--grade-json", str(out), *args],
                          cwd=kit, capture_output=True, text=True, timeout=600, env=kit_env())
    assert out.is_file(), done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads(out.read_text()), done.stdout


def _files(folder):
    """Every file below ``folder`` with its content."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts}


def test_a_new_exercise_takes_its_solution_its_catalogue_entry_and_its_check_class(tmp_path):
    kit = copy_kit(tmp_path / "kit", (*KIT_PARTS, "tests"))
    before = _files(kit)

    # The three places.
    (kit / "solutions" / "ex99_throwaway.py").write_text(SOLUTION)
    catalogue = kit / "grader" / "catalogue.toml"
    catalogue.write_text(catalogue.read_text().replace("total = 100", "total = 103") + CATALOGUE_ENTRY)
    (kit / "grader" / "test_ex99_throwaway.py").write_text(CHECKS)
    touched = {path for path, data in _files(kit).items() if before.get(path) != data}
    assert touched == {"solutions/ex99_throwaway.py", "grader/catalogue.toml", "grader/test_ex99_throwaway.py"}

    # Everything else is made from them.
    generated = subprocess.run([sys.executable, "-m", "grader", "generate"], cwd=kit, capture_output=True, text=True,
                               timeout=300, env=kit_env())
    assert generated.returncode == 0, generated.stderr
    remade = {path for path, data in _files(kit).items() if before.get(path) != data} - touched
    assert remade == {"exercises/ex99_throwaway.py", "README.md", "CURRICULUM.md", "notebooks/mlflow_lesson.ipynb",
                      "course/nbgrader_config.py", "course/source/mlflow_lesson/mlflow_lesson.ipynb"}, remade
    row = f"| {len(load_catalogue().modules) + 1} | `exercises/ex99_throwaway.py` | reading a run's tags | 3 |"
    assert row in (kit / "README.md").read_text()
    assert "### `tag_of_run` · 3 points" in (kit / "CURRICULUM.md").read_text()
    assert "What the checks prove: the function returns the tag the grader set" in (kit / "CURRICULUM.md").read_text()
    checked = subprocess.run([sys.executable, "-m", "grader", "check"], cwd=kit, capture_output=True, text=True,
                             timeout=300, env=kit_env())
    assert (checked.returncode, checked.stdout.startswith("all agree")) == (0, True), checked.stdout + checked.stderr
    assert 'check(\\"ex99_throwaway\\", \\"tag_of_run\\")' in (kit / "notebooks" / "mlflow_lesson.ipynb").read_text()

    # Graded at once: the solution scores its points, the stub says "not attempted".
    solved, printed = _grade(kit, tmp_path, "solutions", "--target", "solutions")
    assert solved["extra_data"]["exercises"] == {"ex99_throwaway.tag_of_run": {"score": 3, "max_score": 3, "status": "passed"}}, printed
    assert (solved["score"], solved["max_score"]) == (3, 3)
    assert "ex99_throwaway.py · A throw-away module" in printed and "Total: 3/3" in printed, printed
    stub, printed = _grade(kit, tmp_path, "stubs")
    assert stub["extra_data"]["exercises"]["ex99_throwaway.tag_of_run"]["status"] == "not_attempted", printed
    assert "0/103 points" in printed, printed

    # The kit's own tests that read the catalogue take the new exercise in, none edited.
    own = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "tests/test_generator.py",
                          "tests/test_architecture.py", "tests/test_results.py",
                          "tests/test_kit_agrees.py::test_check_passes_on_the_kit"],
                         cwd=kit, capture_output=True, text=True, timeout=600, env=kit_env())
    assert own.returncode == 0, own.stdout[-3000:] + own.stderr[-3000:]
    assert "ex99_throwaway.tag_of_run" in subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--collect-only", "tests/test_generator.py"],
        cwd=kit, capture_output=True, text=True, timeout=300, env=kit_env()).stdout
