"""The practice rubric: what the lesson's open practice must leave in a store.

This is the one place that declares the rubric's items, their points and hints. It is
not the exercise catalogue (nothing here is a function to implement), but it is shaped
like one so that the summary and ``--grade-json`` read it the same way.
"""
from __future__ import annotations

from dataclasses import dataclass

from grader.core.catalogue import Catalogue, Check, Exercise, Module

MODULE = "practice"
TOTAL_POINTS = 100
MIN_RUNS = 3


@dataclass(frozen=True)
class Item:
    key: str
    points: int
    hint: str


ITEMS = (
    Item("tracked_runs", 30,
         f"Train at least {MIN_RUNS} candidates, each in its own `with mlflow.start_run(experiment_id=...)`, and log "
         "mlflow.log_params(...) and mlflow.log_metric(...) inside it so the run ends FINISHED."),
    Item("logged_model", 20,
         "Log a model from a run with mlflow.sklearn.log_model(model, name='model', "
         "signature=infer_signature(X_train, model.predict(X_train)))."),
    Item("registered_lineage", 25,
         "Register a model logged by one of those runs: mlflow.register_model(model_info.model_uri, name) "
         "(models:/<model_id> or runs:/<run_id>/model), so the version links back to its run."),
    Item("alias", 15,
         "Point an alias at one version: MlflowClient().set_registered_model_alias(name, 'champion', version)."),
    Item("documented", 10,
         "Say what the model is: MlflowClient().update_registered_model(name, description=...) or "
         "update_model_version(...) (step 7 of run_practice), or set_registered_model_tag / set_model_version_tag."),
)


def item(key: str) -> Item:
    return next(i for i in ITEMS if i.key == key)


def catalogue(title: str = "Practice: your own experiment and model") -> Catalogue:
    """The rubric as a one-module catalogue, so Grade, the summary and results.json fit it."""
    exercises = tuple(Exercise(MODULE, i.key, i.hint, (Check(i.key, i.points),)) for i in ITEMS)
    return Catalogue((Module(MODULE, title, exercises),))


if sum(i.points for i in ITEMS) != TOTAL_POINTS:
    raise ValueError(f"the practice rubric's points add up to {sum(i.points for i in ITEMS)}, not {TOTAL_POINTS}")
