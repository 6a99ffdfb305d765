"""How the sandbox worker fences in one learner, and each of that learner's calls.

A grading host's worker is a zygote: warm, never running learner code, out of learner
code's sight. For each learner it forks a child that unshares new pid, IPC, mount and
UTS namespaces, mounts a fresh ``/tmp``, ``/dev`` and ``/dev/shm`` (memory, size-capped),
hides every other folder of the slot and binds back that learner's own scratch folder,
then forks the learner's worker: pid 1 of the new pid namespace, so when it ends the
kernel ends every process the learner started. Each call's child then takes the
learner's uid (when the host is root: a uid of its own, so learner code cannot signal,
renice or trace the worker, nor remove the grader's files), keeps no capability, and
cannot gain any.

Like worker.py beside it, this file imports nothing from the grader: the sandbox sees
only these files.
"""
from __future__ import annotations

import ctypes
import errno
import functools
import os
import signal

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWPID = 0x20000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 0x1, 0x2, 0x4, 0x8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE, MS_SHARED = 0x20, 0x1000, 0x4000, 0x40000, 0x100000
MNT_DETACH = 2
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_CAPBSET_DROP, PR_SET_CHILD_SUBREAPER, PR_SET_NO_NEW_PRIVS = 1, 4, 24, 36, 38
CAP_KILL, CAP_SETGID, CAP_SETUID, CAP_LAST = 5, 6, 7, 63
LINUX_CAPABILITY_VERSION_3 = 0x20080522

DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
DEV_LINKS = {"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1",
             "stderr": "/proc/self/fd/2"}
# Mounts below /dev that a fresh /dev makes again, or leaves out on purpose.
DEV_MOUNTS = {f"/dev/{name}" for name in (*DEVICES, "pts", "shm", "mqueue", "console")}
# What a learner may keep in memory-backed folders (the learner's memory limit counts it too).
DEV_BYTES = 64 * 1024
NO_SYSV_IPC = {"kernel/shmmax": "0", "kernel/shmall": "0", "kernel/msgmni": "0", "kernel/sem": "0 0 0 0"}

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]


def _check(result: int, what: str) -> None:
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{what}: {os.strerror(code)}")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    encode = lambda text: text.encode() if text is not None else None  # noqa: E731
    _check(_libc.mount(encode(source), encode(target), encode(fstype), flags, encode(data)), f"mount {target}")


def _prctl(option: int, value: int) -> None:
    _check(_libc.prctl(option, value, 0, 0, 0), f"prctl {option}")


def die_with_parent() -> None:
    """This process dies when the one that forked it does (checked: it may be gone already)."""
    parent = os.getppid()
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(1)


def become_subreaper() -> None:
    """Orphans of everything this process started become its children, not init's: none
    can slip out of ``processes.kill_all_below`` (a grading host's, ``ui``'s)."""
    _prctl(PR_SET_CHILD_SUBREAPER, 1)


# ------------------------------------------------------------------ one learner's namespaces
def unshare_for_learner() -> None:
    """New mount, IPC and UTS namespaces for this process; a new pid namespace for the
    next child it forks (which becomes its pid 1)."""
    _check(_libc.unshare(CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWPID), "unshare")
    private_mounts()  # nothing of ours reaches the zygote's view


def _mount_points() -> list[str]:
    with open("/proc/self/mountinfo") as handle:
        return [line.split()[4].encode().decode("unicode_escape") for line in handle]


def _below(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def fresh_folders(scratch: str, tmp_bytes: int, shm_bytes: int) -> None:
    """A fresh /tmp, /dev and /dev/shm, the rest of the slot hidden, and ``scratch`` (a
    folder of the slot) bound back at its own path. What the sandbox had bound below
    /tmp or /dev (the Python installation may live there) is bound back too."""
    slot = os.path.dirname(scratch)
    kept = [m for m in _mount_points()
            if any(_below(m, f) for f in ("/tmp", "/dev")) and m not in ("/tmp", "/dev")
            and m not in DEV_MOUNTS and not _below(m, slot) and not _below(slot, m)]
    handles = {path: os.open(path, os.O_PATH | os.O_NOFOLLOW) for path in [*kept, scratch]}
    devices = {name: os.open(f"/dev/{name}", os.O_PATH) for name in DEVICES}
    _mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, f"size={tmp_bytes},mode=1777")
    _mount("tmpfs", "/dev", "tmpfs", MS_NOSUID | MS_NOEXEC, f"size={DEV_BYTES},mode=0755")
    for name, handle in devices.items():
        open(f"/dev/{name}", "w").close()
        _mount(f"/proc/self/fd/{handle}", f"/dev/{name}", None, MS_BIND)
        os.close(handle)
    for name, target in DEV_LINKS.items():
        os.symlink(target, f"/dev/{name}")
    os.mkdir("/dev/shm")
    _mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, f"size={shm_bytes},mode=1777")
    if os.path.isdir(slot):  # not below a folder made fresh just now: hide it
        _mount("tmpfs", slot, "tmpfs", MS_NOSUID | MS_NODEV, f"size={DEV_BYTES},mode=0755")
    for path, handle in handles.items():
        _bind_back(handle, path)
    _mount(None, "/dev", None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NOEXEC)
    if not any(_below(slot, f) for f in ("/tmp", "/dev")):
        _mount(None, slot, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)


