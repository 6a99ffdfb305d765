"""The sandbox's wire protocol: what the grader asks of the worker, and what comes back.

Both sides read this file. The grader imports it (``grader/core`` imports nothing else
from ``grader/sandbox``: it depends on what crosses the wall, not on the processes that
carry it); the worker loads it beside itself, since the sandbox holds no grader package.
So it imports nothing from the grader, and nothing heavy at the top.

One call, in order:

1. The grader makes a fresh call folder and writes ``REQUEST_FILE`` into it: a dict made
   by ``call_request`` (run a learner function) or ``step_request`` (run a sandbox step,
   grader code shipped by value), pickled with cloudpickle. It sends the worker one JSON
   line: ``{"id": 7, "dir": "<call folder>", "timeout": 60}``.
2. The worker forks a child and says ``{"started": 7, "pid": <the child>}`` (the child's
   pid is its process group: the grader can end it even if the worker dies).
3. The child takes the learner's rights, and only then reads the request. It writes what
   it printed to ``OUTPUT_FILE``, the outcome to ``RESULT_FILE`` (JSON: a ``Status``, the
   value as plain data, ...), an array to ``ARRAY_FILE`` (``.npy``, no pickle), and exits.
   Shortly before its deadline it dumps its stacks to ``STACK_FILE`` (faulthandler): a call
   stopped there can say which line of the learner's it was stuck on.
4. The worker says ``{"id": 7, "exit", "signal", "timed_out", "seconds", "max_rss_kb"}``.
5. The grader reads those files, never following a link and never unpickling, into a
   ``CallResult``.

Every message on the pipes (the grader's requests, the worker's and the zygote's replies,
and a grading host's) is one JSON object on a line of its own, written by ``frame`` and read
by ``LineReader``, which skips what is not one (the end of a line a dead writer cut short).

A step asked to keep (``"keep": true`` on its line) leaves what it started running once
it returns; ``{"release": 7}`` ends that, and the worker says ``{"released": 7}``.

The worker's other lines: ``{"ready": true, "pid"}`` once it serves (a zygote adds
``"zygote": true``); a zygote, asked ``{"learner": {...}}``, forks that learner's worker,
whose banner carries ``"learner": <token>``, and says ``{"ended": <token>, "status"}`` once
it is gone.
"""
from __future__ import annotations

import json
import os
import select
import sys
import time
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol

DEFAULT_CALL_TIMEOUT = 90.0  # seconds one learner call may take, unless told otherwise
ISOLATION_MODES = ("none", "limits", "bwrap")  # how learner code is fenced in: grader/sandbox/isolation.py
WORKER_DIED = "the grading worker died"

# The files of one call folder.
REQUEST_FILE = "request.pkl"
OUTPUT_FILE = "output.txt"
RESULT_FILE = "result.json"
ARRAY_FILE = "value.npy"
STACK_FILE = "stack.txt"  # the call's Python stacks, dumped just before its deadline
STACK_LEAD_SECONDS = 0.5  # how long before the deadline they are dumped
CALL_TMP = "tmp"  # the call's own TMPDIR


class Status(StrEnum):
    """How one call ended. The child reports the first five; the grader adds the rest."""

    OK = "ok"
    NOT_IMPLEMENTED = "not_implemented"  # the function still raises NotImplementedError
    MISSING = "missing"  # the module has no such function
    ERROR = "error"  # it raised (``at_import``: while its module was being imported)
    BAD_RETURN = "bad_return"  # what it returned cannot come back as plain data or an array
    TIMEOUT = "timeout"
    CRASHED = "crashed"  # the process died (a signal, os._exit, the worker under it)


# ------------------------------------------------------------------ lines on the pipes
def frame(message: dict) -> bytes:
    """A message as it crosses a pipe, either way: a JSON object on a line of its own. A
    newline first: the end of a line a dead writer left cut short then stands alone, and
    ``LineReader`` skips it."""
    return b"\n" + json.dumps(message).encode() + b"\n"


