"""`python -m grader watch`: grade at every save, and keep the whole board on screen.

A foreground command, never a daemon. It keeps one warm grading host (grader/host/) while
it runs, so a grading costs a fork, not a new Python importing MLflow. It polls the
folder's files (a few stat calls every POLL_SECONDS: no dependency, and it works on every
file system); at each change it

1. compiles every module: a syntax error shows at once, once, before anything is graded;
2. grades again only the functions whose fingerprint changed (grader/core/source.py: their
   own code, the module's shared code, the functions they call), with ``pytest grader``'s
   own checks, messages, seed and isolation, in a scoring process the host forks;
3. redraws the board: every function's status and points, how many are done, the total and
   the next thing to do, with the messages of that one function.

Everything runs under one seed, drawn at the start (or ``--seed``): the board is what
``pytest grader --seed N`` says of the same code. ``q`` or Ctrl-C stops it, and the host
with every process it started.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import select
import shutil
import signal
import sys
import tempfile
import termios
import threading
import time
import tty
from pathlib import Path

from grader.core import catalogue, files, summary
from grader import KIT_ROOT
from grader.core.board import Board
from grader.core.options import grading_args, new_seed
from grader.core.places import Places
from grader.core.source import fingerprints, is_untouched_stub, read_module
from grader.core.store import scratch_parent
from grader.host.client import Host
from grader.sandbox.protocol import Exit

POLL_SECONDS = 0.05
CLEAR = "\x1b[H\x1b[2J\x1b[3J"
GRADING_TIMEOUT = 900.0  # seconds for one grading, as a notebook's check allows


def watch(folder: Path, args: argparse.Namespace) -> int:
    session = Watch(folder, args.seed if args.seed is not None else new_seed(), args.isolation, args.call_timeout,
                    target_option=f" --target {args.target}" if args.target else "")
    with stop_on_signals(), _keys() as keys:
        try:
            session.run(keys)
        except KeyboardInterrupt:
            pass
        finally:
            session.close()
    print(f"Stopped watching. `python -m grader progress{session.target_option}` shows the board again.")
    return Exit.OK


class Watch:
    def __init__(self, folder: Path, seed: int, isolation: str, call_timeout: float, target_option: str = ""):
        self.folder, self.seed, self.isolation, self.call_timeout = folder, seed, isolation, call_timeout
        self.places = Places(folder)
        self.target_option = target_option  # how the learner named the folder, for commands they may paste
        self.root = Path(tempfile.mkdtemp(prefix="mlflow-kit-watch-", dir=scratch_parent()))
        self.host = Host(self.root / "host", isolation, call_timeout)  # starts warming up now
        self.board = Board()
        self.tried: dict[str, str | None] = {}  # module.function -> the fingerprint last sent to grading
        self.status = ""
        self.files: dict[str, tuple] = {}
        self.grading: threading.Thread | None = None
        self.graded = threading.Event()
        self.resized = threading.Event()  # the terminal changed size: draw again
        signal.signal(signal.SIGWINCH, lambda signum, frame: self.resized.set())
        self.results: dict | None = None
        self.rounds = 0

    # -- the loop
    def run(self, keys) -> None:
        while True:
            if self._changed():
                self.draw()  # a syntax error shows now, before any grading
                self._grade_if_idle()
            if self.graded.is_set():
                self.graded.clear()
                self._take_results()
                self._grade_if_idle()  # saves made while it graded
            if keys.pressed("q"):
                return
            if self.resized.is_set():
                self.resized.clear()
                self.draw()

    def _changed(self) -> bool:
        now = {}
        for path in sorted(self.folder.glob("*.py")):
            try:
                info = path.stat()
            except OSError:
                continue
            now[path.name] = (info.st_mtime_ns, info.st_size)
        changed = now != self.files
        self.files = now
        return changed

    def view(self) -> Board:
        return self.board.against(self.folder)

    def to_grade(self) -> list[catalogue.Exercise]:
        """Functions whose code changed since their verdict, leaving out what needs no
        grading to be known: stubs (not attempted), modules that do not compile, and
        modules whose import failed and runs the same code still."""
        now, wanted, broken = fingerprints(self.folder), [], self.view().broken
        for module in catalogue.load().modules:
            code = read_module(self.folder, module.name)
            if code is None or module.name in broken:
                continue
            for exercise in module.exercises:
                known = self.board.entries.get(exercise.key)
                current = now.get(exercise.key)
                changed = (known is None or known.fingerprint != current) and self.tried.get(exercise.key) != current
                if changed and not is_untouched_stub(code, exercise.function):
                    wanted.append(exercise)
                    self.tried[exercise.key] = current  # a grading that fails is not retried until the code changes
        return wanted

    def _grade_if_idle(self) -> None:
        if self.grading is not None and self.grading.is_alive():
            return
        wanted = self.to_grade()
        if not wanted:
            self.draw()
            return
        self.status = f"checking {', '.join(e.function for e in wanted)}…"
        self.draw()
        self.grading = threading.Thread(target=self._grade, args=(wanted,), daemon=True)
        self.grading.start()

    def _grade(self, wanted: list[catalogue.Exercise]) -> None:
        self.rounds += 1
        results, log = self.root / f"results-{self.rounds}.json", self.root / f"grading-{self.rounds}.log"
        args = grading_args(self.folder, seed=self.seed, results=results, only=wanted, isolation=self.isolation,
                           call_timeout=self.call_timeout)
        started = time.monotonic()
        reply = self.host.grade(args, cwd=KIT_ROOT, log=log, timeout=GRADING_TIMEOUT)
        try:
            self.results = json.loads(results.read_text())
            self.status = f"checked {', '.join(e.function for e in wanted)} in {time.monotonic() - started:.1f} s"
        except (OSError, ValueError):
            tail = log.read_text(errors="replace").strip().splitlines()[-5:] if log.exists() else []
            self.results = None
            why = reply.reason or f"exit {reply.exit}"
            self.status = "\n".join([f"the grader could not check ({why}):", *tail])
        for used in (results, log):  # a long session makes many: keep none
            used.unlink(missing_ok=True)
        self.graded.set()

    def _take_results(self) -> None:
        if self.results is not None:
            self.board.record(self.results)
        self.draw()

    # -- the screen
    def draw(self) -> None:
        size = _screen_size()
        lines = [f"MLflow exercise kit · watching {self.places.folder or self.folder} · seed {self.seed} "
                 f"(`pytest grader{self.target_option} --seed {self.seed}` says the same)",
                 "Save a file: what changed is checked again. q quits.", ""]
        lines += summary.render_board(self.view(), self.places, command=None, rows=size.lines - len(lines) - 2)
        lines += ["", self.places.scrub(self.status)] if self.status else []
        sys.stdout.write(CLEAR + "\n".join(lines) + "\n")
        sys.stdout.flush()

    def close(self) -> None:
        self.host.stop()  # the host, its worker and a grading in progress, with all they started
        if self.grading is not None:
            self.grading.join(timeout=10)
        files.remove_tree(self.root)


# ------------------------------------------------------------------ the terminal
def _screen_size() -> os.terminal_size:
    """The terminal's own size (LINES and COLUMNS in the environment may be stale)."""
    try:
        return os.get_terminal_size(sys.stdout.fileno())
    except (OSError, ValueError):
        return shutil.get_terminal_size((100, 40))


