"""The grader's options and promises: --target, --seed, -k, --grade-json, a clean
working folder, and the learner's MLFLOW_* environment left alone."""
from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from conftest import FULL_MARKS, FUNCTIONS, REPO, SUBMISSIONS, grade, snapshot
from grader.core import catalogue


def test_every_catalogue_check_has_exactly_one_test():
    listed = subprocess.run(
        [sys.executable, "-m", "pytest", "grader", "--collect-only", "-q", "-p", "no:cacheprovider"],
        cwd=REPO, capture_output=True, text=True,
    )
    collected = {line.split("::", 1)[1] for line in listed.stdout.splitlines() if "::" in line}
    expected = {f"Test_{e.function}::test_{c.name}" for e in catalogue.load().exercises for c in e.checks}
    assert collected == expected
    assert listed.returncode == 0 and "INTERNALERROR" not in listed.stdout + listed.stderr, listed.stdout[-2000:]


def test_catalogue_declares_100_points_with_hints(tmp_path):
    """The curriculum keeps the total at 100 (the catalogue's ``total``; per-module sums are
    derived, and shown in the README's table: tests/test_generator.py); a catalogue whose
    points do not add up is refused with a clear error."""
    loaded = catalogue.load()
    assert loaded.points == 100 and all(m.points == sum(e.points for e in m.exercises) for m in loaded.modules)
    assert all(e.hint.strip() for e in loaded.exercises) and all(m.teaches.strip() for m in loaded.modules)
    uneven = tmp_path / "catalogue.toml"
    uneven.write_text(catalogue.CATALOGUE_PATH.read_text().replace("alias_resolves = 2", "alias_resolves = 3"))
    with pytest.raises(ValueError, match="add up to 101, not its total of 100"):
        catalogue.load(uneven)


def test_target_with_exercises_subfolder_and_k_selection(tmp_path):
    course = tmp_path / "learner-folder"
    shutil.copytree(REPO / "solutions", course / "exercises")
    graded = grade(course, "-k", "ex02", out=tmp_path / "r.json")
    assert set(graded.exercises) == {e.key for e in catalogue.load().module("ex02_models").exercises}
    assert graded.results["score"] == graded.results["max_score"] == catalogue.load().module("ex02_models").points


def test_bad_target_is_a_clear_usage_error(tmp_path):
    (tmp_path / "empty").mkdir()
    graded = grade(tmp_path / "empty", out=tmp_path / "r.json")
    assert graded.code == 4 and "holds none of ex01_tracking.py" in graded.output


def test_same_seed_same_result_and_nothing_written(tmp_path):
    """A half-done submission graded twice with one seed: identical per-check results; the
    graded folder and the working folder stay untouched; the learner's MLFLOW_* settings
    are not used (a tracking URI pointing at a file in the working folder stays unwritten)."""
    folder = tmp_path / "half-done"
    shutil.copytree(SUBMISSIONS / "independent", folder)
    shutil.copy(REPO / "exercises" / "ex03_registry.py", folder / "ex03_registry.py")
    workdir = tmp_path / "workdir"
    workdir.mkdir()
    before = snapshot(folder), snapshot(workdir)
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{workdir}/learner.db", "MLFLOW_EXPERIMENT_NAME": "learner-own"}
    args = ("-k", "log_run or find_best_run or annotate_version or set_alias")
    first = grade(folder, *args, seed=99, cwd=workdir, env=env, out=tmp_path / "a.json")
    second = grade(folder, *args, seed=99, cwd=workdir, env=env, out=tmp_path / "b.json")
    done = FULL_MARKS["ex01_tracking.log_run"] + FULL_MARKS["ex01_tracking.find_best_run"]  # ex03 is the stub
    assert first.results["score"] == done and first.statuses()["ex03_registry.set_alias"] == "not_attempted"
    assert first.results["tests"] == second.results["tests"]
    assert "seed 99" in first.output
    assert (snapshot(folder), snapshot(workdir)) == before


def test_a_sandboxed_grading_counts_the_whole_kit_from_the_learners_code(tmp_path):
    """With --isolation limits (or bwrap) the copy of the learner's files goes with the
    grading's scratch: the board's count is made before, not from a folder already gone."""
    graded = grade(REPO / "solutions", "-k", "log_run", "--isolation", "limits", out=tmp_path / "r.json",
                   env={"XDG_CACHE_HOME": str(tmp_path / "cache")})  # no board from earlier gradings of solutions/
    points = catalogue.load().exercise("ex01_tracking", "log_run").points
    assert graded.results["score"] == points and f"the whole kit: 1/{FUNCTIONS} done" in graded.output, graded.output[-2000:]


def test_no_progress_leaves_the_learners_board_as_it_was(tmp_path):
    """The kit's own gradings of copies it made (a batch's, a notebook's) say --no-progress;
    a learner's grading of their own folder keeps its verdicts for the board."""
    cache = tmp_path / "cache"
    boards = lambda: sorted(cache.rglob("progress/*.json"))  # noqa: E731
    grade(REPO / "solutions", "-k", "log_run", "--no-progress", out=tmp_path / "a.json", env={"XDG_CACHE_HOME": str(cache)})
    assert boards() == []
    grade(REPO / "solutions", "-k", "log_run", out=tmp_path / "b.json", env={"XDG_CACHE_HOME": str(cache)})
    assert len(boards()) == 1 and "ex01_tracking.log_run" in boards()[0].read_text()
