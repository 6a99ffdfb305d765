"""Module 2: saving and loading models (independent implementation, written from the kit's CURRICULUM.md)."""
import mlflow
import mlflow.pyfunc
import mlflow.sklearn
import numpy as np
from mlflow.models import infer_signature


def log_model(model, X_example, experiment_id: str, name: str = "model") -> str:
    signature = infer_signature(X_example, model.predict(X_example))
    with mlflow.start_run(experiment_id=experiment_id):
        info = mlflow.sklearn.log_model(
            model,
            name=name,
            signature=signature,
            input_example=X_example,
            serialization_format="cloudpickle",
        )
    return info.model_uri


def load_and_predict(model_uri: str, X) -> np.ndarray:
    loaded = mlflow.pyfunc.load_model(model_uri)
    return np.asarray(loaded.predict(X))


def save_local(model, path: str) -> None:
    mlflow.sklearn.save_model(model, path, serialization_format="cloudpickle")


def load_local(path: str):
    return mlflow.sklearn.load_model(path)


def log_threshold_model(model, threshold: float, X_example, experiment_id: str) -> str:
    # The class is defined inside the function on purpose: cloudpickle then stores it by
    # value, so the logged model loads in a fresh process that cannot import this module.
    class ThresholdClassifier(mlflow.pyfunc.PythonModel):
        def __init__(self, classifier):
            self.classifier = classifier
            self.threshold = None

        def load_context(self, context):
            self.threshold = float(context.model_config["threshold"])

        def predict(self, context, model_input, params=None):
            proba = self.classifier.predict_proba(model_input)[:, 1]
            return (proba >= self.threshold).astype(int)

    example_pred = (model.predict_proba(X_example)[:, 1] >= threshold).astype(int)
    signature = infer_signature(X_example, example_pred)
    with mlflow.start_run(experiment_id=experiment_id):
        info = mlflow.pyfunc.log_model(
            name="threshold_model",
            python_model=ThresholdClassifier(model),
            model_config={"threshold": float(threshold)},
            signature=signature,
            input_example=X_example,
        )
    return info.model_uri
