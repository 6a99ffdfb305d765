"""Module 3 — the Model Registry. Each class is one function of exercises/ex03_registry.py;
each test is one check, worth the points catalogue.toml gives it.

The grader registers whatever state a check starts from itself (runs with models,
versions, aliases), so each function is graded on its own.
A class's ``scenario`` runs on a background thread, ahead of its tests and beside
other classes' (AUTHORING.md); its tests read what it returned.
"""
from __future__ import annotations


from mlflow.exceptions import MlflowException
from sklearn.linear_model import LogisticRegression

from grader.core import steps
from grader.core.read import assert_same_predictions, show, user_tags
from grader.core.session import Scenario


class Registry:
    """A store with an experiment, data, and helpers to fill the registry."""

    def __init__(self, learner, inputs):
        self.learner, self.inputs = learner, inputs
        self.store = learner.store()
        self.client = self.store.client
        self.experiment_id = self.store.new_experiment(inputs.name("registry"))
        self.data = inputs.classification(2)
        self.model_name = inputs.name("model")

    def model(self, C: float):
        X_train, _, y_train, _ = self.data
        return LogisticRegression(C=C, max_iter=500).fit(X_train, y_train)

    def runs_with_models(self, *runs: dict) -> list[dict]:
        """One run per dict, each logging a model (``model``, default C=1) under ``name``
        with ``metrics``, maybe registered (``register``) and given an ``alias``; made in
        one sandbox call, in order, so versions number as listed."""
        specs = [
            dict(model=run.get("model") or self.model(1.0), name=run.get("name", "model"), metrics=run.get("metrics"),
                 register_as=self.model_name if run.get("register") else None, alias=run.get("alias"))
            for run in runs
        ]
        return self.learner.prepare(self.store, steps.logged_models, self.experiment_id, self.data[0].head(5), specs)

    def version(self, version):
        return self.client.get_model_version(self.model_name, str(version))

    def holder(self, alias: str):
        try:
            return int(self.client.get_registered_model(self.model_name).aliases[alias])
        except (KeyError, MlflowException):
            return None

    def versions(self):
        return sorted(self.client.search_model_versions(f"name = '{self.model_name}'"), key=lambda v: int(v.version))


def returned_version(registry, returned):
    assert isinstance(returned, int) and not isinstance(returned, bool), (
        f"the function should return the version number as an int, but returned {returned!r}"
    )
    try:
        return registry.version(returned)
    except MlflowException:
        raise AssertionError(f"registered model {registry.model_name!r} has no version {returned}") from None


class Test_register_run_model:
    @staticmethod
    def scenario(learner, inputs):
        registry = Registry(learner, inputs)
        artifact_name = inputs.word()
        [made] = registry.runs_with_models(dict(name=artifact_name))
        return Scenario(registry=registry, made=made, call=learner.attempt(registry.store, made["run_id"], registry.model_name, artifact_name))

    def test_version_exists(self, scenario):
        registry, call = scenario.registry, scenario.call
        returned = call.value()
        returned_version(registry, returned)
        count = len(registry.versions())
        assert count == 1, f"registered model {registry.model_name!r} has {count} versions; one registration makes one"

    def test_lineage(self, scenario):
        registry, made, call = scenario.registry, scenario.made, scenario.call
        returned = call.value()
        version = returned_version(registry, returned)
        assert version.run_id == made["run_id"], f"version {returned} links to run {version.run_id!r}, expected {made['run_id']} (register runs:/<run_id>/<name>)"
        assert version.source == made["model_uri"] or version.source.startswith(f"runs:/{made['run_id']}/"), (
            f"version {returned} has source {version.source!r}, which is not the model that run logged ({made['model_uri']})"
        )


class Test_annotate_version:
    @staticmethod
    def scenario(learner, inputs):
        registry = Registry(learner, inputs)
        registry.runs_with_models(dict(register=True), dict(register=True))
        target, other = inputs.rng.sample([1, 2], 2)
        description = f"{inputs.word()} model trained on {inputs.word()} data"
        tags = inputs.tags(3)
        call = learner.attempt(registry.store, registry.model_name, target, description, tags)
        return Scenario(registry=registry, target=target, other=other, description=description, tags=tags, call=call)

    def test_description_and_tags(self, scenario):
        registry, target, other, description, tags = scenario.registry, scenario.target, scenario.other, scenario.description, scenario.tags
        scenario.call.result()
        version = registry.version(target)
        assert version.description == description, f"version {target} has description {version.description!r}, expected {description!r}"
        assert user_tags(version.tags) == tags, f"version {target} has tags {show(user_tags(version.tags))}, expected {show(tags)}"
        untouched = registry.version(other)
        assert not untouched.description and not user_tags(untouched.tags), f"version {other} was changed too; annotate only version {target}"


