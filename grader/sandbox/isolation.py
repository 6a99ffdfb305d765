"""How learner code is fenced in: the command that wraps the worker, and the rlimits of
every forked learner call.

Three levels, chosen with ``pytest grader --isolation``:

- ``none``    a learner's own self-check: their code, their machine; only the fork per call.
- ``limits``  rlimits on each learner call (memory, CPU, file size, processes). What a
              machine without bubblewrap gets; it does not hide files or the network.
- ``bwrap``   the worker runs in a bubblewrap sandbox as well: a filesystem holding only
              the Python installation, the worker's scripts and the session's scratch folder
              (the only writable place), no network, a private pid namespace that dies
              with the grader, and the limits above.

A grading host (batch slots) fences each learner in further (grader/host/slot.py): a
fresh sandbox per learner (confine.py), a cgroup per learner (cgroups.py) and, when the
host runs as root, users of their own for the scoring process and for learner code. What
a learner got is recorded as ``facts`` in its results.json.
"""
from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
from pathlib import Path

from dataclasses import dataclass

from grader.sandbox import confine
from grader.sandbox.client import WORKER
from grader.sandbox.protocol import ISOLATION_MODES as MODES

# Per learner call. The worker has imported MLflow and scikit-learn before it forks, so a
# child starts with a large address space already mapped: the cap leaves room above that.
ADDRESS_SPACE_BYTES = 4 * 1024**3
FILE_SIZE_BYTES = 64 * 1024**2  # also caps output.txt: a stdout flood ends the call
TMPFS_BYTES = 256 * 1024**2
PROCESSES_PER_CALL = 256  # on top of what the user already runs (RLIMIT_NPROC is per user)
# Per learner, in a grading host: all of a learner's processes together, its files in
# memory (tmpfs, shared memory) included, where cgroups are available.
MEMORY_PER_LEARNER_BYTES = 1536 * 1024**2
PROCESSES_PER_LEARNER = 512
SHM_BYTES = 64 * 1024**2
# A learner's scratch folder (its stores, its calls' files), a file system of its own where
# the host is root: a full grading of the solutions uses about 30 MB and 650 files.
SCRATCH_BYTES = 512 * 1024**2
SCRATCH_INODES = 20_000
# The learner uid's processes on the whole machine (all slots), when it is a uid of its own.
LEARNER_UID_PROCESSES = 2048


@dataclass(frozen=True)
class Users:
    """A root grading host's users, ids no account has: the scoring process runs as
    ``scoring``, learner code as ``learner``; both are in ``group``, which owns what they
    share. Learner code can then neither signal the grader's processes nor remove or
    replace a file the grader made."""

    scoring: int = 3_900_000_001
    learner: int = 3_900_000_002
    group: int = 3_900_000_000

    def env(self) -> dict[str, str]:
        """Names for code that asks who it runs as (MLflow records the user of a run)."""
        return {"USER": "learner", "LOGNAME": "learner"}

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


def call_limits(call_timeout: float, users: Users | None = None) -> dict[str, int]:
    """rlimits for one learner call. CPU gets a margin over the wall-clock limit because
    the wall clock is what ends a call; the CPU cap only stops a spinning orphan."""
    return {
        "as": ADDRESS_SPACE_BYTES,
        "cpu": int(call_timeout * 2) + 10,
        "fsize": FILE_SIZE_BYTES,
        "nproc": LEARNER_UID_PROCESSES if users else _user_processes() + PROCESSES_PER_CALL,
        "core": 0,
    }


def python_roots() -> list[str]:
    """The folders of the Python installation and its packages, outermost only."""
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(os.path.realpath(sys.executable))}
    roots |= {p for p in sys.path if p and os.path.isdir(p) and "site-packages" in p}
    kept: list[str] = []
    for root in sorted(os.path.realpath(r) for r in roots):
        if not any(root == k or root.startswith(k + os.sep) for k in kept):
            kept.append(root)
    return kept


