"""Single-bug variants of tests/submissions/independent: each breaks exactly one function."""
from dataclasses import dataclass


@dataclass(frozen=True)
class Mutant:
    id: str          # short slug, unique, e.g. "log_run-params-not-logged"
    module: str      # e.g. "ex01_tracking"
    function: str    # the one function it breaks, e.g. "log_run"
    find: str        # exact text that occurs EXACTLY ONCE in independent/<module>.py, inside that function
    replace: str     # what replaces it
    why: str         # one sentence: the learner's mistake


MUTANTS = [
    # ---------------------------------------------------------------- ex01_tracking
    Mutant(
        id="get_or_create_experiment-deleted-not-restored",
        module="ex01_tracking",
        function="get_or_create_experiment",
        find="        client.restore_experiment(experiment.experiment_id)\n",
        replace="        pass  # the id is returned, the experiment stays deleted\n",
        why="Finds the deleted experiment by name and returns its id without restoring it.",
    ),
    Mutant(
        id="get_or_create_experiment-tags-dropped",
        module="ex01_tracking",
        function="get_or_create_experiment",
        find="return client.create_experiment(name, tags=tags)",
        replace="return client.create_experiment(name)",
        why="Creates the experiment but forgets to pass the tags.",
    ),
    Mutant(
        id="log_run-params-not-logged",
        module="ex01_tracking",
        function="log_run",
        find="        mlflow.log_params(params)\n        mlflow.log_metrics(metrics)\n",
        replace="        mlflow.log_metrics(metrics)\n",
        why="Logs the metrics and tags but never the params.",
    ),
    Mutant(
        id="log_run-run-name-ignored",
        module="ex01_tracking",
        function="log_run",
        find="mlflow.start_run(experiment_id=experiment_id, run_name=run_name)",
        replace="mlflow.start_run(experiment_id=experiment_id)",
        why="Accepts run_name but does not pass it to start_run, so MLflow makes up a name.",
    ),
    Mutant(
        id="log_run-tags-as-params",
        module="ex01_tracking",
        function="log_run",
        find="            mlflow.set_tags(tags)\n",
        replace="            mlflow.log_params(tags)\n",
        why="Confuses tags with params and logs the tags with log_params.",
    ),
    Mutant(
        id="log_metric_history-steps-from-1",
        module="ex01_tracking",
        function="log_metric_history",
        find="enumerate(values)",
        replace="enumerate(values, start=1)",
        why="Counts steps 1..n instead of 0..n-1.",
    ),
    Mutant(
        id="log_metric_history-run-left-active",
        module="ex01_tracking",
        function="log_metric_history",
        find=(
            "    with mlflow.start_run(experiment_id=experiment_id) as run:\n"
            "        for step, value in enumerate(values):\n"
            "            mlflow.log_metric(key, value, step=step)\n"
        ),
        replace=(
            "    run = mlflow.start_run(experiment_id=experiment_id)\n"
            "    for step, value in enumerate(values):\n"
            "        mlflow.log_metric(key, value, step=step)\n"
        ),
        why="Calls mlflow.start_run() without a with-block and never ends the run, leaving it RUNNING.",
    ),
    Mutant(
        id="log_evaluation-f1-weighted",
        module="ex01_tracking",
        function="log_evaluation",
        find='f1 = f1_score(y_true, y_pred, average="macro")',
        replace='f1 = f1_score(y_true, y_pred, average="weighted")',
        why="Logs the weighted F1 under the name f1_macro.",
    ),
    Mutant(
        id="log_evaluation-confusion-args-swapped",
        module="ex01_tracking",
        function="log_evaluation",
        find="matrix = confusion_matrix(y_true, y_pred, labels=labels)",
        replace="matrix = confusion_matrix(y_pred, y_true, labels=labels)",
        why="Passes predictions and truth to confusion_matrix in the wrong order, transposing the matrix.",
    ),
    Mutant(
        id="train_and_track-train-accuracy",
        module="ex01_tracking",
        function="train_and_track",
        find='mlflow.log_metric("accuracy", accuracy_score(y_test, test_pred))',
        replace='mlflow.log_metric("accuracy", accuracy_score(y_train, model.predict(X_train)))',
        why="Logs the training-set accuracy instead of the test-set accuracy.",
    ),
    Mutant(
        id="train_and_track-eval-context-wrong",
        module="ex01_tracking",
        function="train_and_track",
        find='context="evaluation"',
        replace='context="testing"',
        why="Logs the test set with context 'testing' instead of 'evaluation'.",
    ),
    Mutant(
        id="train_and_track-test-dataset-is-train",
        module="ex01_tracking",
        function="train_and_track",
        find='test_ds = mlflow.data.from_pandas(test_frame, targets=target, name="test")',
        replace='test_ds = mlflow.data.from_pandas(train_frame, targets=target, name="test")',
        why="Copy-pastes the dataset line and logs the training frame as the evaluation dataset.",
    ),
    Mutant(
        id="train_with_autolog-left-on",
        module="ex01_tracking",
        function="train_with_autolog",
        find="        mlflow.sklearn.autolog(disable=True)\n",
        replace="        pass  # autologging stays on\n",
        why="Turns autologging on and never turns it off, so later fits keep logging runs.",
    ),
    Mutant(
        id="train_with_autolog-no-model",
        module="ex01_tracking",
        function="train_with_autolog",
        find="    mlflow.sklearn.autolog()\n",
        replace="    mlflow.sklearn.autolog(log_models=False)\n",
        why="Copies an autolog call with log_models=False, so no model is logged.",
    ),
    Mutant(
        id="find_best_run-includes-failed",
        module="ex01_tracking",
        function="find_best_run",
        find="filter_string=\"attributes.status = 'FINISHED'\",",
        replace='filter_string="",',
        why="Searches all runs without filtering on status, so a FAILED run can win.",
    ),
    Mutant(
        id="find_best_run-includes-deleted",
        module="ex01_tracking",
        function="find_best_run",
        find="run_view_type=ViewType.ACTIVE_ONLY,",
        replace="run_view_type=ViewType.ALL,",
        why="Searches with ViewType.ALL, so a deleted run can win.",
    ),
    Mutant(
        id="find_best_run-ignores-minimize",
        module="ex01_tracking",
        function="find_best_run",
        find="elif not maximize and value < best_value:",
        replace="elif not maximize and value > best_value:",
        why="Copy-pastes the maximize comparison, so maximize=False still returns the largest value.",
    ),
    Mutant(
        id="tune_hyperparameters-not-nested",
        module="ex01_tracking",
        function="tune_hyperparameters",
        find='experiment_id=experiment_id, run_name=f"trial-{index}", nested=True',
        replace='experiment_id=experiment_id, run_name=f"trial-{index}"',
        why="Forgets nested=True when starting the child runs inside the parent run.",
    ),
    Mutant(
        id="tune_hyperparameters-best-params-unprefixed",
        module="ex01_tracking",
        function="tune_hyperparameters",
        find='mlflow.log_params({f"best_{k}": v for k, v in best_params.items()})',
        replace="mlflow.log_params(best_params)",
        why="Logs the winning params on the parent under their plain names instead of best_<name>.",
    ),
    Mutant(
        id="tune_hyperparameters-keeps-worst",
        module="ex01_tracking",
        function="tune_hyperparameters",
        find="if best_accuracy is None or accuracy > best_accuracy:",
        replace="if best_accuracy is None or accuracy < best_accuracy:",
        why="Uses the wrong comparison when tracking the best child, so the parent reports the worst one.",
    ),
    # ---------------------------------------------------------------- ex02_models
    Mutant(
        id="log_model-signature-args-swapped",
        module="ex02_models",
        function="log_model",
        find="signature = infer_signature(X_example, model.predict(X_example))",
        replace="signature = infer_signature(model.predict(X_example), X_example)",
        why="Passes the predictions as the model input to infer_signature, so the signature's inputs are wrong.",
    ),
    Mutant(
        id="log_model-no-input-example",
        module="ex02_models",
        function="log_model",
        find='            input_example=X_example,\n            serialization_format="cloudpickle",\n',
        replace='            serialization_format="cloudpickle",\n',
        why="Logs the model without an input example.",
    ),
    Mutant(
        id="save_local-nested-folder",
        module="ex02_models",
        function="save_local",
        find='mlflow.sklearn.save_model(model, path, serialization_format="cloudpickle")',
        replace='mlflow.sklearn.save_model(model, f"{path}/model", serialization_format="cloudpickle")',
        why="Saves into a 'model' sub-folder of path, so path/MLmodel does not exist.",
    ),
    Mutant(
        id="load_local-returns-pyfunc",
        module="ex02_models",
        function="load_local",
        find="return mlflow.sklearn.load_model(path)",
        replace="return mlflow.pyfunc.load_model(path)",
        why="Loads with the generic pyfunc flavor instead of the native sklearn flavor.",
    ),
    Mutant(
        id="log_threshold_model-strict-greater",
        module="ex02_models",
        function="log_threshold_model",
        find="return (proba >= self.threshold).astype(int)",
        replace="return (proba > self.threshold).astype(int)",
        why="Uses > instead of >= so a probability equal to the threshold is labelled 0.",
    ),
    Mutant(
        id="log_threshold_model-ignores-threshold",
        module="ex02_models",
        function="log_threshold_model",
        find=(
            "            proba = self.classifier.predict_proba(model_input)[:, 1]\n"
            "            return (proba >= self.threshold).astype(int)\n"
        ),
        replace="            return self.classifier.predict(model_input)\n",
        why="Wraps the classifier but calls predict(), which thresholds at 0.5 whatever threshold was given.",
    ),
    # ---------------------------------------------------------------- ex03_registry
    Mutant(
        id="register_run_model-returns-str",
        module="ex03_registry",
        function="register_run_model",
        find="return int(version.version)",
        replace="return str(version.version)",
        why="Returns the version number as a string instead of an int.",
    ),
    Mutant(
        id="register_run_model-ignores-artifact-name",
        module="ex03_registry",
        function="register_run_model",
        find='f"runs:/{run_id}/{artifact_name}"',
        replace='f"runs:/{run_id}/model"',
        why="Hard-codes the artifact name 'model' instead of using artifact_name.",
    ),
    Mutant(
        id="annotate_version-description-on-registered-model",
        module="ex03_registry",
        function="annotate_version",
        find="client.update_model_version(model_name, str(version), description=description)",
        replace="client.update_registered_model(model_name, description=description)",
        why="Sets the description on the registered model rather than on the version.",
    ),
    Mutant(
        id="annotate_version-tags-on-registered-model",
        module="ex03_registry",
        function="annotate_version",
        find="client.set_model_version_tag(model_name, str(version), key, value)",
        replace="client.set_registered_model_tag(model_name, key, value)",
        why="Tags the registered model rather than the version.",
    ),
    Mutant(
        id="set_alias-as-version-tag",
        module="ex03_registry",
        function="set_alias",
        find="MlflowClient().set_registered_model_alias(model_name, alias, str(version))",
        replace='MlflowClient().set_model_version_tag(model_name, str(version), "alias", alias)',
        why="Records the alias as a version tag instead of setting a registered-model alias.",
    ),
    Mutant(
        id="load_by_alias-loads-latest",
        module="ex03_registry",
        function="load_by_alias",
        find='f"models:/{model_name}@{alias}"',
        replace='f"models:/{model_name}/latest"',
        why="Loads the latest version instead of the version the alias points at.",
    ),
    Mutant(
        id="promote_if_better-no-archive-tag",
        module="ex03_registry",
        function="promote_if_better",
        find='            client.set_model_version_tag(model_name, holder.version, "status", "archived")\n',
        replace="            pass  # previous champion not tagged\n",
        why="Moves the alias but forgets to tag the previous champion status=archived.",
    ),
    Mutant(
        id="promote_if_better-archives-new-version",
        module="ex03_registry",
        function="promote_if_better",
        find='holder.version, "status", "archived"',
        replace='new_version, "status", "archived"',
        why="Tags the newly promoted version archived instead of the previous holder.",
    ),
    Mutant(
        id="promote_if_better-tie-promotes",
        module="ex03_registry",
        function="promote_if_better",
        find="promote = new_value > old_value",
        replace="promote = new_value >= old_value",
        why="Uses >= so an equal metric counts as better and steals the alias.",
    ),
    Mutant(
        id="promote_if_better-no-challenger",
        module="ex03_registry",
        function="promote_if_better",
        find='        client.set_registered_model_alias(model_name, "challenger", new_version)\n',
        replace="        pass  # challenger never set\n",
        why="Leaves a not-better version without the challenger alias.",
    ),
    # ---------------------------------------------------------------- ex04_practice
    Mutant(
        id="run_practice-registers-last-run",
        module="ex04_practice",
        function="run_practice",
        find='mlflow.register_model(f"runs:/{best_run_id}/model", model_name)',
        replace='mlflow.register_model(f"runs:/{run.info.run_id}/model", model_name)',
        why="Registers the model of the last run of the loop instead of the best run.",
    ),
    Mutant(
        id="run_practice-picks-lowest-accuracy",
        module="ex04_practice",
        function="run_practice",
        find="if best_accuracy is None or accuracy > best_accuracy:",
        replace="if best_accuracy is None or accuracy < best_accuracy:",
        why="Uses the wrong comparison and so crowns the least accurate run.",
    ),
    Mutant(
        id="run_practice-alias-production",
        module="ex04_practice",
        function="run_practice",
        find='client.set_registered_model_alias(model_name, "champion", registered.version)',
        replace='client.set_registered_model_alias(model_name, "production", registered.version)',
        why="Still thinks in stages and names the alias 'production' instead of 'champion'.",
    ),
    # ---------------------------------------------------------------- ex05_serving
    Mutant(
        id="serving_payload-records",
        module="ex05_serving",
        function="serving_payload",
        find='    split = json.loads(X.to_json(orient="split", index=False))\n'
             '    return {"dataframe_split": {"columns": split["columns"], "data": split["data"]}}\n',
        replace='    return {"dataframe_records": json.loads(X.to_json(orient="records"))}\n',
        why="Sends the rows in the records orientation, one JSON object per row, whose column order is not kept.",
    ),
    Mutant(
        id="score_with_server-ignores-http-errors",
        module="ex05_serving",
        function="score_with_server",
        find="    except urllib.error.HTTPError as error:\n"
             "        text = error.read().decode(errors=\"replace\")\n",
        replace="    except urllib.error.HTTPError as error:\n"
                "        return np.asarray([])  # the server said no: carry on with no predictions\n"
                "        text = error.read().decode(errors=\"replace\")\n",
        why="Swallows an HTTP error and returns no predictions instead of raising.",
    ),
    Mutant(
        id="score_with_server-status-without-message",
        module="ex05_serving",
        function="score_with_server",
        find='raise ValueError(f"HTTP {error.code} from the scoring server: {message}") from None',
        replace='raise ValueError(f"HTTP {error.code} from the scoring server") from None',
        why="Raises on an error answer but drops the server's message, which says what was wrong.",
    ),
    Mutant(
        id="serve_command-virtualenv",
        module="ex05_serving",
        function="serve_command",
        find=',\n            "--env-manager", "local"]',
        replace="]",
        why="Leaves out --env-manager local, so MLflow would first build a virtualenv for the model.",
    ),
    Mutant(
        id="serve_command-all-interfaces",
        module="ex05_serving",
        function="serve_command",
        find='"-h", "127.0.0.1"',
        replace='"-h", "0.0.0.0"',
        why="Serves on 0.0.0.0, which opens the model to the whole network.",
    ),
]
