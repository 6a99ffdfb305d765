"""Module 2 — saving and loading models. Each class is one function of
exercises/ex02_models.py; each test is one check, worth the points catalogue.toml gives it.

Learner-made models are only ever loaded inside the sandbox (loading a model runs code);
predictions cross back as numpy arrays and are compared here with the grader's own model.
A class's ``scenario`` runs on a background thread, ahead of its tests and beside
other classes' (AUTHORING.md); its tests read what it returned.
"""
from __future__ import annotations


import mlflow.sklearn
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from grader.core import steps
from grader.core.read import (
    assert_finished, assert_same_predictions, has_file, logged_model, logged_model_files, mlmodel, returned_run,
    runs_in, signature_inputs,
)
from grader.core.text import without_data
from grader.sandbox.protocol import sandbox_step
from grader.core.session import Scenario


# What infer_signature calls each pandas dtype the grader's data uses.
SIGNATURE_TYPES = {"float64": "double", "int64": "long"}


def forest(inputs, data):
    """A tree ensemble: since MLflow 3.14 it only logs with cloudpickle or trusted skops types."""
    X_train, _, y_train, _ = data
    return RandomForestClassifier(**inputs.forest_params()).fit(X_train, y_train)


def logistic(inputs, data, **params):
    X_train, _, y_train, _ = data
    return LogisticRegression(**{**inputs.logistic_params(), **params}).fit(X_train, y_train)


def predict_in_sandbox(learner, store, call, X):
    """Load the model URI a call returned in a fresh sandbox process and predict there
    (None when the call itself failed: its checks report that)."""
    uri = call.value() if call.succeeded else None
    return learner.probe(store, steps.pyfunc_predict, uri, X) if isinstance(uri, str) else None


@sandbox_step
def saved_model(model, path):
    """Set-up: a model saved in MLflow format to a local folder."""
    mlflow.sklearn.save_model(model, path, serialization_format="cloudpickle")
    return path


def predictions(probe, what):
    assert probe is not None and probe.status == "ok", (
        f"{what} could not be loaded and used with mlflow.pyfunc.load_model: "
        f"{without_data(probe.error or '') if probe else 'no model URI'}"
    )
    return probe.array()


class Test_log_model:
    @staticmethod
    def scenario(learner, inputs):
        store = learner.store()
        experiment_id = store.new_experiment(inputs.name("models"))
        data = inputs.classification(inputs.rng.choice([2, 3]))
        model, example, name = forest(inputs, data), data[0].head(5), inputs.word()
        call = learner.attempt(store, model, example, experiment_id, name)
        probe = predict_in_sandbox(learner, store, call, data[1])
        return Scenario(store=store, experiment_id=experiment_id, call=call, model=model, data=data, probe=probe)

    def test_flavors_and_uri(self, scenario):
        store, experiment_id, result = scenario.store, scenario.experiment_id, scenario.call.result()
        runs = runs_in(store, experiment_id)
        assert len(runs) == 1, f"experiment {experiment_id} holds {len(runs)} runs; log the model in one new run"
        assert_finished(runs[0], result.active_run)
        model = logged_model(store, result.value)
        flavors = set(mlmodel(store, logged_model_files(store, model)).get("flavors") or {})
        assert {"sklearn", "python_function"} <= flavors, f"the logged model has flavors {sorted(flavors)}; expected sklearn and python_function"

    def test_signature_and_example(self, scenario):
        store, result, data = scenario.store, scenario.call.result(), scenario.data
        files = logged_model_files(store, logged_model(store, result.value))
        spec = mlmodel(store, files)
        expected = [(column, SIGNATURE_TYPES[str(dtype)]) for column, dtype in data[0].dtypes.items()]
        held = signature_inputs(spec)
        assert held == expected, f"the signature's inputs are {held}, expected {expected} (from X_example)"
        example = (spec.get("saved_input_example_info") or {}).get("artifact_path")
        assert example and has_file(store, files, example), "the logged model has no input example: pass input_example=X_example"

    def test_loads_and_predicts(self, scenario):
        uri = scenario.call.value()
        logged_model(scenario.store, uri)
        held = predictions(scenario.probe, f"the model at {uri}")
        assert_same_predictions(held, scenario.model.predict(scenario.data[1]), f"the model at {uri}")


