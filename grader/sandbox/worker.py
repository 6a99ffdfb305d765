"""The learner side of the grader: a fork server that runs learner code.

It runs as ``python -I worker.py`` in a process apart from the checks. It imports MLflow
and scikit-learn once, then for every request forks a child that runs one call and exits:
a learner function, or a sandbox step (grader code the checks declare, such as loading a
model the learner logged), as protocol.py describes. Forking from a warm parent makes each
call cheap, and gives every call a clean copy of MLflow's global state (active runs,
autologging, tracking URI), so nothing leaks from one check into the next.

The child unpickles the request only once it runs with the learner's rights (so a forged
one could do nothing learner code cannot). Nothing crossing back to the grader is a pickle.

A grading host's worker (``GRADER_ZYGOTE=1``) serves no call itself: it is the warm parent
of one worker per learner, each in a sandbox of its own (confine.py).

This file knows nothing of the curriculum, and imports nothing from the grader package:
it and the modules beside it that it loads (protocol.py, mlflow_patches.py, speedups.py,
confine.py, warm.py) are the only grader code the sandbox sees.
"""
from __future__ import annotations

import ctypes
import faulthandler
import gc
import importlib
import importlib.util
import json
import os
import pickle
import resource
import select
import shutil
import signal
import sys
import tempfile
import time
import traceback

os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"


def _load_beside(name: str, folder: str = "."):
    """A module beside this file, or in ``folder`` relative to it (the sandbox binds them
    all: ``isolation.WORKER_SCRIPTS``), loaded by path: ``python -I`` does not put this
    folder on sys.path, and a learner's module of the same name must not find it there
    (it is known as ``_kit_<name>``)."""
    here = os.path.dirname(__file__)
    spec = importlib.util.spec_from_file_location(f"_kit_{name}", os.path.normpath(os.path.join(here, folder, f"{name}.py")))
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


_speedups = _load_beside("speedups")
_speedups.one_blas_thread()
_confine = _load_beside("confine")
_protocol = _load_beside("protocol")
_exits = _load_beside("exits", "../ground")
_patches = _load_beside("mlflow_patches")
_warm = _load_beside("warm")  # sandbox steps find it in sys.modules, as _kit_warm
Status, Exit = _protocol.Status, _exits.Exit

import logging  # noqa: E402
import warnings  # noqa: E402

warnings.filterwarnings("ignore")

os.environ["MPLBACKEND"] = "Agg"  # no display here: figures render to files

import mlflow  # noqa: E402
import mlflow.pyfunc  # noqa: E402
import mlflow.sklearn  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import sklearn.linear_model  # noqa: E402

# What learner code commonly imports, imported once here instead of in every call.
WARM_IMPORTS = (
    "mlflow.data", "mlflow.data.pandas_dataset", "mlflow.models", "mlflow.entities", "mlflow.projects",
    "sklearn.datasets", "sklearn.ensemble", "sklearn.metrics", "sklearn.model_selection",
    "sklearn.neighbors", "sklearn.pipeline", "sklearn.preprocessing", "sklearn.svm", "sklearn.tree",
    "matplotlib", "matplotlib.figure", "matplotlib.pyplot", "skops.io", "cloudpickle",
)
for _name in WARM_IMPORTS:
    try:
        importlib.import_module(_name)
    except ImportError:
        pass

_patches.skip_machine_probes()
_patches.speed_up_sqlite_stores()  # forked calls inherit what it saves
_patches.warm_project_scripts(_warm)

# The system calls learner code is refused (confine.py), built once; each call loads it.
SECCOMP = os.environ.pop("GRADER_SECCOMP", "") == "1"
_SYSCALLS = _confine.syscall_filter() if SECCOMP else None


