"""Module 4: the practice task (independent implementation, written from the kit's CURRICULUM.md)."""
import mlflow
import mlflow.sklearn
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient
from sklearn.datasets import load_wine
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def _candidates():
    """(family, params to log, unfitted estimator) for every configuration tried."""
    return [
        ("logistic_regression", {"C": 1.0, "scaled": True},
         make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=5000))),
        ("random_forest", {"n_estimators": 200, "max_depth": 5},
         RandomForestClassifier(n_estimators=200, max_depth=5, random_state=42)),
        ("k_nearest_neighbors", {"n_neighbors": 5, "scaled": True},
         make_pipeline(StandardScaler(), KNeighborsClassifier(n_neighbors=5))),
    ]


def run_practice(experiment_name: str, model_name: str) -> dict:
    client = MlflowClient()
    experiment = client.get_experiment_by_name(experiment_name)
    if experiment is None:
        experiment_id = client.create_experiment(experiment_name)
    else:
        experiment_id = experiment.experiment_id
        if experiment.lifecycle_stage == "deleted":
            client.restore_experiment(experiment_id)

    X, y = load_wine(return_X_y=True, as_frame=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, random_state=42, stratify=y
    )

    best_run_id, best_accuracy = None, None
    for family, params, model in _candidates():
        with mlflow.start_run(experiment_id=experiment_id, run_name=family) as run:
            model.fit(X_train, y_train)
            accuracy = accuracy_score(y_test, model.predict(X_test))
            mlflow.log_param("model_family", family)
            mlflow.log_params(params)
            mlflow.log_metric("accuracy", accuracy)
            mlflow.sklearn.log_model(
                model,
                name="model",
                signature=infer_signature(X_train, model.predict(X_train)),
                input_example=X_train.head(5),
                serialization_format="cloudpickle",
            )
        if best_accuracy is None or accuracy > best_accuracy:
            best_run_id, best_accuracy = run.info.run_id, accuracy

    registered = mlflow.register_model(f"runs:/{best_run_id}/model", model_name)
    client.set_registered_model_alias(model_name, "champion", registered.version)
    return {
        "experiment_id": experiment_id,
        "best_run_id": best_run_id,
        "version": int(registered.version),
    }
