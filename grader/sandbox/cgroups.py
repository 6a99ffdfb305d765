"""A control group per learner: limits that hold for everything a learner's code runs (its
memory, tmpfs and shared memory included, and its number of processes), and an end that
no process can outrun, however fast it forks.

cgroup v2 where its ``memory`` and ``pids`` controllers can be given to a group of ours
(``memory.max``, ``pids.max``, the end by ``cgroup.kill``); otherwise the v1 ``memory``,
``pids`` and ``freezer`` hierarchies (the end: freeze, kill every task, thaw). Only a
root grading host can write either; ``find`` says why when there is nothing to use.

Groups are made below the host's own group (v2 may need the hierarchy's root), named
``mlflow-kit-<host pid>-<n>``; groups of a host that is gone are removed at the next start.
"""
from __future__ import annotations

import itertools
import os
import re
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from grader.ground.processes import kill

PREFIX = "mlflow-kit-"
V1_CONTROLLERS = ("memory", "pids", "freezer")
SETTLE_SECONDS = 10  # how long freezing, or a group's emptying, may take


def _write(path: Path, value) -> None:
    with open(path, "w") as handle:
        handle.write(str(value))


def _read(path: Path) -> str:
    with open(path) as handle:
        return handle.read()


def oom_kills(events: Path) -> int:
    """The ``oom_kill`` count of v2's memory.events or v1's memory.oom_control."""
    try:
        match = re.search(r"^oom_kill (\d+)$", _read(events), re.M)
    except OSError:
        return 0
    return int(match.group(1)) if match else 0


def _wait_until(condition, seconds: float = SETTLE_SECONDS) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def _members(folder: Path) -> list[int]:
    try:
        return [int(pid) for pid in _read(folder / "cgroup.procs").split()]
    except OSError:
        return []


class LearnerGroup:
    """One learner's group (a folder per hierarchy: one in v2, three in v1)."""

    def __init__(self, version: str, folders: dict[str, Path]):
        self.version = version
        self.folders = folders  # controller (or "all" in v2) -> folder

    @property
    def memory_events(self) -> Path:
        """The kernel's count of this group's out-of-memory kills (a file anyone may read)."""
        folder = self.folders.get("memory") or self.folders["all"]
        return folder / ("memory.events" if self.version == "v2" else "memory.oom_control")

    def oom_kills(self) -> int:
        return oom_kills(self.memory_events)

    def add(self, pid: int) -> None:
        for folder in dict.fromkeys(self.folders.values()):
            _write(folder / "cgroup.procs", pid)

    def kill(self) -> bool:
        """End every process in the group at once; True when the group is empty."""
        if self.version == "v2":
            folder = self.folders["all"]
            if (folder / "cgroup.kill").exists():
                _write(folder / "cgroup.kill", 1)
            else:  # kernels before 5.14: freeze, kill, thaw
                self._freeze_and_kill(folder / "cgroup.freeze", "1", "0", folder / "cgroup.events", "frozen 1")
        else:
            freezer = self.folders["freezer"]
            self._freeze_and_kill(freezer / "freezer.state", "FROZEN", "THAWED", freezer / "freezer.state", "FROZEN")
        return _wait_until(lambda: not any(_members(f) for f in self.folders.values()))

    def _freeze_and_kill(self, switch: Path, frozen: str, thawed: str, state: Path, settled: str) -> None:
        """A frozen process cannot fork: every one in the group is killed, none escapes."""
        _write(switch, frozen)
        _wait_until(lambda: settled in _read(state))
        for pid in _members(self.folders.get("freezer") or next(iter(self.folders.values()))):
            kill(pid)
        _write(switch, thawed)  # the killed processes end once they run again

    def remove(self) -> None:
        for folder in dict.fromkeys(self.folders.values()):
            for _ in range(100):  # the last exits may still be settling
                try:
                    folder.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.02)


