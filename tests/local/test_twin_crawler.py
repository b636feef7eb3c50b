"""The twin's crawler infers schemas from the objects and registers tables the way Glue does."""

from __future__ import annotations

import io
import uuid

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipekit.aws import catalog
from pipekit.errors import JobRunError

pytestmark = pytest.mark.twin

OPEN_CSV = "org.apache.hadoop.hive.serde2.OpenCSVSerde"
LAZY = "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe"
PARQUET = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"


@pytest.fixture()
def crawl_env(etl_twin):
    """A fresh database, prefix and crawler (with a header CSV classifier) for one test."""
    import boto3

    glue = boto3.client("glue")
    tag = uuid.uuid4().hex[:8]
    db = f"crawl_{tag}"
    glue.create_database(DatabaseInput={"Name": db})
    classifier = f"csv-{tag}"
    glue.create_classifier(CsvClassifier={"Name": classifier, "Delimiter": ",", "QuoteSymbol": '"',
                                          "ContainsHeader": "PRESENT"})
    prefix = f"temp-dir/crawl-{tag}/people/"

    def make_crawler(path_prefix: str = prefix) -> str:
        name = f"crawler-{uuid.uuid4().hex[:8]}"
        glue.create_crawler(Name=name, Role="arn:aws:iam::123456789012:role/crawler", DatabaseName=db,
                            Classifiers=[classifier],
                            Targets={"S3Targets": [{"Path": f"s3://{etl_twin.bucket}/{path_prefix}"}]})
        return name

    return etl_twin, db, prefix, make_crawler, boto3.client("s3")


def test_quoted_csv_gets_open_csv_serde_header_skip_and_types(crawl_env) -> None:
    twin, db, prefix, make_crawler, s3 = crawl_env
    s3.put_object(Bucket=twin.bucket, Key=prefix + "a.csv",
                  Body=b'CustomerID,First Name,Score,Company\n1,Ann,1.5,"Bikes, Inc."\n2,Bob,2,Shop\n')
    report = catalog.run_crawler(make_crawler(), db, poll_s=0.1)
    assert report.created == ["people"] and report.status == "SUCCEEDED"
    table = catalog.get_table(db, "people")
    assert catalog.table_columns(table) == [("customerid", "bigint"), ("first_name", "string"),
                                            ("score", "double"), ("company", "string")]
    assert catalog.table_serde(table) == OPEN_CSV
    params = table["Parameters"]
    assert params["skip.header.line.count"] == "1"
    assert params["classification"] == "csv"
    assert params["recordCount"] == "2"
    assert table["StorageDescriptor"]["Location"] == f"s3://{twin.bucket}/{prefix}"


def test_unquoted_csv_gets_lazy_simple_serde_and_recrawl_reports_changes(crawl_env) -> None:
    twin, db, prefix, make_crawler, s3 = crawl_env
    s3.put_object(Bucket=twin.bucket, Key=prefix + "a.csv", Body=b"id,name\n1,Ann\n")
    crawler = make_crawler()
    assert catalog.run_crawler(crawler, db, poll_s=0.1).created == ["people"]
    assert catalog.table_serde(catalog.get_table(db, "people")) == LAZY
    again = catalog.run_crawler(crawler, db, poll_s=0.1)
    assert again.created == [] and again.changed == [] and again.unchanged == ["people"]
    s3.put_object(Bucket=twin.bucket, Key=prefix + "b.csv", Body=b"id,name,city\n2,Bob,Oslo\n")
    changed = catalog.run_crawler(crawler, db, poll_s=0.1)
    assert changed.changed == ["people"]
    assert [c for c, _ in catalog.table_columns(catalog.get_table(db, "people"))] == ["id", "name", "city"]
    import boto3

    metrics = boto3.client("glue").get_crawler_metrics(CrawlerNameList=[crawler])["CrawlerMetricsList"][0]
    assert metrics["TablesUpdated"] == 1 and metrics["TablesCreated"] == 0


def test_parquet_objects_get_a_parquet_table(crawl_env) -> None:
    twin, db, prefix, make_crawler, s3 = crawl_env
    buf = io.BytesIO()
    pq.write_table(pa.table({"id": pa.array([1, 2], pa.int64()), "when": pa.array([1.0, 2.0]),
                             "name": ["a", "b"]}), buf)
    s3.put_object(Bucket=twin.bucket, Key=prefix + "part-0.parquet", Body=buf.getvalue())
    s3.put_object(Bucket=twin.bucket, Key=prefix + "_SUCCESS", Body=b"")
    catalog.run_crawler(make_crawler(), db, poll_s=0.1)
    table = catalog.get_table(db, "people")
    assert catalog.table_serde(table) == PARQUET
    assert table["Parameters"]["classification"] == "parquet"
    assert catalog.table_columns(table) == [("id", "bigint"), ("when", "double"), ("name", "string")]


def test_a_failed_crawl_reports_glue_error_message(crawl_env) -> None:
    twin, db, prefix, make_crawler, s3 = crawl_env
    buf = io.BytesIO()
    pq.write_table(pa.table({"id": [1]}), buf)
    s3.put_object(Bucket=twin.bucket, Key=prefix + "a.parquet", Body=buf.getvalue())
    s3.put_object(Bucket=twin.bucket, Key=prefix + "b.csv", Body=b"id\n1\n")
    with pytest.raises(JobRunError, match="mixes"):
        catalog.run_crawler(make_crawler(), db, poll_s=0.1)


def test_starting_a_running_crawler_is_refused(crawl_env) -> None:
    import boto3
    from botocore.exceptions import ClientError

    twin, _db, prefix, make_crawler, s3 = crawl_env
    s3.put_object(Bucket=twin.bucket, Key=prefix + "a.csv", Body=b"id\n" + b"1\n" * 200_000)
    name = make_crawler()
    glue = boto3.client("glue")
    glue.start_crawler(Name=name)
    state = glue.get_crawler(Name=name)["Crawler"]["State"]
    if state == "RUNNING":  # the crawl may already be over on a fast machine
        with pytest.raises(ClientError, match="CrawlerRunningException"):
            glue.start_crawler(Name=name)
    from datetime import UTC, datetime

    catalog.wait_for_crawler(name, datetime(2000, 1, 1, tzinfo=UTC), poll_s=0.1)


def test_classifiers_round_trip(etl_twin) -> None:
    import boto3
    from botocore.exceptions import ClientError

    glue = boto3.client("glue")
    name = f"cls-{uuid.uuid4().hex[:6]}"
    glue.create_classifier(CsvClassifier={"Name": name, "ContainsHeader": "ABSENT", "Delimiter": ";"})
    assert glue.get_classifier(Name=name)["Classifier"]["CsvClassifier"]["Delimiter"] == ";"
    with pytest.raises(ClientError, match="AlreadyExists"):
        glue.create_classifier(CsvClassifier={"Name": name})
    glue.delete_classifier(Name=name)
    with pytest.raises(ClientError, match="EntityNotFound"):
        glue.get_classifier(Name=name)
