"""Messages that once sent learners the wrong way, each proved on real wrong code graded by
the real grader (real MLflow stores): what the message says now, and that no message names
a temporary path. Two learners, each with several independent mistakes (one per function),
graded once each."""
from __future__ import annotations

import re

import pytest

from conftest import grade, outputs, with_functions
from grader.core import catalogue

LOG_MODEL_SKOPS = '''def log_model(model, X_example, experiment_id: str, name: str = "model") -> str:
    with mlflow.start_run(experiment_id=experiment_id):
        info = mlflow.sklearn.log_model(model, name=name, input_example=X_example,
                                        signature=infer_signature(X_example, model.predict(X_example)))
    return info.model_uri
'''
LOG_MODEL_ARTIFACT_PATH = '''def log_model(model, X_example, experiment_id: str, name: str = "model") -> str:
    with mlflow.start_run(experiment_id=experiment_id):
        info = mlflow.sklearn.log_model(model, artifact_path=name, input_example=X_example,
                                        signature=infer_signature(X_example, model.predict(X_example)),
                                        serialization_format="cloudpickle")
    return info.model_uri
'''
FIND_BEST_RETURNS_RUN = '''def find_best_run(experiment_id: str, metric: str, maximize: bool = True) -> str | None:
    runs = MlflowClient().search_runs([experiment_id], filter_string="attributes.status = 'FINISHED'",
                                      order_by=[f"metrics.{metric} {'DESC' if maximize else 'ASC'}"])
    runs = [run for run in runs if metric in run.data.metrics]
    return runs[0] if runs else None
'''
FIND_BEST_WRONG_ORDER = '''def find_best_run(experiment_id: str, metric: str, maximize: bool = True) -> str | None:
    runs = MlflowClient().search_runs([experiment_id], filter_string="attributes.status = 'FINISHED'",
                                      order_by=[f"metrics.{metric} {'ASC' if maximize else 'DESC'}"])
    runs = [run for run in runs if metric in run.data.metrics]
    return runs[0].info.run_id if runs else None
'''
LOAD_LOCAL_SAYS_WHERE = '''def load_local(path: str):
    raise FileNotFoundError(f"no model at {path}; the store is {mlflow.get_tracking_uri()}")
'''
PRACTICE_WITHOUT_SIGNATURES = '''def run_practice(experiment_name: str, model_name: str) -> dict:
    from sklearn.neighbors import KNeighborsClassifier

    client = MlflowClient()
    experiment = client.get_experiment_by_name(experiment_name)
    experiment_id = experiment.experiment_id if experiment else client.create_experiment(experiment_name)
    X, y = load_wine(as_frame=True, return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=42, stratify=y)
    best = None
    for family, model in [("logistic", make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))),
                          ("tree", DecisionTreeClassifier(max_depth=4, random_state=42)),
                          ("knn", make_pipeline(StandardScaler(), KNeighborsClassifier()))]:
        with mlflow.start_run(experiment_id=experiment_id) as run:
            accuracy = accuracy_score(y_test, model.fit(X_train, y_train).predict(X_test))
            mlflow.log_params({"family": family})
            mlflow.log_metric("accuracy", accuracy)
            info = mlflow.sklearn.log_model(model, name="model", serialization_format="cloudpickle")
        if best is None or accuracy > best[0]:
            best = (accuracy, run.info.run_id, info.model_uri)
    version = int(mlflow.register_model(best[2], model_name).version)
    client.set_registered_model_alias(model_name, "champion", str(version))
    return {"experiment_id": experiment_id, "best_run_id": best[1], "version": version}
'''
SYNTAX_ERROR_DEF = "def set_alias(model_name: str, version: int, alias: str -> None:\n    pass\n"
SELECTION = ("-k", "log_model or find_best_run or load_local or run_practice or ex03")


@pytest.fixture(scope="module")
def learners(tmp_path_factory):
    """Two learners' folders, graded as `pytest grader -k ...` (their progress in a private cache),
    from a working folder two levels away from theirs: messages name their files by absolute
    paths (grader/core/places.py), wherever the kit and the temporary folders are."""
    tmp = tmp_path_factory.mktemp("messages")
    work = tmp / "elsewhere" / "work"
    work.mkdir(parents=True)
    first = with_functions(tmp / "first", {
        ("ex02_models", "log_model"): LOG_MODEL_SKOPS,
        ("ex01_tracking", "find_best_run"): FIND_BEST_RETURNS_RUN,
        ("ex02_models", "load_local"): LOAD_LOCAL_SAYS_WHERE,
        ("ex04_practice", "run_practice"): PRACTICE_WITHOUT_SIGNATURES,
        ("ex03_registry", "set_alias"): SYNTAX_ERROR_DEF,
    })
    second = with_functions(tmp / "second", {
        ("ex02_models", "log_model"): LOG_MODEL_ARTIFACT_PATH,
        ("ex01_tracking", "find_best_run"): FIND_BEST_WRONG_ORDER,
        ("ex04_practice", "run_practice"): None,
        ("ex03_registry", "set_alias"): None,
    })
    practice = second / "ex04_practice.py"
    practice.write_text(practice.read_text().replace('"version": version}', '"version": str(version)}'))
    registry = second / "ex03_registry.py"
    registry.write_text(registry.read_text().replace("import mlflow\n", "import mlflow\nimport mlflow_helpers_never_installed\n", 1))
    env = {"XDG_CACHE_HOME": str(tmp / "cache")}
    return {name: grade(folder, *SELECTION, cwd=work, env=env, out=tmp / f"{name}.json")
            for name, folder in (("first", first), ("second", second))}


