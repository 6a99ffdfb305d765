"""The caller's side of a warm grading host (``main.py``), and what a host replies.

``Host(root, isolation, call_timeout).grade(args, cwd=..., log=..., timeout=...)`` runs
``pytest <args>`` in a scoring process the host forks, and returns its ``HostReply``. A host
that dies or stops answering costs the grading it was doing (the reply says why, and
``host_lost``) and is replaced.
"""
from __future__ import annotations

import queue
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

from grader.ground import files
from grader.ground.processes import descendants, isolated_python, kill
from grader.ground.exits import GRADED
from grader.sandbox.protocol import LineReader, frame

HOST = Path(__file__).resolve().with_name("main.py")
# How long past a grading's own limit a host may take to answer before it is replaced.
GRACE_SECONDS = 120


@dataclass(frozen=True)
class HostRequest:
    """Grade one learner: ``pytest <args>`` in ``cwd``, its output to ``log``, within ``timeout`` s
    (one JSON line on the host's stdin)."""

    args: list[str]
    cwd: str
    log: str
    timeout: float

    def to_line(self) -> bytes:
        return frame(asdict(self))

    @classmethod
    def from_message(cls, message: dict) -> "HostRequest":
        return cls([str(a) for a in message["args"]], str(message["cwd"]), str(message["log"]), float(message["timeout"]))


@dataclass(frozen=True)
class HostReply:
    """What a host says of one grading (one JSON line on its stdout)."""

    exit: int | None  # the scoring process's exit code; None when it did not end by itself
    timed_out: bool = False  # it ran past the grading's limit and was killed
    seconds: float = 0.0
    peak_rss_kb: int = 0  # of the scoring process
    peak_pss_kb: int = 0  # of the whole grading: scoring process, learner worker and calls
    sandbox: dict | None = None  # how the learner was fenced in (grader/sandbox/isolation.py's facts)
    reason: str | None = None  # why there is no grading, when there is none
    host_lost: bool = False  # the host itself died or stopped answering (the next grading gets a new one)

    @property
    def graded(self) -> bool:
        """Whether the scoring process ran every check it was given (passed or not)."""
        return self.exit in GRADED and not self.timed_out

    def to_line(self) -> bytes:
        return frame(asdict(self))

    @classmethod
    def from_message(cls, message: dict) -> "HostReply":
        return cls(**message)

    @classmethod
    def lost(cls, reason: str) -> "HostReply":
        return cls(None, reason=reason, host_lost=True)


class Host:
    def __init__(self, root: Path, isolation: str, call_timeout: float, env: dict[str, str] | None = None):
        self.root, self.isolation, self.call_timeout, self.env = root, isolation, call_timeout, env
        root.mkdir(parents=True, exist_ok=True)
        self.process: subprocess.Popen | None = None
        self._replies: LineReader | None = None
        self._start()

    def _start(self) -> None:
        if self.process is not None:  # a host died under a learner: nothing it left may meet the next
            for entry in self.root.iterdir():
                files.remove_tree(entry)
        with open(self.root.parent / f"{self.root.name}.log", "ab") as log:
            self.process = subprocess.Popen(
                [*isolated_python(), str(HOST), str(self.root), self.isolation, str(self.call_timeout)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, cwd=self.root,
                env=self.env, start_new_session=True, bufsize=0)
        self._replies = LineReader(self.process.stdout.fileno())

    def warm(self) -> None:
        """Start the host (it warms up at once) if it is not running."""
        if self.process is None or self.process.poll() is not None:
            self._start()

    def grade(self, args: list[str], *, cwd: Path, log: Path, timeout: float) -> HostReply:
        self.warm()
        request = HostRequest(args, str(cwd), str(log), timeout)
        try:
            self.process.stdin.write(request.to_line())
            return HostReply.from_message(self._reply(timeout + GRACE_SECONDS))
        except TimeoutError:
            reason = f"the grading host did not answer within {timeout + GRACE_SECONDS:g} s"
        except EOFError:
            reason = "the grading host stopped (killed, or out of memory)"
        except (OSError, ValueError, TypeError) as error:
            reason = f"the grading host could not be asked or understood ({error})"
        self.stop()  # the next grading gets a fresh host
        return HostReply.lost(reason)

    def _reply(self, timeout: float) -> dict:
        message = self._replies.next(timeout)
        if message is None:
            raise TimeoutError if self._replies.open else EOFError("the grading host stopped")
        return message

    def stop(self) -> None:
        """End the host and everything below it (its worker, a grading in progress)."""
        if self.process is None or self.process.poll() is not None:
            return
        for pid in [self.process.pid, *descendants(self.process.pid)]:
            kill(pid)
        self.process.wait()

    def close(self) -> None:
        """Let the host finish and clean up; end it if it does not."""
        if self.process is None:
            return
        try:
            self.process.stdin.close()
            self.process.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            pass
        self.stop()


class HostPool:
    """``slots`` hosts side by side; each grading takes whichever is free. They start in
    the calling thread, and each dies with the thread that started it: start a pool in a
    thread that outlives its gradings."""

    def __init__(self, root: Path, slots: int, isolation: str, call_timeout: float, env: dict[str, str] | None = None):
        self.hosts = [Host(root / f"slot-{n}", isolation, call_timeout, env) for n in range(slots)]
        self._free: queue.Queue = queue.Queue()
        for host in self.hosts:
            self._free.put(host)

    def grade(self, args: list[str], *, cwd: Path, log: Path, timeout: float) -> HostReply:
        host = self._free.get()
        try:
            return host.grade(args, cwd=cwd, log=log, timeout=timeout)
        finally:
            self._free.put(host)

    def stop(self) -> None:
        """End every host now, with the gradings in progress."""
        for host in self.hosts:
            host.stop()

    def close(self) -> None:
        for host in self.hosts:
            host.close()

    def __enter__(self) -> "HostPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
