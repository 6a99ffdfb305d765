"""The grader of the MLflow exercise kit.

ARCHITECTURE.md maps its folders, its processes and threads, and what may touch learner
code; AUTHORING.md says how to add an exercise. In short:

- ``catalogue.toml``      the exercises, their checks, points and hints: the one source of truth.
- ``test_ex0*.py``        the checks, one class per curriculum function, one test per check,
                          with the sandbox steps they use.
- ``plugin.py``           the pytest plugin: ``GradingPlugin``, a grading's hooks, fixtures and state.
- ``core/``               what the checks stand on: the catalogue, the grading session, stores,
                          seeded inputs, outcomes, results, and reading submissions.
- ``sandbox/``            the wall learner code runs behind: ``protocol.py`` (what crosses it),
                          ``worker.py`` and its siblings inside, ``client.py`` outside.
- ``ground/``             below both: exit codes, learner-writable files, processes.
- ``host/``               warm grading hosts (batch slots, notebook kernels, watch).
- ``batch/``, ``learner/``, ``inspect/``, ``platforms/``, ``authoring/``: the commands of ``python -m grader``.
- ``notebook.py``         ``check(module, function)``: a notebook cell grading one exercise.
"""
from pathlib import Path

KIT_ROOT = Path(__file__).resolve().parent.parent  # the kit's folder: grader/, solutions/, exercises/...


def install_advice(error: ModuleNotFoundError) -> str:
    """One plain line for a Python that lacks the kit's packages: which, and the command
    that installs them (instead of pages of import traceback). A module of the kit's own
    that is missing is a bug, not an install: ``error`` is raised again."""
    if (error.name or "").split(".")[0] == "grader":
        raise error
    import importlib.metadata
    import re
    import sys

    pins = [line.split("==")[0].split("[")[0].strip() for line in (KIT_ROOT / "requirements.txt").read_text().splitlines()
            if re.match(r"^[A-Za-z0-9]", line)]
    missing = []
    for name in pins:
        try:
            importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            missing.append(name)
    what = ", ".join(missing) if missing else f"the module {error.name!r}"
    return (f"This Python ({sys.executable}) lacks the kit's packages ({what}): install them with "
            f"`{sys.executable} -m pip install -r {KIT_ROOT / 'requirements.txt'}`, or use the Python you installed them into.")
