"""`python -m grader watch`: grade at every save, and keep the whole board on screen.

A foreground command, never a daemon. It keeps a warm grading host (grader/host/), and a
second one from the first check that runs over SPARE_AFTER_SECONDS until it stops, so a
grading costs a fork, not a new Python importing MLflow. It polls the
folder's files (a few stat calls every POLL_SECONDS: no dependency, and it works on every
file system); at each change it

1. compiles every module: a syntax error shows at once, once, before anything is graded;
2. grades again only the functions whose fingerprint changed (grader/core/source.py: their
   own code, the module's shared code, the functions they call), with ``pytest grader``'s
   own checks, messages, seed and isolation, in a scoring process the host forks. A check
   that runs long (a call that hangs, until its timeout) keeps its host; the next save is
   checked on a second one, and a save of the code being checked stops that check;
3. redraws the board: every function's status and points, how many are done, the total and
   the next thing to do, with the messages of that one function.

Everything runs under one seed, drawn at the start (or ``--seed``): the board is what
``pytest grader --seed N`` says of the same code. ``q`` or Ctrl-C stops it, and the host
with every process it started.
"""
from __future__ import annotations

import argparse
import contextlib
import itertools
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
from dataclasses import dataclass, field
from pathlib import Path

from grader.core import catalogue, summary
from grader.ground import files
from grader import KIT_ROOT
from grader.core.board import CHECKING, UNCHECKED, Board, Entry
from grader.core.options import grading_args, new_seed, target_words
from grader.core.places import Places
from grader.core.results import Results, read_grading
from grader.core.source import fingerprints, is_untouched_stub, read_module
from grader.core.store import scratch_parent
from grader.host.client import Host
from grader.ground.exits import Exit

POLL_SECONDS = 0.05
MAX_HOSTS = 2  # one may hold a call that hangs while the other checks the next save
SPARE_AFTER_SECONDS = 2.0  # a check running this long may be a hang: warm the second host (kept from then on)
CLEAR = "\x1b[H\x1b[2J\x1b[3J"
GRADING_TIMEOUT = 900.0  # seconds for one grading, as a notebook's check allows


def watch(folder: Path, args: argparse.Namespace) -> int:
    # Absolute: the host grades from the kit's folder, not from where the learner typed it.
    session = Watch(folder.absolute(), args.seed if args.seed is not None else new_seed(), args.isolation, args.call_timeout,
                    target_option=target_words(args.target))
    with stop_on_signals(), _keys() as keys:
        try:
            session.run(keys)
        except KeyboardInterrupt:
            pass
        finally:
            session.close()
    print(f"Stopped watching. `python -m grader progress{session.target_option}` shows the board again.")
    return Exit.OK


@dataclass(eq=False)
class Grading:
    """One grading in flight, in a thread of its own, on a host of its own."""

    wanted: list[catalogue.Exercise]
    host: Host
    prints: dict[str, str | None]  # the fingerprints of the code it checks, as it started
    started: float = field(default_factory=time.monotonic)
    results: Results | None = None
    said: str = ""  # what the status line says once it is done
    stale: bool = False  # code it checks changed meanwhile: stopped, its verdicts dropped
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def keys(self) -> set[str]:
        return {e.key for e in self.wanted}

    def names(self) -> str:
        return ", ".join(e.function for e in self.wanted)


