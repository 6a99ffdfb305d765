"""The options a learner gives when grading, declared once: ``pytest grader`` and
``python -m grader watch`` (and ``progress``, ``reset``) read the same declarations, so a
folder, a seed or an isolation level means the same thing whichever command grades it."""
from __future__ import annotations

from grader.sandbox.protocol import DEFAULT_CALL_TIMEOUT, ISOLATION_MODES

GRADING = {
    "target": (("--target",), dict(
        default=None, metavar="DIR",
        help="folder to grade: the four modules, or a folder with exercises/ (default: exercises/)")),
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
