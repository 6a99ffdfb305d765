"""`python -m grader COMMAND`: the kit's commands besides `pytest grader`.

Each command lives in its own module and registers here with a parser and a handler. The
help lists the learner's commands first and the course author's and instructor's apart.
"""
from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


def _command_groups():
    """(title, [module registering its command(s)]): imported late, none imports MLflow."""
    from grader.authoring import cli as authoring_cli
    from grader.batch import cli as batch_cli
    from grader.inspect import cli as inspect_cli
    from grader.learner import cli as learner_cli
    from grader.platforms import cli as platforms_cli

    return [
        ("Your exercises (grade them with `pytest grader`)", [learner_cli, inspect_cli]),
        ("For course authors and instructors", [batch_cli, platforms_cli, authoring_cli]),
    ]


class _Listing(argparse._SubParsersAction):
    """Subcommands that remember their one-line help, for the grouped listing."""

    def add_parser(self, name, **kwargs):
        self.helps = getattr(self, "helps", {})
        self.helps[name] = kwargs.get("help", "")
        return super().add_parser(name, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m grader", usage="python -m grader COMMAND [options]",
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.register("action", "listing", _Listing)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", action="listing",
                                     help=argparse.SUPPRESS, prog="python -m grader")  # each: "python -m grader watch"
    sections = []
    for title, modules in _command_groups():
        before = set(getattr(commands, "helps", {}))
        for module in modules:
            module.add_parser(commands)
        added = [(name, text) for name, text in commands.helps.items() if name not in before]
        sections.append(f"{title}:\n" + "\n".join(f"  {name:<10}  {text}" for name, text in added))
    parser.description = "The MLflow exercise kit's commands.\n\n" + "\n\n".join(sections) + \
        "\n\n`python -m grader COMMAND --help` says more about one."
    return parser


def _needs_the_kits_packages() -> None:
    """Commands import MLflow late, or only in the processes they start (which would fail
    one by one): look first."""
    import importlib.util

    for name in ("mlflow", "sklearn", "pandas", "numpy", "cloudpickle"):
        if importlib.util.find_spec(name) is None:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        _needs_the_kits_packages()
        return args.handler(args)
    except ModuleNotFoundError as error:
        from grader import install_advice

        print(install_advice(error), file=sys.stderr)  # one plain line instead of a traceback
        return 2  # Exit.REFUSED: nothing ran


if __name__ == "__main__":
    sys.exit(main())
