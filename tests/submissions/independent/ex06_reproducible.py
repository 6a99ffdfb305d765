"""Module 6: code versions, projects and REST (independent implementation, written from the kit's CURRICULUM.md)."""
import time

import mlflow
import mlflow.projects
import requests
from mlflow.utils.git_utils import get_git_branch, get_git_commit


def log_code_version(experiment_id: str, repo_dir: str) -> str:
    commit = get_git_commit(repo_dir)
    branch = get_git_branch(repo_dir)
    run = mlflow.MlflowClient().create_run(experiment_id)
    client = mlflow.MlflowClient()
    client.set_tag(run.info.run_id, "mlflow.source.git.commit", commit)
    client.set_tag(run.info.run_id, "mlflow.source.git.branch", branch)
    client.set_terminated(run.info.run_id, status="FINISHED")
    return run.info.run_id


def run_project(project_uri: str, experiment_id: str, params: dict) -> str:
    submitted = mlflow.projects.run(uri=project_uri, entry_point="main", parameters=params,
                                    experiment_id=experiment_id, env_manager="local", synchronous=False)
    if not submitted.wait():
        raise RuntimeError(f"the project run {submitted.run_id} failed")
    return submitted.run_id


def _call(tracking_uri: str, endpoint: str, payload: dict) -> dict:
    response = requests.post(f"{tracking_uri}/api/2.0/mlflow/{endpoint}", json=payload, timeout=30)
    if response.status_code >= 400:
        try:
            code = response.json().get("error_code")
        except ValueError:
            code = None
        raise RuntimeError(f"MLflow REST {endpoint} failed: HTTP {response.status_code} {code}")
    return response.json()


def log_run_rest(tracking_uri: str, experiment_id: str, params: dict, metrics: dict) -> str:
    started = int(time.time() * 1000)
    created = _call(tracking_uri, "runs/create", {"experiment_id": experiment_id, "start_time": started})
    run_id = created["run"]["info"]["run_id"]
    _call(tracking_uri, "runs/log-batch", {
        "run_id": run_id,
        "params": [{"key": k, "value": str(v)} for k, v in params.items()],
        "metrics": [{"key": k, "value": float(v), "timestamp": started, "step": 0} for k, v in metrics.items()],
    })
    _call(tracking_uri, "runs/update", {"run_id": run_id, "status": "FINISHED", "end_time": int(time.time() * 1000)})
    return run_id
