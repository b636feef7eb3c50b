"""Typed settings for the Iris training workflow, resolved once from DAG params, env vars or CLI options."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipekit.errors import ConfigError, StorageError
from pipekit.ml.iris import IRIS_SLUG
from pipekit.ml.train import TrainingConfig

#: Environment variables that move data and models out of the DAG folder (e.g. when it is read-only).
DATA_DIR_ENV = "PIPEKIT_ML_DATA_DIR"
MODELS_DIR_ENV = "PIPEKIT_ML_MODELS_DIR"


@dataclass(frozen=True)
class IrisSettings:
    """Where data and models live, which dataset to fetch, whether to fall back offline, how to train."""

    data_dir: Path
    models_dir: Path
    slug: str = IRIS_SLUG
    offline_fallback: bool = False
    kaggle_conn_id: str = "kaggle_default"
    training: TrainingConfig = field(default_factory=TrainingConfig)


def make_staging_dir(parent: Path, prefix: str, env_name: str) -> Path:
    """Create ``parent`` and a private staging folder in it; a read-only location is a clear StorageError."""
    import tempfile

    try:
        parent.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    except OSError as exc:
        raise StorageError(
            f"Cannot write to {parent}: {exc.strerror or exc}.",
            hint=f"Point {env_name} (or the matching DAG param / CLI option) at a writable folder; "
            "Airflow 3 DAG bundles can be read-only, so the DAG folder may not be writable.",
        ) from exc


def _as_bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off", ""}:
        return False
    raise ConfigError(f"Parameter {name!r} must be true or false, got {value!r}.")


def settings_from_params(params: Mapping[str, Any], dag_folder: str | os.PathLike[str]) -> IrisSettings:
    """Resolve DAG params into settings; empty paths default to $PIPEKIT_ML_*_DIR, else data/ and models/ beside the DAG."""
    base = Path(dag_folder)
    data_dir = params.get("data_dir") or os.environ.get(DATA_DIR_ENV) or base / "data"
    models_dir = params.get("models_dir") or os.environ.get(MODELS_DIR_ENV) or base / "models"
    try:
        seed = int(params.get("seed", 42))
        test_size = float(params.get("test_size", 0.2))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"Parameters seed/test_size must be numbers: {exc}.") from exc
    if not 0.05 <= test_size <= 0.5:
        raise ConfigError(f"Parameter test_size must be between 0.05 and 0.5, got {test_size}.")
    slug = str(params.get("slug") or IRIS_SLUG)
    if slug.count("/") != 1:
        raise ConfigError(f"Parameter slug must look like owner/dataset, got {slug!r}.")
    return IrisSettings(
        data_dir=Path(data_dir),
        models_dir=Path(models_dir),
        slug=slug,
        offline_fallback=_as_bool(params.get("offline_fallback", False), "offline_fallback"),
        kaggle_conn_id=str(params.get("kaggle_conn_id") or "kaggle_default"),
        training=TrainingConfig(seed=seed, test_size=test_size),
    )
