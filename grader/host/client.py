"""The caller's side of a warm grading host (``server.py``).

``Host(root, isolation, call_timeout).grade(args, cwd=..., log=..., timeout=...)`` runs
``pytest <args>`` in a scoring process the host forks, and returns the host's figures:
{"exit", "timed_out", "seconds", "peak_rss_kb", "peak_pss_kb"}. A host that dies or stops
answering costs the grading it was doing (the figures say exit None and host_lost) and is
replaced.
"""
from __future__ import annotations

import json
import os
import queue
import select
import signal
import subprocess
import sys
from pathlib import Path

from grader.core.processes import descendants

SERVER = Path(__file__).resolve().with_name("server.py")
# How long past a grading's own limit a host may take to answer before it is replaced.
GRACE_SECONDS = 120
FAILED = {"exit": None, "timed_out": False, "seconds": 0.0, "peak_rss_kb": 0, "peak_pss_kb": 0, "host_lost": True}


class Host:
    def __init__(self, root: Path, isolation: str, call_timeout: float, env: dict[str, str] | None = None):
        self.root, self.isolation, self.call_timeout, self.env = root, isolation, call_timeout, env
        root.mkdir(parents=True, exist_ok=True)
        self.process: subprocess.Popen | None = None
        self._start()

    def _start(self) -> None:
        with open(self.root.parent / f"{self.root.name}.log", "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-I", str(SERVER), str(self.root), self.isolation, str(self.call_timeout)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, cwd=self.root,
                env=self.env, start_new_session=True, bufsize=0)

    def grade(self, args: list[str], *, cwd: Path, log: Path, timeout: float) -> dict:
        if self.process is None or self.process.poll() is not None:
            self._start()
        request = {"args": args, "cwd": str(cwd), "log": str(log), "timeout": timeout}
        try:
            self.process.stdin.write((json.dumps(request) + "\n").encode())
            return json.loads(self._read_line(timeout + GRACE_SECONDS))
        except (OSError, ValueError, TimeoutError, EOFError):
            self.stop()  # the next grading gets a fresh host
            return dict(FAILED)

    def _read_line(self, timeout: float) -> bytes:
        out, line = self.process.stdout, b""
        while not line.endswith(b"\n"):
            if not select.select([out], [], [], timeout)[0]:
                raise TimeoutError
            chunk = out.read(1)
            if not chunk:
                raise EOFError("the grading host stopped")
            line += chunk
        return line

    def stop(self) -> None:
        """End the host and everything below it (its worker, a grading in progress)."""
        if self.process is None or self.process.poll() is not None:
            return
        for pid in [self.process.pid, *descendants(self.process.pid)]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
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
    """``size`` hosts side by side; each grading takes whichever is free. They start in
    the calling thread, and each dies with the thread that started it: start a pool in a
    thread that outlives its gradings."""

    def __init__(self, root: Path, size: int, isolation: str, call_timeout: float, env: dict[str, str] | None = None):
        self.hosts = [Host(root / f"slot-{n}", isolation, call_timeout, env) for n in range(size)]
        self._free: queue.Queue = queue.Queue()
        for host in self.hosts:
            self._free.put(host)

    def grade(self, args: list[str], *, cwd: Path, log: Path, timeout: float) -> dict:
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