class LineReader:
    """The messages arriving on a pipe (a file descriptor), in order: each line a JSON
    object; blank lines, and lines that are not one, are skipped."""

    MAX_LINE = 1 << 20  # a message is a few hundred bytes; a longer line is not one

    def __init__(self, fd: int):
        self.fd = fd
        self.buffer = b""
        self.open = True

    def feed(self) -> bool:
        """Read what the pipe holds now (blocking until something or its end); False at its end."""
        chunk = os.read(self.fd, 65536)
        self.open = bool(chunk)
        self.buffer += chunk
        if b"\n" not in self.buffer and len(self.buffer) > self.MAX_LINE:
            self.buffer = b""
        return self.open

    def messages(self) -> Iterator[dict]:
        """The whole messages read so far."""
        while b"\n" in self.buffer:
            line, self.buffer = self.buffer.split(b"\n", 1)
            if not line.strip():
                continue
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if isinstance(message, dict):
                yield message

    def __iter__(self) -> Iterator[dict]:
        """Every message, until the pipe ends."""
        while True:
            yield from self.messages()
            if not self.feed():
                yield from self.messages()
                return

    def next(self, seconds: float) -> dict | None:
        """The next message within ``seconds``; None if the pipe ends or none comes in time."""
        deadline = time.monotonic() + seconds
        while True:
            for message in self.messages():
                return message
            if not self.open:
                return None
            ready, _, _ = select.select([self.fd], [], [], max(deadline - time.monotonic(), 0))
            if not ready:
                return None
            self.feed()


# ------------------------------------------------------------------ requests
def call_request(module: str, function: str, args: tuple, kwargs: dict, *, env: dict, cwd: str, src: str,
                 then: tuple | None = None, returns: str = "value") -> dict:
    """Run the learner's ``module.function(*args, **kwargs)``, with ``src`` first on sys.path.
    ``then``: ``(step, *step_args)``, applied in the child to what the function returned
    (``step(value, *step_args)``). ``returns``: how the (final) value comes back, "value"
    (plain data, in the result) or "array" (``ARRAY_FILE``)."""
    return {"kind": "call", "module": module, "function": function, "args": args, "kwargs": kwargs,
            "env": env, "cwd": cwd, "src": src, "then": then, "returns": returns}


def step_request(step: Callable, args: tuple, kwargs: dict, *, env: dict, cwd: str, src: str,
                 returns: str = "value", keep: bool = False) -> dict:
    """Run a sandbox step, ``step(*args, **kwargs)``: grader code that must run where
    learner code does (see ``sandbox_step``). ``keep``: what the step starts (a server)
    keeps running once it returns, for later calls in the same sandbox (which share its
    loopback), until the grader releases it (the worker ends it at the latest when it ends)."""
    return {"kind": "step", "step": step, "args": args, "kwargs": kwargs,
            "env": env, "cwd": cwd, "src": src, "then": None, "returns": returns, "keep": keep}


def sandbox_step(function: Callable) -> Callable:
    """Declare grader code that runs in the learner's sandbox, next to the checks that use
    it: what touches files learner code made (loading a model it logged runs code the
    learner controls), or sets up a store the way only MLflow's own calls can.

    The sandbox holds no grader package, so a step travels in the request by value
    (cloudpickle, with every function and constant of its module it uses): it may use
    MLflow, scikit-learn, NumPy and pandas, and what its own module defines, but nothing
    it would have to import from ``grader``."""
    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[function.__module__])
    return function


# ------------------------------------------------------------------ results
@dataclass
class CallResult:
    """What one call (a learner function, or a sandbox step) left behind."""

    status: Status
    call_dir: Path
    root: Path | None = None  # the folder shared with learner code that holds call_dir
    value: Any = None
    type: str | None = None  # the type of what the learner's function returned
    error: str | None = None
    active_run: str | None = None  # an MLflow run still active when the function returned
    seconds: float = 0.0
    max_rss_kb: int = 0
    output: str = ""
    at_import: bool = False  # it failed while importing the learner's module
    stuck_at: list = field(default_factory=list)  # a stopped call's frames in learner files: (file, line, function)
    warnings: list = field(default_factory=list)  # deprecations MLflow reported during the call
    ignored: list = field(default_factory=list)  # {"api", "uri"}: a set_tracking_uri of the learner's, ignored
    call_id: int | None = None  # the worker's id of the call (a kept call is released by it)
    load_array: Callable[[], Any] | None = field(default=None, repr=False)  # set by whoever read the call

    def array(self):
        """The array the call returned (``returns="array"``), as a NumPy array."""
        if self.load_array is None:
            raise ValueError(f"the call left no array ({self.status})")
        return self.load_array()


MAX_RESULT_BYTES = 1024 * 1024
MAX_ARRAY_BYTES = 64 * 1024 * 1024  # the child refuses to save a larger array
MAX_ARRAY_FILE_BYTES = MAX_ARRAY_BYTES + 1024 * 1024  # and the .npy header on top


class Runner(Protocol):
    """What a grading session needs of the sandbox (grader/sandbox/client.py's Sandbox)."""

    template: Path | None  # the migrated store template its worker warmed up with
    max_rss_kb: int  # the largest peak memory of any call so far

    def run(self, request: dict, timeout: float, before_retry: Callable[[], None] | None = None) -> CallResult: ...

    def release(self, call_id: int) -> None: ...  # end what a kept call left running

    def close(self) -> None: ...
