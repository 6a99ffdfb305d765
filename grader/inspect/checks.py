"""What the practice must have left in a store, item by item of the rubric.

A store may hold many experiments and models, and a class server many learners, so
the checks first settle *what* they look at (a ``Scope``: one experiment and the runs
of one learner in it), then judge it. Every finding is a sentence a learner can act on.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from mlflow.entities import Experiment, Run, ViewType
from mlflow.exceptions import MlflowException

from grader.core.results import CheckResult, Grade
from grader.inspect import rubric
from grader.inspect.source import OpenedStore

MAX_RESULTS = 1000
MAX_MLMODEL_READS = 20


def user_tags(tags: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in (tags or {}).items() if not k.startswith("mlflow.")}


@dataclass
class Scope:
    """What one grading looks at: an experiment, and the runs in it that count."""

    experiment: Experiment
    runs: list[Run]
    learner: str | None = None
    model_name: str | None = None  # --model, when given
    note: str = ""                   # how the experiment was picked, for the header

    @property
    def run_ids(self) -> set[str]:
        return {r.info.run_id for r in self.runs}


class ScopeProblem(Exception):
    """Nothing to grade: the store is empty, or the experiment asked for is missing."""


# ---------------------------------------------------------------- reading everything
def all_experiments(store: OpenedStore) -> list[Experiment]:
    return store.remember("experiments", lambda: _paged(lambda token: store.client.search_experiments(
        view_type=ViewType.ACTIVE_ONLY, max_results=MAX_RESULTS, page_token=token)))


def runs_of(store: OpenedStore, experiment_ids: list[str], filter_string: str = "") -> list[Run]:
    if not experiment_ids:
        return []
    return store.remember(("runs", tuple(experiment_ids), filter_string), lambda: _paged(lambda token: store.client.search_runs(
        experiment_ids, filter_string, run_view_type=ViewType.ACTIVE_ONLY, max_results=MAX_RESULTS, page_token=token)))


def _paged(fetch) -> list:
    found, token = [], None
    while True:
        page = fetch(token)
        found += list(page)
        token = getattr(page, "token", None)
        if not token:
            return found


# ---------------------------------------------------------------- scope
def scope_for(store: OpenedStore, experiment_name: str | None, model_name: str | None,
              learner_tag: str | None = None, learner: str | None = None) -> Scope:
    experiments = all_experiments(store)
    if experiment_name is not None:
        named = [e for e in experiments if e.name == experiment_name]
        if not named:
            raise ScopeProblem(f"the store has no experiment called {experiment_name!r}; it holds "
                               f"{_names(experiments)}. Check the name, or leave out --experiment to let the inspector pick")
        experiments = named
    by_experiment = _runs_by_experiment(store, experiments, learner_tag, learner)
    if not any(by_experiment.values()):
        raise ScopeProblem(_nothing_logged(experiments, experiment_name, learner_tag, learner))
    chosen = max(experiments, key=lambda e: (_finished(by_experiment[e.experiment_id]), len(by_experiment[e.experiment_id]),
                                             int(e.last_update_time or 0)))
    note = "" if experiment_name else "picked: the experiment with the most FINISHED runs; choose another with --experiment"
    return Scope(chosen, by_experiment[chosen.experiment_id], learner, model_name, note)


def _runs_by_experiment(store, experiments, learner_tag, learner) -> dict[str, list[Run]]:
    runs = runs_of(store, [e.experiment_id for e in experiments])
    by_experiment: dict[str, list[Run]] = {e.experiment_id: [] for e in experiments}
    tagged_experiments = {e.experiment_id for e in experiments if learner_tag and e.tags.get(learner_tag) == learner}
    for run in runs:
        if learner_tag is None or belongs_to(run, learner_tag, learner, run.info.experiment_id in tagged_experiments):
            by_experiment[run.info.experiment_id].append(run)
    return by_experiment


def belongs_to(run: Run, learner_tag: str, learner: str, in_learner_experiment: bool) -> bool:
    """A run is a learner's when it carries their tag, or sits untagged in their experiment."""
    tag = run.data.tags.get(learner_tag)
    return tag == learner or (tag is None and in_learner_experiment)


