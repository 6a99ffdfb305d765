# Your exercise file: replace each `raise NotImplementedError(...)` with your code,
# then check your work with `pytest grader` (README.md says more).
# (Generated from solutions/ex01_tracking.py by `python -m grader generate`.)
"""Module 1: experiment tracking with MLflow.

Machine learning means trying many things: other features, other models, other
hyperparameters. Experiment tracking keeps a written record of every attempt, so
that later you can compare them, pick the best one and reproduce it. MLflow
Tracking is the part of MLflow that keeps this record.

MLflow sorts the record into two levels:

* An **experiment** is a named folder for one question, for example
  "wine-classifier". It has an id (a string such as ``"3"``), a name and tags.
  When you delete one it goes to a "deleted" state first, and you can restore it.
* A **run** is one execution of your code inside an experiment, for example
  one training of one model. Each run has a unique ``run_id``, a status
  (``RUNNING``, then ``FINISHED`` or ``FAILED``), start and end times, and holds:

  - **params**: the inputs you chose (``C=0.1``, ``max_depth=5``). Logged once;
    MLflow stores them as strings.
  - **metrics**: numbers you measured (``accuracy=0.93``). A metric can be logged
    many times at increasing ``step`` values, which gives a history (a curve).
  - **tags**: free string labels (``model_family=logistic_regression``). MLflow
    adds its own system tags whose keys start with ``mlflow.``.
  - **artifacts**: files (plots, reports, JSON, models) stored next to the run.
  - **dataset inputs**: a record of which data the run used and for what
    ("training", "evaluation"), with the data's schema and size.

You write to the store with the *fluent* API (``mlflow.start_run``,
``mlflow.log_param``...), which works on "the active run", and you read it back
with the *client* API (``mlflow.MlflowClient``), which takes explicit ids.
Always open runs with ``with mlflow.start_run(...) as run:``: when the block ends
the run is closed as FINISHED (or FAILED if an exception escapes), so no run is
ever left active by mistake.

Two more ideas appear in this module. **Autologging**
(``mlflow.sklearn.autolog()``) patches scikit-learn so that ``fit`` logs params,
training metrics and the model for you. **Nested runs** put child runs under a
parent run, the usual layout for a hyperparameter search: one child per
candidate, and the parent holds the summary.

Where does the data go? MLflow reads the ``MLFLOW_TRACKING_URI`` environment
variable (here the grader points it at a temporary SQLite database). Never call
``mlflow.set_tracking_uri`` in these exercises and never hard-code a path.
"""

import mlflow
import mlflow.data
import mlflow.sklearn
import numpy as np
from matplotlib.figure import Figure
from mlflow import MlflowClient
from mlflow.entities import ViewType
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (
    ConfusionMatrixDisplay,
    accuracy_score,
    classification_report,
    confusion_matrix,
    f1_score,
)


def get_or_create_experiment(name: str, tags: dict[str, str] | None = None) -> str:
    """Return the id of the experiment called ``name``, creating it if needed.

    Steps:

    1. Look the experiment up by name with
       ``MlflowClient().get_experiment_by_name(name)``. It returns ``None`` when
       no experiment has that name, and it also finds *deleted* experiments.
    2. Missing: create it with ``MlflowClient().create_experiment(name, tags=tags)``
       (or ``mlflow.create_experiment``) and return the new id.
    3. Found but ``experiment.lifecycle_stage == "deleted"``: bring it back with
       ``MlflowClient().restore_experiment(experiment_id)``.
    4. If ``tags`` were given, make sure the experiment carries them
       (``MlflowClient().set_experiment_tag(experiment_id, key, value)``), then
       return ``experiment.experiment_id``.

    The grader checks: exactly one active experiment with that name and those
    tags; calling the function twice returns the same id and creates nothing;
    an experiment the grader deleted comes back active with its old id.

    Traps:

    * Creating a second experiment with the name of a deleted one fails: names
      stay reserved while the experiment sits in the "deleted" state.
    * ``mlflow.set_experiment(name)`` also creates missing experiments, but it
      cannot add tags, it refuses deleted experiments and it changes the global
      "active experiment" as a side effect.
    * Do not pass ``artifact_location``; MLflow picks a default location.
    """
    raise NotImplementedError("get_or_create_experiment: replace this line with your code")


