"""The CodeCommit filter step: start the deploy pipeline only for pushes that touch a watched directory.

An EventBridge rule sends each "CodeCommit Repository State Change" event of the branch to this step
(``handler.filter_handler``, same zip as the deploy Lambda). It diffs what the push changed
(``oldCommitId..commitId``; for a new branch, the commit against its parent; a first commit against the
empty tree) with GetDifferences, and calls StartPipelineExecution for that commit only when a path under
the watched directories (the deploy action's ``watched`` setting) was added, modified or deleted; a rename
counts on both sides. Otherwise it logs one structured line (commit, branch, why) and starts nothing.

Settings come from the function's environment (set by cicd.yaml): ``PIPELINE_NAME``, ``REPOSITORY_NAME``,
``BRANCH_NAME``, ``WATCHED`` (comma-separated, as in UserParameters) and ``SOURCE_ACTION`` (default Source).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pipekit.aws import codecommit
from pipekit.aws._calls import call
from pipekit.aws._client import client
from pipekit.deploy.event import parse_watched
from pipekit.deploy.sources import FileChange, watched
from pipekit.errors import ConfigError

log = logging.getLogger("pipekit.deploy.trigger")

START, SKIP = "start", "skip"


@dataclass(frozen=True)
class FilterSettings:
    """Which pipeline to start for which repository and branch, and the directories that matter."""

    pipeline: str
    repository: str
    branch: str
    watched: tuple[str, ...]
    source_action: str = "Source"

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> FilterSettings:
        """Read the settings from the function's environment; raise ConfigError naming every missing variable."""
        missing = [k for k in ("PIPELINE_NAME", "REPOSITORY_NAME") if not environ.get(k)]
        if missing:
            raise ConfigError(f"The filter function's environment lacks {', '.join(missing)}.",
                              hint="Deploy it with infra/cloudformation/cicd.yaml, which sets them.")
        return cls(pipeline=environ["PIPELINE_NAME"], repository=environ["REPOSITORY_NAME"],
                   branch=environ.get("BRANCH_NAME") or "main",
                   watched=parse_watched(environ.get("WATCHED") or "glue/jobs,glue/scripts", where="WATCHED"),
                   source_action=environ.get("SOURCE_ACTION") or "Source")


@dataclass(frozen=True)
class Push:
    """What one CodeCommit state-change event says: repository, branch, new commit, and the old one if any."""

    event_id: str
    repository: str
    branch: str
    commit: str | None
    old_commit: str | None
    kind: str

    @classmethod
    def from_event(cls, event: Mapping[str, Any]) -> Push:
        """Parse an EventBridge "CodeCommit Repository State Change" event; raise ConfigError if it is not one."""
        detail = event.get("detail") if isinstance(event, Mapping) else None
        if event.get("detail-type") != "CodeCommit Repository State Change" or not isinstance(detail, Mapping):
            raise ConfigError(f"Not a CodeCommit state-change event: detail-type {event.get('detail-type')!r}.",
                              hint="Target this function with the EventBridge rule of cicd.yaml.")
        return cls(event_id=str(event.get("id") or ""), repository=str(detail.get("repositoryName", "")),
                   branch=str(detail.get("referenceName", "")), commit=detail.get("commitId") or None,
                   old_commit=detail.get("oldCommitId") or None, kind=str(detail.get("event", "")))


@dataclass(frozen=True)
class Decision:
    """Start the pipeline or not, and why (the log line and the return value say the same)."""

    action: str
    reason: str
    matched: tuple[str, ...] = ()

    @property
    def start(self) -> bool:
        return self.action == START


def decide(push: Push, settings: FilterSettings, changes: Iterable[FileChange] | None) -> Decision:
    """Whether ``push`` should start a deployment, given the paths it changed (None: not diffed, see reason)."""
    if push.repository != settings.repository or push.branch != settings.branch:
        return Decision(SKIP, f"not {settings.repository}:{settings.branch}")
    if push.commit is None:
        return Decision(SKIP, f"{push.kind or 'event'} carries no commit (branch deleted)")
    changed = list(changes or [])
    hits = watched(changed, settings.watched)
    if not hits:
        where = ", ".join(settings.watched)
        return Decision(SKIP, f"none of the {len(changed)} changed path(s) is under {where}")
    paths = tuple(dict.fromkeys(c.path for c in hits))
    return Decision(START, f"{len(paths)} watched path(s) changed", paths)


def pushed_changes(push: Push, *, session: Any | None = None) -> list[FileChange]:
    """Every path the push changed: old..new, else the commit against its parent (or the empty tree)."""
    assert push.commit is not None
    before = push.old_commit or codecommit.parent_of(push.repository, push.commit, session=session)
    diffs = codecommit.get_differences(push.repository, push.commit, before, session=session)
    return [FileChange(status, path) for status, path in codecommit.changed_paths(diffs)]


def start_pipeline(settings: FilterSettings, push: Push, *, session: Any | None = None) -> str:
    """StartPipelineExecution for exactly ``push.commit``; the event id makes a retried delivery start no second one."""
    assert push.commit is not None
    kwargs: dict[str, Any] = {
        "name": settings.pipeline,
        "sourceRevisions": [{"actionName": settings.source_action, "revisionType": "COMMIT_ID",
                             "revisionValue": push.commit}],
    }
    if push.event_id:
        kwargs["clientRequestToken"] = push.event_id
    resp = call(client("codepipeline", session).start_pipeline_execution,
                f"CodePipeline {settings.pipeline} (StartPipelineExecution)", **kwargs)
    return str(resp["pipelineExecutionId"])


def handle(event: Mapping[str, Any], settings: FilterSettings, *, session: Any | None = None) -> dict[str, Any]:
    """Diff the push in ``event``, start the pipeline or skip, and log one structured line either way."""
    push = Push.from_event(event)
    relevant = push.commit is not None and (push.repository, push.branch) == (settings.repository,
                                                                               settings.branch)
    decision = decide(push, settings, pushed_changes(push, session=session) if relevant else None)
    record: dict[str, Any] = {"pipekit": "trigger", "action": decision.action, "commit": push.commit,
                              "branch": push.branch, "repository": push.repository, "why": decision.reason}
    if decision.start:
        record["pipelineExecutionId"] = start_pipeline(settings, push, session=session)
        record["pipeline"] = settings.pipeline
        record["paths"] = list(decision.matched[:20])
    log.info(json.dumps(record, sort_keys=True))
    return record
