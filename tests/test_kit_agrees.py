"""Guard rails for authors, proved on throw-away copies of the kit broken on purpose: the
grader refuses a catalogue check without its test method, and a test method without its
check, before grading anything; `python -m grader check` proves that the catalogue, the
solutions, the stubs, the notebooks and the course, CURRICULUM.md, the README's table and
the checks agree, and names the file and the fix when they do not."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, copy_kit, kit_env

ALL_AGREE = "all agree: the catalogue, solutions, stubs, notebooks, course, CURRICULUM.md, README table and checks\n"


def run(kit: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=kit, capture_output=True, text=True, timeout=600,
                          env=kit_env(), stdin=subprocess.DEVNULL)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, (path, old)
    path.write_text(text.replace(old, new))


def a_check_without_its_method(kit: Path) -> None:
    edit(kit / "grader" / "catalogue.toml", "checks = { finished_run = 1, history_by_step = 2 }",
         "checks = { finished_run = 1, history_by_step = 2, ghost_check = 1 }")
    edit(kit / "grader" / "catalogue.toml", "total = 100", "total = 101")


def a_method_without_its_check(kit: Path) -> None:
    edit(kit / "grader" / "test_ex01_tracking.py", "    def test_one_finished_run(self, scenario):",
         "    def test_phantom(self, scenario):\n        pass\n\n    def test_one_finished_run(self, scenario):")


def a_class_without_its_exercise(kit: Path) -> None:
    edit(kit / "grader" / "test_ex01_tracking.py", "class Test_log_run:", "class Test_log_runs:")


UNMATCHED = {  # how the kit is broken -> the line that names what and where
    a_check_without_its_method: "grader/catalogue.toml: check `ghost_check` of ex01_tracking.log_metric_history has no "
                                "test method: expected `def test_ghost_check(self, scenario)` in class "
                                "Test_log_metric_history of grader/test_ex01_tracking.py",
    a_method_without_its_check: "grader/test_ex01_tracking.py: Test_log_run.test_phantom has no check in "
                                "grader/catalogue.toml: expected `phantom = <points>` in the checks of the [[exercise]] "
                                "ex01_tracking.log_run",
    a_class_without_its_exercise: "grader/test_ex01_tracking.py: class Test_log_runs checks no exercise of "
                                  "grader/catalogue.toml: expected an [[exercise]] with module = \"ex01_tracking\" and "
                                  "function = \"log_runs\"",
}


@pytest.mark.parametrize("break_it", UNMATCHED, ids=lambda f: f.__name__)
@pytest.mark.parametrize("selected", [(), ("-k", "find_best_run")], ids=["all", "-k another function"])
def test_the_grader_refuses_a_check_and_a_method_that_do_not_match(tmp_path, break_it, selected):
    """Before: a check without its method was dropped unseen (solutions scored 99 while the
    summary read 1/1), whatever -k selected."""
    kit = copy_kit(tmp_path / "kit", ("grader", "solutions", "exercises", "pytest.ini"))
    break_it(kit)
    done = run(kit, "pytest", "grader", "--target", "solutions", *selected)
    assert done.returncode == pytest.ExitCode.USAGE_ERROR, done.stdout[-3000:] + done.stderr[-3000:]
    assert f"  {UNMATCHED[break_it]}\n" in done.stderr, done.stderr
    assert "nothing was graded" in done.stderr and "Total:" not in done.stdout, done.stdout
    if break_it is a_class_without_its_exercise:  # the catalogue's checks of log_run lose their methods too
        assert "check `one_finished_run` of ex01_tracking.log_run has no test method" in done.stderr, done.stderr


def test_check_passes_on_the_kit():
    done = run(REPO, "grader", "check")
    assert (done.returncode, done.stdout, done.stderr) == (0, ALL_AGREE, ""), done.stdout + done.stderr


def a_changed_hint(kit: Path) -> None:
    edit(kit / "grader" / "catalogue.toml", 'hint = "mlflow.pyfunc.load_model(f\'models:/{model_name}@{alias}\')."',
         'hint = "mlflow.pyfunc.load_model(f\'models:/{model_name}@{alias}\'), then .predict(X)."')


def an_edited_stub(kit: Path) -> None:
    edit(kit / "exercises" / "ex03_registry.py", 'raise NotImplementedError("set_alias: replace this line with your code")',
         "pass")


def a_stub_that_takes_other_arguments(kit: Path) -> None:
    edit(kit / "exercises" / "ex03_registry.py", "def set_alias(model_name: str, version: int, alias: str) -> None:",
         "def set_alias(model_name: str, version: int) -> None:")


def an_edited_notebook(kit: Path) -> None:
    edit(kit / "notebooks" / "mlflow_lesson.ipynb", "# Learn MLflow by doing", "# Learn MLflow")


def a_solution_without_a_function(kit: Path) -> None:
    edit(kit / "solutions" / "ex03_registry.py", "def set_alias(", "def set_the_alias(")


DISAGREEING = {  # how the kit is broken -> the one line `check` prints
    a_changed_hint: "CURRICULUM.md: differs from what `python -m grader generate` writes (made from "
                    "grader/catalogue.toml and solutions/): run `python -m grader generate`",
    an_edited_stub: "exercises/ex03_registry.py: differs from what `python -m grader generate` writes (made from "
                    "solutions/ex03_registry.py): run `python -m grader generate`",
    an_edited_notebook: "notebooks/mlflow_lesson.ipynb: differs from what `python -m grader generate` writes (made "
                        "from grader/catalogue.toml and solutions/): run `python -m grader generate`",
    a_solution_without_a_function: "solutions/ex03_registry.py: no function `set_alias`, which grader/catalogue.toml "
                                   "lists: define it, or take its [[exercise]] out of the catalogue",
}


@pytest.mark.parametrize("break_it", DISAGREEING, ids=lambda f: f.__name__)
def test_check_names_the_file_and_the_fix(tmp_path, break_it):
    kit = copy_kit(tmp_path / "kit")
    break_it(kit)
    done = run(kit, "grader", "check")
    assert (done.returncode, done.stdout.splitlines()) == (1, [DISAGREEING[break_it]]), done.stdout + done.stderr


def test_check_names_a_check_without_its_method_as_the_grader_does(tmp_path):
    kit = copy_kit(tmp_path / "kit")
    a_check_without_its_method(kit)
    done = run(kit, "grader", "check")
    first, *drifted = done.stdout.splitlines()
    assert (done.returncode, first) == (1, UNMATCHED[a_check_without_its_method]), done.stdout + done.stderr
    # Its points changed every generated file that shows them.
    assert {line.split(": ")[0] for line in drifted} == {
        "CURRICULUM.md", "README.md", "notebooks/mlflow_lesson.ipynb", "course/source/mlflow_lesson/mlflow_lesson.ipynb"}
    assert all(line.endswith(": run `python -m grader generate`") for line in drifted), drifted


def test_check_names_a_stubs_other_signature_and_generate_mends_it(tmp_path):
    kit = copy_kit(tmp_path / "kit")
    a_stub_that_takes_other_arguments(kit)
    done = run(kit, "grader", "check")
    assert done.returncode == 1 and done.stdout.splitlines() == [
        "exercises/ex03_registry.py: `set_alias(model_name: str, version: int) -> None` is not the solution's "
        "`set_alias(model_name: str, version: int, alias: str) -> None`: run `python -m grader generate`",
        DISAGREEING[an_edited_stub]], done.stdout
    assert run(kit, "grader", "generate", "--force").returncode == 0
    mended = run(kit, "grader", "check")
    assert (mended.returncode, mended.stdout) == (0, ALL_AGREE), mended.stdout + mended.stderr


def test_the_catalogue_refuses_an_exercise_that_says_nothing_of_what_it_proves(tmp_path):
    from grader.core import catalogue

    broken = tmp_path / "catalogue.toml"
    text = (REPO / "grader" / "catalogue.toml").read_text(encoding="utf-8")
    first = next(line for line in text.splitlines() if line.startswith("proves = "))
    broken.write_text(text.replace(first + "\n", "", 1), encoding="utf-8")
    with pytest.raises(ValueError, match="get_or_create_experiment say\\(s\\) nothing of what the checks prove"):
        catalogue.load(broken)
    assert catalogue.load(REPO / "grader" / "catalogue.toml").exercises[0].proves == first.split(" = ", 1)[1].strip('"')
