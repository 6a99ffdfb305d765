"""Module 2: saving and loading models with MLflow Models.

A trained model is only useful if someone else (a colleague, a batch job, a web
service) can load it and call it. **MLflow Models** is a standard folder format
for that. A model folder holds:

* an ``MLmodel`` file (YAML) that describes the model: which **flavors** it
  has, its **signature**, its input example, the MLflow version...;
* the serialized model itself (for scikit-learn, ``model.pkl`` or
  ``model.skops``);
* the environment needed to run it (``requirements.txt``, ``conda.yaml``,
  ``python_env.yaml``), which MLflow infers for you.

A **flavor** is one way of loading the model. ``mlflow.sklearn.log_model``
writes two: ``sklearn`` (load back the real scikit-learn estimator with
``mlflow.sklearn.load_model``) and ``python_function``, the generic **pyfunc**
flavor (load with ``mlflow.pyfunc.load_model`` and call ``.predict(df)``, the
same way for every library). Serving tools only need pyfunc.

The **signature** lists the input columns and types the model expects and the
type of its output; the **input example** is a few real rows saved next to the
model. Both document the model and let MLflow check inputs at prediction time.
``mlflow.models.infer_signature(X, model.predict(X))`` builds a signature from
data.

Where does a logged model live? In MLflow 3 a model is a first-class object, a
**LoggedModel** with its own ``model_id`` (``m-...``), linked to the run that
produced it; its files sit under the experiment's ``models/<model_id>/`` folder,
not in the run's artifacts. You find it again with a **model URI**:

* ``models:/<model_id>``: the logged model itself (what ``log_model`` returns
  in ``model_info.model_uri``);
* ``runs:/<run_id>/<name>``: "the model called ``name`` logged by that run";
* ``models:/<registered_name>@<alias>``: a version of a registered model
  (Module 3).

When no flavor fits, write your own: subclass ``mlflow.pyfunc.PythonModel``,
implement ``predict`` (and optionally ``load_context``) and log it with
``mlflow.pyfunc.log_model(python_model=...)``.

Two facts about the MLflow version used here (3.17):

* ``log_model`` takes ``name="model"``; the older ``artifact_path=`` is
  deprecated.
* Since MLflow 3.14 scikit-learn models are saved with **skops** by default, a
  safe format that refuses "untrusted" types: trees, forests and k-NN models
  fail to save unless you list ``skops_trusted_types``. Passing
  ``serialization_format="cloudpickle"`` works for every estimator (it is what
  autologging uses); only load pickled models you trust.
"""

import sys

import cloudpickle
import mlflow
import mlflow.pyfunc
import mlflow.sklearn
import numpy as np
import pandas as pd
from mlflow.models import infer_signature


def log_model(model, X_example, experiment_id: str, name: str = "model") -> str:
    """Log a fitted scikit-learn model in a new run, with signature and input example; return its URI.

    Steps:

    1. Build the signature from the example and the model's own predictions:
       ``signature = infer_signature(X_example, model.predict(X_example))``.
    2. ``with mlflow.start_run(experiment_id=experiment_id):`` call
       ``mlflow.sklearn.log_model(model, name=name, signature=signature,
       input_example=X_example, serialization_format="cloudpickle")``.
    3. It returns a ``ModelInfo``; return ``model_info.model_uri`` (it looks
       like ``models:/m-...``).

    The grader checks that the logged model has the flavors ``sklearn`` and
    ``python_function``, that the signature's input columns and types match
    ``X_example``, that an input example was saved, and that loading the URI
    predicts exactly like the original model.

    Traps:

    * ``name=`` is the MLflow 3 spelling; ``artifact_path=`` is deprecated.
    * With the default skops format, tree models, forests and k-NN fail to
      log; the grader may hand you any classifier, so use
      ``serialization_format="cloudpickle"``.
    * The first ``log_model`` of a session takes a few seconds: MLflow works
      out the model's pip requirements in a separate process.
    """
    ### BEGIN SOLUTION
    signature = infer_signature(X_example, model.predict(X_example))
    with mlflow.start_run(experiment_id=experiment_id):
        model_info = mlflow.sklearn.log_model(
            model,
            name=name,
            signature=signature,
            input_example=X_example,
            serialization_format="cloudpickle",
        )
    return model_info.model_uri
    ### END SOLUTION


def load_and_predict(model_uri: str, X) -> np.ndarray:
    """Load any MLflow model through the generic pyfunc flavor and predict ``X``.

    Steps:

    1. ``model = mlflow.pyfunc.load_model(model_uri)``.
    2. ``predictions = model.predict(X)``.
    3. Return them as a numpy array (``np.asarray(predictions)``).

    The grader calls it with the three kinds of URI: ``models:/<model_id>``,
    ``runs:/<run_id>/<name>`` and ``models:/<name>@<alias>``, and compares
    your predictions with the original model's.

    Traps:

    * pyfunc checks ``X`` against the model's signature: missing columns are
      an error, and integer columns given where the signature says double
      are an error too.
    * Use ``mlflow.pyfunc.load_model``, not ``mlflow.sklearn.load_model``: the
      pyfunc loader works for every flavor, including custom PythonModels.
    """
    ### BEGIN SOLUTION
    model = mlflow.pyfunc.load_model(model_uri)
    return np.asarray(model.predict(X))
    ### END SOLUTION


