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
from pipekit.deploy.apply import apply, owned_job_names, read_current
from pipekit.deploy.config import JOBS_DIR, SCRIPTS_DIR, is_config_path, job_name_for, load_configs
from pipekit.deploy.event import DeploySettings
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
    """Start the runs in ``state['to_run']`` that have no recorded run id yet, then check them."""
    runs: dict[str, str] = state.setdefault("runs", {})
    pending = [name for name in state.get("to_run", []) if name not in runs]
    record = {k: state.get(k) for k in ("revision", "to_run", "runs", "run_arguments")}
    if pending:
        # Record the intent before starting, and each run id right after, so a re-invocation resumes.
        ssm.put_parameter(settings.runs_parameter, _token(record), session=session,
                          description="pipekit: Glue runs started for this revision")
    for name in pending:
        try:
            check_time(f"start run of {name}")
        except DeployTimeout:
            if not runs:
                raise
            # Runs are already going: hand over to the next invocation, which starts the rest.
            log.warning("out of time before starting %s; continuing on the next invocation", name)
            break
        runs[name] = glue.start_job_run(name, state.get("run_arguments", {}).get(name), session=session)
        log.info("started Glue job %s run %s", name, runs[name])
        ssm.put_parameter(settings.runs_parameter, _token(record), session=session)
    if note:
        state["note"] = note
    return _monitor(settings, source, state, session=session, check_time=check_time)


def _monitor(settings: DeploySettings, source: Source, state: dict[str, Any], *,
             session: Any | None, check_time: Callable[[str], None]) -> Outcome:
    """Check every recorded run once: all succeeded, any failed, or still going (continuation)."""
    revision = state["revision"]
    runs: dict[str, str] = state.get("runs", {})
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
    unchecked += [n for n in state.get("to_run") or [] if n not in runs]  # not started yet
    failed = [r for r in results.values() if r.outcome.done and r.outcome is not glue.RunOutcome.SUCCEEDED]
    going = [f"{r.job_name} ({r.state})" for r in results.values() if not r.outcome.done]
    going += [f"{n} (not checked yet)" for n in unchecked]
    plan_txt = state.get("changes") or ", ".join(
        f"{k} {', '.join(v)}" for k, v in (state.get("plan") or {}).items() if v)
    unchanged = (state.get("plan") or {}).get("unchanged") or []
    if state.get("changes") and unchanged:
        plan_txt += f"; unchanged {', '.join(unchanged)}"
    details = {"revision": revision, "plan": state.get("plan"), "uploaded": state.get("uploaded"),
               "runs": {n: r.state for n, r in results.items()}}
    if failed:
        raise GlueRunFailed(failed, revision)
    if going:
        token_state = {k: v for k, v in state.items() if k in ("revision", "runs", "plan", "changes")}
        for optional in ("changes", "plan"):  # CodePipeline caps the token at 2048 characters
            if len(_token(token_state)) > 2000:
                token_state.pop(optional, None)
        head = f"Revision {_short(revision)}: {plan_txt}; " if plan_txt else f"Revision {_short(revision)}: "
        return Outcome(IN_PROGRESS, head + "waiting for " + ", ".join(going),
                       continuation_token=_token(token_state), details=details)
    _mark_deployed(settings, source, session=session)
    ran = ", ".join(f"{r.job_name} run {r.run_id[:12]} SUCCEEDED" for r in results.values())
    summary = f"Deployed {_short(revision)}: {plan_txt or 'no job changes'}"
    if ran:
        summary += f"; {ran}"
    return Outcome(SUCCEEDED, summary + ".", details=details)


class GlueRunFailed(DeployError):
    """A Glue run started by the deployment did not succeed; the message carries Glue's ErrorMessage."""

    def __init__(self, runs: list[glue.JobRun], revision: str) -> None:
        self.runs = runs
        super().__init__(f"Revision {_short(revision)}: " + "; ".join(r.describe() for r in runs),
                         hint="Fix the job and push a new commit; the job definitions were deployed.")


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
        return removed - configured, ("orphans were looked for only among the configs this diff deletes: "
                                      "the Lambda role lacks glue:ListJobs")
    return owned - configured, ""


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
