"""Module 1 — experiment tracking. Each class is one function of exercises/ex01_tracking.py;
each test is one check, worth the points catalogue.toml gives it.

A class's ``scenario`` runs on a background thread, ahead of its tests and beside
other classes' (AUTHORING.md); its tests read what it returned.
"""
from __future__ import annotations

import json
import struct

from mlflow.entities import ViewType
from mlflow.exceptions import MlflowException
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, classification_report, confusion_matrix, f1_score

from grader.core.read import (
    artifact, artifact_json, artifact_text, assert_finished, close, returned_run, runs_in, show,
    still_active, stored_params, user_tags,
)
from grader.sandbox.protocol import sandbox_step
from grader.core.session import Scenario


def experiments_named(store, name):
    return [e for e in store.client.search_experiments(view_type=ViewType.ALL) if e.name == name]


def refit_scores(params, data):
    """The grader's own training: the metrics a correct submission must have logged."""
    X_train, X_test, y_train, y_test = data
    predicted = LogisticRegression(**params).fit(X_train, y_train).predict(X_test)
    return {"accuracy": accuracy_score(y_test, predicted), "f1_macro": f1_score(y_test, predicted, average="macro")}


class Test_get_or_create_experiment:
    @staticmethod
    def scenario(learner, inputs):
        new = Scenario(store=learner.store(), name=inputs.name("exp"), tags=inputs.tags())
        new.call = learner.start(new.store, new.name, new.tags)

        existing = Scenario(store=learner.store(), name=inputs.name("existing"))
        existing.id = existing.store.new_experiment(existing.name, tags=inputs.tags())
        existing.count = len(existing.store.client.search_experiments(view_type=ViewType.ALL))
        existing.call = learner.start(existing.store, existing.name, None)

        deleted = Scenario(store=learner.store(), name=inputs.name("deleted"))
        deleted.id = deleted.store.new_experiment(deleted.name)
        deleted.store.client.delete_experiment(deleted.id)
        deleted.call = learner.start(deleted.store, deleted.name, inputs.tags())
        return Scenario(new=new, existing=existing, deleted=deleted)

    def test_creates_with_tags(self, scenario):
        store, name, tags = scenario.new.store, scenario.new.name, scenario.new.tags
        returned = scenario.new.call.value()
        found = experiments_named(store, name)
        assert found, f"after the call the store has no experiment called {name!r}"
        experiment = found[0]
        assert experiment.lifecycle_stage == "active", f"experiment {name!r} is {experiment.lifecycle_stage}, not active"
        assert returned == experiment.experiment_id, (
            f"the function returned {returned!r}, but the experiment {name!r} has id {experiment.experiment_id!r} "
            "(ids are strings)"
        )
        assert user_tags(experiment.tags) == tags, f"the experiment's tags are {show(user_tags(experiment.tags))}, expected {show(tags)}"

    def test_second_call_reuses(self, scenario):
        store, name, existing, count = (scenario.existing.store, scenario.existing.name, scenario.existing.id, scenario.existing.count)
        returned = scenario.existing.call.value()
        assert returned == existing, f"experiment {name!r} already existed with id {existing!r}, but the function returned {returned!r}"
        after = len(store.client.search_experiments(view_type=ViewType.ALL))
        assert after == count, f"the store held {count} experiments before the call and {after} after: nothing should be created"

    def test_restores_deleted(self, scenario):
        store, name, deleted = scenario.deleted.store, scenario.deleted.name, scenario.deleted.id
        returned = scenario.deleted.call.value()
        found = experiments_named(store, name)
        assert len(found) == 1, f"there are now {len(found)} experiments called {name!r}: restore the deleted one instead of making another"
        assert returned == deleted, f"the deleted experiment {name!r} had id {deleted!r}; the function returned {returned!r}"
        assert found[0].lifecycle_stage == "active", (
            f"experiment {name!r} is still {found[0].lifecycle_stage}: restore it with MlflowClient().restore_experiment"
        )


