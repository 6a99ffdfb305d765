"""How learner code is fenced in: the command that wraps the worker, and the rlimits of
every forked learner call.

Three levels, chosen with ``pytest grader --isolation``:

- ``none``    a learner's own self-check: their code, their machine; only the fork per call.
- ``limits``  rlimits on each learner call (memory, CPU, file size, processes). What a
              machine without bubblewrap gets; it does not hide files or the network.
- ``bwrap``   the worker runs in a bubblewrap sandbox as well: a filesystem holding only
              the Python installation, the worker script and the session's scratch folder
              (the only writable place), no network, a private pid namespace that dies
              with the grader, and the limits above.
"""
from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
from pathlib import Path

from grader.sandbox.client import WORKER

MODES = ("none", "limits", "bwrap")

# Per learner call. The worker has imported MLflow and scikit-learn before it forks, so a
# child starts with a large address space already mapped: the cap leaves room above that.
ADDRESS_SPACE_BYTES = 4 * 1024**3
FILE_SIZE_BYTES = 64 * 1024**2  # also caps output.txt: a stdout flood ends the call
TMPFS_BYTES = 256 * 1024**2
PROCESSES_PER_CALL = 256  # on top of what the user already runs (RLIMIT_NPROC is per user)

# What Python and the libraries it loads need from /etc, when present.
ETC_FILES = ("passwd", "group", "nsswitch.conf", "localtime", "ld.so.cache", "ld.so.conf",
             "ld.so.conf.d", "alternatives", "ssl", "mime.types")


def bwrap_available() -> bool:
    """Whether bubblewrap is installed and can build a sandbox here (containers may forbid it)."""
    if shutil.which("bwrap") is None:
        return False
    probe = ["bwrap", "--ro-bind", "/", "/", "--unshare-all", "--die-with-parent", "--new-session",
             "--proc", "/proc", "--dev", "/dev", "true"]
    try:
        return subprocess.run(probe, capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def best_mode() -> str:
    return "bwrap" if bwrap_available() else "limits"


def _user_processes() -> int:
    uid = os.getuid()
    return sum(1 for p in glob.glob("/proc/[0-9]*") if _owner(p) == uid)


def _owner(path: str) -> int | None:
    try:
        return os.stat(path).st_uid
    except OSError:
        return None


def call_limits(call_timeout: float) -> dict[str, int]:
    """rlimits for one learner call. CPU gets a margin over the wall-clock limit because
    the wall clock is what ends a call; the CPU cap only stops a spinning orphan."""
    return {
        "as": ADDRESS_SPACE_BYTES,
        "cpu": int(call_timeout * 2) + 10,
        "fsize": FILE_SIZE_BYTES,
        "nproc": _user_processes() + PROCESSES_PER_CALL,
        "core": 0,
    }


def _python_roots() -> list[str]:
    """The folders of the Python installation and its packages, outermost only."""
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(os.path.realpath(sys.executable))}
    roots |= {p for p in sys.path if p and os.path.isdir(p) and "site-packages" in p}
    kept: list[str] = []
    for root in sorted(os.path.realpath(r) for r in roots):
        if not any(root == k or root.startswith(k + os.sep) for k in kept):
            kept.append(root)
    return kept


def bwrap_command(scratch: Path, template: Path | None) -> list[str]:
    """The bubblewrap command line put in front of ``python -I worker.py``."""
    scratch = scratch.resolve()
    # --cap-drop ALL: run by root, the sandbox would otherwise keep capabilities (such as
    # mounting over the read-only binds). /tmp is memory: its size is capped.
    command = ["bwrap", "--cap-drop", "ALL", "--unshare-all", "--unshare-net", "--unshare-pid",
               "--die-with-parent", "--new-session", "--proc", "/proc", "--dev", "/dev",
               "--size", str(TMPFS_BYTES), "--tmpfs", "/tmp"]
    for system in ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(system):
            command += ["--symlink", os.readlink(system), system]
        elif os.path.isdir(system):
            command += ["--ro-bind", system, system]
    for name in ETC_FILES:
        if os.path.exists(f"/etc/{name}"):
            command += ["--ro-bind", f"/etc/{name}", f"/etc/{name}"]
    for root in _python_roots():
        if not root.startswith(("/usr/", "/lib")):
            command += ["--ro-bind", root, root]
    # The worker's two scripts alone, not the grader package, the solutions or the kit.
    for script in (WORKER, WORKER.with_name("speedups.py")):
        command += ["--ro-bind", str(script), str(script)]
    if template is not None and not template.resolve().is_relative_to(scratch):
        command += ["--ro-bind", str(template.resolve()), str(template.resolve())]
    command += ["--bind", str(scratch), str(scratch), "--chdir", str(scratch),
                "--setenv", "HOME", str(scratch), "--setenv", "TMPDIR", "/tmp",
                # Only inside a pid namespace of its own may the worker end stray processes.
                "--setenv", "GRADER_SWEEP_STRAYS", "1"]
    return command


def settings(mode: str, scratch: Path, template: Path | None, call_timeout: float) -> tuple[list[str], dict]:
    """(wrap, limits) for a Sandbox at this isolation level."""
    if mode not in MODES:
        raise ValueError(f"isolation must be one of {', '.join(MODES)}, not {mode!r}")
    if mode == "none":
        return [], {}
    wrap = bwrap_command(scratch, template) if mode == "bwrap" else []
    return wrap, call_limits(call_timeout)
