"""Opening a learner's store so that it cannot be written.

- An SQLite file is copied into a scratch folder and only the copy is opened (MLflow
  may migrate or initialise what it opens; it never touches the original).
- A server is reached with read calls only: the client handed out refuses every other
  method, so no code path here can create, update or delete anything.
- Model files are read, never loaded: only the MLmodel YAML, size-limited.
"""
from __future__ import annotations

import json
import os
import shutil
import sqlite3
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse, urlunparse
from urllib.request import url2pathname

SQLITE_HEADER = b"SQLite format 3\x00"
MAX_MLMODEL_BYTES = 2 * 1024 * 1024
PROBE_TIMEOUT_SECONDS = 15

# Every MlflowClient method the inspector may call: all of them only read.
READ_CALLS = frozenset({
    "search_experiments", "get_experiment", "get_experiment_by_name", "search_runs", "get_run",
    "search_logged_models", "get_logged_model", "search_registered_models", "get_registered_model",
    "search_model_versions", "get_model_version",
})


class StoreProblem(Exception):
    """The store cannot be inspected at all (unreachable, not an MLflow store...)."""


class ReadOnlyClient:
    """An MlflowClient that offers its read calls and nothing else."""

    def __init__(self, client):
        self._client = client

    def __getattr__(self, name: str):
        if name not in READ_CALLS:
            raise AttributeError(f"{name} is not a read call: the inspector never writes to a store")
        return getattr(self._client, name)


@dataclass
class OpenedStore:
    """A store opened for reading: its client, and where its model files can be read."""

    shown_as: str          # the store as the user named it, without any password
    kind: str              # "sqlite" | "server"
    client: ReadOnlyClient
    tracking_uri: str      # what the client talks to (the copy, for SQLite)
    scratch: Path
    base: Path | None = None  # the SQLite file's folder: where relative artifact paths start
    read_cache: dict = field(default_factory=dict, repr=False)

    def remember(self, key, fetch):
        """What ``fetch()`` read, once: grading a class asks the same questions per learner,
        and nothing changes the store while the inspector reads it."""
        if key not in self.read_cache:
            self.read_cache[key] = fetch()
        return self.read_cache[key]

    def mlmodel(self, artifact_location: str) -> dict:
        """The MLmodel file of a logged model, as plain YAML."""
        import yaml

        text = self._mlmodel_text(artifact_location.rstrip("/"))
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError:
            raise LookupError(f"the MLmodel file at {artifact_location} is not valid YAML") from None
        if not isinstance(data, dict):
            raise LookupError(f"the MLmodel file at {artifact_location} does not describe a model")
        return data

    def _mlmodel_text(self, location: str) -> str:
        parsed = urlparse(location)
        if parsed.scheme in ("", "file"):
            return _read_small(self._local(parsed, location) / "MLmodel")
        if self.kind == "server":
            return _read_small(self._download(location + "/MLmodel"))
        raise LookupError(f"model files at {location} are outside what the inspector can read")

    def _local(self, parsed, location: str) -> Path:
        path = Path(url2pathname(parsed.path)) if parsed.scheme == "file" else Path(location)
        if not path.is_absolute() and self.base is not None:
            path = self.base / path
        return path

    def _download(self, artifact_uri: str) -> Path:
        import mlflow.artifacts

        destination = Path(self.scratch) / f"download-{len(list(Path(self.scratch).glob('download-*')))}"
        destination.mkdir()
        try:
            return Path(mlflow.artifacts.download_artifacts(
                artifact_uri=artifact_uri, dst_path=str(destination), tracking_uri=self.tracking_uri
            ))
        except Exception as error:  # any transport or permission error: the file cannot be read
            raise LookupError(f"could not download {artifact_uri}: {type(error).__name__}") from None


def _read_small(path: Path) -> str:
    if not path.is_file():
        raise LookupError(f"{path} does not exist")
    if path.stat().st_size > MAX_MLMODEL_BYTES:
        raise LookupError(f"{path} is unexpectedly large")
    return path.read_text(encoding="utf-8", errors="replace")


def without_password(uri: str) -> str:
    parsed = urlparse(uri)
    if parsed.password is None:
        return uri
    host = parsed.hostname + (f":{parsed.port}" if parsed.port else "")
    return urlunparse(parsed._replace(netloc=f"{parsed.username}:***@{host}"))


def open_store(uri: str, scratch: Path) -> OpenedStore:
    """Open ``uri`` (an SQLite file, ``sqlite:///...`` or ``http(s)://...``) read-only."""
    scheme = urlparse(uri).scheme
    if scheme in ("http", "https"):
        return _open_server(uri.rstrip("/"), scratch)
    if scheme == "sqlite":  # sqlite:///relative.db or sqlite:////absolute/mlflow.db
        return _open_sqlite(Path(uri.removeprefix("sqlite:///").split("?")[0]), uri, scratch)
    if scheme in ("", "file") or len(scheme) == 1:  # a plain path (a Windows drive letter is one letter)
        path = Path(url2pathname(urlparse(uri).path)) if scheme == "file" else Path(uri)
        return _open_sqlite(path, uri, scratch)
    raise StoreProblem(
        f"{without_password(uri)}: the inspector reads SQLite files (mlflow.db, sqlite:///...) and MLflow servers "
        "(http://... or https://...); for another database, start `mlflow server` on it and inspect the server"
    )


