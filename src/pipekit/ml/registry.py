"""Versioned model folders: joblib model + metadata sidecar, checked loading, and the "current" pointer."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from pipekit.errors import ModelError
from pipekit.io.atomic import atomic_path, atomic_write_text, sha256_file
from pipekit.ml.train import Metrics

log = logging.getLogger(__name__)

MODEL_FILE = "model.joblib"
METADATA_FILE = "metadata.json"
METRICS_FILE = "metrics.json"
PLOT_FILE = "confusion_matrix.png"
CURRENT_FILE = "current.json"
VERSIONS_DIR = "versions"
#: Libraries whose exact version must match for a pickled pipeline to load safely.
CHECKED_LIBRARIES = ("scikit-learn", "joblib", "numpy")


def library_versions() -> dict[str, str]:
    """Versions of Python and the libraries a saved model depends on."""
    found = {"python": platform.python_version()}
    for name in (*CHECKED_LIBRARIES, "pandas"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def version_id(data_sha256: str, config: dict[str, Any], libraries: dict[str, str]) -> str:
    """Deterministic version name: the same data, config and libraries give the same folder (idempotent re-runs)."""
    key = json.dumps({"data": data_sha256, "config": config, "libraries": libraries}, sort_keys=True)
    return "iris-" + hashlib.sha256(key.encode()).hexdigest()[:12]


def read_metadata(version_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The sidecar of a model version folder."""
    path = Path(version_dir) / METADATA_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ModelError(
            f"{version_dir} is not a model version folder: {METADATA_FILE} is missing.",
            hint="Pass a folder created by `pipekit ml train` (or the models folder, to use the current model).",
        ) from exc
    except json.JSONDecodeError as exc:
        raise ModelError(f"{path} is not valid JSON ({exc}).", hint="Retrain: pipekit ml train CSV") from exc


def write_metadata(version_dir: str | os.PathLike[str], metadata: dict[str, Any]) -> Path:
    """Write the sidecar atomically."""
    return atomic_write_text(
        Path(version_dir) / METADATA_FILE, json.dumps(metadata, indent=2, default=str) + "\n"
    )


def save_model(model: Any, version_dir: str | os.PathLike[str], metadata: dict[str, Any]) -> Path:
    """Dump ``model`` with joblib and write its sidecar (with the model's sha256) into ``version_dir``."""
    import joblib

    version_dir = Path(version_dir)
    with atomic_path(version_dir / MODEL_FILE) as tmp:
        joblib.dump(model, tmp)
    metadata = {**metadata, "model_file": MODEL_FILE, "model_sha256": sha256_file(version_dir / MODEL_FILE)}
    write_metadata(version_dir, metadata)
    return version_dir / MODEL_FILE


def is_complete(version_dir: str | os.PathLike[str]) -> bool:
    """True when the folder holds a model whose sha256 matches its sidecar."""
    version_dir = Path(version_dir)
    try:
        meta = json.loads((version_dir / METADATA_FILE).read_text(encoding="utf-8"))
        return sha256_file(version_dir / MODEL_FILE) == meta.get("model_sha256")
    except (OSError, ValueError):
        return False


def resolve_model_dir(path: str | os.PathLike[str]) -> Path:
    """A model version folder from either that folder or a models folder (then its current model)."""
    path = Path(path)
    if (path / METADATA_FILE).is_file():
        return path
    current = read_current(path)
    if current is not None:
        return path / VERSIONS_DIR / current["version"]
    if not path.exists():
        raise FileNotFoundError(2, "No such file or directory", str(path))
    raise ModelError(
        f"{path} holds no model: neither {METADATA_FILE} nor {CURRENT_FILE} is there.",
        hint="Train one first: pipekit ml train CSV --models-dir DIR",
    )


@dataclass(frozen=True)
class LoadedModel:
    """A model and its sidecar."""

    model: Any
    metadata: dict[str, Any]
    path: Path


def load_model(path: str | os.PathLike[str], *, allow_version_mismatch: bool = False) -> LoadedModel:
    """Load a model after checking its file's sha256 and that the sidecar's library versions match these."""
    import joblib

    version_dir = resolve_model_dir(path)
    meta = read_metadata(version_dir)
    model_path = version_dir / meta.get("model_file", MODEL_FILE)
    if not model_path.is_file():
        raise ModelError(f"{model_path} is missing.", hint="Retrain: pipekit ml train CSV")
    # Unpickling runs code: refuse a file that is not the one the sidecar describes.
    if sha256_file(model_path) != meta.get("model_sha256"):
        raise ModelError(
            f"{model_path} does not match the sha256 in its {METADATA_FILE}; it was changed or truncated.",
            hint="Retrain (pipekit ml train CSV) or restore the folder from a backup.",
        )
    saved = meta.get("libraries", {})
    here = library_versions()
    mismatched = {
        name: (saved.get(name), here[name]) for name in CHECKED_LIBRARIES if saved.get(name) != here[name]
    }
    if mismatched:
        detail = ", ".join(f"{n} saved with {s} but {h} is installed" for n, (s, h) in mismatched.items())
        if not allow_version_mismatch:
            raise ModelError(
                f"{version_dir}: library versions differ ({detail}).",
                hint="Install the saved versions (pip install "
                + " ".join(f"{n}=={s}" for n, (s, _) in mismatched.items() if s)
                + "), retrain with pipekit ml train, or pass allow_version_mismatch=True at your own risk.",
            )
        log.warning("loading %s despite library version differences: %s", version_dir, detail)
    return LoadedModel(joblib.load(model_path), meta, version_dir)


def plot_confusion_matrix(metrics: Metrics, target: str | os.PathLike[str], title: str = "") -> Path:
    """Write the confusion matrix as a PNG (matplotlib's Agg canvas, no display, no pyplot state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    labels = [label.removeprefix("Iris-") for label in metrics.labels]
    matrix = metrics.confusion_matrix
    fig = Figure(figsize=(4.8, 4.2), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or f"accuracy {metrics.accuracy:.3f}, macro F1 {metrics.f1_macro:.3f}", fontsize=10)
    top = max((max(row) for row in matrix), default=0)
    for i, row in enumerate(matrix):
        for j, value in enumerate(row):
            ax.text(j, i, str(value), ha="center", va="center", color="white" if value > top / 2 else "black")
    fig.tight_layout()
    with atomic_path(target) as tmp:
        fig.savefig(tmp, format="png")
    return Path(target)


def read_current(models_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The current-model pointer of ``models_dir``, or None before the first promotion."""
    path = Path(models_dir) / CURRENT_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except json.JSONDecodeError as exc:
        raise ModelError(
            f"{path} is not valid JSON ({exc}).", hint="Restore it or delete it to re-promote."
        ) from exc


@dataclass(frozen=True)
class PromotionDecision:
    """Whether a version became current, and the scores compared on the same test split."""

    version: str
    promoted: bool
    reason: str
    candidate: dict[str, float]
    current_version: str | None = None
    current: dict[str, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def set_current(
    models_dir: str | os.PathLike[str], version: str, metrics: Metrics, previous: str | None
) -> Path:
    """Point ``current.json`` at ``version`` atomically, remembering the previous one (whose folder is kept)."""
    pointer = {
        "version": version,
        "path": f"{VERSIONS_DIR}/{version}",
        "promoted_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "accuracy": metrics.accuracy,
        "f1_macro": metrics.f1_macro,
        "previous": previous,
    }
    return atomic_write_text(Path(models_dir) / CURRENT_FILE, json.dumps(pointer, indent=2) + "\n")
