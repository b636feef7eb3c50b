"""The AWS ETL pipeline as functions: deploy the Glue job, run the whole pipeline, verify its output.

Everything goes through boto3 (``pipekit.aws``); names come from the CloudFormation stack's Outputs, so
the same calls drive a real account and the offline twin (``pipekit local up``).

Pipeline order (:func:`run`): check the input file -> upload it to ``customers_csv/`` (skipped when the
same sha256 is already there) -> crawl (registers/updates ``customers_csv``) -> count the raw rows in
Athena -> run the Glue job (CSV -> masked snappy Parquet under ``ingest_date=YYYY-MM-DD/``; with job
bookmarks only the raw files no earlier successful run read, appended) -> register new ``ingest_date``
partitions in the catalog -> count the Parquet rows in Athena.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from pipekit.aws import athena as athena_api
from pipekit.aws import catalog, s3
from pipekit.aws.cloudformation import stack_outputs
from pipekit.errors import AwsError, ConfigError, InputError, ValidationError

DEFAULT_STACK = "pipekit-etl"
FIRST_NAME_VALUE = "hu25"

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


@dataclass(frozen=True)
class EtlResources:
    """The deployed pipeline's names and locations, read from the stack Outputs."""

    stack: str
    bucket: str
    database: str
    crawler: str
    csv_table: str
    parquet_table: str
    job: str
    workgroup: str
    raw_prefix: str
    parquet_prefix: str
    script_location: str
    athena_results: str
    temp_dir: str

    @classmethod
    def from_outputs(cls, stack: str, outputs: dict[str, str]) -> EtlResources:
        """Build from ``stack_outputs``; ConfigError naming what is missing."""
        keys = {
            "bucket": "BucketName", "database": "DatabaseName", "crawler": "CrawlerName",
            "csv_table": "CsvTableName", "parquet_table": "ParquetTableName", "job": "JobName",
            "workgroup": "WorkGroupName", "raw_prefix": "RawPrefix", "parquet_prefix": "ParquetPrefix",
            "script_location": "ScriptLocation", "athena_results": "AthenaResults", "temp_dir": "TempDir",
        }  # fmt: skip
        missing = [v for v in keys.values() if v not in outputs]
        if missing:
            raise ConfigError(f"stack {stack!r} lacks the Outputs {', '.join(missing)}",
                              hint="deploy infra/cloudformation/etl.yaml (see docs/aws.md)")
        return cls(stack=stack, **{k: outputs[v] for k, v in keys.items()})

    def layout(self) -> dict[str, str]:
        """The bucket's prefixes, by role."""
        b = f"s3://{self.bucket}/"
        return {"athena_results": self.athena_results, "customers_csv": self.raw_prefix,
                "customers_parquet": self.parquet_prefix, "scripts": b + "scripts/", "temp-dir": self.temp_dir}


def resources(stack: str = DEFAULT_STACK, *, session: Any | None = None) -> EtlResources:
    """The pipeline's resources from stack ``stack``'s Outputs."""
    return EtlResources.from_outputs(stack, stack_outputs(stack, session=session))


# ------------------------------------------------------------------------------------------ deploy


def _source_root() -> Path:
    return Path(__file__).resolve().parent


def default_script() -> Path:
    """``adapters/glue/customers_etl.py`` of the source checkout (or ``$PIPEKIT_GLUE_SCRIPT``)."""
    env = os.environ.get("PIPEKIT_GLUE_SCRIPT")
    if env:
        return Path(env)
    for parent in _source_root().parents:
        candidate = parent / "adapters" / "glue" / "customers_etl.py"
        if candidate.exists():
            return candidate
    raise ConfigError("cannot find adapters/glue/customers_etl.py", hint="pass --script PATH")


def build_pipekit_zip(dest: str | os.PathLike[str]) -> Path:
    """Zip the ``pipekit`` package for Glue's ``--extra-py-files``; byte-identical for identical sources."""
    root = _source_root()
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in {".py", ".typed", ".yaml", ".json"}
                   and "__pycache__" not in p.parts)
    dest = Path(dest)
    with zipfile.ZipFile(dest, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for path in files:
            # A fixed timestamp keeps the zip's sha256 stable, so an unchanged package is not re-uploaded.
            info = zipfile.ZipInfo(f"pipekit/{path.relative_to(root).as_posix()}", date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, path.read_bytes())
    return dest


@dataclass
class DeployReport:
    """What ``deploy`` uploaded and changed."""

    script: s3.UploadResult
    package: s3.UploadResult
    job: str
    job_updated: bool
    graph: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"script": self.script.__dict__, "package": self.package.__dict__, "job": self.job,
                "job_updated": self.job_updated, "graph": self.graph}


