"""Work that grading processes would repeat for nothing, done once or not at all.

Both the grader and the sandbox worker use this module, so it imports nothing from the
grader (the sandbox sees this file and worker.py, not the grader package).

**One BLAS thread.** The fits made while grading are tiny; a BLAS thread pool per process
only spins beside the calls that run side by side on a small machine. Must run before
NumPy is imported.

**Stores.** Two things MLflow redoes for every SQLite store it opens are done once per process.

Grading opens dozens of fresh stores, each with the same schema: the grader's client opens
every one, and every learner call opens its own. Per store, MLflow

- finds the newest schema migration by reading every migration script; the answer is
  fixed for the installed MLflow, so it is remembered;
- makes a new SQLAlchemy engine, whose new dialect starts with an empty cache of compiled
  SQL, so every statement is compiled again. All stores are SQLite databases of one schema
  opened through one driver: their engines share the first engine's dialect and cache.

What is stored, and every query and check, stay exactly as they were.
"""
from __future__ import annotations

import functools
import os
import threading


def one_blas_thread() -> None:
    for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(variable, "1")


def speed_up_sqlite_stores() -> None:
    import mlflow.store.db.utils as db_utils

    if getattr(db_utils, "_exercise_kit_speedups", False):
        return
    db_utils._get_latest_schema_revision = functools.cache(db_utils._get_latest_schema_revision)
    db_utils.create_sqlalchemy_engine = _sharing_compiled_sql(db_utils.create_sqlalchemy_engine)
    db_utils._exercise_kit_speedups = True


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
