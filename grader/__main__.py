"""`python -m grader COMMAND`: the kit's commands besides `pytest grader`.

Each command lives in its own module and registers here with a parser and a handler.
"""
from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


def _generate(args: argparse.Namespace) -> int:
    from grader.authoring import notebooks, stubgen

    written = stubgen.generate() + notebooks.generate()
    for path in written:
        print(f"wrote {path.relative_to(stubgen.REPO)}")
    print("exercises/, notebooks/ and course/ are up to date with solutions/" if not written else f"{len(written)} file(s) regenerated")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m grader", description="The MLflow exercise kit's commands.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    generate = commands.add_parser("generate", help="regenerate exercises/ (the stubs), notebooks/ and course/ (nbgrader) from solutions/")
    generate.set_defaults(handler=_generate)
    from grader.inspect import cli as inspect_cli  # imports no MLflow until it runs

    inspect_cli.add_parser(commands)
    from grader.batch import cli as batch_cli  # imports no MLflow until it runs

    batch_cli.add_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
