"""A terminal program as a person sees it: run in a tmux pane of a private tmux server,
keys sent in, the screen read back (send-keys, capture-pane)."""
from __future__ import annotations

import shlex
import subprocess
import time
import uuid
from pathlib import Path

from conftest import REPO
from grader.ground.processes import descendants, proc_stat


def gone(pids: list[int]) -> list[int]:
    """Those of ``pids`` still running (a zombie has ended; its parent just has not reaped it)."""
    return [pid for pid in pids if (fields := proc_stat(pid)) is not None and fields[0] != b"Z"]


class Terminal:
    """A command in a tmux pane of a private tmux server: keys in, the screen out."""

    def __init__(self, command: list[str], env: dict, width: int = 140, height: int = 70, cwd: Path = REPO):
        self.socket = f"kit-test-{uuid.uuid4().hex[:8]}"
        line = " ".join(["env", *(f"{k}={shlex.quote(v)}" for k, v in env.items()), *map(shlex.quote, command)])
        self.tmux("new-session", "-d", "-s", "kit", "-x", str(width), "-y", str(height), "-c", str(cwd), line)
        self.tmux("set-option", "-t", "kit", "remain-on-exit", "on")
        self.pid = int(self.tmux("display-message", "-p", "-t", "kit", "#{pane_pid}").strip())

    def tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True, check=True).stdout

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "kit")

    def wait_for(self, *texts: str, timeout: float = 180) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.screen()
            if all(text in screen for text in texts):
                return screen
            time.sleep(0.05)
        raise AssertionError(f"the screen never showed {texts}:\n{self.screen()}")

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", "kit", *keys)

    def processes(self) -> list[int]:
        return [self.pid, *descendants(self.pid)]

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True)


def assert_all_end(terminal: Terminal, pids: list[int]) -> None:
    deadline = time.monotonic() + 10
    while gone(pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not gone(pids), f"still running after quitting: {gone(pids)}\n{terminal.screen()}"
