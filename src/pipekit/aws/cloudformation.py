"""CloudFormation: load templates (short-form tags included), create or update stacks, read outputs."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipekit.aws._client import client
from pipekit.errors import AwsError, ConfigError

_TERMINAL_OK = {"CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE"}
_TERMINAL_BAD = {
    "CREATE_FAILED",
    "ROLLBACK_COMPLETE",
    "ROLLBACK_FAILED",
    "DELETE_COMPLETE",
    "DELETE_FAILED",
    "UPDATE_ROLLBACK_FAILED",
}


def _yaml_loader() -> Any:
    """A SafeLoader that turns CloudFormation short-form tags (``!Ref``, ``!Sub``, ...) into long form."""
    import yaml

    class CfnLoader(yaml.SafeLoader):
        pass

    def construct(loader: Any, tag_suffix: str, node: Any) -> Any:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        if tag_suffix == "Ref":
            return {"Ref": value}
        if tag_suffix == "GetAtt" and isinstance(value, str):
            value = value.split(".", 1)
        if tag_suffix == "Condition":
            return {"Condition": value}
        return {f"Fn::{tag_suffix}": value}

    CfnLoader.add_multi_constructor("!", construct)
    return CfnLoader


def load_template(path: str | Path) -> dict[str, Any]:
    """Parse a CloudFormation template (YAML or JSON) into plain long-form data."""
    import yaml

    path = Path(path)
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_yaml_loader())
    except FileNotFoundError:
        raise
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not a valid CloudFormation template: {exc}") from exc
    if not isinstance(data, dict) or "Resources" not in data:
        raise ConfigError(f"{path}: a CloudFormation template needs a top-level Resources section.")
    return data


@dataclass
class StackResult:
    """Outcome of :func:`deploy_stack`."""

    stack_name: str
    status: str
    action: str  # "create" | "update" | "unchanged"
    outputs: dict[str, str] = field(default_factory=dict)


def _describe(cfn: Any, stack_name: str) -> dict[str, Any] | None:
    from botocore.exceptions import ClientError

    try:
        stacks = cfn.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as exc:
        if "does not exist" in str(exc):
            return None
        raise AwsError(f"describe_stacks({stack_name}) failed: {exc}") from exc
    return stacks[0] if stacks else None


def deploy_stack(
    stack_name: str,
    template_body: str,
    parameters: Mapping[str, str] | None = None,
    *,
    capabilities: tuple[str, ...] = ("CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"),
    timeout: float = 900.0,
    session: Any | None = None,
) -> StackResult:
    """Create ``stack_name`` or update it in place, wait for a terminal state and return its outputs."""
    from botocore.exceptions import ClientError

    cfn = client("cloudformation", session)
    params = [{"ParameterKey": k, "ParameterValue": str(v)} for k, v in (parameters or {}).items()]
    existing = _describe(cfn, stack_name)
    kwargs = {"StackName": stack_name, "TemplateBody": template_body, "Parameters": params,
              "Capabilities": list(capabilities)}
    try:
        if existing is None or existing["StackStatus"] == "ROLLBACK_COMPLETE":
            if existing is not None:
                cfn.delete_stack(StackName=stack_name)
            cfn.create_stack(**kwargs)
            action = "create"
        else:
            cfn.update_stack(**kwargs)
            action = "update"
    except ClientError as exc:
        if "No updates are to be performed" in str(exc):
            return StackResult(stack_name, existing["StackStatus"] if existing else "", "unchanged",
                               stack_outputs(stack_name, session=session))
        raise AwsError(f"deploying stack {stack_name} failed: {exc}",
                       hint="check the template with cfn-lint and the stack events in the console") from exc
    status = wait_for_stack(stack_name, timeout=timeout, session=session)
    return StackResult(stack_name, status, action, stack_outputs(stack_name, session=session))


def wait_for_stack(stack_name: str, *, timeout: float = 900.0, poll: float = 2.0, session: Any | None = None) -> str:
    """Poll until the stack reaches a terminal status; raise AwsError when it failed or rolled back."""
    cfn = client("cloudformation", session)
    deadline = time.monotonic() + timeout
    while True:
        stack = _describe(cfn, stack_name)
        status = stack["StackStatus"] if stack else "DELETE_COMPLETE"
        if status in _TERMINAL_OK:
            return status
        if status in _TERMINAL_BAD:
            reason = (stack or {}).get("StackStatusReason", "")
            raise AwsError(f"stack {stack_name} ended in {status}: {reason}",
                           hint=f"aws cloudformation describe-stack-events --stack-name {stack_name}")
        if time.monotonic() > deadline:
            raise AwsError(f"stack {stack_name} still {status} after {timeout:.0f}s")
        time.sleep(poll)


def stack_outputs(stack_name: str, *, session: Any | None = None) -> dict[str, str]:
    """The stack's Outputs as ``{OutputKey: OutputValue}``; AwsError naming the stack when it is missing."""
    cfn = client("cloudformation", session)
    stack = _describe(cfn, stack_name)
    if stack is None:
        raise AwsError(
            f"CloudFormation stack {stack_name!r} does not exist in this account/region.",
            hint="deploy it first (see docs/aws.md), or start the offline twin with `pipekit local up`",
        )
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def stack_resources(stack_name: str, *, session: Any | None = None) -> dict[str, str]:
    """``{LogicalResourceId: PhysicalResourceId}`` for the stack's resources."""
    cfn = client("cloudformation", session)
    res = cfn.describe_stack_resources(StackName=stack_name)["StackResources"]
    # moto lists resources it skipped as blank entries; they have no logical id to report.
    return {r["LogicalResourceId"]: r.get("PhysicalResourceId", "") for r in res if r.get("LogicalResourceId")}