def deploy(stack: str = DEFAULT_STACK, *, script: str | os.PathLike[str] | None = None,
           visual: bool = True, session: Any | None = None) -> DeployReport:
    """Upload the Glue script and the pipekit zip into ``scripts/``; update the job with its visual graph."""
    from pipekit.aws import glue

    res = resources(stack, session=session)
    script_path = Path(script) if script else default_script()
    script_result = s3.upload_file(script_path, res.script_location, session=session)
    with tempfile.TemporaryDirectory() as tmp:
        zip_path = build_pipekit_zip(Path(tmp) / "pipekit.zip")
        package = s3.upload_file(zip_path, f"s3://{res.bucket}/scripts/pipekit.zip", session=session)
    job = glue.get_job(res.job, session=session)
    if job is None:
        raise ConfigError(f"Glue job {res.job!r} of stack {stack!r} does not exist",
                          hint="the stack creates it; check the stack's status")
    definition = {k: v for k, v in job.items()
                  if k not in {"Name", "CreatedOn", "LastModifiedOn", "AllocatedCapacity", "MaxCapacity"}}
    definition.setdefault("DefaultArguments", {})
    definition["Command"] = {**definition.get("Command", {}), "ScriptLocation": res.script_location}
    graph: list[str] = []
    if visual:
        from pipekit.aws import glue_studio

        nodes = glue_studio.customers_visual_job(res.raw_prefix, res.parquet_prefix, database=res.database,
                                                 table=res.parquet_table)
        definition["CodeGenConfigurationNodes"] = nodes
        graph = glue_studio.describe_graph(nodes)
    changed = definition != {k: v for k, v in job.items() if k in definition} or script_result.uploaded \
        or package.uploaded
    if changed:
        glue.update_job(res.job, definition, session=session)
    return DeployReport(script_result, package, res.job, changed, graph)


# ------------------------------------------------------------------------------------------ ingest


def check_input(path: str | os.PathLike[str], *, first_name_column: str = "FirstName") -> int:
    """Check a customers CSV before upload: not empty, a header with ``FirstName``, data rows; returns rows."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(2, "No such file", str(path))
    if path.stat().st_size == 0:
        raise InputError(f"{path} is empty (0 bytes); nothing to ingest.",
                         hint="export the customers table again; the first line must be the CSV header")
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        header = next(reader, [])
        rows = sum(1 for row in reader if any(cell.strip() for cell in row))
    norm = {h.strip().lower().replace("_", "").replace(" ", ""): h for h in header}
    if first_name_column.lower() not in norm:
        raise ValidationError(
            f"{path}: the header has no {first_name_column} column (found: {', '.join(header) or 'nothing'}).",
            hint=f"the Glue job replaces {first_name_column} with {FIRST_NAME_VALUE!r}; "
                 "fix the export so the header names it",
        )
    if rows == 0:
        raise InputError(f"{path} has a header but no data rows.", hint="upload a CSV with at least one customer")
    return rows


def ingest(path: str | os.PathLike[str], stack: str = DEFAULT_STACK, *, force: bool = False,
           session: Any | None = None) -> s3.UploadResult:
    """Check ``path`` and upload it into ``customers_csv/``; an identical object is not uploaded twice."""
    check_input(path)
    res = resources(stack, session=session)
    return s3.upload_file(path, res.raw_prefix, force=force, session=session)


# ------------------------------------------------------------------------------------------ run


@dataclass
class RunReport:
    """The pipeline's steps and what each one did."""

    stack: str
    upload: s3.UploadResult | None = None
    crawl: catalog.CrawlReport | None = None
    raw_rows: int | None = None
    job_run_id: str | None = None
    job_state: str | None = None
    job_seconds: int | None = None
    #: The job's own report (its last stdout line): bookmark option, files_read, rows_in, partition, ...
    job_stats: dict[str, Any] | None = None
    partitions_added: list[str] = field(default_factory=list)
    parquet_rows: int | None = None
    queries: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"stack": self.stack, "upload": self.upload.__dict__ if self.upload else None,
                "crawl": self.crawl.to_dict() if self.crawl else None, "raw_rows": self.raw_rows,
                "job_run_id": self.job_run_id, "job_state": self.job_state, "job_seconds": self.job_seconds,
                "job_stats": self.job_stats, "partitions_added": self.partitions_added,
                "parquet_rows": self.parquet_rows, "queries": self.queries}

    def describe_job(self) -> str:
        """What the job run read, from its report: ``read 1 file (b.csv), 40 rows; 1 already processed``."""
        stats = self.job_stats
        if not stats:
            return "the job's report was not found in its output log"
        files = stats.get("files_read") or []
        line = (f"read {len(files)} file{'s' if len(files) != 1 else ''} ({', '.join(files) or 'none new'}), "
                f"{stats.get('rows_in', 0)} rows -> {stats.get('partition') or 'nothing written'}")
        if stats.get("files_skipped"):
            line += f"; {stats['files_skipped']} already processed (bookmark)"
        return line