class Cgroups:
    """Where this host makes its learners' groups, and the limits it gives them."""

    def __init__(self, version: str, parents: dict[str, Path], memory_bytes: int, pids: int):
        self.version = version
        self.parents = parents
        self.memory_bytes = memory_bytes
        self.pids = pids
        self._numbers = itertools.count(1)

    def new(self) -> LearnerGroup:
        name = f"{PREFIX}{os.getpid()}-{next(self._numbers)}"
        folders = {controller: parent / name for controller, parent in self.parents.items()}
        group = LearnerGroup(self.version, folders)
        try:
            for folder in dict.fromkeys(folders.values()):
                folder.mkdir()
            self._limit(group)
        except OSError:
            group.remove()
            raise
        return group

    def _limit(self, group: LearnerGroup) -> None:
        if self.version == "v2":
            folder = group.folders["all"]
            _write(folder / "memory.max", self.memory_bytes)
            if (folder / "memory.swap.max").exists():
                _write(folder / "memory.swap.max", 0)
            _write(folder / "pids.max", self.pids)
            return
        memory = group.folders["memory"]
        _write(memory / "memory.limit_in_bytes", self.memory_bytes)
        if (memory / "memory.memsw.limit_in_bytes").exists():  # swap counted too, where it is accounted
            _write(memory / "memory.memsw.limit_in_bytes", self.memory_bytes)
        _write(group.folders["pids"] / "pids.max", self.pids)

    @contextmanager
    def visiting(self, group: LearnerGroup, pid: int) -> Iterator[None]:
        """A process in a learner's group for the block, then back where it was: what it
        forks meanwhile is born in the group and stays there (a learner's sandbox)."""
        own = _own_groups(pid)
        mounts = _mounts()
        origin = {c: _folder(*_mount_of(mounts, c, self.version), own[c if self.version == "v1" else ""])
                  for c in group.folders}
        group.add(pid)
        try:
            yield
        finally:
            for folder in dict.fromkeys(origin.values()):
                try:
                    _write(folder / "cgroup.procs", pid)
                except (OSError, ProcessLookupError):
                    pass  # gone meanwhile

    @classmethod
    def find(cls, memory_bytes: int, pids: int) -> "tuple[Cgroups | None, str]":
        """The cgroups this process may use, and how (or why none)."""
        mounts, own = _mounts(), _own_groups()
        reasons = []
        for version, parents in (("v2", _v2_parents(mounts, own)), ("v1", _v1_parents(mounts, own))):
            if isinstance(parents, str):
                reasons.append(f"{version}: {parents}")
                continue
            cgroups = cls(version, parents, memory_bytes, pids)
            try:
                _remove_stale(parents)
                cgroups.new().remove()  # proves a group can be made and limited
                return cgroups, version
            except OSError as error:
                reasons.append(f"{version}: {error.strerror or error}")
        return None, "; ".join(reasons)


def _mounts() -> list[tuple[str, str, str, set[str]]]:
    """(mount point, root within the hierarchy, fs type, super options) of cgroup mounts."""
    found = []
    with open("/proc/self/mountinfo") as handle:
        for line in handle:
            before, _, after = line.partition(" - ")
            fields, tail = before.split(), after.split()
            if tail and tail[0] in ("cgroup", "cgroup2"):
                found.append((fields[4], fields[3], tail[0], set(tail[2].split(",")) if len(tail) > 2 else set()))
    return found


def _own_groups(pid: int | str = "self") -> dict[str, str]:
    """controller ("" for v2) -> a process's group path, from /proc/<pid>/cgroup."""
    groups = {}
    with open(f"/proc/{pid}/cgroup") as handle:
        for line in handle:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            for controller in controllers.split(",") if controllers else [""]:
                groups[controller] = path
    return groups


def _folder(mount_point: str, mount_root: str, path: str) -> Path:
    relative = path[len(mount_root):] if mount_root != "/" and path.startswith(mount_root) else path
    return Path(mount_point, relative.lstrip("/"))


def _mount_of(mounts, controller: str, version: str) -> tuple[str, str]:
    """(mount point, root) of the hierarchy holding ``controller`` (v2: the one hierarchy)."""
    if version == "v2":
        point, root, _, _ = next(m for m in mounts if m[2] == "cgroup2")
    else:
        point, root, _, _ = next(m for m in mounts if m[2] == "cgroup" and controller in m[3])
    return point, root


def _v2_parents(mounts, own) -> "dict[str, Path] | str":
    v2 = [m for m in mounts if m[2] == "cgroup2"]
    if not v2 or "" not in own:
        return "no cgroup2 hierarchy"
    point, root, _, _ = v2[0]
    candidates = [_folder(point, root, own[""]), Path(point)]  # our own group, else the root
    for parent in dict.fromkeys(candidates):
        try:
            available = _read(parent / "cgroup.controllers").split()
            if not {"memory", "pids"} <= set(available):
                continue
            enabled = _read(parent / "cgroup.subtree_control").split()
            if not {"memory", "pids"} <= set(enabled):
                _write(parent / "cgroup.subtree_control", "+memory +pids")
            return {"all": parent}
        except OSError:
            continue
    return "its memory and pids controllers cannot be given to a group of ours"


def _v1_parents(mounts, own) -> "dict[str, Path] | str":
    parents = {}
    for controller in V1_CONTROLLERS:
        mount = next((m for m in mounts if m[2] == "cgroup" and controller in m[3]), None)
        if mount is None or controller not in own:
            return f"no {controller} hierarchy"
        parents[controller] = _folder(mount[0], mount[1], own[controller])
    if not all(os.access(p, os.W_OK) for p in parents.values()):
        return "its hierarchies are not writable"
    return parents


def _remove_stale(parents: dict[str, Path]) -> None:
    """Empty groups left by hosts that are gone (a killed host cannot remove its own)."""
    for parent in dict.fromkeys(parents.values()):
        for folder in parent.glob(f"{PREFIX}*"):
            owner = folder.name[len(PREFIX):].split("-")[0]
            if owner.isdigit() and not Path(f"/proc/{owner}").exists():
                try:
                    folder.rmdir()
                except OSError:
                    pass
