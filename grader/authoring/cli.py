"""`python -m grader generate`: the course author's command that rewrites exercises/,
notebooks/ and course/ from solutions/. It never overwrites a learner's work unasked."""
from __future__ import annotations

import argparse
import sys

from grader.sandbox.protocol import Exit


def add_parser(commands) -> None:
    generate = commands.add_parser(
        "generate", help="regenerate exercises/ (the stubs), notebooks/ and course/ (nbgrader) from solutions/",
        description="Rewrite exercises/, notebooks/ and course/ from solutions/, and the README's points table "
                    "from grader/catalogue.toml (for course authors). A file holding code someone wrote into its "
                    "functions is left alone unless --force is given.")
    generate.add_argument("--force", action="store_true",
                          help="overwrite even files whose functions hold someone's code (that code is lost)")
    generate.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from grader import KIT_ROOT
    from grader.authoring import notebooks, readme, stubgen

    at_risk = {**stubgen.unsafe_overwrites(), **notebooks.unsafe_overwrites()}
    if at_risk and not args.force:
        print("generate: nothing written. These files hold code that generating would replace with stubs:",
              file=sys.stderr)
        for path, names in at_risk.items():
            print(f"  {path.relative_to(KIT_ROOT)}: {', '.join(names)}", file=sys.stderr)
        print("If that code may go (you are a course author), rerun with --force; to put back one function's "
              "stub, use `python -m grader reset FUNCTION`.", file=sys.stderr)
        return Exit.NOT_DONE
    written = stubgen.generate() + notebooks.generate() + readme.generate()
    for path in written:
        print(f"wrote {path.relative_to(KIT_ROOT)}")
    print("exercises/, notebooks/, course/ and the README's points table are up to date" if not written
          else f"{len(written)} file(s) regenerated")
    return Exit.OK
