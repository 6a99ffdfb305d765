"""Work that grading processes would repeat for nothing, done once or not at all.

Both the grader and the sandbox worker use this module, so it imports nothing from the
grader (the sandbox sees this file beside worker.py, not the grader package).

**One BLAS thread.** The fits made while grading are tiny; a BLAS thread pool per process
only spins beside the calls that run side by side on a small machine. Must run before
NumPy is imported.

**Huge pages before forking.** A process that forks one child per call copies its page
tables each time, and each child tears its own down. Collapsing the warm heap into 2 MB
pages first makes both a fraction of the work; a child that writes to a page still copies
only 4 KB of it (Linux 6.1+; elsewhere nothing happens).

The changes to MLflow's own code that save work live in mlflow_patches.py.
"""
from __future__ import annotations

import ctypes
import os

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
