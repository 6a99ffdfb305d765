"""A warm grading host that grades learner after learner (a batch slot, a notebook kernel).

``python -I server.py ROOT ISOLATION CALL_TIMEOUT`` imports pytest, the grader, MLflow
and scikit-learn once, and starts one sandboxed worker. Each request (a JSON line on
stdin) grades one learner: the host forks, and the child runs ``pytest grader --target
...`` with the warm worker lent to it, then exits. So every learner gets a fresh scoring
process for the price of a fork, and nothing of one grading survives into the next.

Between learners the worker is reset (stray processes and its /tmp go), or replaced when
the grading timed out, crashed or lost it. The host is a child subreaper: whatever a
grading starts, even a process that escapes with setsid, is re-parented here and killed
when that grading ends. It samples memory meanwhile, for the instructor's figures.

Reply, one JSON line: {"exit", "timed_out", "seconds", "peak_rss_kb", "peak_pss_kb"}.
"""
from __future__ import annotations

import ctypes
import gc
import importlib
import json
import os
import select
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))  # run as a script: the grader package lives here

from grader.core.processes import descendants  # noqa: E402

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
SAMPLE_SECONDS = 0.5
RESET_SECONDS = 20
# What stays in a slot's folder from one learner to the next.
KEPT_IN_SLOT = ("worker.log", "store-template-*.db")


def _prctl(option: int, value: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(option, value, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), f"prctl({option}) failed")


def become_subreaper() -> None:
    _prctl(PR_SET_CHILD_SUBREAPER, 1)


def die_with_parent() -> None:
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


# ------------------------------------------------------------------ processes and memory
def proportional_kb(pids: list[int]) -> int:
    """Memory really used: pages shared by forked processes count once (PSS)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as handle:
                total += next(int(line.split()[1]) for line in handle if line.startswith("Pss:"))
        except (OSError, StopIteration, ValueError, IndexError):
            pass
    return total


def kill_all_below(me: int, spare: int | None = None) -> None:
    """Kill every descendant but ``spare`` and its own, until none is left (a fork may
    race the sweep)."""
    for _ in range(100):
        kept = {spare, *descendants(spare)} if spare else set()
        below = [pid for pid in descendants(me) if pid not in kept]
        if not below:
            break
        for pid in below:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.02)
        _reap_zombies(spare)
    _reap_zombies(spare)


def _reap_zombies(spare: int | None) -> None:
    """Reap re-parented orphans; never the worker, whose end its owner must see."""
    for pid in descendants(os.getpid()):
        if pid != spare:
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass


# ------------------------------------------------------------------ the slot's worker
class SlotWorker:
    """The warm sandboxed worker this slot lends to one grading after another."""

    def __init__(self, root: Path, isolation_mode: str, call_timeout: float):
        from grader.core.store import template_db
        from grader.sandbox import isolation

        self.root = root
        self.template = template_db(root)
        self.wrap, self.limits = isolation.settings(isolation_mode, root, self.template, call_timeout)
        self.process = None
        self._replies = b""
        self.replace()

    def replace(self) -> None:
        from grader.sandbox.client import spawn_worker

        self.stop()
        self.process = spawn_worker(self.root, self.wrap, self.limits, self.template, long_lived=True)
        self._replies = b""

    def stop(self) -> None:
        if self.process is not None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait()
            self.process = None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def lend(self):
        from grader.sandbox.client import LentWorker

        return LentWorker(self.process.pid, self.process.stdin.fileno(), self.process.stdout.fileno())

    def reset(self) -> bool:
        """Ask the worker to clean up after a learner; True once it says it is clean."""
        try:
            self.process.stdin.write(b'{"reset": true}\n')
            self.process.stdin.flush()
        except OSError:
            return False
        deadline = time.monotonic() + RESET_SECONDS
        out = self.process.stdout.fileno()
        while time.monotonic() < deadline:
            while b"\n" in self._replies:  # late replies to the last grading's calls are dropped
                line, self._replies = self._replies.split(b"\n", 1)
                try:
                    message = json.loads(line)
                except ValueError:
                    return False
                if isinstance(message, dict) and "reset" in message:
                    return message["reset"] is True
            ready, _, _ = select.select([out], [], [], max(deadline - time.monotonic(), 0))
            chunk = os.read(out, 65536) if ready else b""
            if not chunk:
                return False
            self._replies += chunk
        return False


# ------------------------------------------------------------------ one learner
def _grading_child(request: dict, worker: SlotWorker) -> None:
    """Runs in the forked child: the scoring process of one learner. Never returns."""
    code = 70
    try:
        os.setsid()
        die_with_parent()
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        for stream in (sys.stdout, sys.stderr):  # the summary's marks, whatever the locale
            stream.reconfigure(encoding="utf-8", errors="replace")
        os.chdir(request["cwd"])
        import pytest
        from grader.sandbox import client

        client.LENT_WORKER = worker.lend()
        tempfile.tempdir = str(worker.root)  # the session's scratch, where the worker can see it
        # The checks were imported before pytest could rewrite their asserts; their messages
        # say everything already, so pytest need not warn about it.
        code = int(pytest.main(["-W", "ignore::pytest.PytestAssertRewriteWarning", *request["args"]]))
    except BaseException:  # noqa: BLE001 - report, then leave
        import traceback

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _wait(pid: int, timeout: float, worker: SlotWorker) -> tuple[int | None, bool, int, int]:
    """(exit code, timed out, peak RSS of the scoring process, peak PSS of the grading)."""
    pidfd = os.pidfd_open(pid)
    deadline = time.monotonic() + timeout
    peak_pss, timed_out = 0, False
    try:
        while not select.select([pidfd], [], [], SAMPLE_SECONDS)[0]:
            watched = [pid, *descendants(pid)] + ([worker.process.pid, *descendants(worker.process.pid)] if worker.alive() else [])
            peak_pss = max(peak_pss, proportional_kb(watched))
            if time.monotonic() > deadline:
                timed_out = True
                os.killpg(pid, signal.SIGKILL)
                break
    finally:
        os.close(pidfd)
    _, status, usage = os.wait4(pid, 0)
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else None
    return code, timed_out, usage.ru_maxrss, peak_pss


def _empty_slot(root: Path) -> None:
    """Nothing the last learner's code wrote in the slot may meet the next learner."""
    for entry in root.iterdir():
        kept = entry.is_file() and not entry.is_symlink() and any(entry.match(p) for p in KEPT_IN_SLOT)
        if not kept:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)