class Watch:
    def __init__(self, folder: Path, seed: int, isolation: str, call_timeout: float, target_option: str = ""):
        self.folder, self.seed, self.isolation, self.call_timeout = folder, seed, isolation, call_timeout
        self.places = Places(folder)
        self.target_option = target_option  # how the learner named the folder, for commands they may paste
        self.root = Path(tempfile.mkdtemp(prefix="mlflow-kit-watch-", dir=scratch_parent()))
        self.hosts: list[Host] = []
        self._add_host()
        self.board = Board()
        self.tried: dict[str, str | None] = {}  # module.function -> the fingerprint last sent to grading
        self.said = ""  # the last grading's line; a save clears it (it spoke of other code)
        self.files: dict[str, tuple] = {}
        self.running: list[Grading] = []
        self.finished = threading.Event()  # a grading ended: take its verdicts
        self.resized = threading.Event()  # the terminal changed size: draw again
        signal.signal(signal.SIGWINCH, lambda signum, frame: self.resized.set())
        self.rounds = itertools.count(1)
        self.drawn = 0.0
        self.closing = False

    # -- the loop
    def run(self, keys) -> None:
        while True:
            if self._changed():
                self.said = ""
                self.draw()  # a syntax error shows now, before any grading
                self._schedule()
            if self.finished.is_set():
                self.finished.clear()
                self._take_results()
                self._schedule()  # saves made while it graded, or waiting for a host
            if keys.pressed("q"):
                return
            self._spare_host_if_slow()
            now = time.monotonic()
            if self.resized.is_set() or (self.running and now - self.drawn >= 1):  # the seconds a check has taken
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
        """The board for the code as it is now, with the functions being checked shown so."""
        seen = self.board.against(self.folder)
        for grading in [g for g in self.running if not g.stale]:
            for key in grading.keys:
                if seen.entries[key].status == UNCHECKED:
                    seen.entries[key] = Entry(CHECKING, 0, seen.entries[key].fingerprint)
        return seen

    def to_grade(self, now: dict[str, str]) -> list[catalogue.Exercise]:
        """Functions whose code (``now``: its fingerprints) changed since their verdict and is
        not being checked now, leaving out what needs no grading to be known: stubs (not
        attempted), modules that do not compile, and modules whose import failed and runs the
        same code still."""
        wanted, broken = [], self.view().broken
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
        return wanted

    def _schedule(self) -> None:
        """Stop the gradings whose code changed since they started, and grade what changed
        on a free host: a call that hangs holds its own host, never the others' verdicts."""
        now = fingerprints(self.folder)
        for grading in self.running:
            if not grading.stale and any(now.get(key) != held for key, held in grading.prints.items()):
                grading.stale = True
                for key in grading.keys:  # its verdicts will not come: grade them again
                    self.tried.pop(key, None)
                grading.host.stop()  # ends its calls now; it warms up again for the next
        wanted, host = self.to_grade(now), self._free_host()
        if wanted and host is not None:
            for exercise in wanted:
                self.tried[exercise.key] = now.get(exercise.key)  # a failing grading is not retried until the code changes
            grading = Grading(wanted, host, {e.key: now.get(e.key) for e in wanted})
            self.running.append(grading)
            threading.Thread(target=self._grade, args=(grading,), daemon=True).start()
        self.draw()

    def _free_host(self) -> Host | None:
        busy = {id(g.host) for g in self.running}
        free = [host for host in self.hosts if id(host) not in busy]
        if not free and len(self.hosts) < MAX_HOSTS:
            return self._add_host()
        return free[0] if free else None

    def _spare_host_if_slow(self) -> None:
        """A check that runs long may be a hang: warm a second host now, so the next save
        does not wait for it to start."""
        if len(self.hosts) < MAX_HOSTS and any(time.monotonic() - g.started > SPARE_AFTER_SECONDS
                                               for g in self.running):
            self._add_host()

    def _add_host(self) -> Host:
        """One more warm host (it starts warming up now)."""
        self.hosts.append(Host(self.root / f"host-{len(self.hosts)}", self.isolation, self.call_timeout))
        return self.hosts[-1]

    def _grade(self, grading: Grading) -> None:
        round = next(self.rounds)
        results, log = self.root / f"results-{round}.json", self.root / f"grading-{round}.log"
        args = grading_args(self.folder, seed=self.seed, results=results, only=grading.wanted,
                            isolation=self.isolation, call_timeout=self.call_timeout)
        reply = grading.host.grade(args, cwd=KIT_ROOT, log=log, timeout=GRADING_TIMEOUT)
        grading.results, tail = read_grading(results, log, 5)
        if grading.results is not None:
            grading.said = f"checked {grading.names()} in {time.monotonic() - grading.started:.1f} s"
        else:
            why = reply.reason or f"exit {reply.exit}"
            grading.said = "\n".join([f"the grader could not check {grading.names()} ({why}):", *tail])
        for used in (results, log):  # a long session makes many: keep none
            used.unlink(missing_ok=True)
        if not self.closing:
            grading.host.warm()  # stopped under a stale grading: ready again for the next
        grading.done.set()
        self.finished.set()

    def _take_results(self) -> None:
        for grading in [g for g in self.running if g.done.is_set()]:
            self.running.remove(grading)
            if grading.stale:
                continue
            if grading.results is not None:
                self.board.record(grading.results)
            self.said = grading.said

    # -- the screen
    def status(self) -> list[str]:
        """The last verdict's line, and what is being checked now and for how long."""
        now = time.monotonic()
        live = [g for g in self.running if not g.stale]
        checking = f"checking {', '.join(f'{g.names()} ({now - g.started:.0f} s)' for g in live)}…" if live else ""
        if any(now - g.started > SPARE_AFTER_SECONDS for g in live):  # it may be a call that loops
            checking += (f" A call is stopped after {self.call_timeout:g} s; if yours loops, fix it and save: "
                         "the next check starts at once.")
        return [line for line in (self.said, checking) if line]

    def draw(self) -> None:
        size = _screen_size()
        lines = [f"MLflow exercise kit · watching {self.places.folder or self.folder} · seed {self.seed} "
                 f"(`pytest grader{self.target_option} --seed {self.seed}` says the same)",
                 "Save a file: what changed is checked again. q quits.", ""]
        status = self.status()
        lines += summary.render_board(self.view(), self.places, command=None,
                                      rows=size.lines - len(lines) - 1 - len(status))
        lines += ["", *map(self.places.scrub, status)] if status else []
        sys.stdout.write(CLEAR + "\n".join(lines) + "\n")
        sys.stdout.flush()
        self.drawn = time.monotonic()

    def close(self) -> None:
        self.closing = True
        for host in self.hosts:
            host.stop()  # the host, its worker and a grading in progress, with all they started
        for grading in self.running:
            grading.done.wait(timeout=10)
        for host in self.hosts:  # one a grading's thread started again as it ended
            host.stop()
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
