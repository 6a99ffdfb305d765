"""Module 1: experiment tracking (independent implementation, written from the kit's CURRICULUM.md)."""
import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import mlflow  # noqa: E402
import mlflow.data  # noqa: E402
import mlflow.sklearn  # noqa: E402
from mlflow.entities import ViewType  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402
from sklearn.ensemble import RandomForestClassifier  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.metrics import (  # noqa: E402
    ConfusionMatrixDisplay,
    accuracy_score,
    classification_report,
    confusion_matrix,
    f1_score,
)


def _plain(value):
    """numpy scalars -> plain Python values, so they can go into JSON."""
    return value.item() if hasattr(value, "item") else value


def get_or_create_experiment(name: str, tags: dict[str, str] | None = None) -> str:
    client = MlflowClient()
    experiment = client.get_experiment_by_name(name)  # also finds deleted experiments
    if experiment is None:
        return client.create_experiment(name, tags=tags)
    if experiment.lifecycle_stage == "deleted":
        client.restore_experiment(experiment.experiment_id)
    for key, value in (tags or {}).items():
        client.set_experiment_tag(experiment.experiment_id, key, value)
    return experiment.experiment_id


def log_run(
    experiment_id: str,
    params: dict,
    metrics: dict,
    tags: dict[str, str] | None = None,
    run_name: str | None = None,
) -> str:
    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name) as run:
        mlflow.log_params(params)
        mlflow.log_metrics(metrics)
        if tags:
            mlflow.set_tags(tags)
    return run.info.run_id


def log_metric_history(experiment_id: str, key: str, values: list[float]) -> str:
    with mlflow.start_run(experiment_id=experiment_id) as run:
        for step, value in enumerate(values):
            mlflow.log_metric(key, value, step=step)
    return run.info.run_id


def log_evaluation(experiment_id: str, y_true, y_pred, labels: list) -> str:
    labels = [_plain(label) for label in labels]
    accuracy = accuracy_score(y_true, y_pred)
    f1 = f1_score(y_true, y_pred, average="macro")
    matrix = confusion_matrix(y_true, y_pred, labels=labels)
    report = classification_report(y_true, y_pred, labels=labels)

    fig, ax = plt.subplots(figsize=(5, 4))
    ConfusionMatrixDisplay(matrix, display_labels=labels).plot(ax=ax)
    ax.set_title("Confusion matrix")

    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.log_metric("accuracy", accuracy)
        mlflow.log_metric("f1_macro", f1)
        mlflow.log_dict(
            {"labels": labels, "matrix": matrix.tolist()},
            "evaluation/confusion_matrix.json",
        )
        mlflow.log_text(report, "evaluation/report.txt")
        mlflow.log_figure(fig, "evaluation/confusion_matrix.png")
    plt.close(fig)
    return run.info.run_id


def _as_frame(X, y, default_target="target"):
    target = y.name if y.name is not None and y.name not in X.columns else default_target
    frame = X.copy()
    frame[target] = y.to_numpy()
    return frame, target


def train_and_track(experiment_id: str, data, params: dict) -> str:
    X_train, X_test, y_train, y_test = data
    model = LogisticRegression(**params)
    model.fit(X_train, y_train)
    test_pred = model.predict(X_test)

    train_frame, target = _as_frame(X_train, y_train)
    test_frame, _ = _as_frame(X_test, y_test)
    train_ds = mlflow.data.from_pandas(train_frame, targets=target, name="train")
    test_ds = mlflow.data.from_pandas(test_frame, targets=target, name="test")

    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.log_params(params)
        mlflow.log_metric("accuracy", accuracy_score(y_test, test_pred))
        mlflow.log_metric("f1_macro", f1_score(y_test, test_pred, average="macro"))
        mlflow.log_input(train_ds, context="training")
        mlflow.log_input(test_ds, context="evaluation")
        mlflow.set_tag("model_family", "logistic_regression")
    return run.info.run_id


def train_with_autolog(experiment_id: str, data, params: dict) -> str:
    X_train, X_test, y_train, y_test = data
    mlflow.sklearn.autolog()
    try:
        with mlflow.start_run(experiment_id=experiment_id) as run:
            RandomForestClassifier(**params).fit(X_train, y_train)
    finally:
        mlflow.sklearn.autolog(disable=True)
    return run.info.run_id


def find_best_run(experiment_id: str, metric: str, maximize: bool = True) -> str | None:
    client = MlflowClient()
    runs = []
    page_token = None
    while True:
        page = client.search_runs(
            [experiment_id],
            filter_string="attributes.status = 'FINISHED'",
            run_view_type=ViewType.ACTIVE_ONLY,
            order_by=["attributes.start_time ASC"],
            max_results=1000,
            page_token=page_token,
        )
        runs.extend(page)
        page_token = page.token
        if not page_token:
            break

    best_id, best_value = None, None
    for run in runs:
        value = run.data.metrics.get(metric)
        if value is None or math.isnan(value):
            continue
        if best_value is None:
            best_id, best_value = run.info.run_id, value
        elif maximize and value > best_value:
            best_id, best_value = run.info.run_id, value
        elif not maximize and value < best_value:
            best_id, best_value = run.info.run_id, value
    return best_id


def tune_hyperparameters(experiment_id: str, data, grid: list[dict]) -> str:
    X_train, X_test, y_train, y_test = data
    best_accuracy, best_params = None, None
    with mlflow.start_run(experiment_id=experiment_id, run_name="tuning") as parent:
        for index, entry in enumerate(grid):
            with mlflow.start_run(
                experiment_id=experiment_id, run_name=f"trial-{index}", nested=True
            ):
                model = LogisticRegression(**entry).fit(X_train, y_train)
                accuracy = accuracy_score(y_test, model.predict(X_test))
                mlflow.log_params(entry)
                mlflow.log_metric("accuracy", accuracy)
            if best_accuracy is None or accuracy > best_accuracy:
                best_accuracy, best_params = accuracy, entry
        if best_params is not None:
            mlflow.log_metric("best_accuracy", best_accuracy)
            mlflow.log_params({f"best_{k}": v for k, v in best_params.items()})
    return parent.info.run_id
