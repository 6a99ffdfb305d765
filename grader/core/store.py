"""Fresh, temporary MLflow stores: SQLite for tracking and registry, artifacts beside it.

Creating an MLflow SQLite database runs every schema migration (about a second), so the
kit migrates one template per MLflow version and copies it for every store (a few
milliseconds). A copy differs from a new database in one place only: the Default
experiment's artifact location, which is rewritten to point inside the new store.

`pytest grader --tracking-server` hands out stores of another kind, workspaces of a real
local server (grader/core/tracking_server.py); the checks see both through ``Store``.
"""
from __future__ import annotations

import functools
import itertools
import os
import shutil
import sqlite3
import tempfile
import uuid
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

from importlib.metadata import version


def sqlite_uri(db: Path) -> str:
    return f"sqlite:///{db}"


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "mlflow-exercise-kit"


def _migrate(db: Path) -> None:
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    store = SqlAlchemyStore(sqlite_uri(db), str(db.parent / "mlruns"))
    store.engine.dispose()


def remember_schema_head() -> None:
    """Opening a store checks its schema against the newest migration, which MLflow finds by
    reading every migration script, each time. That answer never changes while the installed
    MLflow does not: remember it (the check itself still runs)."""
    import mlflow.store.db.utils as db_utils

    if not hasattr(db_utils._get_latest_schema_revision, "cache_info"):
        db_utils._get_latest_schema_revision = functools.cache(db_utils._get_latest_schema_revision)


def template_path(folder: Path | None = None) -> Path:
    """Where the template for the installed MLflow lives (found without importing MLflow)."""
    return (folder or _cache_dir()) / f"store-template-mlflow-{version('mlflow')}.db"


def template_db(scratch: Path) -> Path:
    """A migrated, empty MLflow database, made once per MLflow version and then reused."""
    for folder in (_cache_dir(), scratch):
        target = template_path(folder)
        if target.is_file():
            return target
        try:
            folder.mkdir(parents=True, exist_ok=True)
            # Build aside and rename: several graders may start at once.
            with tempfile.TemporaryDirectory(dir=folder) as building:
                db = Path(building) / "mlflow.db"
                _migrate(db)
                os.replace(db, target)
            return target
        except OSError:
            continue  # an unwritable cache: fall back to the session's scratch folder
    raise RuntimeError("could not create an MLflow store template")


@dataclass
class Store:
    """One temporary MLflow store: ``root/mlflow.db`` and artifacts under ``root/mlruns``."""

    root: Path
    extra_env: dict = field(default_factory=dict)

    @property
    def db(self) -> Path:
        return self.root / "mlflow.db"

    @property
    def uri(self) -> str:
        return sqlite_uri(self.db)

    @property
    def env(self) -> dict[str, str]:
        """The environment that points learner code at this store."""
        return {"MLFLOW_TRACKING_URI": self.uri, "MLFLOW_REGISTRY_URI": self.uri, **self.extra_env}

    @cached_property
    def client(self) -> "MlflowClient":  # noqa: F821
        from mlflow import MlflowClient

        remember_schema_head()
        return MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)

    def new_experiment(self, name: str, tags: dict[str, str] | None = None) -> str:
        """An experiment made by the grader, its artifacts kept inside the store."""
        location = self.root / "mlruns" / f"grader-{uuid.uuid4().hex[:8]}"
        return self.client.create_experiment(name, artifact_location=str(location), tags=tags)

    def local_file(self, uri: str) -> Path | None:
        """The local path an artifact URI names, or None when it names no local file."""
        parsed = urlparse(uri)
        if parsed.scheme == "file":
            return Path(url2pathname(parsed.path))
        return Path(uri) if parsed.scheme == "" else None

    def contains(self, path: str | Path) -> bool:
        """Whether a local path lies inside this store (learner data may claim otherwise)."""
        try:
            return Path(path).resolve().is_relative_to(self.root.resolve())
        except (OSError, ValueError):
            return False


class StoreFactory:
    """Hands out fresh stores under one scratch folder."""

    def __init__(self, scratch: Path):
        self.scratch = scratch
        self.template = template_db(scratch)
        self._numbers = itertools.count(1)

    def new(self, label: str) -> Store:
        root = self.scratch / f"store-{next(self._numbers):03d}-{label}"
        root.mkdir(parents=True)
        store = Store(root)
        shutil.copyfile(self.template, store.db)
        with sqlite3.connect(store.db) as db:
            db.execute(
                "UPDATE experiments SET artifact_location = ? WHERE experiment_id = 0",
                (str(root / "mlruns" / "0"),),
            )
        return store