def log_run(
    experiment_id: str,
    params: dict,
    metrics: dict,
    tags: dict[str, str] | None = None,
    run_name: str | None = None,
) -> str:
    """Log one run holding exactly ``params``, ``metrics`` and ``tags``; return its id.

    Steps:

    1. Open the run with
       ``with mlflow.start_run(experiment_id=experiment_id, run_name=run_name, tags=tags) as run:``.
       ``start_run`` accepts the tags directly (``mlflow.set_tags(tags)`` inside
       the block works too).
    2. Inside the block log everything in one call each:
       ``mlflow.log_params(params)`` and ``mlflow.log_metrics(metrics)``.
    3. After the block return ``run.info.run_id``.

    The grader checks: exactly one new run in the experiment, with status
    FINISHED; its params equal yours *as MLflow stores them* (strings: ``3``
    becomes ``"3"``); its metrics and tags equal yours; its name is ``run_name``
    when one is given.

    Traps:

    * Without ``experiment_id=...`` the run lands in the "Default" experiment.
    * ``mlflow.start_run()`` without ``with`` leaves the run active (status
      RUNNING) until ``mlflow.end_run()``; the ``with`` block does that for you.
    * ``tags`` may be ``None``.
    """
    raise NotImplementedError("log_run: replace this line with your code")


def log_metric_history(experiment_id: str, key: str, values: list[float]) -> str:
    """Log ``key`` once per value, at steps 0, 1, ..., n-1, in one new run; return its id.

    A metric is not a single number: every call to ``mlflow.log_metric`` adds a
    point ``(step, value, timestamp)`` to the metric's history. That is how loss
    curves are recorded during training, and the UI draws them as charts.

    Steps:

    1. ``with mlflow.start_run(experiment_id=experiment_id) as run:``
    2. ``for step, value in enumerate(values):``
       ``mlflow.log_metric(key, value, step=step)``
    3. Return ``run.info.run_id``.

    The grader reads ``MlflowClient().get_metric_history(run_id, key)`` and
    checks that it has ``len(values)`` points and that step ``i`` holds
    ``values[i]``.

    Traps:

    * Forgetting ``step=`` logs every point at step 0.
    * ``mlflow.log_metrics({key: value})`` in a loop has the same problem unless
      you pass ``step=`` there too.
    * ``run.data.metrics`` only shows the *latest* value; use the history to
      check your work.
    """
    raise NotImplementedError("log_metric_history: replace this line with your code")


def log_evaluation(experiment_id: str, y_true, y_pred, labels: list) -> str:
    """Log an evaluation report of a classifier's predictions in one new run; return its id.

    Metrics are numbers; artifacts are files. A good evaluation run has both:
    the headline numbers as metrics (so runs can be sorted and compared) and the
    details as files (so a human can look at them).

    Steps, all inside ``with mlflow.start_run(experiment_id=experiment_id) as run:``:

    1. Metrics: ``accuracy = accuracy_score(y_true, y_pred)`` and
       ``f1_macro = f1_score(y_true, y_pred, average="macro")``; log both with
       ``mlflow.log_metrics({"accuracy": ..., "f1_macro": ...})``.
    2. Confusion matrix as JSON:
       ``matrix = confusion_matrix(y_true, y_pred, labels=labels)``, then
       ``mlflow.log_dict({"labels": [...], "matrix": matrix.tolist()},
       "evaluation/confusion_matrix.json")``.
    3. The text report: ``classification_report(y_true, y_pred, labels=labels)``
       logged with ``mlflow.log_text(report, "evaluation/report.txt")``.
    4. A picture: draw the matrix on a matplotlib figure, for example
       ``fig = Figure(); ax = fig.subplots();
       ConfusionMatrixDisplay(matrix, display_labels=labels).plot(ax=ax)``, and
       log it with ``mlflow.log_figure(fig, "evaluation/confusion_matrix.png")``.
    5. Return ``run.info.run_id``.

    The grader recomputes accuracy, macro F1, the confusion matrix and the
    report itself and compares; it also checks that the PNG file really is a
    PNG image.

    Traps:

    * The artifact paths must be exactly ``evaluation/...``: the folder is part
      of the name you give to ``log_dict`` / ``log_text`` / ``log_figure``.
    * JSON cannot hold numpy numbers: convert with ``.tolist()``
      (``np.asarray(labels).tolist()`` turns numpy labels into plain Python).
    * Pass ``labels=labels`` to ``confusion_matrix`` so rows and columns follow
      the order you were given.
    * Plotting: use the object-oriented ``matplotlib.figure.Figure`` (or call
      ``matplotlib.use("Agg")`` before importing pyplot) so that no window
      needs to open; on a server there is no screen.
    """
    raise NotImplementedError("log_evaluation: replace this line with your code")