class Test_log_run:
    @staticmethod
    def scenario(learner, inputs):
        store = learner.store()
        experiment_id = store.new_experiment(inputs.name("runs"))
        given = dict(params=inputs.params(4), metrics=inputs.metrics(3), tags=inputs.tags(2), run_name=inputs.name("run"))
        call = learner.attempt(store, experiment_id, given["params"], given["metrics"], tags=given["tags"], run_name=given["run_name"])
        return Scenario(store=store, experiment_id=experiment_id, given=given, call=call)

    def test_one_finished_run(self, scenario):
        store, experiment_id, call = scenario.store, scenario.experiment_id, scenario.call
        result = call.result()
        runs = runs_in(store, experiment_id)
        assert len(runs) == 1, f"experiment {experiment_id} holds {len(runs)} runs after the call; expected exactly one new run"
        run = returned_run(store, result.value, experiment_id)
        assert_finished(run, result.active_run)

    def test_params_and_metrics(self, scenario):
        store, experiment_id, given, call = scenario.store, scenario.experiment_id, scenario.given, scenario.call
        run = returned_run(store, call.value(), experiment_id)
        expected = stored_params(given["params"])
        assert run.data.params == expected, f"the run's params are {show(run.data.params)}, expected {show(expected)} (MLflow stores param values as strings)"
        assert run.data.metrics == given["metrics"], f"the run's metrics are {show(run.data.metrics)}, expected {show(given['metrics'])}"

    def test_tags_and_run_name(self, scenario):
        store, experiment_id, given, call = scenario.store, scenario.experiment_id, scenario.given, scenario.call
        run = returned_run(store, call.value(), experiment_id)
        tags = user_tags(run.data.tags)
        assert tags == given["tags"], f"the run's tags are {show(tags)}, expected {show(given['tags'])}"
        assert run.info.run_name == given["run_name"], f"the run is named {run.info.run_name!r}, expected {given['run_name']!r}"


class Test_log_metric_history:
    @staticmethod
    def scenario(learner, inputs):
        store = learner.store()
        experiment_id = store.new_experiment(inputs.name("history"))
        key, values = inputs.keys("loss", 1)[0], inputs.floats(inputs.rng.randint(5, 9))
        return Scenario(store=store, experiment_id=experiment_id, key=key, values=values, call=learner.attempt(store, experiment_id, key, values))

    def test_finished_run(self, scenario):
        store, experiment_id, call = scenario.store, scenario.experiment_id, scenario.call
        result = call.result()
        assert_finished(returned_run(store, result.value, experiment_id), result.active_run)

    def test_history_by_step(self, scenario):
        store, experiment_id, key, values, call = scenario.store, scenario.experiment_id, scenario.key, scenario.values, scenario.call
        run = returned_run(store, call.value(), experiment_id)
        history = sorted(store.client.get_metric_history(run.info.run_id, key), key=lambda m: (m.step, m.timestamp))
        assert history, f"run {run.info.run_id} has no metric {key!r}; its metrics are {sorted(run.data.metrics)}"
        held = [(m.step, m.value) for m in history]
        expected = list(enumerate(values))
        assert held == expected, f"the history of {key!r} holds (step, value) pairs {held}, expected {expected}"


