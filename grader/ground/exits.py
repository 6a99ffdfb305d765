"""How the kit's processes end, by name: its commands, the scoring process (pytest's own
codes 0 and 1), and the processes the sandbox and the host fork.

The CLIs, the host and the worker all end with these. It imports nothing, so the sandbox
holds it too (the worker loads it by path) and the grader imports it as
``grader.ground.exits``.
"""
from __future__ import annotations

from enum import IntEnum


class Exit(IntEnum):
    OK = 0
    NOT_DONE = 1  # it ran, and not all is done: a check failed, a learner was not graded, nothing was overwritten
    REFUSED = 2  # a command refused what it was given (a folder, a store, a gradebook), and said why
    INTERNAL_ERROR = 70  # the process itself failed (sysexits' EX_SOFTWARE), and printed why

    @staticmethod
    def signalled(signum: int) -> int:
        """The shell's code for a process a signal stopped."""
        return 128 + signum


GRADED = (Exit.OK, Exit.NOT_DONE)  # a scoring process that ran every check it was given
