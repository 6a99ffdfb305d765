"""Module 4 — the practice task, checked from what it left in the store.

A class's ``scenario`` runs on a background thread, ahead of its tests and beside
other classes' (AUTHORING.md); its tests read what it returned.
"""
from __future__ import annotations

import numpy as np
from mlflow.exceptions import MlflowException
from sklearn.datasets import load_wine
from sklearn.model_selection import train_test_split

from grader.core import steps
from grader.core.read import close, logged_model_files, mlmodel, runs_in, still_active
from grader.core.text import without_data
from grader.core.session import Scenario

MIN_ACCURACY = 0.9
FINISHED = "a FINISHED status"  # a candidate's first condition, as the messages name it


def wine_split():
    X, y = load_wine(return_X_y=True, as_frame=True)
    return train_test_split(X, y, test_size=0.25, random_state=42, stratify=y)


class Test_run_practice:
    @staticmethod
    def scenario(learner, inputs):
        store = learner.store()
        experiment_name, model_name = inputs.name("practice"), inputs.name("wine")
        call = learner.attempt(store, experiment_name, model_name)
        # Load the champion in a fresh sandbox process now, while other checks run.
        probe = learner.probe(store, steps.pyfunc_predict, f"models:/{model_name}@champion", wine_split()[1]) if call.succeeded else None
        return Scenario(store=store, experiment_name=experiment_name, model_name=model_name, call=call, probe=probe)

    @staticmethod
    def practice(scenario):
        store, experiment_name, model_name, call, probe = scenario.store, scenario.experiment_name, scenario.model_name, scenario.call, scenario.probe
        returned = call.value()
        assert isinstance(returned, dict) and {"experiment_id", "best_run_id", "version"} <= set(returned), (
            f"run_practice should return a dict with experiment_id, best_run_id and version; it returned {returned!r}"
        )
        experiment = store.client.get_experiment_by_name(experiment_name)
        assert experiment is not None, f"the store has no experiment called {experiment_name!r}"
        assert experiment.experiment_id == returned["experiment_id"], (
            f"experiment {experiment_name!r} has id {experiment.experiment_id!r}, the function returned {returned['experiment_id']!r}"
        )
        return store, returned, model_name, probe

    @staticmethod
    def conditions(store, experiment_id) -> dict[str, dict[str, bool]]:
        """Per run of the experiment: which of a candidate's conditions it meets."""
        held = {}
        for run in runs_in(store, experiment_id):
            models = store.client.search_logged_models(experiment_ids=[experiment_id], filter_string=f"source_run_id = '{run.info.run_id}'")
            held[run.info.run_id] = {
                FINISHED: run.info.status == "FINISHED",
                "an accuracy metric": "accuracy" in run.data.metrics,
                "a logged model": bool(models),
                "a model with a signature": any(
                    (mlmodel(store, logged_model_files(store, m)).get("signature") or {}).get("inputs") for m in models),
            }
        return held

    @classmethod
    def candidates(cls, store, experiment_id):
        """FINISHED runs that logged accuracy and a model with a signature."""
        good = {run_id for run_id, met in cls.conditions(store, experiment_id).items() if all(met.values())}
        return [run for run in runs_in(store, experiment_id) if run.info.run_id in good]

    @staticmethod
    def lacking(store, experiment_id, held) -> str:
        """What the runs lack, not everything a candidate must have; runs never ended (RUNNING)
        are named, with how to end them, rather than counted as lacking a FINISHED status."""
        running = [run.info.run_id for run in runs_in(store, experiment_id) if run.info.status == "RUNNING"]
        missing = {c: sum(not met[c] for met in held.values()) for c in next(iter(held.values()))}
        missing[FINISHED] -= len(running)
        lacking = [f"{n} {'lacks' if n == 1 else 'lack'} {c}" for c, n in missing.items() if n]
        said = [still_active(running)] if running else []
        return "; ".join(said + ([f"of the {len(held)} runs, {'; '.join(lacking)}"] if lacking else []))

    def test_candidate_runs(self, scenario):
        practice = self.practice(scenario)
        store, returned, *_ = practice
        held = self.conditions(store, returned["experiment_id"])
        good = [run_id for run_id, met in held.items() if all(met.values())]
        runs = len(held)
        if len(good) < 3 and runs >= 3:
            raise AssertionError(
                f"the experiment holds {runs} runs, but only {len(good)} count as candidates: "
                f"{self.lacking(store, returned['experiment_id'], held)}. Every candidate run must be FINISHED with an "
                "accuracy metric and a logged model with a signature (signature=infer_signature(X_train, model.predict(X_train)))"
            )
        assert len(good) >= 3, (
            f"the experiment holds {runs} run(s); train at least 3 candidates, each in its own run "
            "(FINISHED, with an accuracy metric and a logged model with a signature)"
        )

    def champion(self, store, returned, model_name):
        try:
            version = store.client.get_model_version_by_alias(model_name, "champion")
        except MlflowException:
            raise AssertionError(f"registered model {model_name!r} has no version with alias 'champion'") from None
        assert isinstance(returned["version"], int) and not isinstance(returned["version"], bool), (
            f"run_practice returned version {returned['version']!r}, a {type(returned['version']).__name__}: return it as "
            "an int, int(model_version.version) (MLflow gives the version as a string from a tracking server "
            "and as an int from a local SQLite store)"
        )
        assert int(version.version) == returned["version"], f"alias champion is on version {version.version}, the function returned {returned['version']!r}"
        assert version.run_id == returned["best_run_id"], f"the champion comes from run {version.run_id}, the function returned best_run_id {returned['best_run_id']!r}"
        return version

    def test_champion_is_best(self, scenario):
        practice = self.practice(scenario)
        store, returned, model_name, _ = practice
        version = self.champion(store, returned, model_name)
        scores = {r.info.run_id: r.data.metrics["accuracy"] for r in self.candidates(store, returned["experiment_id"])}
        if version.run_id not in scores:
            met = self.conditions(store, returned["experiment_id"]).get(version.run_id)
            assert met is not None, f"the champion comes from run {version.run_id}, which is not a run of the experiment"
            if store.client.get_run(version.run_id).info.status == "RUNNING":
                raise AssertionError(f"the champion's run is not a candidate: {still_active([version.run_id])}")
            lacks = " and ".join(c for c, held in met.items() if not held)
            raise AssertionError(f"the champion's run {version.run_id} is not a candidate: it lacks {lacks}")
        best = max(scores.values())
        assert scores[version.run_id] == best, f"the champion's run has accuracy {scores[version.run_id]}, but the best run has {best}"

    def test_champion_reproduces(self, scenario):
        practice = self.practice(scenario)
        store, returned, model_name, result = practice
        version = self.champion(store, returned, model_name)
        logged = store.client.get_run(version.run_id).data.metrics.get("accuracy")
        _, _, _, y_test = wine_split()
        assert result.status == "ok", f"models:/{model_name}@champion could not be loaded and used: {without_data(result.error or '')}"
        accuracy = float(np.mean(np.asarray(result.array()).ravel() == y_test.to_numpy()))
        assert logged is not None and close(accuracy, logged), f"the champion scores {accuracy:.4f} on the test split, but its run logged accuracy {logged}"
        assert accuracy >= MIN_ACCURACY, f"the champion's test accuracy is {accuracy:.4f}; reach at least {MIN_ACCURACY}"
