"""`python -m grader inspect`: grade the open practice in a learner's store or on a class server.

Exit codes: 0 every rubric item holds, 1 some do not (or there is nothing to grade yet),
2 the store cannot be read at all (unreachable, not an MLflow store...).
"""
from __future__ import annotations

import argparse
import csv
import logging
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

from grader.core import summary
from grader.core.results import Grade
from grader.inspect import rubric
from grader.ground.exits import Exit
from grader.inspect.source import OpenedStore, StoreProblem, open_store, without_password



def add_parser(commands) -> None:
    parser = commands.add_parser(
        "inspect", help="check the open practice in an MLflow store or on a tracking server (read-only)",
        description="Grade the lesson's open practice where it lives, without running any code and without "
                    "writing to the store: an SQLite file is read from a copy, a server through read calls only.",
    )
    parser.add_argument("--tracking-uri", default=os.environ.get("MLFLOW_TRACKING_URI"), metavar="URI",
                        help="mlflow.db, sqlite:///path/mlflow.db or http://host:port (default: $MLFLOW_TRACKING_URI)")
    parser.add_argument("--experiment", metavar="NAME", help="the practice experiment (default: the one with most finished runs)")
    parser.add_argument("--model", metavar="NAME", help="the registered model (default: the one registered from that experiment)")
    parser.add_argument("--grade-json", metavar="PATH", help="also write the result in Gradescope's results.json format (one store; a class gets --gradebook)")
    parser.add_argument("--learners-tag", metavar="KEY",
                        help="grade every learner of a class server, told apart by this experiment or run tag")
    parser.add_argument("--gradebook", metavar="PATH", default="gradebook.csv",
                        help="with --learners-tag: where the gradebook CSV goes (default: %(default)s)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if not args.tracking_uri:
        print("inspect: give the store with --tracking-uri (an mlflow.db file or http://host:port)", file=sys.stderr)
        return Exit.REFUSED
    _quiet_mlflow()
    with tempfile.TemporaryDirectory(prefix="mlflow-kit-inspect-") as scratch:
        try:
            store = open_store(args.tracking_uri, Path(scratch))
        except StoreProblem as problem:
            return _unreadable(args, str(problem))
        if args.learners_tag:
            return grade_class(store, args)
        return grade_one(store, args)


def _quiet_mlflow() -> None:
    # MLflow retries an unreachable server for minutes by default; the probe already knows.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    logging.getLogger("alembic").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")


# ---------------------------------------------------------------- one store
def grade_one(store: OpenedStore, args: argparse.Namespace) -> int:
    from grader.inspect import checks  # imports MLflow: only when a store is inspected

    started = time.monotonic()
    print(f"Inspecting {store.shown_as} ({'a read-only copy' if store.kind == 'sqlite' else 'read calls only'})")
    try:
        scope = checks.scope_for(store, args.experiment, args.model)
        findings = checks.inspect_scope(store, scope)
    except checks.ScopeProblem as problem:
        print(f"Nothing to grade: {problem}")
        grade = checks.grade_of(None, str(problem), "failed", time.monotonic() - started)
        _write_json(args.grade_json, grade, {"tracking_uri": store.shown_as})
        return Exit.NOT_DONE
    except Exception as error:  # the store broke mid-way (a server error, a corrupt row)
        return _unreadable(args, f"reading {store.shown_as} failed: {type(error).__name__}: {error}")
    grade = checks.grade_of(findings, seconds=time.monotonic() - started)
    described = checks.describe(findings)
    print(_header(findings))
    print()
    for line in summary.render(grade, heading=lambda module: f"{module.title}", next_line=_next_line):
        print(line)
    _write_json(args.grade_json, grade, {"tracking_uri": store.shown_as, **described})
    return Exit.OK if grade.score == grade.max_score else Exit.NOT_DONE


def _header(findings: checks.Findings) -> str:
    scope = findings.scope
    lines = [f"experiment {scope.experiment.name!r} (id {scope.experiment.experiment_id}, {len(scope.runs)} runs)"
             + (f" · {scope.note}" if scope.note else "")]
    if findings.model is not None:
        lines.append(f"registered model {findings.model.name!r}")
    return "\n".join(lines)


def _next_line(grade: Grade) -> str:
    for result in grade.exercises():
        if result.status != "passed":
            return f"Next: {result.exercise.function.replace('_', ' ')} (see the hint above), then inspect again."
    return "Next: nothing left to fix. Your practice is tracked, saved and registered."


def _unreadable(args: argparse.Namespace, problem: str) -> int:
    from grader.inspect import checks  # imports MLflow: only when a store is inspected

    print(f"Cannot inspect: {problem}", file=sys.stderr)
    _write_json(args.grade_json, checks.grade_of(None, problem, "error"), {"tracking_uri": without_password(args.tracking_uri)})
    return Exit.REFUSED


def _write_json(path: str | None, grade: Grade, extra: dict) -> None:
    if path:
        grade.results(extra).write(Path(path))


# ---------------------------------------------------------------- a class server
def gradebook_columns() -> list[str]:
    return ["learner", "status", "score", "max_score", *(f"{rubric.MODULE}.{i.key}" for i in rubric.ITEMS), "seconds"]


def grade_class(store: OpenedStore, args: argparse.Namespace) -> int:
    from grader.inspect import checks  # imports MLflow: only when a store is inspected

    print(f"Inspecting {store.shown_as}: every learner tagged {args.learners_tag}=...")
    try:
        names = checks.learners(store, args.learners_tag)
    except Exception as error:
        return _unreadable(args, f"reading {store.shown_as} failed: {type(error).__name__}: {error}")
    if not names:
        print(f"No experiment or run carries the tag {args.learners_tag!r}: nobody to grade.")
        return Exit.NOT_DONE
    path = Path(args.gradebook)
    with open(path, "w", newline="") as handle:
        book = csv.DictWriter(handle, gradebook_columns())
        book.writeheader()
        for learner in names:
            row = grade_learner(store, args, learner)
            book.writerow(row)
            handle.flush()  # an interrupted class loses nothing already graded
            print(f"  {learner:<24}{row['status']:<8}{row['score']:>3}/{row['max_score']}")
    print(f"Gradebook: {path} ({len(names)} learners)")
    return Exit.OK


def grade_learner(store: OpenedStore, args: argparse.Namespace, learner: str) -> dict:
    from grader.inspect import checks  # imports MLflow: only when a store is inspected

    started = time.monotonic()
    status = "graded"
    try:
        scope = checks.scope_for(store, args.experiment, args.model, args.learners_tag, learner)
        grade = checks.grade_of(checks.inspect_scope(store, scope))
    except checks.ScopeProblem as problem:
        grade = checks.grade_of(None, str(problem), "failed")
    except Exception as error:  # one learner's odd data must not stop the class
        status, grade = "error", checks.grade_of(None, f"{type(error).__name__}: {error}", "error")
    return {
        "learner": learner, "status": status, "score": grade.score, "max_score": grade.max_score,
        **{c.exercise.key: c.earned for c in grade.checks},
        "seconds": f"{time.monotonic() - started:.1f}",
    }
