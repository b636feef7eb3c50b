"""The ML workflow's steps over paths (train -> evaluate -> promote), shared by the Airflow DAG and the CLI."""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from pipekit.errors import ModelError, ValidationError
from pipekit.io.atomic import atomic_write_text, sha256_file
from pipekit.ml.iris import FEATURES
from pipekit.ml.registry import (
    METRICS_FILE,
    PLOT_FILE,
    VERSIONS_DIR,
    PromotionDecision,
    is_complete,
    library_versions,
    load_model,
    plot_confusion_matrix,
    read_current,
    read_metadata,
    save_model,
    set_current,
    version_id,
    write_metadata,
)
from pipekit.ml.settings import MODELS_DIR_ENV, make_staging_dir
from pipekit.ml.train import (
    Metrics,
    TrainingConfig,
    at_least_as_good,
    compare_candidates,
    evaluate,
    fit_best,
    rows_by_id,
    split_iris,
)

log = logging.getLogger(__name__)


def _read_iris(csv_path: Path) -> pd.DataFrame:
    return pd.read_csv(csv_path)


def train_step(
    csv_path: str | os.PathLike[str], models_dir: str | os.PathLike[str], config: TrainingConfig | None = None
) -> Path:
    """Compare the candidates, fit the best and save it with its sidecar in a new version folder; return it.

    The folder name is derived from the data's sha256, the config and the library versions, so a
    re-run on the same inputs returns the existing folder instead of training again.
    """
    config = config or TrainingConfig()
    csv_path = Path(csv_path)
    data_sha256 = sha256_file(csv_path)
    libraries = library_versions()
    version = version_id(data_sha256, config.to_dict(), libraries)
    versions = Path(models_dir) / VERSIONS_DIR
    final = versions / version
    if is_complete(final):
        log.info("model version %s already exists for this data and config; not retraining", version)
        return final

    iris = _read_iris(csv_path)
    split = split_iris(iris, config)
    scores = compare_candidates(split.x_train, split.y_train, config)
    best = scores[0]
    model = fit_best(split.x_train, split.y_train, best, config)
    log.info("cv %s: %s", config.scoring, ", ".join(f"{s.name} {s.mean:.3f}±{s.std:.3f}" for s in scores))

    metadata: dict[str, Any] = {
        "version": version,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "data": {"path": str(csv_path.resolve()), "sha256": data_sha256, "rows": len(iris)},
        "config": config.to_dict(),
        "cv": [{"name": s.name, "mean": s.mean, "std": s.std, "folds": list(s.fold_scores)} for s in scores],
        "chosen": {"name": best.name, "params": config.to_dict()["candidates"][best.name]},
        "features": list(FEATURES),
        "classes": [str(c) for c in model.classes_],
        "libraries": libraries,
        "test_ids": list(split.test_ids),
        "metrics": None,
    }
    # Build the folder under a temporary name and rename it: readers never see half a version.
    staging = make_staging_dir(versions, f".{version}.", MODELS_DIR_ENV)
    try:
        save_model(model, staging, metadata)
        if final.exists():  # an incomplete leftover from a crashed run
            shutil.rmtree(final)
        os.replace(staging, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final


def _test_rows(version_dir: Path, csv_path: Path, metadata: dict[str, Any]) -> tuple[pd.DataFrame, pd.Series]:
    if sha256_file(csv_path) != metadata["data"]["sha256"]:
        raise ModelError(
            f"{csv_path} changed since model {metadata['version']} was trained (sha256 differs).",
            hint="Re-run training on the current file.",
        )
    return rows_by_id(_read_iris(csv_path), metadata["test_ids"])


def evaluate_step(version_dir: str | os.PathLike[str], csv_path: str | os.PathLike[str]) -> Metrics:
    """Score the version on its hold-out rows; write metrics.json, the confusion-matrix PNG and the sidecar."""
    loaded = load_model(version_dir)
    x_test, y_test = _test_rows(loaded.path, Path(csv_path), loaded.metadata)
    metrics = evaluate(loaded.model, x_test, y_test)
    payload = {
        "version": loaded.metadata["version"],
        "model": loaded.metadata["chosen"]["name"],
        **metrics.to_dict(),
    }
    atomic_write_text(loaded.path / METRICS_FILE, json.dumps(payload, indent=2) + "\n")
    plot_confusion_matrix(
        metrics,
        loaded.path / PLOT_FILE,
        title=f"{loaded.metadata['chosen']['name']}: accuracy {metrics.accuracy:.3f}, F1 {metrics.f1_macro:.3f}",
    )
    write_metadata(loaded.path, {**loaded.metadata, "metrics": metrics.to_dict()})
    return metrics


def promote_step(
    models_dir: str | os.PathLike[str], version_dir: str | os.PathLike[str], csv_path: str | os.PathLike[str]
) -> PromotionDecision:
    """Make the version current if it scores at least as well as the current model on the same test split."""
    version_dir = Path(version_dir)
    loaded = load_model(version_dir)
    meta = loaded.metadata
    if meta.get("metrics") is None:
        raise ModelError(f"{version_dir} has not been evaluated yet.", hint="Run the evaluate step first.")
    x_test, y_test = _test_rows(version_dir, Path(csv_path), meta)
    candidate = evaluate(loaded.model, x_test, y_test)
    version = meta["version"]
    scores = {"accuracy": candidate.accuracy, "f1_macro": candidate.f1_macro}
    pointer = read_current(models_dir)

    if pointer is None:
        set_current(models_dir, version, candidate, previous=None)
        return PromotionDecision(version, True, "no current model yet", scores)
    if pointer["version"] == version:
        return PromotionDecision(version, True, "already current", scores, version, scores)

    current_dir = Path(models_dir) / VERSIONS_DIR / pointer["version"]
    try:
        current_model = load_model(current_dir).model
    except ModelError as exc:
        # A current model that cannot be loaded here (changed libraries, damaged file) cannot serve anyway.
        set_current(models_dir, version, candidate, previous=pointer["version"])
        return PromotionDecision(
            version,
            True,
            f"current model {pointer['version']} cannot be loaded: {exc.message}",
            scores,
            pointer["version"],
        )
    baseline = evaluate(current_model, x_test, y_test)
    current_scores = {"accuracy": baseline.accuracy, "f1_macro": baseline.f1_macro}
    if at_least_as_good(candidate, baseline):
        set_current(models_dir, version, candidate, previous=pointer["version"])
        return PromotionDecision(
            version,
            True,
            "at least as good as the current model on the same test split",
            scores,
            pointer["version"],
            current_scores,
        )
    return PromotionDecision(
        version,
        False,
        "worse than the current model on the same test split; current kept",
        scores,
        pointer["version"],
        current_scores,
    )


@dataclass(frozen=True)
class TrainingResult:
    """What one full training run produced."""

    version_dir: Path
    metrics: Metrics
    decision: PromotionDecision | None
    metadata: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        return {
            "version_dir": str(self.version_dir),
            "model": str(self.version_dir / self.metadata.get("model_file", "model.joblib")),
            "metrics_file": str(self.version_dir / METRICS_FILE),
            "plot": str(self.version_dir / PLOT_FILE),
            "chosen": self.metadata["chosen"],
            "cv": self.metadata["cv"],
            "metrics": self.metrics.to_dict(),
            "promotion": self.decision.to_dict() if self.decision else None,
        }


def run_training(
    csv_path: str | os.PathLike[str],
    models_dir: str | os.PathLike[str],
    config: TrainingConfig | None = None,
    *,
    promote: bool = True,
) -> TrainingResult:
    """Validate, train, evaluate and (optionally) promote in one call: what `pipekit ml train` runs."""
    from pipekit.ml.dataset import validate_iris_csv

    validate_iris_csv(csv_path)
    version_dir = train_step(csv_path, models_dir, config)
    metrics = evaluate_step(version_dir, csv_path)
    decision = promote_step(models_dir, version_dir, csv_path) if promote else None
    return TrainingResult(version_dir, metrics, decision, read_metadata(version_dir))


def predict_csv(
    model_path: str | os.PathLike[str],
    csv_path: str | os.PathLike[str],
    *,
    allow_version_mismatch: bool = False,
) -> pd.DataFrame:
    """Predict the species of every row of a CSV with the four feature columns; returns the rows plus predictions."""
    loaded = load_model(model_path, allow_version_mismatch=allow_version_mismatch)
    frame = pd.read_csv(csv_path)
    features = loaded.metadata.get("features", list(FEATURES))
    missing = [c for c in features if c not in frame.columns]
    if missing:
        raise ValidationError(
            f"{csv_path}: missing feature column(s) {missing}.", hint=f"The model needs columns {features}."
        )
    values = frame[features].apply(pd.to_numeric, errors="coerce")
    bad = values.isna().any(axis=1)
    if bad.any():
        lines = ", ".join(str(int(i) + 2) for i in bad[bad].index[:10])
        raise ValidationError(
            f"{csv_path}: {int(bad.sum())} row(s) with empty or non-numeric features (CSV lines {lines}).",
            hint="Fix those rows; predictions need all four measurements.",
        )
    out = frame.copy()
    out["prediction"] = loaded.model.predict(values)
    return out
