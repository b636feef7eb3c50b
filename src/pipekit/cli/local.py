"""`pipekit local ...`: the offline AWS twin (moto plus pipekit's crawler, Athena and Glue job runner)."""

from __future__ import annotations

from pathlib import Path

import typer

from pipekit.cli._common import emit_json, err_console, out_console, user_errors

local_app = typer.Typer(help="Run the offline AWS twin on 127.0.0.1 and provision the ETL stack into it.",
                        no_args_is_help=True)

_DIR = typer.Option(None, "--state-dir", help="Twin state directory (default $PIPEKIT_TWIN_DIR or .twin/).")


@local_app.command("up")
def up_cmd(
    state_dir: Path = _DIR,
    template: Path = typer.Option(None, "--template", help="Template to provision (default infra/cloudformation/etl.yaml)."),
    stack: str = typer.Option("pipekit-etl", "--stack", help="Stack name to create in the twin."),
    provision: bool = typer.Option(True, "--provision/--no-provision", help="Provision the template."),
) -> None:
    """Start the twin (or reuse the running one); print the `export` lines for the AWS CLI and boto3."""
    from pipekit.local import twin

    with user_errors():
        state = twin.up(state_dir, template=template, stack_name=stack, provision=provision)
    err_console.print(f"twin up at {state.endpoint_url} (pid {state.pid}); stack {stack} "
                      f"{'provisioned' if provision else 'not provisioned'}. Run: eval \"$(pipekit local status --env)\"",
                      highlight=False, soft_wrap=True)
    out_console.print(state.exports(), highlight=False, soft_wrap=True)


@local_app.command("down")
def down_cmd(state_dir: Path = _DIR) -> None:
    """Stop the twin."""
    from pipekit.local import twin

    with user_errors():
        stopped = twin.down(state_dir)
    out_console.print("twin stopped" if stopped else "no twin was running", highlight=False, soft_wrap=True)


@local_app.command("status")
def status_cmd(
    state_dir: Path = _DIR,
    env: bool = typer.Option(False, "--env", help="Print only the export lines (for eval)."),
    as_json: bool = typer.Option(False, "--json", help="Print the state as JSON."),
) -> None:
    """Whether the twin is running, and where; exit 1 when it is not."""
    from dataclasses import asdict

    from pipekit.local import twin

    with user_errors():
        state = twin.status(state_dir)
    if state is None:
        err_console.print("no twin is running (start one with `pipekit local up`)")
        raise typer.Exit(1)
    if as_json:
        emit_json(asdict(state))
    elif env:
        out_console.print(state.exports(), highlight=False, soft_wrap=True)
    else:
        out_console.print(f"twin running at {state.endpoint_url} (pid {state.pid}, state {state.state_dir}, "
                          f"stack {state.stack_name or '-'})", highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add `pipekit local` to the root app."""
    app.add_typer(local_app, name="local")
