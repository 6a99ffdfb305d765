"""`python -m grader package gradescope|github-classroom|prairielearn OUT`: the kit as a
grading platform's package, scoring exactly as `pytest grader` does."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from grader.ground.exits import Exit

PLATFORMS = {
    "gradescope": "an autograder zip: setup.sh, run_autograder and the kit (upload it as the assignment's autograder)",
    "github-classroom": "a template repository: the stubs, the kit and .github/workflows/classroom.yml",
    "prairielearn": "a course's files: serverFilesCourse/mlflow_kit/, questions/mlflow_kit/ and grader-image/",
}


def add_parser(commands) -> None:
    package = commands.add_parser(
        "package", help="package the kit for Gradescope, GitHub Classroom or PrairieLearn, scoring as `pytest grader`",
        description="Write what a grading platform needs to grade learners with this kit: the same checks, points, "
                    "messages and hints as `pytest grader`, never the solutions. README.md, section \"Grading on a "
                    "platform\", says where each file goes.")
    platforms = package.add_subparsers(dest="platform", required=True, metavar="PLATFORM")
    for name, what in PLATFORMS.items():
        platform = platforms.add_parser(name, help=what, description=f"Write {what}.")
        platform.add_argument("out", type=Path, metavar="OUT.zip" if name == "gradescope" else "DIR",
                              help="the file to write" if name == "gradescope" else "a new (or empty) folder to write")
        platform.add_argument("--seed", type=int, default=None,
                              help="one seed for every learner's random inputs (default: a new one for each grading, "
                                   "shown with its result, so that a learner can replay it)")
        if name == "gradescope":
            from grader.platforms.gradescope import VISIBILITIES

            platform.add_argument("--visibility", choices=VISIBILITIES, default="after_published",
                                  help="when learners see their score and the tests (default: %(default)s)")
            platform.add_argument("--stdout-visibility", choices=VISIBILITIES, default="hidden",
                                  help="when learners see the grader's log (default: %(default)s: instructors only)")
        if name == "prairielearn":
            from grader.platforms.prairielearn import IMAGE

            platform.add_argument("--image", default=IMAGE,
                                  help="the grading image's name on Docker Hub, built from grader-image/ (default: %(default)s)")
    package.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from grader.platforms import github_classroom, gradescope, prairielearn
    from grader.platforms.package import PackageError

    try:
        if args.platform == "gradescope":
            gradescope.package(args.visibility, args.stdout_visibility, args.seed).write_zip(args.out)
        elif args.platform == "github-classroom":
            github_classroom.package(args.seed).write_tree(args.out)
        else:
            prairielearn.package(args.seed, args.image).write_tree(args.out)
    except (PackageError, OSError) as error:
        print(f"package {args.platform}: nothing written: {error}", file=sys.stderr)
        return Exit.REFUSED
    print(f"wrote {args.out}: {PLATFORMS[args.platform]}; README.md, \"Grading on a platform\", says what to do next",
          file=sys.stderr)
    return Exit.OK
