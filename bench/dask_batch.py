"""Batch grading on Dask against the same batch on this machine, in the same run.

    python bench/dask_batch.py [--repeat 3] [--batch-copies 20] [--json dask.json]

The same class (copies of solutions/) is graded with `--workers 2` (two grading slots on
this machine) and with `--dask local:2` (a LocalCluster of two Dask workers, a grading slot
each), rounds alternating between them. It prints both, the throughput ratio (goal: Dask at
least 0.9x the local batch) and the time per learner the engine adds, of which the
LocalCluster's start and stop (a cluster that is already running has none).
"""
from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from run import BUSY, REPO, bench_arguments, class_of_solutions, scores, spread, timed

GOAL = 0.9
START_CLUSTER = [sys.executable, "-c", (
    "import logging, distributed\n"
    "with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,"
    " resources={'grading-slot': 1}, silence_logs=logging.ERROR) as cluster, distributed.Client(cluster):\n"
    "    pass\n")]


def batch(submissions: Path, out: Path, engine: list[str], label: str) -> float:
    shutil.rmtree(out, ignore_errors=True)
    return timed([sys.executable, "-m", "grader", "batch", str(submissions), "--out", str(out), "--seed", "1", *engine],
                 label)


def main() -> int:
    args = bench_arguments(__doc__)
    sys.path.insert(0, str(REPO))
    scratch = Path(tempfile.mkdtemp(prefix="mlflow-kit-bench-dask-"))
    submissions = class_of_solutions(scratch / "class", args.batch_copies)
    engines = {"local --workers 2": ["--workers", "2"], "dask local:2": ["--dask", "local:2"]}
    runs: dict[str, list[float]] = {name: [] for name in [*engines, "LocalCluster start+stop"]}
    for round_ in range(args.repeat):
        order = list(engines) if round_ % 2 == 0 else list(reversed(engines))  # neither always goes first
        for name in order:
            runs[name].append(batch(submissions, scratch / name.split()[0], engines[name], name))
        started = time.monotonic()
        subprocess.run(START_CLUSTER, cwd=REPO, check=True, capture_output=True, env={**os.environ, "TMPDIR": str(scratch)})
        runs["LocalCluster start+stop"].append(time.monotonic() - started)
    same = scores(scratch / "local") == scores(scratch / "dask")
    local, dask = (statistics.median(runs[name]) for name in engines)
    figures = {
        "seconds": {name: {"median": statistics.median(v), "min": min(v), "max": max(v)} for name, v in runs.items()},
        "throughput_ratio": local / dask,
        "engine_seconds_per_learner": (dask - local) / args.batch_copies,
        "cluster_start_seconds_per_learner": statistics.median(runs["LocalCluster start+stop"]) / args.batch_copies,
        "same_scores": same,
        "cores_busy": {name: round(statistics.median(v), 2) for name, v in BUSY.items()},
    }
    print(f"{'measure':<36}median (min–max)")
    for name in runs:
        print(f"{name if name not in engines else f'{name}, {args.batch_copies} learners':<36}{spread(runs[name])}")
    print(f"\nthroughput, Dask / local: {figures['throughput_ratio']:.2f}x (goal >= {GOAL}x)")
    print(f"time the engine adds per learner: {figures['engine_seconds_per_learner']:+.2f} s, of which starting "
          f"and stopping the LocalCluster {figures['cluster_start_seconds_per_learner']:.2f} s")
    print(f"cores busy while each ran (of {os.cpu_count()}): "
          + ", ".join(f"{name} {c:.2f}" for name, c in figures["cores_busy"].items()))
    print("the same scores on both engines" if same else "WARNING: the engines gave different scores")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    shutil.rmtree(scratch, ignore_errors=True)
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
