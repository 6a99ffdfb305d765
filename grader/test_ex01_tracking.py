"""Module 1 — experiment tracking. Each class is one function of exercises/ex01_tracking.py;
each test is one check, worth the points catalogue.toml gives it."""
from __future__ import annotations

import json
import struct

import pytest
from mlflow.entities import ViewType
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, classification_report, confusion_matrix, f1_score

from grader.core.read import (
    artifact, artifact_json, artifact_text, assert_finished, close, returned_run, runs_in, show,
    stored_params, user_tags,
)

MODULE = "ex01_tracking"


def experiments_named(store, name):
    return [e for e in store.client.search_experiments(view_type=ViewType.ALL) if e.name == name]


def refit_scores(params, data):
    """The grader's own training: the metrics a correct submission must have logged."""
    X_train, X_test, y_train, y_test = data
    predicted = LogisticRegression(**params).fit(X_train, y_train).predict(X_test)
    return {"accuracy": accuracy_score(y_test, predicted), "f1_macro": f1_score(y_test, predicted, average="macro")}


class Test_get_or_create_experiment:
    @pytest.fixture(scope="class")
    def store(self, learner):
        return learner.store()

    @pytest.fixture(scope="class")
    def created(self, learner, inputs, store):
        name, tags = inputs.name("exp"), inputs.tags()
        return name, tags, learner.call(store, name, tags).value

    def test_creates_with_tags(self, store, created):
        name, tags, returned = created
        found = experiments_named(store, name)
        assert found, f"after the call the store has no experiment called {name!r}"
        experiment = found[0]
        assert experiment.lifecycle_stage == "active", f"experiment {name!r} is {experiment.lifecycle_stage}, not active"
        assert returned == experiment.experiment_id, (
            f"the function returned {returned!r}, but the experiment {name!r} has id {experiment.experiment_id!r} "
            "(ids are strings)"
        )
        assert user_tags(experiment.tags) == tags, f"the experiment's tags are {show(user_tags(experiment.tags))}, expected {show(tags)}"

    def test_second_call_reuses(self, learner, inputs, store):
        name = inputs.name("existing")
        existing = store.new_experiment(name, tags=inputs.tags())
        count = len(store.client.search_experiments(view_type=ViewType.ALL))
        returned = learner.call(store, name, None).value
        assert returned == existing, f"experiment {name!r} already existed with id {existing!r}, but the function returned {returned!r}"
        after = len(store.client.search_experiments(view_type=ViewType.ALL))
        assert after == count, f"the store held {count} experiments before the call and {after} after: nothing should be created"

    def test_restores_deleted(self, learner, inputs, store):
        name = inputs.name("deleted")
        deleted = store.new_experiment(name)
        store.client.delete_experiment(deleted)
        returned = learner.call(store, name, inputs.tags()).value
        found = experiments_named(store, name)
        assert len(found) == 1, f"there are now {len(found)} experiments called {name!r}: restore the deleted one instead of making another"
        assert returned == deleted, f"the deleted experiment {name!r} had id {deleted!r}; the function returned {returned!r}"
        assert found[0].lifecycle_stage == "active", (
            f"experiment {name!r} is still {found[0].lifecycle_stage}: restore it with MlflowClient().restore_experiment"
        )


class Test_log_run:
    @pytest.fixture(scope="class")
    def logged(self, learner, inputs):
        store = learner.store()
        experiment_id = store.new_experiment(inputs.name("runs"))
        given = dict(params=inputs.params(4), metrics=inputs.metrics(3), tags=inputs.tags(2), run_name=inputs.name("run"))
        result = learner.call(store, experiment_id, given["params"], given["metrics"], tags=given["tags"], run_name=given["run_name"])
        return store, experiment_id, given, result

    def test_one_finished_run(self, logged):
        store, experiment_id, _, result = logged
        runs = runs_in(store, experiment_id)
        assert len(runs) == 1, f"experiment {experiment_id} holds {len(runs)} runs after the call; expected exactly one new run"
        run = returned_run(store, result.value, experiment_id)
        assert_finished(run, result.active_run)

    def test_params_and_metrics(self, logged):
        store, experiment_id, given, result = logged
        run = returned_run(store, result.value, experiment_id)
        expected = stored_params(given["params"])
        assert run.data.params == expected, f"the run's params are {show(run.data.params)}, expected {show(expected)} (MLflow stores param values as strings)"
        assert run.data.metrics == given["metrics"], f"the run's metrics are {show(run.data.metrics)}, expected {show(given['metrics'])}"

    def test_tags_and_run_name(self, logged):
        store, experiment_id, given, result = logged
        run = returned_run(store, result.value, experiment_id)
        tags = user_tags(run.data.tags)
        assert tags == given["tags"], f"the run's tags are {show(tags)}, expected {show(given['tags'])}"
        assert run.info.run_name == given["run_name"], f"the run is named {run.info.run_name!r}, expected {given['run_name']!r}"