def count_rows(table: str, res: EtlResources, *, session: Any | None = None,
               where: str | None = None) -> tuple[int, athena_api.QueryResult]:
    """``SELECT count(*)`` of ``table`` in Athena (CSV result plus its Parquet copy land in athena_results/)."""
    sql = f'SELECT count(*) AS row_count FROM "{res.database}"."{table}"' + (f" WHERE {where}" if where else "")
    result = athena_api.run_query(sql, workgroup=res.workgroup, database=res.database, session=session)
    return int(result.scalar() or 0), result


def run_job(res: EtlResources, *, arguments: dict[str, str] | None = None, poll_s: float = 5.0,
            on_state: Progress = _quiet, session: Any | None = None) -> Any:
    """Start the Glue job and wait; JobRunError carrying Glue's ErrorMessage when it fails."""
    from pipekit.aws import glue

    run_id = glue.start_job_run(res.job, arguments, session=session)
    on_state(f"job {res.job} run {run_id} started")
    last: list[str] = []

    def poll(run: Any) -> None:
        if not last or last[-1] != run.state:
            last.append(run.state)
            on_state(f"job {res.job}: {run.state}")

    return glue.wait_for_job_run(res.job, run_id, poll_s=poll_s, on_poll=poll, session=session)


def run(path: str | os.PathLike[str], stack: str = DEFAULT_STACK, *, poll_s: float = 2.0,
        progress: Progress = _quiet, ingest_date: str | None = None, session: Any | None = None) -> RunReport:
    """The whole pipeline, in order: check, ingest, crawl, count raw rows, Glue job, register partitions,
    count Parquet rows. ``ingest_date`` (YYYY-MM-DD) names the partition the job writes (default: today)."""
    if ingest_date:
        try:
            date.fromisoformat(ingest_date)
        except ValueError as exc:
            raise ConfigError(f"--ingest-date must be a date (YYYY-MM-DD), got {ingest_date!r}") from exc
    res = resources(stack, session=session)
    report = RunReport(stack)
    progress(f"checking {path}")
    check_input(path)
    report.upload = s3.upload_file(path, res.raw_prefix, session=session)
    progress(report.upload.describe())
    progress(f"crawling {res.raw_prefix} with {res.crawler}")
    report.crawl = catalog.run_crawler(res.crawler, res.database, poll_s=poll_s, session=session,
                                       on_poll=lambda s: None)
    progress(f"crawl {report.crawl.status}: created {report.crawl.created or '-'}, "
             f"changed {report.crawl.changed or '-'}")
    report.raw_rows, q = count_rows(res.csv_table, res, session=session)
    report.queries.append({"sql": q.sql, "csv": q.csv_uri, "parquet": q.parquet_uri})
    progress(f"Athena: {report.raw_rows} rows in {res.csv_table}")
    job_run = run_job(res, arguments={"--ingest_date": ingest_date} if ingest_date else None, poll_s=poll_s,
                      on_state=progress, session=session)
    report.job_run_id, report.job_state, report.job_seconds = job_run.run_id, job_run.state, job_run.execution_time_s
    report.job_stats = job_report(job_run.run_id, session=session)
    progress(f"job {res.job}: {report.describe_job()}")
    report.partitions_added = register_partitions(res, session=session)
    if report.partitions_added:
        progress(f"catalog: added partition(s) {', '.join(report.partitions_added)} to {res.parquet_table}")
    report.parquet_rows, q = count_rows(res.parquet_table, res, session=session)
    report.queries.append({"sql": q.sql, "csv": q.csv_uri, "parquet": q.parquet_uri})
    progress(f"Athena: {report.parquet_rows} rows in {res.parquet_table}")
    return report


