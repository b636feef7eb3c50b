"""Iris training DAG: download (Kaggle) -> validate -> train -> evaluate -> promote.

Wiring only: every step calls pipekit.ml, imported inside the task so parsing this file stays cheap
(the kaggle client authenticates when imported, so it must never be imported here at top level).
Tasks pass file paths, not data. Data lands in ``data/`` and models in ``models/`` beside this file
unless the ``data_dir``/``models_dir`` params or PIPEKIT_ML_DATA_DIR/PIPEKIT_ML_MODELS_DIR say otherwise
(set them when the DAG folder is read-only, as Airflow 3 DAG bundles may be).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn

from airflow.sdk import Param, dag, get_current_context, task

DAG_FOLDER = Path(__file__).resolve().parent


def _settings() -> Any:
    """The run's params as typed settings; bad params fail the task without retries."""
    from pipekit.errors import PipekitError
    from pipekit.ml.settings import settings_from_params

    try:
        return settings_from_params(get_current_context()["params"], DAG_FOLDER)
    except PipekitError as exc:
        _to_airflow(exc)


def _to_airflow(exc: Exception) -> NoReturn:
    """Re-raise a pipekit error for Airflow: terminal errors fail the task without retries, retryable ones retry."""
    from airflow.sdk.exceptions import AirflowFailException

    if getattr(exc, "retryable", False):
        raise exc
    raise AirflowFailException(str(exc)) from exc


@dag(
    dag_id="iris_training",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["pipekit", "ml"],
    doc_md=__doc__,
    params={
        "slug": Param("saurabh00007/iriscsv", type="string", description="Kaggle dataset owner/name"),
        "data_dir": Param("", type="string", description="Dataset folder; empty = data/ beside the DAG"),
        "models_dir": Param("", type="string", description="Models folder; empty = models/ beside the DAG"),
        "offline_fallback": Param(
            False, type="boolean", description="Use scikit-learn's Iris when Kaggle is unreachable"
        ),
        "kaggle_conn_id": Param("kaggle_default", type="string", description="login=username, password=key"),
        "seed": Param(42, type="integer"),
        "test_size": Param(0.2, type="number", minimum=0.05, maximum=0.5),
    },
)
def iris_training() -> None:
    """Download Iris from Kaggle, validate it, train and evaluate candidates, promote the model if not worse."""

    @task(retries=2, retry_delay=timedelta(seconds=30))
    def download() -> str:
        """Fetch the dataset (or reuse the checksummed copy); return the CSV path."""
        from airflow.sdk import Connection
        from airflow.sdk.exceptions import AirflowNotFoundException

        from pipekit.errors import PipekitError
        from pipekit.ml import KaggleAuth, download_dataset

        settings = _settings()
        auth = None
        try:
            conn = Connection.get(settings.kaggle_conn_id)
            if conn.login and conn.password:
                auth = KaggleAuth(conn.login, conn.password)
        except AirflowNotFoundException:
            pass  # fall back to KAGGLE_USERNAME/KAGGLE_KEY or kaggle.json, read by the kaggle client
        try:
            manifest = download_dataset(
                settings.data_dir, settings.slug, auth=auth, offline_fallback=settings.offline_fallback
            )
        except PipekitError as exc:
            _to_airflow(exc)
        print(
            f"dataset {manifest.slug}: source={manifest.source} cached={manifest.cached} "
            f"fallback={manifest.fallback} files={[f.name for f in manifest.files]}"
        )
        csvs = [f.name for f in manifest.files if f.name.lower().endswith(".csv")]
        return str(settings.data_dir / csvs[0])

    @task
    def validate(csv_path: str) -> str:
        """Check columns, row count, numbers and labels; fail with every problem listed."""
        from pipekit.errors import PipekitError
        from pipekit.ml import validate_iris_csv

        try:
            report = validate_iris_csv(csv_path)
        except PipekitError as exc:
            _to_airflow(exc)
        print(f"{csv_path}: {report.rows} rows, columns {list(report.columns)}: ok")
        return csv_path

    @task
    def train(csv_path: str) -> str:
        """Compare candidates with seeded stratified CV, fit the best, save a versioned model; return its folder."""
        from pipekit.errors import PipekitError
        from pipekit.ml import train_step

        settings = _settings()
        try:
            return str(train_step(csv_path, settings.models_dir, settings.training))
        except PipekitError as exc:
            _to_airflow(exc)

    @task
    def evaluate(version_dir: str, csv_path: str) -> dict[str, Any]:
        """Hold-out accuracy, macro F1, confusion matrix; write metrics.json and the PNG."""
        from pipekit.errors import PipekitError
        from pipekit.ml import evaluate_step

        try:
            metrics = evaluate_step(version_dir, csv_path)
        except PipekitError as exc:
            _to_airflow(exc)
        print(f"{version_dir}: accuracy={metrics.accuracy:.4f} f1_macro={metrics.f1_macro:.4f}")
        return {"accuracy": metrics.accuracy, "f1_macro": metrics.f1_macro, "version_dir": version_dir}

    @task
    def promote(version_dir: str, csv_path: str, metrics: dict[str, Any]) -> dict[str, Any]:
        """Make the model current if at least as good as the current one on the same test split."""
        from pipekit.errors import PipekitError
        from pipekit.ml import promote_step

        settings = _settings()
        try:
            decision = promote_step(settings.models_dir, version_dir, csv_path)
        except PipekitError as exc:
            _to_airflow(exc)
        print(f"promotion of {decision.version}: promoted={decision.promoted} ({decision.reason})")
        return decision.to_dict()

    csv = validate(download())  # type: ignore[arg-type]  # TaskFlow: XComArgs resolve to values at run time
    version = train(csv)  # type: ignore[arg-type]  # TaskFlow: XComArgs resolve to values at run time
    promote(version, csv, evaluate(version, csv))  # type: ignore[arg-type]  # TaskFlow: XComArgs resolve to values at run time


iris_training_dag = iris_training()
