"""Customer drop: wait for a CSV -> ingest (manifest, backup) -> validate (GX) -> clean -> flag future (shell) -> publish.

Wiring only: every step is a function in ``pipekit.customer_pipeline`` (run the same job without Airflow
with ``pipekit airflow run-customer``). Nothing heavy is imported at parse time: pipekit, pandas and
Great Expectations are imported inside the tasks. Tasks pass paths and small dicts, never DataFrames.

Settings (DAG params, else Airflow Variable ``pipekit_customer_<name>``, else env ``PIPEKIT_CUSTOMER_<NAME>``):
base_dir, landing_dir, output_dir, backup_dir, manifest, pattern, settle_seconds, now, policy_file, ...
Schedule: ``$PIPEKIT_CUSTOMER_SCHEDULE`` (cron, default hourly); sensor wait: ``$PIPEKIT_CUSTOMER_WAIT_SECONDS``
(default 3300); both read when the file is parsed.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import Param, PokeReturnValue, dag, task

DAG_ID = "customer_pipeline"
# Same env var and default as pipekit.airflow_cron.customer_schedule (a test keeps them equal);
# not imported from there because importing pipekit at parse time would pull in pandas.
SCHEDULE = (os.environ.get("PIPEKIT_CUSTOMER_SCHEDULE") or "0 * * * *").strip()
# How long the sensor waits for a file before the run is skipped; cron runs (no scheduler) use 0: look once.
WAIT_SECONDS = float(os.environ.get("PIPEKIT_CUSTOMER_WAIT_SECONDS") or 55 * 60)


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


def _fail_terminally(exc: Exception):
    """Bad data will not fix itself on retry: fail at once, with pipekit's message."""
    from airflow.sdk.exceptions import AirflowFailException

    hint = getattr(exc, "hint", None)
    return AirflowFailException(f"{getattr(exc, 'message', exc)}" + (f"\n  -> {hint}" if hint else ""))


_OPTIONAL_TEXT = ["null", "string"]  # JSON Schema type of an optional text param


@dag(
    dag_id=DAG_ID,
    schedule=SCHEDULE,
    start_date=datetime(2024, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    tags=["pipekit", "customers"],
    doc_md=__doc__,
    default_args={"retries": 1, "retry_delay": timedelta(minutes=2)},
    params={
        "base_dir": Param(None, type=_OPTIONAL_TEXT, description="Root for landing/, backups/, output/, manifest.jsonl"),
        "landing_dir": Param(None, type=_OPTIONAL_TEXT, description="Where customer CSVs are dropped"),
        "output_dir": Param(None, type=_OPTIONAL_TEXT),
        "backup_dir": Param(None, type=_OPTIONAL_TEXT),
        "manifest": Param(None, type=_OPTIONAL_TEXT, description="Append-only JSON-lines manifest"),
        "pattern": Param(None, type=_OPTIONAL_TEXT, description="Glob in the landing dir (default *.csv)"),
        "settle_seconds": Param(None, type=["null", "number", "string"],
                                description="Ignore files modified less than this many seconds ago"),
        "now": Param(None, type=_OPTIONAL_TEXT, description="ISO-8601 'now' for the future-timestamp rule (tests)"),
        "policy_file": Param(None, type=_OPTIONAL_TEXT, description="Masking policy YAML/JSON"),
        "fail_on_data_problems": Param(None, type=["null", "boolean", "string"]),
    },
)
def customer_pipeline():
    # Reschedule mode: between pokes the sensor gives its worker slot back. soft_fail: no file in
    # the hour is not an error, the run is skipped and the next one looks again.
    @task.sensor(poke_interval=60, timeout=WAIT_SECONDS, mode="reschedule", soft_fail=True)
    def wait_for_file(params=None) -> PokeReturnValue:
        from pipekit.customer_pipeline import find_file

        path = find_file(_config(params))
        return PokeReturnValue(is_done=path is not None, xcom_value=path)

    @task
    def ingest(path: str, params=None, run_id=None) -> dict:
        from airflow.sdk.exceptions import AirflowSkipException

        from pipekit.customer_pipeline import ingest as ingest_step

        result = ingest_step(path, _config(params), run_id=run_id)
        if result["status"] == "duplicate":
            previous = result["previous"] or {}
            raise AirflowSkipException(
                f"{result['entry']['file_name']} (sha256 {result['entry']['sha256']}) was already processed "
                f"by run {previous.get('run_id')}; skipped"
            )
        return result

    @task
    def validate(ingested: dict, params=None) -> dict:
        from pipekit.customer_pipeline import validate as validate_step
        from pipekit.errors import PipekitError

        try:
            return validate_step(ingested, _config(params))
        except PipekitError as exc:
            raise _fail_terminally(exc) from exc

    @task
    def clean(ingested: dict, validated: dict, params=None) -> dict:
        from pipekit.customer_pipeline import clean as clean_step
        from pipekit.errors import InputError, ValidationError

        try:
            return clean_step(ingested, _config(params))
        except (InputError, ValidationError) as exc:
            raise _fail_terminally(exc) from exc

    # Airflow loads any templated string ending in ".sh" as a Jinja template *file* (TemplateNotFound),
    # and `env` values are templated too: so neither the command nor an env value may end in ".sh".
    # The script's folder goes in the env and the file name in the command, which ends in a quote.
    flag_future = BashOperator(
        task_id="flag_future_timestamps",
        bash_command='bash "$PIPEKIT_SCRIPTS_DIR/flag_future_timestamps.sh" "$CLEANED_CSV" "$FUTURE_IDS"',
        env={
            "PIPEKIT_SCRIPTS_DIR": _scripts_dir(),
            "CLEANED_CSV": "{{ ti.xcom_pull(task_ids='clean')['cleaned_csv'] }}",
            "FUTURE_IDS": "{{ ti.xcom_pull(task_ids='clean')['future_ids'] }}",
            "PIPEKIT_NOW": "{{ ti.xcom_pull(task_ids='clean')['now'] }}",
        },
        append_env=True,
    )

    @task
    def publish(ingested: dict, validated: dict, cleaned: dict, future_count: str, params=None) -> dict:
        from pipekit.customer_pipeline import publish as publish_step

        run = publish_step(ingested, validated, cleaned, future_count, _config(params))
        return {"run_report": run["run_report"], "future_rows": run["future_rows"], "counts": run["counts"]}

    ingested = ingest(wait_for_file())  # type: ignore[arg-type]  # TaskFlow: XComArgs resolve to values at run time
    validated = validate(ingested)  # type: ignore[arg-type]  # TaskFlow: XComArgs resolve to values at run time
    cleaned = clean(ingested, validated)  # type: ignore[arg-type]  # TaskFlow: XComArgs resolve to values at run time
    cleaned >> flag_future
    publish(ingested, validated, cleaned, flag_future.output)  # type: ignore[arg-type]  # TaskFlow: XComArgs resolve to values at run time


customer_pipeline()
