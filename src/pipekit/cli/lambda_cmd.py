"""`pipekit lambda package|run-local`: build the deploy Lambda's zip, or drive it against the twin."""

from __future__ import annotations

from pathlib import Path

import typer

from pipekit.cli._common import EXIT_DATA, emit_json, out_console, user_errors

lambda_app = typer.Typer(help="The CodePipeline deploy Lambda: package it, or run a pipeline on the twin.",
                         no_args_is_help=True)


@lambda_app.command("package")
def package_cmd(
    out: Path = typer.Option(Path("dist/pipekit-glue-deploy.zip"), "--out", "-o", help="Zip to write."),
    handler: Path | None = typer.Option(None, "--handler", help="Handler file (default adapters/lambda/handler.py)."),
    with_yaml: bool = typer.Option(False, "--with-yaml", help="Add PyYAML (pure Python) for .yaml job configs."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Build the Lambda zip: handler + pipekit deploy code; boto3 comes from the Lambda runtime."""
    from pipekit.deploy.package import build_lambda_zip

    with user_errors():
        pkg = build_lambda_zip(out, handler=handler, with_yaml=with_yaml)
    if as_json:
        emit_json({"path": str(pkg.path), "size_bytes": pkg.size_bytes, "sha256": pkg.sha256,
                   "files": list(pkg.files)})
    else:
        out_console.print(f"wrote {pkg.path}: {pkg.size_bytes / 1024:.1f} KiB, {len(pkg.files)} files, "
                          f"sha256 {pkg.sha256[:16]}", highlight=False, soft_wrap=True)
        out_console.print("handler: handler.handler   runtime: python3.12 (boto3 from the runtime)",
                          highlight=False)


@lambda_app.command("run-local")
def run_local_cmd(
    repository: str = typer.Option(..., "--repository", help="CodeCommit repository on the twin."),
    bucket: str = typer.Option(..., "--bucket", help="Scripts bucket (UserParameters.bucket)."),
    artifact_bucket: str = typer.Option(..., "--artifact-bucket", help="Pipeline artifact bucket."),
    branch: str = typer.Option("main", "--branch"),
    source: str = typer.Option("codecommit", "--source", help="codecommit | zip | git"),
    poll: float = typer.Option(2.0, "--poll", help="Seconds between continuation invocations."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Also print the handler's log lines."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Play EventBridge + CodePipeline on the twin: the branch head goes through the real handler."""
    import logging

    from pipekit.errors import ConfigError
    from pipekit.local.codepipeline_twin import load_handler, run_on_push

    if not verbose:  # the handler's log lines are its CloudWatch log; the results are printed below
        logging.getLogger("pipekit").addHandler(logging.NullHandler())
    params = {"bucket": bucket, "repository": repository, "branch": branch, "source": source}

    last: list[str] = []

    def show(inv) -> None:  # one line per invocation, as the pipeline console would show it
        res = inv.result or {}
        text = (res.get("executionDetails") or {}).get("summary") or (res.get("failureDetails") or {}).get(
            "message", "(no result reported)")
        more = " (continuation token returned)" if res.get("continuationToken") else ""
        line = f"{inv.job['status']}{more}: {text}"
        if as_json:
            return
        if last and last[-1] == line:  # the same "still running" answer: one dot per re-invocation
            out_console.print(".", end="", highlight=False)
        else:
            if last:
                out_console.print()
            out_console.print(f"  invoke job {inv.job_id[:8]}: {line}", highlight=False, markup=False,
                              soft_wrap=True, end="")
        last.append(line)

    with user_errors():
        try:
            run = run_on_push(load_handler(), repository=repository, branch=branch,
                              artifact_bucket=artifact_bucket, user_parameters=params, poll_s=poll,
                              on_invocation=show)
        except RuntimeError as exc:
            raise ConfigError(str(exc)) from exc
    if as_json:
        emit_json({"commit": run.commit, "status": run.status, "message": run.message,
                   "invocations": len(run.invocations)})
    else:
        out_console.print()
        out_console.print(f"pipeline for {run.commit[:12]}: {run.status}: {run.message}", highlight=False,
                          markup=False, soft_wrap=True)
    if run.status != "Succeeded":
        raise typer.Exit(EXIT_DATA)


@lambda_app.command("trigger")
def trigger_cmd(
    repository: str = typer.Option(..., "--repository", help="CodeCommit repository on the twin."),
    bucket: str = typer.Option(..., "--bucket", help="Scripts bucket (UserParameters.bucket)."),
    artifact_bucket: str = typer.Option(..., "--artifact-bucket", help="Pipeline artifact bucket."),
    branch: str = typer.Option("main", "--branch"),
    source: str = typer.Option("codecommit", "--source", help="codecommit | zip | git"),
    poll: float = typer.Option(3.0, "--poll", help="Seconds between continuation invocations."),
) -> None:
    """On the twin: run the pipeline on every push to the branch (EventBridge rule as a git hook)."""
    from pipekit.errors import ConfigError
    from pipekit.local.codepipeline_twin import install_push_trigger

    with user_errors():
        try:
            hook = install_push_trigger(repository, bucket=bucket, artifact_bucket=artifact_bucket, branch=branch,
                                        source=source, poll_s=poll)
        except RuntimeError as exc:
            raise ConfigError(str(exc)) from exc
    out_console.print(f"pushes to {repository}:{branch} now run the pipeline ({hook})", highlight=False,
                      soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add the `lambda` group to the root app."""
    app.add_typer(lambda_app, name="lambda")
