"""Module 3: the Model Registry (independent implementation, written from the kit's CURRICULUM.md)."""
import mlflow
import mlflow.pyfunc
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient


def register_run_model(run_id: str, model_name: str, artifact_name: str = "model") -> int:
    version = mlflow.register_model(f"runs:/{run_id}/{artifact_name}", model_name)
    return int(version.version)


def annotate_version(model_name: str, version: int, description: str, tags: dict[str, str]) -> None:
    client = MlflowClient()
    client.update_model_version(model_name, str(version), description=description)
    for key, value in tags.items():
        client.set_model_version_tag(model_name, str(version), key, value)


def set_alias(model_name: str, version: int, alias: str) -> None:
    MlflowClient().set_registered_model_alias(model_name, alias, str(version))


def load_by_alias(model_name: str, alias: str):
    return mlflow.pyfunc.load_model(f"models:/{model_name}@{alias}")


def promote_if_better(model_name: str, run_id: str, metric: str = "accuracy", alias: str = "champion") -> bool:
    client = MlflowClient()
    new_version = mlflow.register_model(f"runs:/{run_id}/model", model_name).version
    new_value = client.get_run(run_id).data.metrics.get(metric)

    try:
        holder = client.get_model_version_by_alias(model_name, alias)
    except MlflowException:
        holder = None

    if holder is None:
        promote = True
    else:
        old_value = client.get_run(holder.run_id).data.metrics.get(metric)
        if new_value is None:
            promote = False
        elif old_value is None:
            promote = True
        else:
            promote = new_value > old_value

    if promote:
        client.set_registered_model_alias(model_name, alias, new_version)
        if holder is not None:
            client.set_model_version_tag(model_name, holder.version, "status", "archived")
    else:
        client.set_registered_model_alias(model_name, "challenger", new_version)
    return promote
