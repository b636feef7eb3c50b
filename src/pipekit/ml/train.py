"""Training as pure functions: split, compare candidate pipelines with seeded stratified CV, fit, evaluate."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from pipekit.errors import ModelError
from pipekit.ml.iris import FEATURES, ID_COLUMN, TARGET

#: Candidate classifiers and their parameters; each runs behind a StandardScaler.
DEFAULT_CANDIDATES: dict[str, dict[str, Any]] = {
    "logistic_regression": {"C": 1.0, "max_iter": 1000},
    "k_neighbors": {"n_neighbors": 5},
    "random_forest": {"n_estimators": 50, "max_depth": 4},
}


@dataclass(frozen=True)
class TrainingConfig:
    """Everything that decides the model: the same config and data give the same model."""

    seed: int = 42
    test_size: float = 0.2
    cv_folds: int = 5
    scoring: str = "accuracy"
    candidates: tuple[str, ...] = tuple(DEFAULT_CANDIDATES)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, with each candidate's parameters."""
        data = asdict(self)
        data["candidates"] = {name: DEFAULT_CANDIDATES[name] for name in self.candidates}
        return data


@dataclass(frozen=True)
class Split:
    """A seeded, stratified train/test split; ``test_ids`` names the test rows so the split can be reused."""

    x_train: pd.DataFrame
    x_test: pd.DataFrame
    y_train: pd.Series
    y_test: pd.Series
    test_ids: tuple[int, ...]


@dataclass(frozen=True)
class CandidateScore:
    """Cross-validation result of one candidate pipeline."""

    name: str
    mean: float
    std: float
    fold_scores: tuple[float, ...]


@dataclass(frozen=True)
class Metrics:
    """Hold-out metrics of a fitted model."""

    accuracy: float
    f1_macro: float
    labels: tuple[str, ...]
    confusion_matrix: tuple[tuple[int, ...], ...]
    test_rows: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def build_pipeline(candidate: str, seed: int) -> Any:
    """A scikit-learn Pipeline: StandardScaler then the named classifier."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    if candidate not in DEFAULT_CANDIDATES:
        raise ModelError(
            f"Unknown candidate {candidate!r}.", hint=f"Choose from {', '.join(DEFAULT_CANDIDATES)}."
        )
    params = DEFAULT_CANDIDATES[candidate]
    classifier: Any
    if candidate == "logistic_regression":
        classifier = LogisticRegression(random_state=seed, **params)
    elif candidate == "k_neighbors":
        classifier = KNeighborsClassifier(**params)
    else:
        classifier = RandomForestClassifier(random_state=seed, **params)
    return Pipeline([("scale", StandardScaler()), ("classifier", classifier)])


def split_iris(iris: pd.DataFrame, config: TrainingConfig) -> Split:
    """Split features/labels into a seeded stratified train and test set."""
    from sklearn.model_selection import train_test_split

    ids = (
        iris[ID_COLUMN] if ID_COLUMN in iris.columns else pd.Series(range(1, len(iris) + 1), index=iris.index)
    )
    x_train, x_test, y_train, y_test, _, id_test = train_test_split(
        iris.loc[:, list(FEATURES)],
        iris[TARGET],
        ids,
        test_size=config.test_size,
        stratify=iris[TARGET],
        random_state=config.seed,
    )
    return Split(x_train, x_test, y_train, y_test, tuple(int(i) for i in id_test))


def rows_by_id(iris: pd.DataFrame, test_ids: Sequence[int]) -> tuple[pd.DataFrame, pd.Series]:
    """The rows of ``iris`` whose Id is in ``test_ids``: features and labels, for re-scoring another model."""
    wanted = set(test_ids)
    ids = (
        iris[ID_COLUMN] if ID_COLUMN in iris.columns else pd.Series(range(1, len(iris) + 1), index=iris.index)
    )
    rows = iris[ids.isin(wanted)]
    return rows.loc[:, list(FEATURES)], rows[TARGET]


def compare_candidates(
    x_train: pd.DataFrame, y_train: pd.Series, config: TrainingConfig
) -> list[CandidateScore]:
    """Score every candidate with seeded stratified k-fold CV; best first (ties keep the configured order)."""
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    folds = StratifiedKFold(n_splits=config.cv_folds, shuffle=True, random_state=config.seed)
    scores = []
    for name in config.candidates:
        fold_scores = cross_val_score(
            build_pipeline(name, config.seed), x_train, y_train, cv=folds, scoring=config.scoring
        )
        scores.append(
            CandidateScore(
                name, float(np.mean(fold_scores)), float(np.std(fold_scores)), tuple(map(float, fold_scores))
            )
        )
    # sorted() is stable, so equal means keep the configured order and the choice is deterministic.
    return sorted(scores, key=lambda s: -s.mean)


def fit_best(x_train: pd.DataFrame, y_train: pd.Series, best: CandidateScore, config: TrainingConfig) -> Any:
    """Fit the chosen candidate's pipeline on the whole training set."""
    return build_pipeline(best.name, config.seed).fit(x_train, y_train)


def evaluate(model: Any, x_test: pd.DataFrame, y_test: pd.Series) -> Metrics:
    """Accuracy, macro F1 and the confusion matrix of ``model`` on a held-out set."""
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

    predicted = model.predict(x_test)
    labels = tuple(sorted(map(str, set(y_test) | set(predicted))))
    matrix = confusion_matrix(y_test, predicted, labels=list(labels))
    return Metrics(
        accuracy=float(accuracy_score(y_test, predicted)),
        f1_macro=float(f1_score(y_test, predicted, average="macro", labels=list(labels))),
        labels=labels,
        confusion_matrix=tuple(tuple(int(v) for v in row) for row in matrix),
        test_rows=len(y_test),
    )


def at_least_as_good(candidate: Metrics, current: Metrics) -> bool:
    """Promotion rule: the candidate's accuracy and macro F1 are both >= the current model's."""
    return candidate.accuracy >= current.accuracy and candidate.f1_macro >= current.f1_macro
