"""Inputs drawn at random from the session seed, so hard-coded answers fail and every run
can be reproduced with ``--seed``. Each exercise draws from its own stream (seed + exercise
name): selecting exercises with ``-k`` does not change the inputs of the others.
"""
from __future__ import annotations

import random
import string

import pandas as pd
from sklearn.datasets import make_classification
from sklearn.model_selection import train_test_split

WORDS = (
    "amber basil cedar delta ember fjord garnet harbor indigo juniper kestrel lagoon "
    "maple nectar onyx pepper quartz raven saffron tundra umber violet willow yarrow zephyr"
).split()


class Inputs:
    def __init__(self, seed: int, scope: str):
        self.rng = random.Random(f"{seed}:{scope}")

    def word(self) -> str:
        return self.rng.choice(WORDS)

    def name(self, prefix: str) -> str:
        suffix = "".join(self.rng.choices(string.ascii_lowercase + string.digits, k=5))
        return f"{prefix}-{self.word()}-{suffix}"

    def keys(self, prefix: str, count: int) -> list[str]:
        """Distinct identifiers such as ``lr_amber``."""
        chosen = self.rng.sample(WORDS, count)
        return [f"{prefix}_{word}" for word in chosen]

    def params(self, count: int = 3) -> dict:
        """Hyper-parameter-like values of mixed types (MLflow stores them as strings)."""
        values = [
            lambda: self.rng.choice([8, 16, 32, 64, 128]),
            lambda: round(self.rng.uniform(0.001, 1.0), 4),
            lambda: self.rng.choice(["adam", "sgd", "lbfgs", "gini", "entropy"]),
            lambda: self.rng.choice([True, False]),
        ]
        return {key: self.rng.choice(values)() for key in self.keys("p", count)}

    def metrics(self, count: int = 3) -> dict[str, float]:
        return {key: round(self.rng.uniform(0, 1), 6) for key in self.keys("m", count)}

    def tags(self, count: int = 2) -> dict[str, str]:
        return {key: self.word() for key in self.keys("t", count)}

    def floats(self, count: int) -> list[float]:
        return [round(self.rng.uniform(-5, 5), 5) for _ in range(count)]

    def seed(self) -> int:
        return self.rng.randrange(2**31 - 1)

    def classification(self, n_classes: int = 2, *, noisy: bool = False):
        """A small tabular data set: ``(X_train, X_test, y_train, y_test)`` as pandas objects.
        ``noisy`` data is hard to separate, so model settings change the scores."""
        n_features = self.rng.randint(4, 7)
        X, y = make_classification(
            n_samples=self.rng.randint(150, 260),
            n_features=n_features,
            n_informative=min(n_features, 3 + n_classes // 2),
            n_redundant=0,
            n_classes=n_classes,
            class_sep=self.rng.uniform(0.2, 0.5) if noisy else self.rng.uniform(0.6, 1.4),
            flip_y=0.15 if noisy else 0.01,
            random_state=self.seed(),
        )
        columns = [f"{word}_{i}" for i, word in enumerate(self.rng.sample(WORDS, n_features))]
        X = pd.DataFrame(X, columns=columns)
        y = pd.Series(y, name="label")
        return tuple(
            train_test_split(
                X, y, test_size=self.rng.choice([0.2, 0.25, 0.3]), random_state=self.seed(), stratify=y
            )
        )

    def logistic_params(self) -> dict:
        return {
            "C": self.rng.choice([0.05, 0.1, 0.3, 1.0, 3.0, 10.0]),
            "max_iter": self.rng.choice([300, 500, 800]),
            "fit_intercept": self.rng.choice([True, False]),
        }

    def forest_params(self) -> dict:
        return {
            "n_estimators": self.rng.randint(5, 15),
            "max_depth": self.rng.randint(2, 6),
            "random_state": self.rng.randrange(1000),
        }