class Test_log_metric_history:
    @pytest.fixture(scope="class")
    def logged(self, learner, inputs):
        store = learner.store()
        experiment_id = store.new_experiment(inputs.name("history"))
        key, values = inputs.keys("loss", 1)[0], inputs.floats(inputs.rng.randint(5, 9))
        return store, experiment_id, key, values, learner.call(store, experiment_id, key, values)

    def test_finished_run(self, logged):
        store, experiment_id, _, _, result = logged
        assert_finished(returned_run(store, result.value, experiment_id), result.active_run)

    def test_history_by_step(self, logged):
        store, experiment_id, key, values, result = logged
        run = returned_run(store, result.value, experiment_id)
        history = sorted(store.client.get_metric_history(run.info.run_id, key), key=lambda m: (m.step, m.timestamp))
        assert history, f"run {run.info.run_id} has no metric {key!r}; its metrics are {sorted(run.data.metrics)}"
        held = [(m.step, m.value) for m in history]
        expected = list(enumerate(values))
        assert held == expected, f"the history of {key!r} holds (step, value) pairs {held}, expected {expected}"


class Test_log_evaluation:
    @pytest.fixture(scope="class")
    def logged(self, learner, inputs):
        store = learner.store()
        experiment_id = store.new_experiment(inputs.name("evaluation"))
        labels = sorted(inputs.rng.sample(["cat", "dog", "owl", "fox", "elk"], 3))
        size = inputs.rng.randint(40, 80)
        y_true = labels + [inputs.rng.choice(labels) for _ in range(size - len(labels))]
        y_pred = [y if inputs.rng.random() < 0.7 else inputs.rng.choice(labels) for y in y_true]
        labels_given = inputs.rng.sample(labels, len(labels))  # the order the learner must keep
        result = learner.call(store, experiment_id, y_true, y_pred, labels_given)
        run = returned_run(store, result.value, experiment_id)
        return store, run, result, y_true, y_pred, labels_given

    def test_metrics(self, logged):
        _, run, result, y_true, y_pred, _ = logged
        assert_finished(run, result.active_run)
        expected = {"accuracy": accuracy_score(y_true, y_pred), "f1_macro": f1_score(y_true, y_pred, average="macro")}
        held = {k: run.data.metrics.get(k) for k in expected}
        assert all(v is not None and close(v, expected[k]) for k, v in held.items()), (
            f"the run's metrics are {show(held)}, expected {show(expected)}"
        )

    def test_confusion_matrix_json(self, logged):
        store, run, _, y_true, y_pred, labels = logged
        held = artifact_json(store, run, "evaluation/confusion_matrix.json")
        expected = {"labels": labels, "matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist()}
        assert isinstance(held, dict) and held.get("labels") == labels, (
            f"confusion_matrix.json has labels {held.get('labels') if isinstance(held, dict) else held!r}, expected {labels} in that order"
        )
        assert held.get("matrix") == expected["matrix"], (
            f"confusion_matrix.json holds matrix {held.get('matrix')}, expected {expected['matrix']} "
            "(sklearn.metrics.confusion_matrix(y_true, y_pred, labels=labels), as lists)"
        )

    def test_report_text(self, logged):
        store, run, _, y_true, y_pred, labels = logged
        text = " ".join(artifact_text(store, run, "evaluation/report.txt").split())
        reports = {" ".join(classification_report(y_true, y_pred, labels=order).split()) for order in (labels, sorted(labels))}
        assert any(report in text for report in reports), (
            "evaluation/report.txt does not contain scikit-learn's classification_report(y_true, y_pred) "
            f"for these predictions; it starts with: {text[:160]!r}"
        )

    def test_confusion_matrix_png(self, logged):
        store, run, *_ = logged
        data = artifact(store, run, "evaluation/confusion_matrix.png").read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", (
            "evaluation/confusion_matrix.png is not a PNG image (save a matplotlib figure with mlflow.log_figure)"
        )
        width, height = struct.unpack(">II", data[16:24])
        assert width >= 50 and height >= 50 and b"IEND" in data[-16:], (
            f"evaluation/confusion_matrix.png is {width}x{height} pixels or cut short; render the figure"
        )


