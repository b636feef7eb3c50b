"""The CodePipeline job event a Lambda invoke action receives, parsed once into frozen dataclasses."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pipekit.deploy.config import WATCHED_DIRS
from pipekit.errors import ConfigError

SOURCES = ("codecommit", "zip", "git")


@dataclass(frozen=True)
class Artifact:
    """An input artifact: its revision (the commit id for git sources) and where its zip is in S3."""

    name: str
    revision: str | None
    bucket: str | None
    key: str | None


@dataclass(frozen=True)
class PipelineJob:
    """One CodePipeline job: id, input artifacts, UserParameters, and the continuation token if re-invoked."""

    job_id: str
    account_id: str
    artifacts: tuple[Artifact, ...]
    #: The action's UserParameters string (JSON, parsed by DeploySettings.from_user_parameters).
    user_parameters: str
    continuation_token: str | None = None
    #: Temporary credentials for the artifact bucket; kept out of repr so they never reach a log.
    artifact_credentials: Mapping[str, str] = field(default_factory=dict, repr=False)

    @property
    def revision(self) -> str | None:
        """The revision of the first input artifact (the commit being deployed)."""
        return self.artifacts[0].revision if self.artifacts else None


def parse_event(event: Mapping[str, Any]) -> PipelineJob:
    """Parse a ``{"CodePipeline.job": ...}`` event; raise ConfigError naming what is missing."""
    try:
        job = event["CodePipeline.job"]
        job_id = str(job["id"])
    except (KeyError, TypeError) as exc:
        raise ConfigError("Not a CodePipeline job event: no 'CodePipeline.job.id'.",
                          hint="Invoke this Lambda from a CodePipeline Invoke action.") from exc
    data = job.get("data") or {}
    # UserParameters stays raw here: a bad value is reported to the pipeline, which needs the job id first.
    params = ((data.get("actionConfiguration") or {}).get("configuration") or {}).get("UserParameters") or "{}"
    artifacts = tuple(
        Artifact(
            name=str(a.get("name", "")),
            revision=a.get("revision"),
            bucket=((a.get("location") or {}).get("s3Location") or {}).get("bucketName"),
            key=((a.get("location") or {}).get("s3Location") or {}).get("objectKey"),
        )
        for a in data.get("inputArtifacts") or []
    )
    return PipelineJob(
        job_id=job_id,
        account_id=str(job.get("accountId", "")),
        artifacts=artifacts,
        user_parameters=str(params),
        continuation_token=data.get("continuationToken") or None,
        artifact_credentials=dict(data.get("artifactCredentials") or {}),
    )


@dataclass(frozen=True)
class DeploySettings:
    """How to deploy, from the action's UserParameters (JSON) or the CLI's options."""

    bucket: str
    owner: str
    source: str = "codecommit"
    repository: str | None = None
    branch: str = "main"
    scripts_prefix: str = "scripts/"
    state_prefix: str = ""
    watched: tuple[str, ...] = WATCHED_DIRS
    prune: bool = False

    def __post_init__(self) -> None:
        if not self.state_prefix:
            object.__setattr__(self, "state_prefix", f"/pipekit/glue-deploy/{self.owner}")

    @property
    def last_deployed_parameter(self) -> str:
        """SSM parameter holding the last successfully deployed revision."""
        return f"{self.state_prefix}/last-deployed"

    @property
    def runs_parameter(self) -> str:
        """SSM parameter recording the runs started for the revision being deployed (idempotency key)."""
        return f"{self.state_prefix}/runs"

    @classmethod
    def from_user_parameters(cls, params: str | Mapping[str, Any], job_id: str = "") -> DeploySettings:
        """Parse and validate UserParameters (JSON text or a dict): ``bucket`` required, ``repository`` for codecommit."""
        where = f"CodePipeline job {job_id}: UserParameters" if job_id else "UserParameters"
        if isinstance(params, str):
            try:
                params = json.loads(params)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{where} is not valid JSON ({exc.msg} at column {exc.colno}).",
                                  hint="Set the action's UserParameters to a JSON object.") from exc
        if not isinstance(params, Mapping):
            raise ConfigError(f"{where} must be a JSON object.")
        known = {"bucket", "owner", "source", "repository", "branch", "scripts_prefix", "state_prefix",
                 "watched", "prune"}
        unknown = sorted(set(params) - known)
        if unknown:
            raise ConfigError(f"{where} has unknown keys {unknown}.", hint=f"Known keys: {sorted(known)}.")
        if not params.get("bucket"):
            raise ConfigError(f"{where} needs 'bucket' (where scripts go: s3://BUCKET/scripts/).")
        source = params.get("source", "codecommit")
        if source not in SOURCES:
            raise ConfigError(f"{where}: 'source' is {source!r}; use one of {list(SOURCES)}.")
        repository = params.get("repository")
        if source == "codecommit" and not repository:
            raise ConfigError(f"{where} needs 'repository' for the codecommit source.")
        owner = params.get("owner") or repository
        if not owner:
            raise ConfigError(f"{where} needs 'owner' (the value of the pipekit:owner tag) or 'repository'.")
        prefix = params.get("scripts_prefix", "scripts/")
        return cls(
            bucket=str(params["bucket"]),
            owner=str(owner),
            source=source,
            repository=repository,
            branch=str(params.get("branch", "main")),
            scripts_prefix=prefix if prefix.endswith("/") else prefix + "/",
            state_prefix=str(params.get("state_prefix", "")).rstrip("/"),
            watched=tuple(params.get("watched", WATCHED_DIRS)),
            prune=bool(params.get("prune", False)),
        )
