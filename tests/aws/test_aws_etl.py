"""`etl deploy` -> `etl run` -> `etl verify` end to end on the offline twin (real Spark job, real SQL)."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from pipekit.cli import app

pytestmark = pytest.mark.twin


def test_deploy_uploads_script_and_package_and_attaches_the_visual_graph(pipeline_run, etl_twin) -> None:
    import boto3

    dep = pipeline_run.deploy
    assert dep.script.uri.endswith("/scripts/customers_etl.py")
    assert dep.package.uri.endswith("/scripts/pipekit.zip")
    job = boto3.client("glue").get_job(JobName="customers-etl")["Job"]
    kinds = {next(iter(node)) for node in job["CodeGenConfigurationNodes"].values()}
    assert {"S3CsvSource", "SparkSQL", "PIIDetection", "S3GlueParquetTarget"} <= kinds
    assert job["Command"]["ScriptLocation"] == etl_twin.outputs["ScriptLocation"]
    # deploying again changes nothing: same bytes, same definition (deploy twice back to back, because
    # the package zip is built from the live source tree)
    from pipekit import etl

    etl.deploy()
    again = etl.deploy()
    assert not again.script.uploaded and not again.package.uploaded and not again.job_updated


def test_pipekit_zip_is_reproducible(tmp_path) -> None:
    import zipfile

    from pipekit import etl

    a = etl.build_pipekit_zip(tmp_path / "a.zip").read_bytes()
    b = etl.build_pipekit_zip(tmp_path / "b.zip").read_bytes()
    assert a == b
    names = zipfile.ZipFile(tmp_path / "a.zip").namelist()
    assert "pipekit/core/__init__.py" in names and "pipekit/spark/job.py" in names


def test_run_reports_every_step(pipeline_run) -> None:
    rep = pipeline_run.report
    assert rep.upload.uploaded
    assert rep.crawl.created == ["customers_csv"] or "customers_csv" in rep.crawl.changed
    assert rep.raw_rows == pipeline_run.rows
    assert rep.job_state == "SUCCEEDED"
    assert rep.parquet_rows == pipeline_run.rows
    for q in rep.queries:
        assert "/athena_results/" in q["csv"] and "/athena_results/parquet/" in q["parquet"]


def test_ingest_is_idempotent_and_the_original_is_untouched(pipeline_run) -> None:
    from pipekit import etl

    assert pipeline_run.second_ingest.uploaded is False
    assert pipeline_run.second_ingest.sha256 == pipeline_run.report.upload.sha256
    assert etl.fingerprint(pipeline_run.data) == pipeline_run.sha_before


def test_verify_passes_every_check(pipeline_run) -> None:
    v = pipeline_run.verify
    names = [c.name for c in v.checks]
    assert v.ok, [c for c in v.checks if not c.ok]
    assert len(names) == 6
    assert any("hu25" in n for n in names) and any("PII" in n for n in names)


def test_parquet_output_is_snappy_and_masked(pipeline_run, etl_twin) -> None:
    import boto3

    s3 = boto3.client("s3")
    prefix = etl_twin.outputs["ParquetPrefix"].split("/", 3)[3]
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=etl_twin.bucket, Prefix=prefix)["Contents"]
            if o["Key"].endswith(".parquet")]
    assert keys
    body = s3.get_object(Bucket=etl_twin.bucket, Key=keys[0])["Body"].read()
    meta = pq.ParquetFile(io.BytesIO(body)).metadata
    assert meta.row_group(0).column(0).compression == "SNAPPY"
    table = pq.read_table(io.BytesIO(body))
    assert set(table["FirstName"].to_pylist()) == {"hu25"}
    assert all("***" in e for e in table["EmailAddress"].to_pylist() if e)


def test_cli_verify_and_layout(pipeline_run, etl_twin) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["etl", "verify"])
    assert result.exit_code == 0, result.output
    assert result.output.count("PASS") == 6
    layout = runner.invoke(app, ["etl", "layout"])
    assert layout.exit_code == 0
    for prefix in ("athena_results", "customers_csv", "customers_parquet", "scripts", "temp-dir"):
        assert prefix in layout.output


def test_the_unchanged_aws_cli_reads_the_crawled_table(pipeline_run, etl_twin) -> None:
    aws = Path(sys.executable).parent / "aws"
    if not aws.exists():
        pytest.skip("the AWS CLI is not installed")
    proc = subprocess.run([str(aws), "glue", "get-table", "--database-name", "customers_database", "--name",
                           "customers_csv", "--query", "Table.StorageDescriptor.SerdeInfo.SerializationLibrary",
                           "--output", "text"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() in {"org.apache.hadoop.hive.serde2.OpenCSVSerde",
                                   "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe"}
