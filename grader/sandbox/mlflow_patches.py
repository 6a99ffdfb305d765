"""Every change the kit makes to MLflow's own code while grading, in one place.

Each patch replaces a name MLflow looks up when it runs; ``PATCHED`` lists them all, and
tests/test_mlflow_patches.py fails when an MLflow release renames one, or stops calling
it, so that no patch silently stops working. What is stored, and every check, stay
exactly as they were: the patches skip work whose answer the grader knows already.

- ``pin_store`` (in each learner call): learner code logs to the grader's temporary
  store, whatever URI it sets (``IGNORED`` keeps what it set, for a note to the learner).
- ``skip_machine_probes`` (in the worker, before it forks calls): ``log_model`` infers a
  model's pip requirements by loading it again in a fresh subprocess; every flavor passes
  its default requirements as the fallback, so the logged model still gets a
  requirements.txt, only its list is the flavor's default one. Comparing a model's
  requirements with every installed distribution only ever warns in the call's output;
  and ``start_run`` imports IPython to look for a Databricks notebook. Outside Databricks
  all of these answer "nothing".
- ``speed_up_sqlite_stores`` (in the worker, and in the scoring process before its first
  store): MLflow redoes two things for every SQLite store it opens. It finds the newest
  schema migration by reading every migration script: the answer is fixed for the
  installed MLflow, so it is remembered. And it makes a new SQLAlchemy engine whose new
  dialect starts with an empty cache of compiled SQL: all stores are SQLite databases of
  one schema opened through one driver, so their engines share the first engine's
  dialect and cache.
- ``warm_project_scripts`` (in the worker, before it forks calls): an MLflow Project whose
  entry point is this environment's ``python SCRIPT ...`` runs it in a fork of the call,
  where MLflow is imported already, rather than in a new Python through bash (warm.py says
  how, and what of a new process the fork has). MLflow still checks the parameters, makes
  the run, sets its tags and waits for the script; any other command runs as before.

Both the grader and the sandbox worker use this module, so it imports nothing from the
grader (the sandbox sees this file beside worker.py, not the grader package).
"""
from __future__ import annotations

import functools
import importlib
import sys
import threading

# (module, name) of everything replaced below.
PATCHED = (
    ("mlflow", "set_tracking_uri"),
    ("mlflow", "set_registry_uri"),
    ("mlflow.tracking", "set_tracking_uri"),
    ("mlflow.tracking", "set_registry_uri"),
    ("mlflow.models", "infer_pip_requirements"),
    ("mlflow.utils.requirements_utils", "warn_dependency_requirement_mismatches"),
    ("mlflow.utils.environment", "warn_dependency_requirement_mismatches"),
    ("mlflow.pyfunc", "warn_dependency_requirement_mismatches"),
    ("mlflow.utils.databricks_utils", "_get_dbutils"),
    ("mlflow.store.db.utils", "_get_latest_schema_revision"),
    ("mlflow.store.db.utils", "create_sqlalchemy_engine"),
    ("mlflow.projects.backend.local", "_run_entry_point"),
)
MARK = "_exercise_kit_patched"  # set on a module once its patches are in


def _replace(module_name: str, name: str, replacement) -> None:
    """A name MLflow no longer has is left alone here (grading still works, if slower):
    tests/test_mlflow_patches.py is where a rename fails loudly."""
    module = importlib.import_module(module_name)
    if hasattr(module, name):
        setattr(module, name, replacement)


# ------------------------------------------------------------------ the learner's store
def pin_store() -> None:
    """In a learner call: MLflow's calls that set the tracking or registry URI are ignored
    (with a word in the call's output), so learner code logs to the grader's store."""
    for module in ("mlflow", "mlflow.tracking"):
        for api in ("set_tracking_uri", "set_registry_uri"):
            _replace(module, api, _ignored(api))


def source_is(path: str) -> None:
    """In a learner call: the runs it starts name ``path`` (the learner's module) as their
    source, and the git commit, if any, of the folder that holds it; not the worker's file
    and the kit's own commit, which MLflow worked out (and kept) as the worker warmed up."""
    import sys

    from mlflow.tracking.context.git_context import GitRunContext
    from mlflow.tracking.context.registry import _run_context_provider_registry

    sys.argv[:] = [path]
    for provider in _run_context_provider_registry:
        if isinstance(provider, GitRunContext):
            provider._cache.clear()