class Test_load_and_predict:
    @staticmethod
    def scenario(learner, inputs):
        store = learner.store()
        experiment_id = store.new_experiment(inputs.name("load"))
        data = inputs.classification(2)
        model, name, alias, artifact_name = logistic(inputs, data), inputs.name("model"), inputs.word(), inputs.word()
        made = learner.prepare(store, steps.logged_model, experiment_id, model, data[0].head(5),
                               name=artifact_name, register_as=name, alias=alias)
        uris = {
            "model_id": made["model_uri"],
            "runs": f"runs:/{made['run_id']}/{artifact_name}",
            "alias": f"models:/{name}@{alias}",
        }
        calls = {form: learner.attempt(store, uri, data[1], returns="array") for form, uri in uris.items()}
        return Scenario(uris=uris, calls=calls, expected=model.predict(data[1]))

    @staticmethod
    def predicts(scenario, form):
        held = scenario.calls[form].result().array()
        assert_same_predictions(held, scenario.expected, f"load_and_predict({scenario.uris[form]!r}, X)")

    def test_model_id_uri(self, scenario):
        self.predicts(scenario, "model_id")

    def test_runs_uri(self, scenario):
        self.predicts(scenario, "runs")

    def test_alias_uri(self, scenario):
        self.predicts(scenario, "alias")


class Test_save_local:
    @staticmethod
    def scenario(learner, inputs):
        store = learner.store()
        data = inputs.classification(2)
        path = store.root / inputs.name("saved")
        return Scenario(store=store, path=path, call=learner.attempt(store, forest(inputs, data), str(path)))

    def test_mlmodel_with_sklearn_flavor(self, scenario):
        store, path, call = scenario.store, scenario.path, scenario.call
        call.result()
        flavors = mlmodel(store, path).get("flavors") or {}
        assert "sklearn" in flavors, f"{path.name}/MLmodel lists flavors {sorted(flavors)}; expected sklearn (mlflow.sklearn.save_model)"


class Test_load_local:
    @staticmethod
    def scenario(learner, inputs):
        store = learner.store()
        data = inputs.classification(2)
        model = forest(inputs, data)
        path = learner.prepare(store, saved_model, model, str(store.root / inputs.name("saved")))
        return Scenario(model=model, data=data, call=learner.attempt(store, path, then=(steps.predict_with, data[1]), returns="array"))

    def test_native_estimator(self, scenario):
        model, data, call = scenario.model, scenario.data, scenario.call
        result = call.result()
        expected_type = f"{type(model).__module__}.{type(model).__qualname__}"
        assert result.type == expected_type, (
            f"load_local returned a {result.type}, expected the scikit-learn estimator {expected_type} "
            "(mlflow.sklearn.load_model, not pyfunc)"
        )
        assert_same_predictions(result.array(), model.predict(data[1]), "the loaded estimator")


class Test_log_threshold_model:
    @staticmethod
    def scenario(learner, inputs):
        store = learner.store()
        experiment_id = store.new_experiment(inputs.name("threshold"))
        data = inputs.classification(2)
        model = logistic(inputs, data)
        probabilities = model.predict_proba(data[1])[:, 1]
        # The threshold is one row's own probability: `>=` and `>` disagree on that row, and
        # it is chosen so that the default 0.5 rule disagrees with it on some rows too.
        candidates = [p for p in probabilities if 0.15 < p < 0.85 and ((probabilities >= p) != (probabilities >= 0.5)).any()]
        threshold = float(inputs.rng.choice(candidates))
        call = learner.attempt(store, model, threshold, data[0].head(5), experiment_id)
        expected = (probabilities >= threshold).astype(int)
        probe = predict_in_sandbox(learner, store, call, data[1])
        return Scenario(store=store, experiment_id=experiment_id, call=call, probe=probe, expected=expected, threshold=threshold)

    def test_pyfunc_logged(self, scenario):
        store, experiment_id, result = scenario.store, scenario.experiment_id, scenario.call.result()
        model = logged_model(store, result.value)
        assert model.experiment_id == experiment_id, f"the model was logged to experiment {model.experiment_id}, not {experiment_id}"
        assert_finished(returned_run(store, model.source_run_id), result.active_run)
        flavors = mlmodel(store, logged_model_files(store, model)).get("flavors") or {}
        assert "python_function" in flavors, f"the logged model has flavors {sorted(flavors)}; log it with mlflow.pyfunc.log_model"

    def test_threshold_predictions(self, scenario):
        logged_model(scenario.store, scenario.call.value())
        held = predictions(scenario.probe, "the threshold model")
        assert_same_predictions(
            held, scenario.expected,
            f"in a fresh process, the threshold model (threshold {scenario.threshold}, which must travel with the model)",
        )