def bwrap_command(scratch: Path, template: Path | None, *, zygote: bool = False,
                  users: Users | None = None) -> list[str]:
    """The bubblewrap command line put in front of ``python -I worker.py``. A zygote (a
    grading host's) keeps the capabilities it needs to build each learner's sandbox: in a
    user namespace of its own; or, with separate users (root), without one (a user
    namespace maps a single uid), keeping only what it needs."""
    scratch = scratch.resolve()
    # --cap-drop ALL: run by root, the sandbox would otherwise keep capabilities (such as
    # mounting over the read-only binds). /tmp is memory: its size is capped.
    if users is not None:
        command = ["bwrap", "--cap-drop", "ALL", *_capabilities(ZYGOTE_CAPABILITIES),
                   "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try"]
    elif zygote:
        command = ["bwrap", "--unshare-all", "--unshare-user", "--unshare-net", "--unshare-pid",
                   "--cap-drop", "ALL", *_capabilities(("CAP_SYS_ADMIN", "CAP_SETPCAP"))]
    else:
        command = ["bwrap", "--cap-drop", "ALL", "--unshare-all", "--unshare-net", "--unshare-pid"]
    command += ["--die-with-parent", "--new-session", "--proc", "/proc", "--dev", "/dev",
                "--size", str(TMPFS_BYTES), "--tmpfs", "/tmp"]
    if zygote:
        command += ["--as-pid-1"]  # so the host knows its pid (bwrap's --info-fd), and all dies with it
    for system in ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(system):
            command += ["--symlink", os.readlink(system), system]
        elif os.path.isdir(system):
            command += ["--ro-bind", system, system]
    # /etc readable by every user (bubblewrap would make it 0700 for root): programs learner
    # code runs as a uid of its own (git, reading /etc/gitconfig) must find what is not there.
    command += ["--perms", "0755", "--dir", "/etc"]
    for name in ETC_FILES:
        if os.path.exists(f"/etc/{name}"):
            command += ["--ro-bind", f"/etc/{name}", f"/etc/{name}"]
    binds = [root for root in python_roots() if not root.startswith(("/usr/", "/lib"))]
    # The worker's scripts alone, not the grader package, the solutions or the kit.
    binds += [str(script) for script in WORKER_SCRIPTS]
    if template is not None and not template.resolve().is_relative_to(scratch):
        binds.append(str(template.resolve()))
    # The folders leading to them are made passable: bubblewrap would copy the host's
    # modes, and a 0700 home (holding Python, say) would shut learner code out.
    command += [argument for folder in _leading_folders([*binds, str(scratch)])
                for argument in ("--perms", "0755", "--dir", folder)]
    for path in binds:
        command += ["--ro-bind", path, path]
    command += ["--bind", str(scratch), str(scratch), "--chdir", str(scratch),
                "--setenv", "HOME", str(scratch), "--setenv", "TMPDIR", "/tmp"]
    if not zygote:  # only inside a pid namespace of its own may the worker end stray processes
        command += ["--setenv", "GRADER_SWEEP_STRAYS", "1"]
    return command


def _leading_folders(paths: list[str]) -> list[str]:
    """Every folder on the way to ``paths`` (outermost first), but / and the system's own."""
    folders: dict[str, None] = {}
    for path in paths:
        parts = Path(path).parts[1:-1]
        for n in range(1, len(parts) + 1):
            folders["/" + "/".join(parts[:n])] = None
    return [f for f in folders if not f.startswith(("/usr", "/lib", "/bin", "/sbin", "/etc", "/proc"))
            and f not in ("/dev", "/dev/shm", "/tmp")]


# worker.py and what it loads beside itself (and the ground floor's exit codes): the only
# grader code the sandbox holds.
WORKER_SCRIPTS = (*(WORKER.with_name(name) for name in (
    "worker.py", "protocol.py", "mlflow_patches.py", "speedups.py", "confine.py", "warm.py")),
    WORKER.parent.parent / "ground" / "exits.py")
# A root zygote's: building sandboxes (SYS_ADMIN), starting calls as the learner (SETUID,
# SETGID), ending them (KILL), and dropping the first two for good once built (SETPCAP).
ZYGOTE_CAPABILITIES = ("CAP_SYS_ADMIN", "CAP_SETUID", "CAP_SETGID", "CAP_KILL", "CAP_SETPCAP")


def _capabilities(names) -> list[str]:
    return [argument for name in names for argument in ("--cap-add", name)]


def settings(mode: str, scratch: Path, template: Path | None, call_timeout: float) -> tuple[list[str], dict]:
    """(wrap, limits) for a Sandbox at this isolation level."""
    if mode not in MODES:
        raise ValueError(f"isolation must be one of {', '.join(MODES)}, not {mode!r}")
    if mode == "none":
        return [], {}
    wrap = bwrap_command(scratch, template) if mode == "bwrap" else []
    return wrap, call_limits(call_timeout)


def zygote_settings(mode: str, root: Path, template: Path | None, call_timeout: float,
                    users: Users | None) -> tuple[list[str], dict]:
    """(wrap, limits) for a grading host's zygote, which forks a sandbox per learner."""
    if mode == "none":
        return [], {}
    wrap = bwrap_command(root, template, zygote=True, users=users) if mode == "bwrap" else []
    return wrap, call_limits(call_timeout, users)


NAMESPACES = ["pid", "ipc", "mount", "net", "uts"]


def facts(mode: str, *, cgroup: str = "none", users: Users | None = None, fresh_per_learner: bool = False,
          capped_scratch: bool = False, notes: list[str] | None = None) -> dict:
    """How a learner's code was fenced in, as recorded in its results.json."""
    limited = cgroup != "none"
    filtered = mode != "none" and confine.can_filter_syscalls()
    if mode != "none" and not filtered:
        notes = [*(notes or []), "no seccomp filter: pyseccomp or libseccomp is missing, so no system call is refused"]
    return {
        "mode": mode,
        "cgroup": cgroup,
        "memory_limit_mb": MEMORY_PER_LEARNER_BYTES // 1024**2 if limited else None,
        "pids_limit": PROCESSES_PER_LEARNER if limited else None,
        "uid": "separate" if users else "shared",
        "namespaces": NAMESPACES if mode == "bwrap" else [],
        "fresh_per_learner": fresh_per_learner,
        "seccomp": confine.REFUSED_DESCRIBED if filtered else None,  # what learner calls are refused
        "scratch_mb": SCRATCH_BYTES // 1024**2 if capped_scratch else None,
        "scratch_inodes": SCRATCH_INODES if capped_scratch else None,
        **({"notes": notes} if notes else {}),
    }
