"""How a grading is asked for, declared once.

- The options a learner gives: ``pytest grader`` and ``python -m grader watch`` (and
  ``progress``, ``reset``) read the same declarations, so a folder, a seed or an isolation
  level means the same thing whichever command grades it.
- ``grading_args``: the argument list of a grading that another part of the kit starts (a
  batch, a notebook's check, watch), in a warm grading host.
- ``new_seed``: a grading's random inputs, when no seed is given.
"""
from __future__ import annotations

import random
from pathlib import Path
from typing import Iterable

from grader import KIT_ROOT
from grader.core import catalogue
from grader.sandbox.protocol import DEFAULT_CALL_TIMEOUT, ISOLATION_MODES

GRADING = {
    "target": (("--target",), dict(
        default=None, metavar="DIR",
        help="your exercise folder: the modules (ex01_tracking.py …), or a folder with exercises/ "
             "(default: exercises/)")),
    "seed": (("--seed",), dict(
        type=int, default=None, metavar="N",
        help="seed for the random inputs; reuse one to reproduce a run")),
    "call_timeout": (("--call-timeout",), dict(
        type=float, default=DEFAULT_CALL_TIMEOUT, metavar="SECONDS",
        help="seconds one learner call may take (default %(default)s)")),
    "isolation": (("--isolation",), dict(
        choices=ISOLATION_MODES, default="none",
        help="how learner code is fenced in: none (your own self-check), limits (rlimits per call) "
             "or bwrap (a bubblewrap sandbox as well); batch grading picks the strongest available")),
}


def add(to, *names: str) -> None:
    """Declare the named options on an argparse parser or a pytest option group (both take
    argparse's arguments; pytest's is ``addoption``)."""
    declare = getattr(to, "addoption", None) or to.add_argument
    for name in names:
        flags, settings = GRADING[name]
        declare(*flags, **settings)


def target_words(target: str | None) -> str:
    """`` --target FOLDER`` as the learner typed it (empty for exercises/), for commands
    the kit prints for them to paste."""
    return f" --target {target}" if target else ""


def grade_command(target: str | None) -> str:
    return "pytest grader" + target_words(target)


def new_seed() -> int:
    """A fresh seed for a grading's random inputs (printed, so it can be replayed)."""
    return random.SystemRandom().randrange(1, 10**6)


def grading_args(target: Path | None, *, seed: int, results: Path, only: Iterable[catalogue.Exercise] | None = None,
                isolation: str | None = None, call_timeout: float | None = None, quiet: bool = True,
                progress: bool = True) -> list[str]:
    """``pytest`` arguments that grade ``target`` (None: exercises/) with ``seed`` into the
    results.json ``results``: every function, or ``only`` these. ``quiet`` leaves out
    pytest's header and progress (the grader's summary stays). ``progress=False``: the
    learner's board is left as it was (a copy the kit made is graded)."""
    checks = [catalogue.node_id(e) for e in only] if only is not None else [str(KIT_ROOT / "grader")]
    return [
        *checks, "-p", "no:cacheprovider", *(["-q"] if quiet else []),
        *(["--target", str(target)] if target is not None else []),
        "--seed", str(seed), "--grade-json", str(results),
        *(["--isolation", isolation] if isolation is not None else []),
        *(["--call-timeout", str(call_timeout)] if call_timeout is not None else []),
        *([] if progress else ["--no-progress"]),
    ]
