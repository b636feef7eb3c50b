"""The twin's crawler against Glue's documented behaviour, one case per rule, through boto3.

Each case names the Glue documentation page that fixes its expected answer. Every crawler, crawl, table
and partition response in the suite is checked against botocore's output shape for that operation
(required members, member types, enum values). One twin process serves the module; each case gets a
fresh bucket and database.
"""

from __future__ import annotations

import bz2
import gzip
import importlib.util
import io
import json
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pyarrow as pa
import pytest

pytestmark = pytest.mark.twin

ROLE = "arn:aws:iam::123456789012:role/crawler"
CLASSIFIERS = "https://docs.aws.amazon.com/glue/latest/dg/add-classifier.html"
CUSTOM_CSV = "https://docs.aws.amazon.com/glue/latest/dg/custom-classifier.html#custom-classifier-csv"
LAST_CRAWL = "https://docs.aws.amazon.com/glue/latest/webapi/API_LastCrawlInfo.html"
SCHEMA_POLICY = "https://docs.aws.amazon.com/glue/latest/webapi/API_SchemaChangePolicy.html"
PREVENT_CHANGES = "https://docs.aws.amazon.com/glue/latest/dg/crawler-schema-changes-prevent.html"
PARTITIONS = "https://docs.aws.amazon.com/glue/latest/dg/crawler-s3-folder-table-partition.html"
GROUPING = "https://docs.aws.amazon.com/glue/latest/dg/crawler-grouping-policy.html"
TABLE_LEVEL = "https://docs.aws.amazon.com/glue/latest/dg/crawler-table-level.html"
EXCLUDE = "https://docs.aws.amazon.com/glue/latest/dg/define-crawler.html#crawler-data-stores-exclude"
INCREMENTAL = "https://docs.aws.amazon.com/glue/latest/dg/incremental-crawls.html"
UPDATE_CRAWLER = "https://docs.aws.amazon.com/glue/latest/webapi/API_UpdateCrawler.html"


# ---------------------------------------------------------------- botocore output-shape check


def _load_shapes() -> ModuleType:
    """tests/local/_shapes.py, imported by path under a unique name (tests/local is not a package)."""
    name = "pipekit_tests_shapes"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parent / "_shapes.py")
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def check_shape(client: Any, operation: str, response: dict[str, Any]) -> None:
    """Fail when ``response`` breaks botocore's output shape (required members, types, enum values)."""
    _load_shapes().assert_valid(client.meta.service_model.service_name, operation, response)


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def twin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A twin process of this module's own (no stack provisioned)."""
    helper = sys.modules["pipekit_tests_etl_twin"]  # loaded by tests/local/conftest.py
    server = helper.TwinProcess(tmp_path_factory.mktemp("crawler-fidelity")).start()
    yield server
    server.stop()


@dataclass
class Env:
    """A fresh bucket and database on the module's twin, with helpers to write, crawl and read."""

    glue: Any
    s3: Any
    bucket: str
    db: str

    def put(self, key: str, body: bytes | str) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=body.encode() if isinstance(body, str) else body)

    def crawler(self, path: str = "data/", *, classifier: dict[str, Any] | None = None,
                exclusions: list[str] | None = None, **extra: Any) -> str:
        name = f"crawler-{uuid.uuid4().hex[:8]}"
        if classifier is not None:
            cls_name = f"csv-{uuid.uuid4().hex[:8]}"
            self.glue.create_classifier(CsvClassifier={"Name": cls_name, **classifier})
            extra["Classifiers"] = [cls_name]
        target: dict[str, Any] = {"Path": f"s3://{self.bucket}/{path}"}
        if exclusions:
            target["Exclusions"] = exclusions
        if isinstance(extra.get("Configuration"), dict):
            extra["Configuration"] = json.dumps(extra["Configuration"])
        self.glue.create_crawler(Name=name, Role=ROLE, DatabaseName=self.db,
                                 Targets={"S3Targets": [target]}, **extra)
        return name

    def crawl(self, name: str, timeout: float = 60.0) -> dict[str, Any]:
        """Start a crawl, wait until it is over, return GetCrawler's Crawler (shape-checked)."""
        before = len(self.glue.list_crawls(CrawlerName=name)["Crawls"])
        self.glue.start_crawler(Name=name)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            crawls = self.glue.list_crawls(CrawlerName=name)
            check_shape(self.glue, "ListCrawls", crawls)
            if len(crawls["Crawls"]) > before and crawls["Crawls"][0]["State"] != "RUNNING":
                break
            time.sleep(0.1)
        got = self.glue.get_crawler(Name=name)
        check_shape(self.glue, "GetCrawler", got)
        assert got["Crawler"]["State"] == "READY"
        return got["Crawler"]

    def table(self, name: str) -> dict[str, Any]:
        got = self.glue.get_table(DatabaseName=self.db, Name=name)
        check_shape(self.glue, "GetTable", got)
        return got["Table"]

    def tables(self) -> list[str]:
        got = self.glue.get_tables(DatabaseName=self.db)
        check_shape(self.glue, "GetTables", got)
        return sorted(t["Name"] for t in got["TableList"])

    def columns(self, name: str) -> list[tuple[str, str]]:
        return [(c["Name"], c["Type"]) for c in self.table(name)["StorageDescriptor"]["Columns"]]

    def partitions(self, name: str) -> list[list[str]]:
        got = self.glue.get_partitions(DatabaseName=self.db, TableName=name)
        check_shape(self.glue, "GetPartitions", got)
        return sorted(p["Values"] for p in got["Partitions"])


