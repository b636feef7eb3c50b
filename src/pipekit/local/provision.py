"""Provision a CloudFormation template into the twin.

``create_stack`` builds what moto supports (bucket, KMS key, IAM roles and policies) and gives the stack
its Outputs. moto silently skips Glue databases, classifiers, crawlers, tables, jobs, security
configurations and Athena workgroups, so those are then created through the ordinary AWS API, from the
same template's properties with their intrinsic functions resolved. CodeCommit repositories,
CodePipeline pipelines and bucket policies are created by moto's stack engine itself, through the twin's
models (:mod:`pipekit.local.cfn_models`), so ``infra/cloudformation/cicd.yaml`` provisions as it is.

A stack that fails is a :class:`~pipekit.local.twin.TwinError` naming the stack, the template and the
failed resources' reasons (from the stack events), never a botocore parser error.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pipekit.aws.cloudformation import deploy_stack, load_template, stack_resources
from pipekit.errors import AwsError, ConfigError

ACCOUNT = "123456789012"


class _Resolver:
    """Evaluates the intrinsic functions the ETL templates use (Ref, Sub, GetAtt, If, Equals, Join, Select)."""

    def __init__(self, template: Mapping[str, Any], params: Mapping[str, str], physical: Mapping[str, str],
                 arns: Callable[[str, str], str], region: str, stack_name: str) -> None:
        self.template = template
        self.params = dict(params)
        self.physical = physical
        self.arns = arns
        self.pseudo = {
            "AWS::AccountId": ACCOUNT,
            "AWS::Region": region,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": stack_name,
            "AWS::StackId": f"arn:aws:cloudformation:{region}:{ACCOUNT}:stack/{stack_name}/twin",
            "AWS::NoValue": None,
        }

    def ref(self, name: str) -> Any:
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.params:
            return self.params[name]
        if name in self.physical:
            return self.physical[name]
        raise ConfigError(f"template: Ref to unknown name {name!r}")

    def condition(self, name: str) -> bool:
        return bool(self(self.template.get("Conditions", {})[name]))

    def __call__(self, node: Any) -> Any:
        if isinstance(node, list):
            return [v for v in (self(x) for x in node) if v is not None]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, arg), = node.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Condition":
                return self.condition(arg)
            if key == "Fn::GetAtt":
                logical, attr = arg if isinstance(arg, list) else arg.split(".", 1)
                return self.arns(logical, attr)
            if key == "Fn::Sub":
                text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], self(arg[1]))

                def sub(m: re.Match[str]) -> str:
                    name = m.group(1)
                    if name in extra:
                        return str(extra[name])
                    if "." in name and name.split(".", 1)[0] in self.physical:
                        return str(self.arns(*name.split(".", 1)))
                    return str(self.ref(name))

                return re.sub(r"\$\{([^}!]+)\}", sub, text)
            if key == "Fn::If":
                cond, yes, no = arg
                return self(yes if self.condition(cond) else no)
            if key == "Fn::Equals":
                a, b = (self(x) for x in arg)
                return str(a) == str(b)
            if key == "Fn::Not":
                return not self(arg[0])
            if key == "Fn::And":
                return all(self(x) for x in arg)
            if key == "Fn::Or":
                return any(self(x) for x in arg)
            if key == "Fn::Join":
                sep, items = arg
                return sep.join(str(x) for x in self(items))
            if key == "Fn::Select":
                idx, items = arg
                return self(items)[int(self(idx))]
        return {k: v for k, v in ((k, self(v)) for k, v in node.items()) if v is not None}


def _resolve_params(template: Mapping[str, Any], overrides: Mapping[str, str] | None) -> dict[str, str]:
    params = {k: str(v.get("Default", "")) for k, v in template.get("Parameters", {}).items()}
    for key, value in (overrides or {}).items():
        if key not in params:
            raise ConfigError(f"template has no parameter {key!r}; it has: {', '.join(sorted(params))}")
        params[key] = str(value)
    return params


def _clients(endpoint_url: str, region: str) -> Callable[[str], Any]:
    import boto3

    session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=region)
    cache: dict[str, Any] = {}

    def get(service: str) -> Any:
        if service not in cache:
            cache[service] = session.client(service, endpoint_url=endpoint_url)
        return cache[service]

    return get


def provision_stack(
    endpoint_url: str,
    template_path: str | os.PathLike[str],
    *,
    stack_name: str = "pipekit-etl",
    region: str = "us-east-1",
    parameters: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Create (or update) the stack in the twin, then the resources moto skips; returns the stack Outputs."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError
    from botocore.parsers import ResponseParserError

    template_path = Path(template_path)
    template = load_template(template_path)
    params = _resolve_params(template, parameters)
    get = _clients(endpoint_url, region)
    session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=region)

    # deploy_stack goes through pipekit's client factory, which reads the endpoint from the environment.
    saved = os.environ.get("AWS_ENDPOINT_URL")
    os.environ["AWS_ENDPOINT_URL"] = endpoint_url
    try:
        with warnings.catch_warnings():
            # moto warns for each resource type it skips; the loop below creates exactly those.
            warnings.simplefilter("ignore", UserWarning)
            try:
                result = deploy_stack(stack_name, template_path.read_text(encoding="utf-8"),
                                      {k: v for k, v in params.items() if v != "" or k in (parameters or {})},
                                      timeout=120.0, session=session)
            except (AwsError, ClientError, BotoCoreError, ResponseParserError) as exc:
                raise _stack_failed(get, stack_name, template_path, endpoint_url, exc) from exc
            physical = {k: v for k, v in stack_resources(stack_name, session=session).items() if v}
    finally:
        if saved is None:
            os.environ.pop("AWS_ENDPOINT_URL", None)
        else:
            os.environ["AWS_ENDPOINT_URL"] = saved

    resources: dict[str, Any] = template["Resources"]

    # Names of the resources moto skipped: what CloudFormation would use as their physical ids.
    def arns(logical: str, attr: str) -> str:
        rtype = resources[logical]["Type"]
        phys = physical.get(logical) or ""
        if rtype == "AWS::IAM::Role" and attr == "Arn":
            return get("iam").get_role(RoleName=phys)["Role"]["Arn"]
        if rtype == "AWS::S3::Bucket" and attr == "Arn":
            return f"arn:aws:s3:::{phys}"
        if rtype == "AWS::KMS::Key" and attr == "Arn":
            return f"arn:aws:kms:{region}:{ACCOUNT}:key/{phys}"
        raise ConfigError(f"template: GetAtt {logical}.{attr} is not supported by the twin provisioner")

    resolve = _Resolver(template, params, physical, arns, region, stack_name)
    # AWS::S3::BucketPolicy is deliberately not applied: the template's TLS-only Deny would refuse every
    # request to the twin, which serves plain HTTP on 127.0.0.1 (moto enforces bucket policies).
    skipped_order = [
        "AWS::Glue::Database",
        "AWS::Glue::SecurityConfiguration",
        "AWS::Glue::Classifier",
        "AWS::Glue::Crawler",
        "AWS::Glue::Table",
        "AWS::Glue::Job",
        "AWS::Athena::WorkGroup",
    ]
    for rtype in skipped_order:
        for logical, res in resources.items():
            if res.get("Type") != rtype:
                continue
            if "Condition" in res and not resolve.condition(res["Condition"]):
                continue
            props = resolve(res.get("Properties", {}))
            try:
                physical[logical] = _CREATORS[rtype](get, props)
            except ClientError as exc:
                raise ConfigError(f"twin: creating {logical} ({rtype}) failed: {exc}") from exc
            resolve.physical = physical
    return result.outputs


def _stack_failed(get: Callable[[str], Any], stack_name: str, template_path: Path, endpoint_url: str,
                  exc: Exception) -> Exception:
    """A TwinError for a stack the twin could not create, with the failure reasons of its events."""
    from pipekit.local.twin import TwinError

    reasons: list[str] = []
    try:
        events = get("cloudformation").describe_stack_events(StackName=stack_name)["StackEvents"]
        reasons = [f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason', '')}" for e in reversed(events)
                   if e["ResourceStatus"].endswith("_FAILED")]
    except Exception:  # no stack at all: the error itself is all there is
        pass
    detail = "; ".join(dict.fromkeys(reasons)) or (
        f"{type(exc).__name__}: {exc}".splitlines()[0][:500])
    return TwinError(
        f"provisioning {template_path} as stack {stack_name!r} on the twin at {endpoint_url} failed: {detail}",
        hint=(f"aws cloudformation describe-stack-events --stack-name {stack_name}; the twin's log "
              "(twin.log in its state directory) has the traceback"))


def _exists(exc: Exception) -> bool:
    code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
    return code in {"AlreadyExistsException", "InvalidRequestException"} or "already exists" in str(exc).lower()


def _database(get: Callable[[str], Any], props: dict[str, Any]) -> str:
    from botocore.exceptions import ClientError

    db = props["DatabaseInput"]
    try:
        get("glue").create_database(DatabaseInput=db)
    except ClientError as exc:
        if not _exists(exc):
            raise
    return db["Name"]


def _security_configuration(get: Callable[[str], Any], props: dict[str, Any]) -> str:
    from botocore.exceptions import ClientError

    config = dict(props["EncryptionConfiguration"])
    if "S3Encryptions" in config:  # CloudFormation's spelling of the API's S3Encryption list
        config["S3Encryption"] = config.pop("S3Encryptions")
    try:
        get("glue").create_security_configuration(Name=props["Name"], EncryptionConfiguration=config)
    except ClientError as exc:
        if not _exists(exc):
            raise
    return props["Name"]


def _classifier(get: Callable[[str], Any], props: dict[str, Any]) -> str:
    from botocore.exceptions import ClientError

    kind = next(iter(props))
    try:
        get("glue").create_classifier(**{kind: props[kind]})
    except ClientError as exc:
        if not _exists(exc):
            raise
    return props[kind]["Name"]


def _crawler(get: Callable[[str], Any], props: dict[str, Any]) -> str:
    glue = get("glue")
    kwargs = {k: v for k, v in props.items() if k != "Tags"}
    kwargs["Tags"] = props.get("Tags", {})
    try:
        glue.get_crawler(Name=props["Name"])
        glue.delete_crawler(Name=props["Name"])  # moto has no UpdateCrawler; recreate with the new properties
    except glue.exceptions.EntityNotFoundException:
        pass
    glue.create_crawler(**kwargs)
    return props["Name"]


def _table(get: Callable[[str], Any], props: dict[str, Any]) -> str:
    glue = get("glue")
    table = props["TableInput"]
    try:
        glue.create_table(DatabaseName=props["DatabaseName"], TableInput=table)
    except glue.exceptions.AlreadyExistsException:
        glue.update_table(DatabaseName=props["DatabaseName"], TableInput=table)
    return table["Name"]


def _job(get: Callable[[str], Any], props: dict[str, Any]) -> str:
    glue = get("glue")
    kwargs = {k: v for k, v in props.items() if k not in {"Tags", "Name"}}
    try:
        glue.get_job(JobName=props["Name"])
        glue.delete_job(JobName=props["Name"])  # moto lacks UpdateJob; recreate keeps provisioning idempotent
    except glue.exceptions.EntityNotFoundException:
        pass
    for key in ("NumberOfWorkers", "Timeout", "MaxRetries"):
        if key in kwargs:  # numbers from Parameters arrive as strings
            kwargs[key] = int(kwargs[key])
    glue.create_job(Name=props["Name"], Tags=props.get("Tags", {}), **kwargs)
    return props["Name"]


def _workgroup(get: Callable[[str], Any], props: dict[str, Any]) -> str:
    from botocore.exceptions import ClientError

    athena = get("athena")
    config = dict(props.get("WorkGroupConfiguration", {}))
    try:
        athena.create_work_group(Name=props["Name"], Description=props.get("Description", ""),
                                 Configuration=config)
    except ClientError as exc:
        if not _exists(exc):
            raise
    return props["Name"]


_CREATORS: dict[str, Callable[[Callable[[str], Any], dict[str, Any]], str]] = {
    "AWS::Glue::Database": _database,
    "AWS::Glue::SecurityConfiguration": _security_configuration,
    "AWS::Glue::Classifier": _classifier,
    "AWS::Glue::Crawler": _crawler,
    "AWS::Glue::Table": _table,
    "AWS::Glue::Job": _job,
    "AWS::Athena::WorkGroup": _workgroup,
}
