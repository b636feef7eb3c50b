"""pipekit.ml: download a Kaggle dataset with a checksum manifest, train, evaluate and version a model.

Heavy libraries (kaggle, scikit-learn, joblib, matplotlib) are imported inside the functions that need them.
"""

from __future__ import annotations

from pipekit.ml._kaggle import KaggleAuth, KaggleCredentialsError, KaggleUnavailableError
from pipekit.ml.dataset import (
    DatasetManifest,
    ValidationReport,
    check_iris_csv,
    download_dataset,
    read_manifest,
    validate_iris_csv,
)
from pipekit.ml.pipeline import (
    TrainingResult,
    evaluate_step,
    predict_csv,
    promote_step,
    run_training,
    train_step,
)
from pipekit.ml.registry import LoadedModel, PromotionDecision, load_model, read_current
from pipekit.ml.train import Metrics, TrainingConfig

__all__ = [
    "DatasetManifest",
    "KaggleAuth",
    "KaggleCredentialsError",
    "KaggleUnavailableError",
    "LoadedModel",
    "Metrics",
    "PromotionDecision",
    "TrainingConfig",
    "TrainingResult",
    "ValidationReport",
    "check_iris_csv",
    "download_dataset",
    "evaluate_step",
    "load_model",
    "predict_csv",
    "promote_step",
    "read_current",
    "read_manifest",
    "run_training",
    "train_step",
    "validate_iris_csv",
]
