"""Grading a batch on a Dask distributed cluster: ``--dask tcp://HOST:8786`` (a running
scheduler) or ``--dask local[:N]`` (a LocalCluster of N Dask worker processes here).

- The batch's client registers a worker plugin (GradingHostsPlugin): on each Dask worker
  that offers the ``grading-slot`` resource it starts as many warm grading hosts
  (grader/host/) as slots, child processes of the Dask worker (started, not forked: Dask
  workers are daemonic and threaded), in a locked scratch folder of that machine.
- Each learner is one task, ``grade_on_dask_worker``, which needs one grading slot: the
  submission travels as bytes (collect.pack), is unpacked on the Dask worker with the same
  limits, and graded there by grading.grade_packed, as on one machine. Learner code runs
  only in a host's sandbox, never in the client, the scheduler or the Dask worker itself.
- The client keeps at most two tasks per slot in flight (so a class of thousands does not
  sit in the scheduler's memory), and writes each outcome as it completes (run.py).
- A Dask worker that dies mid-learner costs no row: the scheduler gives the task to another
  Dask worker, at most REGRADES_AFTER_A_DASK_WORKER_DIES times (the scheduler's
  ``distributed.scheduler.allowed-failures``), then the learner gets an ``error`` row.
"""
from __future__ import annotations

import hashlib
import logging
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, suppress
from dataclasses import replace
from importlib import metadata

import dask
import distributed

from grader.batch import scratch
from grader.batch.collect import Packed, Submission, pack
from grader import KIT_ROOT
from grader.batch.grading import (EngineError, GradingOutcome, GradingSettings, error_row, grade_packed,
                                  grading_env)
from grader.core.store import scratch_parent, shared_memory_with_room
from grader.host.client import HostPool, HostReply
from grader.sandbox import isolation

SLOT = "grading-slot"  # the Dask resource: one learner graded at a time per slot
REGRADES_AFTER_A_DASK_WORKER_DIES = 2
TASKS_IN_FLIGHT_PER_SLOT = 2  # one grading, one waiting on the Dask worker to start right after it
CONNECT_SECONDS = 30
WAIT_FOR_SLOTS_SECONDS = 60
SLOTS_REFRESH_SECONDS = 5.0
POLL_SECONDS = 0.05
# A learner's task the client has not heard back from this long after its grading could
# have started (the one ahead of it in its slot done) is given up: an error row, and on.
DEADLINE_MARGIN_SECONDS = 120
PLUGIN_PREFIX = "mlflow-kit-grading-hosts-"  # and the batch's client id
KIT_NEEDED = "the scheduler and every Dask worker need the kit installed, on their PYTHONPATH"
# Run in each Dask worker process of a LocalCluster: Ctrl-C in the terminal reaches the whole
# process group, and it is the client that stops the batch (and then the cluster) cleanly.
IGNORE_CTRL_C = "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n"


class DaskWorkerUnfit(Exception):
    """A Dask worker cannot grade for this batch (another kit, no sandbox, no hosts)."""


def kit_fingerprint() -> str:
    """What decides a grade on this machine: the grader's code and catalogue, Python's
    version and those of the pinned packages. Every Dask worker must have the client's."""
    digest = hashlib.sha256(f"python {sys.version_info[:2]}".encode())
    for path in sorted((KIT_ROOT / "grader").rglob("*")):
        if path.suffix in (".py", ".toml") and "__pycache__" not in path.parts:
            digest.update(path.relative_to(KIT_ROOT).as_posix().encode() + b"\0" + path.read_bytes())
    for line in (KIT_ROOT / "requirements.txt").read_text().splitlines():
        name = line.split("==")[0].split("[")[0].strip()
        if name and not name.startswith("#"):
            with suppress(metadata.PackageNotFoundError):
                digest.update(f"{name}=={metadata.version(name)}".encode())
    return digest.hexdigest()


