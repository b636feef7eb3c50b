"""Glue job configs: one file per job under ``glue/jobs/``, validated against the published JSON Schema."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import PurePosixPath
from typing import Any

from pipekit.deploy._jsonschema import iter_errors
from pipekit.errors import ConfigError

JOBS_DIR = "glue/jobs"
SCRIPTS_DIR = "glue/scripts"
#: The directories a deployment watches; a commit touching nothing under them deploys nothing.
WATCHED_DIRS: tuple[str, ...] = (JOBS_DIR, SCRIPTS_DIR)
CONFIG_SUFFIXES = (".json", ".yaml", ".yml")
#: Tag that marks a Glue job as owned by one repository; jobs without it are never touched.
OWNER_TAG = "pipekit:owner"
CONFIG_TAG = "pipekit:config"
_JOB_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,254}$")


@cache
def schema() -> dict[str, Any]:
    """The published JSON Schema of a job config (``pipekit/deploy/schema.json``)."""
    text = resources.files("pipekit.deploy").joinpath("schema.json").read_text("utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


@dataclass(frozen=True)
class ConfigProblem:
    """One reason a config file is invalid: which file, which field, what is wrong."""

    file: str
    field: str
    message: str

    def __str__(self) -> str:
        where = f"field '{self.field}'" if self.field else "file"
        return f"{self.file}: {where}: {self.message}"


class JobConfigError(ConfigError):
    """One or more job configs are invalid; ``problems`` lists each file and field."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(
            f"{len(problems)} problem(s) in Glue job configs:\n{lines}",
            hint="Fix the fields named above; the schema is pipekit/deploy/schema.json (see docs/cicd.md).",
        )


@dataclass(frozen=True)
class JobConfig:
    """A validated job config; ``name`` comes from the file name."""

    name: str
    path: str
    script: str
    role: str
    description: str = ""
    job_type: str = "glueetl"
    glue_version: str = "5.0"
    worker_type: str = "G.1X"
    number_of_workers: int = 2
    timeout_minutes: int = 60
    max_retries: int = 0
    max_concurrent_runs: int = 1
    execution_class: str = "STANDARD"
    connections: tuple[str, ...] = ()
    security_configuration: str | None = None
    default_arguments: Mapping[str, str] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    run_after_deploy: bool = False
    run_arguments: Mapping[str, str] = field(default_factory=dict)

    @property
    def script_path(self) -> str:
        """Repository path of the job's script."""
        return f"{SCRIPTS_DIR}/{self.script}"

    def script_s3_uri(self, bucket: str, prefix: str = "scripts/") -> str:
        """Where the script is uploaded: ``s3://BUCKET/scripts/<script>``."""
        return f"s3://{bucket}/{prefix}{self.script}"

    def definition(self, bucket: str, prefix: str = "scripts/") -> dict[str, Any]:
        """The Glue job definition (CreateJob/UpdateJob fields, without Name and Tags)."""
        d: dict[str, Any] = {
            "Description": self.description,
            "Role": self.role,
            "Command": {"Name": self.job_type, "ScriptLocation": self.script_s3_uri(bucket, prefix),
                        "PythonVersion": "3"},
            "GlueVersion": self.glue_version,
            "WorkerType": self.worker_type,
            "NumberOfWorkers": self.number_of_workers,
            "Timeout": self.timeout_minutes,
            "MaxRetries": self.max_retries,
            "ExecutionProperty": {"MaxConcurrentRuns": self.max_concurrent_runs},
            "ExecutionClass": self.execution_class,
            "DefaultArguments": dict(self.default_arguments),
        }
        if self.connections:
            d["Connections"] = {"Connections": list(self.connections)}
        if self.security_configuration:
            d["SecurityConfiguration"] = self.security_configuration
        return d


def job_name_for(path: str) -> str:
    """The Glue job name a config path stands for: its file name without the extension."""
    return PurePosixPath(path).stem


def is_config_path(path: str) -> bool:
    """True for ``glue/jobs/<name>.json|yaml|yml`` (directly in the jobs dir)."""
    p = PurePosixPath(path)
    return str(p.parent) == JOBS_DIR and p.suffix in CONFIG_SUFFIXES


