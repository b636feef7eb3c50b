"""Customer drop: list settled CSVs -> per file (mapped): ingest -> validate (GX) -> clean -> flag future (shell) -> publish.

Wiring only: every step is a function in ``pipekit.customer_pipeline`` (run the same job without Airflow
with ``pipekit airflow run-customer``). Nothing heavy is imported at parse time: pipekit, pandas and
Great Expectations are imported inside the tasks. Tasks pass paths and small dicts, never DataFrames.

Each run looks once: ``list_files`` lists every settled file (arrival order) and the run is skipped when
there is none; the schedule is the poll, so no run waits and a manual or conf-triggered run starts at once.
Every file is one mapped instance of the ``process_file`` task group: a poison file (required column
missing, unparsable) is moved to ``rejected/`` and only its instance fails; the other files go on.

Settings (DAG params, else Airflow Variable ``pipekit_customer_<name>``, else env ``PIPEKIT_CUSTOMER_<NAME>``):
base_dir (a local path or s3://bucket/prefix), landing_dir, output_dir, backup_dir, manifest, rejected_dir,
quarantine_dir, bad_rows, pattern, settle_seconds, now, policy_file, ...
Read when the file is parsed: ``$PIPEKIT_CUSTOMER_SCHEDULE`` (cron, default hourly) and
``$PIPEKIT_CUSTOMER_PARALLEL_FILES`` (files validated/cleaned at once per run, default 2).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from airflow.sdk import Param, dag, task, task_group

DAG_ID = "customer_pipeline"
# Same env var and default as pipekit.airflow_cron.customer_schedule (a test keeps them equal);
# not imported from there because importing pipekit at parse time would pull in pandas.
SCHEDULE = (os.environ.get("PIPEKIT_CUSTOMER_SCHEDULE") or "0 * * * *").strip()
# GX and the clean step hold a file's rows in memory: cap how many mapped files do so at once per run.
PARALLEL_FILES = int(os.environ.get("PIPEKIT_CUSTOMER_PARALLEL_FILES") or 2)


def _scripts_dir() -> str:
    """Folder of the shell scripts: ``$PIPEKIT_SCRIPTS_DIR``, else ``../scripts`` (repo layout), else ``scripts/``."""
    if os.environ.get("PIPEKIT_SCRIPTS_DIR"):
        return os.environ["PIPEKIT_SCRIPTS_DIR"]
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "scripts", here / "scripts"):
        if (candidate / "flag_future_timestamps.sh").is_file():
            return str(candidate)
    return str(here.parent / "scripts")


def _config(params: dict):
    """Resolve the job config at the edge: params > Airflow Variable > env > defaults."""
    from airflow.sdk import Variable

    from pipekit.customer_pipeline import CustomerPipelineConfig

    return CustomerPipelineConfig.resolve(params, variable=lambda key: Variable.get(key, default=None))


def _run_step(step, *args, **kwargs):
    """Run one pipekit step. Bad data will not fix itself on retry (the file is in rejected/ now): an
    InputError or ValidationError fails the task at once, with pipekit's message."""
    from airflow.sdk.exceptions import AirflowFailException

    from pipekit.errors import InputError, ValidationError

    try:
        return step(*args, **kwargs)
    except (InputError, ValidationError) as exc:
        raise AirflowFailException(str(exc)) from exc  # pipekit's message, then "  -> <what to do>"


_OPTIONAL_TEXT = ["null", "string"]  # JSON Schema type of an optional text param