class Test_log_evaluation:
    @staticmethod
    def scenario(learner, inputs):
        store = learner.store()
        experiment_id = store.new_experiment(inputs.name("evaluation"))
        labels = sorted(inputs.rng.sample(["cat", "dog", "owl", "fox", "elk"], 3))
        size = inputs.rng.randint(40, 80)
        y_true = labels + [inputs.rng.choice(labels) for _ in range(size - len(labels))]
        y_pred = [y if inputs.rng.random() < 0.7 else inputs.rng.choice(labels) for y in y_true]
        labels_given = inputs.rng.sample(labels, len(labels))  # the order the learner must keep
        call = learner.attempt(store, experiment_id, y_true, y_pred, labels_given)
        return Scenario(store=store, experiment_id=experiment_id, call=call, y_true=y_true, y_pred=y_pred, labels=labels_given)

    @staticmethod
    def run(scenario):
        return returned_run(scenario.store, scenario.call.value(), scenario.experiment_id)

    def test_metrics(self, scenario):
        run, result, y_true, y_pred = self.run(scenario), scenario.call.result(), scenario.y_true, scenario.y_pred
        assert_finished(run, result.active_run)
        expected = {"accuracy": accuracy_score(y_true, y_pred), "f1_macro": f1_score(y_true, y_pred, average="macro")}
        held = {k: run.data.metrics.get(k) for k in expected}
        assert all(v is not None and close(v, expected[k]) for k, v in held.items()), (
            f"the run's metrics are {show(held)}, expected {show(expected)}"
        )

    def test_confusion_matrix_json(self, scenario):
        store, run, y_true, y_pred, labels = scenario.store, self.run(scenario), scenario.y_true, scenario.y_pred, scenario.labels
        held = artifact_json(store, run, "evaluation/confusion_matrix.json")
        expected = {"labels": labels, "matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist()}
        assert isinstance(held, dict) and held.get("labels") == labels, (
            f"confusion_matrix.json has labels {held.get('labels') if isinstance(held, dict) else held!r}, expected {labels} in that order"
        )
        assert held.get("matrix") == expected["matrix"], (
            f"confusion_matrix.json holds matrix {held.get('matrix')}, expected {expected['matrix']} "
            "(sklearn.metrics.confusion_matrix(y_true, y_pred, labels=labels), as lists)"
        )

    def test_report_text(self, scenario):
        store, run, y_true, y_pred, labels = scenario.store, self.run(scenario), scenario.y_true, scenario.y_pred, scenario.labels
        text = " ".join(artifact_text(store, run, "evaluation/report.txt").split())
        reports = {" ".join(classification_report(y_true, y_pred, labels=order).split()) for order in (labels, sorted(labels))}
        assert any(report in text for report in reports), (
            "evaluation/report.txt does not contain scikit-learn's classification_report(y_true, y_pred) "
            f"for these predictions; it starts with: {text[:160]!r}"
        )

    def test_confusion_matrix_png(self, scenario):
        store, run = scenario.store, self.run(scenario)
        data = artifact(store, run, "evaluation/confusion_matrix.png").read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", (
            "evaluation/confusion_matrix.png is not a PNG image (save a matplotlib figure with mlflow.log_figure)"
        )
        width, height = struct.unpack(">II", data[16:24])
        assert width >= 50 and height >= 50 and b"IEND" in data[-16:], (
            f"evaluation/confusion_matrix.png is {width}x{height} pixels or cut short; render the figure"
        )


class Test_train_and_track:
    @staticmethod
    def scenario(learner, inputs):
        store = learner.store()
        experiment_id = store.new_experiment(inputs.name("train"))
        data = inputs.classification(inputs.rng.choice([2, 3]))
        for _ in range(20):  # params whose training and test accuracies differ: logging the wrong one shows
            params = inputs.logistic_params()
            if refit_scores(params, data)["accuracy"] != refit_scores(params, (data[0], data[0], data[2], data[2]))["accuracy"]:
                break
        call = learner.attempt(store, experiment_id, data, params)
        return Scenario(store=store, experiment_id=experiment_id, call=call, data=data, params=params, expected=refit_scores(params, data))

    @staticmethod
    def run(scenario):
        return returned_run(scenario.store, scenario.call.value(), scenario.experiment_id)

    def test_params_and_tag(self, scenario):
        run, result, params = self.run(scenario), scenario.call.result(), scenario.params
        assert_finished(run, result.active_run)
        assert run.data.params == stored_params(params), f"the run's params are {show(run.data.params)}, expected {show(stored_params(params))}"
        family = run.data.tags.get("model_family")
        assert family == "logistic_regression", f"tag model_family is {family!r}, expected 'logistic_regression'"

    def test_metrics_match_refit(self, scenario):
        run, expected = self.run(scenario), scenario.expected
        held = {k: run.data.metrics.get(k) for k in expected}
        assert all(v is not None and close(v, expected[k]) for k, v in held.items()), (
            f"the run's metrics are {show(held)}; LogisticRegression(**params) fitted on the training split scores "
            f"{show(expected)} on the test split"
        )

    def test_dataset_inputs(self, scenario):
        run = self.run(scenario)
        X_train, X_test, *_ = scenario.data
        by_context = {}
        for dataset_input in run.inputs.dataset_inputs if run.inputs else []:
            context = {t.key: t.value for t in dataset_input.tags}.get("mlflow.data.context")
            by_context[context] = dataset_input.dataset
        for context, frame in (("training", X_train), ("evaluation", X_test)):
            assert context in by_context, (
                f"the run has no dataset input with context {context!r}; its inputs have contexts {sorted(map(str, by_context))}"
            )
            dataset = by_context[context]
            rows = json.loads(dataset.profile or "{}").get("num_rows")
            assert rows == len(frame), f"the {context} dataset has {rows} rows, expected {len(frame)}"
            columns = {c.get("name") for c in json.loads(dataset.schema or "{}").get("mlflow_colspec", [])}
            missing = set(frame.columns) - columns
            assert not missing, f"the {context} dataset's schema lacks the feature columns {sorted(missing)}"