def grade(request: dict, worker: SlotWorker) -> dict:
    if not worker.alive():
        worker.replace()
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:
        _grading_child(request, worker)
    code, timed_out, peak_rss, peak_pss = _wait(pid, float(request["timeout"]), worker)
    kill_all_below(os.getpid(), spare=worker.process.pid if worker.alive() else None)
    # A grading that ended badly may have left the worker busy or broken: start afresh,
    # once the slot's folder holds nothing the last learner's code left there.
    clean = not timed_out and code in (0, 1) and worker.alive() and worker.reset()
    _empty_slot(worker.root)
    if not clean:
        worker.replace()
    return {"exit": code, "timed_out": timed_out, "seconds": round(time.monotonic() - started, 2),
            "peak_rss_kb": peak_rss, "peak_pss_kb": peak_pss}


def preload(template: Path) -> None:
    """Import once what every grading needs, and open a store as gradings do; then keep it
    all out of the collector's way."""
    import pytest  # noqa: F401

    import grader.conftest  # noqa: F401
    import grader.core.read  # noqa: F401
    import grader.core.session  # noqa: F401
    from grader.core.store import warm_up_client
    from grader.sandbox import speedups

    for checks in sorted((REPO / "grader").glob("test_*.py")):
        importlib.import_module(f"grader.{checks.stem}")
    warm_up_client(template)
    gc.freeze()
    speedups.collapse_into_huge_pages()  # every grading is a fork of this process


def main(argv: list[str]) -> int:
    root, isolation_mode, call_timeout = Path(argv[0]), argv[1], float(argv[2])
    become_subreaper()
    die_with_parent()
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"  # before anything imports MLflow
    worker = SlotWorker(root, isolation_mode, call_timeout)  # its imports overlap with ours
    preload(worker.template)
    replies = os.dup(1)
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)  # stray prints must not corrupt the replies
    try:
        for line in sys.stdin:
            if line.strip():
                reply = grade(json.loads(line), worker)
                os.write(replies, (json.dumps(reply) + "\n").encode())
    finally:
        worker.stop()
        kill_all_below(os.getpid())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
