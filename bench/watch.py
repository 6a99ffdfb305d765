"""Watch mode: how long from saving a file to seeing its verdict on the screen, next to the
floor and to a cold `pytest grader`, all measured in the same run.

    python bench/watch.py [--saves 5] [--cold 3]

`python -m grader watch` runs in a tmux pane of its own, on a copy of the stubs. Each round
saves a wrong `log_run` and waits for ✘, then saves a correct one and times until the screen
shows ✔ log_run and the new count of functions done (read with `tmux capture-pane`, as a
person reads it); then the same while another function's call hangs (a second host checks
the saves). The floor is one Python importing MLflow and scikit-learn
(`python -c "import mlflow.sklearn, sklearn.ensemble"`); "cold" is what each check cost before
watch: `pytest grader -k log_run` on the same folder, the whole `pytest grader` on it, and on
the solutions (every function graded).
"""
from __future__ import annotations

import argparse
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from grader.authoring.stubgen import drop_markers, stub_of  # noqa: E402
from grader.core import catalogue  # noqa: E402
from grader.core.source import definition_span  # noqa: E402

FLOOR = [sys.executable, "-c", "import mlflow.sklearn, sklearn.ensemble"]
WRONG = '''def log_run(experiment_id, params, metrics, tags=None, run_name=None):
    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name) as run:
        mlflow.log_params(params)
    return run.info.run_id
'''


def solution(module: str, function: str) -> str:
    text = drop_markers((REPO / "solutions" / f"{module}.py").read_text())
    first, last = definition_span(text, function)
    return "".join(text.splitlines(keepends=True)[first - 1:last])


HANGS = '''def log_metric_history(experiment_id, key, values):
    while True:  # a call that never returns, until its timeout
        pass
'''


def save(folder: Path, code: str, function: str = "log_run") -> None:
    """Replace ``function`` in ex01_tracking.py, the way an editor saves: a whole new file."""
    path = folder / "ex01_tracking.py"
    text = path.read_text()
    first, last = definition_span(text, function)
    lines = text.splitlines(keepends=True)
    path.write_text("".join(lines[:first - 1]) + code + "".join(lines[last:]))


def timed(command: list[str], **kwargs) -> float:
    started = time.monotonic()
    subprocess.run(command, cwd=REPO, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kwargs)
    return time.monotonic() - started


class Pane:
    def __init__(self, command: list[str], env: dict[str, str]):
        self.socket = f"kit-bench-{uuid.uuid4().hex[:8]}"
        line = " ".join(["env", *(f"{k}={shlex.quote(v)}" for k, v in env.items()), *map(shlex.quote, command)])
        self.tmux("new-session", "-d", "-s", "bench", "-x", "150", "-y", "60", "-c", str(REPO), line)

    def tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True, check=True).stdout

    def wait_for(self, *texts: str, timeout: float = 300) -> float:
        """Seconds until the screen shows every one of ``texts``."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            screen = self.tmux("capture-pane", "-p", "-t", "bench")
            if all(text in screen for text in texts):
                return time.monotonic() - started
            time.sleep(0.01)
        raise TimeoutError(f"the screen never showed {texts}:\n{screen}")

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "send-keys", "-t", "bench", "q"], capture_output=True)
        time.sleep(1)
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True)


def toggle(pane: Pane, folder: Path, saves: int, total: int) -> list[float]:
    """Seconds from saving a correct log_run to its ✔ on screen, ``saves`` times (a wrong
    one saved between)."""
    latencies = []
    for _ in range(saves):
        save(folder, solution("ex01_tracking", "log_run"))
        latencies.append(pane.wait_for("✔ log_run", f"1/{total} done"))
        save(folder, WRONG)
        pane.wait_for("✘ log_run", f"0/{total} done")
    return latencies


def stubs_copy(scratch: Path) -> tuple[Path, dict[str, str]]:
    """A copy of the stubs to save into, and the environment watch and the cold runs share."""
    folder = scratch / "exercises"
    shutil.copytree(REPO / "exercises", folder, ignore=shutil.ignore_patterns("__pycache__"))
    return folder, {"XDG_CACHE_HOME": str(scratch / "cache"), "PYTHONDONTWRITEBYTECODE": "1",
                    "MLFLOW_DISABLE_TELEMETRY": "true"}


def save_to_verdict(folder: Path, env: dict[str, str], saves: int, beside_a_hang: bool = True) -> dict[str, list[float]]:
    """Run `python -m grader watch` on ``folder`` in a tmux pane and time, in seconds: its first
    verdict (host start-up included), ``saves`` saves of a correct log_run to ✔ on screen, and
    (``beside_a_hang``) as many while another function's call hangs. tmux must be installed."""
    total = len(catalogue.load().exercises)
    pane = Pane([sys.executable, "-m", "grader", "watch", "--target", str(folder), "--call-timeout", "900"], env)
    try:
        pane.wait_for(f"0/{total} done")
        save(folder, WRONG)
        timings = {"first": [pane.wait_for("✘ log_run")], "saves": toggle(pane, folder, saves, total)}
        if beside_a_hang:
            save(folder, HANGS, "log_metric_history")  # checked until its 900 s timeout
            pane.wait_for("checking log_metric_history (")
            timings["beside_a_hang"] = toggle(pane, folder, saves, total)
    finally:
        pane.close()
    save(folder, solution("ex01_tracking", "log_run"))
    save(folder, stub_of("ex01_tracking", "log_metric_history"), "log_metric_history")  # its stub again
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--saves", type=int, default=5, help="saves of a correct log_run to time (default %(default)s)")
    parser.add_argument("--cold", type=int, default=3, help="runs of each cold command (default %(default)s)")
    args = parser.parse_args()
    if shutil.which("tmux") is None:
        sys.exit("bench/watch.py needs tmux")
    total = len(catalogue.load().exercises)
    with tempfile.TemporaryDirectory(prefix="kit-bench-watch-") as scratch:
        folder, env = stubs_copy(Path(scratch))
        floor = [timed(FLOOR) for _ in range(args.cold)]
        watched = save_to_verdict(folder, env, args.saves)
        grade = [sys.executable, "-m", "pytest", "grader", "-q", "-p", "no:cacheprovider", "--target", str(folder)]
        environment = {**os.environ, **env}
        cold_one = [timed([*grade, "-k", "log_run"], env=environment) for _ in range(args.cold)]
        cold_all = [timed(grade, env=environment) for _ in range(args.cold)]
        solutions = [*grade[:-1], str(REPO / "solutions")]
        cold_solutions = [timed(solutions, env=environment) for _ in range(args.cold)]
    median_floor = statistics.median(floor)
    rows = [
        ("floor: import mlflow.sklearn, sklearn.ensemble", floor),
        (f"watch: save a correct log_run -> ✔ on screen ({args.saves} saves)", watched["saves"]),
        ("watch: the same while log_metric_history's call hangs", watched["beside_a_hang"]),
        ("watch: first verdict after starting (host start-up included)", watched["first"]),
        ("cold: pytest grader -k log_run", cold_one),
        (f"cold: pytest grader (that folder: log_run and {total - 1} stubs)", cold_all),
        (f"cold: pytest grader --target solutions ({total} functions graded)", cold_solutions),
    ]
    print(f"{'measured':<66}{'median s':>10}{'min–max s':>16}{'× floor':>9}")
    for label, values in rows:
        median = statistics.median(values)
        print(f"{label:<66}{median:>10.2f}{f'{min(values):.2f}–{max(values):.2f}':>16}{median / median_floor:>9.2f}")


if __name__ == "__main__":
    main()
