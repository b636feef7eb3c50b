"""Glue job bookmarks on the twin: `etl run a.csv` then `etl run b.csv` reads only b.csv the second time.

The real entrypoint runs on local Spark (about 30 s a run). The twin keeps the bookmark per job and hands it
to the script; GetJobBookmark / ResetJobBookmark answer with AWS's JobBookmarkEntry (checked here through
the unchanged AWS CLI as well). AWS's documented rules checked: a failed run does not advance the bookmark
(https://docs.aws.amazon.com/glue/latest/dg/monitor-continuations.html), and a job that never committed
one has no entry (EntityNotFoundException).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipekit.errors import JobRunError

pytestmark = pytest.mark.twin

AWS = Path(sys.executable).with_name("aws")


def _cli(*args: str) -> dict:
    proc = subprocess.run([str(AWS), *args, "--output", "json"], capture_output=True, text=True, timeout=120,
                          env=os.environ.copy())  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _check_entry(entry: dict) -> None:
    """The JobBookmarkEntry members and types of botocore's Glue model."""
    import botocore.session

    shape = botocore.session.get_session().get_service_model("glue").shape_for("JobBookmarkEntry")
    py = {"string": str, "integer": int}
    assert set(entry) <= set(shape.members)
    for name, value in entry.items():
        assert isinstance(value, py[shape.members[name].type_name]), (name, value)


def test_second_run_reads_only_the_new_file(private_etl_twin, tmp_path: Path) -> None:
    import boto3

    from pipekit import etl
    from pipekit.sample import write_adventureworks_csv

    outputs = private_etl_twin.outputs
    job, bucket = outputs["JobName"], private_etl_twin.bucket
    glue, s3 = boto3.client("glue"), boto3.client("s3")
    a = write_adventureworks_csv(tmp_path / "a.csv", 40, seed=1)
    b = write_adventureworks_csv(tmp_path / "b.csv", 25, seed=2)
    etl.deploy(visual=False)
    with pytest.raises(glue.exceptions.EntityNotFoundException, match="Continuation"):
        glue.get_job_bookmark(JobName=job)  # never committed

    first = etl.run(a, poll_s=0.5)
    assert first.job_state == "SUCCEEDED"
    assert first.job_stats["files_read"] == ["a.csv"] and first.job_stats["rows_in"] == 40
    assert first.job_stats["bookmark"] == "job-bookmark-enable"
    day = first.job_stats["partition"].split("=", 1)[1]
    assert first.partitions_added == [day]
    table = glue.get_table(DatabaseName=outputs["DatabaseName"], Name=outputs["ParquetTableName"])["Table"]
    assert [k["Name"] for k in table["PartitionKeys"]] == ["ingest_date"]
    parts = glue.get_partitions(DatabaseName=outputs["DatabaseName"], TableName=outputs["ParquetTableName"])
    assert [p["Values"] for p in parts["Partitions"]] == [[day]]
    assert parts["Partitions"][0]["StorageDescriptor"]["Location"].endswith(f"/customers_parquet/ingest_date={day}/")
    entry = glue.get_job_bookmark(JobName=job)["JobBookmarkEntry"]
    _check_entry(entry)
    assert (entry["JobName"], entry["Run"], entry["RunId"]) == (job, 1, first.job_run_id)
    assert list(json.loads(entry["JobBookmark"])["states"]["customers_source"]["files"]) == ["a.csv"]

    # A bad drop fails the run: the bookmark stays, nothing is appended.
    raw_prefix = outputs["RawPrefix"].split("/", 3)[3]
    parquet_prefix = outputs["ParquetPrefix"].split("/", 3)[3]
    parquet_before = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=parquet_prefix)["Contents"]}
    s3.put_object(Bucket=bucket, Key=raw_prefix + "bad.csv",
                  Body=a.read_bytes() + b"1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20\n")
    res = etl.resources()
    with pytest.raises(JobRunError, match="malformed"):
        etl.run_job(res, poll_s=0.5)
    assert glue.get_job_bookmark(JobName=job)["JobBookmarkEntry"] == entry
    assert {o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=parquet_prefix)["Contents"]} == parquet_before
    s3.delete_object(Bucket=bucket, Key=raw_prefix + "bad.csv")

    second = etl.run(b, poll_s=0.5)
    assert second.job_state == "SUCCEEDED"
    assert second.job_stats["files_read"] == ["b.csv"] and second.job_stats["rows_in"] == 25
    assert second.job_stats["files_skipped"] == 1
    assert second.parquet_rows == 65  # Athena counts both drops
    assert "read 1 file (b.csv), 25 rows" in second.describe_job()
    report = etl.verify()
    assert report.ok, [c for c in report.checks if not c.ok]

    # The unchanged AWS CLI: get-job-bookmark, reset-job-bookmark.
    got = _cli("glue", "get-job-bookmark", "--job-name", job)["JobBookmarkEntry"]
    _check_entry(got)
    assert (got["Run"], got["RunId"], got["PreviousRunId"]) == (2, second.job_run_id, first.job_run_id)
    assert sorted(json.loads(got["JobBookmark"])["states"]["customers_source"]["files"]) == ["a.csv", "b.csv"]
    by_run = _cli("glue", "get-job-bookmark", "--job-name", job, "--run-id", first.job_run_id)["JobBookmarkEntry"]
    assert by_run["RunId"] == first.job_run_id
    reset = _cli("glue", "reset-job-bookmark", "--job-name", job)["JobBookmarkEntry"]
    _check_entry(reset)
    assert reset["JobName"] == job and reset["JobBookmark"] == "" and reset["Version"] == got["Version"] + 1
    assert _cli("glue", "get-job-bookmark", "--job-name", job)["JobBookmarkEntry"] == reset
    proc = subprocess.run([str(AWS), "glue", "get-job-bookmark", "--job-name", "no-such-job"], capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert proc.returncode != 0 and "EntityNotFoundException" in proc.stderr

    # After the reset a paused run reads everything again but leaves the bookmark where it is.
    paused = etl.run_job(res, arguments={"--job-bookmark-option": "job-bookmark-pause"}, poll_s=0.5)
    stats = etl.job_report(paused.run_id)
    assert stats["bookmark"] == "job-bookmark-pause" and stats["files_read"] == ["a.csv", "b.csv"]
    assert glue.get_job_bookmark(JobName=job)["JobBookmarkEntry"] == reset
