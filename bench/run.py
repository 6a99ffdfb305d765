"""Grading speed and memory, as ratios to baselines measured in the same run.

    python bench/run.py [--repeat 3] [--batch-copies 20] [--notebook-copies 5] [--watch-saves 5] [--json bench.json]
    python bench/run.py --quick      # a smoke run: 1 round, 3 learners, 3 notebooks, 2 watch saves

The floor is one Python process importing MLflow and scikit-learn: grading cannot cost
less. Measured against it: a cold `pytest grader` of the solutions, a batch of learners on
one slot (per learner), and watch's save to verdict. Measured against each other: a batch
slot pinned to one core against two slots on two cores, and `nbgrader autograde` against
the kit's batch of the same notebooks. Repetitions alternate between the measured commands
(so a slow minute of the machine hits all of them alike); the table shows medians and
min–max, then every ratio against its target, MET or MISSED.
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
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

FLOOR = [sys.executable, "-c", "import mlflow.sklearn, sklearn.ensemble, sklearn.linear_model"]
NBGRADER_ENV = {"KIT_ROOT": str(REPO), "KIT_SEED": "1", "MLFLOW_DISABLE_TELEMETRY": "true"}


@dataclass(frozen=True)
class Target:
    label: str
    bound: str  # "<=" or ">=": which side of ``value`` is MET
    value: float
    unit: str = "x"

    def met(self, figure: float) -> bool:
        return figure <= self.value if self.bound == "<=" else figure >= self.value


TARGETS = {
    "self_check": Target("self-check / floor", "<=", 3.0),
    "batch_per_learner": Target("batch, a learner on 1 slot / floor", "<=", 1.5),
    "per_core_scaling": Target("1 slot on 1 core / 2 slots on 2 cores", ">=", 1.8),
    "nbgrader_over_kit": Target("nbgrader autograde / kit's batch", ">=", 5.0),
    "watch_seconds": Target("watch: save -> verdict", "<=", 0.5, " s"),
    "max_rss_mb": Target("peak memory of one process", "<=", 500, " MB"),
}


class Unavailable(Exception):
    """A measure that cannot run on this machine; its message says why."""


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
    kwargs.setdefault("cwd", REPO)
    started, busy = time.monotonic(), busy_cpu_seconds()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kwargs)
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


def batch(submissions: Path, out: Path, label: str, slots: int | None = 1, cpus: set[int] | None = None) -> float:
    """A batch of ``submissions`` (``slots`` None: the kit's default), on ``cpus`` only if given:
    the affinity is inherited by every process the batch starts, sandboxes included."""
    shutil.rmtree(out, ignore_errors=True)
    pin = (lambda: os.sched_setaffinity(0, cpus)) if cpus else None
    workers = ["--workers", str(slots)] if slots else []
    return timed([sys.executable, "-m", "grader", "batch", str(submissions), "--out", str(out), *workers, "--seed", "1"],
                 label, preexec_fn=pin)


def scaling_cores() -> tuple[set[int], set[int]]:
    """(one core, two cores) among those this process may use; Unavailable on fewer than two."""
    allowed = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(allowed) < 2:
        raise Unavailable(f"per-core scaling needs two cores this process may pin to; it may use {len(allowed) or 'an unknown number of'}")
    return {allowed[0]}, set(allowed[:2])


def scores(out: Path) -> dict[str, str]:
    """Learner -> score, from a batch's gradebook.csv."""
    from grader.batch import sheets

    return {row["learner"]: row["score"] for row in sheets.read_csv(out / "gradebook.csv")[1]}


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


def learner_names(learners: int) -> list[str]:
    return [f"learner{i:02d}" for i in range(learners)]


def class_of_solutions(folder: Path, learners: int) -> Path:
    """A submissions folder of ``learners`` copies of solutions/."""
    for name in learner_names(learners):
        shutil.copytree(REPO / "solutions", folder / name, ignore=shutil.ignore_patterns("__pycache__"))
    return folder


def nbgrader(course: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """`nbgrader ARGS` in ``course``, its kernels finding the kit through KIT_ROOT."""
    return subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, capture_output=True, text=True,
                          env={**os.environ, **NBGRADER_ENV}, check=check)


def released_course(scratch: Path) -> Path:
    """A copy of course/ with nbgrader's release made, as the course's README says; Unavailable
    with nbgrader's own words when it cannot run here."""
    from grader.authoring import notebooks

    course = scratch / "course"
    shutil.copytree(REPO / "course", course, ignore=shutil.ignore_patterns("__pycache__"))
    made = nbgrader(course, "generate_assignment", notebooks.ASSIGNMENT, "--force", check=False)
    if made.returncode != 0:
        last = (made.stderr or made.stdout).strip().splitlines()[-1:] or [f"exit status {made.returncode}"]
        raise Unavailable(f"`nbgrader generate_assignment` failed here: {last[0]}")
    return course


def class_of_notebooks(course: Path, folder: Path, learners: int) -> Path:
    """``learners`` notebooks made from the course's release filled with the solutions, handed in
    twice over: into nbgrader's submitted/ and as ``folder``/<learner>.ipynb for the kit's batch."""
    import nbformat

    from grader.authoring import notebooks

    notebook = notebooks.filled(notebooks.released(course), notebooks.solution_code)
    folder.mkdir(parents=True, exist_ok=True)
    for name in learner_names(learners):
        notebooks.submitted(course, name).parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(notebook, str(notebooks.submitted(course, name)))
        nbformat.write(notebook, str(folder / f"{name}.ipynb"))
    return folder


def autograde(course: Path) -> float:
    from grader.authoring import notebooks

    try:
        return timed([sys.executable, "-m", "nbgrader", "autograde", notebooks.ASSIGNMENT, "--force"], "nbgrader_autograde",
                     cwd=course, env={**os.environ, **NBGRADER_ENV})
    except subprocess.CalledProcessError as failed:
        raise Unavailable(f"`nbgrader autograde` exited with status {failed.returncode}") from None


def nbgrader_scores(course: Path) -> dict[str, str]:
    """Learner -> score nbgrader gave (its export, not timed): a fast autograde that scored
    nothing would be no comparison."""
    import csv

    if nbgrader(course, "export", "--to", str(course / "grades.csv"), check=False).returncode != 0:
        return {}
    with open(course / "grades.csv", newline="") as handle:
        return {row["student_id"]: row["score"] for row in csv.DictReader(handle)}


def watch_seconds(scratch: Path, saves: int) -> list[float]:
    """bench/watch.py's save -> ✔ on screen, ``saves`` times (a watch of its own, once a run)."""
    if shutil.which("tmux") is None:
        raise Unavailable("watch's save -> verdict is read off a tmux screen, and tmux is not installed")
    import watch

    folder, env = watch.stubs_copy(scratch / "watch")
    return watch.save_to_verdict(folder, env, saves, beside_a_hang=False)["saves"]


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):7.2f} s  ({min(values):.2f}–{max(values):.2f})"


