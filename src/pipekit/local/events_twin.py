"""EventBridge delivery on the twin for the events the twin's services emit (a push to CodeCommit).

moto stores rules and matches event patterns, but delivers to no CodePipeline target and runs no Lambda.
:func:`emit` matches an event against the rules of the default bus with moto's own pattern matcher and
delivers it: a CodePipeline target starts an execution (trigger ``CloudWatchEvent``, as AWS records it),
a Lambda target runs the function asynchronously with the event (:mod:`pipekit.local.lambda_runner`).
"""

from __future__ import annotations

import logging
import threading
import uuid
from datetime import UTC, datetime
from typing import Any

from pipekit.local.server import TwinContext

log = logging.getLogger("pipekit.local.events_twin")


def codecommit_events(ctx: TwinContext, repository: str,
                      changes: list[tuple[str, str, str]]) -> list[dict[str, Any]]:
    """The "CodeCommit Repository State Change" events for ``[(ref, old, new), ...]`` of one push."""
    from moto.codecommit.models import codecommit_backends

    metadata = codecommit_backends[ctx.account][ctx.region].repositories[repository].repository_metadata
    events = []
    for ref, old, new in changes:
        kind = "branch" if ref.startswith("refs/heads/") else "tag"
        name = ref.split("/", 2)[2] if ref.count("/") >= 2 else ref
        detail: dict[str, Any] = {
            "callerUserArn": f"arn:aws:iam::{ctx.account}:user/twin",
            "event": "referenceCreated" if not old else ("referenceDeleted" if not new else "referenceUpdated"),
            "referenceFullName": ref,
            "referenceName": name,
            "referenceType": kind,
            "repositoryId": metadata["repositoryId"],
            "repositoryName": repository,
        }
        if new:
            detail["commitId"] = new
        if old:
            detail["oldCommitId"] = old
        events.append({
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "CodeCommit Repository State Change",
            "source": "aws.codecommit",
            "account": ctx.account,
            "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": ctx.region,
            "resources": [metadata["Arn"]],
            "detail": detail,
        })
    return events


def on_push(ctx: TwinContext, repository: str, changes: list[tuple[str, str, str]]) -> None:
    """What CodeCommit does after a push: one state-change event per changed ref to EventBridge."""
    for event in codecommit_events(ctx, repository, changes):
        emit(ctx, event)


def emit(ctx: TwinContext, event: dict[str, Any]) -> list[str]:
    """Deliver ``event`` to the targets of every enabled default-bus rule it matches; returns the rule names."""
    from moto.events.models import events_backends

    bus = events_backends[ctx.account][ctx.region].event_buses.get("default")
    matched: list[str] = []
    for rule in list(bus.rules.values()) if bus is not None else []:
        if rule.state != "ENABLED" or rule.event_pattern is None or not rule.event_pattern.get_pattern():
            continue
        if not rule.event_pattern.matches_event(event):  # type: ignore[arg-type]  # moto's TypedDict
            continue
        matched.append(rule.name)
        for target in rule.targets:
            _deliver(ctx, rule.arn, target, event)
    log.info("twin: event %s from %s matched rules %s", event["detail-type"], event["source"], matched)
    return matched


def _deliver(ctx: TwinContext, rule_arn: str, target: dict[str, Any], event: dict[str, Any]) -> None:
    arn = str(target.get("Arn", ""))
    service = arn.split(":")[2] if arn.count(":") >= 5 else ""
    if service == "codepipeline":
        from pipekit.local import pipeline_runs

        pipeline_runs.start_execution(ctx, arn.split(":", 5)[5], trigger={
            "triggerType": "CloudWatchEvent", "triggerDetail": rule_arn})
    elif service == "lambda":
        name = arn.split(":", 6)[6].split(":")[0]
        threading.Thread(target=_invoke_async, args=(ctx, name, event), daemon=True,
                         name=f"twin-event-lambda-{name}").start()
    else:
        log.warning("twin: EventBridge target %s is not delivered by the twin", arn)


def _invoke_async(ctx: TwinContext, function_name: str, event: dict[str, Any]) -> None:
    from pipekit.local import lambda_runner

    try:
        result = lambda_runner.invoke(ctx, function_name, event)
        log.info("twin: %s answered the event: %s", function_name, result.summary())
    except Exception:
        log.exception("twin: invoking %s for an event failed", function_name)