# ---------------------------------------------------------------- SQLite files
def _open_sqlite(path: Path, shown_as: str, scratch: Path) -> OpenedStore:
    path = path.expanduser()
    if path.is_dir():
        if not (path / "mlflow.db").is_file():
            raise StoreProblem(f"{path} is a folder without an mlflow.db; give the path of the MLflow database file")
        path = path / "mlflow.db"
    if not path.is_file():
        raise StoreProblem(f"{path} does not exist; give the path of your MLflow database (for example mlflow.db)")
    _require_sqlite(path)
    copy = scratch / "copy" / "mlflow.db"
    copy.parent.mkdir(parents=True)
    shutil.copyfile(path, copy)
    wal = path.with_name(path.name + "-wal")
    if wal.is_file():  # recent writes of a store still open elsewhere live here
        shutil.copyfile(wal, copy.with_name(copy.name + "-wal"))
    _require_mlflow_tables(copy, path)
    tracking_uri = f"sqlite:///{copy}"
    client = _sqlite_client(tracking_uri)
    return OpenedStore(str(path), "sqlite", ReadOnlyClient(client), tracking_uri, scratch, base=path.parent)


def _require_sqlite(path: Path) -> None:
    with open(path, "rb") as handle:
        header = handle.read(len(SQLITE_HEADER))
    if not header:
        raise StoreProblem(f"{path} is empty: no MLflow store has been written to it yet")
    if header != SQLITE_HEADER:
        raise StoreProblem(f"{path} is not an SQLite database, so it is not an MLflow store")


def _require_mlflow_tables(copy: Path, original: Path) -> None:
    try:
        with sqlite3.connect(f"file:{copy}?mode=ro", uri=True) as db:
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError as error:
        raise StoreProblem(f"{original} could not be read as an SQLite database ({error})") from None
    missing = {"experiments", "runs", "alembic_version"} - tables
    if missing:
        raise StoreProblem(
            f"{original} is an SQLite database but not an MLflow store (it has no {', '.join(sorted(missing))} table)"
        )


def _sqlite_client(tracking_uri: str):
    """A client on the copy; a store made by an older MLflow is upgraded, in the copy only."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    try:
        client.search_experiments(max_results=1)
    except MlflowException as error:
        if "out-of-date database schema" not in str(error):
            raise StoreProblem(f"MLflow could not open the store: {error}") from None
        _upgrade_copy(tracking_uri)
        client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    return client


def _upgrade_copy(tracking_uri: str) -> None:
    import sqlalchemy
    from mlflow.store.db.utils import _upgrade_db

    engine = sqlalchemy.create_engine(tracking_uri)
    try:
        _upgrade_db(engine)
    finally:
        engine.dispose()


# ---------------------------------------------------------------- servers
def _open_server(uri: str, scratch: Path) -> OpenedStore:
    from mlflow import MlflowClient

    _probe_server(uri)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    return OpenedStore(without_password(uri), "server", ReadOnlyClient(client), uri, scratch)


def _probe_server(uri: str) -> None:
    """Fail fast and plainly: MLflow's own client retries for minutes before it gives up."""
    shown = without_password(uri)
    request = urllib.request.Request(f"{uri}/api/2.0/mlflow/experiments/search?max_results=1")
    _add_credentials(request)
    try:
        with urllib.request.urlopen(request, timeout=PROBE_TIMEOUT_SECONDS) as response:
            body = response.read(1_000_000)
    except urllib.error.HTTPError as error:
        if error.code in (401, 403):
            raise StoreProblem(
                f"{shown} asks for credentials: set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD "
                "(or MLFLOW_TRACKING_TOKEN)"
            ) from None
        raise StoreProblem(f"{shown} answered HTTP {error.code}: it does not look like an MLflow tracking server") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise StoreProblem(
            f"cannot reach an MLflow server at {shown} ({reason}); is `mlflow server` running there, "
            "and are the host and port right?"
        ) from None
    try:
        json.loads(body)["experiments"]
    except (ValueError, KeyError, TypeError):
        raise StoreProblem(f"{shown} answered, but not like an MLflow tracking server") from None


def _add_credentials(request: urllib.request.Request) -> None:
    import base64

    token = os.environ.get("MLFLOW_TRACKING_TOKEN")
    user, password = os.environ.get("MLFLOW_TRACKING_USERNAME"), os.environ.get("MLFLOW_TRACKING_PASSWORD")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    elif user and password:
        request.add_header("Authorization", "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode())
