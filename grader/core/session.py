"""A grading session: one learner's code, one seed, one sandbox, many fresh stores.

Checks talk to the learner's code through ``Learner``, bound to one curriculum function:
``learner.call(store, *args)`` runs that function in the sandbox against ``store`` and
returns what came back, or raises the outcome (not attempted, error, timeout...).
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Sequence

from grader.core import catalogue
from grader.core.inputs import Inputs
from grader.core.outcomes import LearnerError, outcome_of
from grader.core.store import Store, StoreFactory
from grader.sandbox.client import CallResult, Sandbox

DEFAULT_CALL_TIMEOUT = 90.0


class TargetError(Exception):
    """The folder to grade is not one the grader can read."""


def resolve_target(path: Path) -> Path:
    """The folder holding the modules: ``path`` itself, or its ``exercises/`` subfolder."""
    modules = [m.name for m in catalogue.load().modules]
    if not path.is_dir():
        raise TargetError(f"{path} is not a folder")
    for folder in (path / "exercises", path):
        if any((folder / f"{name}.py").is_file() for name in modules):
            return folder
    raise TargetError(f"{path} holds none of {', '.join(m + '.py' for m in modules)}")


def copy_sources(folder: Path, destination: Path) -> Path:
    """Learner modules are imported from a copy, so nothing is ever written beside them."""
    destination.mkdir(parents=True)
    for source in folder.glob("*.py"):
        shutil.copyfile(source, destination / source.name)
    return destination


class GradingSession:
    def __init__(
        self,
        sources: Path,
        scratch: Path,
        seed: int,
        *,
        timeout: float = DEFAULT_CALL_TIMEOUT,
        wrap: Sequence[str] = (),
        limits: dict | None = None,
    ):
        self.sources = sources
        self.scratch = scratch
        self.seed = seed
        self.timeout = timeout
        self.stores = StoreFactory(scratch)
        self.sandbox = Sandbox(scratch, wrap=wrap, limits=limits, template=self.stores.template)

    def learner(self, module: str, function: str) -> "Learner":
        return Learner(self, module, function)

    def inputs(self, module: str, function: str) -> Inputs:
        return Inputs(self.seed, f"{module}.{function}")

    def close(self) -> None:
        self.sandbox.close()


class Learner:
    """The learner's implementation of one curriculum function, as the checks see it."""

    def __init__(self, session: GradingSession, module: str, function: str):
        self.session = session
        self.module = module
        self.function = function

    def store(self) -> Store:
        return self.session.stores.new(self.function)

    def _request(self, store: Store, **fields) -> dict:
        return {
            "env": store.env,
            "cwd": str(store.root),
            "src": str(self.session.sources),
            "args": (),
            "kwargs": {},
            **fields,
        }

    def call(self, store: Store, *args, post: tuple = ("value",), **kwargs) -> CallResult:
        """Run the learner's function once, in a fresh process, against ``store``."""
        if not (self.session.sources / f"{self.module}.py").is_file():
            raise LearnerError(f"{self.module}.py is missing from the folder being graded.")
        request = self._request(
            store, kind="call", module=self.module, function=self.function,
            args=args, kwargs=kwargs, post=post,
        )
        result = self.session.sandbox.run(request, self.session.timeout)
        outcome = outcome_of(result, self.module, self.function, self.session.timeout)
        if outcome is not None:
            raise outcome
        return result

    def probe(self, store: Store, probe: str, *args, **kwargs) -> CallResult:
        """Run grader code that must touch learner-made files (such as loading a model)
        in the sandbox; the caller decides what a failure means."""
        request = self._request(store, kind="probe", probe=probe, args=args, kwargs=kwargs, post=("array",))
        return self.session.sandbox.run(request, self.session.timeout)

    def prepare(self, store: Store, probe: str, *args, **kwargs):
        """Grader-side set-up that runs in the sandbox (logging models); must succeed."""
        request = self._request(store, kind="probe", probe=probe, args=args, kwargs=kwargs, post=("value",))
        result = self.session.sandbox.run(request, self.session.timeout)
        if result.status != "ok":
            raise RuntimeError(f"the grader could not prepare {probe}: {result.status} {result.error}\n{result.output}")
        return result.value
