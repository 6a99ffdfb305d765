"""Shared helpers of the kit's own suite: grading a folder exactly as a learner would, or as
a batch slot does."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from grader.core import catalogue
from grader.core.options import grading_args
from grader.ground.processes import descendants, proc_stat
from grader.host.client import HostPool
from grader.sandbox.protocol import DEFAULT_CALL_TIMEOUT

REPO = Path(__file__).resolve().parent.parent
SUBMISSIONS = Path(__file__).resolve().parent / "submissions"
SEED = 4242
# The kit's size, as the board prints it ("8/19 done · 53/100 points"): from the catalogue.
FUNCTIONS = len(catalogue.load().exercises)
TOTAL = catalogue.load().points
# Each function's points, by `module.function`: what a row of a perfect submission holds.
FULL_MARKS = {e.key: e.points for e in catalogue.load().exercises}


@dataclass
class Graded:
    """One `pytest grader` run: its exit code, what it printed, and its results.json."""

    code: int
    output: str
    results: dict

    @property
    def exercises(self) -> dict:
        return self.results["extra_data"]["exercises"]

    def scores(self) -> dict[str, int]:
        return {key: e["score"] for key, e in self.exercises.items()}

    def statuses(self) -> dict[str, str]:
        return {key: e["status"] for key, e in self.exercises.items()}


def outputs(graded: Graded, name: str) -> str:
    """What a learner reads of a function's checks (``module.function``) or of one
    (``module.function: check``) in results.json."""
    return "\n".join(t["output"] for t in graded.results["tests"] if t["name"] == name or t["name"].startswith(f"{name}:"))


def grader_args(target: Path | None, *args: str, seed: int, out: Path) -> list[str]:
    """`pytest` arguments that grade ``target`` (None: exercises/) into results.json ``out``."""
    return [*grading_args(target, seed=seed, results=out, quiet=False), *args]


def grade(target: Path | None, *args: str, seed: int = SEED, cwd: Path = REPO, env: dict | None = None,
          out: Path) -> Graded:
    """Run `python -m pytest grader` in a subprocess, as a learner or CI would."""
    command = [sys.executable, "-m", "pytest", *grader_args(target, *args, seed=seed, out=out)]
    completed = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=900,
                               env={**os.environ, **(env or {})})
    return Graded(completed.returncode, completed.stdout + completed.stderr, _results(out))


def _results(out: Path) -> dict:
    return json.loads(out.read_text()) if out.exists() else {}


def grade_many(jobs: list[tuple], tmp: Path, slots: int = 1) -> list[Graded]:
    """Grade several (target, *args) jobs the way batch grading and notebooks do: through a
    warm grading host (grader/host/), which forks a scoring process per grading. One host
    at a time, as the batch does on two cores: a grading keeps both busy. `grade` is the
    learner's own `pytest grader`."""
    def run(hosts: HostPool, index_job) -> Graded:
        index, (target, *args) = index_job
        out, log = tmp / f"results-{index}.json", tmp / f"output-{index}.txt"
        reply = hosts.grade(grader_args(target, *args, seed=SEED, out=out), cwd=REPO, log=log, timeout=900)
        return Graded(reply.exit, log.read_text() if log.exists() else "", _results(out))

    with HostPool(tmp, min(slots, len(jobs)), "none", DEFAULT_CALL_TIMEOUT) as hosts, \
            ThreadPoolExecutor(len(hosts.hosts)) as pool:
        return list(pool.map(lambda job: run(hosts, job), enumerate(jobs)))


def batch_command(submissions: Path, out: Path, *args: str, python_options: Sequence[str] = ()) -> list[str]:
    """The instructor's `python -m grader batch SUBMISSIONS --out OUT ARGS` (``python_options``:
    Python's own, before `-m`), to run from the kit's folder: every batch test's command."""
    return [sys.executable, *python_options, "-m", "grader", "batch", str(submissions), "--out", str(out), *args]


def grade_batch(submissions: Path, out: Path, *args: str, env: dict | None = None, timeout: float = 600,
                prefix: Sequence[str] = (), python_options: Sequence[str] = ()) -> subprocess.CompletedProcess:
    """Run `batch_command` from the kit's folder to its end, what it prints captured;
    ``prefix`` runs it under another command (`unshare ...`), ``env`` adds to this one's."""
    return subprocess.run([*prefix, *batch_command(submissions, out, *args, python_options=python_options)],
                          cwd=REPO, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})})


def plant(snippet: Path, destination: Path, fill: dict[str, str]) -> None:
    """A copy of the stubs (or solutions) with a snippet (tests/submissions/hostile/README.md)
    appended to one module."""
    text = snippet.read_text()
    header = dict(line[2:].split(": ", 1) for line in text.splitlines() if line.startswith(("# base:", "# into:")))
    shutil.copytree(REPO / header.get("base", "exercises").strip(), destination,
                    ignore=shutil.ignore_patterns("__pycache__"))
    for placeholder, value in fill.items():
        text = text.replace(placeholder, value)
    with open(destination / f"{header['into'].strip()}.py", "a") as module:
        module.write("\n\n" + text)


