"""CloudFormation resource types moto has no model for, created by the twin behind moto's own stack engine.

moto's CloudFormation looks a resource type up in ``moto.cloudformation.parsing.get_model_map()``, built
from ``CloudFormationModel.__subclasses__()`` (and cached). :func:`register` defines nothing new at call
time: importing this module subclasses ``CloudFormationModel``; :func:`register` clears moto's caches so
the subclasses are found, and records the twin's endpoint and state directory the models need.

- ``AWS::CodeCommit::Repository``: moto's repository metadata plus the twin's bare git repository; its
  ``CloneUrlHttp`` is the twin's loopback smart-HTTP git endpoint (:mod:`pipekit.local.git_http`).
- ``AWS::CodePipeline::Pipeline``: the template's properties, turned into the CreatePipeline API shape,
  go to moto's CodePipeline backend (which checks the role and the stage count); executions are the
  twin's (:mod:`pipekit.local.pipeline_runs`).
- ``AWS::S3::BucketPolicy``: recorded on the stack, not attached (see :class:`TwinBucketPolicy`).
- ``AWS::Lambda::Permission``: moto's adds the statement but has no physical id (describe-stack-resources
  then lacks ``PhysicalResourceId``); :class:`TwinLambdaPermission` does both.

:func:`register` also makes a stack whose resources moto fails to create end like a failed AWS stack
(``ROLLBACK_COMPLETE``, the reason in its events) instead of a 500 and a stack left CREATE_IN_PROGRESS.
"""

from __future__ import annotations

import functools
import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import moto.awslambda.models  # noqa: F401  # moto's Lambda models first: the twin's Permission below overrides
from moto.core.common_models import CloudFormationModel

log = logging.getLogger("pipekit.local.cfn_models")

_CONFIG: dict[str, Any] = {"endpoint_url": "", "state_dir": None}


def register(endpoint_url: str, state_dir: Path) -> None:
    """Make moto's CloudFormation find the models below, backed by the twin at ``endpoint_url``."""
    from moto.cloudformation import parsing

    _CONFIG["endpoint_url"] = endpoint_url
    _CONFIG["state_dir"] = Path(state_dir)
    for cached in (parsing.get_model_list, parsing.get_model_map, parsing.get_name_type_map):
        cached.cache_clear()
    _fail_stacks_like_aws()
    _keep_resources_moto_cannot_update(parsing)


def _keep_resources_moto_cannot_update(parsing: Any) -> None:
    """A stack update that changes a resource whose moto model has no update (e.g. AWS::Logs::LogGroup)
    makes moto store None for it: every later ``GetAtt`` on it fails and describe-stack-resource crashes.
    Keep the resource as it was created instead (its new properties are not applied; logged)."""
    original = parsing.parse_and_update_resource
    if getattr(original, "_pipekit_twin", False):
        return

    @functools.wraps(original)
    def wrapper(logical_id: str, resource_json: dict[str, Any], resources_map: Any, account_id: str,
                region_name: str) -> Any:
        updated = original(logical_id, resource_json, resources_map, account_id, region_name)
        if updated is None and logical_id in resources_map._parsed_resources:
            log.warning("twin: moto cannot update %s (%s) in place; it keeps its created properties",
                        logical_id, resource_json.get("Type"))
            return resources_map._parsed_resources[logical_id]
        return updated

    wrapper._pipekit_twin = True  # type: ignore[attr-defined]
    parsing.parse_and_update_resource = wrapper