class GradingHostsPlugin(distributed.WorkerPlugin):
    """On each Dask worker, for one batch: its grading hosts, one per grading slot."""

    def __init__(self, settings: GradingSettings, client_kit: str):
        self.settings, self.client_kit = settings, client_kit

    def setup(self, worker: distributed.Worker) -> None:
        # Runs in the Dask worker's main thread, which lives as long as the Dask worker: a
        # host dies with the thread that started it.
        self.stop, self.hosts, self.problem = threading.Event(), None, None
        self._resources = ExitStack()
        slots = int(worker.state.total_resources.get(SLOT, 0))
        if not slots:
            return  # it is given no learner
        if kit_fingerprint() != self.client_kit:
            self.problem = ("its kit differs from the client's (the grader's files, Python or the pinned "
                            "packages): install the same kit on every Dask worker")
        elif self.settings.isolation == "bwrap" and not isolation.bwrap_available():
            self.problem = "bubblewrap does not work there: install it, or grade with --isolation limits"
        if self.problem:
            raise DaskWorkerUnfit(self.problem)
        # A Dask worker has called tempfile.gettempdir(), which caches its answer in
        # tempfile.tempdir (what scratch_parent takes for a choice): only TMPDIR is one here.
        place = None if os.environ.get("TMPDIR") else shared_memory_with_room()
        self.work_root = self._resources.enter_context(scratch.batch_folder(place))
        self.hosts = self._resources.enter_context(HostPool(
            self.work_root, slots, self.settings.isolation, self.settings.call_timeout,
            grading_env(self.work_root / "tmp")))

    def teardown(self, worker: distributed.Worker) -> None:
        """The batch is over or stopped: what is still being graded is not wanted."""
        self.stop.set()
        if self.hosts is not None:
            self.hosts.stop()
        self._resources.close()


def grade_on_dask_worker(packed: Packed, settings: GradingSettings, plugin_name: str) -> GradingOutcome:
    """The task: one learner, graded by this Dask worker's hosts for the batch."""
    plugin = distributed.get_worker().plugins.get(plugin_name)
    if plugin is None or getattr(plugin, "hosts", None) is None:
        raise DaskWorkerUnfit(getattr(plugin, "problem", None) or "its grading hosts did not start")
    if not plugin.stop.is_set():
        try:
            outcome = grade_packed(packed, settings, plugin.work_root, plugin.hosts, plugin.stop)
        except Exception as error:  # noqa: BLE001 - a value, not an exception the client must unpickle
            reason = f"the Dask worker could not grade it ({type(error).__name__}: {str(error)[:500]})"
            outcome = GradingOutcome(error_row(packed.learner, reason, settings), None, "", None, HostReply(None, reason=reason))
        if not plugin.stop.is_set():
            return outcome
    # The hosts were ended under this grading: the Dask worker is closing (or the batch is
    # over, and nobody waits for this): another Dask worker grades the learner.
    raise distributed.Reschedule()


def best_mode_on_dask_worker() -> str:
    return isolation.best_mode()


def times_started(key: str, dask_scheduler: distributed.Scheduler) -> int:
    """Run on the scheduler: how often a task was handed to a Dask worker (more than once:
    a Dask worker died under it, and another graded it again)."""
    return sum(1 for transition in dask_scheduler.story(key) if transition[2] == "processing")


def plugins_and_clients(dask_scheduler: distributed.Scheduler) -> tuple[list[str], list[str]]:
    """Run on the scheduler: the worker plugins it hands out, and the clients it knows."""
    return list(dask_scheduler.worker_plugins), list(dask_scheduler.clients)