def with_functions(folder: Path, code: dict[tuple[str, str], str | None], base: Path = REPO / "exercises") -> Path:
    """A learner's folder: a copy of ``base`` (the stubs) with some functions replaced,
    ``(module, function) -> their code`` (None: the reference solution's)."""
    from grader.authoring.stubgen import drop_markers
    from grader.core.source import definition_span

    shutil.copytree(base, folder, ignore=shutil.ignore_patterns("__pycache__"))
    for (module, function), new in code.items():
        if new is None:
            solution = drop_markers((REPO / "solutions" / f"{module}.py").read_text())
            first, last = definition_span(solution, function)
            new = "".join(solution.splitlines(keepends=True)[first - 1:last])
        path = folder / f"{module}.py"
        text = path.read_text()
        first, last = definition_span(text, function)
        lines = text.splitlines(keepends=True)
        path.write_text("".join(lines[:first - 1]) + new.rstrip("\n") + "\n" + "".join(lines[last:]))
    return folder


# What a throw-away copy of the kit holds: its own grader and catalogue, solutions and what
# `python -m grader generate` makes of them.
KIT_PARTS = ("grader", "solutions", "exercises", "notebooks", "course", "README.md", "CURRICULUM.md", "pytest.ini")


def copy_kit(destination: Path, parts: tuple[str, ...] = KIT_PARTS) -> Path:
    """A copy of the kit to change on purpose; run it with ``kit_env()``."""
    for part in parts:
        if (REPO / part).is_dir():
            shutil.copytree(REPO / part, destination / part, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(REPO / part, destination / part)
    return destination


def kit_env() -> dict[str, str]:
    """The environment for commands run in a copy of the kit: none of the repository's
    PYTHONPATH (the copy's grader is the one to import) and no MLFLOW_* of the caller."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("MLFLOW_")}


def linger(folder: Path, functions: dict[str, list[str]], seconds: float = 1.0, first: str | None = None) -> Path:
    """Make ``functions`` (module -> names) of the learner's ``folder`` first wait ``seconds``:
    a learner who takes their time, so that the grader's servers these calls use stay up
    long enough for a test watching from outside to see them every time. ``first``: another
    statement they run first instead."""
    import ast

    for module, names in functions.items():
        path = folder / f"{module}.py"
        lines = path.read_text().splitlines(keepends=True)
        starts = [node.body[1] if ast.get_docstring(node) else node.body[0]
                  for node in ast.walk(ast.parse("".join(lines)))
                  if isinstance(node, ast.FunctionDef) and node.name in names]
        assert len(starts) == len(names), (module, names)
        for start in sorted(starts, key=lambda node: -node.lineno):  # bottom up: line numbers hold
            lines.insert(start.lineno - 1, " " * start.col_offset + (first or f"__import__('time').sleep({seconds})") + "\n")
        path.write_text("".join(lines))
    return folder


def deep_tree(top: Path, outside: Path, depth: int = 5000) -> None:
    """``depth`` folders below ``top``, with links to ``outside`` (a folder and a file) on the way."""
    top.mkdir(parents=True, exist_ok=True)
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    for level in range(depth):
        os.mkdir("d", dir_fd=fd)
        below = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = below
        if level % 1000 == 0:
            os.symlink(outside, "folder-link", dir_fd=fd)
            os.symlink(outside / "kept.txt", "file-link", dir_fd=fd)
            with os.fdopen(os.open("file", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd), "w") as handle:
                handle.write("x")
    os.close(fd)


def scoring_processes(root: int) -> list[int]:
    """The scoring processes grading a learner below process ``root`` now: a grading host
    forks one per learner, working in the learner's private copy (learner-*)."""
    return [pid for pid in descendants(root) if working_in(pid).name.startswith("learner-")]


def command_line(pid: int) -> bytes:
    """A process's arguments, NUL-separated; nothing once it has ended (MLflow runs `git`
    in a call, for a moment)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def calls(pids: list[int]) -> list[int]:
    """Learner calls among ``pids``: children the sandbox worker (worker.py) forked that
    work in a store (the worker forks others, for a moment, for itself)."""
    workers = {pid for pid in pids if b"worker.py" in command_line(pid)}
    return [pid for pid in pids if (fields := proc_stat(pid)) is not None and int(fields[1]) in workers
            and working_in(pid).name.startswith("store-")]


def working_in(pid: int) -> Path:
    try:
        return Path(os.readlink(f"/proc/{pid}/cwd"))
    except OSError:
        return Path("/")


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file below a folder with its size and modification time."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")}


@pytest.fixture
def terminals():
    """Opens terminals (tests/terminal.py) for a test, ``terminals(command, env)``; closes them after it."""
    from terminal import Terminal  # it imports this module

    opened = []
    yield lambda *args, **kwargs: opened.append(Terminal(*args, **kwargs)) or opened[-1]
    for terminal in opened:
        terminal.close()


@pytest.fixture(scope="session")
def reference_grades(tmp_path_factory) -> dict[str, Graded]:
    """The solutions, the committed stubs and the independent implementation, graded once."""
    tmp = tmp_path_factory.mktemp("reference")
    targets = {"solutions": REPO / "solutions", "exercises": None, "independent": SUBMISSIONS / "independent"}
    # Each its own `pytest grader`, as a learner runs it: the batch's rows are compared with these.
    with ThreadPoolExecutor(2) as pool:
        return dict(zip(targets, pool.map(lambda item: grade(item[1], out=tmp / f"{item[0]}.json"), targets.items())))
