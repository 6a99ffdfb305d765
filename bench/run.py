"""Grading speed and memory, as ratios to the floor measured in the same run.

    python bench/run.py [--repeat 3] [--json bench.json] [--batch-copies 20]

The floor is one Python process importing MLflow and scikit-learn: grading cannot cost
less. Repetitions alternate between the measured commands (so a slow minute of the machine
hits all of them alike); the table shows medians and min–max.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FLOOR = [sys.executable, "-c", "import mlflow.sklearn, sklearn.ensemble, sklearn.linear_model"]
TARGETS = {"self_check": 3.0, "batch_1_per_submission": 2.5, "speedup_2_slots": 1.8, "max_rss_mb": 500}


BUSY: dict[str, list[float]] = {}  # per command: cores the machine kept busy while it ran


def busy_cpu_seconds() -> float | None:
    """CPU seconds the whole machine has spent so far, every core and process (Linux)."""
    try:
        with open("/proc/stat") as handle:
            user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, handle.readline().split()[1:9])
    except (OSError, ValueError):
        return None
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def timed(command: list[str], label: str, **kwargs) -> float:
    """Wall seconds; and, in BUSY, how many cores were busy meanwhile. The bench runs alone,
    so that is what the command used, sandboxed processes included."""
    started, busy = time.monotonic(), busy_cpu_seconds()
    subprocess.run(command, cwd=REPO, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kwargs)
    seconds = time.monotonic() - started
    if busy is not None:
        BUSY.setdefault(label, []).append((busy_cpu_seconds() - busy) / seconds)
    return seconds


def self_check(out: Path) -> float:
    return timed([sys.executable, "-m", "pytest", "grader", "-q", "-p", "no:cacheprovider",
                  "--target", "solutions", "--grade-json", str(out)], "self_check")


def batch_available() -> bool:
    return subprocess.run([sys.executable, "-m", "grader", "batch", "--help"], cwd=REPO,
                          capture_output=True).returncode == 0


def batch(submissions: Path, out: Path, slots: int) -> float:
    shutil.rmtree(out, ignore_errors=True)
    return timed([sys.executable, "-m", "grader", "batch", str(submissions), "--out", str(out),
                  "--workers", str(slots), "--seed", "1"],
                 "batch_1_slot" if slots == 1 else f"batch_{slots}_slots")


def batch_memory(out: Path) -> dict:
    """The largest peaks over the batch's learners: each forked scoring process, each
    learner worker's calls, and a whole grading (scoring, worker and calls; shared pages once)."""
    facts = [json.loads(p.read_text()) for p in out.glob("*/batch.json")]
    results = [json.loads(p.read_text()) for p in out.glob("*/results.json")]
    learner = [r["extra_data"].get("resources", {}).get("learner_process_max_rss_mb", 0) for r in results]
    return {
        "scoring_process_max_rss_mb": round(max((f["peak_rss_kb"] for f in facts), default=0) / 1024, 1),
        "learner_process_max_rss_mb": max(learner, default=0),
        "grading_max_pss_mb": round(max((f.get("peak_pss_kb", 0) for f in facts), default=0) / 1024, 1),
    }


def class_of_solutions(folder: Path, learners: int) -> Path:
    """A submissions folder of ``learners`` copies of solutions/."""
    for i in range(learners):
        shutil.copytree(REPO / "solutions", folder / f"learner{i:02d}", ignore=shutil.ignore_patterns("__pycache__"))
    return folder


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):7.2f} s  ({min(values):.2f}–{max(values):.2f})"


