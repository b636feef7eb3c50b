"""Training pure functions, versioned model folders, checked loading and the promotion rule."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from pipekit.errors import ConfigError, ModelError, StorageError, ValidationError
from pipekit.ml import TrainingConfig, load_model, predict_csv, read_current, run_training
from pipekit.ml.iris import iris_frame
from pipekit.ml.pipeline import evaluate_step, promote_step, train_step
from pipekit.ml.registry import METADATA_FILE, read_metadata, save_model
from pipekit.ml.settings import settings_from_params
from pipekit.ml.train import Metrics, at_least_as_good, compare_candidates, evaluate, fit_best, split_iris


@pytest.fixture(scope="module")
def iris_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("iris") / "Iris.csv"
    iris_frame().to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def trained(iris_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    """One full training run shared by the read-only checks below."""
    models = tmp_path_factory.mktemp("models")
    return models, run_training(iris_csv, models)


def test_split_is_stratified_and_seeded() -> None:
    iris = iris_frame()
    a, b = split_iris(iris, TrainingConfig(seed=7)), split_iris(iris, TrainingConfig(seed=7))
    assert a.test_ids == b.test_ids
    assert len(a.test_ids) == 30
    assert a.y_test.value_counts().tolist() == [10, 10, 10]
    assert split_iris(iris, TrainingConfig(seed=8)).test_ids != a.test_ids


def test_candidates_compared_with_reproducible_cv() -> None:
    split = split_iris(iris_frame(), TrainingConfig())
    first = compare_candidates(split.x_train, split.y_train, TrainingConfig())
    second = compare_candidates(split.x_train, split.y_train, TrainingConfig())
    assert first == second
    assert {s.name for s in first} == {"logistic_regression", "k_neighbors", "random_forest"}
    assert [s.mean for s in first] == sorted((s.mean for s in first), reverse=True)
    assert all(len(s.fold_scores) == 5 for s in first)


def test_run_training_writes_versioned_folder(trained: tuple[Path, object], iris_csv: Path) -> None:
    models, result = trained
    folder = result.version_dir
    assert folder.parent == models / "versions"
    assert {p.name for p in folder.iterdir()} == {
        "model.joblib",
        METADATA_FILE,
        "metrics.json",
        "confusion_matrix.png",
    }
    meta = read_metadata(folder)
    assert set(meta["libraries"]) >= {"python", "scikit-learn", "joblib", "numpy", "pandas"}
    assert meta["data"]["sha256"] == hashlib.sha256(iris_csv.read_bytes()).hexdigest()
    assert meta["config"]["seed"] == 42 and "random_forest" in meta["config"]["candidates"]
    assert meta["chosen"]["name"] == meta["cv"][0]["name"]
    assert meta["metrics"]["accuracy"] > 0.9 and meta["metrics"]["f1_macro"] > 0.9
    metrics = json.loads((folder / "metrics.json").read_text())
    assert sum(map(sum, metrics["confusion_matrix"])) == metrics["test_rows"] == 30
    assert (folder / "confusion_matrix.png").read_bytes()[:4] == b"\x89PNG"
    assert result.decision.promoted and read_current(models)["version"] == meta["version"]


def test_rerun_is_idempotent(trained: tuple[Path, object], iris_csv: Path) -> None:
    models, result = trained
    model_file = result.version_dir / "model.joblib"
    before = model_file.stat().st_mtime_ns
    again = train_step(iris_csv, models)
    assert again == result.version_dir
    assert model_file.stat().st_mtime_ns == before  # not retrained
    decision = promote_step(models, again, iris_csv)
    assert decision.promoted and decision.reason == "already current"


def test_load_model_checks_versions_and_checksum(trained: tuple[Path, object], tmp_path: Path) -> None:
    _, result = trained
    copy = tmp_path / "copy"
    shutil.copytree(result.version_dir, copy)
    assert load_model(copy).model is not None

    meta = json.loads((copy / METADATA_FILE).read_text())
    meta["libraries"]["scikit-learn"] = "0.24.2"
    (copy / METADATA_FILE).write_text(json.dumps(meta))
    with pytest.raises(ModelError, match=r"scikit-learn saved with 0\.24\.2") as info:
        load_model(copy)
    assert "pip install scikit-learn==0.24.2" in info.value.hint
    assert load_model(copy, allow_version_mismatch=True).model is not None

    with (copy / "model.joblib").open("ab") as fh:
        fh.write(b"tampered")
    with pytest.raises(ModelError, match="does not match the sha256"):
        load_model(copy, allow_version_mismatch=True)


def test_worse_model_is_not_promoted_and_previous_is_kept(iris_csv: Path, tmp_path: Path) -> None:
    from sklearn.dummy import DummyClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    models = tmp_path / "models"
    good = run_training(iris_csv, models)
    meta = read_metadata(good.version_dir)

    # A deliberately bad model, with the same data and test split, in its own version folder.
    split = split_iris(pd.read_csv(iris_csv), TrainingConfig())
    dummy = Pipeline([("scale", StandardScaler()), ("classifier", DummyClassifier(strategy="most_frequent"))])
    dummy.fit(split.x_train, split.y_train)
    bad_dir = models / "versions" / "iris-dummy"
    bad_dir.mkdir()
    save_model(dummy, bad_dir, {**meta, "version": "iris-dummy", "chosen": {"name": "dummy", "params": {}}})
    assert evaluate_step(bad_dir, iris_csv).accuracy < 0.5
    decision = promote_step(models, bad_dir, iris_csv)
    assert not decision.promoted and decision.current_version == good.metadata["version"]
    assert decision.current["accuracy"] > decision.candidate["accuracy"]
    assert read_current(models)["version"] == good.metadata["version"]

    # An equally good model (same pipeline, new version) is promoted; the previous folder stays.
    twin_dir = models / "versions" / "iris-twin"
    shutil.copytree(good.version_dir, twin_dir)
    twin_meta = read_metadata(twin_dir)
    (twin_dir / METADATA_FILE).write_text(json.dumps({**twin_meta, "version": "iris-twin"}))
    decision = promote_step(models, twin_dir, iris_csv)
    assert decision.promoted and decision.reason.startswith("at least as good")
    pointer = read_current(models)
    assert pointer["version"] == "iris-twin" and pointer["previous"] == good.metadata["version"]
    assert good.version_dir.is_dir() and bad_dir.is_dir()


def test_promotion_rule() -> None:
    def m(acc: float, f1: float) -> Metrics:
        return Metrics(acc, f1, ("a",), ((1,),), 1)

    assert at_least_as_good(m(0.9, 0.9), m(0.9, 0.9))
    assert not at_least_as_good(m(0.95, 0.89), m(0.9, 0.9))
    assert not at_least_as_good(m(0.89, 0.95), m(0.9, 0.9))


def test_evaluate_on_changed_data_is_refused(trained: tuple[Path, object], tmp_path: Path) -> None:
    _, result = trained
    changed = tmp_path / "Iris.csv"
    iris_frame().iloc[::-1].to_csv(changed, index=False)
    with pytest.raises(ModelError, match="changed since model"):
        evaluate_step(result.version_dir, changed)


def test_predict_csv(trained: tuple[Path, object], iris_csv: Path, tmp_path: Path) -> None:
    models, _ = trained
    predicted = predict_csv(models, iris_csv)
    assert (predicted["prediction"] == predicted["Species"]).mean() > 0.95

    bad = tmp_path / "bad.csv"
    bad.write_text("SepalLengthCm,SepalWidthCm,PetalLengthCm,PetalWidthCm\n5.1,3.5,1.4,0.2\n5.0,x,1.4,0.2\n")
    with pytest.raises(ValidationError, match="CSV lines 3"):
        predict_csv(models, bad)
    missing = tmp_path / "missing.csv"
    missing.write_text("SepalLengthCm\n5.1\n")
    with pytest.raises(ValidationError, match="missing feature column"):
        predict_csv(models, missing)
    with pytest.raises(ModelError, match="holds no model"):
        load_model(tmp_path)


def test_evaluate_metrics_match_sklearn() -> None:
    from sklearn.metrics import accuracy_score

    split = split_iris(iris_frame(), TrainingConfig())
    scores = compare_candidates(split.x_train, split.y_train, TrainingConfig(candidates=("k_neighbors",)))
    model = fit_best(split.x_train, split.y_train, scores[0], TrainingConfig())
    metrics = evaluate(model, split.x_test, split.y_test)
    assert metrics.accuracy == pytest.approx(accuracy_score(split.y_test, model.predict(split.x_test)))


def test_settings_from_params(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PIPEKIT_ML_DATA_DIR", raising=False)
    monkeypatch.delenv("PIPEKIT_ML_MODELS_DIR", raising=False)
    s = settings_from_params({}, tmp_path)
    assert (s.data_dir, s.models_dir, s.offline_fallback) == (tmp_path / "data", tmp_path / "models", False)
    monkeypatch.setenv("PIPEKIT_ML_DATA_DIR", "/srv/iris-data")
    s = settings_from_params({"offline_fallback": "true", "seed": "3", "models_dir": "/m"}, tmp_path)
    assert (str(s.data_dir), str(s.models_dir), s.offline_fallback, s.training.seed) == (
        "/srv/iris-data",
        "/m",
        True,
        3,
    )
    for bad in ({"test_size": 0.9}, {"seed": "x"}, {"slug": "no-slash"}, {"offline_fallback": "maybe"}):
        with pytest.raises(ConfigError):
            settings_from_params(bad, tmp_path)


def test_unwritable_models_dir_is_a_storage_error(iris_csv: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StorageError, match="PIPEKIT_ML_MODELS_DIR"):
        train_step(iris_csv, blocker / "models")
