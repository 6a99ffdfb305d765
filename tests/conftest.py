"""Shared helpers of the kit's own suite: grading a folder exactly as a learner would."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SUBMISSIONS = Path(__file__).resolve().parent / "submissions"
SEED = 4242


@dataclass
class Graded:
    """One `pytest grader` run: its exit code, what it printed, and its results.json."""

    code: int
    output: str
    results: dict

    @property
    def exercises(self) -> dict:
        return self.results["extra_data"]["exercises"]

    def scores(self) -> dict[str, int]:
        return {key: e["score"] for key, e in self.exercises.items()}

    def statuses(self) -> dict[str, str]:
        return {key: e["status"] for key, e in self.exercises.items()}


def grade(target: Path | None, *args: str, seed: int = SEED, cwd: Path = REPO, env: dict | None = None,
          out: Path) -> Graded:
    """Run `python -m pytest grader` in a subprocess, as a learner or CI would."""
    command = [sys.executable, "-m", "pytest", str(REPO / "grader"), "-p", "no:cacheprovider",
               "--seed", str(seed), "--grade-json", str(out), *args]
    if target is not None:
        command += ["--target", str(target)]
    completed = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=900,
                               env={**os.environ, **(env or {})})
    results = json.loads(out.read_text()) if out.exists() else {}
    return Graded(completed.returncode, completed.stdout + completed.stderr, results)


def grade_many(jobs: list[tuple], tmp: Path, workers: int = 2) -> list[Graded]:
    """Grade several (target, *args) jobs two at a time (the CI machine has two cores)."""
    def run(index_job):
        index, (target, *args) = index_job
        return grade(target, *args, out=tmp / f"results-{index}.json")

    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(run, enumerate(jobs)))


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file below a folder with its size and modification time."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")}


@pytest.fixture(scope="session")
def reference_grades(tmp_path_factory) -> dict[str, Graded]:
    """The solutions, the committed stubs and the independent implementation, graded once."""
    tmp = tmp_path_factory.mktemp("reference")
    names = ["solutions", "exercises", "independent"]
    targets = [REPO / "solutions", None, SUBMISSIONS / "independent"]
    return dict(zip(names, grade_many([(t,) for t in targets], tmp)))
