"""The batch's progress bar on stderr: done/total, failures so far and an ETA."""
from __future__ import annotations

import sys
import time

from grader.batch.gradebook import Row
from grader.core.text import printable

WIDTH = 30


class Progress:
    def __init__(self, total: int, stream=None):
        self.total = total
        self.done = 0
        self.failures = 0
        self.started = time.monotonic()
        self.stream = stream or sys.stderr
        self._draw("")

    def update(self, row: Row) -> None:
        self.done += 1
        self.failures += row.status != "graded"
        self._draw(f"{printable(row.learner)}: {row.status} {row.score}/{row.max_score}")

    def _eta(self) -> str:
        if not self.done:
            return "--:--"
        left = (time.monotonic() - self.started) / self.done * (self.total - self.done)
        return f"{int(left // 60):02d}:{int(left % 60):02d}"

    def _draw(self, last: str) -> None:
        filled = WIDTH * self.done // max(self.total, 1)
        bar = "#" * filled + "." * (WIDTH - filled)
        line = f"[{bar}] {self.done}/{self.total} failures {self.failures} ETA {self._eta()}  {last[:40]}"
        # A terminal redraws in place; a log gets one line per learner.
        end = "\r" if self.stream.isatty() else "\n"
        self.stream.write(line.ljust(110) + end if end == "\r" else line + end)
        self.stream.flush()

    def close(self) -> None:
        if self.stream.isatty():
            self.stream.write("\n")
        elapsed = time.monotonic() - self.started
        self.stream.write(f"{self.done} learner(s) in {elapsed:.0f} s: {self.done - self.failures} graded, "
                          f"{self.failures} not graded (error or timeout)\n")
        self.stream.flush()
