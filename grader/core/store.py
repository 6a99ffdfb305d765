"""Fresh, temporary MLflow stores: SQLite for tracking and registry, artifacts beside it.

Creating an MLflow SQLite database runs every schema migration (about a second), so the
kit migrates one template per MLflow version and copies it for every store (a few
milliseconds). A copy differs from a new database in one place only: the Default
experiment's artifact location, which is rewritten to point inside the new store.

`pytest grader --tracking-server` hands out stores of another kind, workspaces of a real
local server (grader/core/tracking_server.py); the checks see both through ``Store``.
"""
from __future__ import annotations

import itertools
import os
import shutil
import sqlite3
import tempfile
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Callable, Iterator
from urllib.parse import urlparse
from urllib.request import url2pathname

from importlib.metadata import version

from grader.sandbox.speedups import speed_up_sqlite_stores


# A grading makes and deletes thousands of small files (stores, artifacts, call folders).
# On a disk file system that churn costs real CPU (ext4 searches for free inodes among the
# recently deleted ones); in memory it costs next to nothing.
SHARED_MEMORY = "/dev/shm"
SHARED_MEMORY_MIN_FREE = 1 << 30


def scratch_parent() -> str | None:
    """Where grading's temporary folders go: shared memory when this machine has a writable
    one with room, unless TMPDIR (or the process, through ``tempfile.tempdir``) says where
    temporary files belong. None: tempfile's own choice."""
    if os.environ.get("TMPDIR") or tempfile.tempdir is not None:
        return None
    return shared_memory_with_room()


def shared_memory_with_room() -> str | None:
    """SHARED_MEMORY when it is writable here and has SHARED_MEMORY_MIN_FREE bytes free."""
    try:
        free = os.statvfs(SHARED_MEMORY)
    except OSError:
        return None
    roomy = free.f_bavail * free.f_frsize >= SHARED_MEMORY_MIN_FREE
    return SHARED_MEMORY if roomy and os.access(SHARED_MEMORY, os.W_OK | os.X_OK) else None


def sqlite_uri(db: Path) -> str:
    return f"sqlite:///{db}"


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "mlflow-exercise-kit"


def _migrate(db: Path) -> None:
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    store = SqlAlchemyStore(sqlite_uri(db), str(db.parent / "mlruns"))
    store.engine.dispose()


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

        speed_up_sqlite_stores()
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

    @contextmanager
    def kept(self) -> Iterator[Callable[[], None] | None]:
        """Keep what the store holds now, for as long as the block runs; the callable puts
        it back, for a call that must run again from the same start (its worker died under
        it). The database comes back exactly and files added since go; a file changed in
        place stays changed."""
        saved = self.root.parent / f".{self.root.name}-{uuid.uuid4().hex[:8]}.db"
        try:
            shutil.copyfile(self.db, saved)
        except OSError:  # an earlier call removed the database: nothing to put back
            yield None
            return
        before = set(_tree(self.root))

        def restore() -> None:
            for suffix in ("-journal", "-wal", "-shm"):  # a killed writer's journal must not replay
                Path(f"{self.db}{suffix}").unlink(missing_ok=True)
            shutil.copyfile(saved, self.db)
            for path in sorted(set(_tree(self.root)) - before, reverse=True):  # files before their folders
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)

        try:
            yield restore
        finally:
            saved.unlink(missing_ok=True)


def _tree(root: Path) -> list[Path]:
    return [Path(folder, name) for folder, folders, files in os.walk(root) for name in folders + files]


def warm_up_client(template: Path) -> None:
    """Open one throwaway store and run the reads and writes the checks make, so that a
    process forked afterwards (a grading in a warm host) finds MLflow's store code loaded
    and its SQL compiled (see grader/sandbox/speedups.py)."""
    from mlflow.entities import Metric, Param, ViewType

    with tempfile.TemporaryDirectory(prefix="warm-up-") as folder:
        store = StoreFactory(Path(folder), template).new("warm-up")
        client = store.client
        experiment_id = store.new_experiment("warm-up", tags={"t": "1"})
        run = client.create_run(experiment_id, tags={"t": "1"})
        client.log_batch(run.info.run_id, metrics=[Metric("m", 1.0, 0, 0)], params=[Param("p", "1")])
        client.set_terminated(run.info.run_id)
        client.get_run(run.info.run_id)
        client.get_metric_history(run.info.run_id, "m")
        client.search_runs([experiment_id], order_by=["metrics.m DESC"])
        client.search_experiments(view_type=ViewType.ALL)
        client.get_experiment_by_name("warm-up")
        client.search_logged_models(experiment_ids=[experiment_id])
        client.create_registered_model("warm-up")
        version = client.create_model_version("warm-up", f"runs:/{run.info.run_id}/model", run.info.run_id)
        client.set_registered_model_alias("warm-up", "a", version.version)
        client.get_model_version_by_alias("warm-up", "a")
        client.get_registered_model("warm-up")
        client.search_model_versions("name = 'warm-up'")
        client.delete_run(run.info.run_id)
        for sql_store in (client._tracking_client.store, client._get_registry_client().store):
            sql_store.engine.dispose()  # no open database handle is inherited by a fork


class StoreFactory:
    """Hands out fresh stores under one scratch folder."""

    def __init__(self, scratch: Path, template: Path | None = None):
        self.scratch = scratch
        self.template = template or template_db(scratch)
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
