"""Similar submissions: what `python -m grader similarity` costs for a class, next to the
floor measured in the same run.

    python bench/similarity.py [--learners 100] [--repeat 3]

The class: each learner's modules taken, one by one at random, from the solutions or from
the independent implementation, with statements of their own put in here and there (two
learners of one source still share half their code: the kit has two implementations
written apart, a class has more), each disguised its own way (tests/disguise.py: names,
order, comments); a tenth of them left partly undone (some modules still the stubs); and
three learners who copied another's whole work, disguised. The floor is one Python process importing MLflow
and scikit-learn (bench/run.py's): a grading cannot cost less, and a batch grades every
learner. Target: under 10 s for 100 learners on 2 cores.
"""
from __future__ import annotations

import argparse
import ast
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from disguise import disguise  # noqa: E402
from grader.authoring.stubgen import drop_markers, expected_stubs  # noqa: E402
from grader.core import catalogue  # noqa: E402

FLOOR = [sys.executable, "-c", "import mlflow.sklearn, sklearn.ensemble, sklearn.linear_model"]
TARGET_SECONDS = 10.0
COPIERS = (11, 41, 71)


ADDED = ["noise_{n} = [{a}, {b}]", "assert {a} != {b}, 'checked {a}'", "noise_{n} = str({a}).upper().strip()",
         "noise_{n} = {{'k{a}': {b}}}.get('k{b}', {a})", "noise_{n} = ({a}, {b}, {a} * {b})",
         "if {a} > {b}:\n{indent}    noise_{n} = {a} - {b}", "for _ in range({a}):\n{indent}    break",
         "try:\n{indent}    noise_{n} = {a} // {b}\n{indent}except ZeroDivisionError:\n{indent}    noise_{n} = 0"]


def own_statements(text: str, rng: random.Random, share: float = 0.6) -> str:
    """``text`` with a statement of the learner's own after some statements of each function."""
    lines = text.splitlines(keepends=True)
    after = []
    for function in ast.walk(ast.parse(text)):
        if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            after += [(node.end_lineno, node.col_offset) for node in ast.walk(function)
                      if isinstance(node, ast.stmt) and node is not function and rng.random() < share
                      and not isinstance(node, (ast.Return, ast.Raise, ast.Continue, ast.Break))]
    for line, column in sorted(set(after), key=lambda place: (-place[0], place[1])):  # a block's last line: inner first
        indent = " " * column
        added = rng.choice(ADDED).format(n=rng.randrange(10**4), a=rng.randrange(1, 999), b=rng.randrange(1, 999),
                                         indent=indent)
        lines.insert(line, indent + added + "\n")
    return "".join(lines)


def make_class(folder: Path, learners: int) -> None:
    modules = [m.name for m in catalogue.load().modules]
    sources = {"solutions": {m: drop_markers((REPO / "solutions" / f"{m}.py").read_text()) for m in modules},
               "independent": {m: (REPO / "tests" / "submissions" / "independent" / f"{m}.py").read_text()
                               for m in modules}}
    stubs = expected_stubs()
    rng = random.Random(1)
    chosen: list[dict[str, str]] = []
    for number in range(learners):
        learner = folder / f"learner-{number:03d}"
        learner.mkdir(parents=True)
        if number in COPIERS:  # copies the learner before, whole
            texts = chosen[number - 1]
        else:
            texts = {m: stubs[f"{m}.py"] if number % 10 == 9 and rng.random() < 0.5
                     else own_statements(sources[rng.choice(sorted(sources))][m], rng) for m in modules}
        chosen.append(texts)
        for module in modules:
            (learner / f"{module}.py").write_text(disguise(texts[module], number))


CPU: dict[str, list[float]] = {}  # per command: CPU seconds it and its processes spent


def timed(command: list[str], label: str) -> float:
    """Wall seconds; and, in CPU, the CPU seconds of the command and every process it waited
    for (on a machine others keep busy, the figure that does not depend on them)."""
    before, started = resource.getrusage(resource.RUSAGE_CHILDREN), time.monotonic()
    subprocess.run(command, cwd=REPO, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"})
    seconds, after = time.monotonic() - started, resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU.setdefault(label, []).append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--learners", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-similarity-") as tmp:
        submissions, out = Path(tmp) / "class", Path(tmp) / "out"
        make_class(submissions, args.learners)
        command = [sys.executable, "-m", "grader", "similarity", str(submissions), "--out", str(out)]
        floors, runs = [], []
        for _ in range(args.repeat):  # alternate, so a slow minute of the machine hits both alike
            floors.append(timed(FLOOR, "floor"))
            runs.append(timed(command, "similarity"))
        listed = sum(1 for _ in open(out / "similarity.csv")) - 1
    floor, seconds = statistics.median(floors), statistics.median(runs)
    print(f"cores: {os.cpu_count()}  learners: {args.learners}  rows of similarity.csv: {listed}")
    print(f"floor (import mlflow, sklearn): {floor:.2f} s  (min–max {min(floors):.2f}–{max(floors):.2f})")
    print(f"similarity:                     {seconds:.2f} s  (min–max {min(runs):.2f}–{max(runs):.2f})  "
          f"= {seconds / floor:.1f} × floor, {seconds / args.learners * 1000:.0f} ms per learner")
    cpu, floor_cpu = statistics.median(CPU["similarity"]), statistics.median(CPU["floor"])
    print(f"CPU seconds: similarity {cpu:.2f}, floor {floor_cpu:.2f} ({cpu / floor_cpu:.1f} × floor); "
          f"the machine's load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"target: under {TARGET_SECONDS:g} s for 100 learners: "
          f"{'met' if seconds * 100 / args.learners < TARGET_SECONDS else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
