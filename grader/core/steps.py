"""Sandbox steps that checks of several modules use: grader code that runs in the learner's
sandbox, not in the scoring process (grader/sandbox/protocol.py's ``sandbox_step``).

A step that only one check module uses is declared in that module, next to its checks.
Steps travel to the sandbox by value and run where the grader package is not: they use
MLflow, scikit-learn, NumPy and each other, nothing else of the grader.
"""
from __future__ import annotations

import mlflow
import mlflow.pyfunc
import mlflow.sklearn

from grader.sandbox.protocol import sandbox_step


@sandbox_step
def pyfunc_predict(model_uri, X):
    """Load a model (learner-made: loading runs its code) and predict ``X`` with it."""
    return mlflow.pyfunc.load_model(model_uri).predict(X)


@sandbox_step
def predict_with(model, X):
    """Applied to what a learner function returned: its predictions for ``X``."""
    return model.predict(X)


@sandbox_step
def logged_model(experiment_id, model, X_example, *, name="model", run_name=None, metrics=None,
                 register_as=None, alias=None):
    """Set-up: a run holding a logged scikit-learn model, maybe registered and aliased;
    {"run_id", "model_uri", "model_id"[, "version"]}."""
    from mlflow.models import infer_signature

    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name) as run:
        if metrics:
            mlflow.log_metrics(metrics)
        info = mlflow.sklearn.log_model(
            model,
            name=name,
            signature=infer_signature(X_example, model.predict(X_example)),
            serialization_format="cloudpickle",
        )
    made = {"run_id": run.info.run_id, "model_uri": info.model_uri, "model_id": info.model_id}
    if register_as:
        version = mlflow.register_model(f"runs:/{run.info.run_id}/{name}", register_as)
        made["version"] = int(version.version)
        if alias:
            mlflow.MlflowClient().set_registered_model_alias(register_as, alias, version.version)
    return made


@sandbox_step
def logged_models(experiment_id, X_example, specs):
    """Several of ``logged_model`` in one call (one fork, one store opening), in order."""
    return [logged_model(experiment_id, spec.pop("model"), X_example, **spec) for spec in specs]