def bench_parser(doc: str) -> argparse.ArgumentParser:
    """The options every bench takes (declared once)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--batch-copies", type=int, default=20)
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
    return parser


def bench_arguments(doc: str) -> argparse.Namespace:
    return bench_parser(doc).parse_args()


def arguments() -> argparse.Namespace:
    parser = bench_parser(__doc__)
    # nbgrader runs every check cell of every notebook in a kernel of its own: about a minute
    # a notebook on 2 cores, so fewer notebooks than batch learners keep a run near half an hour.
    parser.add_argument("--notebook-copies", type=int, default=5, help="learners' notebooks graded by nbgrader and the kit")
    parser.add_argument("--watch-saves", type=int, default=5, help="saves of a correct log_run timed in watch")
    parser.add_argument("--quick", action="store_true", help="a smoke run: --repeat 1 --batch-copies 3 "
                        "--notebook-copies 3 --watch-saves 2")
    args = parser.parse_args()
    if args.quick:
        args.repeat, args.batch_copies, args.notebook_copies, args.watch_saves = 1, 3, 3, 2
    return args


def measures(scratch: Path, learners: int, notebook_learners: int, skipped: dict[str, str]) -> dict:
    """Label -> what times one run of it; what cannot run here is left out, its reason in ``skipped``."""
    found = {"floor": lambda _round: timed(FLOOR, "floor"),
             "self_check": lambda round_: self_check(scratch / f"self-check-{round_}.json")}
    if not batch_available():
        skipped["batch"] = "`python -m grader batch` is not available in this checkout"
        return found
    submissions = class_of_solutions(scratch / "class", learners)
    found["batch_1_slot"] = lambda _round: batch(submissions, scratch / "out-1", "batch_1_slot")
    try:
        one, two = scaling_cores()
        found["batch_1_slot_1_core"] = lambda _round: batch(submissions, scratch / "out-1-core", "batch_1_slot_1_core", 1, one)
        found["batch_2_slots_2_cores"] = lambda _round: batch(submissions, scratch / "out-2", "batch_2_slots_2_cores", 2, two)
    except Unavailable as why:
        skipped["per_core_scaling"] = str(why)
    try:
        course = released_course(scratch)
        notebooks = class_of_notebooks(course, scratch / "notebooks", notebook_learners)
        found["nbgrader_autograde"] = lambda _round: autograde(course)
        found["kit_batch_notebooks"] = lambda _round: batch(notebooks, scratch / "out-notebooks", "kit_batch_notebooks", None)
    except Unavailable as why:
        skipped["nbgrader_over_kit"] = str(why)
    return found


# The measures a target compares: when one cannot run, its partner is not worth running.
TARGET_OF = {"batch_1_slot_1_core": "per_core_scaling", "batch_2_slots_2_cores": "per_core_scaling",
             "nbgrader_autograde": "nbgrader_over_kit", "kit_batch_notebooks": "nbgrader_over_kit"}


def measure(found: dict, repeat: int, skipped: dict[str, str]) -> dict[str, list[float]]:
    """Every measure once a round, in turn; one that turns out unable to run is dropped, with
    the measures it was to be compared with."""
    runs: dict[str, list[float]] = {label: [] for label in found}
    for round_ in range(repeat):
        for label, run in list(found.items()):
            if label not in found:
                continue  # dropped this round with its partner
            try:
                runs[label].append(run(round_))
            except Unavailable as why:
                target = TARGET_OF.get(label, label)
                skipped[target] = str(why)
                for dropped in [label, *(other for other, of in TARGET_OF.items() if of == target)]:
                    found.pop(dropped, None)
                    runs.pop(dropped, None)
    return runs


def ratios(runs: dict[str, list[float]], learners: int) -> dict[str, float]:
    """The figures the targets judge, from what was measured."""
    median = {label: statistics.median(values) for label, values in runs.items() if values}
    found = {"self_check": median["self_check"] / median["floor"]}
    if "batch_1_slot" in median:
        found["batch_per_learner"] = median["batch_1_slot"] / learners / median["floor"]
    if {"batch_1_slot_1_core", "batch_2_slots_2_cores"} <= median.keys():
        found["per_core_scaling"] = median["batch_1_slot_1_core"] / median["batch_2_slots_2_cores"]
    if {"nbgrader_autograde", "kit_batch_notebooks"} <= median.keys():
        found["nbgrader_over_kit"] = median["nbgrader_autograde"] / median["kit_batch_notebooks"]
    if "watch" in median:
        found["watch_seconds"] = median["watch"]
        found["watch_over_floor"] = median["watch"] / median["floor"]
    return found


def max_rss(resources: dict, batch_resources: dict) -> float:
    """The largest peak of any single process: scoring or learner, self-check or batch (a whole
    grading's PSS is several processes: reported, not judged)."""
    keys = ("scoring_process_max_rss_mb", "learner_process_max_rss_mb")
    return max(float(source.get(key) or 0) for source in (resources, batch_resources) for key in keys)


def verdicts(figures: dict[str, float], skipped: dict[str, str]) -> dict[str, str]:
    """Each target's verdict: MET, MISSED, or SKIPPED with the reason (a figure not measured)."""
    found = {}
    for name, target in TARGETS.items():
        if name in figures:
            found[name] = "MET" if target.met(figures[name]) else "MISSED"
        else:
            found[name] = "SKIPPED: " + skipped.get(name, skipped.get("batch", "not measured"))
    return found


def verdict_table(figures: dict[str, float], skipped: dict[str, str]) -> list[str]:
    """The targets, one line each: what was measured, the target, the verdict."""
    lines = [f"{'target':<42}{'measured':>12}  {'target':<12}verdict"]
    for name, verdict in verdicts(figures, skipped).items():
        target = TARGETS[name]
        measured = f"{figures[name]:.2f}{target.unit}" if name in figures else "-"
        lines.append(f"{target.label:<42}{measured:>12}  {f'{target.bound} {target.value:g}{target.unit}':<12}{verdict}")
    return lines


def main() -> int:
    args = arguments()
    scratch = Path(tempfile.mkdtemp(prefix="mlflow-kit-bench-"))
    skipped: dict[str, str] = {}
    runs = measure(measures(scratch, args.batch_copies, args.notebook_copies, skipped), args.repeat, skipped)
    try:
        runs["watch"] = watch_seconds(scratch, args.watch_saves)
    except Unavailable as why:
        skipped["watch_seconds"] = str(why)
    figures = summary(runs, scratch, (args.batch_copies, args.notebook_copies), skipped)
    print_table(runs, figures)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    shutil.rmtree(scratch, ignore_errors=True)
    return 0


def summary(runs: dict[str, list[float]], scratch: Path, counts: tuple[int, int], skipped: dict[str, str]) -> dict:
    """Everything the run found, as --json writes it; ``counts``: (learners, notebook learners)."""
    from grader.core import catalogue

    learners, notebook_learners = counts
    results = json.loads((scratch / "self-check-0.json").read_text())
    figures = {
        "learners": learners,
        "notebook_learners": notebook_learners,
        "functions": len(catalogue.load().exercises),
        "seconds": {name: {"median": statistics.median(v), "min": min(v), "max": max(v)} for name, v in runs.items() if v},
        "ratios": ratios(runs, learners),
        "timing_per_function": results["extra_data"].get("timing", {}),
        "resources": results["extra_data"].get("resources", {}),
        "batch_resources": batch_memory(scratch / "out-1") if "batch_1_slot" in runs else {},
        "cores_busy": {name: round(statistics.median(v), 2) for name, v in BUSY.items()},
        "targets": {name: asdict(target) for name, target in TARGETS.items()},
        "skipped": skipped,
    }
    if "nbgrader_autograde" in runs:
        figures["scores"] = {"nbgrader": nbgrader_scores(scratch / "course"), "kit": scores(scratch / "out-notebooks")}
    figures["max_rss_mb"] = max_rss(figures["resources"], figures["batch_resources"])
    judged = {**figures["ratios"], "max_rss_mb": figures["max_rss_mb"]}
    figures["verdicts"] = verdicts(judged, skipped)
    figures["verdict_table"] = verdict_table(judged, skipped)
    return figures


LABELS = {
    "floor": "floor: import mlflow + sklearn",
    "self_check": "self-check, {functions} functions",
    "batch_1_slot": "batch, {learners} learners, 1 slot",
    "batch_1_slot_1_core": "batch, {learners} learners, 1 slot on 1 core",
    "batch_2_slots_2_cores": "batch, {learners} learners, 2 slots on 2 cores",
    "nbgrader_autograde": "nbgrader autograde, {notebooks} notebooks",
    "kit_batch_notebooks": "kit batch, the same {notebooks} notebooks",
    "watch": "watch: save -> ✔ on screen",
}


def print_table(runs: dict[str, list[float]], figures: dict) -> None:
    counts = {"learners": figures["learners"], "notebooks": figures["notebook_learners"], "functions": figures["functions"]}
    print(f"{'measure':<44}median (min–max)")
    for name, values in runs.items():
        if values:
            print(f"{LABELS[name].format(**counts):<44}{spread(values)}")
    for name, why in figures["skipped"].items():
        print(f"skipped ({name}): {why}")
    if "watch_over_floor" in figures["ratios"]:
        print(f"watch's save -> verdict is {figures['ratios']['watch_over_floor']:.2f}x the floor")
    print_memory(figures)
    print_scores(figures)
    cores = figures["cores_busy"]
    if cores:
        # The whole machine's: on a machine shared with other work, every figure reads as all cores.
        print(f"\ncores busy while each ran (of {os.cpu_count()}): " + ", ".join(f"{name} {c:.2f}" for name, c in cores.items()))
    print_where_time_goes(figures["timing_per_function"])
    print("\n" + "\n".join(figures["verdict_table"]))


def print_memory(figures: dict) -> None:
    resources = figures["resources"]
    print(f"peak memory: scoring process {resources.get('scoring_process_max_rss_mb')} MB, "
          f"learner process {resources.get('learner_process_max_rss_mb')} MB")
    memory = figures["batch_resources"]
    if memory:
        print(f"batch peak memory: scoring process {memory['scoring_process_max_rss_mb']} MB, learner process "
              f"{memory['learner_process_max_rss_mb']} MB; a whole grading {memory['grading_max_pss_mb']} MB (PSS)")


def print_scores(figures: dict) -> None:
    """Both graders' scores of the same notebooks: a comparison holds only if both graded them."""
    if "scores" in figures:
        nbgrader_, kit = (sorted(set(figures["scores"][side].values())) or ["(none read)"] for side in ("nbgrader", "kit"))
        print(f"scores of the solved notebooks: nbgrader {', '.join(nbgrader_)}; the kit's batch {', '.join(kit)}")


def print_where_time_goes(timing: dict) -> None:
    print("\nwhere the time goes (seconds, first self-check run):")
    print(f"  {'function':<42}{'learner call':>13}{'store prep':>12}{'checks':>9}")
    for key, parts in timing.items():
        print(f"  {key:<42}{parts['learner_call']:>13.2f}{parts['store_preparation']:>12.2f}{parts['checks']:>9.2f}")


if __name__ == "__main__":
    sys.exit(main())