# ------------------------------------------------------------------ inside the child
MAX_ERROR_CHARS = 64 * 1024  # of an exception's message; the grader shows a few KB of it
def _learner_traceback(exc: BaseException, src: str) -> str:
    """The exception and the learner's own frames, not MLflow's internals."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename.startswith(src)]
    lines = [
        f"  {os.path.basename(f.filename)}, line {f.lineno}, in {f.name}: {(f.line or '').strip()}"
        for f in frames[-3:]
    ]
    head = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    if len(head) > MAX_ERROR_CHARS:  # what comes back must fit in the result (MAX_RESULT_BYTES)
        head = f"{head[:MAX_ERROR_CHARS]} … (cut: {len(head):,} characters in all)"
    return "\n".join([head, *lines])


def _to_json(value, depth: int = 0):
    """Plain JSON data from a return value; anything else is described, never pickled."""
    if depth > 20:
        raise TypeError("nested too deeply")
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, dict):
        return {str(k): _to_json(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_json(v, depth + 1) for v in value]
    raise TypeError(f"a {type(value).__name__} is not plain data")


def _save_array(call_dir: str, name: str, value) -> None:
    array = np.asarray(value)
    if array.dtype == object:
        raise TypeError(f"the {name} hold Python objects, not numbers or strings")
    if array.nbytes > _protocol.MAX_ARRAY_BYTES:
        raise ValueError(f"the {name} are too large ({array.nbytes} bytes)")
    np.save(os.path.join(call_dir, _protocol.ARRAY_FILE), array, allow_pickle=False)


def _type_name(value) -> str:
    cls = type(value)
    return f"{cls.__module__}.{cls.__qualname__}"


def _send_back(value, call_dir: str, result: dict, returns: str) -> None:
    """What a call returned, as the request asked: plain data in the result, or an array."""
    if returns == "array":
        _save_array(call_dir, "values returned", value)
    else:
        result["value"] = _to_json(value)


class _MlflowDeprecations(logging.Handler):
    """What MLflow said was deprecated during a learner call, through ``warnings`` or its
    loggers (``artifact_path=`` is only logged): the grader passes it on as a note."""

    def __init__(self, result: dict):
        super().__init__(logging.WARNING)
        self.result, self.said = result, []

    def emit(self, record: logging.LogRecord) -> None:
        self.note(record.getMessage())  # only MLflow's loggers lead here

    def note(self, message: str) -> None:
        if "deprecat" in message.lower() and message not in self.said and len(self.said) < 5:
            self.said.append(message[:300])

    def __enter__(self):
        self._warnings = warnings.catch_warnings(record=True)
        self.caught = self._warnings.__enter__()
        warnings.simplefilter("always")
        logging.getLogger("mlflow").addHandler(self)
        return self

    def __exit__(self, *exc) -> None:
        logging.getLogger("mlflow").removeHandler(self)
        self._warnings.__exit__(*exc)
        for caught in self.caught:  # MLflow's @deprecated names the API: ``mlflow.…`` is deprecated
            if "mlflow" in str(caught.message):
                self.note(str(caught.message))
        if self.said:
            self.result["warnings"] = self.said


def _run(request: dict, call_dir: str) -> dict:
    result: dict = {"status": Status.OK, "value": None, "type": None, "active_run": None}
    src = request.get("src") or ""
    try:
        if request["kind"] == "step":
            value = request["step"](*request["args"], **request["kwargs"])
        else:
            result["at_import"] = True  # an exception from here on is the module's, not the function's
            module = importlib.import_module(request["module"])
            del result["at_import"]
            function = getattr(module, request["function"], None)
            if not callable(function):
                result["status"] = Status.MISSING
                return result
            with _MlflowDeprecations(result):
                value = function(*request["args"], **request["kwargs"])
            result["type"] = _type_name(value)
    except NotImplementedError:
        result["status"] = Status.NOT_IMPLEMENTED
        return result
    except SystemExit as exc:
        result.update(status=Status.ERROR, error=f"the code called sys.exit({exc.code!r})")
        return result
    except BaseException as exc:  # the learner's code may raise anything
        result.update(status=Status.ERROR, error=_learner_traceback(exc, src))
        return result
    finally:
        active = mlflow.active_run()
        if active is not None:
            result["active_run"] = active.info.run_id
        if _patches.IGNORED:
            result["ignored"] = _patches.IGNORED
    try:
        if request.get("then"):  # a sandbox step of the checks', applied to what came back
            step, *step_args = request["then"]
            value = step(value, *step_args)
        _send_back(value, call_dir, result, request.get("returns", "value"))
    except BaseException as exc:
        result.update(status=Status.BAD_RETURN, error=_learner_traceback(exc, src), type=_type_name(value))
    return result


def child_main(call_dir: str, limits: dict, confined: bool, user: tuple[int, int] | None, seconds: float) -> None:
    """Runs in the forked child (which has ``seconds`` before it is stopped): never returns."""
    code = Exit.OK
    try:
        os.setsid()  # its own process group, so everything it starts can be killed at once
        signal.signal(signal.SIGXFSZ, signal.SIG_DFL)  # Python ignores it; a file over the limit must end the call
        if confined:  # from here on, no more rights than the learner's code will have
            _confine.become_learner(user)
            if SECCOMP:
                if _SYSCALLS is None:
                    raise RuntimeError("the learner's seccomp filter could not be built")
                _SYSCALLS.load()
        else:
            _set_dumpable(True)  # the learner's process is an ordinary one; only the server is shielded
        # A call never outlives its worker (whose deadline would have ended it): set after the
        # uid changed, which clears it. What the call starts dies with its process group.
        _confine.die_with_parent()
        if user is not None:
            os.umask(0o002)  # the grader (the group's other member) may clean up after the call
        _apply_limits(limits)
        output = os.open(os.path.join(call_dir, _protocol.OUTPUT_FILE), os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
        os.dup2(output, 1)
        os.dup2(output, 2)
        os.close(output)
        os.closerange(3, 1 << 16)  # the protocol pipe and other calls' handles stay with the server
        _dump_stacks_before(seconds, call_dir)
        partial = os.path.join(call_dir, _protocol.RESULT_FILE + ".partial")
        reserved = _reserve(partial)
        with open(os.path.join(call_dir, _protocol.REQUEST_FILE), "rb") as handle:
            request = pickle.load(handle)
        for key in [k for k in os.environ if k.startswith("MLFLOW_")]:
            del os.environ[key]
        os.environ.update(request["env"])
        # Temporary files go to the call's own folder, not to a /tmp that later calls share.
        os.environ["TMPDIR"] = os.path.join(call_dir, _protocol.CALL_TMP)
        os.mkdir(os.environ["TMPDIR"])
        tempfile.tempdir = None
        os.chdir(request["cwd"])
        if request.get("src"):
            sys.path.insert(0, request["src"])
        if request["kind"] == "call":
            _patches.source_is(os.path.join(request["src"], f"{request['module']}.py"))
        _patches.pin_store()
        result = _run(request, call_dir)
        _write_reserved(reserved, partial, json.dumps(result).encode())
        os.replace(partial, os.path.join(call_dir, _protocol.RESULT_FILE))
    except BaseException:  # noqa: BLE001 - report, then leave without running atexit hooks
        traceback.print_exc()
        code = Exit.INTERNAL_ERROR
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _dump_stacks_before(seconds: float, call_dir: str) -> None:
    """Have faulthandler dump the call's stacks just before its deadline: a call stopped
    there can say which of the learner's lines it was stuck on. Its own C thread writes
    them, so this works even while the learner's code loops without returning to Python.
    (faulthandler holds the file open until then.)"""
    lead = min(_protocol.STACK_LEAD_SECONDS, seconds / 4)
    try:
        faulthandler.dump_traceback_later(seconds - lead, file=open(os.path.join(call_dir, _protocol.STACK_FILE), "w"))
    except (OSError, RuntimeError):  # no thread to spare under the learner's limits: it says less
        pass


def _reserve(path: str) -> int:
    """The result's file, with room for it taken before learner code runs: a call that
    fills its folder (bytes or files) still says how it ended."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
    try:
        os.posix_fallocate(fd, 0, _protocol.MAX_RESULT_BYTES)
    except OSError:
        pass  # a file system without it: the room is taken as it is written
    return fd


