"""`python -m grader ui FUNCTION`: what one function wrote while it was graded, in MLflow's
own UI.

1. It grades FUNCTION as ``pytest grader -k FUNCTION --seed N`` does (the same checks,
   verdict and seed; the board remembers it, as after that command), in a ``pytest`` of its
   own with ``--keep-stores``, whose temporary folders all go into one folder of this
   command's (``TMPDIR``).
2. It starts ``mlflow server`` on 127.0.0.1, on a free port, over the first store the
   checks made (``--store N``: another), and prints the verdict, what each store holds
   (experiments with their ids, runs, registered models) with links into the UI, the
   command that serves each other store meanwhile, and the URL once the server answers.
3. It runs in the foreground. Ctrl-C (or SIGTERM, SIGHUP) ends the grading or the server
   with every process they started (this process is their subreaper: none slips away) and
   removes that folder. Nothing is written into the learner's folder: the grading reads a
   copy of it, and the server runs from the temporary folder.
"""
from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import quote

from grader import KIT_ROOT
from grader.core import catalogue, summary
from grader.ground import files
from grader.core.board import Board
from grader.core.options import grade_command, grading_args, new_seed, target_words
from grader.core.places import Places
from grader.core.results import Results, read_grading
from grader.ground.processes import kill_all_below
from grader.sandbox.confine import become_subreaper
from grader.core.source import is_untouched_stub, read_module
from grader.core.store import Store, scratch_parent
from grader.core.tracking_server import LOOPBACK, MlflowServer, ServerError, free_port, server_options
from grader.learner.watch import GRADING_TIMEOUT, stop_on_signals
from grader.ground.exits import Exit

MAX_RUNS = 5  # runs listed per experiment (a tuning makes more): the UI shows them all
LOG_LINES = 8  # of a grading that could not finish, shown


def ui(exercise: catalogue.Exercise, folder: Path, args: argparse.Namespace) -> int:
    refuse_unattempted(exercise, folder)
    view = Ui(exercise, folder, args)
    code = None
    with stop_on_signals():
        try:
            code = view.run(args.store)
        except KeyboardInterrupt:
            pass
        finally:
            view.close()
    if code is None:
        print("\nStopped: nothing it started is left running, and the kept stores are removed.")
    return Exit.OK if code is None else code


def refuse_unattempted(exercise: catalogue.Exercise, folder: Path) -> None:
    """One line, as for an unknown name (cli.exercise_named): a stub wrote nothing to show."""
    code, shown = read_module(folder, exercise.module), Places(folder).file(exercise.module)
    if code is None:
        raise SystemExit(f"{shown} is missing: there is no `{exercise.function}` to grade.")
    if is_untouched_stub(code, exercise.function):
        raise SystemExit(f"`{exercise.function}` in {shown} is not attempted yet (it is still its stub): "
                         "write it first, then look at what it logs.")


