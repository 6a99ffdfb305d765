"""Reading what learner code left in a store, and saying it in a sentence.

Every reader here takes the store's word with suspicion: ids may name nothing, artifact
paths may point outside the store, files may be huge. A check fails with a message then;
the grader never crashes on it and never reads outside the store.
"""
from __future__ import annotations

import errno
import json
from pathlib import Path

from mlflow.entities import Run, ViewType
from mlflow.exceptions import MlflowException

from grader.core.store import Store
from grader.ground import files

MAX_ARTIFACT_BYTES = 2 * 1024 * 1024


def show(value) -> str:
    """A value as a learner would write it (dicts sorted, so differences are easy to see)."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k!r}: {show(v)}" for k, v in sorted(value.items())) + "}"
    return repr(value)


def user_tags(tags: dict[str, str]) -> dict[str, str]:
    """Tags a person set: MLflow's own (``mlflow.*``) left out."""
    return {k: v for k, v in tags.items() if not k.startswith("mlflow.")}


def stored_params(params: dict) -> dict[str, str]:
    """What MLflow keeps of logged params: every value as a string."""
    return {k: str(v) for k, v in params.items()}


def runs_in(store: Store, experiment_id: str, view: int = ViewType.ALL) -> list[Run]:
    return store.client.search_runs([experiment_id], run_view_type=view, max_results=1000)


def returned_run(store: Store, run_id, experiment_id: str | None = None) -> Run:
    """The run a learner function returned the id of, in the expected experiment."""
    assert isinstance(run_id, str), f"the function should return the run id as a string, but returned {run_id!r}"
    try:
        run = store.client.get_run(run_id)
    except MlflowException:
        raise AssertionError(f"the function returned {run_id!r}, which is not the id of any run in the store") from None
    if experiment_id is not None:
        assert run.info.experiment_id == experiment_id, (
            f"run {run_id} was logged to experiment {run.info.experiment_id}, "
            f"not to experiment {experiment_id} that the function was given"
        )
    return run


def still_active(run_ids: list[str]) -> str:
    """What to say of runs the learner's code started with mlflow.start_run and never ended,
    one or many: the same words wherever a check finds them. (Module 6's project and REST
    runs end otherwise, and their checks say how.)"""
    runs = f"run {run_ids[0]} was" if len(run_ids) == 1 else f"runs {', '.join(run_ids)} were"
    return (f"{runs} still active when the function returned (status RUNNING): open each run with "
            "`with mlflow.start_run(...):` so it ends by itself, or end it with mlflow.end_run() "
            "(a run started inside another, nested=True, needs its own end too)")


def assert_finished(run: Run, active_run: str | None = None) -> None:
    if active_run == run.info.run_id or run.info.status == "RUNNING":  # RUNNING once it returned: never ended
        raise AssertionError(still_active([run.info.run_id]))
    assert run.info.status == "FINISHED", f"run {run.info.run_id} has status {run.info.status}, expected FINISHED"


def local_path(store: Store, uri: str) -> Path:
    """The local file behind an artifact URI, which must lie inside the store (the store
    says which URIs name its files: a server's store maps its mlflow-artifacts:/ URIs)."""
    path = store.local_file(uri)
    assert path is not None and store.contains(path), f"artifacts were stored at {uri}, outside the grader's store"
    return path


class Artifact:
    """A run's artifact file: read from the store without following a link, and only
    while it is a regular file no larger than MAX_ARTIFACT_BYTES (learner code wrote it,
    and may still be changing it)."""

    def __init__(self, store: Store, path: Path, relative: str):
        self.store, self.path, self.relative = store, path, relative

    def read_bytes(self) -> bytes:
        try:
            return files.read_bytes(self.store.anchor, self.path, MAX_ARTIFACT_BYTES)
        except OSError as error:
            raise AssertionError(_unreadable(self.relative, error)) from None

    def read_text(self, encoding: str = "utf-8", errors: str = "replace") -> str:
        return self.read_bytes().decode(encoding, errors=errors)


def _unreadable(relative: str, error: OSError) -> str:
    if error.errno == errno.EFBIG:
        return f"artifact {relative!r} is unexpectedly large"
    if error.errno in (errno.ENOENT, errno.ENOTDIR):
        return f"artifact {relative!r} is missing"
    return f"artifact {relative!r} points outside the store, or is not a file"