def test_skops_refusal_names_cloudpickle(learners):
    graded = learners["first"]
    assert graded.statuses()["ex02_models.log_model"] == "error"
    said = outputs(graded, "ex02_models.log_model")
    assert 'serialization_format="cloudpickle"' in said.split("\nHint: ")[0], said  # the message itself
    assert 'serialization_format=\\"cloudpickle\\"' not in said and 'Hint: ' in said
    assert 'serialization_format="cloudpickle"' in said.split("\nHint: ")[1], said  # and the hint


def test_returning_a_run_says_return_its_id(learners):
    said = outputs(learners["first"], "ex01_tracking.find_best_run")
    assert "returned a Run object: return its id, `run.info.run_id`" in said, said
    assert "not plain data" not in said


def test_wrong_ranking_shows_the_metric_values(learners):
    graded = learners["second"]
    said = outputs(graded, "ex01_tracking.find_best_run: best finished")
    # Both runs named with their value of the metric, so the learner sees the ranking is reversed.
    values = re.findall(r"\((\w+)=(\d\.\d+)\)", said)
    assert len(values) == 2 and values[0][0] == values[1][0] and float(values[0][1]) > float(values[1][1]), said


def test_practice_names_the_one_condition_that_fails(learners):
    said = outputs(learners["first"], "ex04_practice.run_practice: candidate runs")
    assert "of the 3 runs, 3 lack a model with a signature" in said, said
    assert "lack a FINISHED status" not in said and "lack an accuracy metric" not in said


def test_practice_hint_avoids_the_set_experiment_trap(learners):
    hint = outputs(learners["first"], "ex04_practice.run_practice").split("Hint: ")[1]
    assert "get_experiment_by_name" in hint and "set_experiment" not in hint, hint


def test_a_version_returned_as_a_string_says_return_an_int(learners):
    graded = learners["second"]
    said = outputs(graded, "ex04_practice.run_practice")
    assert "return it as an int, int(model_version.version)" in said and "'1', a str" in said, said
    assert graded.scores()["ex04_practice.run_practice"] == 3  # the candidate runs are right


def test_deprecated_artifact_path_is_a_note_and_costs_nothing(learners):
    graded = learners["second"]
    assert graded.scores()["ex02_models.log_model"] == catalogue.load().exercise("ex02_models", "log_model").points
    note = "MLflow warned during your call: `artifact_path` is deprecated. Please use `name` instead."
    assert note in outputs(graded, "ex02_models.log_model")
    assert graded.exercises["ex02_models.log_model"]["notes"] == [note]
    assert f"Note: {note}" in " ".join(graded.output.split())


def test_a_syntax_error_is_reported_once_with_file_line_and_caret(learners):
    graded = learners["first"]
    broken = graded.results["extra_data"]["broken_modules"]
    assert set(broken) == {"ex03_registry"}
    problem = broken["ex03_registry"]
    assert problem["error"] == "SyntaxError: invalid syntax" and problem["text"].startswith("def set_alias(")
    assert graded.output.count("SyntaxError") == 1, graded.output
    summary = graded.output.split("MLflow exercise kit · seed")[1]
    line, column = problem["line"], problem["column"]
    assert f"ex03_registry.py (line {line}) cannot be imported: SyntaxError: invalid syntax" in summary
    code_line = next(l for l in summary.splitlines() if l.strip().startswith(f"{line} | def set_alias("))
    caret_line = summary.splitlines()[summary.splitlines().index(code_line) + 1]
    assert caret_line.index("^") == code_line.index("def set_alias(") + column - 1, summary
    assert f"Next: fix the syntax error in {graded.results['extra_data']['target']}/ex03_registry.py, line {line}" in summary
    for key, result in graded.exercises.items():
        if key.startswith("ex03_registry."):
            assert result["status"] == "error" and "cannot be imported" in outputs(graded, key), key
            assert "Hint:" not in outputs(graded, key), "a broken module's checks get no unrelated hint"


def test_an_import_error_is_reported_once_at_its_line(learners):
    graded = learners["second"]
    problem = graded.results["extra_data"]["broken_modules"]["ex03_registry"]
    assert problem["error"] == "ModuleNotFoundError: No module named 'mlflow_helpers_never_installed'"
    assert problem["text"] == "import mlflow_helpers_never_installed" and problem["line"] > 1
    assert graded.statuses()["ex03_registry.set_alias"] == "error"
    assert graded.statuses()["ex03_registry.annotate_version"] == "not_attempted"  # a stub needs no import
    assert graded.output.count("No module named 'mlflow_helpers_never_installed'") == 1, graded.output
    assert "fails when it is imported" in graded.output.split("Next:")[1]


def test_no_message_names_a_temporary_path(learners):
    for graded in learners.values():
        texts = [graded.output, *(t["output"] for t in graded.results["tests"]),
                 str(graded.results["extra_data"]["broken_modules"])]
        for text in texts:
            assert "mlflow-kit-" not in text and "/dev/shm" not in text, text
    said = outputs(learners["first"], "ex02_models.load_local")
    assert "the store is sqlite:///<grader's temporary store>/mlflow.db" in said, said
    assert "no model at <grader's temporary store>/saved-" in said, said
