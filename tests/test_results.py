"""results.json has one typed home (grader/core/results.py): what the scoring process
writes, every reader reads back the same; what a scoring process could not have written
is refused with the reason the gradebook shows."""
from __future__ import annotations

import json

import pytest

from grader.core import catalogue
from grader.core.results import CheckResult, Grade, Results, ResultsError

MAXIMA = {e.key: e.points for e in catalogue.load().exercises}


def _exercise(function: str) -> catalogue.Exercise:
    return next(e for e in catalogue.load().exercises if e.function == function)


def _grade() -> Grade:
    run, model = _exercise("log_run"), _exercise("save_local")
    checks = [CheckResult(run, c.name, c.points, "passed") for c in run.checks]
    checks += [CheckResult(model, model.checks[0].name, model.checks[0].points, "failed", "no MLmodel file was saved"),
               *(CheckResult(model, c.name, c.points, "failed", "no MLmodel file was saved") for c in model.checks[1:])]
    return Grade(catalogue.load(), checks, seed=7, seconds=1.234, notes={run.key: ["a run left RUNNING was ended"]})


def test_what_is_written_reads_back_the_same(tmp_path):
    grade = _grade()
    path = tmp_path / "results.json"
    grade.results({"isolation": "limits"}).write(path)
    read = Results.read(path)
    assert read == grade.results({"isolation": "limits"})
    assert (read.score, read.max_score, read.seed) == (grade.score, grade.max_score, 7)
    model = _exercise("save_local")
    assert read.exercises[model.key].status == "failed" and read.exercises[model.key].score == 0
    assert read.messages(model.key) == [(model.checks[0].name.replace("_", " "), "no MLmodel file was saved")]
    assert "Hint: " in read.tests[-1].output and read.tests[-1].message == "no MLmodel file was saved"
    assert read.exercises[_exercise("log_run").key].notes == ("a run left RUNNING was ended",)
    assert read.problem(MAXIMA, "limits") is None
    assert json.loads(path.read_text())["extra_data"]["isolation"] == "limits"  # Gradescope's shape, the kit's extras


@pytest.mark.parametrize("forge, said", [
    (lambda r: r.update(score=True), "score is not a whole number"),
    (lambda r: r.update(tests={}), "tests is not a list"),
    (lambda r: r["tests"][0].update(status="skipped"), "a test's status is neither passed nor failed"),
    (lambda r: next(iter(r["extra_data"]["exercises"].values())).update(status="great"), "a function's status"),
    (lambda r: r.pop("extra_data"), "extra_data is not an object"),
    (lambda r: r["extra_data"].update(seed="7"), "seed is not a whole number"),
])
def test_a_malformed_file_is_refused_saying_what_is_wrong(tmp_path, forge, said):
    data = _grade().results({"isolation": "limits"}).to_json()
    forge(data)
    path = tmp_path / "results.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ResultsError, match="results.json is malformed: " + said):
        Results.read(path)


def test_not_json_and_too_large_are_refused(tmp_path):
    path = tmp_path / "results.json"
    path.write_text("{")
    with pytest.raises(ResultsError, match="not JSON"):
        Results.read(path)
    path.write_bytes(b" " * (8 * 1024 * 1024 + 1))
    with pytest.raises(ResultsError, match="larger than a grading writes"):
        Results.read(path)


def test_well_formed_but_impossible_results_name_their_problem():
    results = _grade().results({"isolation": "limits"})
    key = next(iter(results.exercises))
    assert results.problem(MAXIMA, "bwrap") == "results.json was not written by this batch's grading"
    results.score += 1
    assert results.problem(MAXIMA, "limits") == "results.json's total does not add up"
    entry = results.exercises[key]
    results.exercises[key] = type(entry)(MAXIMA[key] + 1, MAXIMA[key] + 1, "passed")
    assert results.problem(MAXIMA, "limits") == "results.json holds impossible scores"
    results.exercises["ex01_tracking.made_up"] = entry
    assert results.problem(MAXIMA, "limits") == "results.json names functions the catalogue does not have"


def test_a_learner_not_graded_says_why_in_the_same_format():
    results = Results.not_graded(max_score=100, seconds=3.5, reason="the zip is corrupt", seed=7, isolation="bwrap")
    again = Results.from_json(json.loads(results.dumps()))
    assert again == results and again.output == "the zip is corrupt" and again.exercises == {} and again.score == 0
