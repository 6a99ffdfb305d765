"""A warm grading host that grades learner after learner (a batch slot, a notebook kernel).

``python -I main.py ROOT ISOLATION CALL_TIMEOUT`` (``processes.isolated_python``)
imports pytest, the grader, MLflow and scikit-learn once, and starts one warm worker, a
zygote (grader/host/slot.py). Each request (a JSON line on stdin) grades one learner:

1. the slot makes the learner's folders and cgroup, and the zygote forks the learner's
   own worker into them, in a fresh sandbox (grader/sandbox/confine.py);
2. the host forks the scoring process, ``pytest grader --target ...``, and lends it that
   worker (a plugin passed to ``pytest.main``, grader/plugin.py's ``GradingPlugin(lent=...)``). When
   the host is root, the scoring process then runs as a user of its own:
   the host hands it a copy of the submission and its results.json (open, by descriptor)
   first, since the instructor's folders are out of that user's reach;
3. when it ends, the learner's sandbox is ended at once (its cgroup, or its pid 1), and
   so is everything else the grading started (the host is a child subreaper, and kills
   what is re-parented to it); the learner's folders go.

So every learner gets a fresh scoring process and a fresh sandbox for the price of a few
forks, and nothing of one grading survives into the next. The host samples memory
meanwhile, for the instructor's figures.

Reply: one JSON line per request, a ``HostReply`` (grader/host/client.py).
"""
from __future__ import annotations

import gc
import importlib
import os
import select
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a script: the grader package lives there

from grader import KIT_ROOT  # noqa: E402
from grader.core import catalogue  # noqa: E402
from grader.ground.processes import descendants, kill_all_below, kill_group  # noqa: E402
from grader.sandbox.confine import become_subreaper, die_with_parent  # noqa: E402
from grader.sandbox.protocol import LineReader  # noqa: E402
from grader.host.client import HostReply, HostRequest  # noqa: E402
from grader.host.slot import Learner, Slot, SlotError, become, scoring_view  # noqa: E402
from grader.ground.exits import Exit  # noqa: E402

SAMPLE_SECONDS = 0.5


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


