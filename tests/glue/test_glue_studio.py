"""The Glue Studio visual graph: valid for the Glue API, round-trips through create_job, runs in order."""

from __future__ import annotations

import copy

import pytest

from pipekit.aws.glue_studio import (
    MASK_ID,
    PII_ID,
    SOURCE_ID,
    TARGET_ID,
    customers_visual_job,
    describe_graph,
    validate_nodes,
)
from pipekit.core import ColumnRule, MaskingPolicy
from pipekit.errors import ConfigError

SRC = "s3://pipekit-etl/data/customers_database/customers_csv/"
DST = "s3://pipekit-etl/data/customers_database/customers_parquet/"


@pytest.fixture
def nodes() -> dict:
    return customers_visual_job(SRC, DST, database="customers_database", table="customers_parquet")


def test_graph_is_csv_source_then_mask_then_pii_then_parquet(nodes: dict) -> None:
    assert [line.split(":")[0] for line in describe_graph(nodes)] == [SOURCE_ID, MASK_ID, PII_ID, TARGET_ID]
    source = nodes[SOURCE_ID]["S3CsvSource"]
    assert source["Paths"] == [SRC] and source["WithHeader"] is True and source["Separator"] == "comma"
    sql = nodes[MASK_ID]["SparkSQL"]["SqlQuery"]
    assert "'hu25' END AS `FirstName`" in sql
    assert "regexp_replace(`EmailAddress`" in sql and "substring(`Phone`, -4)" in sql
    assert "'***' END AS `PasswordHash`" in sql and "'***' END AS `PasswordSalt`" in sql
    pii = nodes[PII_ID]["PIIDetection"]
    assert pii["PiiType"] == "ColumnMasking" and "EMAIL" in pii["EntityTypesToDetect"]
    target = nodes[TARGET_ID]["S3GlueParquetTarget"]
    assert target["Path"] == DST and target["Compression"] == "snappy"
    assert target["SchemaChangePolicy"]["Table"] == "customers_parquet"


def test_without_pii_detection_the_mask_node_feeds_the_target() -> None:
    nodes = customers_visual_job(SRC, DST, detect_pii=False)
    assert PII_ID not in nodes
    assert nodes[TARGET_ID]["S3GlueParquetTarget"]["Inputs"] == [MASK_ID]


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ((PII_ID, "PIIDetection", "PiiType"), "Everything", "is not one of"),
        ((PII_ID, "PIIDetection", "MaskValue"), "[REDACTED]", "does not match the API pattern"),
        ((SOURCE_ID, "S3CsvSource", "Separator"), ";", "is not one of"),
        ((TARGET_ID, "S3GlueParquetTarget", "Inputs"), ["node-nowhere"], "unknown node"),
        ((PII_ID, "PIIDetection", "ThresholdFraction"), 1.5, "outside"),
        ((MASK_ID, "SparkSQL", "Inputs"), [SOURCE_ID, TARGET_ID], "cycle"),
    ],
)
def test_invalid_graphs_are_rejected_with_the_field(nodes: dict, path: tuple, value: object, message: str) -> None:
    broken = copy.deepcopy(nodes)
    node_id, kind, field = path
    broken[node_id][kind][field] = value
    with pytest.raises(ConfigError, match=message):
        validate_nodes(broken)


def test_missing_required_member_is_caught_by_botocore(nodes: dict) -> None:
    broken = copy.deepcopy(nodes)
    del broken[TARGET_ID]["S3GlueParquetTarget"]["Path"]
    with pytest.raises(ConfigError, match="Path"):
        validate_nodes(broken)


def test_a_node_with_two_types_is_rejected(nodes: dict) -> None:
    broken = copy.deepcopy(nodes)
    broken[MASK_ID]["ApplyMapping"] = {"Name": "x", "Inputs": [SOURCE_ID], "Mapping": []}
    with pytest.raises(ConfigError, match="exactly one node type"):
        validate_nodes(broken)


def test_hash_rules_cannot_go_into_a_graph() -> None:
    policy = MaskingPolicy({"FirstName": ColumnRule("literal", value="hu25"), "Phone": ColumnRule("hash")})
    with pytest.raises(ConfigError, match="keyed hash"):
        customers_visual_job(SRC, DST, policy=policy)


def test_create_job_round_trips_the_graph_on_moto(nodes: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    moto = pytest.importorskip("moto")
    boto3 = pytest.importorskip("boto3")
    for var in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_GLUE", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with moto.mock_aws():
        glue = boto3.client("glue", region_name="us-east-1")
        glue.create_job(
            Name="customers-visual",
            Role="arn:aws:iam::123456789012:role/glue",
            Command={"Name": "glueetl", "ScriptLocation": "s3://pipekit-etl/scripts/customers_etl.py",
                     "PythonVersion": "3"},
            GlueVersion="5.0",
            CodeGenConfigurationNodes=nodes,
        )  # fmt: skip
        got = glue.get_job(JobName="customers-visual")["Job"]["CodeGenConfigurationNodes"]
    assert got == nodes