class Test_set_alias:
    @staticmethod
    def scenario(learner, inputs):
        registry = Registry(learner, inputs)
        registry.runs_with_models(*[dict(register=True)] * 3)
        new = Scenario(alias=inputs.word(), version=inputs.rng.choice([1, 2, 3]))
        new.call = learner.attempt(registry.store, registry.model_name, new.version, new.alias)
        moving = Scenario(alias=f"{inputs.word()}-moving")
        start, moving.end = inputs.rng.sample([1, 2, 3], 2)
        registry.client.set_registered_model_alias(registry.model_name, moving.alias, str(start))
        moving.call = learner.attempt(registry.store, registry.model_name, moving.end, moving.alias)
        moving.holders = [int(v.version) for v in registry.versions() if moving.alias in registry.version(v.version).aliases]
        return Scenario(registry=registry, new=new, moving=moving)

    def test_alias_resolves(self, scenario):
        registry, alias, version = scenario.registry, scenario.new.alias, scenario.new.version
        scenario.new.call.result()
        assert registry.holder(alias) == version, f"alias {alias!r} points at version {registry.holder(alias)}, expected {version}"

    def test_alias_moves(self, scenario):
        registry, alias, end = scenario.registry, scenario.moving.alias, scenario.moving.end
        scenario.moving.call.result()
        assert registry.holder(alias) == end, f"alias {alias!r} points at version {registry.holder(alias)} after moving it to {end}"
        holders = scenario.moving.holders
        assert holders == [end], f"versions {holders} hold alias {alias!r}; only version {end} should"


class Test_load_by_alias:
    @staticmethod
    def scenario(learner, inputs):
        registry = Registry(learner, inputs)
        X = registry.data[1]
        # Three versions that predict differently; the alias is on an older one, so loading
        # the latest version (or a hard-coded one) shows.
        models = [registry.model(C) for C in (0.001, 100.0)]
        models.append(LogisticRegression(C=1.0, max_iter=500).fit(registry.data[0], 1 - registry.data[2]))
        registry.runs_with_models(*[dict(model=model, register=True) for model in models])
        chosen, alias = inputs.rng.choice([1, 2]), inputs.word()
        if (models[chosen - 1].predict(X) == models[2].predict(X)).all():
            chosen = 3 - chosen
        registry.client.set_registered_model_alias(registry.model_name, alias, str(chosen))
        call = learner.attempt(registry.store, registry.model_name, alias, then=(steps.predict_with, X), returns="array")
        return Scenario(call=call, expected=models[chosen - 1].predict(X), alias=alias, chosen=chosen)

    def test_predictions_match_version(self, scenario):
        held = scenario.call.result().array()
        assert_same_predictions(held, scenario.expected, f"the model loaded by alias {scenario.alias!r} (version {scenario.chosen})")


class Test_promote_if_better:
    @staticmethod
    def case(learner, inputs, champion_score=None, challenger_score=0.8):
        """A registry where the champion (if any) scored champion_score, and a new run."""
        registry = Registry(learner, inputs)
        metric, alias = inputs.keys("acc", 1)[0], inputs.word()
        champion = [dict(metrics={metric: champion_score}, register=True, alias=alias)] if champion_score is not None else []
        *_, candidate = registry.runs_with_models(*champion, dict(metrics={metric: challenger_score}))
        call = learner.start(registry.store, registry.model_name, candidate["run_id"], metric, alias)
        return Scenario(registry=registry, alias=alias, candidate=candidate, call=call, score=challenger_score)

    @classmethod
    def scenario(cls, learner, inputs):
        return Scenario(
            first=cls.case(learner, inputs),
            better=cls.case(learner, inputs, champion_score=0.7, challenger_score=0.85),
            worse=cls.case(learner, inputs, champion_score=0.75, challenger_score=0.6),
            tie=cls.case(learner, inputs, champion_score=0.75, challenger_score=0.75),  # not strictly better
        )

    @staticmethod
    def new_version(registry, candidate):
        mine = [v for v in registry.versions() if v.run_id == candidate["run_id"]]
        assert len(mine) == 1, f"{len(mine)} versions of {registry.model_name!r} link to run {candidate['run_id']}; register its model once"
        return int(mine[0].version)

    def test_first_model_promoted(self, scenario):
        case = scenario.first
        registry, alias, candidate, promoted = case.registry, case.alias, case.candidate, case.call.value()
        assert promoted is True, f"with no version holding {alias!r}, the new model must be promoted (return True); got {promoted!r}"
        version = self.new_version(registry, candidate)
        assert registry.holder(alias) == version, f"alias {alias!r} points at version {registry.holder(alias)}, expected the new version {version}"

    def test_better_model_promoted(self, scenario):
        case = scenario.better
        registry, alias, candidate, promoted = case.registry, case.alias, case.candidate, case.call.value()
        assert promoted is True, f"the new run scores 0.85 against the champion's 0.7: it must be promoted (return True); got {promoted!r}"
        version = self.new_version(registry, candidate)
        assert registry.holder(alias) == version, f"alias {alias!r} points at version {registry.holder(alias)}, expected the new version {version}"
        status = registry.version(1).tags.get("status")
        assert status == "archived", f"the previous champion, version 1, has tag status={status!r}; expected 'archived'"
        assert registry.version(version).tags.get("status") != "archived", f"the new champion, version {version}, is tagged archived"

    def test_worse_model_challenger(self, scenario):
        for case in (scenario.worse, scenario.tie):
            registry, alias, candidate, promoted, score = case.registry, case.alias, case.candidate, case.call.value(), case.score
            assert promoted is False, (
                f"the new run scores {score} against the champion's 0.75: not strictly better, so return False; got {promoted!r}"
            )
            version = self.new_version(registry, candidate)
            assert registry.holder(alias) == 1, f"alias {alias!r} moved to version {registry.holder(alias)}; it must stay on version 1"
            assert registry.holder("challenger") == version, (
                f"alias 'challenger' points at version {registry.holder('challenger')}, expected the new version {version}"
            )
            status = registry.version(1).tags.get("status")
            assert status != "archived", "version 1 kept the alias but was tagged status=archived"
