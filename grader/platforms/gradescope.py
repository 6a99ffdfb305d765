"""Gradescope: an autograder zip (setup.sh, run_autograder, the kit), and results.json as
Gradescope's specification has it (https://gradescope-autograders.readthedocs.io/en/latest/specs/).

Gradescope unzips the package into /autograder/source, runs setup.sh once when it builds
the image, and for every submission runs /autograder/run_autograder (a copy of ours) with
the learner's files in /autograder/submission; it reads /autograder/results/results.json.
`python3 -m grader.platforms.gradescope SUBMISSION RESULTS` is what run_autograder runs.
"""
from __future__ import annotations

import shlex
import sys
from dataclasses import asdict, dataclass, field

from grader.platforms.grading import PlatformGrading, arguments, grade, said_in_markdown, write_json
from grader.platforms.package import Package

VISIBILITIES = ("visible", "after_published", "after_due_date", "hidden")
SOURCE = "/autograder/source"
VENV = "/autograder/venv"  # setup.sh installs the pinned packages here; run_autograder puts it first on PATH


@dataclass
class GradescopeTest:
    name: str
    number: str
    score: int
    max_score: int
    status: str  # passed | failed
    output: str  # Markdown
    visibility: str
    output_format: str = "md"


@dataclass
class GradescopeResult:
    """results.json for Gradescope, made from the kit's grading: the same score, a test per
    check of the kit, the kit's feedback as the submission's output."""

    score: int
    execution_time: float
    output: str  # Markdown: the kit's feedback.md, or why the submission could not be graded
    visibility: str
    stdout_visibility: str
    tests: list[GradescopeTest] = field(default_factory=list)
    extra_data: dict = field(default_factory=dict)
    output_format: str = "md"

    @classmethod
    def from_grading(cls, grading: PlatformGrading, visibility: str, stdout_visibility: str) -> "GradescopeResult":
        numbers = test_numbers()
        tests = [GradescopeTest(test.name, numbers[test.name], test.score, test.max_score, test.status,
                                said_in_markdown(grading, test), visibility) for test in grading.tests()]
        seconds = grading.results.execution_time if grading.results else 0.0
        # Gradescope has no "ungradable": a submission that cannot be graded scores 0, and its output says why.
        return cls(grading.score, seconds, grading.feedback, visibility, stdout_visibility, tests, grading.extra_data())

    def to_json(self) -> dict:
        return asdict(self)


def test_numbers() -> dict[str, str]:
    """Each check's number, module.function.check in the catalogue's order (Gradescope
    sorts the tests by it)."""
    from grader.core import catalogue
    from grader.core.results import test_name

    return {test_name(exercise, check.name): f"{m}.{f}.{c}"
            for m, module in enumerate(catalogue.load().modules, start=1)
            for f, exercise in enumerate(module.exercises, start=1)
            for c, check in enumerate(exercise.checks, start=1)}


def package(visibility: str = "after_published", stdout_visibility: str = "hidden", seed: int | None = None) -> Package:
    grading = ["python3", "-m", "grader.platforms.gradescope", "/autograder/submission",
               "/autograder/results/results.json", "--visibility", visibility, "--stdout-visibility", stdout_visibility,
               *(["--seed", str(seed)] if seed is not None else [])]
    built = Package()
    built.add_kit()
    built.add("setup.sh", SETUP_SH, script=True)
    built.add("run_autograder", RUN_AUTOGRADER.format(venv=VENV, source=SOURCE, command=shlex.join(grading)), script=True)
    return built


SETUP_SH = """#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder's image (Ubuntu):
# Python 3.11 and git, then exactly the kit's pinned packages, in a virtual environment.
set -euxo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends git software-properties-common
if ! command -v python3.11 >/dev/null; then
    add-apt-repository -y ppa:deadsnakes/ppa   # Ubuntu's own Python is another version
    apt-get update
fi
apt-get install -y --no-install-recommends python3.11 python3.11-venv
python3.11 -m venv /autograder/venv
/autograder/venv/bin/python3 -m pip install --no-cache-dir --upgrade pip
/autograder/venv/bin/python3 -m pip install --no-cache-dir -r /autograder/source/requirements.txt
/autograder/venv/bin/python3 -m pip check
"""

RUN_AUTOGRADER = """#!/usr/bin/env bash
# Gradescope runs this for every submission. It grades /autograder/submission with the kit
# and writes /autograder/results/results.json; python3 is the first on PATH, the one
# setup.sh installed the kit's packages into.
export PATH="{venv}/bin:$PATH" MLFLOW_DISABLE_TELEMETRY=true PYTHONDONTWRITEBYTECODE=1
cd {source}
exec {command}
"""


def main(argv: list[str] | None = None) -> int:
    parser = arguments("Grade a Gradescope submission with the MLflow exercise kit (run_autograder runs this).")
    parser.add_argument("--visibility", choices=VISIBILITIES, default="after_published")
    parser.add_argument("--stdout-visibility", choices=VISIBILITIES, default="hidden")
    args = parser.parse_args(argv)
    grading = grade(args.submission, args.seed, args.timeout)
    write_json(args.results, GradescopeResult.from_grading(grading, args.visibility, args.stdout_visibility).to_json())
    print(grading.summary(), file=sys.stderr)
    return 0  # Gradescope reads results.json; a failing exit code would only hide it


if __name__ == "__main__":
    sys.exit(main())