def _finished(runs: list[Run]) -> int:
    return sum(r.info.status == "FINISHED" for r in runs)


def _names(experiments: list[Experiment]) -> str:
    names = [repr(e.name) for e in experiments]
    return "no experiments" if not names else "experiments " + ", ".join(names[:20]) + (" ..." if len(names) > 20 else "")


def _nothing_logged(experiments, experiment_name, learner_tag, learner) -> str:
    if learner_tag:
        return f"no runs carry the tag {learner_tag}={learner!r}"
    if experiment_name:
        return f"experiment {experiment_name!r} holds no runs yet: run your practice with MLFLOW_TRACKING_URI pointing at this store"
    return ("the store is empty: it holds no runs yet (" + _names(experiments) + "). Run your practice with "
            "MLFLOW_TRACKING_URI pointing at this store, then inspect it again")


def learners(store: OpenedStore, learner_tag: str) -> list[str]:
    """Every value of the learner tag, on experiments or on runs."""
    experiments = all_experiments(store)
    found = {e.tags[learner_tag] for e in experiments if learner_tag in (e.tags or {})}
    for run in runs_of(store, [e.experiment_id for e in experiments]):
        if learner_tag in run.data.tags:
            found.add(run.data.tags[learner_tag])
    return sorted(v for v in found if v)


# ---------------------------------------------------------------- the rubric
@dataclass
class Findings:
    """What the checks learnt, item by item: passed, or the message saying why not."""

    store: OpenedStore
    scope: Scope
    messages: dict[str, str] = field(default_factory=dict)  # item key -> failure; absent = passed
    model: object = None  # the RegisteredModel judged

    def fail(self, key: str, message: str) -> None:
        self.messages.setdefault(key, message)


def inspect_scope(store: OpenedStore, scope: Scope) -> Findings:
    findings = Findings(store, scope)
    check_tracked_runs(findings)
    check_logged_model(findings)
    check_registered_lineage(findings)
    if findings.model is None:
        for key in ("alias", "documented"):
            findings.fail(key, "there is no registered model to check (see registered lineage)")
    else:
        check_alias(findings)
        check_documented(findings)
    return findings


def check_tracked_runs(findings: Findings) -> None:
    scope = findings.scope
    good = [r for r in scope.runs if r.info.status == "FINISHED" and r.data.params and r.data.metrics]
    if len(good) < rubric.MIN_RUNS:
        statuses = ", ".join(f"{r.info.run_name or r.info.run_id}: {r.info.status}, {len(r.data.params)} params, "
                             f"{len(r.data.metrics)} metrics" for r in scope.runs[:6])
        findings.fail("tracked_runs", f"experiment {scope.experiment.name!r} has {len(good)} FINISHED runs with params "
                                      f"and metrics, expected at least {rubric.MIN_RUNS} (its runs: {statuses or 'none'})")


def check_logged_model(findings: Findings) -> None:
    store, scope = findings.store, findings.scope
    models = _logged_models(findings)
    if not models:
        findings.fail("logged_model", f"no run of experiment {scope.experiment.name!r} logged a model")
        return
    problems = []
    for model in models[:MAX_MLMODEL_READS]:
        try:
            if (store.mlmodel(model.artifact_location).get("signature") or {}).get("inputs"):
                return
            problems.append(f"{model.name} ({model.model_id}) has no signature")
        except LookupError as error:
            problems.append(str(error))
    findings.fail("logged_model", f"none of the {len(models)} models logged in experiment {scope.experiment.name!r} "
                                  f"has a signature: {'; '.join(problems[:3])}")


def _logged_models(findings: Findings) -> list:
    store, scope = findings.store, findings.scope
    if not scope.runs:
        return []
    experiment_id = scope.experiment.experiment_id
    models = store.remember(("logged_models", experiment_id), lambda: _paged(lambda token: store.client.search_logged_models(
        experiment_ids=[experiment_id], max_results=100, page_token=token)))
    return [m for m in models if m.source_run_id in scope.run_ids]


