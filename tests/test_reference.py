"""The three reference points: solutions score 100, stubs score 0 and say "not attempted",
an implementation written by someone else from the kit's CURRICULUM.md scores 100."""
from __future__ import annotations

from grader.core import catalogue

ALL_FUNCTIONS = {e.key for e in catalogue.load().exercises}


def test_solutions_score_full_marks(reference_grades):
    graded = reference_grades["solutions"]
    assert graded.results["score"] == 100 == graded.results["max_score"], graded.output
    assert set(graded.exercises) == ALL_FUNCTIONS
    assert set(graded.statuses().values()) == {"passed"}, graded.statuses()
    assert graded.code == 0


def test_independent_implementation_scores_full_marks(reference_grades):
    graded = reference_grades["independent"]
    assert graded.results["score"] == 100, graded.output


def test_stubs_score_zero_and_read_not_attempted(reference_grades):
    graded = reference_grades["exercises"]
    assert graded.results["score"] == 0 and graded.results["max_score"] == 100
    assert graded.statuses() == {key: "not_attempted" for key in ALL_FUNCTIONS}
    assert "Traceback" not in graded.output and "not attempted" in graded.output
    assert all("still raises NotImplementedError" in test["output"] for test in graded.results["tests"]) and "Next: implement `get_or_create_experiment`" in graded.output


def test_results_json_is_gradescope_format(reference_grades):
    results = reference_grades["solutions"].results
    assert {"score", "max_score", "execution_time", "tests", "extra_data"} <= set(results)
    points = sum(check.points for e in catalogue.load().exercises for check in e.checks)
    assert len(results["tests"]) == sum(len(e.checks) for e in catalogue.load().exercises)
    assert sum(t["max_score"] for t in results["tests"]) == points == 100
    for test in results["tests"]:
        assert set(test) == {"name", "score", "max_score", "status", "output"}
        assert test["status"] in ("passed", "failed")
    stub_tests = reference_grades["exercises"].results["tests"]
    assert all(t["status"] == "failed" and "Not attempted yet" in t["output"] for t in stub_tests)