def job_report(run_id: str, *, session: Any | None = None) -> dict[str, Any] | None:
    """The job's report for run ``run_id``: the last JSON line it printed (``/aws-glue/jobs/output``)."""
    from pipekit.aws._client import client

    logs = client("logs", session)
    try:
        events = logs.get_log_events(logGroupName="/aws-glue/jobs/output", logStreamName=run_id,
                                     startFromHead=False, limit=200)["events"]
    except Exception:  # no log yet (or no permission): the report is a convenience, not the result
        return None
    for event in reversed(events):
        text = event.get("message", "").strip()
        if text.startswith("{"):
            try:
                data = json.loads(text)
            except ValueError:
                continue
            if isinstance(data, dict) and "rows_in" in data:
                return data
    return None


def register_partitions(res: EtlResources, *, session: Any | None = None) -> list[str]:
    """Add every ``name=value/`` folder under the Parquet prefix that the table lacks as a partition
    (BatchCreatePartition, the table's own storage descriptor); returns the values added."""
    from pipekit.aws._client import client

    glue = client("glue", session)
    table = glue.get_table(DatabaseName=res.database, Name=res.parquet_table)["Table"]
    keys = [k["Name"] for k in table.get("PartitionKeys", [])]
    if len(keys) != 1:
        return []  # unpartitioned (or a layout this pipeline does not write)
    bucket, prefix = s3.parse_s3_uri(res.parquet_prefix)
    pages = client("s3", session).get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=prefix, Delimiter="/")
    found = [p["Prefix"] for page in pages for p in page.get("CommonPrefixes", [])]
    values = sorted(p[len(prefix):].rstrip("/").split("=", 1)[1] for p in found
                    if p[len(prefix):].startswith(f"{keys[0]}="))
    have: set[str] = set()
    for page in glue.get_paginator("get_partitions").paginate(DatabaseName=res.database,
                                                              TableName=res.parquet_table):
        have.update(part["Values"][0] for part in page.get("Partitions", []))
    new = [v for v in values if v not in have]
    sd = table["StorageDescriptor"]
    for start in range(0, len(new), 100):  # BatchCreatePartition takes at most 100
        inputs = [{"Values": [v], "StorageDescriptor": {**sd, "Location": f"{res.parquet_prefix.rstrip('/')}/"
                                                                           f"{keys[0]}={v}/"}}
                  for v in new[start:start + 100]]
        errors = glue.batch_create_partition(DatabaseName=res.database, TableName=res.parquet_table,
                                             PartitionInputList=inputs).get("Errors", [])
        bad = [e for e in errors if e.get("ErrorDetail", {}).get("ErrorCode") != "AlreadyExistsException"]
        if bad:
            raise AwsError(f"registering partitions of {res.parquet_table} failed: {bad[0]['ErrorDetail']}",
                           hint="check the job role's glue:BatchCreatePartition permission")
    return new


# ------------------------------------------------------------------------------------------ verify


@dataclass(frozen=True)
class Check:
    """One verification: its name, whether it passed, and the evidence."""

    name: str
    ok: bool
    detail: str