def _parse_text(path: str, data: bytes) -> Any:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise JobConfigError([ConfigProblem(path, "", f"not UTF-8 text ({exc.reason} at byte {exc.start})")]) from exc
    if path.endswith(".json"):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise JobConfigError([ConfigProblem(path, "", f"invalid JSON at line {exc.lineno} column {exc.colno}: "
                                                          f"{exc.msg}")]) from exc
    try:
        import yaml
    except ImportError as exc:  # the bare Lambda runtime has no PyYAML
        raise JobConfigError([ConfigProblem(path, "", "YAML configs need PyYAML, which is not installed here; "
                                                      "use .json, or build the Lambda zip with --with-yaml")]) from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
        raise JobConfigError([ConfigProblem(path, "", f"invalid YAML{where}: "
                                                      f"{getattr(exc, 'problem', None) or exc}")]) from exc


def _field(path: tuple[str | int, ...]) -> str:
    return ".".join(str(p) for p in path)


def parse_config(path: str, data: bytes, known_files: set[str] | None = None) -> JobConfig:
    """Parse and validate one config file; raise JobConfigError naming the file and every bad field.

    ``known_files`` (repository paths), when given, is used to check that the script exists.
    """
    doc = _parse_text(path, data)
    problems = [ConfigProblem(path, _field(p), msg) for p, msg in iter_errors(doc, schema())]
    name = job_name_for(path)
    if not _JOB_NAME.match(name):
        problems.append(ConfigProblem(path, "", f"file name gives job name {name!r}; use letters, digits, "
                                                "'_', '.', '-' (it becomes the Glue job name)"))
    if not problems and known_files is not None and f"{SCRIPTS_DIR}/{doc['script']}" not in known_files:
        problems.append(ConfigProblem(path, "script", f"{SCRIPTS_DIR}/{doc['script']} does not exist in the "
                                                      "repository; add it or fix the name"))
    if problems:
        raise JobConfigError(problems)
    return JobConfig(
        name=name,
        path=path,
        script=doc["script"],
        role=doc["role"],
        description=doc.get("description", ""),
        job_type=doc.get("job_type", "glueetl"),
        glue_version=doc.get("glue_version", "5.0"),
        worker_type=doc.get("worker_type", "G.1X"),
        number_of_workers=doc.get("number_of_workers", 2),
        timeout_minutes=doc.get("timeout_minutes", 60),
        max_retries=doc.get("max_retries", 0),
        max_concurrent_runs=doc.get("max_concurrent_runs", 1),
        execution_class=doc.get("execution_class", "STANDARD"),
        connections=tuple(doc.get("connections", ())),
        security_configuration=doc.get("security_configuration"),
        default_arguments=dict(doc.get("default_arguments", {})),
        tags=dict(doc.get("tags", {})),
        run_after_deploy=doc.get("run_after_deploy", False),
        run_arguments=dict(doc.get("run_arguments", {})),
    )


def load_configs(files: Mapping[str, bytes], known_files: set[str] | None = None) -> list[JobConfig]:
    """Parse every config in ``files`` (path -> bytes); collect the problems of all files before raising."""
    configs: list[JobConfig] = []
    problems: list[ConfigProblem] = []
    seen: dict[str, str] = {}
    for path in sorted(files):
        name = job_name_for(path)
        if name in seen:
            problems.append(ConfigProblem(path, "", f"job {name!r} is also defined by {seen[name]}; keep one file"))
            continue
        seen[name] = path
        try:
            configs.append(parse_config(path, files[path], known_files))
        except JobConfigError as err:
            problems.extend(err.problems)
    if problems:
        raise JobConfigError(problems)
    return configs


def check_prefix(configs: list[JobConfig], prefix: str) -> None:
    """Raise JobConfigError naming each config whose job name does not start with ``prefix`` ('' allows all).

    The deploy role may only touch jobs named ``<prefix>*`` (cicd.yaml's JobNamePrefix), so such a config
    would fail half-way with AccessDenied; it is refused before anything changes instead.
    """
    if not prefix:
        return
    problems = [ConfigProblem(c.path, "", f"job name {c.name!r} (from the file name) does not start with "
                                          f"{prefix!r}, the prefix this pipeline may deploy (UserParameters "
                                          f"job_prefix, the stack's JobNamePrefix); rename the file to "
                                          f"{JOBS_DIR}/{prefix}{c.name}{PurePosixPath(c.path).suffix}")
                for c in configs if not c.name.startswith(prefix)]
    if problems:
        raise JobConfigError(problems)
