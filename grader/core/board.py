"""The learner's board: every function of the kit with its latest verdict, how many are
done, the points, and the next thing to do.

A grading may check a few functions only (``pytest grader -k log_run``, a save in
``watch``); the board remembers the others from earlier gradings of the same folder, as
long as their code is unchanged (``source.fingerprints``: a function edited since its last
check counts as not checked, never as done). It is kept between commands in the user's
cache folder, keyed by the folder graded: never in the learner's folder or their store.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from grader.core import catalogue
from grader.core.places import Places
from grader.core.results import Results
from grader.core.source import compile_problem, fingerprints, is_untouched_stub, read_module

# Statuses a board shows besides a grading's own (passed, failed, error, not_attempted).
UNCHECKED = "unchecked"  # edited since its last check, or never checked
CHECKING = "checking"  # being checked now (`watch`)
NOT_RUN = "not_run"  # a notebook kernel has run no cell that defines it: no code of it to check
KEPT_BOARDS = 50  # boards of other folders kept in the cache; the oldest go
LAST_TIME = {"failed": "it failed when last checked", "error": "it stopped with an error when last checked"}


@dataclass
class Entry:
    status: str
    score: int = 0
    fingerprint: str | None = None
    seed: int | None = None
    messages: list[str] = field(default_factory=list)
    broken: bool = False  # its module could not be imported: no verdict on the function itself
    max_score: int | None = None  # what it was worth then: a verdict under other points is not kept


@dataclass
class Board:
    entries: dict[str, Entry] = field(default_factory=dict)  # module.function -> its last verdict
    broken: dict[str, dict] = field(default_factory=dict)  # module -> why it cannot be imported
    frames: dict[str, str] = field(default_factory=dict)  # module -> its frame when found broken
    fresh: list[str] = field(default_factory=list)  # what the last grading checked

    # -- from gradings
    def record(self, results: Results) -> None:
        """Take in a grading's results.json: its functions' verdicts replace the old ones."""
        graded, broken = results.exercises, results.broken_modules
        prints = results.extra.get("fingerprints") or {}
        for key, result in graded.items():
            messages = [f"[{check}] {said}" for check, said in results.messages(key)]
            self.entries[key] = Entry(result.status, result.score, prints.get(key), results.seed, messages,
                                      broken=key.split(".")[0] in broken, max_score=result.max_score)
        for module in {key.split(".")[0] for key in graded}:
            self.broken.pop(module, None)
            self.frames.pop(module, None)
        self.broken.update(broken)
        self.frames.update({module: prints.get(module) for module in broken})
        self.fresh = list(graded)

    def against(self, sources: Path) -> "Board":
        """The board as it holds for the code in ``sources`` now: a function edited since
        its last check is not checked (or not attempted, if it is a stub again), and a module
        that does not compile now is broken, whatever it was before."""
        now = fingerprints(sources)
        seen = Board(fresh=list(self.fresh))
        # What importing a module runs, when it failed: the same code fails again. (A notebook's
        # modules all hold the same code: one that failed stands for all.)
        failing = {self.frames[m]: problem for m, problem in self.broken.items() if self.frames.get(m)}
        for module in catalogue.load().modules:
            code = read_module(sources, module.name)
            problem = compile_problem(code, f"{module.name}.py") if code is not None else None
            if problem:
                seen.broken[module.name] = problem
            elif now.get(module.name) in failing:
                seen.broken[module.name], seen.frames[module.name] = failing[now[module.name]], now[module.name]
            for exercise in module.exercises:
                seen.entries[exercise.key] = self._current(
                    exercise, code, now.get(exercise.key), problem, module.name in seen.broken)
        return seen

    def _unchanged(self, key: str, fingerprint: str | None) -> bool:
        old = self.entries.get(key)
        return old is not None and old.fingerprint is not None and old.fingerprint == fingerprint

    def _current(self, exercise: catalogue.Exercise, code: str | None, fingerprint: str | None, problem,
                 broken: bool) -> Entry:
        if problem:  # it does not compile: nothing of it can run
            return Entry("error", 0, fingerprint, broken=True)
        if code is None:
            return Entry("error", 0, None, messages=[f"{exercise.module}.py is missing from the folder"])
        if is_untouched_stub(code, exercise.function):
            return Entry("not_attempted", 0, fingerprint)
        if broken:  # it fails when imported: no function of it can run
            return Entry("error", 0, fingerprint, broken=True)
        if (self._unchanged(exercise.key, fingerprint) and not self.entries[exercise.key].broken
                and self.entries[exercise.key].max_score == exercise.points):  # the catalogue may have moved points
            return self.entries[exercise.key]
        return Entry(UNCHECKED, 0, fingerprint)

    # -- what it says
    def done(self) -> int:
        return sum(1 for e in self.entries.values() if e.status == "passed")

    def score(self) -> int:
        return sum(e.score for e in self.entries.values())

    def tally(self) -> str:
        """``8/19 done · 53/100 points``: counts from the catalogue, never written down."""
        cat = catalogue.load()
        return f"{self.done()}/{len(cat.exercises)} done · {self.score()}/{cat.points} points"

    def next_target(self) -> tuple[str, object]:
        """What to do next, for the whole kit: ("broken", module name), or ("fix" | "check" |
        "run" (a notebook's cell) | "wait" (`watch` checks it now) | "implement", exercise), or
        ("done", None). A broken module comes first, then a function just checked that fails,
        then code not checked yet (or not run yet, in a notebook), then code being checked,
        then the first function not done."""
        cat = catalogue.load()
        for module in cat.modules:
            if module.name in self.broken:
                return "broken", module.name

        def status(exercise) -> str:
            return self.entries.get(exercise.key, Entry(UNCHECKED)).status

        # What was just checked and fails, then code not checked yet, then older failures, then the rest.
        failing_now = [e for e in cat.exercises if e.key in self.fresh and status(e) in ("failed", "error")]
        unchecked = [e for e in cat.exercises if status(e) in (UNCHECKED, NOT_RUN)]
        checking = [e for e in cat.exercises if status(e) == CHECKING]
        failing = [e for e in cat.exercises if status(e) in ("failed", "error")]
        not_done = [e for e in cat.exercises if status(e) != "passed"]
        exercise = next(iter(failing_now + unchecked + checking + failing + not_done), None)
        if exercise is None:
            return "done", None
        kind = {"failed": "fix", "error": "fix", UNCHECKED: "check", NOT_RUN: "run", CHECKING: "wait"}.get(
            status(exercise), "implement")
        return kind, exercise

    def next_step(self, places: Places, command: str | None = "pytest grader") -> str:
        """The next thing to do, as a sentence. ``command`` grades again; None: the learner
        only saves (``watch`` checks by itself)."""
        left = catalogue.load().points - self.score()
        still = f" ({left} points still open)" if left else ""

        def then(selection: str, verb: str = "rerun") -> str:
            return f", then {verb}: {command} -k {selection}" if command else ""  # watch: its banner says saving checks

        kind, what = self.next_target()
        if kind == "done":
            return f"Next: nothing left: {self.tally()}. Open your own runs in the MLflow UI (see the README)."
        if kind == "broken":
            problem = self.broken[what]
            where = places.where(what, problem.get("line"))
            if _kind(problem) == "syntax error":
                return f"Next: fix the syntax error in {where}{then(what)}{still}"
            return f"Next: fix {where}: the module fails when it is imported{then(what)}{still}"
        name, file = what.function, places.file(what.module)
        if kind == "fix":
            why = "see the message above" if what.key in self.fresh else LAST_TIME[self.entries[what.key].status]
            return f"Next: fix `{name}` in {file} ({why}){then(name)}{still}"
        if kind == "wait":
            return f"Next: wait for the verdict on `{name}`: it is being checked now{still}"
        if kind == "check":
            return f"Next: check `{name}` (its code has not been checked yet){then(name, 'run')}{still}"
        return f"Next: implement `{name}` in {file}{then(name, 'check it')}{still}"

    # -- kept between commands
    def to_json(self) -> dict:
        return {"entries": {k: asdict(e) for k, e in self.entries.items()}, "broken": self.broken,
                "frames": self.frames, "saved": time.time()}

    @classmethod
    def from_json(cls, data: dict) -> "Board":
        known = {e.key for e in catalogue.load().exercises}
        fields = set(Entry.__dataclass_fields__)  # a board another version of the kit kept may hold others
        entries = {k: Entry(**{f: x for f, x in v.items() if f in fields}) for k, v in data.get("entries", {}).items()
                   if k in known}
        return cls(entries, dict(data.get("broken", {})), dict(data.get("frames", {})))


def _kind(problem: dict) -> str:
    error = problem.get("error", "")
    return "syntax error" if error.startswith(("SyntaxError", "IndentationError", "TabError")) else "error at import"


# ------------------------------------------------------------------ the progress file
def progress_file(target: Path) -> Path:
    from grader.core.store import _cache_dir

    key = hashlib.sha256(str(Path(target).resolve()).encode()).hexdigest()[:20]
    return _cache_dir() / "progress" / f"{key}.json"


def load(target: Path) -> Board:
    try:
        return Board.from_json(json.loads(progress_file(target).read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError, AttributeError):
        return Board()


def save(target: Path, board: Board) -> None:
    """Write the board for ``target`` (atomically: a grading and ``watch`` may both write)."""
    path = progress_file(target)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".partial", delete=False, encoding="utf-8") as handle:
            json.dump({**board.to_json(), "target": str(Path(target).resolve())}, handle)
        os.replace(handle.name, path)
        _prune(path.parent)
    except OSError:
        pass  # an unwritable cache costs the board its memory, never the grading


def _prune(folder: Path) -> None:
    boards = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in boards[KEPT_BOARDS:]:
        old.unlink(missing_ok=True)