def bench_arguments(doc: str) -> argparse.Namespace:
    """The options every bench takes (declared once), parsed."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--batch-copies", type=int, default=20)
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
    return parser.parse_args()


def main() -> int:
    args = bench_arguments(__doc__)
    scratch = Path(tempfile.mkdtemp(prefix="mlflow-kit-bench-"))
    submissions = class_of_solutions(scratch / "class", args.batch_copies)
    runs: dict[str, list[float]] = {"floor": [], "self_check": []}
    with_batch = batch_available()
    if with_batch:
        runs.update({"batch_1_slot": [], "batch_2_slots": []})
    for round_ in range(args.repeat):  # alternate the commands within every round
        runs["floor"].append(timed(FLOOR, "floor"))
        runs["self_check"].append(self_check(scratch / f"self-check-{round_}.json"))
        if with_batch:
            runs["batch_1_slot"].append(batch(submissions, scratch / "out-1", 1))
            runs["batch_2_slots"].append(batch(submissions, scratch / "out-2", 2))
    floor = statistics.median(runs["floor"])
    results = json.loads((scratch / "self-check-0.json").read_text())
    figures = {
        "seconds": {name: {"median": statistics.median(v), "min": min(v), "max": max(v)} for name, v in runs.items()},
        "ratios": {"self_check": statistics.median(runs["self_check"]) / floor},
        "timing_per_function": results["extra_data"].get("timing", {}),
        "resources": results["extra_data"].get("resources", {}),
        "targets": TARGETS,
        "cores_busy": {name: round(statistics.median(v), 2) for name, v in BUSY.items()},
    }
    if with_batch:
        figures["batch_resources"] = batch_memory(scratch / "out-1")
        per_submission = statistics.median(runs["batch_1_slot"]) / args.batch_copies
        figures["ratios"]["batch_1_per_submission"] = per_submission / floor
        figures["ratios"]["speedup_2_slots"] = statistics.median(runs["batch_1_slot"]) / statistics.median(runs["batch_2_slots"])
    print_table(runs, figures, args.batch_copies, with_batch)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    shutil.rmtree(scratch, ignore_errors=True)
    return 0


def print_table(runs, figures, copies, with_batch) -> None:
    print(f"{'measure':<34}{'median (min–max)':<28}ratio   target")
    print(f"{'floor: import mlflow + sklearn':<34}{spread(runs['floor'])}")
    ratio = figures["ratios"]["self_check"]
    print(f"{'self-check, 19 functions':<34}{spread(runs['self_check'])}  {ratio:5.2f}x  <= {TARGETS['self_check']}x")
    if with_batch:
        print(f"{f'batch, {copies} copies, 1 slot':<34}{spread(runs['batch_1_slot'])}  "
              f"{figures['ratios']['batch_1_per_submission']:5.2f}x  <= {TARGETS['batch_1_per_submission']}x per submission")
        print(f"{f'batch, {copies} copies, 2 slots':<34}{spread(runs['batch_2_slots'])}  "
              f"{figures['ratios']['speedup_2_slots']:5.2f}x  >= {TARGETS['speedup_2_slots']}x faster than 1 slot")
    else:
        print("batch: `python -m grader batch` is not available in this checkout")
    resources = figures["resources"]
    print(f"peak memory: scoring process {resources.get('scoring_process_max_rss_mb')} MB, "
          f"learner process {resources.get('learner_process_max_rss_mb')} MB (target <= {TARGETS['max_rss_mb']} MB each)")
    if with_batch:
        memory = figures["batch_resources"]
        print(f"batch peak memory: scoring process {memory['scoring_process_max_rss_mb']} MB, learner process "
              f"{memory['learner_process_max_rss_mb']} MB; a whole grading {memory['grading_max_pss_mb']} MB (PSS)")
    cores = figures["cores_busy"]
    if cores:
        print(f"\ncores busy while each ran (of {os.cpu_count()}): " + ", ".join(f"{name} {c:.2f}" for name, c in cores.items()))
        print("(one grading already runs its checks and calls side by side: once it fills the cores, "
              "a second slot has none left to use)")
    print("\nwhere the time goes (seconds, first self-check run):")
    print(f"  {'function':<42}{'learner call':>13}{'store prep':>12}{'checks':>9}")
    for key, parts in figures["timing_per_function"].items():
        print(f"  {key:<42}{parts['learner_call']:>13.2f}{parts['store_preparation']:>12.2f}{parts['checks']:>9.2f}")


if __name__ == "__main__":
    sys.exit(main())
