"""One deployment step of the CI/CD pipeline: diff, validate, upload, reconcile, start runs, monitor.

``run`` is what the Lambda calls on every invocation. It returns an :class:`Outcome`; the caller
reports it to CodePipeline. Glue runs outlast a Lambda, so while runs are going the outcome is
``in_progress`` with a continuation token, and the next invocation only checks the runs.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pipekit.aws import glue, ssm
from pipekit.aws._calls import code_of
from pipekit.deploy import _s3
from pipekit.deploy import runs as job_runs
from pipekit.deploy.apply import apply, owned_job_names, read_current
from pipekit.deploy.config import (
    JOBS_DIR,
    SCRIPTS_DIR,
    check_prefix,
    is_config_path,
    job_name_for,
    load_configs,
)
from pipekit.deploy.event import STOP, DeploySettings
from pipekit.deploy.plan import Change, ChangeKind, DesiredJob, plan
from pipekit.deploy.sources import Source, watched
from pipekit.errors import AwsError, DeployError

log = logging.getLogger("pipekit.deploy")

SUCCEEDED, IN_PROGRESS, FAILED = "succeeded", "in_progress", "failed"


class DeployTimeout(DeployError):
    """The invocation is about to run out of time before finishing a step."""


@dataclass(frozen=True)
class Outcome:
    """What to report to CodePipeline."""

    status: str
    summary: str
    continuation_token: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


def _short(rev: str | None) -> str:
    return rev[:12] if rev else "(none)"


def _token(state: dict[str, Any]) -> str:
    return json.dumps(state, separators=(",", ":"), sort_keys=True)


def run(
    settings: DeploySettings,
    source: Source,
    *,
    continuation_token: str | None = None,
    session: Any | None = None,
    check_time: Callable[[str], None] = lambda step: None,
) -> Outcome:
    """Deploy ``source.revision``; see the module docstring. Raises PipekitError subclasses on failure."""
    if continuation_token:
        state = _read_token(continuation_token)
        if state["revision"] != source.revision:
            raise DeployError(f"continuation token is for revision {_short(state.get('revision'))}, but this "
                              f"job deploys {_short(source.revision)}")
        # The SSM record knows runs not started yet (an earlier invocation ran short of time).
        recorded = _recorded(settings, source.revision, session=session)
        if recorded:
            state = {**recorded, **state, "runs": {**(recorded.get("runs") or {}), **(state.get("runs") or {})}}
        return _start_and_monitor(settings, source, state, session=session, check_time=check_time)

    revision = source.revision
    recorded = _recorded(settings, revision, session=session)
    if recorded:
        # Same revision invoked again (a retried Lambda or a re-run): never start a run twice.
        log.info("revision %s already has recorded runs %s; resuming", _short(revision), recorded.get("runs"))
        return _start_and_monitor(settings, source, recorded, session=session, check_time=check_time,
                                  note="resumed an earlier invocation of this revision")

    last = ssm.get_parameter(settings.last_deployed_parameter, session=session)
    if last == revision:
        return Outcome(SUCCEEDED, f"Revision {_short(revision)} is already deployed; nothing to do.",
                       details={"revision": revision})
    since = source.baseline(last)
    check_time("diff")
    changes = watched(source.changes(since), settings.watched)
    log.info("revision %s vs %s: %d watched change(s)", _short(revision), _short(since), len(changes))
    if not changes:
        # Nothing to deploy, but an owned job may have lost its config in a commit that never deployed.
        configured = {job_name_for(p) for p in source.list_files(JOBS_DIR) if is_config_path(p)}
        orphans, note = _orphan_candidates(settings, configured, set(), session=session)
        summary = (f"No files under {', '.join(settings.watched)} changed between {_short(since)} and "
                   f"{_short(revision)}; nothing to deploy")
        plan_report: dict[str, list[str]] = {}
        if orphans:
            check_time("reconcile")
            steps = plan([], read_current(orphans, session=session), owner=settings.owner)
            report = apply(steps, prune=settings.prune, session=session,
                           on_change=lambda c: check_time(f"apply {c.kind.value} {c.job_name}"))
            plan_report = report.as_dict()
            summary += "; " + _describe(steps, report.deleted)
        _mark_deployed(settings, source, session=session)
        return Outcome(SUCCEEDED, summary + (f"; {note}" if note else "") + ".",
                       details={"revision": revision, "since": since, "changed": [], "plan": plan_report})

    check_time("validate")
    config_paths = [p for p in source.list_files(JOBS_DIR) if is_config_path(p)]
    scripts = set(source.list_files(SCRIPTS_DIR))
    configs = load_configs({p: source.read(p) for p in config_paths}, known_files=scripts)
    check_prefix(configs, settings.job_prefix)

    uploaded = []
    for script in sorted({c.script for c in configs}):
        check_time(f"upload {script}")
        key = f"{settings.scripts_prefix}{script}"
        if _s3.sync_bytes(settings.bucket, key, source.read(f"{SCRIPTS_DIR}/{script}"), session=session):
            uploaded.append(f"s3://{settings.bucket}/{key}")

    check_time("reconcile")
    changed_paths = {c.path for c in changes}
    removed = {job_name_for(c.path) for c in changes if c.status == "D" and is_config_path(c.path)}
    desired = [DesiredJob.from_config(c, bucket=settings.bucket, owner=settings.owner,
                                      prefix=settings.scripts_prefix) for c in configs]
    orphans, note = _orphan_candidates(settings, {d.name for d in desired}, removed, session=session)
    current = read_current([d.name for d in desired] + sorted(orphans), session=session)
    steps = plan(desired, current, owner=settings.owner)
    # Checked before each job: once the watchdog has reported, or time is short, nothing more changes.
    report = apply(steps, prune=settings.prune, session=session,
                   on_change=lambda c: check_time(f"apply {c.kind.value} {c.job_name}"))
    for step in steps:
        log.info("%s", step.describe())

    to_run = sorted(c.name for c in configs if c.run_after_deploy and (
        c.name in report.changed or c.path in changed_paths or c.script_path in changed_paths))
    state = {"revision": revision, "to_run": to_run, "runs": {},
             "run_arguments": {c.name: dict(c.run_arguments) for c in configs if c.name in to_run},
             "plan": report.as_dict(), "uploaded": uploaded,
             "changes": _describe(steps, report.deleted) + (f"; {note}" if note else "")}
    return _start_and_monitor(settings, source, state, session=session, check_time=check_time)


def _start_and_monitor(settings: DeploySettings, source: Source, state: dict[str, Any], *,
                       session: Any | None, check_time: Callable[[str], None], note: str = "") -> Outcome:
    """Start the runs in ``state['to_run']`` that have no recorded run id yet, then check them.

    No run starts once one of this revision's runs has failed. Each start is :func:`runs.start_once`:
    a run of this revision that already exists in Glue is adopted, never started twice.
    """
    runs: dict[str, str] = state.setdefault("runs", {})
    pending = [] if state.get("failed") else [name for name in state.get("to_run", []) if name not in runs]
    if pending and runs:
        # An earlier invocation ran short of time between starts: if a run it started has failed since,
        # the rest must not start.
        failed = sorted(name for name, run_id in runs.items()
                        if glue.get_job_run(name, run_id, session=session).outcome
                        not in (glue.RunOutcome.IN_PROGRESS, glue.RunOutcome.SUCCEEDED))
        if failed:
            state["failed"], pending = failed, []
    record = {k: state.get(k) for k in ("revision", "to_run", "runs", "run_arguments")}
    if pending:
        # The intent goes first: if it cannot be recorded, nothing starts. After a start, the run id is
        # recorded too, but a lost id costs nothing: GetJobRuns finds the run by its revision argument.
        ssm.put_parameter(settings.runs_parameter, _token(record), session=session,
                          description="pipekit: Glue runs started for this revision")
    waiting: dict[str, str] = {}
    for name in pending:
        try:
            check_time(f"start run of {name}")
        except DeployTimeout:
            if not runs:
                raise
            # Runs are already going: hand over to the next invocation, which starts the rest.
            log.warning("out of time before starting %s; continuing on the next invocation", name)
            break
        try:
            started = job_runs.start_once(name, state["revision"], state.get("run_arguments", {}).get(name),
                                          stop_leftovers=settings.on_run_failure == STOP, session=session)
        except job_runs.LeftoverRuns as err:
            log.warning("%s; starting its run on a later invocation", err)
            waiting[name] = "waiting for a run of another revision to end"
            continue
        runs[name] = started.run_id
        log.info("%s Glue job %s run %s", "adopted" if started.adopted else "started", name, runs[name])
        _record(settings, record, session=session)
    if note:
        state["note"] = note
    state["waiting"] = waiting
    return _monitor(settings, source, state, session=session, check_time=check_time)


def _record(settings: DeploySettings, record: dict[str, Any], *, session: Any | None) -> None:
    """Write the run record to SSM; a failure (throttled past every retry) is logged, not raised: the runs
    are in the continuation token, and a resumed invocation finds them by their revision argument."""
    try:
        ssm.put_parameter(settings.runs_parameter, _token(record), session=session)
    except AwsError as err:
        log.warning("could not record the runs %s in %s (%s); the continuation token carries them and "
                    "GetJobRuns finds them by %s", record.get("runs"), settings.runs_parameter, err,
                    job_runs.REVISION_ARG)


def _monitor(settings: DeploySettings, source: Source, state: dict[str, Any], *,
             session: Any | None, check_time: Callable[[str], None]) -> Outcome:
    """Check every recorded run once: all succeeded, any failed, or still going (continuation).

    When a run has failed, no further run starts; the others still going are stopped (BatchStopJobRun)
    or awaited, per ``settings.on_run_failure``, and the failure is reported once none is going.
    """
    revision = state["revision"]
    runs: dict[str, str] = state.get("runs", {})
    stopped: list[str] = list(state.get("stopped") or [])
    results: dict[str, glue.JobRun] = {}
    unchecked: list[str] = []
    for name, run_id in sorted(runs.items()):
        try:
            check_time(f"check run of {name}")
        except DeployTimeout:
            # Short of time: the runs not checked yet are checked on the next invocation.
            unchecked = sorted(set(runs) - set(results))
            break
        results[name] = glue.get_job_run(name, run_id, session=session)
    failed = [r for r in results.values() if r.outcome.done and r.outcome is not glue.RunOutcome.SUCCEEDED]
    failed_names = sorted({r.job_name for r in failed} | set(state.get("failed") or []))
    not_started = [n for n in state.get("to_run") or [] if n not in runs]
    if not failed_names:
        unchecked += not_started
    still = [r for r in results.values() if not r.outcome.done]
    going = [f"{r.job_name} ({r.state})" for r in still]
    waiting = state.get("waiting") or {}
    going += [f"{n} ({waiting[n]})" if n in waiting else f"{n} (not checked yet)" for n in unchecked]
    plan_txt = state.get("changes") or ", ".join(
        f"{k} {', '.join(v)}" for k, v in (state.get("plan") or {}).items() if v)
    unchanged = (state.get("plan") or {}).get("unchanged") or []
    if state.get("changes") and unchanged:
        plan_txt += f"; unchanged {', '.join(unchanged)}"
    details = {"revision": revision, "plan": state.get("plan"), "uploaded": state.get("uploaded"),
               "runs": {n: r.state for n, r in results.items()}}
    head = f"Revision {_short(revision)}: {plan_txt}; " if plan_txt else f"Revision {_short(revision)}: "
    if failed_names and going:
        if not state.get("failed"):
            state["failed"] = failed_names
            # Recorded, so that a re-invocation without the token starts none of the runs not started yet.
            _record(settings, {**{k: state.get(k) for k in ("revision", "to_run", "runs", "run_arguments")},
                               "failed": failed_names}, session=session)
        cause = "; ".join(r.describe() for r in failed if r.job_name not in stopped)
        if settings.on_run_failure == STOP:
            to_stop = [r for r in still if r.job_name not in stopped and r.state != "STOPPING"]
            for r in to_stop:
                try:
                    check_time(f"stop run of {r.job_name}")
                except DeployTimeout:
                    break  # the next invocation stops the rest
                job_runs.stop_runs(r.job_name, [r.run_id], session=session)
                stopped.append(r.job_name)
            state["stopped"] = sorted(stopped)
            what = "stopping " + ", ".join(going) + " (on_run_failure: stop)"
        else:
            what = "waiting for " + ", ".join(going) + " to end (on_run_failure: wait)"
        summary = head + f"{cause or 'a run failed'}; {what} before reporting the failure"
        return Outcome(IN_PROGRESS, summary, continuation_token=_continuation(state), details=details)
    if failed_names:
        others = [r for r in results.values() if r.job_name not in failed_names or r.job_name in stopped]
        raise GlueRunFailed([r for r in failed if r.job_name not in stopped], revision,
                            stopped=[r for r in others if r.job_name in stopped],
                            finished=[r for r in others if r.job_name not in stopped], not_started=not_started)
    if going:
        return Outcome(IN_PROGRESS, head + "waiting for " + ", ".join(going),
                       continuation_token=_continuation(state), details=details)
    _mark_deployed(settings, source, session=session)
    ran = ", ".join(f"{r.job_name} run {r.run_id[:12]} SUCCEEDED" for r in results.values())
    summary = f"Deployed {_short(revision)}: {plan_txt or 'no job changes'}"
    if ran:
        summary += f"; {ran}"
    return Outcome(SUCCEEDED, summary + ".", details=details)


def _continuation(state: dict[str, Any]) -> str:
    """The continuation token: the runs, what failed and was stopped, and (room permitting) the plan."""
    token_state = {k: v for k, v in state.items() if k in ("revision", "runs", "plan", "changes", "failed", "stopped")
                   and v}
    token_state.setdefault("runs", {})
    for optional in ("changes", "plan"):  # CodePipeline caps the token at 2048 characters
        if len(_token(token_state)) > 2000:
            token_state.pop(optional, None)
    return _token(token_state)


class GlueRunFailed(DeployError):
    """A Glue run started by the deployment did not succeed; the message carries Glue's ErrorMessage and
    what became of the other runs of the revision (stopped, finished, never started)."""

    def __init__(self, runs: list[glue.JobRun], revision: str, *, stopped: list[glue.JobRun] | None = None,
                 finished: list[glue.JobRun] | None = None, not_started: list[str] | None = None) -> None:
        self.runs = runs
        self.stopped = stopped or []
        parts = [r.describe() for r in runs]
        if self.stopped:
            parts.append("stopped because of that failure: " + ", ".join(
                f"{r.job_name} run {r.run_id[:12]} {r.state}" for r in self.stopped))
        if finished:
            parts.append("the other runs ended: " + ", ".join(f"{r.job_name} {r.state}" for r in finished))
        if not_started:
            parts.append("not started: " + ", ".join(not_started))
        super().__init__(f"Revision {_short(revision)}: " + "; ".join(parts),
                         hint="Fix the job and push a new commit; the job definitions were deployed, and no run "
                              "of this revision is still going.")


def _describe(steps: list[Change], deleted: list[str]) -> str:
    """``created a; updated b (...); orphaned c (...)``: the steps that did something, for the summary."""
    return "; ".join(f"deleted {c.job_name}" if c.job_name in deleted else c.short()
                     for c in steps if c.kind is not ChangeKind.UNCHANGED)


def _orphan_candidates(settings: DeploySettings, configured: set[str], removed: set[str], *,
                       session: Any | None) -> tuple[set[str], str]:
    """Jobs tagged as owned by this repository with no config at this revision, and a note when that
    could only be checked among the configs this diff deletes (``removed``)."""
    try:
        owned = set(owned_job_names(settings.owner, session=session))
    except AwsError as err:
        if code_of(err) not in ("AccessDeniedException", "AccessDenied"):
            raise
        log.warning("cannot list the jobs owned by %s: %s", settings.owner, err)
        return {n for n in removed if n.startswith(settings.job_prefix)} - configured, (
            "orphans were looked for only among the configs this diff deletes: "
            "the Lambda role lacks glue:ListJobs")
    # A job outside the prefix is beyond the deploy role's reach (cicd.yaml): neither reported nor pruned.
    return {n for n in owned if n.startswith(settings.job_prefix)} - configured, ""


#: How much of an unreadable continuation token a failure message shows.
TOKEN_SHOWN = 80
_JSON_TYPES = {list: "an array", str: "a string", int: "a number", float: "a number", bool: "a boolean",
               type(None): "null"}


def _read_token(token: str) -> dict[str, Any]:
    """The state in a continuation token this deployment wrote; DeployError naming the token otherwise."""
    problem: str | None
    try:
        state = json.loads(token)
    except json.JSONDecodeError as exc:
        problem = f"is not JSON ({exc.msg} at character {exc.pos})"
    else:
        problem = _token_problem(state)
    if problem is None:
        return dict(state)
    shown = repr(token[:TOKEN_SHOWN]) + (f"... ({len(token)} characters)" if len(token) > TOKEN_SHOWN else "")
    raise DeployError(
        f"The continuation token {shown} {problem}: it is not a token this deployment wrote, so this "
        "invocation cannot tell which Glue runs to check. Nothing was changed.",
        hint="Release the change again (Release change in the CodePipeline console, or Retry on this stage): "
             "the new job carries no token and resumes the runs recorded for this revision, never starting "
             "one twice.")


def _token_problem(state: Any) -> str | None:
    if not isinstance(state, dict):
        return f"is JSON but {_JSON_TYPES.get(type(state), type(state).__name__)}, not an object"
    if not isinstance(state.get("revision"), str) or not state["revision"]:
        return "has no 'revision'"
    runs = state.get("runs", {})
    if not isinstance(runs, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in runs.items()):
        return "has a 'runs' entry that is not a map of job name to run id"
    return None


def _recorded(settings: DeploySettings, revision: str, *, session: Any | None) -> dict[str, Any] | None:
    """The runs recorded in SSM for ``revision`` (None if the record is for another revision)."""
    raw = ssm.get_parameter(settings.runs_parameter, session=session)
    if not raw:
        return None
    try:
        state = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise DeployError(
            f"SSM parameter {settings.runs_parameter} (the Glue runs started for the revision being deployed) "
            f"does not hold JSON: {exc.msg} at character {exc.pos}.",
            hint=f"Check no run of this revision is still going, delete the parameter (aws ssm delete-parameter "
                 f"--name {settings.runs_parameter}) and release the change again.") from exc
    return state if isinstance(state, dict) and state.get("revision") == revision else None


def _mark_deployed(settings: DeploySettings, source: Source, *, session: Any | None) -> None:
    source.remember()
    ssm.put_parameter(settings.last_deployed_parameter, source.revision, session=session,
                      description="pipekit: last Glue deployment that succeeded")
