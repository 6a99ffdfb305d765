"""The course author's commands: `python -m grader generate` rewrites exercises/, notebooks/,
course/, CURRICULUM.md and the README's table from solutions/ and the catalogue (it never
overwrites a learner's work unasked); `python -m grader check` says, grading nothing, whether
all of them agree."""
from __future__ import annotations

import argparse
import sys

from grader.ground.exits import Exit


def add_parser(commands) -> None:
    generate = commands.add_parser(
        "generate", help="regenerate exercises/ (the stubs), notebooks/, course/ (nbgrader) and CURRICULUM.md from solutions/",
        description="Rewrite exercises/, notebooks/ and course/ from solutions/, and CURRICULUM.md and the README's "
                    "points table from grader/catalogue.toml and solutions/ (for course authors). A file holding code "
                    "someone wrote into its functions is left alone unless --force is given.")
    generate.add_argument("--force", action="store_true",
                          help="overwrite even files whose functions hold someone's code (that code is lost)")
    generate.set_defaults(handler=run)
    check = commands.add_parser(
        "check", help="in seconds, grading nothing: do the catalogue, solutions, generated files and checks agree?",
        description="Prove, in seconds and without grading, that grader/catalogue.toml, solutions/, exercises/, "
                    "notebooks/, course/, CURRICULUM.md, the README's points table and the checks of grader/test_*.py "
                    "agree (for course authors). Prints one line per problem, naming the file and the fix, and exits "
                    "1; or `all agree` and exits 0.")
    check.set_defaults(handler=run_check)


def run(args: argparse.Namespace) -> int:
    from grader import KIT_ROOT
    from grader.authoring import generated, notebooks, stubgen

    try:
        files = generated.expected()
    except ValueError as error:  # solution markers out of place, a catalogued function missing: a line, no traceback
        print(f"generate: nothing written: {error} (`python -m grader check` lists every problem)", file=sys.stderr)
        return Exit.NOT_DONE
    at_risk = {**stubgen.unsafe_overwrites(), **notebooks.unsafe_overwrites()}
    if at_risk and not args.force:
        print("generate: nothing written. These files hold code that generating would replace with stubs:",
              file=sys.stderr)
        for path, names in at_risk.items():
            print(f"  {path.relative_to(KIT_ROOT)}: {', '.join(names)}", file=sys.stderr)
        print("If that code may go (you are a course author), rerun with --force; to put back one function's "
              "stub, use `python -m grader reset FUNCTION`.", file=sys.stderr)
        return Exit.NOT_DONE
    written = generated.write_changed(files)
    for path in written:
        print(f"wrote {path.relative_to(KIT_ROOT)}")
    print("exercises/, notebooks/, course/, CURRICULUM.md and the README's points table are up to date" if not written
          else f"{len(written)} file(s) regenerated")
    return Exit.OK


def run_check(args: argparse.Namespace) -> int:
    from grader.authoring.check import problems

    found = problems()
    for line in found:
        print(line)
    if not found:
        print("all agree: the catalogue, solutions, stubs, notebooks, course, CURRICULUM.md, README table and checks")
    return Exit.NOT_DONE if found else Exit.OK