class Test_train_and_track:
    @pytest.fixture(scope="class")
    def tracked(self, learner, inputs):
        store = learner.store()
        experiment_id = store.new_experiment(inputs.name("train"))
        data, params = inputs.classification(inputs.rng.choice([2, 3])), inputs.logistic_params()
        result = learner.call(store, experiment_id, data, params)
        return store, returned_run(store, result.value, experiment_id), result, data, params

    def test_params_and_tag(self, tracked):
        _, run, result, _, params = tracked
        assert_finished(run, result.active_run)
        assert run.data.params == stored_params(params), f"the run's params are {show(run.data.params)}, expected {show(stored_params(params))}"
        family = run.data.tags.get("model_family")
        assert family == "logistic_regression", f"tag model_family is {family!r}, expected 'logistic_regression'"

    def test_metrics_match_refit(self, tracked):
        _, run, _, data, params = tracked
        expected = refit_scores(params, data)
        held = {k: run.data.metrics.get(k) for k in expected}
        assert all(v is not None and close(v, expected[k]) for k, v in held.items()), (
            f"the run's metrics are {show(held)}; LogisticRegression(**params) fitted on the training split scores "
            f"{show(expected)} on the test split"
        )

    def test_dataset_inputs(self, tracked):
        _, run, _, data, _ = tracked
        X_train, X_test, *_ = data
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


class Test_train_with_autolog:
    @pytest.fixture(scope="class")
    def tracked(self, learner, inputs):
        store = learner.store()
        experiment_id = store.new_experiment(inputs.name("autolog"))
        data, params = inputs.classification(2), inputs.forest_params()
        # After the call the sandbox fits one more model outside any run: with autologging
        # left on, that fit would log a run of its own.
        result = learner.call(store, experiment_id, data, params, post=("plain_fit", data[1], data[3]))
        return store, experiment_id, result, params

    def autolog_run(self, store, experiment_id, result):
        run = returned_run(store, result.value, experiment_id)
        assert "training_accuracy_score" in run.data.metrics, (
            f"run {run.info.run_id} has no training metrics from autologging (metrics: {sorted(run.data.metrics)}); "
            "call mlflow.sklearn.autolog() before fit"
        )
        return run

    def test_autolog_logged(self, tracked):
        store, experiment_id, result, params = tracked
        run = self.autolog_run(store, experiment_id, result)
        assert_finished(run, result.active_run)
        every_param = RandomForestClassifier(**params).get_params()
        missing = sorted(set(every_param) - set(run.data.params))
        assert not missing, f"autologging logs every estimator param, but the run lacks {missing}"
        wrong = {k: run.data.params[k] for k, v in params.items() if run.data.params[k] != str(v)}
        assert not wrong, f"the run's params {show(wrong)} differ from the params given, {show(stored_params(params))}"
        models = store.client.search_logged_models(experiment_ids=[experiment_id], filter_string=f"source_run_id = '{run.info.run_id}'")
        assert models, f"run {run.info.run_id} has no logged model: autologging logs one when log_models is left on"

    def test_autolog_off_after(self, tracked):
        store, experiment_id, result, _ = tracked
        self.autolog_run(store, experiment_id, result)
        every_run = store.client.search_runs(
            [e.experiment_id for e in store.client.search_experiments(view_type=ViewType.ALL)], run_view_type=ViewType.ALL
        )
        extra = [r.info.run_id for r in every_run if r.info.run_id != result.value]
        assert not extra, (
            f"a plain fit after the call logged run(s) {extra}: autologging was left on; "
            "call mlflow.sklearn.autolog(disable=True) when done"
        )