def train_and_track(experiment_id: str, data, params: dict) -> str:
    """Train ``LogisticRegression(**params)`` and track everything about it; return the run id.

    ``data`` is ``(X_train, X_test, y_train, y_test)`` as
    ``train_test_split`` returns it on a DataFrame.

    Steps, inside ``with mlflow.start_run(experiment_id=experiment_id) as run:``:

    1. Fit ``LogisticRegression(**params)`` on the training split and predict
       the test split.
    2. ``mlflow.log_params(params)``.
    3. Log the test-set ``accuracy`` (``accuracy_score``) and ``f1_macro``
       (``f1_score(..., average="macro")``) with ``mlflow.log_metrics``.
    4. Tag the run: ``mlflow.set_tag("model_family", "logistic_regression")``.
    5. Record the data the run used. Build a DataFrame of features plus target
       for each split, wrap it with
       ``mlflow.data.from_pandas(df, targets="<target column>", name="train")``
       and log it with ``mlflow.log_input(dataset, context="training")``; do
       the same for the test split with ``context="evaluation"``.
    6. Return ``run.info.run_id``.

    The grader checks the params, refits the same model itself and compares
    your metrics, reads ``run.inputs.dataset_inputs`` to find one dataset with
    context ``training`` and one with ``evaluation`` whose profile shows the
    right number of rows, and checks the tag.

    Traps:

    * The context is not an argument of ``from_pandas``; it belongs to
      ``mlflow.log_input(dataset, context=...)``.
    * Metrics are computed on the **test** split, not on the training split.
    * When you add the target column, keep the row count: use the values
      (``y_train.to_numpy()``), not a join on the index.
    """
    raise NotImplementedError("train_and_track: replace this line with your code")


def train_with_autolog(experiment_id: str, data, params: dict) -> str:
    """Train a ``RandomForestClassifier(**params)`` and let autologging do the logging.

    ``mlflow.sklearn.autolog()`` patches scikit-learn: from then on every
    ``fit`` logs the estimator's params (all of them, including defaults),
    training metrics (``training_accuracy_score``...), the fitted model and the
    training dataset, into the active run, or into a new run if none is active.

    Steps:

    1. Call ``mlflow.sklearn.autolog()``.
    2. ``try:`` open ``with mlflow.start_run(experiment_id=experiment_id) as run:``
       and fit ``RandomForestClassifier(**params)`` on the training split.
       Autologging does the rest; you log nothing by hand.
    3. ``finally:`` call ``mlflow.sklearn.autolog(disable=True)`` so that
       autologging is off again even if training failed.
    4. Return ``run.info.run_id``.

    The grader checks that the run holds every param of the estimator, training
    metrics and a logged model, and that after your function returns a plain
    ``fit`` logs nothing anymore.

    Traps:

    * Autologging is global and stays on until you switch it off: forgetting to
      disable it makes every later ``fit`` in the process create runs.
    * Without ``start_run(experiment_id=...)`` the autologged run goes to the
      active experiment (usually "Default"), not to ``experiment_id``.
    * Turn autologging on *before* ``fit``; it cannot log a fit that already
      happened.
    """
    raise NotImplementedError("train_with_autolog: replace this line with your code")