def _fail_stacks_like_aws() -> None:
    """Wrap moto's create_stack/execute_change_set: a resource that fails rolls the stack back, as in AWS.

    moto lets any exception out of a resource model escape as an HTTP 500 (the AWS CLI then reports an
    unparsable response) and leaves the stack CREATE_IN_PROGRESS for ever. AWS-shaped errors from moto
    (``ServiceException``, ``JsonRESTError``) pass unchanged.
    """
    from moto.cloudformation.exceptions import ValidationError
    from moto.cloudformation.models import CloudFormationBackend
    from moto.core.exceptions import ServiceException
    from werkzeug.exceptions import HTTPException

    def wrap(method: Callable[..., Any]) -> Callable[..., Any]:
        if getattr(method, "_pipekit_twin", False):
            return method

        @functools.wraps(method)
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return method(self, *args, **kwargs)
            except (ServiceException, HTTPException):
                raise
            except Exception as exc:
                reason = f"pipekit twin: a resource could not be created: {type(exc).__name__}: {exc}"
                log.exception("twin: %s failed", method.__name__)
                failed = [s for s in self.stacks.values() if str(s.status).endswith("_IN_PROGRESS")]
                if not failed:
                    raise ValidationError(message=f"Template error: {reason}") from exc
                for stack in failed:
                    creating = stack.status in ("CREATE_IN_PROGRESS", "REVIEW_IN_PROGRESS")
                    stack._add_stack_event("CREATE_FAILED" if creating else "UPDATE_FAILED",
                                           resource_status_reason=reason)
                    stack.status = "ROLLBACK_COMPLETE" if creating else "UPDATE_ROLLBACK_COMPLETE"
                    stack._add_stack_event(stack.status, resource_status_reason=reason)
                return failed[0] if method.__name__ == "create_stack" else None

        wrapper._pipekit_twin = True  # type: ignore[attr-defined]
        return wrapper

    def with_outputs(method: Callable[..., Any]) -> Callable[..., Any]:
        """moto gives a stack created or updated by a change set no Outputs; evaluate them as AWS does."""
        if getattr(method, "_pipekit_twin_outputs", False):
            return method

        @functools.wraps(method)
        def wrapper(self: Any, change_set_name: str, stack_name: str | None = None) -> Any:
            change_set = self.change_sets.get(change_set_name) or next(
                (c for c in self.change_sets.values() if c.change_set_name == change_set_name), None)
            result = method(self, change_set_name, stack_name)
            stack = self.stacks.get(change_set.stack_id) if change_set is not None else None
            if stack is not None and str(stack.status).endswith("_COMPLETE") and "ROLLBACK" not in stack.status:
                stack._parse_template()
                stack.output_map = stack._create_output_map()
            return result

        wrapper._pipekit_twin_outputs = True  # type: ignore[attr-defined]
        return wrapper

    CloudFormationBackend.create_stack = wrap(CloudFormationBackend.create_stack)  # type: ignore[method-assign]
    CloudFormationBackend.execute_change_set = wrap(  # type: ignore[method-assign]
        with_outputs(CloudFormationBackend.execute_change_set))


def _state_dir() -> Path:
    state_dir = _CONFIG["state_dir"]
    if state_dir is None:
        raise RuntimeError("pipekit.local.cfn_models.register() was not called: no twin state directory")
    return Path(state_dir)


# ------------------------------------------------------------------------------------- CodeCommit


