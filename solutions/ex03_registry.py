"""Module 3: the MLflow Model Registry.

Tracking answers "what did I try?". The **Model Registry** answers "which model
do we use, and where did it come from?". It is a central catalogue of models
with a name, a history and a person-friendly workflow around them.

* A **registered model** is a name, for example ``"wine-classifier"``. It is
  created the first time you register something under that name.
* Each registration adds a **model version** to it: 1, 2, 3... A version is
  immutable: it points at the files of one logged model (its ``source``, for
  example ``models:/m-...``) and remembers the run that produced it (its
  ``run_id``). That link is the **lineage**: from any version you can walk back
  to the run, its params, metrics and data.
* **Annotations** document a version: a free-text **description** and
  key/value **tags** (``validated=true``, ``dataset=2024-06``).
* An **alias** is a movable, named pointer to one version of a registered
  model, for example ``champion`` -> version 3. Code that serves the model
  loads ``models:/wine-classifier@champion`` and never needs to know the
  number; promoting a new model is just moving the alias. One alias points at
  one version at a time.

About **stages**: older MLflow versions (and many tutorials, including the
lesson's "stage transitions") move versions through fixed stages ``None`` ->
``Staging`` -> ``Production`` -> ``Archived`` with
``transition_model_version_stage``. Stages are **deprecated** since MLflow 2.9:
they were a fixed list, one per version, and could not express things like
"the model in the A/B test". Use aliases instead (``champion``, ``challenger``,
``staging``...) for the pointers and tags (``status=archived``) for the states.
This module uses aliases and tags only.

Most registry operations live on ``mlflow.MlflowClient``: ``get_registered_model``,
``get_model_version``, ``update_model_version``, ``set_model_version_tag``,
``set_registered_model_alias``, ``get_model_version_by_alias``...;
``mlflow.register_model`` is the fluent shortcut to register. Registering prints
"Successfully registered model ..." and "Created version ..." messages; they are
normal.
"""

import mlflow
import mlflow.pyfunc
from mlflow import MlflowClient


def register_run_model(run_id: str, model_name: str, artifact_name: str = "model") -> int:
    """Register the model that run ``run_id`` logged under ``artifact_name``; return the version number.

    Steps:

    1. Build the run-relative model URI ``f"runs:/{run_id}/{artifact_name}"``.
       In MLflow 3 it resolves to the LoggedModel called ``artifact_name``
       that this run produced (MLflow may log a warning that the run has no
       artifacts at that path and that it uses ``models:/<model_id>``
       instead; that is expected, since model files live with the model, not
       with the run).
    2. ``model_version = mlflow.register_model(model_uri, model_name)``. This
       creates the registered model if it does not exist yet, then a new
       version.
    3. Return ``int(model_version.version)``.

    The grader checks that the version exists, that its ``run_id`` is
    ``run_id`` (lineage) and that its ``source`` points at that run's logged
    model.

    Traps:

    * Return an ``int``: some MLflow APIs hand versions around as strings.
    * ``artifact_name`` is the ``name=`` that was given to ``log_model``.
    * On the SQLite store a version's ``model_id`` field may be empty; the link
      to the model is in ``source``.
    """
    ### BEGIN SOLUTION
    model_version = mlflow.register_model(f"runs:/{run_id}/{artifact_name}", model_name)
    return int(model_version.version)
    ### END SOLUTION


def annotate_version(model_name: str, version: int, description: str, tags: dict[str, str]) -> None:
    """Set the description and the tags of one model version.

    Steps:

    1. ``client = MlflowClient()``.
    2. ``client.update_model_version(name=model_name, version=str(version),
       description=description)``.
    3. For each ``key, value`` in ``tags``:
       ``client.set_model_version_tag(model_name, str(version), key, value)``.

    The grader reads ``client.get_model_version(model_name, version)`` and
    compares ``description`` and ``tags``.

    Traps:

    * Version tags are not registered-model tags:
      ``set_registered_model_tag`` tags the whole model, not one version.
    * ``update_model_version`` only changes the description; tags have their
      own call.
    """
    ### BEGIN SOLUTION
    client = MlflowClient()
    client.update_model_version(name=model_name, version=str(version), description=description)
    for key, value in tags.items():
        client.set_model_version_tag(model_name, str(version), key, value)
    ### END SOLUTION