@dag(
    dag_id=DAG_ID,
    schedule=SCHEDULE,
    start_date=datetime(2024, 1, 1, tzinfo=UTC),
    catchup=False,
    # One run at a time, so two runs never take the same file; a run only looks (no waiting), so the slot
    # is held for as long as the files take and a manual trigger queued behind it starts soon after.
    max_active_runs=1,
    tags=["pipekit", "customers"],
    doc_md=__doc__,
    default_args={"retries": 1, "retry_delay": timedelta(minutes=2)},
    params={
        "base_dir": Param(None, type=_OPTIONAL_TEXT,
                          description="Root for landing/, backups/, output/, rejected/, manifest.jsonl"),
        "landing_dir": Param(None, type=_OPTIONAL_TEXT, description="Where customer CSVs are dropped"),
        "output_dir": Param(None, type=_OPTIONAL_TEXT),
        "backup_dir": Param(None, type=_OPTIONAL_TEXT),
        "rejected_dir": Param(None, type=_OPTIONAL_TEXT, description="Where poison files are moved, with a reason"),
        "manifest": Param(None, type=_OPTIONAL_TEXT, description="Append-only JSON-lines manifest"),
        "quarantine_dir": Param(None, type=_OPTIONAL_TEXT,
                                description="Private folder for raw malformed rows (bad_rows=quarantine)"),
        "bad_rows": Param(None, type=["null", "string"], enum=[None, "error", "quarantine"],
                          description="Rows that cannot be split into columns: fail the file, or quarantine them"),
        "pattern": Param(None, type=_OPTIONAL_TEXT, description="Glob in the landing dir (default *.csv)"),
        "settle_seconds": Param(None, type=["null", "number", "string"],
                                description="Ignore files modified less than this many seconds ago"),
        "now": Param(None, type=_OPTIONAL_TEXT, description="ISO-8601 'now' for the future-timestamp rule (tests)"),
        "policy_file": Param(None, type=_OPTIONAL_TEXT, description="Masking policy YAML/JSON"),
        "fail_on_data_problems": Param(None, type=["null", "boolean", "string"]),
    },
)
def customer_pipeline():
    @task
    def list_files(params=None) -> list[str]:
        """Look once: every settled file, oldest first; none -> the run is skipped (the next one looks again)."""
        from airflow.sdk.exceptions import AirflowSkipException

        from pipekit.customer_pipeline import find_files

        config = _config(params)
        files = find_files(config)
        if not files:
            raise AirflowSkipException(f"no settled file matching {config.pattern} in {config.landing_dir}")
        return files

    @task
    def ingest(path: str, params=None, run_id=None) -> dict:
        from airflow.sdk.exceptions import AirflowSkipException

        from pipekit.customer_pipeline import ingest as ingest_step

        # Fails at once when the content was rejected before, is not CSV, or is gone.
        result = _run_step(ingest_step, path, _config(params), run_id=run_id)
        if result["status"] == "duplicate":
            previous = result["previous"] or {}
            raise AirflowSkipException(
                f"{result['entry']['file_name']} (sha256 {result['entry']['sha256']}) is the content of "
                f"{previous.get('file_name')} (run {previous.get('run_id')}, {previous.get('event')}); skipped"
            )
        return result

    @task(max_active_tis_per_dagrun=PARALLEL_FILES)
    def validate(ingested: dict, params=None) -> dict:
        from pipekit.customer_pipeline import validate as validate_step

        return _run_step(validate_step, ingested, _config(params))

    @task(max_active_tis_per_dagrun=PARALLEL_FILES)
    def clean(ingested: dict, validated: dict, params=None) -> dict:
        from pipekit.customer_pipeline import clean as clean_step

        return _run_step(clean_step, ingested, _config(params))

    # The shell script runs through pipekit's step: on local paths as they are; with s3:// outputs on a
    # scratch copy of the cleaned CSV on this worker, its side file uploaded (a bash command line can only
    # name local files, and on Celery/Kubernetes the clean task's files are on another machine).
    @task(task_id="flag_future_timestamps")
    def flag_future(cleaned: dict) -> int:
        from pipekit.customer_pipeline import flag_future as flag_step

        return _run_step(flag_step, cleaned, script=Path(_scripts_dir()) / "flag_future_timestamps.sh")

    @task
    def publish(ingested: dict, validated: dict, cleaned: dict, future_count: str, params=None) -> dict:
        from pipekit.customer_pipeline import publish as publish_step

        run = publish_step(ingested, validated, cleaned, future_count, _config(params))
        return {"run_report": run["run_report"], "future_rows": run["future_rows"], "counts": run["counts"]}

    # One mapped instance of the group per file: a failure fails that file's tasks only.
    @task_group
    def process_file(path: str):
        ingested = ingest(path)
        validated = validate(ingested)  # type: ignore[arg-type]  # TaskFlow: XComArgs resolve to values at run time
        cleaned = clean(ingested, validated)  # type: ignore[arg-type]  # TaskFlow: XComArgs resolve to values at run time
        publish(ingested, validated, cleaned, flag_future(cleaned))  # type: ignore[arg-type]  # TaskFlow: XComArgs resolve to values at run time

    process_file.expand(path=list_files())


customer_pipeline()