def artifact(store: Store, run: Run, relative: str) -> Artifact:
    """A run artifact, which must exist."""
    root = local_path(store, run.info.artifact_uri)
    path = root / relative
    try:
        files.open_regular(store.anchor, path, MAX_ARTIFACT_BYTES).close()
    except OSError as error:
        if error.errno not in (errno.ENOENT, errno.ENOTDIR):
            raise AssertionError(_unreadable(relative, error)) from None
        try:
            listing = sorted(files.entries(store.anchor, root, files_only=True))
        except OSError:
            listing = []
        raise AssertionError(
            f"run {run.info.run_id} has no artifact {relative!r}; its artifacts are {listing or 'none'}"
        ) from None
    return Artifact(store, path, relative)


def artifact_text(store: Store, run: Run, relative: str) -> str:
    return artifact(store, run, relative).read_text()


def artifact_json(store: Store, run: Run, relative: str):
    text = artifact_text(store, run, relative)
    try:
        return json.loads(text)
    except ValueError:
        raise AssertionError(f"artifact {relative!r} is not valid JSON: {text[:200]!r}") from None


def has_file(store: Store, folder: Path, relative: str) -> bool:
    """Whether a model folder holds a regular file (a link counts as none)."""
    return files.is_regular(store.anchor, folder / relative)


def close(a: float, b: float, tolerance: float = 1e-9) -> bool:
    return abs(float(a) - float(b)) <= tolerance


def mlmodel(store: Store, folder: Path) -> dict:
    """The MLmodel file of a model folder, read as plain YAML (never loading the model)."""
    import yaml

    path = folder / "MLmodel"
    try:
        text = files.read_bytes(store.anchor, path, MAX_ARTIFACT_BYTES).decode("utf-8", errors="replace")
    except OSError as error:
        assert error.errno not in (errno.ENOENT, errno.ENOTDIR), f"{folder} holds no MLmodel file, so it is not a model in MLflow format"
        raise AssertionError(f"{path} is not a model file the grader can read") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        raise AssertionError(f"{path} is not valid YAML") from None
    assert isinstance(data, dict), f"{path} does not describe a model"
    return data


def logged_model(store: Store, uri) -> "LoggedModel":  # noqa: F821
    """The LoggedModel behind ``models:/<model_id>`` or ``runs:/<run_id>/<name>``."""
    assert isinstance(uri, str), f"the function should return a model URI string, but returned {uri!r}"
    try:
        if uri.startswith("models:/m-"):
            return store.client.get_logged_model(uri.removeprefix("models:/").strip("/"))
        if uri.startswith("runs:/"):
            run_id, _, name = uri.removeprefix("runs:/").partition("/")
            run = store.client.get_run(run_id)
            found = store.client.search_logged_models(
                experiment_ids=[run.info.experiment_id],
                filter_string=f"source_run_id = '{run_id}' AND name = '{name.strip('/')}'",
            )
            if found:
                return found[0]
    except MlflowException:
        pass
    raise AssertionError(f"{uri!r} names no logged model in the store (expected models:/<model_id> or runs:/<run_id>/<name>)")


def logged_model_files(store: Store, model) -> Path:
    return local_path(store, model.artifact_location)


def signature_inputs(spec: dict) -> list[tuple[str, str]]:
    """(column, type) pairs of an MLmodel signature's inputs."""
    raw = (spec.get("signature") or {}).get("inputs")
    assert raw, "the model has no signature: pass signature=infer_signature(X, model.predict(X)) when logging it"
    return [(column.get("name"), column.get("type")) for column in json.loads(raw)]


def assert_same_predictions(held, expected, what: str) -> None:
    import numpy as np

    held, expected = np.asarray(held).ravel(), np.asarray(expected).ravel()
    assert held.shape == expected.shape, f"{what} gave {held.shape[0]} predictions for {expected.shape[0]} rows"
    if held.dtype.kind in "biuf" and expected.dtype.kind in "biuf":
        differ = np.flatnonzero(held.astype(float) != expected.astype(float))
    else:
        differ = np.flatnonzero(held.astype(str) != expected.astype(str))
    assert differ.size == 0, (
        f"{what} predicts differently from the original model on {differ.size} of {expected.size} rows "
        f"(row {differ[0]}: {held[differ[0]]!r} instead of {expected[differ[0]]!r})"
    )