def set_alias(model_name: str, version: int, alias: str) -> None:
    """Point ``alias`` at version ``version`` of ``model_name``.

    Steps:

    1. ``MlflowClient().set_registered_model_alias(model_name, alias, str(version))``.

    That single call also *moves* the alias: if another version held it, that
    version loses it, because an alias names exactly one version.

    The grader checks that ``get_model_version_by_alias(model_name, alias)`` is
    your version and that no other version lists the alias.

    Trap: the argument order is ``(name, alias, version)``.
    """
    ### BEGIN SOLUTION
    MlflowClient().set_registered_model_alias(model_name, alias, str(version))
    ### END SOLUTION


def load_by_alias(model_name: str, alias: str):
    """Load the version that ``alias`` points at, as a pyfunc model.

    Steps:

    1. Return ``mlflow.pyfunc.load_model(f"models:/{model_name}@{alias}")``.

    This is how serving code should load a model: by alias, never by a
    hard-coded version number, so that a promotion needs no code change.

    The grader compares the loaded model's predictions with those of the
    version the alias points at.

    Trap: the separator is ``@`` (``models:/name@alias``); ``models:/name/3``
    is the form for a version number.
    """
    ### BEGIN SOLUTION
    return mlflow.pyfunc.load_model(f"models:/{model_name}@{alias}")
    ### END SOLUTION


def promote_if_better(
    model_name: str, run_id: str, metric: str = "accuracy", alias: str = "champion"
) -> bool:
    """Register the run's model and promote it to ``alias`` only if it beats the current holder.

    This is the core of a safe deployment workflow: a new model becomes the
    ``champion`` only when it is measurably better, and the old champion is
    kept, marked as archived, for comparison or rollback. (With the deprecated
    stages, this was "transition to Production, archive existing versions".)

    Steps:

    1. Register the run's model (logged as ``"model"``):
       ``mlflow.register_model(f"runs:/{run_id}/model", model_name)``; keep its
       version number.
    2. Find the current holder of ``alias``: it exists when
       ``alias in client.get_registered_model(model_name).aliases``; then
       ``holder = client.get_model_version_by_alias(model_name, alias)``.
    3. Compare the metric of the new run,
       ``client.get_run(run_id).data.metrics[metric]``, with the metric of
       the run behind the holder, ``client.get_run(holder.run_id)``. Higher is
       better, and it must be *strictly* higher.
    4. Promote when there is no holder or the new run is better:
       ``client.set_registered_model_alias(model_name, alias, new_version)``,
       and if there was a holder tag it
       ``client.set_model_version_tag(model_name, holder.version, "status", "archived")``.
       Return ``True``.
    5. Otherwise leave ``alias`` where it is, point ``challenger`` at the new
       version (``set_registered_model_alias(model_name, "challenger", new_version)``)
       and return ``False``.

    The grader runs the three cases (first model, better model, not better
    model) and checks aliases, the ``status=archived`` tag and the lineage of
    the new version.

    Traps:

    * Register *before* deciding: even a model that loses gets a version (and
      the ``challenger`` alias).
    * ``get_model_version_by_alias`` raises an error when nobody holds the
      alias; check first (or catch ``MlflowException``).
    * Equal is not better: a tie leaves the champion in place.
    * Compare run metrics, not version numbers: the newest version is not
      always the best one.
    """
    ### BEGIN SOLUTION
    client = MlflowClient()
    new_version = mlflow.register_model(f"runs:/{run_id}/model", model_name).version

    holder = None
    if alias in client.get_registered_model(model_name).aliases:
        holder = client.get_model_version_by_alias(model_name, alias)

    if holder is None:
        promote = True
    else:
        new_value = client.get_run(run_id).data.metrics.get(metric)
        holder_value = client.get_run(holder.run_id).data.metrics.get(metric)
        promote = new_value is not None and (holder_value is None or new_value > holder_value)

    if promote:
        client.set_registered_model_alias(model_name, alias, str(new_version))
        if holder is not None:
            client.set_model_version_tag(model_name, str(holder.version), "status", "archived")
    else:
        client.set_registered_model_alias(model_name, "challenger", str(new_version))
    return promote
    ### END SOLUTION
