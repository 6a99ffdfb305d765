"""The grader's side of the sandbox: start the worker, send it calls, read what came back.

What crosses the wall, and how, is the protocol (protocol.py). Only plain data crosses
back: ``result.json`` and ``.npy`` arrays read without pickle, and without following a link
(learner code can write the call folders: grader/ground/files.py). The worker is restarted
when it dies, so one crash costs one call, never the session.
"""
from __future__ import annotations

import errno
import functools
import itertools
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Sequence

import cloudpickle

from grader.ground import files
from grader.ground.processes import isolated_python, kill_group
from grader.sandbox import confine
from grader.sandbox.cgroups import oom_kills
from grader.sandbox.protocol import (
    ARRAY_FILE, MAX_ARRAY_FILE_BYTES, MAX_RESULT_BYTES, OUTPUT_FILE, REQUEST_FILE, RESULT_FILE, STACK_FILE, WORKER_DIED,
    CallResult, LineReader, Status, frame,
)

WORKER = Path(__file__).resolve().with_name("worker.py")
OUTPUT_TAIL_BYTES = 4000
# How long past its own deadline the worker may take to answer before we give up on it.
WORKER_GRACE_SECONDS = 30


class Traffic:
    """Calls run side by side (shared) unless one must run alone (after the worker died)."""

    def __init__(self):
        self._condition = threading.Condition()
        self._running = 0
        self._alone = 0  # calls waiting for, or holding, the worker to themselves

    @contextmanager
    def _turn(self, alone: bool):
        with self._condition:
            self._alone += alone
            # A shared call waits while anyone wants to be alone; a lone call waits for quiet.
            self._condition.wait_for(lambda: self._running == 0 if alone else self._alone == 0)
            self._running += 1
        try:
            yield
        finally:
            with self._condition:
                self._running -= 1
                self._alone -= alone
                self._condition.notify_all()

    def shared(self):
        return self._turn(alone=False)

    def alone(self):
        return self._turn(alone=True)


def clean_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The worker's environment: the learner's MLFLOW_* settings are neither read nor passed on."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "PYTHON"))}
    # This Python's own commands first (`mlflow`, and the `uvicorn` that `mlflow models serve`
    # runs): a kit run as venv/bin/pytest, without activating the venv, would not find them.
    env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), *filter(None, env.get("PATH", "").split(os.pathsep))])
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(extra or {})
    return env


