"""Processes as the grader sees them: what /proc says of everything a grading started,
and ending them; and how the kit starts its own Pythons (``isolated_python``).

(The sandbox worker reads /proc and ends its calls on its own: it imports nothing from
the grader.)
"""
from __future__ import annotations

import os
import signal
import sys
import time

def kill(pid: int) -> None:
    """SIGKILL a process; one already gone is fine, and so is one that is no longer ours
    to signal (a call that took the learner's uid: its sandbox ends it)."""
    try:
        os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def kill_group(group: int) -> None:
    """SIGKILL a whole process group, as ``kill`` does one process."""
    try:
        os.killpg(group, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def proc_stat(pid: int | str) -> list[bytes] | None:
    """The fields of /proc/<pid>/stat after the command name (state, ppid, pgrp, ...),
    or None when there is no such process any more."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return handle.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _processes() -> dict[int, list[bytes]]:
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = proc_stat(entry)
            if fields is not None:
                found[int(entry)] = fields
    return found


def descendants(root: int) -> list[int]:
    """Every live process below ``root`` (children of children included)."""
    children: dict[int, list[int]] = {}
    for pid, fields in _processes().items():
        children.setdefault(int(fields[1]), []).append(pid)
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def live_members(group: int) -> list[int]:
    """Processes of a process group that still run (zombies, already dead, left out)."""
    return [pid for pid, fields in _processes().items() if int(fields[2]) == group and fields[0] != b"Z"]


def children(parent: int) -> list[int]:
    """The processes whose parent is ``parent`` (zombies not yet reaped included)."""
    return [pid for pid, fields in _processes().items() if int(fields[1]) == parent]


def isolated_python() -> list[str]:
    """This Python, isolated (``-I``: no user site, no PYTHON* variables), for the kit's own
    processes; ``-B`` too when this one writes no bytecode (PYTHONDONTWRITEBYTECODE, which
    ``-I`` would drop): a grading then leaves no __pycache__ in the kit's folder either."""
    return [sys.executable, "-I", *(["-B"] if sys.dont_write_bytecode else [])]


def kill_all_below(spare: int | None = None) -> None:
    """Kill every descendant of this process but ``spare`` and its own, until none is left
    (a fork may race the sweep)."""
    for _ in range(100):
        kept = {spare, *descendants(spare)} if spare else set()
        below = [pid for pid in descendants(os.getpid()) if pid not in kept]
        if not below:
            break
        for pid in below:
            kill(pid)
        time.sleep(0.02)
        _reap_zombies(spare)
    _reap_zombies(spare)


def _reap_zombies(spare: int | None) -> None:
    """Reap re-parented orphans; never ``spare``, whose end its owner must see."""
    for pid in descendants(os.getpid()):
        if pid != spare:
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
