"""A grading host's slot: the warm zygote it forks each learner's sandbox from, and how
it fences learners in (which users, which cgroups), found out once when the host starts.

Per learner the slot makes two folders in its root: ``learner-<token>``, the scratch
folder, the only one the learner's sandbox shows (and, with separate users, owned by the
scoring user, group-writable and sticky: learner code adds files, but never removes or
replaces the grader's); and ``learner-<token>.grader``, the scoring process's own, never
shown to learner code. The slot keeps nothing else but files of exact names.
"""
from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from grader import KIT_ROOT
from grader.ground import files
from grader.ground.processes import children, kill, kill_group
from grader.sandbox import isolation
from grader.sandbox import confine
from grader.sandbox.cgroups import Cgroups, LearnerGroup
from grader.sandbox.protocol import LineReader, frame

READY_SECONDS = 120  # for a zygote still warming up, on a busy machine
END_SECONDS = 20
WORKER_LOG = "worker.log"


class SlotError(Exception):
    """A learner's sandbox could not be built."""


@dataclass
class Learner:
    """One learner's place in the slot, while it is graded."""

    token: str
    scratch: Path
    private: Path
    group: LearnerGroup | None
    notes: tuple[str, ...] = ()  # what its sandbox could not do, said by its worker


class Slot:
    def __init__(self, root: Path, mode: str, call_timeout: float):
        from grader.core.store import template_db

        self.root, self.mode = root, mode
        notes: list[str] = []
        self.users = self._separate_users(notes)
        self.capped_scratch = self._own_mounts(notes)
        self.cgroups = self._cgroups(notes)
        self.template = self._template(template_db(root))
        self.wrap, self.limits = isolation.zygote_settings(mode, root, self.template, call_timeout, self.users)
        self.facts = isolation.facts(mode, cgroup=self.cgroups.version if self.cgroups else "none", users=self.users,
                                     fresh_per_learner=mode == "bwrap", capped_scratch=self.capped_scratch, notes=notes)
        self.process = None
        self._replies: LineReader | None = None
        self.start()

    # -- what this host can do, found out once
    def _separate_users(self, notes: list[str]) -> isolation.Users | None:
        """Users of their own for the scoring process and learner code, in a bubblewrap
        slot of a root host (where they can reach what they need); else everything runs as
        the host's uid. (Process limits alone hide no file: a uid of its own would not
        make them safe, and learner code would need the Python installation in reach.)"""
        if self.mode != "bwrap":
            return None
        if os.geteuid() != 0:
            notes.append("one uid for the grader and learner code: the host does not run as root")
            return None
        users = isolation.Users()
        os.chown(self.root, 0, users.group)
        os.chmod(self.root, 0o710)  # the group may pass through to its learners' folders; no one else
        if not _works_as(users, self.root):
            notes.append("one uid for the grader and learner code: the scoring user cannot reach the grader")
            return None
        return users

    def _own_mounts(self, notes: list[str]) -> bool:
        """Whether each learner's scratch can be a capped file system of its own: in a
        mount namespace of the host's (before its sandbox starts), where it is root."""
        if self.users is None:
            if self.mode == "bwrap":
                notes.append("the learner's scratch folder is not capped: the host does not run as root")
            return False
        try:
            confine.own_mount_namespace()
        except OSError as error:
            notes.append(f"the learner's scratch folder is not capped: {error}")
            return False
        return True

    def _cgroups(self, notes: list[str]) -> Cgroups | None:
        if self.mode == "none":
            return None
        cgroups, how = Cgroups.find(isolation.MEMORY_PER_LEARNER_BYTES, isolation.PROCESSES_PER_LEARNER)
        if cgroups is None:
            notes.append(f"no cgroups, so no memory or process limit for a learner as a whole ({how})")
        return cgroups

    def _template(self, template: Path) -> Path:
        """The store template, where the scoring user can read it (the slot's own folder)."""
        if self.users is None or template.parent == self.root:
            return template
        copy = self.root / template.name
        shutil.copyfile(template, copy)
        os.chmod(copy, 0o644)
        return copy

    def kept(self) -> set[str]:
        """What stays in the slot's folder between learners: exact names only."""
        return {WORKER_LOG, self.template.name}

    # -- the zygote
    def start(self) -> None:
        from grader.sandbox.client import spawn_worker

        self.stop()
        self.process, self.zygote_pid = spawn_worker(self.root, self.wrap, self.limits, self.template,
                                                     long_lived=True, zygote=True)
        self._replies = LineReader(self.process.stdout.fileno())

    def stop(self) -> None:
        if self.process is not None:
            kill_group(self.process.pid)
            self.process.wait()
            self.process = None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _send(self, message: dict) -> None:
        self.process.stdin.write(frame(message))  # the end of a request the last learner's worker did not read stands alone
        self.process.stdin.flush()

    def _await(self, wanted, seconds: float) -> dict | None:
        """The first reply ``wanted`` accepts, skipping others (late replies to the last
        learner's calls); None when the zygote is gone or too slow."""
        deadline = time.monotonic() + seconds
        while True:
            message = self._replies.next(max(deadline - time.monotonic(), 0))
            if message is None or wanted(message):
                return message

    # -- one learner
    def open_learner(self) -> Learner:
        """The learner's folders and cgroup, and its own worker forked by the zygote into
        them: in a fresh sandbox, running no learner code yet."""
        if not self.alive():
            self.start()
        token = secrets.token_hex(8)
        learner = Learner(token, self.root / f"learner-{token}", self.root / f"learner-{token}.grader", None)
        for folder, mode in ((learner.scratch, 0o3770), (learner.private, 0o700)):
            folder.mkdir(mode=0o700)
            if self.users:
                os.chown(folder, self.users.scoring, self.users.group)
                os.chmod(folder, mode)
        try:
            if self.capped_scratch:  # learner code fills this, not the slot's file system
                confine.mount_capped(str(learner.scratch), isolation.SCRATCH_BYTES, isolation.SCRATCH_INODES,
                                     self.users.scoring, self.users.group, 0o3770)
            learner.group = self.cgroups.new() if self.cgroups else None
            self._fork_worker(learner)
        except BaseException:
            self.close_learner(learner)
            raise
        return learner

    def _fork_worker(self, learner: Learner) -> None:
        spec = {
            "token": learner.token,
            "scratch": str(learner.scratch),
            "namespaces": self.mode == "bwrap",
            "user": [self.users.learner, self.users.group] if self.users else None,
            "tmp_bytes": isolation.TMPFS_BYTES,
            "shm_bytes": isolation.SHM_BYTES,
            "env": {"HOME": str(learner.scratch), **(self.users.env() if self.users else {})},
        }
        # Born in the learner's group, the sandbox and everything it starts stay there.
        with self.cgroups.visiting(learner.group, self.zygote_pid) if learner.group else contextlib.nullcontext():
            try:
                self._send({"learner": spec})
                reply = self._await(lambda m: m.get("learner") == learner.token or m.get("ended") == learner.token,
                                    READY_SECONDS)
            except OSError:
                reply = None
        if not (reply and reply.get("ready")):
            self.start()  # a zygote that cannot build a sandbox is not trusted with the next
            raise SlotError(f"the learner's sandbox could not be set up (see {self.root / WORKER_LOG})")
        learner.notes = (reply["note"],) if reply.get("note") else ()

    def close_learner(self, learner: Learner) -> None:
        """End everything of the learner's at once, and remove its folders and group."""
        if learner.group is not None:
            learner.group.kill()
        if self.alive():
            for pid in children(self.zygote_pid):  # the learner's sandbox: its pid 1 dies with it
                kill(pid)
            deadline = time.monotonic() + END_SECONDS
            while children(self.zygote_pid) and time.monotonic() < deadline:
                time.sleep(0.01)
            if children(self.zygote_pid):
                self.start()
        if learner.group is not None:
            learner.group.remove()
        if self.capped_scratch:
            confine.unmount(str(learner.scratch))  # all of it goes at once
        for folder in (learner.scratch, learner.private):
            files.remove_tree(folder)  # any depth, no link followed, never raises

    def empty(self) -> None:
        """Nothing the last learner left may meet the next: the slot keeps exact names only."""
        kept = self.kept()
        for entry in self.root.iterdir():
            if entry.name in kept and entry.is_file() and not entry.is_symlink():
                continue
            if self.capped_scratch:
                confine.unmount(str(entry))
            files.remove_tree(entry)

    def facts_for(self, learner: Learner) -> dict:
        """How this learner was fenced in (isolation.facts), for its results.json."""
        if not learner.notes:
            return self.facts
        return {**self.facts, "notes": [*self.facts.get("notes", []), *learner.notes]}

    def lend(self, learner: Learner):
        from grader.sandbox.client import LentWorker

        return LentWorker(
            self.process.stdin.fileno(), self.process.stdout.fileno(), scratch=learner.scratch,
            template=self.template, sandbox=self.facts_for(learner),
            memory_events=learner.group.memory_events if learner.group else None,
            memory_limit_mb=self.facts["memory_limit_mb"],
            replaceable=self.users is None,  # learner code must never run as the scoring user
        )


def scoring_view(users: isolation.Users, slot_root: Path) -> None:
    """In the scoring process, still root: a mount namespace of its own in which the
    scoring user reaches the Python installation, the grader and the slot (a folder on
    the way it may not pass, such as a 0700 home, shows only those)."""
    from grader.sandbox import confine

    confine.private_mounts()
    confine.reach([*isolation.python_roots(), str(KIT_ROOT), str(slot_root)], users.scoring, {users.group})


def _works_as(users: isolation.Users, slot_root: Path) -> bool:
    """Whether a scoring process can run as ``users.scoring`` here (tried in a child)."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            scoring_view(users, slot_root)
            become(users.scoring, users.group)
            os.stat(slot_root)
            os.stat(Path(isolation.__file__))
            os.stat(Path(os.__file__))
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) == 0


def become(uid: int, gid: int) -> None:
    """Run as ``uid`` in group ``gid`` alone, for good (root's capabilities go with it)."""
    os.setgroups([gid])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
