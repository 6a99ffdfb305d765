"""New Pythons of this environment, started warm: a program that would import MLflow again
in a new interpreter runs instead in a fork of this call, which has it imported already.

Two places start one while grading: the command a learner returns for serving a model
(``mlflow models serve``: MLflow's CLI, which then ``exec``s uvicorn, importing MLflow a
second time) and an MLflow Project's entry point (``python train.py ...``, which imports
MLflow to log its run). Each cost 1.5 to 3 s of CPU, and 5 to 14 s of waiting on a busy
machine; a fork takes a fraction of a second.

Only a program of this very environment is run so: this Python, or a script in the
folder beside it (``bin/mlflow``, ``bin/uvicorn``), found on ``PATH`` as the command
would find it. Any other program starts as it is. The fork runs the program as the new
Python would: its arguments, environment and working folder, MLflow's state as a new
process has it (no active run or experiment, no tracking URI set in code), its exit
status from ``sys.exit`` or an uncaught exception. What stays from this call (modules it
imported, autologging it turned on) is what learner code itself left in its own process.

The worker loads this file beside itself (``_kit_warm``); sandbox steps reach it there.
It imports nothing from the grader.
"""
from __future__ import annotations

import ctypes
import os
import shlex
import shutil
import sys

PR_SET_NAME = 15
# Words bash would read other than as plain words: a command holding one runs in bash.
SHELL_SYNTAX = set("$`;&|<>(){}*?[]~!#\\\"\n")


class Forked:
    """A child forked from this process, with what callers use of ``subprocess.Popen``."""

    def __init__(self, pid: int):
        self.pid, self.returncode = pid, None

    def poll(self) -> int | None:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self) -> int:
        if self.returncode is None:
            self.returncode = os.waitstatus_to_exitcode(os.waitpid(self.pid, 0)[1])
        return self.returncode

    def kill(self) -> None:
        if self.poll() is None:
            os.kill(self.pid, 9)

    def terminate(self) -> None:
        if self.poll() is None:
            os.kill(self.pid, 15)


def this_environments(program: str, path: str | None = None) -> str | None:
    """The file ``program`` names (looked up on ``path``, or PATH), if it is this Python or a
    program beside it; None otherwise. Compared as folders, not as the files links lead to: a
    virtualenv's python links to another environment's."""
    found = shutil.which(program, path=path)
    return os.path.abspath(found) if found is not None and _beside_this_python(found) else None


def _beside_this_python(path: str) -> bool:
    return os.path.dirname(os.path.abspath(path)) == os.path.dirname(os.path.abspath(sys.executable))


def is_python(path: str) -> bool:
    return os.path.basename(path).startswith("python")


def arguments_of(argv: list[str], path: str | None = None) -> list[str] | None:
    """What ``python`` would be given to run the command ``argv`` (a list of words, found
    on ``path``) in this environment: for this Python, the rest (a script or ``-m module``);
    for a Python script beside it (a console script: ``mlflow``, ``uvicorn``), the script
    and the rest. None for anything else: that runs as it is."""
    program = this_environments(argv[0], path) if argv else None
    if program is None:
        return None
    if is_python(program):
        rest = list(argv[1:])
        return rest if rest and (rest[0] == "-m" and len(rest) > 1 or not rest[0].startswith("-")) else None
    return [program, *argv[1:]] if _python_script(program) else None


def _python_script(path: str) -> bool:
    """Whether ``path`` starts with ``#!`` naming a Python of this environment."""
    try:
        with open(path, "rb") as script:
            first = script.readline(4096)
    except OSError:
        return False
    interpreter = first[2:].strip().decode(errors="replace")
    return first.startswith(b"#!") and is_python(interpreter) and _beside_this_python(interpreter)


def shell_words(command: str) -> list[str] | None:
    """The words of a shell command line, if bash would read nothing else in it."""
    if SHELL_SYNTAX & set(command):
        return None
    try:
        return shlex.split(command)
    except ValueError:
        return None