def _bind_back(handle: int, path: str) -> None:
    if os.path.isdir(f"/proc/self/fd/{handle}"):
        os.makedirs(path, mode=0o755, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
        open(path, "a").close()
    _mount(f"/proc/self/fd/{handle}", path, None, MS_BIND | MS_REC)
    os.close(handle)


def fresh_proc() -> None:
    """In the learner's pid 1: a /proc that shows only the learner's processes; no System V
    IPC in its IPC namespace; and /proc/sys read-only from then on."""
    _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    for name, value in NO_SYSV_IPC.items():
        try:
            with open(f"/proc/sys/{name}", "w") as handle:
                handle.write(value)
        except OSError:
            pass  # a user namespace may not own these: the IPC namespace still dies with the learner
    _mount("/proc/sys", "/proc/sys", None, MS_BIND | MS_REC)
    _mount(None, "/proc/sys", None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)


def own_mount_namespace() -> None:
    """A mount namespace for this process (a grading host) and all it starts: what it
    mounts there (each learner's capped scratch) reaches its scoring processes and, as
    slaves, the bubblewrap sandbox it starts next, and nothing outside; it goes when the
    last of them ends, so a host that dies leaves no mount behind."""
    _check(_libc.unshare(CLONE_NEWNS), "unshare")
    _mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing of ours reaches the machine's namespace
    _mount(None, "/", None, MS_REC | MS_SHARED)  # and what we mount reaches the sandbox


def mount_capped(folder: str, size_bytes: int, inodes: int, uid: int, gid: int, mode: int) -> None:
    """A file system of its own in memory at ``folder``: at most ``size_bytes`` and
    ``inodes`` files and folders, whatever learner code writes there."""
    _mount("tmpfs", folder, "tmpfs", MS_NOSUID | MS_NODEV,
           f"size={size_bytes},nr_inodes={inodes},mode={mode:o},uid={uid},gid={gid}")


def unmount(folder: str) -> None:
    """Detach what is mounted at ``folder`` (all it holds goes with it); nothing if nothing is."""
    if _libc.umount2(folder.encode(), MNT_DETACH) != 0 and ctypes.get_errno() not in (errno.EINVAL, errno.ENOENT):
        _check(-1, f"umount {folder}")


def private_mounts() -> None:
    """A mount namespace of this process's own, where what it mounts stays."""
    _check(_libc.unshare(CLONE_NEWNS), "unshare")
    _mount(None, "/", None, MS_REC | MS_PRIVATE)


def reach(paths: list[str], uid: int, gids: set[int]) -> None:
    """Make ``paths`` reachable for ``uid`` in this (private) mount namespace: a folder on
    the way that it may not pass (a 0700 home holding Python, say) is covered by an empty
    one, with only ``paths`` bound back into it. Nothing else there is shown."""
    covered: dict[str, list[str]] = {}
    for path in paths:
        blocked = next((a for a in _ancestors(path) if not _passable(a, uid, gids)), None)
        if blocked is not None:
            covered.setdefault(blocked, []).append(path)
    for folder, kept in sorted(covered.items()):
        kept = [p for p in kept if not any(_below(p, other) and p != other for other in kept)]
        handles = {path: os.open(path, os.O_PATH | os.O_NOFOLLOW) for path in kept}
        _mount("tmpfs", folder, "tmpfs", MS_NOSUID | MS_NODEV, f"size={DEV_BYTES},mode=0755")
        for path, handle in handles.items():
            _bind_back(handle, path)
        _mount(None, folder, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)


def _ancestors(path: str) -> list[str]:
    """The folders leading to ``path``, outermost first, ``/`` left out."""
    parts = os.path.normpath(path).strip("/").split("/")[:-1]
    return ["/" + "/".join(parts[:n]) for n in range(1, len(parts) + 1)]


def _passable(folder: str, uid: int, gids: set[int]) -> bool:
    info = os.stat(folder)
    if info.st_uid == uid:
        return bool(info.st_mode & 0o100)
    if info.st_gid in gids:
        return bool(info.st_mode & 0o010)
    return bool(info.st_mode & 0o001)


# ------------------------------------------------------------------ capabilities and users
class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def keep_capabilities(kept: tuple[int, ...]) -> None:
    """Hold only ``kept``, now and for good (the bounding set too, where we may drop it)."""
    for cap in range(CAP_LAST + 1):
        if cap not in kept:
            if _libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 and ctypes.get_errno() not in (1, 22):
                _check(-1, "drop from the bounding set")  # EPERM: no CAP_SETPCAP; EINVAL: no such cap
    mask = sum(1 << cap for cap in kept)
    data = (_CapData * 2)((mask & 0xFFFFFFFF, mask & 0xFFFFFFFF, 0), (mask >> 32, mask >> 32, 0))
    _check(_libc.capset(ctypes.byref(_CapHeader(LINUX_CAPABILITY_VERSION_3, 0)), data), "capset")


WORKER_CAPABILITIES = (CAP_KILL, CAP_SETGID, CAP_SETUID)  # to end calls, and to start them as the learner


def become_learner(user: tuple[int, int] | None) -> None:
    """In a call's child, before it reads anything learner code could have written: the
    learner's uid and group (all capabilities go with root), no way to gain privileges,
    first in line should memory run out."""
    if user is not None:
        uid, gid = user
        os.setgroups([gid])
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
    keep_capabilities(())
    _prctl(PR_SET_NO_NEW_PRIVS, 1)
    _prctl(PR_SET_DUMPABLE, 1)  # the learner's process is an ordinary one; only the worker is shielded
    try:
        with open("/proc/self/oom_score_adj", "w") as handle:
            handle.write("1000")
    except OSError:
        pass


# ------------------------------------------------------------------ system calls
# What learner code never needs, and where the kernel is easiest to attack or where one
# learner could leave something for the next: refused with EPERM once a call's child
# became the learner. The kernel keyring is per uid (the next learner, with the same uid,
# would find the keys); a new user namespace hands out every capability inside it.
REFUSED_SYSCALLS = (
    "add_key", "request_key", "keyctl",
    "unshare", "setns",
    "mount", "umount2", "pivot_root", "chroot", "fsopen", "fsconfig", "fsmount", "fspick", "move_mount",
    "open_tree", "mount_setattr",
    "bpf", "perf_event_open", "userfaultfd",
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd",
    "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
    "open_by_handle_at", "name_to_handle_at", "swapon", "swapoff", "reboot", "syslog", "acct", "quotactl",
)
CLONE_NEWCGROUP, CLONE_NEWUSER, CLONE_NEWNET = 0x02000000, 0x10000000, 0x40000000
# clone with any of these is refused too (plain forks and threads go on); clone3 passes its
# flags in memory a filter cannot read, so it answers ENOSYS: the C library then uses clone.
NAMESPACE_FLAGS = (CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWPID, CLONE_NEWCGROUP, CLONE_NEWUSER, CLONE_NEWNET)
REFUSED_DESCRIBED = [*REFUSED_SYSCALLS, "clone with a namespace flag", "clone3 (ENOSYS: clone is used instead)"]


@functools.cache
def can_filter_syscalls() -> bool:
    """Whether the learner's calls get the filter here (the grader's side asks; the sandbox
    runs the same Python installation)."""
    return syscall_filter() is not None


def syscall_filter():
    """The learner's seccomp filter (libseccomp through pyseccomp), built once by the worker
    and loaded by each call's child; None where it cannot be had."""
    try:
        import pyseccomp
    except (ImportError, OSError):
        return None
    refuse = pyseccomp.ERRNO(errno.EPERM)
    rules = pyseccomp.SyscallFilter(pyseccomp.ALLOW)
    for name in REFUSED_SYSCALLS:
        try:
            rules.add_rule(refuse, name)
        except (OSError, ValueError):  # a call this architecture does not have
            pass
    for flag in NAMESPACE_FLAGS:
        rules.add_rule(refuse, "clone", pyseccomp.Arg(0, pyseccomp.MASKED_EQ, flag, flag))
    rules.add_rule(pyseccomp.ERRNO(errno.ENOSYS), "clone3")
    return rules
