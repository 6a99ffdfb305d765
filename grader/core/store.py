"""Fresh, temporary MLflow stores: SQLite for tracking and registry, artifacts beside it.

Creating an MLflow SQLite database runs every schema migration, which costs far more than
copying a file, so the kit migrates one template per MLflow version and copies it for
every store (README.md, Speed). A copy differs from a new database in one place only: the Default
experiment's artifact location, which is rewritten to point inside the new store.

`pytest grader --tracking-server` hands out stores of another kind, workspaces of a real
local server (grader/core/tracking_server.py); the checks see both through ``Store``.
"""
from __future__ import annotations

import errno
import itertools
import os
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

from grader.ground import files


# A grading makes and deletes thousands of small files (stores, artifacts, call folders).
# On a disk file system that churn costs real CPU (ext4 searches for free inodes among the
# recently deleted ones); in memory it costs next to nothing.
SHARED_MEMORY = "/dev/shm"
SHARED_MEMORY_MIN_FREE = 1 << 30
# The largest database Store.kept keeps aside for a call that may run again (in memory).
MAX_KEPT_BYTES = 256 * 1024**2


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
    """One temporary MLflow store: ``root/mlflow.db`` and artifacts under ``root/mlruns``.

    Learner code writes in it, so the grader reaches its files only through
    grader/ground/files.py, from ``scratch`` (the folder the sandbox shares, which learner
    code cannot replace); ``private`` is a folder of the grader's alone on the same file
    system, where a database being put back is written before it moves in."""

    root: Path
    extra_env: dict = field(default_factory=dict)
    scratch: Path | None = None
    private: Path | None = None

    @property
    def anchor(self) -> Path:
        return self.scratch or self.root.parent

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
        place stays changed. The copy is kept in memory, out of learner code's reach."""
        try:
            saved = files.read_bytes(self.anchor, self.db, MAX_KEPT_BYTES)
            before = set(files.entries(self.anchor, self.root))
        except OSError:  # an earlier call removed the database (or made it unusable): nothing to put back
            yield None
            return

        def restore() -> None:
            folder = files.open_folder(self.anchor, self.root)
            try:
                for suffix in ("-journal", "-wal", "-shm"):  # a killed writer's journal must not replay
                    files.remove(folder, f"{self.db.name}{suffix}")
                self._put_back(folder, saved)
                self._reconnect()
                added = set(files.entries(self.anchor, self.root)) - before
                for name in sorted(added):
                    if os.path.dirname(name) not in added:  # a new folder goes whole
                        self._remove(name)  # (what learner code made unreachable stays)
            finally:
                os.close(folder)

        yield restore

    def _put_back(self, folder: int, data: bytes) -> None:
        """Replace the database by a copy of ``data``: written aside (in the private folder,
        where learner code cannot write, when it is on the same file system), then renamed
        over it (a rename replaces a link, never follows it)."""
        aside = files.open_folder(self.private) if self.private else os.dup(folder)
        try:
            name = _write_aside(aside, data)
            try:
                os.rename(name, self.db.name, src_dir_fd=aside, dst_dir_fd=folder)
            except OSError as error:
                files.remove(aside, name)
                if error.errno != errno.EXDEV:
                    raise
                os.rename(_write_aside(folder, data), self.db.name, src_dir_fd=folder, dst_dir_fd=folder)
        finally:
            os.close(aside)

    def _reconnect(self) -> None:
        """The grader's client may hold connections to the database just replaced: they
        close, and the next query opens the new one."""
        client = self.__dict__.get("client")
        if client is not None:
            for sql_store in (client._tracking_client.store, client._get_registry_client().store):
                sql_store.engine.dispose()

    def _remove(self, relative: str) -> None:
        try:
            parent = files.open_folder(self.anchor, self.root / os.path.dirname(relative))
        except OSError:
            return
        try:
            files.remove(parent, os.path.basename(relative))
        finally:
            os.close(parent)


def _write_aside(folder: int, data: bytes) -> str:
    """A new file of a fresh name in a folder (held open) holding ``data``; its name."""
    name = f".restore-{uuid.uuid4().hex}"
    with os.fdopen(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o666, dir_fd=folder), "wb") as handle:
        handle.write(data)
    return name


def warm_up_client(template: Path) -> None:
    """Open one throwaway store and run the reads and writes the checks make, so that a
    process forked afterwards (a grading in a warm host) finds MLflow's store code loaded
    and its SQL compiled (see grader/sandbox/mlflow_patches.py)."""
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
        store._reconnect()  # no open database handle is inherited by a fork


class StoreFactory:
    """Hands out fresh stores under one scratch folder (``private``: see Store)."""

    def __init__(self, scratch: Path, template: Path | None = None, private: Path | None = None):
        self.scratch = scratch
        self.private = private
        self.template = template or template_db(scratch)
        self._numbers = itertools.count(1)

    @cached_property
    def _template_bytes(self) -> bytes:
        return self.template.read_bytes()

    def new(self, label: str) -> Store:
        self.scratch.mkdir(parents=True, exist_ok=True)
        root = files.make_shared_folder(self.scratch / f"store-{next(self._numbers):03d}-{label}")
        store = Store(root, scratch=self.scratch, private=self.private)
        files.write_new(self.scratch, store.db, self._template_bytes)  # never through a name planted first
        with sqlite3.connect(store.db) as db:
            db.execute(
                "UPDATE experiments SET artifact_location = ? WHERE experiment_id = 0",
                (str(root / "mlruns" / "0"),),
            )
        return store