@sandbox_step
def fit_outside_a_run(returned, X, y):
    """After the learner's call, in its process: fit one more model outside any run. With
    autologging left on, that fit logs a run of its own (which the checks then find)."""
    import mlflow
    from sklearn.linear_model import LogisticRegression

    LogisticRegression(max_iter=200).fit(X, y)
    if mlflow.active_run() is not None:
        mlflow.end_run()
    return returned


class Test_train_with_autolog:
    @staticmethod
    def scenario(learner, inputs):
        store = learner.store()
        experiment_id = store.new_experiment(inputs.name("autolog"))
        data, params = inputs.classification(2), inputs.forest_params()
        call = learner.attempt(store, experiment_id, data, params, then=(fit_outside_a_run, data[1], data[3]))
        return Scenario(store=store, experiment_id=experiment_id, call=call, params=params)

    def autolog_run(self, store, experiment_id, call):
        run = returned_run(store, call.value(), experiment_id)
        assert "training_accuracy_score" in run.data.metrics, (
            f"run {run.info.run_id} has no training metrics from autologging (metrics: {sorted(run.data.metrics)}); "
            "call mlflow.sklearn.autolog() before fit"
        )
        return run

    def test_autolog_logged(self, scenario):
        store, experiment_id, call, params = scenario.store, scenario.experiment_id, scenario.call, scenario.params
        run = self.autolog_run(store, experiment_id, call)
        assert_finished(run, call.result().active_run)
        every_param = RandomForestClassifier(**params).get_params()
        missing = sorted(set(every_param) - set(run.data.params))
        assert not missing, f"autologging logs every estimator param, but the run lacks {missing}"
        wrong = {k: run.data.params[k] for k, v in params.items() if run.data.params[k] != str(v)}
        assert not wrong, f"the run's params {show(wrong)} differ from the params given, {show(stored_params(params))}"
        models = store.client.search_logged_models(experiment_ids=[experiment_id], filter_string=f"source_run_id = '{run.info.run_id}'")
        assert models, f"run {run.info.run_id} has no logged model: autologging logs one when log_models is left on"

    def test_autolog_off_after(self, scenario):
        store, experiment_id, call = scenario.store, scenario.experiment_id, scenario.call
        self.autolog_run(store, experiment_id, call)
        every_run = store.client.search_runs(
            [e.experiment_id for e in store.client.search_experiments(view_type=ViewType.ALL)], run_view_type=ViewType.ALL
        )
        extra = [r.info.run_id for r in every_run if r.info.run_id != call.value()]
        assert not extra, (
            f"a plain fit after the call logged run(s) {extra}: autologging was left on; "
            "call mlflow.sklearn.autolog(disable=True) when done"
        )


