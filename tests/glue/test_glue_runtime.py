"""The job's code only needs what AWS Glue 5.0 provides (Spark 3.5, Python 3.11, pandas, pyarrow, numpy)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from pipekit.errors import ConfigError
from pipekit.spark.job import parse_job_args, resolve_options

# Neither Glue nor the job needs these; importing one would break the job on Glue (or slow it down).
NOT_ON_GLUE = ("typer", "rich", "moto", "duckdb", "polars", "sqlglot", "airflow", "great_expectations", "sklearn")


def test_job_modules_import_nothing_glue_lacks() -> None:
    code = (
        "import json, sys\n"
        "import pipekit.spark.job, pipekit.spark.etl, pipekit.spark.masking, pipekit.spark._sql\n"
        "print(json.dumps(sorted(m.split('.')[0] for m in sys.modules)))\n"
    )
    loaded = set(json.loads(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                                           text=True).stdout))  # fmt: skip
    assert not loaded & set(NOT_ON_GLUE), loaded & set(NOT_ON_GLUE)
    assert "pyspark" not in loaded  # imported only when the job runs, inside the functions


def test_glue_style_arguments_are_parsed() -> None:
    argv = ["--JOB_NAME", "customers-etl", "--JOB_ID", "j_1", "--JOB_RUN_ID", "jr_1",
            "--job-bookmark-option", "job-bookmark-enable", "--TempDir", "s3://b/temp-dir/",
            "--source_path=s3://b/in/", "--target_path", "s3://b/out/", "--detect_pii", "False",
            "--pii_sample", "50", "--enable-metrics"]  # fmt: skip
    args = parse_job_args(argv)
    assert (args.job_name, args.source_path, args.target_path) == ("customers-etl", "s3://b/in/", "s3://b/out/")
    assert args.temp_dir == "s3://b/temp-dir/" and args.bookmarks and not args.detect_pii
    assert args.pii_sample == 50 and args.policy is None and not args.multiline
    assert args.as_dict["JOB_RUN_ID"] == "jr_1" and resolve_options(argv)["enable-metrics"] == "true"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--JOB_NAME", "x", "--source_path", "a"], "--target_path"),
        (["--JOB_NAME", "x", "--source_path", "a", "--target_path", "b", "--detect_pii", "maybe"], "true or false"),
        (["--JOB_NAME", "x", "--source_path", "a", "--target_path", "b", "--pii_sample", "-3"], "non-negative"),
    ],
)
def test_bad_arguments_name_the_argument(argv: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_job_args(argv)


def test_policy_from_s3(monkeypatch: pytest.MonkeyPatch) -> None:
    moto = pytest.importorskip("moto")
    boto3 = pytest.importorskip("boto3")
    from pipekit.spark.job import load_policy

    for var in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with moto.mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="policies")
        s3.put_object(Bucket="policies", Key="p.json", Body=b'{"columns": {"FirstName": {"strategy": "literal", '
                                                            b'"value": "hu25"}, "Phone": "redact"}}')  # fmt: skip
        s3.put_object(Bucket="policies", Key="bad.yaml", Body=b"columns: [1, 2")
        policy = load_policy("s3://policies/p.json")
        assert policy.resolve(["first_name", "phone"])["phone"].strategy == "redact"
        with pytest.raises(ConfigError, match="not valid YAML"):
            load_policy("s3://policies/bad.yaml")
        with pytest.raises(ConfigError, match="cannot read the masking policy"):
            load_policy("s3://policies/missing.yaml")