class TwinRepository(CloudFormationModel):
    """AWS::CodeCommit::Repository: moto's metadata + a real git repository served over HTTP."""

    def __init__(self, metadata: dict[str, Any]) -> None:
        self.metadata = metadata

    @property
    def physical_resource_id(self) -> str:
        # Ref on AWS::CodeCommit::Repository is the repository ID.
        return str(self.metadata["repositoryId"])

    @staticmethod
    def cloudformation_name_type() -> str:
        return "RepositoryName"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::CodeCommit::Repository"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr in {"Arn", "CloneUrlHttp", "CloneUrlSsh", "Name"}

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        from moto.cloudformation.exceptions import UnformattedGetAttTemplateException

        key = {"Arn": "Arn", "CloneUrlHttp": "cloneUrlHttp", "CloneUrlSsh": "cloneUrlSsh",
               "Name": "repositoryName"}.get(attribute_name)
        if key is None:
            raise UnformattedGetAttTemplateException()
        return self.metadata[key]

    @classmethod
    def create_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str,
        **kwargs: Any,
    ) -> TwinRepository:
        from pipekit.local import codecommit_twin

        props = cloudformation_json.get("Properties", {})
        metadata = codecommit_twin.create_repository_with_git(
            _state_dir(), _CONFIG["endpoint_url"], account_id, region_name, resource_name,
            props.get("RepositoryDescription"))
        return cls(metadata)

    @classmethod
    def update_from_cloudformation_json(
        cls, original_resource: TwinRepository, new_resource_name: str, cloudformation_json: dict[str, Any],
        account_id: str, region_name: str,
    ) -> TwinRepository:
        if new_resource_name != original_resource.metadata["repositoryName"]:
            raise NotImplementedError("the twin does not rename CodeCommit repositories")
        description = cloudformation_json.get("Properties", {}).get("RepositoryDescription")
        original_resource.metadata["repositoryDescription"] = description
        return original_resource

    @classmethod
    def delete_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str,
    ) -> None:
        from moto.codecommit.models import codecommit_backends

        from pipekit.local.codecommit_twin import repo_dir

        name = cloudformation_json.get("Properties", {}).get("RepositoryName") or resource_name
        codecommit_backends[account_id][region_name].delete_repository(name)
        shutil.rmtree(repo_dir(_state_dir(), region_name, name), ignore_errors=True)

    def delete(self, account_id: str, region_name: str) -> None:
        """delete_stack calls this on each resource."""
        self.delete_from_cloudformation_json(
            self.metadata["repositoryName"], {"Properties": {"RepositoryName": self.metadata["repositoryName"]}},
            account_id, region_name)

    def is_created(self) -> bool:
        return True


# ------------------------------------------------------------------------------------ CodePipeline

#: CloudFormation-only properties of AWS::CodePipeline::Pipeline, not part of the CreatePipeline API.
_CFN_ONLY = {"RestartExecutionOnUpdate", "DisableInboundStageTransitions", "Tags", "ArtifactStores"}


def _camel(key: str) -> str:
    return key[:1].lower() + key[1:]


def _config_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else str(value)


def _api_shape(node: Any) -> Any:
    """CloudFormation's PascalCase pipeline structure -> the API's camelCase (action Configuration kept)."""
    if isinstance(node, list):
        return [_api_shape(x) for x in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "Configuration" and isinstance(value, dict):
            out["configuration"] = {k: _config_value(v) for k, v in value.items()}
        else:
            out[_camel(key)] = _api_shape(value)
    return out


def pipeline_declaration(name: str, props: dict[str, Any]) -> dict[str, Any]:
    """The CreatePipeline ``pipeline`` argument for a template's AWS::CodePipeline::Pipeline properties."""
    declaration = _api_shape({k: v for k, v in props.items() if k not in _CFN_ONLY and k != "Name"})
    declaration["name"] = name
    for stage in declaration.get("stages", []):
        for action in stage.get("actions", []):
            if "runOrder" in action:
                action["runOrder"] = int(action["runOrder"])
    return declaration


class TwinPipeline(CloudFormationModel):
    """AWS::CodePipeline::Pipeline in moto's CodePipeline backend; executions run on the twin."""

    def __init__(self, name: str, account_id: str, region_name: str) -> None:
        self.name = name
        self.account_id = account_id
        self.region_name = region_name

    @property
    def physical_resource_id(self) -> str:
        return self.name

    @staticmethod
    def cloudformation_name_type() -> str:
        return "Name"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::CodePipeline::Pipeline"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr == "Version"

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        from moto.cloudformation.exceptions import UnformattedGetAttTemplateException
        from moto.codepipeline.models import codepipeline_backends

        if attribute_name != "Version":
            raise UnformattedGetAttTemplateException()
        pipeline, _ = codepipeline_backends[self.account_id][self.region_name].get_pipeline(self.name)
        return str(pipeline["version"])

    @classmethod
    def create_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str,
        **kwargs: Any,
    ) -> TwinPipeline:
        from moto.codepipeline.models import codepipeline_backends

        props = cloudformation_json.get("Properties", {})
        tags = [{"key": t["Key"], "value": t["Value"]} for t in props.get("Tags", [])]
        codepipeline_backends[account_id][region_name].create_pipeline(
            pipeline_declaration(resource_name, props), tags)
        return cls(resource_name, account_id, region_name)

    @classmethod
    def update_from_cloudformation_json(
        cls, original_resource: TwinPipeline, new_resource_name: str, cloudformation_json: dict[str, Any],
        account_id: str, region_name: str,
    ) -> TwinPipeline:
        from moto.codepipeline.models import codepipeline_backends

        backend = codepipeline_backends[account_id][region_name]
        if new_resource_name != original_resource.name:
            backend.delete_pipeline(original_resource.name)
            return cls.create_from_cloudformation_json(new_resource_name, cloudformation_json, account_id,
                                                       region_name)
        backend.update_pipeline(pipeline_declaration(new_resource_name, cloudformation_json.get("Properties", {})))
        return original_resource

    @classmethod
    def delete_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str,
    ) -> None:
        from moto.codepipeline.models import codepipeline_backends

        name = cloudformation_json.get("Properties", {}).get("Name") or resource_name
        codepipeline_backends[account_id][region_name].delete_pipeline(name)

    def delete(self, account_id: str, region_name: str) -> None:
        """delete_stack calls this on each resource."""
        from moto.codepipeline.models import codepipeline_backends

        codepipeline_backends[account_id][region_name].delete_pipeline(self.name)

    def is_created(self) -> bool:
        return True


