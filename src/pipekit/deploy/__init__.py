"""Glue job deployment from a repository: configs, a pure plan, apply, sources, and the pipeline step.

    configs = load_directory("repo/")                       # validated against schema.json
    changes = plan_directory("repo/", bucket="b", owner="repo")   # create / update (field diffs) / unchanged
    apply(changes)                                          # UpdateJob + TagResource/UntagResource

The Lambda (adapters/lambda/handler.py) runs :func:`pipekit.deploy.pipeline.run` on each invocation.
"""

from __future__ import annotations

from pipekit.deploy.apply import ApplyReport, apply, read_current
from pipekit.deploy.config import (
    OWNER_TAG,
    WATCHED_DIRS,
    ConfigProblem,
    JobConfig,
    JobConfigError,
    load_configs,
    parse_config,
    schema,
)
from pipekit.deploy.local import apply_directory, load_directory, plan_directory
from pipekit.deploy.plan import Change, ChangeKind, CurrentJob, DesiredJob, FieldDiff, plan

__all__ = [
    "OWNER_TAG",
    "WATCHED_DIRS",
    "ApplyReport",
    "Change",
    "ChangeKind",
    "ConfigProblem",
    "CurrentJob",
    "DesiredJob",
    "FieldDiff",
    "JobConfig",
    "JobConfigError",
    "apply",
    "apply_directory",
    "load_configs",
    "load_directory",
    "parse_config",
    "plan",
    "plan_directory",
    "read_current",
    "schema",
]
