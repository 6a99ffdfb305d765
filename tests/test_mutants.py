"""Single-bug variants of the independent implementation (tests/submissions/mutants.py)
lose points on the function they break and nowhere else.

Grading costs about as much for one bug as for many, so the variants are graded in
batches: each batch plants at most one bug per function, and every function a batch leaves
alone must keep full marks. Functions are graded independently by construction (a fresh
process and store each), which is what makes a batch say the same as single variants.
"""
from __future__ import annotations

import shutil
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from conftest import FULL_MARKS, SUBMISSIONS, grade_many
from grader.core import catalogue

sys.path.insert(0, str(SUBMISSIONS))
from mutants import MUTANTS  # noqa: E402


def batches(mutants) -> list[list]:
    """Spread mutants so that no batch holds two for the same function."""
    by_function = defaultdict(list)
    for mutant in mutants:
        by_function[mutant.function].append(mutant)
    rounds = max(len(group) for group in by_function.values())
    return [[group[i] for group in by_function.values() if i < len(group)] for i in range(rounds)]


def plant(batch, folder: Path) -> Path:
    shutil.copytree(SUBMISSIONS / "independent", folder)
    for mutant in batch:
        path = folder / f"{mutant.module}.py"
        text = path.read_text()
        assert text.count(mutant.find) == 1, f"{mutant.id}: its find text must occur exactly once"
        path.write_text(text.replace(mutant.find, mutant.replace))
    return folder


def test_mutants_are_many_and_spread():
    assert len(MUTANTS) >= 15
    assert len({m.function for m in MUTANTS}) >= 15
    assert {m.module for m in MUTANTS} == {m.name for m in catalogue.load().modules}
    assert len({m.id for m in MUTANTS}) == len(MUTANTS)


@pytest.fixture(scope="module")
def graded_batches(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mutants")
    planned = batches(MUTANTS)
    folders = [plant(batch, tmp / f"batch-{i}") for i, batch in enumerate(planned)]
    return list(zip(planned, grade_many([(folder,) for folder in folders], tmp)))


def test_each_bug_costs_points_on_its_function_only(graded_batches):
    problems = []
    for batch, graded in graded_batches:
        scores = graded.scores()
        broken = {f"{m.module}.{m.function}": m for m in batch}
        for key, full in FULL_MARKS.items():
            if key in broken and scores[key] >= full:
                problems.append(f"{broken[key].id}: {key} kept {scores[key]}/{full} ({broken[key].why})")
            if key not in broken and scores[key] != full:
                problems.append(f"batch {[m.id for m in batch]}: untouched {key} scored {scores[key]}/{full}")
    assert not problems, "\n".join(problems)
