"""A small IAM evaluator for the policies in a CloudFormation template (moto does not evaluate IAM).

Covers what pipekit's templates use: Action and Resource with ``*``/``?`` wildcards, the condition
operators below (``...IfExists`` too), explicit Deny over Allow, implicit deny. Anything else in a policy
(NotAction, NotResource, another operator) raises, so a template change cannot pass by being ignored.
It also turns a recorded boto3 call into the (action, resource, context) IAM would authorize.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

PSEUDO = {"AWS::Partition": "aws", "AWS::Region": "us-east-1", "AWS::AccountId": "123456789012",
          "AWS::URLSuffix": "amazonaws.com"}


@dataclass(frozen=True)
class Request:
    """One authorization request: ``glue:StartJobRun`` on an ARN, with its condition context."""

    action: str
    resource: str
    context: Mapping[str, str] = field(default_factory=dict)


# ----------------------------------------------------------------------------------- template


class Resolver:
    """Resolves Ref / Fn::Sub / Fn::GetAtt in a template's policy documents to plain strings."""

    def __init__(self, template: Mapping[str, Any], parameters: Mapping[str, str],
                 physical: Mapping[str, str]) -> None:
        self.template = template
        defaults = {k: str(v.get("Default", "")) for k, v in template.get("Parameters", {}).items()}
        self.values = {**PSEUDO, **defaults, **parameters}
        self.physical = physical  # logical id -> physical name (bucket, repository, log group, ...)

    def ref(self, name: str) -> str:
        if name in self.values:
            return self.values[name]
        if name in self.physical:
            return self.physical[name]
        raise KeyError(f"no value for Ref {name}")

    def get_att(self, logical: str, attribute: str) -> str:
        kind = self.template["Resources"][logical]["Type"]
        name = self.ref(logical)
        region, account = PSEUDO["AWS::Region"], PSEUDO["AWS::AccountId"]
        arns = {
            "AWS::S3::Bucket": f"arn:aws:s3:::{name}",
            "AWS::CodeCommit::Repository": f"arn:aws:codecommit:{region}:{account}:{name}",
            "AWS::Logs::LogGroup": f"arn:aws:logs:{region}:{account}:log-group:{name}:*",
            "AWS::KMS::Key": f"arn:aws:kms:{region}:{account}:key/{name}",
            "AWS::Lambda::Function": f"arn:aws:lambda:{region}:{account}:function:{name}",
            "AWS::IAM::Role": f"arn:aws:iam::{account}:role/{name}",
        }
        if attribute == "Arn":
            return arns[kind]
        if attribute == "Name":
            return name
        raise KeyError(f"no value for GetAtt {logical}.{attribute}")

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if set(value) == {"Ref"}:
            return self.ref(value["Ref"])
        if set(value) == {"Fn::GetAtt"}:
            target = value["Fn::GetAtt"]
            logical, attribute = target.split(".", 1) if isinstance(target, str) else target
            return self.get_att(logical, attribute)
        if set(value) == {"Fn::Sub"}:
            text, local = (value["Fn::Sub"], {}) if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"]

            def one(match: re.Match[str]) -> str:
                key = match.group(1)
                if key in local:
                    return str(self.resolve(local[key]))
                if "." in key:
                    return self.get_att(*key.split(".", 1))
                return self.ref(key)

            return re.sub(r"\$\{([^}!]+)\}", one, text)
        return {k: self.resolve(v) for k, v in value.items()}

    def role_statements(self, role: str) -> list[dict[str, Any]]:
        """Every statement of the inline policies of IAM role ``role`` (logical id), resolved."""
        props = self.template["Resources"][role]["Properties"]
        if props.get("ManagedPolicyArns"):
            raise ValueError(f"{role} has managed policies, which this evaluator cannot see")
        return [self.resolve(st) for pol in props.get("Policies", []) for st in pol["PolicyDocument"]["Statement"]]


# ------------------------------------------------------------------------------------- evaluation


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _like(pattern: str, value: str, *, case: bool = True) -> bool:
    if not case:
        pattern, value = pattern.lower(), value.lower()
    return fnmatch.fnmatchcase(value, pattern.replace("[", "[[]"))


_OPERATORS = {
    "StringEquals": lambda want, have: have == want,
    "StringNotEquals": lambda want, have: have != want,
    "StringLike": lambda want, have: _like(want, have),
    "StringNotLike": lambda want, have: not _like(want, have),
    "ArnEquals": lambda want, have: have == want,
    "ArnLike": lambda want, have: _like(want, have),
    "Bool": lambda want, have: have.lower() == str(want).lower(),
}
_NEGATED = {"StringNotEquals", "StringNotLike"}