# ------------------------------------------------------------------------------------------ S3


class _NoAttributes:
    """What a resource with no name property, no ``GetAtt`` and nothing to undo on delete answers moto's
    stack engine (put before CloudFormationModel in the bases; not itself a model moto registers)."""

    @staticmethod
    def cloudformation_name_type() -> str:
        return ""

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return False

    @classmethod
    def delete_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str,
    ) -> None:
        return None

    def is_created(self) -> bool:
        return True


class TwinBucketPolicy(_NoAttributes, CloudFormationModel):
    """AWS::S3::BucketPolicy, recorded on the stack but NOT attached to the bucket.

    moto enforces bucket policies, and the twin serves plain HTTP on 127.0.0.1: a TLS-only
    ``aws:SecureTransport`` Deny (as in cicd.yaml) would refuse every request to the bucket, the
    pipeline's own artifact writes included. The document is kept on the resource (``policy_document``).
    """

    def __init__(self, name: str, bucket: str, policy_document: Any) -> None:
        self.name = name
        self.bucket = bucket
        self.policy_document = policy_document

    @property
    def physical_resource_id(self) -> str:
        return self.name

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::S3::BucketPolicy"

    @classmethod
    def create_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str,
        **kwargs: Any,
    ) -> TwinBucketPolicy:
        props = cloudformation_json.get("Properties", {})
        return cls(resource_name, str(props.get("Bucket", "")), props.get("PolicyDocument"))

    @classmethod
    def update_from_cloudformation_json(
        cls, original_resource: TwinBucketPolicy, new_resource_name: str, cloudformation_json: dict[str, Any],
        account_id: str, region_name: str,
    ) -> TwinBucketPolicy:
        return cls.create_from_cloudformation_json(original_resource.name, cloudformation_json, account_id,
                                                   region_name)


# -------------------------------------------------------------------------------------- Lambda


class TwinLambdaPermission(_NoAttributes, CloudFormationModel):
    """AWS::Lambda::Permission: the statement on the function's policy (as moto does), with a physical id.

    Defined after moto's ``Permission`` (imported first), so it wins in moto's type map.
    """

    def __init__(self, statement_id: str, function_name: str) -> None:
        self.statement_id = statement_id
        self.function_name = function_name

    @property
    def physical_resource_id(self) -> str:
        return self.statement_id

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::Lambda::Permission"

    @classmethod
    def create_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str,
        **kwargs: Any,
    ) -> TwinLambdaPermission:
        import json

        from moto.awslambda.models import lambda_backends

        props = dict(cloudformation_json.get("Properties", {}))
        props.setdefault("StatementId", resource_name)
        fn = lambda_backends[account_id][region_name].get_function(str(props["FunctionName"]))
        fn.policy.add_statement(raw=json.dumps(props))
        return cls(str(props["StatementId"]), fn.function_name)