class Sandbox:
    """A worker process that runs learner calls, each in a forked child of its own."""

    def __init__(self, scratch: Path, *, wrap: Sequence[str] = (), limits: dict | None = None,
                 template: Path | None = None, lent: "LentWorker | None" = None):
        self.scratch = scratch
        self.template = template
        self.wrap = list(wrap)
        self.limits = limits or {}
        # Ids unique across gradings: a worker lent to one grading after another may still
        # answer a call of the one before, and that answer must match nothing here.
        self._ids = itertools.count(secrets.randbits(40) << 8)
        self._lock = threading.Lock()
        self._pending: dict[int, _Pending] = {}  # call id -> the call
        self._worker: WorkerHandle | None = None
        self.max_rss_kb = 0  # the largest peak resident memory of any call so far
        self._groups: dict[int, tuple[int, WorkerHandle]] = {}  # call id -> (process group, worker), running or kept
        self._releasing: dict[int, Future] = {}  # kept call id -> resolved once the worker ended what it left
        self._traffic = Traffic()
        # Where the kernel counts out-of-memory kills of the learner's code (a grading host's cgroup).
        self.memory_events: Path | None = lent.memory_events if lent is not None else None
        self.memory_limit_mb: int | None = lent.memory_limit_mb if lent is not None else None
        if lent is not None:  # already warm: read its replies from now on
            self._worker = WorkerHandle.lent(lent)
            threading.Thread(target=self._read_replies, args=(self._worker,), daemon=True).start()

    # -- worker life cycle
    def start(self) -> None:
        """Start the worker now, so its imports overlap with the grader's own work."""
        with self._lock:
            self._ensure_worker()

    def _ensure_worker(self) -> WorkerHandle:
        if self._worker is None or not self._worker.alive:
            if self._worker is not None and not self._worker.replaceable:
                return self._worker  # only its owner may start another: calls to it crash
            self._worker = WorkerHandle.owned(spawn_worker(self.scratch, self.wrap, self.limits, self.template)[0])
            threading.Thread(target=self._read_replies, args=(self._worker,), daemon=True).start()
        return self._worker

    def _read_replies(self, worker: WorkerHandle) -> None:
        for message in LineReader(worker.stdout.fileno()):
            if "ended" in message:
                break  # a lent worker's end, said by the zygote that holds its pipe
            if "started" in message:
                if not self.wrap:  # a wrapper's pids live in its own namespace (and die with it)
                    with self._lock:
                        self._groups[message["started"]] = (message["pid"], worker)
                continue
            if "released" in message:
                with self._lock:
                    self._groups.pop(message["released"], None)
                    released = self._releasing.pop(message["released"], None)
                if released is not None:
                    released.set_result(True)
                continue
            if "id" not in message:
                continue  # the ready banner
            with self._lock:
                call = self._pending.pop(message["id"], None)
                if not (call is not None and call.keep and message["exit"] == 0):
                    self._groups.pop(message["id"], None)  # a kept call's group lives on, until released
            if call is not None:
                self.max_rss_kb = max(self.max_rss_kb, message.get("max_rss_kb") or 0)
                out_of_memory = message["signal"] == signal.SIGKILL and self._oom_kills() > call.oom_kills
                try:
                    result = _read_result(self.scratch, call.call_dir, message, self._memory_note(out_of_memory),
                                          self.limits.get("fsize"))
                except Exception as error:  # noqa: BLE001 - what a call left is learner-made: never end this thread
                    result = CallResult(Status.CRASHED, call.call_dir, error=f"the call left an unreadable result ({error})")
                result.call_id = message["id"]
                call.future.set_result(result)
        # This worker is gone: every call still waiting on it crashed with it, and must not
        # outlive it. (A new worker may already be serving other calls: leave those be.)
        worker.gone = True  # its exit may not be reaped yet: never send it another call
        self._kill_running_calls(worker)
        with self._lock:
            orphans = [call_id for call_id, call in self._pending.items() if call.worker is worker]
            orphans = [self._pending.pop(call_id) for call_id in orphans]
        for call in orphans:
            call.future.set_result(CallResult(Status.CRASHED, call.call_dir, error=WORKER_DIED))
        with self._lock:  # what it kept went with it
            waiting = list(self._releasing.values()) if worker is self._worker else []
        for released in waiting:
            if not released.done():
                released.set_result(True)

    def _kill_running_calls(self, worker: WorkerHandle | None = None) -> None:
        """End the process groups of calls still running (on one worker, or on any)."""
        with self._lock:
            doomed = [k for k, (_, owner) in self._groups.items() if worker is None or owner is worker]
            groups = [self._groups.pop(k)[0] for k in doomed]
        for group in groups:
            kill_group(group)

    def close(self) -> None:
        """Stop the worker and anything still running under it (a lent worker goes back
        to its owner, who decides whether it serves again)."""
        if self._worker is not None:
            self._worker.end(wait=True)
        self._kill_running_calls()

    # -- calls
    def submit(self, request: dict, timeout: float) -> Future:
        """Send one request; the future resolves to its CallResult."""
        call_id = next(self._ids)
        keep = request.get("keep") is True
        call_dir = files.make_shared_folder(self.scratch / f"call-{call_id}")
        # cloudpickle: a sandbox step travels by value (protocol.sandbox_step)
        files.write_new(self.scratch, call_dir / REQUEST_FILE, cloudpickle.dumps(request))
        future: Future = Future()
        kills_before = self._oom_kills()
        with self._lock:
            worker = self._ensure_worker()
            self._pending[call_id] = _Pending(future, call_dir, worker, kills_before, keep)
            line = frame({"id": call_id, "dir": str(call_dir), "timeout": timeout, "keep": keep})
            for attempt in range(2):  # a worker that died a moment ago is replaced once
                try:
                    if worker.gone:
                        raise BrokenPipeError
                    worker.stdin.write(line)
                    worker.stdin.flush()
                    break
                except (BrokenPipeError, OSError):
                    worker.gone = True
                    if attempt == 0:
                        worker = self._ensure_worker()
                        self._pending[call_id].worker = worker
            else:
                self._pending.pop(call_id)
                future.set_result(CallResult(Status.CRASHED, call_dir, error=WORKER_DIED))
        return future

    def run(self, request: dict, timeout: float, before_retry: Callable[[], None] | None = None) -> CallResult:
        """Run one call. Calls share the worker, so when it dies every call in flight dies
        with it; those calls run again, one at a time, and only the one that kills the
        worker on its own keeps the crash. ``before_retry`` puts back what the call had
        to start from (its store), since the first run may have written half of its work."""
        with self._traffic.shared():
            result = self._run_once(request, timeout)
        if result.status == Status.CRASHED and result.error == WORKER_DIED:
            with self._traffic.alone():
                if before_retry is not None:
                    before_retry()
                result = self._run_once(request, timeout)
        return result

    def _run_once(self, request: dict, timeout: float) -> CallResult:
        future = self.submit(request, timeout)
        try:
            return future.result(timeout=timeout + WORKER_GRACE_SECONDS)
        except TimeoutError:
            self._restart()
            return CallResult(Status.TIMEOUT, Path(), error="the grading worker stopped answering")

    def release(self, call_id: int, timeout: float = 30.0) -> None:
        """End everything a kept call (``keep=True``) left running, and wait until it is gone."""
        released: Future = Future()
        with self._lock:
            worker = self._worker
            self._releasing[call_id] = released
            group = self._groups.pop(call_id, None)
        if group is not None:  # where the grader can see its pids, it ends it itself too
            kill_group(group[0])
        try:
            if worker is None or worker.gone:
                return  # the worker went, and what it kept with it
            worker.stdin.write(frame({"release": call_id}))
            worker.stdin.flush()
            released.result(timeout=timeout)
        except (OSError, TimeoutError):
            pass  # a worker that cannot answer is ended with all it kept when the sandbox closes
        finally:
            with self._lock:
                self._releasing.pop(call_id, None)

    def _restart(self) -> None:
        with self._lock:
            if self._worker is not None and self._worker.alive:
                self._worker.end()  # the next call starts another (if it may: ``replaceable``)

    # -- out of memory
    def _oom_kills(self) -> int:
        """How often the kernel has ended a process of this learner's for its memory limit
        (a grading host's cgroup counts it: it ends the largest process with SIGKILL)."""
        return oom_kills(self.memory_events) if self.memory_events else 0

    def _memory_note(self, out_of_memory: bool) -> str | None:
        if not out_of_memory:
            return None
        return (f"it ran out of memory (MemoryError): all of a learner's processes together may use "
                f"{self.memory_limit_mb} MB, and the kernel stopped the largest one")


