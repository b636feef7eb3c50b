"""`pipekit glue plan|apply|schema`: reconcile Glue jobs with a repository checkout from a laptop."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from pipekit.cli._common import EXIT_DATA, emit_json, out_console, user_errors

glue_app = typer.Typer(help="Deploy Glue jobs from a repository (glue/jobs/*.json|yaml + glue/scripts/).",
                       no_args_is_help=True)

_DIR = typer.Argument(..., help="Repository checkout with glue/jobs/ and glue/scripts/.", exists=True,
                      file_okay=False)
_BUCKET = typer.Option(..., "--bucket", "-b", help="Bucket for scripts (uploaded to s3://BUCKET/scripts/).")
_OWNER = typer.Option(None, "--owner", help="Ownership tag value (pipekit:owner); default: the directory name. "
                                            "Use the same value as the pipeline (its repository name).")
_JSON = typer.Option(False, "--json", help="Print JSON instead of text.")


def _owner(directory: Path, owner: str | None) -> str:
    return owner or directory.resolve().name


@glue_app.command("plan")
def plan_cmd(directory: Path = _DIR, bucket: str = _BUCKET, owner: str | None = _OWNER,
             as_json: bool = _JSON) -> None:
    """Show what apply would do: create, update (field by field), unchanged, conflicts."""
    from pipekit.deploy import ChangeKind, plan_directory

    with user_errors():
        changes = plan_directory(directory, bucket=bucket, owner=_owner(directory, owner))
    if as_json:
        emit_json([{"job": c.job_name, "kind": c.kind.value, "reason": c.reason,
                    "diffs": [{"field": d.field, "old": d.old, "new": d.new} for d in c.diffs],
                    "tags_to_add": dict(c.tags_to_add), "tags_to_remove": list(c.tags_to_remove)} for c in changes])
    else:
        for c in changes:
            out_console.print(c.describe(), highlight=False, markup=False, soft_wrap=True)
        if not changes:
            out_console.print("no jobs configured")
    if any(c.kind is ChangeKind.CONFLICT for c in changes):
        raise typer.Exit(EXIT_DATA)


@glue_app.command("apply")
def apply_cmd(directory: Path = _DIR, bucket: str = _BUCKET, owner: str | None = _OWNER,
              run: bool = typer.Option(False, "--run", help="Start runs of changed jobs with run_after_deploy."),
              wait: bool = typer.Option(True, "--wait/--no-wait", help="With --run, wait for the runs to end."),
              poll: float = typer.Option(10.0, "--poll", help="Seconds between run-state checks."),
              as_json: bool = _JSON) -> None:
    """Upload scripts and create/update the jobs (never touching jobs the repository does not own)."""
    from pipekit.aws.glue import RunOutcome
    from pipekit.deploy import apply_directory

    with user_errors():
        result = apply_directory(directory, bucket=bucket, owner=_owner(directory, owner), run=run, wait=wait,
                                 poll_s=poll)
    failed = [r for r in result.runs if r.outcome.done and r.outcome is not RunOutcome.SUCCEEDED]
    if as_json:
        emit_json({"applied": result.report.as_dict(), "uploaded": result.uploaded,
                   "runs": [{"job": r.job_name, "run_id": r.run_id, "state": r.state, "error": r.error_message}
                            for r in result.runs]})
    else:
        for c in result.changes:
            out_console.print(c.describe(), highlight=False, markup=False, soft_wrap=True)
        for uri in result.uploaded:
            out_console.print(f"uploaded  {uri}", highlight=False, soft_wrap=True)
        for r in result.runs:
            out_console.print(r.describe(), highlight=False, markup=False, soft_wrap=True)
    if failed:
        raise typer.Exit(EXIT_DATA)


@glue_app.command("schema")
def schema_cmd() -> None:
    """Print the JSON Schema of a job config (for editors and CI linting)."""
    from pipekit.deploy import schema

    typer.echo(json.dumps(schema(), indent=2))


@glue_app.command("validate")
def validate_cmd(directory: Path = _DIR) -> None:
    """Validate every job config in the checkout against the schema (no AWS calls)."""
    from pipekit.deploy import load_directory

    with user_errors():
        configs = load_directory(directory)
    for c in configs:
        out_console.print(f"ok  {c.path} -> job {c.name!r} (script glue/scripts/{c.script})", highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add the `glue` group to the root app."""
    app.add_typer(glue_app, name="glue")