def save_local(model, path: str) -> None:
    """Save a fitted scikit-learn model in MLflow format to the local folder ``path``.

    Saving is logging without a tracking server: the same model folder
    (``MLmodel``, the pickled model, the environment files) is written to a
    plain directory that you can zip, copy or load later.

    Steps:

    1. ``mlflow.sklearn.save_model(model, path, serialization_format="cloudpickle")``.

    The grader checks that ``path/MLmodel`` exists and lists the ``sklearn``
    flavor.

    Traps:

    * ``save_model`` refuses a folder that already exists and is not empty.
    * No run is needed (and none should be started) to save a model locally.
    """
    ### BEGIN SOLUTION
    mlflow.sklearn.save_model(model, path, serialization_format="cloudpickle")
    ### END SOLUTION


def load_local(path: str):
    """Load the model saved at ``path`` back as a native scikit-learn estimator.

    Steps:

    1. Return ``mlflow.sklearn.load_model(path)``. A local folder path is a
       valid model URI.

    The grader checks that the returned object is the original estimator type
    (not a pyfunc wrapper) and predicts the same values.

    Trap: ``mlflow.pyfunc.load_model(path)`` would give you a ``PyFuncModel``
    wrapper; only the ``sklearn`` flavor gives back the real estimator, with
    ``predict_proba``, ``coef_`` and everything else.
    """
    ### BEGIN SOLUTION
    return mlflow.sklearn.load_model(path)
    ### END SOLUTION


class ThresholdModel(mlflow.pyfunc.PythonModel):
    """A custom pyfunc model: a binary classifier with a chosen decision threshold.

    scikit-learn's ``predict`` says 1 when the probability of class 1 is at
    least 0.5. Often you want another cut-off (fewer false alarms, or fewer
    misses). This wrapper keeps the fitted classifier and predicts
    ``1`` when ``predict_proba(X)[:, 1] >= threshold``, else ``0``.

    How a PythonModel works:

    * ``__init__`` runs once, when *you* build the object before logging. What
      you store on ``self`` is pickled (with cloudpickle) into the model folder.
    * ``load_context(context)`` runs every time the model is *loaded*. The
      ``context`` gives you ``context.model_config`` (the dict passed as
      ``model_config=`` to ``log_model``) and ``context.artifacts`` (local paths
      of the files passed as ``artifacts=``).
    * ``predict(context, model_input, params=None)`` is what
      ``loaded_model.predict(df)`` calls. MLflow 3 reads the type hint of
      ``model_input`` (here ``pd.DataFrame``) to know what input to expect and
      warns when there is none.
    """

    def __init__(self, classifier):
        """Keep the fitted classifier on ``self`` (it is pickled with the model)."""
        ### BEGIN SOLUTION
        self.classifier = classifier
        self.threshold = None
        ### END SOLUTION

    def load_context(self, context):
        """Read the threshold from the model config: ``context.model_config["threshold"]``."""
        ### BEGIN SOLUTION
        self.threshold = float(context.model_config["threshold"])
        ### END SOLUTION

    def predict(self, context, model_input: pd.DataFrame, params=None) -> np.ndarray:
        """Return integer labels: ``(predict_proba(X)[:, 1] >= threshold).astype(int)``."""
        ### BEGIN SOLUTION
        probabilities = self.classifier.predict_proba(model_input)[:, 1]
        return (probabilities >= self.threshold).astype(int)
        ### END SOLUTION


def log_threshold_model(model, threshold: float, X_example, experiment_id: str) -> str:
    """Log a ``ThresholdModel`` wrapping ``model`` with ``threshold``; return its model URI.

    The threshold must travel *with* the model: whoever loads it later, in
    another process or on another machine, gets the same rule without knowing
    any Python variable of yours. ``model_config`` is made for such settings: a
    small dict saved in the ``MLmodel`` file and handed to ``load_context``.

    Steps:

    1. Compute the expected labels for the example:
       ``(model.predict_proba(X_example)[:, 1] >= threshold).astype(int)``, and
       ``signature = infer_signature(X_example, those_labels)``.
    2. ``with mlflow.start_run(experiment_id=experiment_id):`` call
       ``mlflow.pyfunc.log_model(name="threshold_model",
       python_model=ThresholdModel(model), model_config={"threshold": threshold},
       signature=signature, input_example=X_example)``.
    3. Return ``model_info.model_uri``.

    The grader loads your URI in a **fresh Python process** with
    ``mlflow.pyfunc.load_model`` and compares its predictions with the rule for
    its own random threshold.

    Traps:

    * A global variable or a default argument does not travel with the model:
      in the new process it does not exist (or has another value).
    * cloudpickle saves a class defined in an importable module *by
      reference* (just "module.ThresholdModel"), so a fresh process that
      cannot import this exercise file fails with ``ModuleNotFoundError``.
      Ask cloudpickle to copy the class's code into the model instead:
      ``cloudpickle.register_pickle_by_value(sys.modules[ThresholdModel.__module__])``
      before logging, and ``cloudpickle.unregister_pickle_by_value(...)``
      afterwards (in a ``finally``). MLflow's other answer to this problem is
      "models from code" (``python_model="path/to/file.py"``).
    * ``predict`` must return integers (0/1), not booleans or probabilities.
    """
    ### BEGIN SOLUTION
    labels = (model.predict_proba(X_example)[:, 1] >= threshold).astype(int)
    signature = infer_signature(X_example, labels)

    this_module = sys.modules[ThresholdModel.__module__]
    cloudpickle.register_pickle_by_value(this_module)
    try:
        with mlflow.start_run(experiment_id=experiment_id):
            model_info = mlflow.pyfunc.log_model(
                name="threshold_model",
                python_model=ThresholdModel(model),
                model_config={"threshold": float(threshold)},
                signature=signature,
                input_example=X_example,
            )
    finally:
        cloudpickle.unregister_pickle_by_value(this_module)
    return model_info.model_uri
    ### END SOLUTION
