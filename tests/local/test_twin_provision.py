"""Provisioning etl.yaml into the twin: the stack has Outputs and every resource moto skips exists."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipekit.local.provision import provision_stack

pytestmark = pytest.mark.twin

TEMPLATE = Path(__file__).resolve().parents[2] / "infra" / "cloudformation" / "etl.yaml"  # not cwd-relative


def test_stack_outputs_and_resources(etl_twin) -> None:
    import boto3

    out = etl_twin.outputs
    assert out["DatabaseName"] == "customers_database"
    assert out["RawPrefix"] == f"s3://{out['BucketName']}/data/customers_database/customers_csv/"
    glue = boto3.client("glue")
    assert glue.get_database(Name="customers_database")["Database"]["Name"] == "customers_database"
    crawler = glue.get_crawler(Name=out["CrawlerName"])["Crawler"]
    assert crawler["Targets"]["S3Targets"][0]["Path"] == out["RawPrefix"]
    assert crawler["Role"] == out["CrawlerRoleArn"]
    classifier = glue.get_classifier(Name=crawler["Classifiers"][0])["Classifier"]["CsvClassifier"]
    assert classifier["ContainsHeader"] == "PRESENT"
    job = glue.get_job(JobName=out["JobName"])["Job"]
    assert job["GlueVersion"] == "5.0" and job["Role"] == out["GlueJobRoleArn"]
    assert job["DefaultArguments"]["--TempDir"] == out["TempDir"]
    assert job["Command"]["ScriptLocation"] == out["ScriptLocation"]
    table = glue.get_table(DatabaseName="customers_database", Name="customers_parquet")["Table"]
    assert table["StorageDescriptor"]["Location"] == out["ParquetPrefix"]
    wg = boto3.client("athena").get_work_group(WorkGroup=out["WorkGroupName"])["WorkGroup"]
    assert wg["Configuration"]["ResultConfiguration"]["OutputLocation"] == out["AthenaResults"]
    s3 = boto3.client("s3")
    enc = s3.get_bucket_encryption(Bucket=out["BucketName"])["ServerSideEncryptionConfiguration"]
    assert enc["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    role = boto3.client("iam").get_role(RoleName=out["GlueJobRoleArn"].rsplit("/", 1)[1])["Role"]
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]["Service"] == "glue.amazonaws.com"


def test_provisioning_again_is_idempotent(private_etl_twin) -> None:
    # A twin of its own: provisioning again recreates the job and the crawler, which would undo the
    # session's `etl deploy` on the shared twin.
    again = provision_stack(private_etl_twin.endpoint_url, TEMPLATE)
    assert again["BucketName"] == private_etl_twin.outputs["BucketName"]
    import boto3

    assert [j["Name"] for j in boto3.client("glue").get_jobs()["Jobs"]].count("customers-etl") == 1


def test_unknown_parameter_is_a_config_error(etl_twin) -> None:
    from pipekit.errors import ConfigError

    with pytest.raises(ConfigError, match="NoSuchParam"):
        provision_stack(etl_twin.endpoint_url, TEMPLATE, parameters={"NoSuchParam": "x"})


BROKEN = """
Resources:
  Bucket:
    Type: AWS::S3::Bucket
    Properties:
      BucketName: !Ref NoSuchThing
"""


def test_a_failed_stack_is_a_twin_error_naming_the_reason(etl_twin, tmp_path) -> None:
    from pipekit.local.twin import TwinError

    template = tmp_path / "broken.yaml"
    template.write_text(BROKEN)
    with pytest.raises(TwinError, match=r"stack 'broken-stack'.*NoSuchThing") as info:
        provision_stack(etl_twin.endpoint_url, template, stack_name="broken-stack")
    assert "ResponseParserError" not in str(info.value) and "describe-stack-events" in (info.value.hint or "")


def test_a_failed_stack_rolls_back_for_the_cli(etl_twin, tmp_path) -> None:
    """create-stack answers with the StackId; the stack ends ROLLBACK_COMPLETE, the reason in its events."""
    import boto3

    cfn = boto3.client("cloudformation")
    cfn.create_stack(StackName="broken-cli", TemplateBody=BROKEN)
    assert cfn.describe_stacks(StackName="broken-cli")["Stacks"][0]["StackStatus"] == "ROLLBACK_COMPLETE"
    reasons = [e.get("ResourceStatusReason", "") for e in cfn.describe_stack_events(StackName="broken-cli")["StackEvents"]
               if e["ResourceStatus"] == "CREATE_FAILED"]
    assert reasons and "NoSuchThing" in reasons[0]
    cfn.delete_stack(StackName="broken-cli")
