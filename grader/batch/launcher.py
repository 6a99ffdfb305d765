"""Runs one learner's grading and guarantees that nothing it started outlives it.

``python -I launcher.py STATS_JSON TIMEOUT LOG -- COMMAND...`` makes itself a child
subreaper: every process the grading starts, even one that double-forks or calls setsid to
escape, is re-parented here when its parent dies. When the command ends, or its wall-clock
limit is reached, every remaining descendant is killed. Meanwhile it samples the memory of
all descendants, for the instructor's figures.

It imports nothing from the grader: it only watches processes.
"""
from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
import time

PR_SET_CHILD_SUBREAPER = 36
SAMPLE_SECONDS = 0.5


def become_subreaper() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER) failed")


def _stat(pid: str) -> list[bytes] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return handle.read().rsplit(b")", 1)[1].split()
    except OSError:
        return None


def descendants(root: int) -> list[int]:
    """Every live process below ``root`` (children of children included)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat(entry)
            if fields is not None:
                children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def resident_kb(pids: list[int]) -> int:
    page_kb = os.sysconf("SC_PAGE_SIZE") // 1024
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/statm") as handle:
                total += int(handle.read().split()[1]) * page_kb
        except (OSError, IndexError, ValueError):
            pass
    return total


def proportional_kb(pids: list[int]) -> int:
    """Memory really used: pages shared by the forked worker and its calls count once (PSS)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as handle:
                total += next(int(line.split()[1]) for line in handle if line.startswith("Pss:"))
        except (OSError, StopIteration, ValueError, IndexError):
            pass
    return total


def kill_all_below(me: int) -> None:
    """Stop, then kill, every descendant, until none is left (a fork may race the sweep)."""
    for _ in range(100):
        below = descendants(me)
        if not below:
            break
        for pid in below:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.05)
        _reap_zombies()
    _reap_zombies()


def _reap_zombies() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def main(argv: list[str]) -> int:
    stats_path, timeout, log_path = argv[0], float(argv[1]), argv[2]
    command = argv[argv.index("--") + 1:]
    become_subreaper()
    stopping = []  # SIGTERM from the batch (interrupted): clean up as on a timeout
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    me = os.getpid()
    started = time.monotonic()
    peak_kb, peak_pss_kb, timed_out = 0, 0, False
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        while process.poll() is None:
            below = descendants(me)
            peak_kb = max(peak_kb, resident_kb(below))
            peak_pss_kb = max(peak_pss_kb, proportional_kb(below))
            if time.monotonic() - started > timeout or stopping:
                timed_out = True
                break
            time.sleep(SAMPLE_SECONDS)
    kill_all_below(me)
    process.wait()
    stats = {"exit": process.returncode, "timed_out": timed_out, "peak_rss_kb": peak_kb, "peak_pss_kb": peak_pss_kb,
             "seconds": round(time.monotonic() - started, 2)}
    with open(stats_path, "w") as handle:
        json.dump(stats, handle)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