# ------------------------------------------------------------------ one learner
def _grading_child(request: HostRequest, slot: Slot, learner: Learner) -> None:
    """Runs in the forked child: the scoring process of one learner. Never returns."""
    code = Exit.INTERNAL_ERROR
    try:
        os.setsid()
        die_with_parent()
        log = os.open(request.log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        for stream in (sys.stdout, sys.stderr):  # the summary's marks, whatever the locale
            stream.reconfigure(encoding="utf-8", errors="replace")
        os.chdir(request.cwd)
        args = list(request.args)
        if slot.users is not None:
            args = _hand_over(args, learner, slot.users)
            scoring_view(slot.users, slot.root)
            os.chdir(learner.private)
            become(slot.users.scoring, slot.users.group)
            os.umask(0o007)  # what it makes, its group (learner code) may use; no one else
            os.environ["HOME"] = str(learner.private)
        import pytest

        from grader.plugin import GradingPlugin

        tempfile.tempdir = str(learner.private)  # the grader's own folder, out of learner code's sight
        # The checks were imported before pytest could rewrite their asserts; their messages
        # say everything already, so pytest need not warn about it.
        code = int(pytest.main(["-W", "ignore::pytest.PytestAssertRewriteWarning", *args],
                               plugins=[GradingPlugin(lent=slot.lend(learner))]))
    except BaseException:  # noqa: BLE001 - report, then leave
        import traceback

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _hand_over(args: list[str], learner: Learner, users) -> list[str]:
    """The arguments for a scoring process that will run as ``users.scoring``: it gets a
    copy of the submission in its own folder, and writes results.json through a
    descriptor opened here (the instructor's folders stay closed to it)."""
    from grader.core.submission import TargetError, copy_sources, resolve_target

    handed = list(args)
    for index, (option, value) in enumerate(zip(args, args[1:])):
        if option == "--target":
            try:
                handed[index + 1] = str(copy_sources(resolve_target(Path(value).absolute()), learner.private / "submission"))
            except TargetError:
                pass  # pytest will say what is wrong with it
        elif option == "--grade-json":
            results = os.open(Path(value).absolute(), os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
            os.fchown(results, users.scoring, users.group)
            handed[index + 1] = f"/proc/self/fd/{results}"
    return handed


def _wait(pid: int, timeout: float, slot: Slot) -> tuple[int | None, bool, int, int]:
    """(exit code, timed out, peak RSS of the scoring process, peak PSS of the grading)."""
    pidfd = os.pidfd_open(pid)
    deadline = time.monotonic() + timeout
    peak_pss, timed_out = 0, False
    try:
        while not select.select([pidfd], [], [], SAMPLE_SECONDS)[0]:
            watched = [pid, *descendants(pid)] + ([slot.process.pid, *descendants(slot.process.pid)] if slot.alive() else [])
            peak_pss = max(peak_pss, proportional_kb(watched))
            if time.monotonic() > deadline:
                timed_out = True
                kill_group(pid)
                break
    finally:
        os.close(pidfd)
    _, status, usage = os.wait4(pid, 0)
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else None
    return code, timed_out, usage.ru_maxrss, peak_pss


def grade(request: HostRequest, slot: Slot) -> HostReply:
    started = time.monotonic()
    try:
        learner = slot.open_learner()
    except SlotError as error:
        _note_in_log(request.log, str(error))
        return HostReply(None, seconds=round(time.monotonic() - started, 2), sandbox=slot.facts, reason=str(error))
    pid = os.fork()
    if pid == 0:
        _grading_child(request, slot, learner)
    code, timed_out, peak_rss, peak_pss = _wait(pid, request.timeout, slot)
    slot.close_learner(learner)
    kill_all_below(spare=slot.process.pid if slot.alive() else None)
    slot.empty()
    return HostReply(code, timed_out, round(time.monotonic() - started, 2), peak_rss, peak_pss, slot.facts_for(learner),
                     reason=_why_not_graded(code, timed_out))


def grade_or_say_why(message: dict, slot: Slot) -> HostReply:
    """A grading; a surprise in it (in the clean-up after a learner, say) is that
    learner's reply, and the slot starts the next one afresh, never the host's end."""
    try:
        return grade(HostRequest.from_message(message), slot)
    except Exception as error:  # noqa: BLE001 - one learner's surprise must not end the host
        kill_all_below()
        slot.stop()
        slot.empty()
        return HostReply(None, sandbox=slot.facts, reason=f"the grading host failed after it ({type(error).__name__}: {error})")


def _why_not_graded(code: int | None, timed_out: bool) -> str | None:
    if timed_out:
        return "the grading ran past its time limit and was stopped"
    if code is None:
        return "the scoring process was killed (out of memory, or by a signal)"
    return None


def _note_in_log(path: str, text: str) -> None:
    try:
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600), "w") as log:
            log.write(f"error: {text}\n")
    except OSError:
        pass


def preload(template: Path) -> None:
    """Import once what every grading needs, and open a store as gradings do; then keep it
    all out of the collector's way."""
    import pytest  # noqa: F401

    import grader.conftest  # noqa: F401
    import grader.core.read  # noqa: F401
    import grader.core.session  # noqa: F401
    from grader.core.store import warm_up_client
    from grader.sandbox import mlflow_patches, speedups

    for checks in sorted((KIT_ROOT / "grader").glob(f"{catalogue.CHECKS_PREFIX}*.py")):
        importlib.import_module(f"grader.{checks.stem}")
    mlflow_patches.speed_up_sqlite_stores()
    warm_up_client(template)
    gc.freeze()
    speedups.collapse_into_huge_pages()  # every grading is a fork of this process


def main(argv: list[str]) -> int:
    root, isolation_mode, call_timeout = Path(argv[0]), argv[1], float(argv[2])
    become_subreaper()
    die_with_parent()
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"  # before anything imports MLflow
    slot = Slot(root, isolation_mode, call_timeout)  # its zygote's imports overlap with ours
    preload(slot.template)
    replies = os.dup(1)
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)  # stray prints must not corrupt the replies
    try:
        for message in LineReader(sys.stdin.fileno()):
            os.write(replies, grade_or_say_why(message, slot).to_line())
    finally:
        slot.stop()
        kill_all_below()
    return Exit.OK


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