class _Keys:
    """Single key presses from a terminal (no Enter needed); nothing from anything else."""

    def __init__(self, fd: int | None):
        self.fd = fd

    def pressed(self, key: str) -> bool:
        """Wait up to POLL_SECONDS for a key; whether it was ``key``."""
        if self.fd is None:
            time.sleep(POLL_SECONDS)
            return False
        ready, _, _ = select.select([self.fd], [], [], POLL_SECONDS)
        if not ready:
            return False
        typed = os.read(self.fd, 32).decode(errors="replace")
        if not typed:  # the terminal went away
            self.fd = None
        return key in typed.lower()


@contextlib.contextmanager
def _keys():
    fd = sys.stdin.fileno() if sys.stdin.isatty() else None
    saved = termios.tcgetattr(fd) if fd is not None else None
    if fd is not None:
        tty.setcbreak(fd)  # keys arrive one by one; Ctrl-C still interrupts
    try:
        yield _Keys(fd)
    finally:
        if saved is not None:
            termios.tcsetattr(fd, termios.TCSADRAIN, saved)


@contextlib.contextmanager
def stop_on_signals():
    """A closed terminal (SIGHUP) or a kill (SIGTERM) stops a foreground command (watch,
    ui) as Ctrl-C does: what it started goes too."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
