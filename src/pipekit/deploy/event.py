"""The CodePipeline job event a Lambda invoke action receives, parsed once into frozen dataclasses."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

from pipekit.deploy._jsonschema import iter_errors
from pipekit.deploy.config import WATCHED_DIRS
from pipekit.errors import ConfigError

#: ``on_run_failure`` values: stop the other runs of the revision, or wait for them to end.
STOP, WAIT = "stop", "wait"


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
    #: When one run of a revision fails: stop the others (BatchStopJobRun) or wait for them to end.
    on_run_failure: str = STOP
    #: Every job name must start with this ('' = no check): the deploy role may only touch ``<prefix>*``.
    job_prefix: str = ""

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
        """Parse UserParameters (JSON text or a dict) against ``user_parameters.schema.json``; raise ConfigError
        naming every bad or unknown key. ``prune`` takes JSON booleans or "true"/"false"; ``watched`` a list
        or a comma-separated string."""
        where = f"CodePipeline job {job_id}: UserParameters" if job_id else "UserParameters"
        if isinstance(params, str):
            try:
                params = json.loads(params)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{where} is not valid JSON ({exc.msg} at column {exc.colno}).",
                                  hint="Set the action's UserParameters to a JSON object.") from exc
        if not isinstance(params, Mapping):
            raise ConfigError(f"{where} must be a JSON object, got {type(params).__name__}.",
                              hint=_SCHEMA_HINT)
        doc = dict(params)
        problems = [_problem(p, msg) for p, msg in iter_errors(doc, user_parameters_schema())]
        source = str(doc.get("source", "codecommit"))
        watched_dirs = WATCHED_DIRS
        if not problems:  # the checks the schema cannot express, on a document of the right shape
            watched_dirs, more = _watched(doc.get("watched", list(WATCHED_DIRS)))
            problems += more
            if source == "codecommit" and not doc.get("repository"):
                problems.append("field 'repository': is required for the codecommit source")
            if not (doc.get("owner") or doc.get("repository")):
                problems.append("field 'owner': is required (the value of the pipekit:owner tag) when there "
                                "is no 'repository'")
        if problems:
            lines = "\n".join(f"  - {p}" for p in problems)
            raise ConfigError(f"{where} has {len(problems)} problem(s):\n{lines}", hint=_SCHEMA_HINT)
        prefix = str(doc.get("scripts_prefix", "scripts/"))
        return cls(
            bucket=str(doc["bucket"]),
            owner=str(doc.get("owner") or doc["repository"]),
            source=source,
            repository=doc.get("repository"),
            branch=str(doc.get("branch", "main")),
            scripts_prefix=prefix if prefix.endswith("/") else prefix + "/",
            state_prefix=str(doc.get("state_prefix", "")).rstrip("/"),
            watched=watched_dirs,
            prune=doc.get("prune") is True or doc.get("prune") == "true",
            on_run_failure=str(doc.get("on_run_failure", STOP)),
            job_prefix=str(doc.get("job_prefix", "")),
        )


_SCHEMA_HINT = ("The keys and their types are in pipekit/deploy/user_parameters.schema.json "
                "(docs/cicd-user-parameters.schema.json, described in docs/cicd.md).")


@cache
def user_parameters_schema() -> dict[str, Any]:
    """The published JSON Schema of the deploy action's UserParameters (``pipekit/deploy/user_parameters.schema.json``)."""
    text = resources.files("pipekit.deploy").joinpath("user_parameters.schema.json").read_text("utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def _problem(path: tuple[str | int, ...], message: str) -> str:
    """``field 'prune': 'yes' is not one of [...] (<what the field is, from the schema>)``."""
    if not path:
        return message
    about = user_parameters_schema()["properties"].get(path[0], {}).get("description")
    return f"field '{'.'.join(str(p) for p in path)}': {message}" + (f" ({about})" if about else "")


def _watched(value: str | list[str]) -> tuple[tuple[str, ...], list[str]]:
    """The watched directories from a list or a comma-separated string, and the problems with them."""
    if isinstance(value, list):
        return tuple(value), []
    dirs = [d.strip() for d in value.split(",") if d.strip()]
    item_schema = user_parameters_schema()["properties"]["watched"]["items"]
    problems = [_problem(p, msg) for i, d in enumerate(dirs) for p, msg in iter_errors(d, item_schema, ("watched", i))]
    return tuple(dirs), problems


def parse_watched(value: str | list[str], *, where: str = "watched") -> tuple[str, ...]:
    """The watched directories from a list or a comma-separated string (as in UserParameters); ConfigError if bad."""
    dirs, problems = _watched(value)
    if not dirs:
        problems.append("names no directory")
    if problems:
        lines = "\n".join(f"  - {p}" for p in problems)
        raise ConfigError(f"{where} has {len(problems)} problem(s):\n{lines}", hint=_SCHEMA_HINT)
    return dirs
