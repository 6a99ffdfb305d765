"""PrairieLearn: an externally graded question and the course files it grades with, and
results.json as PrairieLearn's external grading reads it
(https://prairielearn.readthedocs.io/en/latest/externalGrading/).

PrairieLearn copies the course's ``serverFilesCourse/mlflow_kit/`` to
``/grade/serverFilesCourse/mlflow_kit/``, the learner's uploaded files to ``/grade/student/``,
runs the question's entrypoint (``run_grader``) in the course's grading image, and reads
``/grade/results/results.json``. `python3 -m grader.platforms.prairielearn STUDENT RESULTS`
is what run_grader runs.
"""
from __future__ import annotations

import json
import shlex
import sys
import uuid
from dataclasses import asdict, dataclass, field

from grader import KIT_ROOT
from grader.platforms.grading import GRADING_SECONDS, PlatformGrading, arguments, grade, said_in_text, write_json
from grader.platforms.package import Package

KIT_FOLDER = "mlflow_kit"  # in the course's serverFilesCourse/
QUESTION = "mlflow_kit"  # in the course's questions/
ENTRYPOINT = f"/grade/serverFilesCourse/{KIT_FOLDER}/run_grader"
IMAGE = "your-docker-hub-name/mlflow-kit-grader:3.17.2"  # the instructor builds and pushes it (grader-image/)
# PrairieLearn's own limit on a grading job: the kit's (GRADING_SECONDS) ends first, so the learner reads why.
TIMEOUT_SECONDS = GRADING_SECONDS + 120
# The same question everywhere it is packaged, so a course can take a new package over an old one.
QUESTION_UUID = str(uuid.uuid5(uuid.NAMESPACE_URL, "https://github.com/mlflow-exercise-kit/prairielearn/question"))


@dataclass
class PrairieLearnTest:
    name: str
    points: int
    max_points: int
    message: str  # plain text: PrairieLearn shows it as it is


@dataclass
class PrairieLearnResult:
    """results.json for PrairieLearn, made from the kit's grading: the kit's score as a
    fraction, a test per check with its points and message; ``gradable`` false, with the
    reason, when there was nothing to grade (the learner keeps the attempt)."""

    gradable: bool
    message: str
    score: float | None = None  # 0 to 1
    output: str = ""  # the kit's feedback.md
    tests: list[PrairieLearnTest] = field(default_factory=list)

    @classmethod
    def from_grading(cls, grading: PlatformGrading) -> "PrairieLearnResult":
        if grading.problem is not None:
            return cls(False, f"Your submission could not be graded: {grading.problem}")
        tests = [PrairieLearnTest(test.name, test.score, test.max_score, said_in_text(grading, test))
                 for test in grading.tests()]
        return cls(True, f"{grading.score}/{grading.max_score} points (seed {grading.seed})",
                   grading.score / grading.max_score, grading.feedback, tests)

    def to_json(self) -> dict:
        return {key: value for key, value in asdict(self).items() if value is not None}


def package(seed: int | None = None, image: str = IMAGE) -> Package:
    """A course's folders: serverFilesCourse/mlflow_kit/ (the kit and run_grader),
    questions/mlflow_kit/ (the question), grader-image/ (the grading image's Dockerfile)."""
    grading = ["python3", "-m", "grader.platforms.prairielearn", "/grade/student", "/grade/results/results.json",
               *(["--seed", str(seed)] if seed is not None else [])]
    built = Package()
    built.add_kit(f"serverFilesCourse/{KIT_FOLDER}/")
    built.add(f"serverFilesCourse/{KIT_FOLDER}/run_grader", RUN_GRADER.format(command=shlex.join(grading)), script=True)
    built.add(f"questions/{QUESTION}/info.json", json.dumps(question_info(image), indent=2) + "\n")
    built.add(f"questions/{QUESTION}/question.html", QUESTION_HTML)
    built.add("grader-image/Dockerfile", DOCKERFILE)
    built.add("grader-image/requirements.txt", (KIT_ROOT / "requirements.txt").read_bytes())
    return built


def question_info(image: str) -> dict:
    return {
        "uuid": QUESTION_UUID,
        "title": "MLflow exercises",
        "topic": "MLflow",
        "type": "v3",
        "singleVariant": True,
        "gradingMethod": "External",
        "externalGradingOptions": {
            "enabled": True,
            "image": image,
            "serverFilesCourse": [f"{KIT_FOLDER}/"],
            "entrypoint": ENTRYPOINT,
            "timeout": TIMEOUT_SECONDS,
        },
    }


RUN_GRADER = """#!/usr/bin/env bash
# PrairieLearn runs this for every submission, in the course's grading image. It grades
# /grade/student with the kit and writes /grade/results/results.json; python3 is the first
# on PATH, the one the image installed the kit's packages into.
export MLFLOW_DISABLE_TELEMETRY=true PYTHONDONTWRITEBYTECODE=1
cd "$(dirname "$0")"
exec {command}
"""

QUESTION_HTML = """<pl-question-panel>
  <p>Hand in your MLflow exercises: your modules (<code>ex01_tracking.py</code> to
  <code>ex06_reproducible.py</code>, those you have done), a <code>.zip</code> of them, or your
  lesson notebook <code>mlflow_lesson.ipynb</code>. The grader runs the same checks as
  <code>pytest grader</code> and shows each check's points and message.</p>
  <pl-file-upload optional-file-names="ex01_tracking.py, ex02_models.py, ex03_registry.py, ex04_practice.py, ex05_serving.py, ex06_reproducible.py, mlflow_lesson.ipynb, submission.zip"></pl-file-upload>
</pl-question-panel>

<pl-submission-panel>
  <pl-external-grader-results></pl-external-grader-results>
  <pl-file-preview></pl-file-preview>
</pl-submission-panel>
"""

DOCKERFILE = """# The grading image: Python 3.11, git, and exactly the kit's pinned packages.
# docker build -t your-docker-hub-name/mlflow-kit-grader:3.17.2 grader-image/ && docker push ...
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends git && rm -rf /var/lib/apt/lists/*
COPY requirements.txt /tmp/requirements.txt
RUN python3 -m pip install --no-cache-dir -r /tmp/requirements.txt && python3 -m pip check
"""


def main(argv: list[str] | None = None) -> int:
    args = arguments("Grade a PrairieLearn submission with the MLflow exercise kit (run_grader runs this).").parse_args(argv)
    grading = grade(args.submission, args.seed, args.timeout)
    write_json(args.results, PrairieLearnResult.from_grading(grading).to_json())
    print(grading.summary(), file=sys.stderr)
    return 0  # PrairieLearn reads results.json


if __name__ == "__main__":
    sys.exit(main())
