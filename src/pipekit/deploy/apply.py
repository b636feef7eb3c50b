"""Read the current Glue jobs and execute a plan against them."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipekit.aws import glue
from pipekit.aws._calls import call
from pipekit.aws._client import client
from pipekit.deploy.config import OWNER_TAG
from pipekit.deploy.plan import Change, ChangeKind, CurrentJob
from pipekit.errors import DeployError


def read_current(names: Iterable[str], *, session: Any | None = None) -> dict[str, CurrentJob]:
    """GetJob + GetTags for each of ``names`` that exists in Glue."""
    current: dict[str, CurrentJob] = {}
    arn_prefix: str | None = None
    for name in sorted(set(names)):
        job = glue.get_job(name, session=session)
        if job is None:
            continue
        if arn_prefix is None:  # one STS call per deployment, not per job
            arn_prefix = glue.job_arn("", session=session)
        current[name] = CurrentJob(name, job, glue.get_tags(arn_prefix + name, session=session))
    return current


def owned_job_names(owner: str, *, session: Any | None = None) -> list[str]:
    """Names of the Glue jobs tagged ``pipekit:owner=<owner>`` (ListJobs with a tag filter, every page)."""
    glue_client = client("glue", session)
    names: list[str] = []
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {"Tags": {OWNER_TAG: owner}, "MaxResults": 1000}
        if token:
            kwargs["NextToken"] = token
        page = call(glue_client.list_jobs, f"Glue jobs tagged {OWNER_TAG}={owner} (ListJobs)", **kwargs)
        names.extend(page.get("JobNames", []))
        token = page.get("NextToken")
        if not token:
            return sorted(set(names))


@dataclass
class ApplyReport:
    """What ``apply`` did, job by job."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    retagged: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    orphaned: list[str] = field(default_factory=list)

    @property
    def changed(self) -> list[str]:
        """Jobs whose definition was created or rewritten (their runs should start if configured)."""
        return sorted(self.created + self.updated)

    def as_dict(self) -> dict[str, list[str]]:
        """Plain dict for JSON output."""
        return {k: list(v) for k, v in self.__dict__.items()}


def check(changes: Sequence[Change]) -> None:
    """Raise DeployError if the plan contains conflicts (jobs this repository does not own)."""
    conflicts = [c for c in changes if c.kind is ChangeKind.CONFLICT]
    if conflicts:
        lines = "\n".join(f"  - {c.job_name} ({c.desired.config_path if c.desired else ''}): {c.reason}"
                          for c in conflicts)
        raise DeployError(f"{len(conflicts)} Glue job(s) exist but are not owned by this repository; nothing "
                          f"was changed:\n{lines}",
                          hint="pipekit never modifies jobs it does not own (tag pipekit:owner).")


def apply(
    changes: Sequence[Change],
    *,
    prune: bool = False,
    session: Any | None = None,
    on_change: Callable[[Change], None] | None = None,
) -> ApplyReport:
    """Execute ``changes``: create, update (UpdateJob + TagResource/UntagResource), optionally delete orphans.

    Conflicts are checked before anything is changed. Re-applying the same plan is a no-op once applied.
    """
    check(changes)
    report = ApplyReport()
    arn_prefix: str | None = None
    for change in changes:
        if on_change is not None:
            on_change(change)
        name = change.job_name
        if change.kind is ChangeKind.CREATE:
            assert change.desired is not None
            glue.create_job(name, change.desired.definition, change.desired.tags, session=session)
            report.created.append(name)
        elif change.kind is ChangeKind.UPDATE:
            assert change.desired is not None
            if change.needs_update:
                glue.update_job(name, change.desired.definition, session=session)
                report.updated.append(name)
            else:
                report.retagged.append(name)
            if change.tags_to_add or change.tags_to_remove:
                # UpdateJob takes no tags: the tagging API is the only way to change them.
                arn_prefix = arn_prefix or glue.job_arn("", session=session)
                glue.tag_resource(arn_prefix + name, change.tags_to_add, session=session)
                glue.untag_resource(arn_prefix + name, list(change.tags_to_remove), session=session)
        elif change.kind is ChangeKind.UNCHANGED:
            report.unchanged.append(name)
        elif change.kind is ChangeKind.ORPHAN:
            if prune:
                glue.delete_job(name, session=session)
                report.deleted.append(name)
            else:
                report.orphaned.append(name)
    return report
