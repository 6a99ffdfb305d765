"""`pytest grader --tracking-server`: the learner's code logs to a real local `mlflow server`.

The grader starts one server per session (SQLite backend, artifacts proxied through the
server as ``mlflow-artifacts:/`` URIs) and stops it, with every process it started, at the
end. Checks still need a fresh, empty store each, and some count everything in theirs
(experiments, runs): every store is its own MLflow *workspace* on that server
(``--enable-workspaces``), which keeps experiments, runs, logged models and registered
models apart. Learner code selects its workspace with ``MLFLOW_WORKSPACE``, as against any
workspace-enabled server; the grader's own client binds it per call.

``MlflowServer`` is that server's start and stop alone: `python -m grader ui` serves a
store a grading kept with it.
"""
from __future__ import annotations

import atexit
import contextlib
import functools
import itertools
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Iterator
from urllib.parse import urlparse
from urllib.request import url2pathname

from grader.ground.processes import kill_group, live_members
from grader.core.store import Store

# Far more than it takes (README.md, Speed): a loaded CI machine may take much longer.
BOOT_SECONDS = 120
LOG_TAIL_CHARS = 3000
DEFAULT_EXPERIMENT = "Default"
LOOPBACK = "127.0.0.1"

SERVER_ENV = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    # The job runner (a dozen huey processes) serves GenAI jobs the grader never starts.
    "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
}


