"""The CodePipeline twin's job results through boto3: one result per job, as in AWS."""

from __future__ import annotations

import boto3
import pytest
from cicd_helpers import job_record

from pipekit.local.codepipeline_twin import twin_call

RESULTS = {
    "success": ("put_job_success_result", {"executionDetails": {"summary": "ok"}}),
    "continuation": ("put_job_success_result", {"continuationToken": '{"revision": "abc", "runs": {}}'}),
    "failure": ("put_job_failure_result", {"failureDetails": {"type": "JobFailed", "message": "no"}}),
}


@pytest.mark.parametrize("second", sorted(RESULTS))
@pytest.mark.parametrize("first", sorted(RESULTS))
def test_a_job_takes_one_result(twin, first: str, second: str) -> None:
    client = boto3.client("codepipeline")
    job_id = twin_call(twin.endpoint_url, "CodePipeline_20150709.PipekitCreateJob", {"data": {}})["jobId"]
    op, kwargs = RESULTS[first]
    getattr(client, op)(jobId=job_id, **kwargs)
    op, kwargs = RESULTS[second]
    with pytest.raises(client.exceptions.InvalidJobStateException, match="already has a result"):
        getattr(client, op)(jobId=job_id, **kwargs)
    results = job_record(job_id)["results"]
    assert len(results) == 1 and results[0]["type"] == ("failure" if first == "failure" else "success")


def test_unknown_job_is_not_found(twin) -> None:
    client = boto3.client("codepipeline")
    with pytest.raises(client.exceptions.JobNotFoundException):
        client.put_job_success_result(jobId="00000000-0000-0000-0000-000000000000")