class Test_find_best_run:
    @staticmethod
    def fill(store, inputs, metric, values, *, other_metric=False):
        """An experiment of FINISHED runs made by the grader, one per value (None: no metric)."""
        experiment_id = store.new_experiment(inputs.name("search"))
        ids = []
        for value in values:
            run_id = store.client.create_run(experiment_id).info.run_id
            if value is not None:
                store.client.log_metric(run_id, metric, value)
            if other_metric or value is None:
                store.client.log_metric(run_id, "m_other", inputs.rng.uniform(5, 10))
            store.client.set_terminated(run_id, "FINISHED")
            ids.append(run_id)
        return experiment_id, ids

    @staticmethod
    def add_run(store, experiment_id, metric, value, status="FINISHED", delete=False):
        run_id = store.client.create_run(experiment_id).info.run_id
        store.client.log_metric(run_id, metric, value)
        if status != "RUNNING":
            store.client.set_terminated(run_id, status)
        if delete:
            store.client.delete_run(run_id)
        return run_id

    @classmethod
    def scenario(cls, learner, inputs):
        store = learner.store()
        # Plain: distinct values, one best.
        metric = inputs.keys("score", 1)[0]
        values = inputs.rng.sample(range(10, 99), 5)
        experiment_id, ids = cls.fill(store, inputs, metric, [v / 100 for v in values], other_metric=True)
        plain = Scenario(store=store, metric=metric, best=ids[values.index(max(values))], call=learner.attempt(store, experiment_id, metric, True))

        # Traps: better values on runs that do not count, a tie among the best, a run without the metric.
        metric = inputs.keys("score", 1)[0]
        values = [v / 100 for v in inputs.rng.sample(range(10, 90), 4)]
        experiment_id, ids = cls.fill(store, inputs, metric, values + [None])
        top = max(values)
        tie = cls.add_run(store, experiment_id, metric, top)
        traps = {
            "a FAILED run": cls.add_run(store, experiment_id, metric, top + 0.05, status="FAILED"),
            "a deleted run": cls.add_run(store, experiment_id, metric, top + 0.06, delete=True),
            "a run still RUNNING": cls.add_run(store, experiment_id, metric, top + 0.07, status="RUNNING"),
        }
        trapped = Scenario(store=store, metric=metric, traps=traps, winners={ids[values.index(top)], tie}, call=learner.attempt(store, experiment_id, metric))

        # maximize=False, then experiments where no run qualifies.
        metric = inputs.keys("loss", 1)[0]
        values = [v / 100 for v in inputs.rng.sample(range(10, 90), 4)]
        experiment_id, ids = cls.fill(store, inputs, metric, values)
        cls.add_run(store, experiment_id, metric, min(values) - 0.05, status="FAILED")
        lowest = Scenario(store=store, metric=metric, best=ids[values.index(min(values))], call=learner.attempt(store, experiment_id, metric, maximize=False))
        empty_id = store.new_experiment(inputs.name("empty"))
        empty = Scenario(id=empty_id, call=learner.attempt(store, empty_id, metric))
        no_metric_id, _ = cls.fill(store, inputs, metric, [None, None])
        no_metric = Scenario(id=no_metric_id, call=learner.attempt(store, no_metric_id, metric))
        return Scenario(plain=plain, trapped=trapped, lowest=lowest, empty=empty, no_metric=no_metric)

    @staticmethod
    def described(case, run_id) -> str:
        """A run id with its value of the metric, as the store holds it."""
        if not isinstance(run_id, str):
            return repr(run_id)
        try:
            metrics = case.store.client.get_run(run_id).data.metrics
        except MlflowException:
            return f"{run_id!r} (not a run of the store)"
        held = metrics.get(case.metric)
        if held is None:
            others = ", ".join(f"{k}={v:g}" for k, v in sorted(metrics.items())) or "no metrics"
            return f"{run_id} (which has no {case.metric!r}; it holds {others})"
        return f"{run_id} ({case.metric}={held:g})"

    def test_best_finished(self, scenario):
        plain = scenario.plain
        returned = plain.call.value()
        assert returned == plain.best, (
            f"the best FINISHED run by {plain.metric!r} is {self.described(plain, plain.best)}; "
            f"the function returned {self.described(plain, returned)}"
        )

    def test_ignores_traps(self, scenario):
        trapped = scenario.trapped
        returned = trapped.call.value()
        for trap, run_id in trapped.traps.items():
            assert returned != run_id, (
                f"the function returned {trap}, {self.described(trapped, run_id)}; only FINISHED, active runs count"
            )
        assert returned in trapped.winners, (
            f"the best FINISHED runs by {trapped.metric!r} are {' and '.join(self.described(trapped, w) for w in sorted(trapped.winners))} "
            f"(a tie); the function returned {self.described(trapped, returned)}"
        )

    def test_minimize_and_empty(self, scenario):
        lowest, empty, no_metric = scenario.lowest, scenario.empty, scenario.no_metric
        returned = lowest.call.value()
        assert returned == lowest.best, (
            f"with maximize=False the best run by {lowest.metric!r} is {self.described(lowest, lowest.best)} (the lowest value); "
            f"the function returned {self.described(lowest, returned)}"
        )
        returned = empty.call.value()
        assert returned is None, f"experiment {empty.id} has no runs, so the answer is None; the function returned {returned!r}"
        returned = no_metric.call.value()
        assert returned is None, f"no run of experiment {no_metric.id} has metric {lowest.metric!r}, so the answer is None; the function returned {returned!r}"