@dataclass
class _Pending:
    """A call sent to the worker, not answered yet."""

    future: Future
    call_dir: Path
    worker: "WorkerHandle"  # the worker it was sent to
    oom_kills: int  # the learner's out-of-memory kills before it started
    keep: bool = False  # what it starts outlives it, until released (protocol.step_request)


def spawn_worker(scratch: Path, wrap: Sequence[str], limits: dict, template: Path | None,
                 long_lived: bool = False, zygote: bool = False) -> tuple[subprocess.Popen, int]:
    """Start a worker (in its own session, so its whole process group can be ended). A
    long-lived one (a grading host's) first moves its heap to huge pages: that costs
    a moment once, and makes each of its many forks cheaper. A zygote forks a worker per
    learner instead of serving calls (worker.py). Returns the process and the worker's own
    pid: bubblewrap's child when it wraps a zygote (learned from bubblewrap), else the process's."""
    info_read, info_write = os.pipe() if wrap and zygote else (None, None)
    info = ["--info-fd", str(info_write)] if info_write is not None else []
    try:
        with open(_open_log(scratch / "worker.log"), "ab") as log:
            process = subprocess.Popen(
                [*wrap[:1], *info, *wrap[1:], *isolated_python(), str(WORKER)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                cwd=scratch,
                env=clean_environment({
                    "GRADER_CHILD_LIMITS": json.dumps(limits),
                    "GRADER_STORE_TEMPLATE": str(template or ""),
                    "GRADER_HUGE_PAGES": "1" if long_lived else "",
                    "GRADER_ZYGOTE": "1" if zygote else "",
                    "GRADER_SECCOMP": "1" if limits and confine.can_filter_syscalls() else "",
                }),
                start_new_session=True,
                pass_fds=[info_write] if info else [],
            )
    finally:
        if info_write is not None:
            os.close(info_write)
    pid = (_sandboxed_pid(info_read) if info else None) or process.pid
    if info_read is not None:
        os.close(info_read)
    return process, pid


def _sandboxed_pid(info: int) -> int | None:
    """The pid of bubblewrap's child (the sandbox's pid 1), from what it writes to --info-fd."""
    text = b""
    while not text.rstrip().endswith(b"}"):
        chunk = os.read(info, 4096)
        if not chunk:
            break
        text += chunk
    try:
        return int(json.loads(text)["child-pid"])
    except (ValueError, KeyError, TypeError):
        return None


def _open_log(path: Path) -> int:
    """Learner code can write in the scratch folder: never follow a link it may have left
    in place of the log; remove it instead."""
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW
    try:
        return os.open(path, flags, 0o600)
    except OSError as error:
        if error.errno != errno.ELOOP:
            raise
        os.unlink(path)
        return os.open(path, flags, 0o600)


@dataclass
class LentWorker:
    """A warm worker that another process started and lends to this grading: a batch slot
    forks one for each learner. Only the borrower talks to it meanwhile; it cannot reap
    it, so it learns of its death from the closed pipe. The slot also says where this
    grading's scratch folder is (the one folder the worker's sandbox shows), how the
    learner is fenced in, and where the kernel counts the learner's out-of-memory kills."""

    stdin_fd: int
    stdout_fd: int
    scratch: Path | None = None
    template: Path | None = None
    sandbox: dict | None = None  # isolation.facts, for results.json
    memory_events: Path | None = None
    memory_limit_mb: int | None = None
    replaceable: bool = True  # whether the borrower may start a worker of its own should it die


@dataclass(eq=False)
class WorkerHandle:
    """The worker a Sandbox sends calls to: one it started (``process``: it may end it) or
    one lent by a grading host (its pipes only: its owner ends it, and the Sandbox learns
    of its death from the pipe closing). ``gone``: never send it another call."""

    stdin: BinaryIO
    stdout: BinaryIO
    process: subprocess.Popen | None = None  # None: lent
    replaceable: bool = True
    gone: bool = False

    @classmethod
    def owned(cls, process: subprocess.Popen) -> "WorkerHandle":
        return cls(process.stdin, process.stdout, process)

    @classmethod
    def lent(cls, lent: LentWorker) -> "WorkerHandle":
        return cls(os.fdopen(lent.stdin_fd, "wb", closefd=False), os.fdopen(lent.stdout_fd, "rb", closefd=False),
                   replaceable=lent.replaceable)

    @property
    def alive(self) -> bool:
        return not self.gone and (self.process is None or self.process.poll() is None)

    def end(self, wait: bool = False) -> None:
        """Stop it and all below it, if it is ours (a lent one is its owner's to end)."""
        if self.process is not None and self.process.poll() is None:
            kill_group(self.process.pid)
            if wait:
                self.process.wait()
        self.gone = True



def _read_result(root: Path, call_dir: Path, reply: dict, memory_note: str | None = None,
                 file_limit: int | None = None) -> CallResult:
    output = _tail(root, call_dir / OUTPUT_FILE)
    common = dict(root=root, seconds=reply["seconds"], max_rss_kb=reply["max_rss_kb"], output=output,
                  load_array=functools.cache(functools.partial(_load_array, root, call_dir)))
    if reply["timed_out"]:
        return CallResult(Status.TIMEOUT, call_dir, stuck_at=_stuck_at(root, call_dir), **common)
    if reply["exit"] != 0:
        return CallResult(Status.CRASHED, call_dir, error=memory_note or _describe_exit(reply, root, call_dir, file_limit), **common)
    try:
        data = json.loads(files.read_bytes(root, call_dir / RESULT_FILE, MAX_RESULT_BYTES))
        return CallResult(
            Status(data["status"]),
            call_dir,
            value=data.get("value"),
            type=data.get("type"),
            error=data.get("error"),
            active_run=data.get("active_run"),
            at_import=data.get("at_import") is True,
            warnings=[str(w)[:300] for w in data.get("warnings") or []][:5],
            ignored=[{k: str(i.get(k))[:300] for k in ("api", "uri")} for i in data.get("ignored") or [] if isinstance(i, dict)][:5],
            **common,
        )
    except OSError as error:
        if error.errno == errno.EFBIG:
            return CallResult(Status.BAD_RETURN, call_dir, error="the return value is far too large", **common)
        return CallResult(Status.CRASHED, call_dir, error=_describe_exit(reply, root, call_dir, file_limit), **common)
    except (ValueError, KeyError, TypeError):
        return CallResult(Status.CRASHED, call_dir, error="the call left an unreadable result", **common)


# Bounded and linear: the file is the learner's to forge (a 5000-digit line number, 64 KB of newlines).
_FRAME = re.compile(r'^[ \t]*File "(?P<file>[^"\n]{0,4096})", line (?P<line>\d{1,9}) in (?P<function>\S{1,200})',
                    re.MULTILINE)


def _stuck_at(root: Path, call_dir: Path) -> list[tuple[str, int, str]]:
    """(file name, line, function) of each frame the stopped call's stacks held, innermost
    first (faulthandler's dump, written by the call: read as untrusted text)."""
    try:
        text = files.read_bytes(root, call_dir / STACK_FILE, 64 * 1024).decode(errors="replace")
    except OSError:
        return []
    return [(Path(m["file"]).name, int(m["line"]), m["function"]) for m in _FRAME.finditer(text)][:200]


def _load_array(root: Path, call_dir: Path):
    """The .npy a call left, read without pickle and without following a link."""
    import numpy as np

    with files.open_regular(root, call_dir / ARRAY_FILE, MAX_ARRAY_FILE_BYTES) as handle:
        return np.load(handle, allow_pickle=False)


def _describe_exit(reply: dict, root: Path, call_dir: Path, file_limit: int | None) -> str:
    if reply["signal"] is not None:
        name = signal.Signals(reply["signal"]).name
        why = {
            "SIGKILL": " (killed: out of memory, or a limit was reached)",
            "SIGXFSZ": f" ({_too_large(root, call_dir, file_limit)})",
            "SIGXCPU": " (it used more CPU time than allowed)",
            "SIGSEGV": " (a segmentation fault)",
        }.get(name, "")
        return f"the process was ended by {name}{why}"
    return f"the process exited with code {reply['exit']} before returning (os._exit or a crash)"


def _too_large(root: Path, call_dir: Path, file_limit: int | None) -> str:
    """What reached the size limit of a file: what the call printed, or a file it wrote."""
    if not file_limit:
        return "it wrote a file larger than allowed"
    megabytes = f"{file_limit / 1024**2:g} MB"
    printed = files.size(root, call_dir / OUTPUT_FILE) or 0
    if printed >= file_limit:
        return f"it printed more than {megabytes}, the most a call may print"
    return f"it wrote a file larger than {megabytes}, the most a call may write"


def _tail(root: Path, path: Path) -> str:
    try:
        data, size = files.tail(root, path, OUTPUT_TAIL_BYTES)
    except OSError:
        return ""
    text = data.decode("utf-8", errors="replace")
    return ("…" + text) if size > OUTPUT_TAIL_BYTES else text