class Ui:
    def __init__(self, exercise: catalogue.Exercise, folder: Path, args: argparse.Namespace):
        self.exercise, self.folder = exercise, folder
        self.seed = args.seed if args.seed is not None else new_seed()
        self.places = Places(folder)
        # Commands the learner may paste: the same grading, and this one again (another --store).
        self.same_verdict = f"{grade_command(args.target)} -k {exercise.function} --seed {self.seed}"
        self.again = f"python -m grader ui {exercise.function}{target_words(args.target)} --seed {self.seed}"
        self.root = Path(tempfile.mkdtemp(prefix="mlflow-kit-ui-", dir=scratch_parent()))
        self.server: MlflowServer | None = None
        become_subreaper()  # what the grading leaves running stays below this process, for close()

    def run(self, number: int) -> int:
        results = self.grade()
        if results is None:
            return Exit.INTERNAL_ERROR
        self.show_verdict(results)
        stores = kept_stores(self.root, self.exercise.function)
        if not stores:
            print("Its checks left no store to show (they stopped before making one).")
            return Exit.NOT_DONE
        if not 1 <= number <= len(stores):
            print(f"--store {number}: the checks of `{self.exercise.function}` made {len(stores)} store(s).",
                  file=sys.stderr)
            return Exit.REFUSED
        shown = stores[number - 1]
        self.server = MlflowServer(self.root, shown / "mlflow.db", shown / "mlruns")  # boots while the stores are read
        self.describe(stores, shown)
        try:
            self.server.wait_ready()
        except ServerError as error:
            print(f"MLflow's UI could not start: {error}", file=sys.stderr)
            return Exit.INTERNAL_ERROR
        print(f"\nMLflow's UI, store {number}: {self.server.url}/   Ctrl-C stops it and removes the stores.",
              flush=True)
        self.server.wait_exit()  # until Ctrl-C, unless the server dies first
        print(f"MLflow's UI stopped by itself; its log ends with:\n{self.server.log_tail()}", file=sys.stderr)
        return Exit.INTERNAL_ERROR

    def close(self) -> None:
        if self.server is not None:
            self.server.stop()
        kill_all_below()  # a grading Ctrl-C cut short: its scoring process, worker and calls
        files.remove_tree(self.root)

    def grade(self) -> Results | None:
        """results.json of ``pytest grader -k FUNCTION --seed N --keep-stores``, run with
        ``TMPDIR`` set to ``root``: its stores are kept there. None: it could not finish."""
        results, log = self.root / "results.json", self.root / "grading.log"
        print(f"Checking `{self.exercise.function}` in {self.places.file(self.exercise.module)} "
              f"with seed {self.seed}…", flush=True)
        command = [sys.executable, "-m", "pytest", "--keep-stores",  # from the kit's folder: the folder absolute
                   *grading_args(self.folder.resolve(), seed=self.seed, results=results, only=[self.exercise])]
        with open(log, "wb") as output:
            grading = subprocess.Popen(command, cwd=KIT_ROOT, stdin=subprocess.DEVNULL, stdout=output,
                                       stderr=subprocess.STDOUT, env={**os.environ, "TMPDIR": str(self.root)},
                                       start_new_session=True)  # Ctrl-C reaches this process, which ends it all
        try:
            grading.wait(GRADING_TIMEOUT)
        except subprocess.TimeoutExpired:
            pass  # no results: said below
        graded, said = read_grading(results, log, LOG_LINES)
        if graded is None:
            why = f"exit {grading.returncode}" if grading.returncode is not None else f"over {GRADING_TIMEOUT:g} s"
            print("\n".join([f"The grader could not check `{self.exercise.function}` ({why}); it said:", *said]),
                  file=sys.stderr)
        return graded

    def show_verdict(self, results: Results) -> None:
        board, module = Board(), self.exercise.module
        board.record(results)
        entry = board.entries[self.exercise.key]
        lines = summary.entry_lines(self.exercise, entry,
                                    details=entry.status in ("failed", "error") and not entry.broken)
        if module in board.broken:
            lines += summary.broken_module(board.broken[module], module, self.places)
        print("\n".join([*lines, f"`{self.same_verdict}` gives the same verdict."]))

    def describe(self, stores: list[Path], shown: Path) -> None:
        """Each store's experiments, runs and models, linked into the UI that serves it."""
        print(f"\nWhat the checks left in {'its store' if len(stores) == 1 else f'its {len(stores)} stores'}, "
              f"kept until you stop:")
        for number, store in enumerate(stores, 1):
            if store == shown:
                url, how = self.server.url, "in the UI below"
            else:  # served by a second server, while this one runs
                port = free_port()
                url = f"http://{LOOPBACK}:{port}"
                command = ["mlflow", "server", *server_options(store / "mlflow.db", store / "mlruns", port)]
                how = f"meanwhile: {shlex.join(command)}"
            print(f"Store {number} ({how}):")
            print("\n".join(f"  {line}" for line in holdings(Store(store), url)), flush=True)
        if len(stores) > 1:
            print(f"Another store in this UI instead: {self.again} --store N (the same seed makes the same stores)")


def kept_stores(root: Path, function: str) -> list[Path]:
    """The stores the grading in ``root`` kept, in the order its checks made them: the
    scratch folder the grading made there holds them as ``store-NNN-<function>``
    (grader/core/store.py's StoreFactory)."""
    found = [path for path in root.glob(f"*/store-*-{function}")
             if not path.is_symlink() and (path / "mlflow.db").is_file()]
    return sorted(found, key=lambda path: path.name)


def holdings(store: Store, url: str) -> list[str]:
    """What a store holds, each with its link into the UI at ``url``: the experiments (but
    an empty Default) with their ids and runs, and the registered models."""
    from mlflow.entities import ViewType

    client, lines = store.client, []
    try:
        for experiment in sorted(client.search_experiments(view_type=ViewType.ALL), key=lambda e: int(e.experiment_id)):
            runs = client.search_runs([experiment.experiment_id], run_view_type=ViewType.ALL)
            if experiment.name == "Default" and not runs:
                continue
            link = f"{url}/#/experiments/{experiment.experiment_id}/runs"
            lines.append(f"experiment {experiment.experiment_id} `{experiment.name}`{_deleted(experiment)}: "
                         f"{len(runs)} run(s)  {link}")
            lines += [f"  run `{run.info.run_name}` {run.info.status.lower()}{_deleted(run.info)}  {link}/{run.info.run_id}"
                      for run in runs[:MAX_RUNS]]
            lines += [f"  … and {len(runs) - MAX_RUNS} more"] if len(runs) > MAX_RUNS else []
        lines += _models(client, url)
    except Exception as error:  # noqa: BLE001 - learner code may have broken its store: say so, serve it anyway
        lines.append(f"(could not be read: {type(error).__name__}: {str(error)[:200]})")
    return lines or ["no experiment with runs, no registered model"]


def _models(client, url: str) -> list[str]:
    versions: dict[str, list[int]] = {}
    for version in client.search_model_versions():
        versions.setdefault(version.name, []).append(int(version.version))
    lines = []
    for model in client.search_registered_models():
        numbers = ", ".join(map(str, sorted(versions.get(model.name, [])))) or "none"
        aliases = "".join(f", @{alias} → {number}" for alias, number in sorted(model.aliases.items()))
        link = f"{url}/#/models/{quote(model.name, safe='')}"
        lines.append(f"registered model `{model.name}`: versions {numbers}{aliases}  {link}")
    return lines


def _deleted(entity) -> str:
    return " (deleted)" if getattr(entity, "lifecycle_stage", "active") == "deleted" else ""
