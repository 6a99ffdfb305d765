"""bench/run.py's deciding pieces, without timing anything: the verdicts on a figures dict,
the ratios from measured seconds, the classes it grades and the options. A whole
`bench/run.py --quick` takes several minutes (nbgrader runs every check cell of every
notebook), too long for the suite; the bench itself is run by hand."""
from __future__ import annotations

import os
import sys

import nbformat
import pytest

from conftest import REPO
from grader.authoring import notebooks
from grader.core import submission

sys.path.insert(0, str(REPO / "bench"))
import run  # noqa: E402  (bench/run.py, a script: found through the path above)

ALL_MET = {"self_check": 2.5, "batch_per_learner": 1.2, "per_core_scaling": 1.9, "nbgrader_over_kit": 6.0,
           "watch_seconds": 0.4, "max_rss_mb": 400}


def test_every_target_is_met_missed_or_skipped_with_its_reason():
    assert set(run.verdicts(ALL_MET, {}).values()) == {"MET"}
    missed = {**ALL_MET, "self_check": 3.2, "per_core_scaling": 1.1, "nbgrader_over_kit": 4.9, "max_rss_mb": 501}
    assert run.verdicts(missed, {}) == {"self_check": "MISSED", "batch_per_learner": "MET", "per_core_scaling": "MISSED",
                                        "nbgrader_over_kit": "MISSED", "watch_seconds": "MET", "max_rss_mb": "MISSED"}
    without = {k: v for k, v in ALL_MET.items() if k not in ("nbgrader_over_kit", "watch_seconds")}
    found = run.verdicts(without, {"nbgrader_over_kit": "`nbgrader generate_assignment` failed here: no kernel"})
    assert found["nbgrader_over_kit"] == "SKIPPED: `nbgrader generate_assignment` failed here: no kernel"
    assert found["watch_seconds"] == "SKIPPED: not measured"


def test_a_figure_equal_to_its_target_meets_it_from_either_side():
    at = {name: target.value for name, target in run.TARGETS.items()}
    assert set(run.verdicts(at, {}).values()) == {"MET"}


def test_a_missing_batch_skips_every_batch_target_with_its_reason():
    found = run.verdicts({"self_check": 2.0, "max_rss_mb": 300}, {"batch": "no batch here"})
    assert found["batch_per_learner"] == found["per_core_scaling"] == "SKIPPED: no batch here"


def test_the_table_shows_each_target_its_figure_and_verdict():
    lines = run.verdict_table({**ALL_MET, "watch_seconds": 0.62}, {})
    assert len(lines) == 1 + len(run.TARGETS)
    watch = next(line for line in lines if line.startswith("watch"))
    assert "0.62 s" in watch and "<= 0.5 s" in watch and watch.endswith("MISSED")
    scaling = next(line for line in lines if line.startswith("1 slot on 1 core"))
    assert "1.90x" in scaling and ">= 1.8x" in scaling and scaling.endswith("MET")


def test_ratios_compare_medians_of_the_same_run():
    runs = {"floor": [2.0, 3.0, 2.0], "self_check": [6.0, 6.0, 7.0], "batch_1_slot": [30.0],
            "batch_1_slot_1_core": [50.0], "batch_2_slots_2_cores": [25.0],
            "nbgrader_autograde": [100.0], "kit_batch_notebooks": [20.0], "watch": [0.5, 1.0, 0.6]}
    assert run.ratios(runs, learners=10) == {"self_check": 3.0, "batch_per_learner": 1.5, "per_core_scaling": 2.0,
                                             "nbgrader_over_kit": 5.0, "watch_seconds": 0.6, "watch_over_floor": 0.3}
    assert run.ratios({"floor": [2.0], "self_check": [4.0], "watch": []}, learners=3) == {"self_check": 2.0}


def test_peak_memory_judges_single_processes_never_a_whole_grading():
    resources = {"scoring_process_max_rss_mb": 335, "learner_process_max_rss_mb": 330.5}
    batch = {"scoring_process_max_rss_mb": 340.2, "learner_process_max_rss_mb": None, "grading_max_pss_mb": 630}
    assert run.max_rss(resources, batch) == 340.2
    assert run.max_rss(resources, {}) == 335


def test_a_measure_that_cannot_run_is_dropped_with_its_reason():
    def refuses(_round):
        raise run.Unavailable("`nbgrader autograde` exited with status 1")

    skipped: dict[str, str] = {}
    measures = {"floor": lambda round_: 1.0 + round_, "nbgrader_autograde": refuses, "kit_batch_notebooks": lambda _: 9.0}
    runs = run.measure(measures, 2, skipped)
    assert runs == {"floor": [1.0, 2.0]}  # the kit's batch of the notebooks is nbgrader's partner: dropped too
    assert skipped == {"nbgrader_over_kit": "`nbgrader autograde` exited with status 1"}


def test_scaling_pins_one_core_then_two_of_those_allowed(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {5, 3, 7})
    assert run.scaling_cores() == ({3}, {3, 5})
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {3})
    with pytest.raises(run.Unavailable, match="two cores"):
        run.scaling_cores()


@pytest.mark.parametrize("argv, expected", [([], (3, 20, 5, 5)), (["--quick"], (1, 3, 3, 2)),
                                            (["--repeat", "2", "--batch-copies", "10"], (2, 10, 5, 5))])
def test_quick_is_one_round_of_three_learners_and_two_saves(monkeypatch, argv, expected):
    monkeypatch.setattr(sys, "argv", ["run.py", *argv])
    args = run.arguments()
    assert (args.repeat, args.batch_copies, args.notebook_copies, args.watch_saves) == expected


def test_the_notebook_class_is_the_release_filled_with_the_solutions_for_both_graders(tmp_path):
    """Real nbgrader makes the release; each learner's notebook is the same one in nbgrader's
    submitted/ and in the kit's batch folder, and the kit reads every solution back from it."""
    try:
        course = run.released_course(tmp_path)
    except run.Unavailable as why:
        pytest.skip(str(why))
    folder = run.class_of_notebooks(course, tmp_path / "notebooks", 2)
    assert sorted(p.name for p in folder.iterdir()) == ["learner00.ipynb", "learner01.ipynb"]
    for name in ("learner00", "learner01"):
        assert (folder / f"{name}.ipynb").read_bytes() == notebooks.submitted(course, name).read_bytes()
    notebook = nbformat.read(str(folder / "learner00.ipynb"), as_version=4)
    definitions = [c for c in notebook.cells if c.metadata.get("kit", {}).get("role") == "definition"]
    assert definitions and all(c.source == notebooks.solution_code(c.metadata.kit.module, c.metadata.kit.name)
                               for c in definitions)
    assert all(c.metadata.nbgrader.grade for c in notebook.cells if c.metadata.get("kit", {}).get("role") == "check")
    submission.extract_submission(folder / "learner00.ipynb", tmp_path / "extracted")
    assert "NotImplementedError" not in "".join(p.read_text() for p in (tmp_path / "extracted").glob("*.py"))


def test_the_solution_class_holds_a_copy_of_the_solutions_per_learner(tmp_path):
    folder = run.class_of_solutions(tmp_path / "class", 3)
    assert sorted(p.name for p in folder.iterdir()) == ["learner00", "learner01", "learner02"]
    modules = sorted(p.name for p in (REPO / "solutions").glob("*.py"))
    assert sorted(p.name for p in (folder / "learner02").glob("*.py")) == modules