def has_clear_winner(scores: list[float]) -> bool:
    """One best score, and it is not the last one."""
    return scores.count(max(scores)) == 1 and scores[-1] != max(scores)


class Test_tune_hyperparameters:
    @staticmethod
    def scenario(learner, inputs):
        store = learner.store()
        experiment_id = store.new_experiment(inputs.name("tuning"))
        # A grid whose entries score differently, with one clear winner that is not the last
        # entry: picking the wrong child (the last, or the worst) must show.
        strengths = [0.0001, 0.001, 0.003, 0.01, 0.03, 0.1, 1.0, 10.0]
        for _ in range(20):
            data, base = inputs.classification(2, noisy=True), inputs.logistic_params()
            score_of = {c: refit_scores({**base, "C": c}, data)["accuracy"] for c in strengths}
            grids = [sorted(inputs.rng.sample(strengths, inputs.rng.randint(3, 4))) for _ in range(30)]
            chosen = next((g for g in grids if has_clear_winner([score_of[c] for c in g])), None)
            if chosen:
                break
        scores = [score_of[c] for c in chosen]
        grid = [{**base, "C": c} for c in chosen]
        return Scenario(store=store, experiment_id=experiment_id, call=learner.attempt(store, experiment_id, data, grid), grid=grid, scores=scores)

    def parent_and_children(self, store, experiment_id, call):
        parent = returned_run(store, call.value(), experiment_id)
        runs = runs_in(store, experiment_id)
        children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
        return parent, children

    def test_nested_children(self, scenario):
        store, experiment_id, call, grid, scores = scenario.store, scenario.experiment_id, scenario.call, scenario.grid, scenario.scores
        parent, children = self.parent_and_children(store, experiment_id, call)
        assert_finished(parent, call.result().active_run)
        assert len(children) == len(grid), (
            f"the parent run has {len(children)} child runs (runs tagged mlflow.parentRunId = its id); expected one per "
            f"grid entry, {len(grid)}: open each with mlflow.start_run(nested=True) inside the parent"
        )
        running = [c.info.run_id for c in children if c.info.status == "RUNNING"]
        assert not running, f"child {still_active(running)}"
        unfinished = [c.info.run_id for c in children if c.info.status != "FINISHED"]
        assert not unfinished, f"child runs {unfinished} are not FINISHED"
        expected = sorted((show(stored_params(e)), s) for e, s in zip(grid, scores))
        held = sorted((show(c.data.params), c.data.metrics.get("accuracy")) for c in children)
        for (params, accuracy), (want_params, want_accuracy) in zip(held, expected):
            assert params == want_params, f"the children's params are {[p for p, _ in held]}, expected {[p for p, _ in expected]}"
            assert accuracy is not None and close(accuracy, want_accuracy), (
                f"the child with params {params} logged accuracy {accuracy}, but that entry scores {want_accuracy} on the test split"
            )

    def test_best_on_parent(self, scenario):
        store, experiment_id, call, grid, scores = scenario.store, scenario.experiment_id, scenario.call, scenario.grid, scenario.scores
        parent, _ = self.parent_and_children(store, experiment_id, call)
        best = max(scores)
        held = parent.data.metrics.get("best_accuracy")
        assert held is not None and close(held, best), f"the parent's best_accuracy is {held}, expected {best} (the best child's accuracy)"
        winners = [stored_params({f"best_{k}": v for k, v in e.items()}) for e, s in zip(grid, scores) if s == best]
        best_params = {k: v for k, v in parent.data.params.items() if k.startswith("best_")}
        assert best_params in winners, f"the parent's best_ params are {show(best_params)}, expected {' or '.join(map(show, winners))}"