def _write_reserved(fd: int, path: str, data: bytes) -> None:
    try:
        os.pwrite(fd, data, 0)
        os.ftruncate(fd, len(data))
        os.close(fd)
    except OSError:  # learner code closed it: write it anew
        with open(path, "wb") as handle:
            handle.write(data)


def _set_dumpable(dumpable: bool) -> None:
    """A process that is not dumpable cannot be traced or have its memory written by its
    children: learner code cannot tamper with the server that outlives it."""
    PR_SET_DUMPABLE = 4
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, int(dumpable), 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _apply_limits(limits: dict) -> None:
    for name, value in limits.items():
        which = getattr(resource, f"RLIMIT_{name.upper()}")
        resource.setrlimit(which, (value, value))


# ------------------------------------------------------------------ stray processes
# Set by the bubblewrap sandbox only: there the worker's pid namespace holds nothing but
# the worker and learner processes, so anything outside a running call is a leftover.
# (A learner's worker in a grading host has a pid namespace of its own: it sweeps too.)
SWEEP_STRAYS = os.environ.pop("GRADER_SWEEP_STRAYS", "") == "1"


def _kill(pid: int, group: bool = False) -> None:
    """SIGKILL a process (or its group); one already gone, or no longer ours, is fine.
    (The grader's side has its own, grader/ground/processes.py: this file imports none of it.)"""
    try:
        (os.killpg if group else os.kill)(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _processes() -> dict[int, tuple[bytes, int, int]]:
    """Every process this worker can see: pid -> (state, parent, session)."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                fields = handle.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue  # already gone
        found[int(entry)] = (fields[0], int(fields[1]), int(fields[3]))
    return found


def sweep_strays(running_calls: set[int], kept_sessions: set[int] = frozenset()) -> None:
    """Kill processes a finished call left behind, even those that escaped its process
    group with setsid. A running call's processes are its descendants, whatever their
    session (``mlflow.projects.run(synchronous=False)`` starts ``mlflow run`` in a session
    of its own, and waits for it); what a kept call left keeps its session. Strays whose
    parents died became this worker's children (it is the namespace's pid 1, or a
    subreaper): what is dead of them is reaped."""
    processes = _processes()
    spared = set(running_calls) | {1, os.getpid()}

    def in_a_running_call(pid: int) -> bool:
        seen = []
        while pid in processes and pid not in spared and pid not in seen:
            seen.append(pid)
            pid = processes[pid][1]
        if pid in running_calls or (pid in spared and pid not in (1, os.getpid())):
            spared.update(seen)
            return True
        return False

    keep_sessions = set(running_calls) | set(kept_sessions) | {os.getsid(0)}
    for pid, (state, parent, session) in processes.items():
        if pid in (1, os.getpid()):
            continue
        if session not in keep_sessions and not in_a_running_call(pid):
            _kill(pid)
        if state == b"Z" and parent == os.getpid() and pid not in running_calls:
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass


# ------------------------------------------------------------------ the fork server
class Worker:
    """Serves calls: a child forked per request, several at once, each ended by its deadline.

    A call asked to ``keep`` leaves what it started running once it returns (a server a
    sandbox step started, for later calls to use): its session is spared, by the call's
    end and by the sweep, until the grader asks to ``release`` it or the worker ends."""

    def __init__(self, protocol_out: int, default_limits: dict, *, sweep: bool = SWEEP_STRAYS,
                 user: tuple[int, int] | None = None, banner: dict | None = None):
        self.out = protocol_out
        self.default_limits = default_limits
        self.sweep = sweep
        self.confined = bool(default_limits)  # limits mean learner code is not trusted
        self.user = user
        self.banner = banner or {}
        self.running: dict[int, dict] = {}  # pidfd -> call
        self.kept: dict[int, int] = {}  # call id -> the session (and process group) it left running

    def reply(self, message: dict) -> None:
        os.write(self.out, _protocol.frame(message))

    def start(self, request: dict) -> None:
        limits = {**self.default_limits, **request.get("limits", {})}
        seconds = float(request["timeout"])  # the grader always says (protocol.py, step 1)
        pid = os.fork()
        if pid == 0:
            child_main(request["dir"], limits, self.confined, self.user, seconds)
        self.running[os.pidfd_open(pid)] = {
            "id": request["id"],
            "pid": pid,
            "started": time.monotonic(),
            "deadline": time.monotonic() + seconds,
            "keep": request.get("keep") is True,
        }
        # The grader learns the call's process group, to end it even if this server dies.
        self.reply({"started": request["id"], "pid": pid})

    def finish(self, pidfd: int, timed_out: bool = False) -> None:
        call = self.running.pop(pidfd)
        keep = call["keep"] and not timed_out
        if not keep:
            _kill(call["pid"], group=True)  # whatever the call started dies with it
        _, status, usage = os.wait4(call["pid"], 0)
        os.close(pidfd)
        if keep and os.WIFEXITED(status) and os.WEXITSTATUS(status) == Exit.OK:
            self.kept[call["id"]] = call["pid"]
        elif keep:
            _kill(call["pid"], group=True)  # a kept call that failed keeps nothing
        self._sweep()
        self.reply({
            "id": call["id"],
            "exit": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
            "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
            "timed_out": timed_out,
            "seconds": round(time.monotonic() - call["started"], 3),
            "max_rss_kb": usage.ru_maxrss,
        })

    def _sweep(self) -> None:
        if self.sweep:
            sweep_strays({c["pid"] for c in self.running.values()}, set(self.kept.values()))

    def release(self, call_id: int, say: bool = True) -> None:
        """End what a kept call left running."""
        session = self.kept.pop(call_id, None)
        if session is not None:
            _kill(session, group=True)
            self._sweep()
        if say:
            self.reply({"released": call_id})

    def serve(self, requests) -> None:
        self.reply({"ready": True, "pid": os.getpid(), **self.banner})
        stdin = requests if isinstance(requests, int) else requests.fileno()
        reader = _protocol.LineReader(stdin)
        while reader.open or self.running:
            now = time.monotonic()
            wait = min([c["deadline"] for c in self.running.values()], default=now + 3600) - now
            watched = ([stdin] if reader.open else []) + list(self.running)
            ready, _, _ = select.select(watched, [], [], max(wait, 0))
            for fd in ready:
                if fd == stdin:
                    reader.feed()
                    for request in reader.messages():
                        self.release(request["release"]) if "release" in request else self.start(request)
                else:
                    self.finish(fd)
            now = time.monotonic()
            for pidfd in [fd for fd, c in self.running.items() if c["deadline"] <= now]:
                self.finish(pidfd, timed_out=True)
        for call_id in list(self.kept):  # the grader is gone: nothing it kept outlives the worker
            self.release(call_id, say=False)


# ------------------------------------------------------------------ the zygote
class Zygote:
    """The warm parent of one worker per learner (a grading host's): it runs no learner
    code, and no learner code can see it. One learner at a time: while that learner's
    worker serves, the zygote only waits for it to end."""

    def __init__(self, protocol_out: int, default_limits: dict):
        self.out = protocol_out
        self.default_limits = default_limits

    def reply(self, message: dict) -> None:
        os.write(self.out, _protocol.frame(message))

    def serve(self, stdin: int) -> None:
        self.reply({"ready": True, "zygote": True, "pid": os.getpid()})
        reader = _protocol.LineReader(stdin)  # skips the end of a request the last learner's worker did not live to read
        while reader.feed():
            for message in reader.messages():
                if isinstance(message.get("learner"), dict):
                    self.reply({"ended": message["learner"]["token"], "status": self.run_learner(message["learner"], stdin)})

    def run_learner(self, spec: dict, stdin: int) -> int:
        """Fork the learner's sandbox; wait until it, and all it left, are gone (its worker
        may outlive it a moment: as the sandbox's pid 1, the zygote inherits it)."""
        sandbox = os.fork()
        if sandbox == 0:
            self._learner_main(spec, stdin)
        status = -1
        while True:
            try:
                pid, code = os.waitpid(-1, 0)
            except ChildProcessError:
                return status
            if pid == sandbox:
                status = code

    def _learner_main(self, spec: dict, stdin: int) -> None:
        """The learner's sandbox: new namespaces and folders, then its worker as pid 1."""
        code = Exit.INTERNAL_ERROR
        try:
            _confine.die_with_parent()
            if spec["namespaces"]:
                _confine.unshare_for_learner()
                _confine.fresh_folders(spec["scratch"], spec["tmp_bytes"], spec["shm_bytes"])
            os.chdir("/")
            worker = os.fork()
            if worker == 0:
                self._worker_main(spec, stdin)
            _, status = os.waitpid(worker, 0)
            code = os.waitstatus_to_exitcode(status) & 0xFF
        except BaseException:  # noqa: BLE001 - report, then leave
            traceback.print_exc()
        finally:
            os._exit(code)

    def _worker_main(self, spec: dict, stdin: int) -> None:
        code = Exit.INTERNAL_ERROR
        try:
            _confine.die_with_parent()
            banner = {"learner": spec["token"]}
            if spec["namespaces"]:
                try:
                    _confine.fresh_proc()
                except OSError:  # nested user namespaces may refuse it: the learner then sees its slot's
                    banner["note"] = "/proc shows the slot's processes (a fresh one was refused), not only the learner's"
            user = tuple(spec["user"]) if spec.get("user") else None
            if self.default_limits:  # a sandbox: keep only what starting and ending calls needs
                _confine.keep_capabilities(_confine.WORKER_CAPABILITIES if user else ())
            os.environ.update(spec.get("env", {}))
            Worker(self.out, self.default_limits, sweep=spec["namespaces"] and "note" not in banner, user=user,
                   banner=banner).serve(stdin)
            code = Exit.OK
        except BaseException:  # noqa: BLE001
            traceback.print_exc()
        finally:
            os._exit(code)


def warm_up(template: str | None) -> None:
    """Do once, before serving, what every call would otherwise pay for on its first use:
    opening a SQLite store (module imports, alembic's revision map), logging and loading a
    model, registering it. Forked children inherit all of it."""
    import threading

    from mlflow.models import infer_signature

    if not template:
        return
    folder = tempfile.mkdtemp(prefix="warm-up-", dir=os.getcwd())  # the scratch: it goes with the session
    try:
        shutil.copyfile(template, os.path.join(folder, "mlflow.db"))
        uri = f"sqlite:///{folder}/mlflow.db"
        os.environ.update(MLFLOW_TRACKING_URI=uri, MLFLOW_REGISTRY_URI=uri)
        client = mlflow.MlflowClient()
        experiment = client.create_experiment("warm-up", artifact_location=os.path.join(folder, "mlruns"))
        X = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "b": [1.0, 0.0, 1.0, 0.0]})
        model = sklearn.linear_model.LogisticRegression().fit(X, [0, 1, 0, 1])
        with mlflow.start_run(experiment_id=experiment) as run:
            mlflow.log_metrics({"m": 1.0})
            signature = infer_signature(X, model.predict(X))
            info = mlflow.sklearn.log_model(model, name="model", signature=signature, serialization_format="cloudpickle")
        version = mlflow.register_model(f"runs:/{run.info.run_id}/model", "warm-up")
        client.set_registered_model_alias("warm-up", "warm", version.version)
        mlflow.pyfunc.load_model(info.model_uri).predict(X)
        mlflow.search_runs([experiment])
    finally:
        for key in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
            os.environ.pop(key, None)
        shutil.rmtree(folder, ignore_errors=True)
    extra_threads = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
    if extra_threads:  # forking with live threads could deadlock a child
        print(f"warm-up left threads running: {extra_threads}", file=sys.stderr)


def main() -> None:
    sys.dont_write_bytecode = True
    try:
        warm_up(os.environ.pop("GRADER_STORE_TEMPLATE", None))
    except Exception:  # noqa: BLE001 - a cold worker is slower, not wrong
        traceback.print_exc()
    # Everything imported so far lives as long as the worker: keep it out of the garbage
    # collector's way, so a child's collections neither scan nor copy those pages; and, in
    # a worker that will fork for learner after learner, on huge pages (cheaper forks).
    gc.freeze()
    if os.environ.pop("GRADER_HUGE_PAGES", "") == "1":
        _speedups.collapse_into_huge_pages()
    _set_dumpable(False)
    protocol_out = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # stray prints must never corrupt the protocol
    limits = json.loads(os.environ.pop("GRADER_CHILD_LIMITS", "{}"))
    if os.environ.pop("GRADER_ZYGOTE", "") == "1":
        Zygote(protocol_out, limits).serve(sys.stdin.fileno())
    else:
        Worker(protocol_out, limits).serve(sys.stdin)


if __name__ == "__main__":
    main()