class DaskEngine:
    """A context: connected to the cluster (or running a LocalCluster) with the batch's
    grading hosts started on its Dask workers; all of it let go on the way out."""

    def __init__(self, address: str, settings: GradingSettings, local_workers: int, tls: dict[str, str] | None = None):
        self.address, self.settings, self.tls = address, settings, tls or {}
        self.local_workers = int(address[6:]) if address.startswith("local:") else local_workers
        self.batch_token = uuid.uuid4().hex[:12]
        self._resources = ExitStack()

    def __enter__(self) -> "DaskEngine":
        with ExitStack() as starting:
            self.client = starting.enter_context(self._connect(starting))
            self.plugin_name = PLUGIN_PREFIX + self.client.id
            self._remove_plugins_of_gone_batches()
            self.slots = self._wait_for_slots()
            if self.settings.isolation == "auto":
                self.settings = replace(self.settings, isolation=self._best_mode())
            self._register_plugin(starting)
            self._resources = starting.pop_all()
        where = "on this machine" if self.address.startswith("local") else f"of {self.address}"
        self.description = f"{self.slots} grading slot(s) on {len(self._slot_workers())} Dask worker(s) {where}"
        return self

    def __exit__(self, *exc) -> None:
        self._resources.close()

    def _connect(self, starting: ExitStack) -> distributed.Client:
        if self.address.startswith("local"):
            place = starting.enter_context(scratch.batch_folder(scratch_parent()))
            # The scheduler runs in this process: this is where its allowed failures are set.
            with dask.config.set({"distributed.scheduler.allowed-failures": REGRADES_AFTER_A_DASK_WORKER_DIES,
                                  "temporary-directory": str(place)}):
                cluster = starting.enter_context(distributed.LocalCluster(
                    n_workers=self.local_workers, threads_per_worker=1, processes=True,
                    resources={SLOT: 1}, host="127.0.0.1", dashboard_address=None,
                    silence_logs=logging.ERROR, preload=[IGNORE_CTRL_C]))
            return distributed.Client(cluster)
        warn_if_open(self.address)
        try:
            security = distributed.Security(**self.tls, require_encryption=True) if self.address.startswith("tls://") else None
            return distributed.Client(self.address, timeout=CONNECT_SECONDS, security=security)
        except (OSError, TimeoutError, ValueError) as error:
            raise EngineError(f"cannot reach the Dask scheduler at {self.address} ({type(error).__name__}: {error})") from None

    def _slot_workers(self) -> dict[str, int]:
        """The Dask workers that offer grading slots, with how many."""
        workers = self.client.scheduler_info(n_workers=-1)["workers"]
        return {address: int(info.get("resources", {}).get(SLOT, 0)) for address, info in workers.items()
                if info.get("resources", {}).get(SLOT, 0) >= 1}

    def _grading_slots(self) -> int:
        return sum(self._slot_workers().values())

    def _wait_for_slots(self) -> int:
        deadline = time.monotonic() + WAIT_FOR_SLOTS_SECONDS
        while not (slots := self._grading_slots()):
            if time.monotonic() > deadline:
                raise EngineError(f"no Dask worker of {self.address} offers the {SLOT} resource: start Dask "
                                  f"workers with `dask worker ADDRESS --resources {SLOT}=N`")
            time.sleep(0.5)
        return slots

    def _best_mode(self) -> str:
        """bubblewrap when it works on every Dask worker that grades, else process limits."""
        modes = self.client.run(best_mode_on_dask_worker, workers=list(self._slot_workers()), on_error="return")
        for address, mode in modes.items():
            if isinstance(mode, BaseException):
                raise EngineError(f"Dask worker {address} cannot run the kit ({type(mode).__name__}: {mode}): "
                                  f"{KIT_NEEDED}")
        return "bwrap" if set(modes.values()) == {"bwrap"} else "limits"

    def _register_plugin(self, starting: ExitStack) -> None:
        starting.callback(self._unregister_plugin)  # the scheduler keeps it even when a Dask worker refuses it
        try:
            self.client.register_plugin(GradingHostsPlugin(self.settings, kit_fingerprint()), name=self.plugin_name)
        except Exception as error:  # what a Dask worker raised, whatever it was
            raise EngineError(f"a Dask worker cannot grade for this batch ({type(error).__name__}: {error}); "
                              f"{KIT_NEEDED}") from None

    def _remove_plugins_of_gone_batches(self) -> None:
        """A batch killed outright (kill -9) leaves its plugin with the scheduler, which
        gives it to every Dask worker that joins: grading hosts for nobody. Its client is
        gone from the scheduler; the plugin goes too."""
        plugins, clients = self.client.run_on_scheduler(plugins_and_clients)
        for name in plugins:
            if name.startswith(PLUGIN_PREFIX) and name[len(PLUGIN_PREFIX):] not in clients:
                with suppress(Exception):  # another batch may be removing it too
                    self.client.unregister_worker_plugin(name)

    def _unregister_plugin(self) -> None:
        """Its teardown on every Dask worker ends the batch's hosts and removes their scratch."""
        with suppress(Exception):  # a scheduler already gone has nothing left to tear down
            self.client.unregister_worker_plugin(self.plugin_name)

    def outcomes(self, todo: list[Submission], stop: threading.Event) -> Iterator[tuple[Submission, GradingOutcome]]:
        """Each learner of ``todo`` with their outcome, as the tasks complete, until ``stop``:
        then the tasks are cancelled and the gradings in progress dropped."""
        waiting = iter(enumerate(todo))
        in_flight: dict[distributed.Future, Submission] = {}
        deadlines: dict[distributed.Future, float] = {}
        completed = distributed.as_completed(loop=self.client.loop)
        window = _Window(self.slots, self._grading_slots)
        # Tasks wait their turn behind at most TASKS_IN_FLIGHT_PER_SLOT - 1 others of their slot.
        allowed = TASKS_IN_FLIGHT_PER_SLOT * (self.settings.timeout + DEADLINE_MARGIN_SECONDS)
        try:
            while True:
                while len(in_flight) < window.size() and (item := next(waiting, None)):
                    future = self._submit(*item)
                    in_flight[future], deadlines[future] = item[1], time.monotonic() + allowed
                    completed.add(future)
                if not in_flight or stop.is_set():
                    return
                for future in completed.next_batch(block=False):
                    deadlines.pop(future, None)
                    if (submission := in_flight.pop(future, None)) is not None:
                        yield submission, self._outcome(future, submission)
                for future in [f for f, deadline in deadlines.items() if deadline < time.monotonic()]:
                    submission, _ = in_flight.pop(future), deadlines.pop(future)
                    self.client.cancel([future], force=True)
                    reason = f"the Dask cluster did not hand back its grading within {allowed:g} s"
                    yield submission, GradingOutcome(error_row(submission.learner, reason, self.settings), None, "", None,
                                                     HostReply(None, reason=reason))
                time.sleep(POLL_SECONDS)
        finally:
            if in_flight:
                self.client.cancel(list(in_flight), force=True)

    def _submit(self, index: int, submission: Submission) -> distributed.Future:
        return self.client.submit(grade_on_dask_worker, pack(submission), self.settings, self.plugin_name,
                                  key=f"grade-learner-{self.batch_token}-{index}", resources={SLOT: 1})

    def _outcome(self, future: distributed.Future, submission: Submission) -> GradingOutcome:
        """The task's outcome; an ``error`` row when Dask workers kept dying under it."""
        if future.status == "finished":
            outcome = future.result()
            with suppress(Exception):  # a scheduler that cannot say leaves the row as it is
                retries = self.client.run_on_scheduler(times_started, future.key) - 1
                if retries > 0:
                    said = (f"graded on another Dask worker after the one it was given was lost "
                            f"({retries} time{'s' * (retries > 1)})")
                    outcome.row.reason = f"{said}; {outcome.row.reason}" if outcome.row.reason else said
            return outcome
        if future.cancelled():
            raise EngineError(f"the Dask scheduler dropped the grading of {submission.learner} "
                              "(was it restarted, or the connection to it lost?)")
        failure = future.exception()
        if isinstance(failure, distributed.KilledWorker):
            reason = (f"the Dask worker grading it died, {failure.allowed_failures + 1} times on different "
                      f"Dask workers (the last: {failure.last_worker.address})")
            return GradingOutcome(error_row(submission.learner, reason, self.settings), None, "", None, HostReply.lost(reason))
        raise EngineError(f"the Dask cluster could not grade {submission.learner} ({type(failure).__name__}: "
                          f"{str(failure).strip()}); {KIT_NEEDED}")


def warn_if_open(address: str) -> None:
    """A scheduler reached without TLS on another machine: anyone who can reach its port can
    have the graders run their code. Say so (the instructor may know the network is theirs)."""
    scheme, _, rest = address.rpartition("://")
    host = rest.rsplit(":", 1)[0].strip("[]")
    if scheme != "tls" and host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: the Dask scheduler at {address} is reached without TLS: anyone who can reach its port can "
              "submit work to its Dask workers. Use tls://HOST:PORT with certificates (README: Grading on a "
              "cluster), unless that network is yours alone.", file=sys.stderr)


class _Window:
    """How many tasks may be in flight: TASKS_IN_FLIGHT_PER_SLOT per grading slot the
    cluster offers now (Dask workers come and go)."""

    def __init__(self, slots: int, count_slots: Callable[[], int]):
        self.slots, self.count_slots, self.counted = slots, count_slots, time.monotonic()

    def size(self) -> int:
        if time.monotonic() - self.counted > SLOTS_REFRESH_SECONDS:
            self.slots, self.counted = self.count_slots(), time.monotonic()
        return TASKS_IN_FLIGHT_PER_SLOT * max(1, self.slots)
