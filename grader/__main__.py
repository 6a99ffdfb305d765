"""`python -m grader COMMAND`: the kit's commands besides `pytest grader`.

Each command lives in its own module and registers here with a parser and a handler.
"""
from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


def _generate(args: argparse.Namespace) -> int:
    from grader.authoring import stubgen

    written = stubgen.generate()
    for path in written:
        print(f"wrote {path.relative_to(stubgen.REPO)}")
    print("exercises/ is up to date with solutions/" if not written else f"{len(written)} stub file(s) regenerated")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m grader", description="The MLflow exercise kit's commands.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    generate = commands.add_parser("generate", help="regenerate exercises/ (the stubs) from solutions/")
    generate.set_defaults(handler=_generate)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