def find_best_run(experiment_id: str, metric: str, maximize: bool = True) -> str | None:
    """Return the id of the FINISHED run with the best value of ``metric``, or ``None``.

    Comparing runs is the point of tracking them, and MLflow can do the
    comparison for you in the store with a search query.

    Steps:

    1. ``MlflowClient().search_runs(...)`` with:

       * ``experiment_ids=[experiment_id]``;
       * ``filter_string="attributes.status = 'FINISHED'"`` so that failed,
         killed or still-running runs are ignored;
       * ``run_view_type=ViewType.ACTIVE_ONLY`` (``mlflow.entities.ViewType``)
         so that deleted runs are ignored;
       * ``order_by=[f"metrics.`{metric}` DESC"]`` when maximizing, ``ASC``
         otherwise. Put the metric name in backticks: names with ``-``,
         ``.`` or spaces need them.

    2. Runs that never logged the metric are sorted last, so walk the results
       and return the ``run.info.run_id`` of the first run whose
       ``run.data.metrics`` contains ``metric`` (and is not NaN).
    3. Return ``None`` when there is no such run (empty experiment, or nobody
       logged that metric).

    The grader fills experiments with traps: a FAILED run with a better value,
    a deleted run with a better value, runs without the metric, ties,
    ``maximize=False`` and an empty experiment.

    Traps:

    * ``mlflow.search_runs`` (fluent) returns a pandas DataFrame by default;
      the client returns ``Run`` objects, which are easier to use here.
    * Do not take the first result blindly: if no FINISHED run has the metric,
      the first result is a run *without* it and the answer must be ``None``.
    """
    raise NotImplementedError("find_best_run: replace this line with your code")


def tune_hyperparameters(experiment_id: str, data, grid: list[dict]) -> str:
    """Try every entry of ``grid`` in its own nested run under one parent run; return the parent id.

    A hyperparameter search produces many runs that belong together. MLflow
    groups them with **nested runs**: a parent run for the search, and one child
    run per candidate. Each child carries the tag ``mlflow.parentRunId``, and the
    UI folds children under their parent.

    Steps:

    1. Open the parent:
       ``with mlflow.start_run(experiment_id=experiment_id, run_name="tuning") as parent:``.
    2. For each ``entry`` in ``grid``, open a child *inside* the parent block:
       ``with mlflow.start_run(experiment_id=experiment_id, nested=True):``.
       In it fit ``LogisticRegression(**entry)`` on the training split, compute
       the test ``accuracy``, and log ``mlflow.log_params(entry)`` and
       ``mlflow.log_metric("accuracy", accuracy)``. Remember the best entry.
    3. Back in the parent (after the loop, still inside its block), log
       ``mlflow.log_metric("best_accuracy", best_accuracy)`` and the winning
       params with a ``best_`` prefix:
       ``mlflow.log_params({f"best_{k}": v for k, v in best_entry.items()})``.
    4. Return ``parent.info.run_id``.

    The grader checks: one parent run and ``len(grid)`` FINISHED children whose
    ``mlflow.parentRunId`` tag is the parent's id, each child's params and
    accuracy, and that the parent's ``best_accuracy`` and ``best_<param>``
    values match the best child.

    Traps:

    * Without ``nested=True`` the second ``start_run`` fails because a run is
      already active.
    * Log the child's params and metric while the child is the active run, and
      the best values after the loop, when the parent is active again.
    * Ties: keep the first entry that reached the best accuracy (use ``>``,
      not ``>=``).
    """
    raise NotImplementedError("tune_hyperparameters: replace this line with your code")
