"""GitHub Classroom: a template repository (the stubs, the kit, a workflow) whose every push
is graded with the kit's partial credit.

GitHub Classroom scores a push by its workflow ``Autograding Tests``: each
``classroom-resources/autograding-command-grader`` step is worth its ``max-score`` when its
command exits 0, and ``autograding-grading-reporter`` adds them up. A step is all or
nothing, so the workflow has one step per check of the catalogue, worth that check's
points: a function with some checks met earns those points, as in `pytest grader`. The
kit grades the repository once, in the step before them
(`python3 -m grader.platforms.github_classroom grade`, which prints the kit's feedback to
the run's log), and each check's step reads its verdict
(`python3 -m grader.platforms.github_classroom verdict NAME`), importing nothing of the
grader's but this file: a workflow has some sixty of them.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from grader.platforms.package import Package

if TYPE_CHECKING:
    from grader.platforms.grading import PlatformGrading

WORKFLOW = ".github/workflows/classroom.yml"
RESULTS = Path(".kit-grade") / "results.json"  # in the repository's checkout, where every step runs
GRADE_STEP = "kit-grade"
PYTHON = "3.11"
GRADING_MINUTES = 20  # the grading step's limit; a check's step only reads a file


@dataclass
class ClassroomCheck:
    name: str
    points: int
    max_points: int
    passed: bool
    output: str  # plain text: a step's log shows it as it is


@dataclass
class ClassroomResult:
    """What the grading step leaves for the checks' steps: every check's verdict, or why
    there was nothing to grade (then every check's step fails, with that reason)."""

    score: int
    max_score: int
    seed: int
    problem: str | None = None
    checks: list[ClassroomCheck] = field(default_factory=list)

    @classmethod
    def from_grading(cls, grading: "PlatformGrading") -> "ClassroomResult":
        from grader.platforms.grading import said_in_text

        checks = [ClassroomCheck(test.name, test.score, test.max_score, test.status == "passed",
                                 said_in_text(grading, test)) for test in grading.tests()]
        return cls(grading.score, grading.max_score, grading.seed, grading.problem, checks)

    @classmethod
    def read(cls, path: Path) -> "ClassroomResult":
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls(**{**data, "checks": [ClassroomCheck(**check) for check in data["checks"]]})

    def to_json(self) -> dict:
        return asdict(self)


def step_id(name: str) -> str:
    """A check's step id (letters, digits and hyphens): ``ex01-tracking-log-run-params-and-metrics``."""
    return "".join(c if c.isalnum() else "-" for c in name.replace(": ", "-")).strip("-").lower()


def checks() -> list[tuple[str, int]]:
    """(test name, points) of every check of the catalogue, in its order."""
    from grader.core import catalogue
    from grader.core.results import test_name

    return [(test_name(exercise, check.name), check.points)
            for exercise in catalogue.load().exercises for check in exercise.checks]


def workflow(seed: int | None = None) -> str:
    """The workflow GitHub Classroom reads: its name, job name and reporter as Classroom
    requires them, and a step per check."""
    q = json.dumps  # a JSON string is a YAML double-quoted scalar: names and commands stay exact
    grading = "python3 -m grader.platforms.github_classroom grade" + (f" --seed {seed}" if seed is not None else "")
    lines = [WORKFLOW_HEAD.format(python=q(PYTHON), minutes=GRADING_MINUTES, grade_step=GRADE_STEP, command=q(grading))]
    named = checks()
    ids = [step_id(name) for name, _ in named]
    assert len(set(ids)) == len(ids), "two checks would share a step id"
    for (name, points), step in zip(named, ids):
        command = f"python3 -m grader.platforms.github_classroom verdict {q(name)}"
        lines.append(CHECK_STEP.format(name=q(name), id=step, command=q(command), points=points))
    lines.append(REPORTER_HEAD)
    lines += [f"          {step.upper()}_RESULTS: \"${{{{steps.{step}.outputs.result}}}}\"" for step in ids]
    lines.append(f"        with:\n          runners: {','.join(ids)}\n")
    return "\n".join(lines)


WORKFLOW_HEAD = """# GitHub Classroom grades every push with this workflow (made by `python -m grader package
# github-classroom`). Classroom reads it only under this name, with this one job.
name: Autograding Tests
"on": [push, repository_dispatch, workflow_dispatch]
permissions:
  checks: write
  actions: read
  contents: read
jobs:
  run-autograding-tests:
    runs-on: ubuntu-latest
    if: github.actor != 'github-classroom[bot]'
    steps:
      - name: Checkout code
        uses: actions/checkout@v4
      - name: Set up Python
        uses: actions/setup-python@v5
        with:
          python-version: {python}
          cache: pip
      - name: Install the kit's pinned packages
        run: python3 -m pip install -r requirements.txt
      # Grades exercises/ once, prints the kit's feedback here, and leaves each check's
      # verdict for the steps below; it always succeeds, so that they run.
      - name: Grade with the MLflow exercise kit
        id: {grade_step}
        timeout-minutes: {minutes}
        env:
          MLFLOW_DISABLE_TELEMETRY: "true"
        run: {command}
      # One step per check of the kit, worth its points: partial credit as in `pytest grader`."""

CHECK_STEP = """      - name: {name}
        id: {id}
        uses: classroom-resources/autograding-command-grader@v1
        with:
          test-name: {name}
          command: {command}
          timeout: 1
          max-score: {points}"""

REPORTER_HEAD = """      - name: Autograding Reporter
        uses: classroom-resources/autograding-grading-reporter@v1
        env:"""

LEARNER_README = """# MLflow exercises

Fill in the functions of `exercises/` (CURRICULUM.md lists them, with their points; each
docstring says what to do). Check your work as often as you like:

```bash
pip install -r requirements.txt      # once (Python 3.11 and git)
pytest grader                        # grade exercises/: every function's points, messages and hints
```

Every push is graded the same way by the workflow in `.github/workflows/classroom.yml`:
the run's log (the Actions tab) shows the same feedback, and each check's points.
"""

GITIGNORE = """__pycache__/
.kit-grade/
mlflow.db
mlruns/
mlartifacts/
"""


def package(seed: int | None = None) -> Package:
    """A template repository: the stubs, the kit, the workflow; never the solutions."""
    built = Package()
    built.add_kit(parts=("exercises", "CURRICULUM.md"))
    built.add(WORKFLOW, workflow(seed))
    built.add("README.md", LEARNER_README)
    built.add(".gitignore", GITIGNORE)
    return built


def _grade(args: argparse.Namespace) -> int:
    from grader.platforms.grading import grade, write_json

    grading = grade(Path.cwd(), args.seed)
    write_json(RESULTS, ClassroomResult.from_grading(grading).to_json())
    print(grading.feedback)  # the learner reads it in the run's log
    print(grading.summary())
    return 0  # the checks' steps must run: each fails on its own when there is no grade


def _verdict(args: argparse.Namespace) -> int:
    try:
        result = ClassroomResult.read(RESULTS)
    except (OSError, ValueError, TypeError, KeyError) as error:
        print(f"No grade to read ({error}): see the step `Grade with the MLflow exercise kit` above.")
        return 1
    if result.problem is not None:
        print(f"Your work could not be graded: {result.problem}")
        return 1
    check = next((c for c in result.checks if c.name == args.name), None)
    if check is None:
        print(f"The grading did not check `{args.name}`.")
        return 1
    print(f"{'passed' if check.passed else 'not passed'}: {check.points}/{check.max_points}" +
          (f"\n{check.output}" if check.output else ""))
    return 0 if check.passed else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="GitHub Classroom's steps: grade the repository, then each check's verdict.")
    steps = parser.add_subparsers(dest="step", required=True)
    grading = steps.add_parser("grade", help="grade the repository (the current folder) once, and print the feedback")
    grading.add_argument("--seed", type=int, default=None)
    grading.set_defaults(handler=_grade)
    verdict = steps.add_parser("verdict", help="exit 0 if the named check passed in that grading")
    verdict.add_argument("name", help="the check, as results.json names it: 'ex01_tracking.log_run: params and metrics'")
    verdict.set_defaults(handler=_verdict)
    args = parser.parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