@pytest.fixture()
def env(twin: Any) -> Env:
    import boto3

    kw = {"endpoint_url": twin.endpoint_url, "region_name": "us-east-1",
          "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    glue, s3 = boto3.client("glue", **kw), boto3.client("s3", **kw)
    tag = uuid.uuid4().hex[:8]
    bucket, db = f"crawl-{tag}", f"crawl_{tag}"
    s3.create_bucket(Bucket=bucket)
    glue.create_database(DatabaseInput={"Name": db})
    return Env(glue, s3, bucket, db)


PRESENT = {"Delimiter": ",", "QuoteSymbol": '"', "ContainsHeader": "PRESENT"}


# ---------------------------------------------------------------- crawl status (API_LastCrawlInfo)


def test_a_good_crawl_reads_succeeded(env: Env) -> None:
    """LastCrawl.Status is SUCCEEDED|CANCELLED|FAILED (https://docs.aws.amazon.com/glue/latest/webapi/API_LastCrawlInfo.html)."""
    env.put("data/a.csv", "id,name\n1,Ann\n")
    crawler = env.crawl(env.crawler())
    assert crawler["LastCrawl"]["Status"] == "SUCCEEDED"
    assert "ErrorMessage" not in crawler["LastCrawl"]
    assert env.glue.list_crawls(CrawlerName=crawler["Name"])["Crawls"][0]["State"] == "COMPLETED"
    metrics = env.glue.get_crawler_metrics(CrawlerNameList=[crawler["Name"]])
    check_shape(env.glue, "GetCrawlerMetrics", metrics)
    assert metrics["CrawlerMetricsList"][0]["TablesCreated"] == 1


def test_a_failed_crawl_reads_failed_with_a_printable_message(env: Env) -> None:
    """A failed crawl: LastCrawl.Status FAILED with ErrorMessage (https://docs.aws.amazon.com/glue/latest/webapi/API_LastCrawlInfo.html)."""
    env.put("data/a.csv.snappy", b"\x00\xff\xfe not snappy at all \x00\x01")
    crawler = env.crawl(env.crawler())
    assert crawler["LastCrawl"]["Status"] == "FAILED"
    message = crawler["LastCrawl"]["ErrorMessage"]
    assert "a.csv.snappy" in message and message.isprintable()


# ---------------------------------------------------------------- schema change policy


def test_a_header_only_file_changes_no_column_type(env: Env) -> None:
    """A header-only object gives no values, so no type changes (https://docs.aws.amazon.com/glue/latest/dg/custom-classifier.html#custom-classifier-csv)."""
    env.put("data/a.csv", "customerid,name\n1,Ann\n2,Bob\n")
    name = env.crawler(classifier=PRESENT)
    env.crawl(name)
    env.put("data/b.csv", "customerid,name\n")
    env.crawl(name)
    assert env.columns("data") == [("customerid", "bigint"), ("name", "string")]


def test_update_in_database_widens_a_column_to_string(env: Env) -> None:
    """UPDATE_IN_DATABASE rewrites the schema from the data; bigint+'C-1' is string (https://docs.aws.amazon.com/glue/latest/webapi/API_SchemaChangePolicy.html)."""
    env.put("data/a.csv", "customerid,name\n1,Ann\n")
    name = env.crawler(classifier=PRESENT)
    env.crawl(name)
    env.put("data/b.csv", "customerid,name\nC-1,Bob\n")
    crawler = env.crawl(name)
    assert crawler["LastCrawl"]["Status"] == "SUCCEEDED"
    assert env.columns("data") == [("customerid", "string"), ("name", "string")]


def test_merge_new_columns_keeps_existing_types_and_adds_columns(env: Env) -> None:
    """AddOrUpdateBehavior MergeNewColumns: only new columns are added (https://docs.aws.amazon.com/glue/latest/dg/crawler-schema-changes-prevent.html)."""
    env.put("data/a.csv", "customerid,name\n1,Ann\n")
    name = env.crawler(classifier=PRESENT, Configuration={
        "Version": 1.0, "CrawlerOutput": {"Tables": {"AddOrUpdateBehavior": "MergeNewColumns"}}})
    env.crawl(name)
    env.put("data/b.csv", "customerid,name,city\nC-1,Bob,Oslo\n")
    env.crawl(name)
    assert env.columns("data") == [("customerid", "bigint"), ("name", "string"), ("city", "string")]


def test_update_behavior_log_leaves_the_table_alone(env: Env) -> None:
    """UpdateBehavior LOG: the changed schema is only logged (https://docs.aws.amazon.com/glue/latest/webapi/API_SchemaChangePolicy.html)."""
    env.put("data/a.csv", "id,name\n1,Ann\n")
    name = env.crawler(classifier=PRESENT, SchemaChangePolicy={"UpdateBehavior": "LOG",
                                                               "DeleteBehavior": "LOG"})
    env.crawl(name)
    env.put("data/b.csv", "id,name,city\nx,Bob,Oslo\n")
    env.crawl(name)
    assert env.columns("data") == [("id", "bigint"), ("name", "string")]


@pytest.mark.parametrize("behavior", ["DELETE_FROM_DATABASE", "DEPRECATE_IN_DATABASE", "LOG"])
def test_delete_behavior_when_the_objects_are_gone(env: Env, behavior: str) -> None:
    """DeleteBehavior for a table whose objects were deleted (https://docs.aws.amazon.com/glue/latest/webapi/API_SchemaChangePolicy.html)."""
    env.put("data/people/a.csv", "id,name\n1,Ann\n")
    env.put("data/orders/a.csv", "order,amount,paid\nx,1.5,true\n")
    env.put("data/items/a.csv", "sku,price\nk,2.5\n")
    name = env.crawler(classifier=PRESENT, SchemaChangePolicy={"UpdateBehavior": "UPDATE_IN_DATABASE",
                                                               "DeleteBehavior": behavior})
    env.crawl(name)
    assert env.tables() == ["items", "orders", "people"]
    env.s3.delete_object(Bucket=env.bucket, Key="data/orders/a.csv")
    env.crawl(name)
    metrics = env.glue.get_crawler_metrics(CrawlerNameList=[name])["CrawlerMetricsList"][0]
    if behavior == "DELETE_FROM_DATABASE":
        assert env.tables() == ["items", "people"] and metrics["TablesDeleted"] == 1
    else:
        assert env.tables() == ["items", "orders", "people"] and metrics["TablesDeleted"] == 0
        deprecated = "DEPRECATED_BY_CRAWLER" in env.table("orders")["Parameters"]
        assert deprecated is (behavior == "DEPRECATE_IN_DATABASE")


# ---------------------------------------------------------------- compressed objects (built-in classifiers)


def _snappy(data: bytes) -> bytes:
    return pa.compress(data, codec="snappy", asbytes=True)


@pytest.mark.parametrize(("suffix", "pack", "kind"), [
    (".csv.gz", gzip.compress, "gzip"), (".csv.bz2", bz2.compress, "bzip2"), (".csv.snappy", _snappy, "snappy")])
def test_compressed_csv_is_classified(env: Env, suffix: str, pack: Any, kind: str) -> None:
    """Built-in classifiers read gzip, bzip2 and Snappy objects (https://docs.aws.amazon.com/glue/latest/dg/add-classifier.html)."""
    env.put(f"data/a{suffix}", pack(b"id,name,score\n1,Ann,1.5\n2,Bob,2\n"))
    crawler = env.crawl(env.crawler())
    assert crawler["LastCrawl"]["Status"] == "SUCCEEDED"
    table = env.table("data")
    assert env.columns("data") == [("id", "bigint"), ("name", "string"), ("score", "double")]
    assert table["Parameters"]["compressionType"] == kind
    assert table["Parameters"]["recordCount"] == "2"


# ---------------------------------------------------------------- partitions and grouping


def test_hive_folders_become_partition_keys_and_recrawl_adds_partitions(env: Env) -> None:
    """year=/month= folders with one schema: one table, partition keys year, month (https://docs.aws.amazon.com/glue/latest/dg/crawler-s3-folder-table-partition.html)."""
    env.put("data/year=2024/month=01/a.csv", "id,name\n1,Ann\n")
    env.put("data/year=2024/month=02/a.csv", "id,name\n2,Bob\n")
    name = env.crawler(classifier=PRESENT)
    env.crawl(name)
    table = env.table("data")
    assert [k["Name"] for k in table["PartitionKeys"]] == ["year", "month"]
    assert env.columns("data") == [("id", "bigint"), ("name", "string")]
    assert env.partitions("data") == [["2024", "01"], ["2024", "02"]]
    part = env.glue.get_partition(DatabaseName=env.db, TableName="data", PartitionValues=["2024", "01"])
    check_shape(env.glue, "GetPartition", part)
    assert part["Partition"]["StorageDescriptor"]["Location"] == f"s3://{env.bucket}/data/year=2024/month=01/"
    env.put("data/year=2024/month=03/a.csv", "id,name\n3,Cid\n")
    env.crawl(name)
    assert env.partitions("data") == [["2024", "01"], ["2024", "02"], ["2024", "03"]]


def test_unlike_subfolders_become_one_table_each(env: Env) -> None:
    """Folders whose schemas are not similar become separate tables year_2017, year_2018 (https://docs.aws.amazon.com/glue/latest/dg/crawler-grouping-policy.html)."""
    env.put("data/year=2017/data1.csv", "a,b\n1,2\n")
    env.put("data/year=2018/data2.csv", "c,d\n3,4\n")
    env.crawl(env.crawler(classifier=PRESENT))
    assert env.tables() == ["year_2017", "year_2018"]
    assert env.columns("year_2017") == [("a", "bigint"), ("b", "bigint")]
    assert env.table("year_2018")["PartitionKeys"] == []


def test_combine_compatible_schemas_makes_one_table(env: Env) -> None:
    """TableGroupingPolicy CombineCompatibleSchemas: one table A,B,C,D partitioned by year (https://docs.aws.amazon.com/glue/latest/dg/crawler-grouping-policy.html)."""
    env.put("data/year=2017/data1.csv", "a,b\n1,2\n")
    env.put("data/year=2018/data2.csv", "c,d\n3,4\n")
    env.crawl(env.crawler(classifier=PRESENT, Configuration={
        "Version": 1.0, "Grouping": {"TableGroupingPolicy": "CombineCompatibleSchemas"}}))
    assert env.tables() == ["data"]
    assert env.columns("data") == [("a", "bigint"), ("b", "bigint"), ("c", "bigint"), ("d", "bigint")]
    assert [k["Name"] for k in env.table("data")["PartitionKeys"]] == ["year"]


def test_table_level_configuration_sets_the_table_folder(env: Env) -> None:
    """TableLevelConfiguration 2: tables at mydataset/<level 2>, deeper folders are partitions (https://docs.aws.amazon.com/glue/latest/dg/crawler-table-level.html)."""
    env.put("mydataset/year=2024/month=01/a.csv", "id\n1\n")
    env.put("mydataset/year=2025/month=01/a.csv", "id\n2\n")
    env.crawl(env.crawler("mydataset/", classifier=PRESENT, Configuration={
        "Version": 1.0, "Grouping": {"TableLevelConfiguration": 2}}))
    assert env.tables() == ["year_2024", "year_2025"]
    assert env.table("year_2024")["StorageDescriptor"]["Location"] == f"s3://{env.bucket}/mydataset/year=2024/"
    assert [k["Name"] for k in env.table("year_2024")["PartitionKeys"]] == ["month"]
    assert env.partitions("year_2025") == [["01"]]


# ---------------------------------------------------------------- header detection


def test_header_less_numeric_file_gets_col_names_and_keeps_every_row(env: Env) -> None:
    """Built-in CSV rule: a numeric first row is data, columns col0..; no row lost (https://docs.aws.amazon.com/glue/latest/dg/add-classifier.html)."""
    env.put("data/a.csv", "1,2.5,3\n4,5.5,6\n7,8.5,9\n")
    env.crawl(env.crawler())
    table = env.table("data")
    assert env.columns("data") == [("col0", "bigint"), ("col1", "double"), ("col2", "bigint")]
    assert table["Parameters"]["recordCount"] == "3"
    assert "skip.header.line.count" not in table["Parameters"]


def test_an_all_string_file_is_not_assumed_to_have_a_header(env: Env) -> None:
    """Built-in CSV rule: with every row strings, the first row is not a header (https://docs.aws.amazon.com/glue/latest/dg/add-classifier.html)."""
    env.put("data/a.csv", "name,city\nAnn,Oslo\nBob,Rome\n")
    env.crawl(env.crawler())
    table = env.table("data")
    assert env.columns("data") == [("col0", "string"), ("col1", "string")]
    assert table["Parameters"]["recordCount"] == "3"


def test_built_in_rule_finds_a_header_above_typed_rows(env: Env) -> None:
    """Built-in CSV rule: string header over a row with a non-string field (https://docs.aws.amazon.com/glue/latest/dg/add-classifier.html)."""
    env.put("data/a.csv", "name,age\nAnn,31\nBob,40\n")
    env.crawl(env.crawler())
    assert env.columns("data") == [("name", "string"), ("age", "bigint")]
    assert env.table("data")["Parameters"]["skip.header.line.count"] == "1"


@pytest.mark.parametrize(("mode", "expected", "rows"), [
    ("PRESENT", [("name", "string"), ("city", "string")], "2"),
    ("ABSENT", [("col0", "string"), ("col1", "string")], "3"),
    ("UNKNOWN", [("col0", "string"), ("col1", "string")], "3"),
])
def test_custom_classifier_contains_header_and_delimiter(env: Env, mode: str, expected: list[Any],
                                                         rows: str) -> None:
    """Custom CSV classifier: ContainsHeader PRESENT/ABSENT/UNKNOWN and Delimiter (https://docs.aws.amazon.com/glue/latest/dg/custom-classifier.html#custom-classifier-csv)."""
    env.put("data/a.csv", "name;city\nAnn;Oslo\nBob;Rome\n")
    env.crawl(env.crawler(classifier={"Delimiter": ";", "ContainsHeader": mode}))
    table = env.table("data")
    assert env.columns("data") == expected
    assert table["Parameters"]["recordCount"] == rows
    assert table["StorageDescriptor"]["SerdeInfo"]["Parameters"]["field.delim"] == ";"


# ---------------------------------------------------------------- delimiters


@pytest.mark.parametrize("delimiter", [",", "|", "\t", ";"])
def test_built_in_classifier_detects_the_delimiter(env: Env, delimiter: str) -> None:
    """Built-in CSV classifier: comma, pipe, tab and semicolon (https://docs.aws.amazon.com/glue/latest/dg/add-classifier.html)."""
    rows = [["id", "name", "score"], ["1", "Ann", "1.5"], ["2", "Bob", "2.5"]]
    env.put("data/a.txt", "".join(delimiter.join(r) + "\n" for r in rows))
    env.crawl(env.crawler())
    table = env.table("data")
    assert env.columns("data") == [("id", "bigint"), ("name", "string"), ("score", "double")]
    assert table["Parameters"]["delimiter"] == delimiter


# ---------------------------------------------------------------- exclusions and recrawl policy


def test_exclusion_patterns_skip_matching_objects(env: Env) -> None:
    """S3Target Exclusions are glob patterns relative to the include path (https://docs.aws.amazon.com/glue/latest/dg/define-crawler.html#crawler-data-stores-exclude)."""
    env.put("data/a.csv", "id,name\n1,Ann\n")
    env.put("data/notes.tmp", "id,name,extra\nx,y,z\n")
    env.put("data/archive/old.csv", "id,name,legacy\n1,Ann,zz\n")
    env.crawl(env.crawler(classifier=PRESENT, exclusions=["*.tmp", "archive/**"]))
    assert env.tables() == ["data"]
    assert env.columns("data") == [("id", "bigint"), ("name", "string")]
    assert env.table("data")["Parameters"]["objectCount"] == "1"


def test_crawl_new_folders_only_adds_new_partitions_and_nothing_else(env: Env) -> None:
    """RecrawlBehavior CRAWL_NEW_FOLDERS_ONLY: later crawls add only new folders' partitions (https://docs.aws.amazon.com/glue/latest/dg/incremental-crawls.html)."""
    env.put("data/month=01/a.csv", "id,name\n1,Ann\n")
    name = env.crawler(classifier=PRESENT, RecrawlPolicy={"RecrawlBehavior": "CRAWL_NEW_FOLDERS_ONLY"},
                       SchemaChangePolicy={"UpdateBehavior": "LOG", "DeleteBehavior": "LOG"})
    env.crawl(name)
    env.put("data/month=01/b.csv", "id,name,late\nx,Bob,1\n")  # an existing folder: not crawled again
    env.put("data/month=02/a.csv", "id,name\n2,Cid\n")
    crawler = env.crawl(name)
    assert crawler["RecrawlPolicy"]["RecrawlBehavior"] == "CRAWL_NEW_FOLDERS_ONLY"
    assert env.columns("data") == [("id", "bigint"), ("name", "string")]
    assert env.partitions("data") == [["01"], ["02"]]


def test_update_crawler_changes_the_next_crawl(env: Env) -> None:
    """UpdateCrawler changes Configuration and bumps Version (https://docs.aws.amazon.com/glue/latest/webapi/API_UpdateCrawler.html)."""
    env.put("data/year=2017/data1.csv", "a,b\n1,2\n")
    env.put("data/year=2018/data2.csv", "c,d\n3,4\n")
    name = env.crawler(classifier=PRESENT)
    before = env.glue.get_crawler(Name=name)["Crawler"]["Version"]
    env.glue.update_crawler(Name=name, Configuration=json.dumps(
        {"Version": 1.0, "Grouping": {"TableGroupingPolicy": "CombineCompatibleSchemas"}}))
    crawler = env.crawl(name)
    assert crawler["Version"] == before + 1
    assert env.tables() == ["data"]
    got = env.glue.batch_get_crawlers(CrawlerNames=[name, "missing"])
    check_shape(env.glue, "BatchGetCrawlers", got)
    assert got["CrawlersNotFound"] == ["missing"]


def test_parquet_objects_are_read_from_their_footer(env: Env) -> None:
    """Parquet: the schema comes from the file itself (https://docs.aws.amazon.com/glue/latest/dg/add-classifier.html)."""
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(pa.table({"id": pa.array([1, 2], pa.int32()), "name": ["a", "b"]}), buf)
    env.put("data/dt=2024-01-01/part-0.parquet", buf.getvalue())
    env.crawl(env.crawler())
    assert env.columns("data") == [("id", "int"), ("name", "string")]
    assert env.table("data")["Parameters"]["classification"] == "parquet"
    assert env.partitions("data") == [["2024-01-01"]]


def test_a_stopped_crawl_reads_cancelled(env: Env) -> None:
    """StopCrawler: State STOPPING, then READY with LastCrawl.Status CANCELLED (https://docs.aws.amazon.com/glue/latest/webapi/API_LastCrawlInfo.html)."""
    from botocore.exceptions import ClientError

    env.put("data/a.csv", "id,name\n" + "1,Ann\n" * 300_000)
    name = env.crawler(classifier=PRESENT)
    env.glue.start_crawler(Name=name)
    try:
        env.glue.stop_crawler(Name=name)
        stopped = True
    except ClientError as exc:  # the crawl may be over already on a fast machine
        assert exc.response["Error"]["Code"] == "CrawlerNotRunningException"
        stopped = False
    deadline = time.monotonic() + 60
    while env.glue.get_crawler(Name=name)["Crawler"]["State"] != "READY" and time.monotonic() < deadline:
        time.sleep(0.1)
    crawler = env.glue.get_crawler(Name=name)
    check_shape(env.glue, "GetCrawler", crawler)
    assert crawler["Crawler"]["LastCrawl"]["Status"] == ("CANCELLED" if stopped else "SUCCEEDED")
    history = env.glue.list_crawls(CrawlerName=name)
    check_shape(env.glue, "ListCrawls", history)
    assert history["Crawls"][0]["State"] == ("STOPPED" if stopped else "COMPLETED")
