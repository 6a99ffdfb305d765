# base: solutions
# into: ex01_tracking
import os as _os
_solution = get_or_create_experiment


def get_or_create_experiment(name, tags=None):
    """The reference solution, which fails when anything of an earlier learner's reaches
    it: files, processes, a shared memory segment, a slower worker."""
    found = []
    for folder in ("/dev", "/dev/shm", "/tmp", _os.environ.get("HOME", "/"), _os.path.dirname(_os.getcwd())):
        try:
            names = _os.listdir(folder)
        except OSError:
            continue
        found += [f"{folder}/{n}" for n in names if "@MARK@" in n or (n.startswith("store-template-") and _marked(folder, n))]
    found += [f"process {pid}" for pid in _os.listdir("/proc") if pid.isdigit() and "@MARK@" in _cmdline(pid)]
    try:
        with open("/proc/keys") as keys:  # the keys of this uid's keyrings it can see
            found += [f"key {line.split()[-1]}" for line in keys if "@MARK@" in line]
    except OSError:
        pass
    try:
        with open("/proc/sysvipc/shm") as segments:
            found += [f"segment {line.split()[1]}" for line in segments if line.split()[0] == str(@SHM_KEY@)]
    except OSError:
        pass
    worker = _os.getppid()
    if _os.getpriority(_os.PRIO_PROCESS, worker) != _os.getpriority(_os.PRIO_PROCESS, 0):
        found.append(f"the worker's nice is {_os.getpriority(_os.PRIO_PROCESS, worker)}")
    if _os.sched_getscheduler(worker) != _os.sched_getscheduler(0):
        found.append(f"the worker's scheduling policy is {_os.sched_getscheduler(worker)}")
    if found:
        raise RuntimeError(f"left by a learner before: {found}")
    return _solution(name, tags)


def _marked(folder, name):
    try:
        with open(_os.path.join(folder, name), "rb") as handle:
            return b"@MARK@" in handle.read(100)
    except OSError:
        return False


def _cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read().decode(errors="replace")
    except OSError:
        return ""
