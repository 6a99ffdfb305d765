"""Messages that name the cause and the fix (issue 28), each proved on wrong code as a learner
writes it, graded by the real grader against real MLflow stores and servers: a signature that
refuses the input, runs never ended, MLflow's advice to nest a run, a tracking URI of the
learner's, a PythonModel's predict with its parameters the other way round. Two learners, each
with several independent mistakes (one per function), graded once each."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from conftest import grade, outputs, with_functions
from grader.core import catalogue
from grader.core.text import DATA_LINES, without_data

LOAD_AND_PREDICT_VALUES = '''def load_and_predict(model_uri: str, X):
    model = mlflow.pyfunc.load_model(model_uri)
    return np.asarray(model.predict(X.values))
'''
SCORE_VALUES = '''def score_with_server(url: str, X: pd.DataFrame) -> np.ndarray:
    response = requests.post(f"{url}/invocations", json={"inputs": X.values.tolist()}, timeout=60)
    if response.status_code != 200:
        raise RuntimeError(f"{response.status_code}: {response.json()['message']}")
    return np.asarray(response.json()["predictions"])
'''
# MLflow said "To start a nested run, call start_run with nested=True"; the learner did.
PRACTICE_NESTED_RUNS = '''def run_practice(experiment_name: str, model_name: str) -> dict:
    client = MlflowClient()
    experiment = client.get_experiment_by_name(experiment_name)
    experiment_id = experiment.experiment_id if experiment else client.create_experiment(experiment_name)
    X, y = load_wine(as_frame=True, return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=42, stratify=y)
    best = None
    for family, model in [("logistic", make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))),
                          ("tree", DecisionTreeClassifier(max_depth=4, random_state=42)),
                          ("forest", RandomForestClassifier(n_estimators=50, random_state=42))]:
        run = mlflow.start_run(experiment_id=experiment_id, run_name=family, nested=True)
        accuracy = accuracy_score(y_test, model.fit(X_train, y_train).predict(X_test))
        mlflow.log_params({"family": family})
        mlflow.log_metric("accuracy", accuracy)
        info = mlflow.sklearn.log_model(model, name="model", serialization_format="cloudpickle",
                                        signature=infer_signature(X_train, model.predict(X_train)))
        if best is None or accuracy > best[0]:
            best = (accuracy, run.info.run_id, info.model_uri)
    version = int(mlflow.register_model(best[2], model_name).version)
    client.set_registered_model_alias(model_name, "champion", str(version))
    return {"experiment_id": experiment_id, "best_run_id": best[1], "version": version}
'''
HISTORY_RUN_PER_STEP = '''def log_metric_history(experiment_id: str, key: str, values: list[float]) -> str:
    for step, value in enumerate(values):
        run = mlflow.start_run(experiment_id=experiment_id)
        mlflow.log_metric(key, value, step=step)
    return run.info.run_id
'''
TUNE_CHILDREN_NEVER_ENDED = '''def tune_hyperparameters(experiment_id: str, data, grid: list[dict]) -> str:
    X_train, X_test, y_train, y_test = data
    best_accuracy, best_entry = None, None
    with mlflow.start_run(experiment_id=experiment_id, run_name="tuning") as parent:
        for index, entry in enumerate(grid):
            mlflow.start_run(experiment_id=experiment_id, run_name=f"candidate-{index}", nested=True)
            accuracy = accuracy_score(y_test, LogisticRegression(**entry).fit(X_train, y_train).predict(X_test))
            mlflow.log_params(entry)
            mlflow.log_metric("accuracy", accuracy)
            if best_accuracy is None or accuracy > best_accuracy:
                best_accuracy, best_entry = accuracy, entry
        mlflow.log_metric("best_accuracy", best_accuracy)
        mlflow.log_params({f"best_{k}": v for k, v in best_entry.items()})
    return parent.info.run_id
'''
THRESHOLD_MODEL_SWAPPED = '''class ThresholdModel(mlflow.pyfunc.PythonModel):
    def __init__(self, classifier):
        self.classifier = classifier
        self.threshold = None

    def load_context(self, context):
        self.threshold = float(context.model_config["threshold"])

    def predict(self, model_input, context):
        return (self.classifier.predict_proba(model_input)[:, 1] >= self.threshold).astype(int)
'''
STILL_ACTIVE = "still active when the function returned (status RUNNING): open each run with `with mlflow.start_run(...):`"
RUN_ID = re.compile(r"\b[0-9a-f]{32}\b")


@pytest.fixture(scope="module")
def learners(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("causes")
    first = with_functions(tmp / "first", {
        ("ex02_models", "load_and_predict"): LOAD_AND_PREDICT_VALUES,
        ("ex05_serving", "score_with_server"): SCORE_VALUES,
        ("ex04_practice", "run_practice"): PRACTICE_NESTED_RUNS,
        ("ex01_tracking", "get_or_create_experiment"): None,  # right, but for the line below
    })
    tracking = first / "ex01_tracking.py"
    tracking.write_text(tracking.read_text().replace(
        "    client = MlflowClient()\n", '    mlflow.set_tracking_uri("file:./mlruns")\n    client = MlflowClient()\n', 1))
    second = with_functions(tmp / "second", {
        ("ex01_tracking", "log_metric_history"): HISTORY_RUN_PER_STEP,
        ("ex01_tracking", "tune_hyperparameters"): TUNE_CHILDREN_NEVER_ENDED,
        ("ex02_models", "ThresholdModel"): THRESHOLD_MODEL_SWAPPED,
        ("ex02_models", "log_threshold_model"): None,
    })
    env = {"XDG_CACHE_HOME": str(tmp / "cache")}
    selections = {"first": "load_and_predict or score_with_server or run_practice or get_or_create_experiment",
                  "second": "log_metric_history or tune_hyperparameters or log_threshold_model"}
    return {name: grade(folder, "-k", selections[name], env=env, out=tmp / f"{name}.json")
            for name, folder in (("first", first), ("second", second))}


def data_lines(text: str) -> int:
    """Lines that are only numbers and brackets: rows of a printed DataFrame or array."""
    return sum(bool(re.fullmatch(r"[\s\[\]\d.eE+\-',]+", line)) and any(c.isdigit() for c in line) for line in text.splitlines())


def test_a_refused_input_says_the_cause_in_a_few_lines_not_the_data(learners):
    said = outputs(learners["first"], "ex02_models.load_and_predict: model id uri")
    message = said.split("\nHint: ")[0]
    # MLflow's message held the 40-row input (74 lines, cut at 4,000 characters before its cause).
    assert len(message.splitlines()) <= 12 and data_lines(message) <= DATA_LINES + 1, said
    assert re.search(r"… \(\d+ more lines of data\)", message), said
    flat = " ".join(message.split())
    assert re.search(r"The model's signature refused the input: .*? found: Model is missing inputs \['\w+', ", flat), said
    assert "X.values, X.to_numpy() or a list lose the column names" in flat, said
    assert "(cut:" not in said


def test_a_server_refusing_the_payload_is_said_in_a_few_lines(learners):
    said = outputs(learners["first"], "ex05_serving.score_with_server: predictions match").split("\nHint: ")[0]
    assert "400" in said and data_lines(said) <= 2 * (DATA_LINES + 1), said  # the server quotes the input twice
    assert "The model's signature refused the input" in said and "Model is missing inputs [" in said, said
    assert len(said.splitlines()) <= 20 and "(cut:" not in said, said


def test_runs_left_running_by_nested_start_run_are_named_with_how_to_end_them(learners):
    said = " ".join(outputs(learners["first"], "ex04_practice.run_practice: candidate runs").split())
    assert "lack a FINISHED status" not in said, said
    assert f"were {STILL_ACTIVE}" in said and "or end it with mlflow.end_run()" in said, said
    named = said.split(" were still active")[0]
    assert len(set(RUN_ID.findall(named))) == 3, said  # which runs: all three candidates
    champion = " ".join(outputs(learners["first"], "ex04_practice.run_practice: champion is best").split())
    assert "the champion's run is not a candidate: run " in champion and f"was {STILL_ACTIVE}" in champion, champion


def test_a_tracking_uri_of_the_learners_is_a_note_saying_it_was_ignored_and_why(learners):
    graded = learners["first"]
    key = "ex01_tracking.get_or_create_experiment"
    assert graded.scores()[key] == catalogue.load().exercise("ex01_tracking", "get_or_create_experiment").points
    notes = graded.exercises[key]["notes"]
    assert len(notes) == 1 and notes[0].startswith(
        "Your code called mlflow.set_tracking_uri('file:./mlruns'), and the grader ignored it: while grading, "
        "each check gives your code a temporary store of its own"), notes
    assert "MLflow 3 refuses a file store ('file:' or a plain folder) unless MLFLOW_ALLOW_FILE_STORE=true: " \
           "use 'sqlite:///mlflow.db' or a tracking server" in notes[0], notes
    assert f"Note: {notes[0]}" in " ".join(graded.output.split()), graded.output
    assert "notes" not in graded.exercises["ex02_models.load_and_predict"]  # only the function that called it


def test_mlflows_advice_to_nest_a_run_is_corrected(learners):
    said = " ".join(outputs(learners["second"], "ex01_tracking.log_metric_history: finished run").split())
    assert "is already active" in said and "call start_run with nested=True" in said, said  # MLflow's words stay
    assert "That run was started earlier and never ended" in said and "rather than nesting" in said, said
    assert said.index("never ended") < said.index("Hint: "), said


def test_child_runs_never_ended_leave_the_parent_running_and_say_so(learners):
    said = " ".join(outputs(learners["second"], "ex01_tracking.tune_hyperparameters: nested children").split())
    assert re.search(rf"run [0-9a-f]{{32}} was {re.escape(STILL_ACTIVE)}", said), said
    assert "needs its own end too" in said and "expected FINISHED" not in said, said


def test_predict_with_its_parameters_swapped_names_the_order_mlflow_calls_it_with(learners):
    said = " ".join(outputs(learners["second"], "ex02_models.log_threshold_model: threshold predictions").split())
    assert "Expected 2D array, got scalar array" in said, said  # scikit-learn's symptom, then the cause
    assert "ThresholdModel.predict(self, model_input, context) takes its parameters in another order" in said, said
    assert "MLflow calls predict(context, model_input, params=None)" in said, said
    assert "define `def predict(self, context, model_input, params=None)`" in said, said


def test_without_data_keeps_the_words_and_a_few_rows():
    frame = pd.DataFrame(np.arange(120.0).reshape(40, 3), columns=["a", "b", "c"])
    error = f"MlflowException: Failed to enforce schema of data '{frame}' with schema 'x'. Error: Model is missing inputs ['d']."
    short = without_data(error)
    assert short.splitlines()[0] == error.splitlines()[0] and short.endswith("Error: Model is missing inputs ['d'].")
    assert len(short.splitlines()) == 1 + DATA_LINES + 2 and f"({39 - DATA_LINES} more lines of data)" in short, short
    one_line = f"data '{np.arange(2000.0).tolist()}' with schema 'x'. Error: the cause"
    assert without_data(one_line).endswith("Error: the cause") and len(without_data(one_line)) < 700
    assert without_data("ValueError: 3 rows\n1 2\n3 4\n5 6") == "ValueError: 3 rows\n1 2\n3 4\n5 6"  # a few stay
