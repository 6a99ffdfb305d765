"""Work that grading processes would repeat for nothing, done once or not at all.

Both the grader and the sandbox worker use this module, so it imports nothing from the
grader (the sandbox sees this file and worker.py, not the grader package).

**One BLAS thread.** The fits made while grading are tiny; a BLAS thread pool per process
only spins beside the calls that run side by side on a small machine. Must run before
NumPy is imported.

**Huge pages before forking.** A process that forks one child per call copies its page
tables each time, and each child tears its own down. Collapsing the warm heap into 2 MB
pages first makes both a fraction of the work; a child that writes to a page still copies
only 4 KB of it (Linux 6.1+; elsewhere nothing happens).

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

import ctypes
import functools
import os
import threading

MADV_COLLAPSE = 25
HUGE_PAGE = 2 << 20


def one_blas_thread() -> None:
    for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(variable, "1")


def collapse_into_huge_pages() -> int:
    """Back this process's anonymous memory with huge pages, where the kernel can; the
    bytes collapsed (0 where it cannot)."""
    try:
        madvise = ctypes.CDLL(None, use_errno=True).madvise
        madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        with open("/proc/self/maps") as maps:
            regions = [line.split() for line in maps]
    except (OSError, AttributeError):
        return 0
    collapsed = 0
    for fields in regions:
        if not fields[1].startswith("rw") or (len(fields) > 5 and fields[5] != "[heap]"):
            continue  # files and stacks stay as they are
        low, high = (int(address, 16) for address in fields[0].split("-"))
        start, end = -(-low // HUGE_PAGE) * HUGE_PAGE, high // HUGE_PAGE * HUGE_PAGE
        if end > start and madvise(start, end - start, MADV_COLLAPSE) == 0:
            collapsed += end - start
    return collapsed


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