class Test_find_best_run:
    @pytest.fixture(scope="class")
    def store(self, learner):
        return learner.store()

    @staticmethod
    def fill(store, inputs, metric, values, *, status="FINISHED", deleted=False, other_metric=False):
        """Runs made by the grader: one per value (None: the run lacks the metric)."""
        experiment_id = store.new_experiment(inputs.name("search"))
        ids = []
        for value in values:
            run_id = store.client.create_run(experiment_id).info.run_id
            if value is not None:
                store.client.log_metric(run_id, metric, value)
            if other_metric or value is None:
                store.client.log_metric(run_id, "m_other", inputs.rng.uniform(5, 10))
            store.client.set_terminated(run_id, status)
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

    def test_best_finished(self, learner, inputs, store):
        metric = inputs.keys("score", 1)[0]
        values = inputs.rng.sample(range(10, 99), 5)
        experiment_id, ids = self.fill(store, inputs, metric, [v / 100 for v in values], other_metric=True)
        best = ids[values.index(max(values))]
        returned = learner.call(store, experiment_id, metric, True).value
        assert returned == best, f"the best FINISHED run by {metric!r} is {best}; the function returned {returned!r}"

    def test_ignores_traps(self, learner, inputs, store):
        metric = inputs.keys("score", 1)[0]
        values = [v / 100 for v in inputs.rng.sample(range(10, 90), 4)]
        experiment_id, ids = self.fill(store, inputs, metric, values + [None])
        top = max(values)
        tie = self.add_run(store, experiment_id, metric, top)
        traps = {
            "a FAILED run": self.add_run(store, experiment_id, metric, top + 0.05, status="FAILED"),
            "a deleted run": self.add_run(store, experiment_id, metric, top + 0.06, delete=True),
            "a run still RUNNING": self.add_run(store, experiment_id, metric, top + 0.07, status="RUNNING"),
        }
        returned = learner.call(store, experiment_id, metric).value
        for trap, run_id in traps.items():
            assert returned != run_id, f"the function returned {trap} ({run_id}); only FINISHED, active runs count"
        winners = {ids[values.index(top)], tie}
        assert returned in winners, f"the best FINISHED runs by {metric!r} are {sorted(winners)} (a tie); the function returned {returned!r}"

    def test_minimize_and_empty(self, learner, inputs, store):
        metric = inputs.keys("loss", 1)[0]
        values = [v / 100 for v in inputs.rng.sample(range(10, 90), 4)]
        experiment_id, ids = self.fill(store, inputs, metric, values)
        self.add_run(store, experiment_id, metric, min(values) - 0.05, status="FAILED")
        lowest = ids[values.index(min(values))]
        returned = learner.call(store, experiment_id, metric, maximize=False).value
        assert returned == lowest, f"with maximize=False the best run by {metric!r} is {lowest} (the lowest value); the function returned {returned!r}"
        empty = store.new_experiment(inputs.name("empty"))
        returned = learner.call(store, empty, metric).value
        assert returned is None, f"experiment {empty} has no runs, so the answer is None; the function returned {returned!r}"
        no_metric, _ = self.fill(store, inputs, metric, [None, None])
        returned = learner.call(store, no_metric, metric).value
        assert returned is None, f"no run of experiment {no_metric} has metric {metric!r}, so the answer is None; the function returned {returned!r}"


class Test_tune_hyperparameters:
    @pytest.fixture(scope="class")
    def tuned(self, learner, inputs):
        store = learner.store()
        experiment_id = store.new_experiment(inputs.name("tuning"))
        data = inputs.classification(2)
        base = inputs.logistic_params()
        # A grid whose entries score differently, with one clear winner: picking the wrong
        # child (or the last, or the worst) must show.
        for _ in range(50):
            strengths = sorted(inputs.rng.sample([0.0001, 0.001, 0.003, 0.01, 0.1, 1.0, 10.0], inputs.rng.randint(3, 4)))
            grid = [{**base, "C": c} for c in strengths]
            scores = [refit_scores(entry, data)["accuracy"] for entry in grid]
            if scores.count(max(scores)) == 1 and grid[-1] != grid[scores.index(max(scores))]:
                break
        result = learner.call(store, experiment_id, data, grid)
        return store, experiment_id, result, grid, scores

    def parent_and_children(self, store, experiment_id, result):
        parent = returned_run(store, result.value, experiment_id)
        runs = runs_in(store, experiment_id)
        children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
        return parent, children

    def test_nested_children(self, tuned):
        store, experiment_id, result, grid, scores = tuned
        parent, children = self.parent_and_children(store, experiment_id, result)
        assert_finished(parent, result.active_run)
        assert len(children) == len(grid), (
            f"the parent run has {len(children)} child runs (runs tagged mlflow.parentRunId = its id); expected one per "
            f"grid entry, {len(grid)}: open each with mlflow.start_run(nested=True) inside the parent"
        )
        unfinished = [c.info.run_id for c in children if c.info.status != "FINISHED"]
        assert not unfinished, f"child runs {unfinished} are not FINISHED"
        expected = sorted((show(stored_params(e)), s) for e, s in zip(grid, scores))
        held = sorted((show(c.data.params), c.data.metrics.get("accuracy")) for c in children)
        for (params, accuracy), (want_params, want_accuracy) in zip(held, expected):
            assert params == want_params, f"the children's params are {[p for p, _ in held]}, expected {[p for p, _ in expected]}"
            assert accuracy is not None and close(accuracy, want_accuracy), (
                f"the child with params {params} logged accuracy {accuracy}, but that entry scores {want_accuracy} on the test split"
            )

    def test_best_on_parent(self, tuned):
        store, experiment_id, result, grid, scores = tuned
        parent, _ = self.parent_and_children(store, experiment_id, result)
        best = max(scores)
        held = parent.data.metrics.get("best_accuracy")
        assert held is not None and close(held, best), f"the parent's best_accuracy is {held}, expected {best} (the best child's accuracy)"
        winners = [stored_params({f"best_{k}": v for k, v in e.items()}) for e, s in zip(grid, scores) if s == best]
        best_params = {k: v for k, v in parent.data.params.items() if k.startswith("best_")}
        assert best_params in winners, f"the parent's best_ params are {show(best_params)}, expected {' or '.join(map(show, winners))}"