def check_registered_lineage(findings: Findings) -> None:
    store, scope = findings.store, findings.scope
    logged_ids = {m.model_id for m in _logged_models(findings)}
    candidates = _registered_models(findings)
    if not candidates:
        return
    linked = {m.name: [v for v in _versions(store, m.name) if _links(v, scope.run_ids, logged_ids)] for m in candidates}
    model = max(candidates, key=lambda m: (len(linked[m.name]), bool(m.aliases)))
    findings.model = model
    versions = _versions(store, model.name)
    if not versions:
        findings.fail("registered_lineage", f"registered model {model.name!r} has no versions")
        return
    linked_numbers = {v.version for v in linked[model.name]}
    strays = [v.version for v in versions if v.version not in linked_numbers]
    if strays:
        findings.fail("registered_lineage", f"version(s) {', '.join(map(str, strays))} of registered model {model.name!r} "
                                            f"do not come from a run of experiment {scope.experiment.name!r} "
                                            "(they were registered from models of other runs)")


def _registered_models(findings: Findings) -> list:
    store, scope = findings.store, findings.scope
    if scope.model_name is not None:
        try:
            return [store.client.get_registered_model(scope.model_name)]
        except MlflowException:
            names = [m.name for m in _all_registered(store)]
            findings.fail("registered_lineage", f"the registry has no model called {scope.model_name!r}; it holds "
                                                f"{', '.join(map(repr, names[:20])) or 'no models'}")
            return []
    logged_ids = {m.model_id for m in _logged_models(findings)}
    mine = [m for m in _all_registered(store)
            if any(_links(v, scope.run_ids, logged_ids) for v in _versions(store, m.name))]
    if not mine:
        findings.fail("registered_lineage", f"no registered model has a version from a run of experiment "
                                            f"{scope.experiment.name!r}")
    return mine


def _all_registered(store: OpenedStore) -> list:
    return store.remember("registered_models", lambda: _paged(
        lambda token: store.client.search_registered_models(max_results=MAX_RESULTS, page_token=token)))


def _versions(store: OpenedStore, name: str) -> list:
    escaped = name.replace("'", "\\'")
    return store.remember(("versions", name), lambda: _paged(lambda token: store.client.search_model_versions(
        f"name = '{escaped}'", max_results=MAX_RESULTS, page_token=token)))


def _links(version, run_ids: set[str], logged_ids: set[str]) -> bool:
    """A version links back when its run, or the logged model it was made from, is in scope."""
    source = version.source or ""
    from_model = source.removeprefix("models:/").strip("/") if source.startswith("models:/") else None
    from_run = source.removeprefix("runs:/").split("/")[0] if source.startswith("runs:/") else None
    return (version.run_id in run_ids or from_run in run_ids
            or from_model in logged_ids or getattr(version, "model_id", None) in logged_ids)


def check_alias(findings: Findings) -> None:
    model = findings.model
    if not model.aliases:
        findings.fail("alias", f"registered model {model.name!r} has no alias on any version")


def check_documented(findings: Findings) -> None:
    store, model = findings.store, findings.model
    if model.description or user_tags(model.tags):
        return
    if any(v.description or user_tags(v.tags) for v in _versions(store, model.name)):
        return
    findings.fail("documented", f"registered model {model.name!r} and its versions have no description and no tags")


# ---------------------------------------------------------------- as a grade
def grade_of(findings: Findings | None, problem: str = "", problem_status: str = "failed", seconds: float = 0.0) -> Grade:
    """The rubric's Grade: each item passed or failed, or every item carrying ``problem``
    when there was nothing to judge (``failed``: an empty store; ``error``: no store at all)."""
    catalogue = rubric.catalogue()
    checks = []
    for exercise in catalogue.exercises:
        key, points = exercise.function, exercise.points
        if findings is None:
            checks.append(CheckResult(exercise, key, points, problem_status, problem))
            continue
        message = findings.messages.get(key)
        checks.append(CheckResult(exercise, key, points, "failed" if message else "passed", message or ""))
    return Grade(catalogue, checks, None, seconds)


def describe(findings: Findings) -> dict:
    """What was judged, for the header and results.json."""
    scope = findings.scope
    return {
        "experiment": scope.experiment.name,
        "experiment_id": scope.experiment.experiment_id,
        "runs": len(scope.runs),
        "registered_model": getattr(findings.model, "name", None),
        **({"learner": scope.learner} if scope.learner else {}),
    }