def _condition_holds(condition: Mapping[str, Mapping[str, Any]], context: Mapping[str, str]) -> bool:
    for operator, tests in condition.items():
        if_exists = operator.endswith("IfExists")
        base = operator.removesuffix("IfExists")
        if base not in _OPERATORS and operator != "Null":
            raise ValueError(f"condition operator {operator} is not supported by this evaluator")
        for key, wanted in tests.items():
            have = next((v for k, v in context.items() if k.lower() == key.lower()), None)
            if operator == "Null":  # "true": the key is absent; "false": it is present
                if (have is None) != (str(wanted).lower() == "true"):
                    return False
                continue
            if have is None:
                if if_exists:
                    continue
                if base in _NEGATED:  # a negated operator on a missing key matches, as in IAM
                    continue
                return False
            matched = any(_OPERATORS[base](str(w), have) for w in _as_list(wanted))
            if not matched:
                return False
    return True


def _matches(statement: Mapping[str, Any], request: Request) -> bool:
    for unsupported in ("NotAction", "NotResource", "NotPrincipal"):
        if unsupported in statement:
            raise ValueError(f"{unsupported} is not supported by this evaluator: {statement}")
    if not any(_like(a, request.action, case=False) for a in _as_list(statement["Action"])):
        return False
    if not any(_like(r, request.resource) for r in _as_list(statement["Resource"])):
        return False
    return _condition_holds(statement.get("Condition") or {}, request.context)


def decide(statements: list[dict[str, Any]], request: Request) -> str:
    """``"allow"``, ``"deny"`` (an explicit Deny matched) or ``"implicit-deny"`` (no Allow matched)."""
    matching = [s for s in statements if _matches(s, request)]
    if any(s["Effect"] == "Deny" for s in matching):
        return "deny"
    return "allow" if any(s["Effect"] == "Allow" for s in matching) else "implicit-deny"


# ------------------------------------------------------------------------- calls -> requests

ACCOUNT, REGION = PSEUDO["AWS::AccountId"], PSEUDO["AWS::Region"]
#: Calls that need no IAM permission at all.
NO_PERMISSION = {("sts", "GetCallerIdentity")}


def glue_job_arn(name: str) -> str:
    return f"arn:aws:glue:{REGION}:{ACCOUNT}:job/{name}"


def to_requests(service: str, operation: str, params: Mapping[str, Any],
                resource_tags: Mapping[str, str] | None = None) -> list[Request]:
    """The IAM requests one boto3 call makes: its own action, plus iam:PassRole when it hands Glue a role."""
    if (service, operation) in NO_PERMISSION:
        return []
    requests = [to_request(service, operation, params, resource_tags)]
    role = params.get("Role") or (params.get("JobUpdate") or {}).get("Role")
    if service == "glue" and role:
        requests.append(Request("iam:PassRole", role, {"iam:PassedToService": "glue.amazonaws.com"}))
    return requests


def to_request(service: str, operation: str, params: Mapping[str, Any],
               resource_tags: Mapping[str, str] | None = None) -> Request:
    """The IAM request for one boto3 call (``service`` as botocore names it, e.g. ``glue``, ``s3``).

    Raises KeyError for a call this module does not know how to authorize, so that a new call in the
    Lambda fails the test until it is mapped (and granted).
    """
    action = f"{service}:{operation}"
    context = {f"aws:ResourceTag/{k}": v for k, v in (resource_tags or {}).items()}
    if service == "glue":
        if operation == "ListJobs":
            return Request(action, "*", context)
        if operation in ("TagResource", "UntagResource", "GetTags"):
            tags = params.get("TagsToAdd") or {}
            return Request(action, params["ResourceArn"],
                           {**context, **{f"aws:RequestTag/{k}": v for k, v in tags.items()}})
        if operation == "CreateJob":
            tags = params.get("Tags") or {}
            return Request(action, glue_job_arn(params["Name"]),
                           {f"aws:RequestTag/{k}": v for k, v in tags.items()})
        if "JobName" in params:
            return Request(action, glue_job_arn(params["JobName"]), context)
    if service == "codecommit" and "repositoryName" in params:
        return Request(action, f"arn:aws:codecommit:{REGION}:{ACCOUNT}:{params['repositoryName']}")
    if service == "ssm" and "Name" in params:
        return Request(action, f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter{params['Name']}")
    if service == "codepipeline" and operation in ("PutJobSuccessResult", "PutJobFailureResult"):
        return Request(action, "*")
    if service == "codepipeline" and operation == "StartPipelineExecution":
        return Request(action, f"arn:aws:codepipeline:{REGION}:{ACCOUNT}:{params['name']}")
    if service == "s3":
        s3_actions = {"GetObject": "s3:GetObject", "HeadObject": "s3:GetObject", "PutObject": "s3:PutObject"}
        if operation in s3_actions:
            return Request(s3_actions[operation], f"arn:aws:s3:::{params['Bucket']}/{params['Key']}")
        if operation in ("ListObjectsV2", "ListObjects"):
            return Request("s3:ListBucket", f"arn:aws:s3:::{params['Bucket']}",
                           {"s3:prefix": params.get("Prefix", "")})
    raise KeyError(f"no IAM mapping for {service}:{operation} {dict(params)}")