def start(arguments: list[str], *, env: dict | None = None, cwd: str | None = None, output: int | None = None) -> Forked:
    """Run ``python ARGUMENTS`` (``-m module ...`` or ``script ...``) in a child forked from
    this process; ``output``: the descriptor its stdout and stderr go to (else this one's)."""
    for stream in (sys.stdout, sys.stderr):
        stream.flush()  # or the child would write this process's buffered text again
    pid = os.fork()
    if pid:
        return Forked(pid)
    code = 1
    try:
        # (Not faulthandler.cancel_dump_traceback_later(): it would wait forever for the
        # call's watchdog thread, which a forked child does not have.)
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
        if output is not None:
            os.dup2(output, 1)
            os.dup2(output, 2)
        sys.stdout = open(1, "w", buffering=1, closefd=False)
        sys.stderr = open(2, "w", buffering=1, closefd=False)
        if env is not None:
            os.environ.clear()
            os.environ.update(env)
        if cwd is not None:
            os.chdir(cwd)
        _as_a_new_process()
        code = _run(arguments)
    except BaseException:  # noqa: BLE001 - the program's own failure: said on its stderr
        import traceback

        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        os._exit(code)


def _run(arguments: list[str]) -> int:
    """Run the program to its end as ``python`` would, here; its exit status."""
    import runpy

    _name_process(os.path.basename(arguments[1] if arguments[0] == "-m" else arguments[0]))
    _exec_in_place()
    try:
        if arguments[0] == "-m":
            sys.argv = [arguments[1], *arguments[2:]]
            runpy.run_module(arguments[1], run_name="__main__", alter_sys=True)
        else:
            sys.argv = list(arguments)
            sys.path[0] = os.path.dirname(os.path.abspath(arguments[0]))  # as python puts it first
            runpy.run_path(arguments[0], run_name="__main__")
        code = 0
    except SystemExit as ended:
        code = _exit_status(ended.code)
    _end_active_run()
    return code


def _exit_status(code) -> int:
    """``sys.exit(code)``'s status, as the interpreter gives it (a message: printed, 1)."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


def _as_a_new_process() -> None:
    """MLflow's state as a new Python has it: what the call set in code does not carry over
    (its thread-local active runs reset themselves in a child of another pid)."""
    import mlflow.tracking._model_registry.utils as registry
    import mlflow.tracking._tracking_service.utils as tracking
    import mlflow.tracking.fluent as fluent

    fluent._active_experiment_id = None
    tracking._tracking_uri = None
    registry._registry_uri = None


def _end_active_run() -> None:
    """What MLflow's exit hook does at the end of a new Python: end a run left active."""
    import mlflow

    try:
        if mlflow.active_run() is not None:
            mlflow.end_run()
    except Exception:  # noqa: BLE001 - as the hook, which suppresses it
        pass


def _exec_in_place() -> None:
    """A program that ``exec``s another of this environment through bash (MLflow's scoring
    server: ``bash -c "exec uvicorn ..."``) runs it here instead, in this same process, as
    the ``exec`` would have replaced it; any other command starts as it would have."""
    import subprocess

    popen = subprocess.Popen

    def start_or_exec(args, *more, env=None, cwd=None, **options):
        script = _exec_of(args, (env or os.environ).get("PATH"))
        if script is None:
            return popen(args, *more, env=env, cwd=cwd, **options)
        if env is not None:
            os.environ.clear()
            os.environ.update(env)
        if cwd is not None:
            os.chdir(cwd)
        raise SystemExit(_run(script))

    subprocess.Popen = start_or_exec


def _exec_of(args, path: str | None) -> list[str] | None:
    """What ``python`` would be given, if ``args`` is ``bash -c "exec PROGRAM ..."`` and
    PROGRAM one of this environment's Python programs (a console script such as uvicorn)."""
    if not (isinstance(args, list) and len(args) == 3 and args[:2] == ["bash", "-c"] and isinstance(args[2], str)):
        return None
    words = shell_words(args[2])
    return arguments_of(words[1:], path) if words and words[0] == "exec" else None


def _name_process(name: str) -> None:
    """The name ``ps`` shows (/proc/<pid>/comm): what this fork now runs (a script's file
    name, a module's name), as a new process's command line would show it."""
    try:
        ctypes.CDLL(None).prctl(PR_SET_NAME, name.encode()[:15], 0, 0, 0)
    except (OSError, AttributeError):
        pass
