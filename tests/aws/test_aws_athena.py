"""Athena on the twin: results land as CSV (+ .metadata) and a Parquet copy under athena_results/."""

from __future__ import annotations

import io

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from pipekit.aws import athena
from pipekit.cli import app
from pipekit.errors import JobRunError

pytestmark = pytest.mark.twin

WG = "pipekit-etl"
DB = "customers_database"


def _get(bucket: str, key: str) -> bytes:
    import boto3

    return boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()


def test_select_writes_csv_metadata_and_parquet_copy(pipeline_run, etl_twin) -> None:
    import boto3

    result = athena.run_query("SELECT customerid, firstname FROM customers_parquet ORDER BY CAST(customerid AS "
                              "bigint) LIMIT 3", workgroup=WG, database=DB)
    assert result.columns == ["customerid", "firstname"]
    assert result.rows == [["1", "hu25"], ["2", "hu25"], ["3", "hu25"]]
    bucket, key = result.csv_uri[5:].split("/", 1)
    assert key == f"athena_results/{result.query_id}.csv"
    assert _get(bucket, key).decode() == '"customerid","firstname"\n"1","hu25"\n"2","hu25"\n"3","hu25"\n'
    assert _get(bucket, key + ".metadata")
    prefix = result.parquet_uri[5:].split("/", 1)[1]
    assert prefix == f"athena_results/parquet/{result.query_id}/"
    objs = boto3.client("s3").list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]
    table = pq.read_table(io.BytesIO(_get(bucket, objs[0]["Key"])))
    assert table.column_names == ["customerid", "firstname"]
    assert table.num_rows == 3
    assert pq.ParquetFile(io.BytesIO(_get(bucket, objs[0]["Key"]))).metadata.row_group(0).column(0).compression \
        == "SNAPPY"


def test_the_raw_csv_table_reads_through_its_serde(pipeline_run, etl_twin) -> None:
    result = athena.run_query("SELECT count(*) FROM customers_csv WHERE emailaddress LIKE '%@%' AND firstname <> "
                              "'hu25'", workgroup=WG, database=DB, parquet_copy=False)
    assert result.scalar() == str(pipeline_run.rows)  # raw data is unmasked; the header row is skipped
    assert result.parquet_uri is None


def test_results_page_past_1000_rows(etl_twin) -> None:
    result = athena.run_query("SELECT x FROM UNNEST(sequence(1, 2500)) AS t(x)", workgroup=WG, parquet_copy=False)
    assert len(result.rows) == 2500
    assert result.rows[0] == ["1"] and result.rows[-1] == ["2500"]
    assert result.types == ["bigint"]


def test_workgroup_output_location_is_enforced(etl_twin) -> None:
    result = athena.run_query("SELECT 1 AS one", workgroup=WG, parquet_copy=False,
                              output_location=f"s3://{etl_twin.bucket}/elsewhere/")
    assert f"s3://{etl_twin.bucket}/athena_results/" in result.csv_uri


@pytest.mark.parametrize(("sql", "reason"), [
    ("SELECT * FROM no_such_table", "TABLE_NOT_FOUND"),
    ("SELEC nonsense FROM", "SYNTAX_ERROR"),
    ("SELECT no_such_column FROM customers_parquet", "COLUMN_NOT_FOUND"),
])
def test_failed_queries_carry_athenas_reason(pipeline_run, etl_twin, sql: str, reason: str) -> None:
    with pytest.raises(JobRunError, match=reason):
        athena.run_query(sql, workgroup=WG, database=DB)


def test_unload_refuses_a_non_empty_target(etl_twin) -> None:
    import boto3

    boto3.client("s3").put_object(Bucket=etl_twin.bucket, Key="athena_results/taken/x.parquet", Body=b"x")
    qid = athena.start_query(f"UNLOAD (SELECT 1 AS a) TO 's3://{etl_twin.bucket}/athena_results/taken/' "
                             "WITH (format = 'PARQUET')", workgroup=WG)
    with pytest.raises(JobRunError, match="HIVE_PATH_ALREADY_EXISTS"):
        athena.wait_for_query(qid, poll_s=0.1)


def test_cli_query_prints_a_table_and_both_locations(pipeline_run, etl_twin) -> None:
    result = CliRunner().invoke(app, ["aws", "query", "SELECT firstname, count(*) AS n FROM customers_parquet "
                                      "GROUP BY firstname"])
    assert result.exit_code == 0, result.output
    assert "hu25" in result.output and str(pipeline_run.rows) in result.output
    assert "CSV result:" in result.output and "Parquet copy:" in result.output
    bad = CliRunner().invoke(app, ["aws", "query", "SELECT * FROM nope"])
    assert bad.exit_code == 1 and "TABLE_NOT_FOUND" in bad.output and "Traceback" not in bad.output