# What learner code asked of the APIs pin_store ignores, in this call: the worker passes it
# on, and the learner gets a note saying so (and why).
IGNORED: list[dict] = []


def _ignored(api_name: str):
    def ignored(uri=None, *args, **kwargs):
        print(
            f"[grader] mlflow.{api_name}({uri!r}) was ignored: while grading, your code "
            "logs to a temporary store the grader made for this check.",
            file=sys.stderr,
        )
        if len(IGNORED) < 5:
            IGNORED.append({"api": f"mlflow.{api_name}", "uri": str(uri)[:300]})

    return ignored


# ------------------------------------------------------------------ probes of the machine
def skip_machine_probes() -> None:
    import mlflow.utils.databricks_utils as databricks

    _replace("mlflow.models", "infer_pip_requirements", _default_requirements)
    for module in ("mlflow.utils.requirements_utils", "mlflow.utils.environment", "mlflow.pyfunc"):
        _replace(module, "warn_dependency_requirement_mismatches", _no_mismatch_warning)

    def not_in_databricks():
        raise databricks._NoDbutilsError

    _replace("mlflow.utils.databricks_utils", "_get_dbutils", not_in_databricks)


def _default_requirements(model_uri, flavor, fallback=None, *args, **kwargs):
    return list(fallback or [])


def _no_mismatch_warning(model_requirements):
    return None


# ------------------------------------------------------------------ SQLite stores
def speed_up_sqlite_stores() -> None:
    """Once per process; what is stored, and every query, stay as they were."""
    import mlflow.store.db.utils as db_utils

    if getattr(db_utils, MARK, False):
        return
    _replace("mlflow.store.db.utils", "_get_latest_schema_revision", functools.cache(db_utils._get_latest_schema_revision))
    _replace("mlflow.store.db.utils", "create_sqlalchemy_engine", _sharing_compiled_sql(db_utils.create_sqlalchemy_engine))
    setattr(db_utils, MARK, True)


def _sharing_compiled_sql(create_engine):
    first = {}
    lock = threading.Lock()

    @functools.wraps(create_engine)
    def create(db_uri):
        engine = create_engine(db_uri)
        if not db_uri.startswith("sqlite"):
            return engine
        with lock:
            if not first:
                # Initialise the dialect with a real connection before others share it.
                engine.connect().close()
                first.update(dialect=engine.dialect, cache=engine._compiled_cache)
            else:
                # Statements are compiled by the connection's dialect (engine.dialect); the
                # pool keeps its own dialect for connecting, so each file still opens apart.
                engine.dialect = first["dialect"]
                engine._compiled_cache = first["cache"]
        return engine

    return create


# ------------------------------------------------------------------ MLflow Projects
def warm_project_scripts(warm) -> None:
    """``warm``: grader/sandbox/warm.py, as the worker loaded it."""
    import mlflow.projects.backend.local as local

    if getattr(local, MARK, False):
        return
    _replace("mlflow.projects.backend.local", "_run_entry_point", _warm_entry_point(local._run_entry_point, warm))
    setattr(local, MARK, True)


def _warm_entry_point(run_entry_point, warm):
    @functools.wraps(run_entry_point)
    def run(command, work_dir, experiment_id, run_id):
        import os

        import mlflow
        import mlflow.projects.backend.local as local

        try:  # the environment MLflow gives the entry point's command
            env = os.environ.copy()
            env.update(local.get_run_env_vars(run_id, experiment_id))
            env.update(local.get_databricks_env_vars(tracking_uri=mlflow.get_tracking_uri()))
            words = warm.shell_words(command)
            arguments = warm.arguments_of(words, env.get("PATH")) if words else None
        except Exception:  # noqa: BLE001 - MLflow changed: run it MLflow's way
            arguments = None
        if not arguments:
            return run_entry_point(command, work_dir, experiment_id, run_id)
        return local.LocalSubmittedRun(run_id, warm.start(arguments, env=env, cwd=work_dir))

    return run
