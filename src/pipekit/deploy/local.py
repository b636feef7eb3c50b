"""The same reconciliation from a laptop: a repository checkout on disk instead of a pipeline source."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipekit.aws import glue
from pipekit.deploy import _s3
from pipekit.deploy.apply import ApplyReport, apply, check, read_current
from pipekit.deploy.config import CONFIG_SUFFIXES, JOBS_DIR, SCRIPTS_DIR, JobConfig, load_configs
from pipekit.deploy.plan import Change, DesiredJob, plan
from pipekit.errors import ConfigError


def load_directory(repo: str | Path) -> list[JobConfig]:
    """Validate every ``glue/jobs/*.json|yaml`` under checkout ``repo`` (scripts must exist in glue/scripts)."""
    root = Path(repo)
    jobs = root / JOBS_DIR
    if not jobs.is_dir():
        raise ConfigError(f"{root} has no {JOBS_DIR}/ directory.",
                          hint=f"Put one config per job in {JOBS_DIR}/<job-name>.json (see examples/glue-repo).")
    files = {f"{JOBS_DIR}/{p.name}": p.read_bytes() for p in sorted(jobs.iterdir())
             if p.is_file() and p.suffix in CONFIG_SUFFIXES}
    scripts = root / SCRIPTS_DIR
    known = {p.relative_to(root).as_posix() for p in scripts.rglob("*") if p.is_file()} if scripts.is_dir() else set()
    return load_configs(files, known_files=known)


def plan_directory(repo: str | Path, *, bucket: str, owner: str, prefix: str = "scripts/",
                   session: Any | None = None) -> list[Change]:
    """The plan that makes Glue match checkout ``repo``."""
    configs = load_directory(repo)
    desired = [DesiredJob.from_config(c, bucket=bucket, owner=owner, prefix=prefix) for c in configs]
    return plan(desired, read_current([d.name for d in desired], session=session), owner=owner)


@dataclass
class DirectoryDeploy:
    """What ``apply_directory`` did."""

    changes: list[Change]
    report: ApplyReport
    uploaded: list[str] = field(default_factory=list)
    runs: list[glue.JobRun] = field(default_factory=list)


def apply_directory(repo: str | Path, *, bucket: str, owner: str, prefix: str = "scripts/", run: bool = False,
                    wait: bool = True, poll_s: float = 10.0, session: Any | None = None) -> DirectoryDeploy:
    """Upload scripts, apply the plan, and with ``run`` start (and wait for) runs of changed run_after_deploy jobs."""
    root = Path(repo)
    configs = load_directory(root)
    changes = plan_directory(root, bucket=bucket, owner=owner, prefix=prefix, session=session)
    check(changes)  # refuse before uploading anything if a job belongs to someone else
    uploaded = [f"s3://{bucket}/{prefix}{s}" for s in sorted({c.script for c in configs})
                if _s3.sync_bytes(bucket, f"{prefix}{s}", (root / SCRIPTS_DIR / s).read_bytes(), session=session)]
    report = apply(changes, session=session)
    result = DirectoryDeploy(changes, report, uploaded)
    if run:
        for c in configs:
            if c.run_after_deploy and (c.name in report.changed or c.script_s3_uri(bucket, prefix) in uploaded):
                run_id = glue.start_job_run(c.name, c.run_arguments, session=session)
                result.runs.append(glue.wait_for_job_run(c.name, run_id, raise_on_failure=False, poll_s=poll_s,
                                                          session=session)
                                   if wait else glue.get_job_run(c.name, run_id, session=session))
    return result