@dataclass
class VerifyReport:
    """Every check :func:`verify` made."""

    stack: str
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every check passed."""
        return bool(self.checks) and all(c.ok for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"stack": self.stack, "ok": self.ok, "checks": [c.__dict__ for c in self.checks]}


def _read_raw_rows(res: EtlResources, session: Any | None) -> int:
    import pyarrow.csv as pcsv

    total = 0
    for obj in s3.data_objects(res.raw_prefix, session=session):
        data = s3.read_bytes(f"s3://{res.bucket}/{obj['Key']}", session=session)
        if not data.strip():
            continue
        table = pcsv.read_csv(io.BytesIO(data), parse_options=pcsv.ParseOptions(newlines_in_values=True),
                              convert_options=pcsv.ConvertOptions(column_types={}, strings_can_be_null=False))
        total += table.num_rows
    return total


def _read_parquet(res: EtlResources, session: Any | None) -> Any:
    import pyarrow as pa
    import pyarrow.parquet as pq

    tables = []
    for obj in s3.data_objects(res.parquet_prefix, session=session):
        data = s3.read_bytes(f"s3://{res.bucket}/{obj['Key']}", session=session)
        tables.append(pq.read_table(io.BytesIO(data)))
    return pa.concat_tables(tables, promote_options="default") if tables else None


def verify(stack: str = DEFAULT_STACK, *, session: Any | None = None) -> VerifyReport:
    """Check the output: counts reconcile, every first name is hu25, no unmasked PII, Athena reads it."""
    import pyarrow.compute as pc

    from pipekit.core import scan_pii

    res = resources(stack, session=session)
    report = VerifyReport(stack)
    add = report.checks.append
    raw_rows = _read_raw_rows(res, session)
    table = _read_parquet(res, session)
    if table is None:
        add(Check("parquet output exists", False, f"no Parquet objects under {res.parquet_prefix}; run `pipekit etl run`"))
        return report
    add(Check("parquet output exists", True, f"{table.num_rows} rows under {res.parquet_prefix}"))
    add(Check("row counts reconcile (raw CSV objects = Parquet)", raw_rows == table.num_rows,
              f"raw CSV {raw_rows} rows, Parquet {table.num_rows} rows"))
    csv_rows, _ = count_rows(res.csv_table, res, session=session)
    add(Check("Athena count of the CSV table = raw rows", csv_rows == raw_rows,
              f"{res.csv_table}: {csv_rows}, raw objects: {raw_rows}"))
    first = next((c for c in table.column_names if c.lower().replace("_", "") == "firstname"), None)
    if first is None:
        add(Check("every first name is hu25", False, f"no FirstName column in {table.column_names}"))
    else:
        bad = table.num_rows - pc.sum(pc.equal(table[first], FIRST_NAME_VALUE).fill_null(False)).as_py() \
            if table.num_rows else 0
        add(Check(f"every first name is {FIRST_NAME_VALUE}", bad == 0,
                  f"{bad} of {table.num_rows} values of {first} differ from {FIRST_NAME_VALUE!r}"))
    pii = scan_pii(table)
    add(Check("PII scanner finds nothing unmasked in the Parquet output", pii.total == 0,
              "clean" if pii.total == 0 else pii.summary()))
    # Athena reads only the partitions the catalog has, so an unregistered ingest_date folder is rows
    # Athena on AWS would not count: part of the same check.
    unregistered = _unregistered_partitions(res, session)
    pq_rows, q = count_rows(res.parquet_table, res, session=session)
    missing = f"; ingest_date folder(s) not in the catalog: {', '.join(unregistered)} (run `pipekit etl run`)" \
        if unregistered else ""
    add(Check("Athena query over the Parquet table returns the rows", pq_rows == table.num_rows and not unregistered,
              f"{res.parquet_table}: {pq_rows} rows (result {q.csv_uri}){missing}"))
    return report


def _unregistered_partitions(res: EtlResources, session: Any | None) -> list[str]:
    from pipekit.aws._client import client

    glue = client("glue", session)
    keys = [k["Name"] for k in glue.get_table(DatabaseName=res.database, Name=res.parquet_table)["Table"]
            .get("PartitionKeys", [])]
    if len(keys) != 1:
        return []
    _, prefix = s3.parse_s3_uri(res.parquet_prefix)
    folders = {o["Key"][len(prefix):].split("/", 1)[0] for o in s3.data_objects(res.parquet_prefix, session=session)}
    values = {f.split("=", 1)[1] for f in folders if f.startswith(f"{keys[0]}=")}
    have = {p["Values"][0] for page in glue.get_paginator("get_partitions").paginate(
        DatabaseName=res.database, TableName=res.parquet_table) for p in page.get("Partitions", [])}
    return sorted(values - have)


def describe_layout(stack: str = DEFAULT_STACK, *, session: Any | None = None) -> list[tuple[str, str, int, int]]:
    """``[(role, uri, objects, bytes)]`` for each prefix of the bucket layout."""
    res = resources(stack, session=session)
    out = []
    for role, uri in res.layout().items():
        n, size = s3.prefix_summary(uri, session=session)
        out.append((role, uri, n, size))
    return out


def fingerprint(path: str | os.PathLike[str]) -> str:
    """sha256 of a file (used by tests to prove originals are untouched)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