class ServerError(RuntimeError):
    """The tracking server could not be started."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


def _without_mlflow_settings(env: dict[str, str]) -> dict[str, str]:
    # The server refuses to start with MLFLOW_WORKSPACE set; no other MLFLOW_* setting of
    # the learner's may reach it either.
    return {k: v for k, v in env.items() if not k.startswith("MLFLOW_")}


def loopback_without_proxy(env: dict[str, str]) -> dict[str, str]:
    """NO_PROXY settings that send requests to 127.0.0.1 straight to the server, even on a
    machine whose HTTP_PROXY would otherwise carry them away."""
    settings = {}
    for name in ("NO_PROXY", "no_proxy"):
        hosts = [h for h in env.get(name, "").split(",") if h.strip()]
        settings[name] = ",".join(hosts + [LOOPBACK] if LOOPBACK not in hosts else hosts)
    return settings


def _new_database(template: Path, db: Path) -> None:
    # A copy of the migrated template: the server skips the schema migrations.
    shutil.copyfile(template, db)
    # Write-ahead logging: a commit costs one fsync instead of several, and readers do
    # not wait for the writer.
    with contextlib.closing(sqlite3.connect(db)) as connection:
        connection.execute("PRAGMA journal_mode=WAL")


def server_options(db: Path, artifacts: Path, port: int) -> list[str]:
    """`mlflow server`'s options for a server on 127.0.0.1 over one SQLite database that
    serves artifacts itself, from ``artifacts`` (so no learner needs the server's disk)."""
    return [
        "--backend-store-uri", f"sqlite:///{db}",
        "--serve-artifacts", "--artifacts-destination", str(artifacts),
        "--host", LOOPBACK, "--port", str(port),
        # One process: several would share one SQLite file, and boot slower.
        "--workers", "1",
    ]


class MlflowServer:
    """One `mlflow server` (``server_options``) started from ``folder``, which holds its
    ``server.log``. It boots in the background; ``wait_ready`` waits for it, ``stop`` ends
    it with every process it started."""

    def __init__(self, folder: Path, db: Path, artifacts: Path, *flags: str):
        self.folder = folder
        self.artifacts = artifacts
        self.port = free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "mlflow", "server", *server_options(db, artifacts, self.port), *flags],
                cwd=folder, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env={**_without_mlflow_settings(os.environ), **SERVER_ENV},
                start_new_session=True,  # its own process group: stopped as one, never hit by Ctrl-C
            )
        self._stopped = False
        atexit.register(self.stop)  # a last resort: its owner stops it

    @property
    def log(self) -> Path:
        return self.folder / "server.log"

    @property
    def netloc(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def log_tail(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-LOG_TAIL_CHARS:]
        except OSError:
            return ""

    def wait_ready(self, timeout: float = BOOT_SECONDS) -> None:
        """Return once the server answers /health; raise ServerError if it never will."""
        no_proxy = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._exited():
                raise ServerError(f"mlflow server stopped while starting; its log ends with:\n{self.log_tail()}")
            try:
                with no_proxy.open(f"{self.url}/health", timeout=2):
                    return
            except OSError:
                time.sleep(0.2)
        raise ServerError(f"mlflow server did not answer within {timeout:g} s; its log ends with:\n{self.log_tail()}")

    def wait_exit(self) -> None:
        """Block until the server's main process ends (left unreaped: see ``_exited``);
        a signal that raises (Ctrl-C) ends the wait."""
        os.waitid(os.P_PID, self.process.pid, os.WEXITED | os.WNOWAIT)

    def _exited(self) -> bool:
        """Whether the server's main process has ended. It is left unreaped: a zombie keeps
        its pid, so the process-group id that stop() signals cannot name anyone else."""
        return os.waitid(os.P_PID, self.process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None

    def stop(self) -> None:
        """Stop the server and every process it started (uvicorn and its workers), at once:
        its data is scratch, SQLite survives a kill, and a graceful stop is slow."""
        if self._stopped:
            return
        group = self.process.pid  # a session leader's pid is its process group's id
        kill_group(group)
        self.process.wait()
        _wait_group_gone(group)
        self._stopped = True
        atexit.unregister(self.stop)


class TrackingServer(MlflowServer):
    """`--tracking-server`'s server in ``folder``: ``server.db`` (a copy of the migrated
    template), ``artifacts/`` and ``server.log``; every store is one of its workspaces."""

    def __init__(self, folder: Path, template: Path):
        self.template = template
        folder.mkdir(parents=True)
        _new_database(template, folder / "server.db")
        super().__init__(folder, folder / "server.db", folder / "artifacts", "--enable-workspaces")


def _wait_group_gone(group: int, timeout: float = 5.0) -> None:
    """Killed members vanish a moment after the signal. Zombies do not count: reaping
    orphans is up to init, which in some containers never does it."""
    deadline = time.monotonic() + timeout
    while live_members(group) and time.monotonic() < deadline:
        time.sleep(0.05)


class _InWorkspace:
    """An MlflowClient whose every call is made in one workspace.

    The workspace is bound to the calling context only, never to ``MLFLOW_WORKSPACE``
    (process-wide): scenario threads preparing other stores at the same moment keep theirs.
    """

    def __init__(self, client, workspace: str):
        self._client = client
        self._workspace = workspace

    def __getattr__(self, name: str):
        from mlflow.utils.workspace_context import ServerWorkspaceContext

        attribute = getattr(self._client, name)
        if not callable(attribute):
            return attribute

        @functools.wraps(attribute)
        def in_workspace(*args, **kwargs):
            # Despite its name, this context manager only sets the context variable that
            # the REST client reads to send the X-MLFLOW-WORKSPACE header.
            with ServerWorkspaceContext(self._workspace):
                return attribute(*args, **kwargs)

        return in_workspace


@dataclass
class WorkspaceStore(Store):
    """A store that is one workspace of the session's tracking server.

    ``root`` is still a local folder: the learner's working directory, and where models
    saved to a path go. Logged artifacts live on the server, under
    ``<artifacts>/workspaces/<workspace>/``.
    """

    server: TrackingServer | None = None
    workspace: str = ""
    default_experiment_id: str = ""

    @property
    def uri(self) -> str:
        return self.server.url

    @property
    def artifact_root(self) -> Path:
        return self.server.artifacts / "workspaces" / self.workspace

    @contextlib.contextmanager
    def kept(self) -> Iterator[None]:
        """A workspace lives in the server's database, and is not copied: a call run again
        finds it as the first run left it."""
        yield None

    @property
    def env(self) -> dict[str, str]:
        return {
            "MLFLOW_TRACKING_URI": self.uri,
            "MLFLOW_REGISTRY_URI": self.uri,
            "MLFLOW_WORKSPACE": self.workspace,
            # A new workspace has no experiment 0: runs started without an experiment go
            # to this store's own "Default", as they go to experiment 0 of an SQLite store.
            "MLFLOW_EXPERIMENT_ID": self.default_experiment_id,
            # The run URLs MLflow prints would name a server gone after grading.
            "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
            **loopback_without_proxy(os.environ),
            **self.extra_env,
        }

    @cached_property
    def client(self) -> "_InWorkspace":
        from mlflow import MlflowClient

        return _InWorkspace(MlflowClient(tracking_uri=self.uri, registry_uri=self.uri), self.workspace)

    def new_experiment(self, name: str, tags: dict[str, str] | None = None) -> str:
        """An experiment made by the grader; the server chooses where its artifacts go."""
        return self.client.create_experiment(name, tags=tags)

    def local_file(self, uri: str) -> Path | None:
        parsed = urlparse(uri)
        if parsed.scheme != "mlflow-artifacts":
            return super().local_file(uri)
        if parsed.netloc not in ("", self.server.netloc):
            return None  # another server's artifacts
        return self.server.artifacts / url2pathname(parsed.path).lstrip("/")

    def contains(self, path: str | Path) -> bool:
        try:
            resolved = Path(path).resolve()
            return any(resolved.is_relative_to(root.resolve()) for root in (self.root, self.artifact_root))
        except (OSError, ValueError):
            return False


def workspace_name(number: int, label: str) -> str:
    """A valid workspace name (lowercase letters, digits, inner hyphens; at most 63)."""
    name = re.sub(r"[^a-z0-9-]", "-", f"store-{number:03d}-{label}".lower())
    return name[:63].rstrip("-")


class WorkspaceStoreFactory:
    """Hands out fresh stores: a new workspace on the server, and a local folder, each."""

    def __init__(self, server: TrackingServer, scratch: Path):
        from mlflow import MlflowClient

        self.server = server
        self.scratch = scratch
        self.template = server.template  # what the sandbox worker warms up on
        self._admin = MlflowClient(tracking_uri=server.url, registry_uri=server.url)
        self._numbers = itertools.count(1)
        # The grader's own client talks to the server too: same proxy bypass, no run URLs.
        os.environ.update(loopback_without_proxy(os.environ))
        os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"

    def new(self, label: str) -> WorkspaceStore:
        number = next(self._numbers)
        root = self.scratch / f"store-{number:03d}-{label}"
        root.mkdir(parents=True)
        workspace = workspace_name(number, label)
        self._admin.create_workspace(name=workspace, description=f"grader store {root.name}")
        store = WorkspaceStore(root, server=self.server, workspace=workspace)
        store.default_experiment_id = store.new_experiment(DEFAULT_EXPERIMENT)
        return store

