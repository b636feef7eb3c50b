"""The customers masking job as a Glue Studio visual graph (``CodeGenConfigurationNodes``).

The graph is what the Glue Studio visual editor draws:

    S3 CSV source -> SparkSQL "apply masking policy" (FirstName -> 'hu25', email/phone/password masks)
                  -> Detect sensitive data (PIIDetection, ColumnMasking) -> S3 Parquet target (snappy)

The SQL in the masking node is compiled from the same :class:`~pipekit.core.MaskingPolicy` that
:func:`pipekit.spark.apply_policy_spark` runs, so the graph and the script mask the policy columns
identically. The PII node is Glue's managed detector, not pipekit's scanner: see docs/glue.md.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

from pipekit.errors import ConfigError
from pipekit.sample import ADVENTUREWORKS_COLUMNS
from pipekit.spark._sql import policy_select_sql

#: pipekit scanner entity -> Glue Detect Sensitive Data entity type.
GLUE_ENTITY_TYPES: Mapping[str, str] = {
    "email": "EMAIL",
    "phone": "PHONE_NUMBER",
    "credit_card": "CREDIT_CARD",
    "us_ssn": "USA_SSN",
    "ipv4": "IP_ADDRESS",
    "iban": "BANK_ACCOUNT",
}

#: What the PII node writes over a detected column (Glue allows only ``[*A-Za-z0-9_-]``).
PII_MASK_VALUE = "****"

# Stable node ids: Glue Studio accepts any [A-Za-z0-9_-] id; stable ids keep re-deploys diff-free.
SOURCE_ID = "node-customers-csv"
MASK_ID = "node-apply-policy"
PII_ID = "node-detect-pii"
TARGET_ID = "node-customers-parquet"


def customers_visual_job(
    source_path: str,
    target_path: str,
    *,
    columns: Sequence[str] = ADVENTUREWORKS_COLUMNS,
    policy: Any | None = None,
    detect_pii: bool = True,
    entity_types: Sequence[str] | None = None,
    sample_fraction: float = 1.0,
    threshold_fraction: float = 0.1,
    database: str | None = None,
    table: str | None = None,
) -> dict[str, dict[str, Any]]:
    """Build the ``CodeGenConfigurationNodes`` of the customers masking job, validated against botocore."""
    if policy is None:
        from pipekit.core import GLUE_CUSTOMER_POLICY

        policy = GLUE_CUSTOMER_POLICY
    if not columns:
        raise ConfigError("customers_visual_job needs the source columns (the CSV header) to build the graph.")
    schema = [{"Columns": [{"Name": c, "Type": "string"} for c in columns]}]

    nodes: dict[str, dict[str, Any]] = {
        SOURCE_ID: {
            "S3CsvSource": {
                "Name": "Customers CSV (S3)",
                "Paths": [source_path],
                "Separator": "comma",
                "QuoteChar": "quote",
                "Escaper": "",
                "WithHeader": True,
                "WriteHeader": False,
                "Recurse": True,
                "Multiline": False,
                "OptimizePerformance": False,
                "OutputSchemas": schema,
            }
        },
        MASK_ID: {
            "SparkSQL": {
                "Name": "Apply masking policy (FirstName -> hu25)",
                "Inputs": [SOURCE_ID],
                "SqlAliases": [{"From": SOURCE_ID, "Alias": "customers"}],
                # The key is never put in a job definition: hash rules are refused by the compiler.
                "SqlQuery": policy_select_sql(columns, policy, table="customers", key=None),
                "OutputSchemas": schema,
            }
        },
    }
    last = MASK_ID
    if detect_pii:
        types = list(entity_types) if entity_types is not None else sorted(set(GLUE_ENTITY_TYPES.values()))
        nodes[PII_ID] = {
            "PIIDetection": {
                "Name": "Detect sensitive data (mask other PII columns)",
                "Inputs": [MASK_ID],
                "PiiType": "ColumnMasking",
                "EntityTypesToDetect": types,
                "SampleFraction": sample_fraction,
                "ThresholdFraction": threshold_fraction,
                "MaskValue": PII_MASK_VALUE,
            }
        }
        last = PII_ID
    target: dict[str, Any] = {
        "Name": "Customers Parquet (S3)",
        "Inputs": [last],
        "Path": target_path,
        "Compression": "snappy",
        "PartitionKeys": [],
    }
    if database and table:
        # Glue updates the catalog table's schema on write, as the visual editor's "create/update table" does.
        target["SchemaChangePolicy"] = {
            "EnableUpdateCatalog": True,
            "UpdateBehavior": "UPDATE_IN_DATABASE",
            "Database": database,
            "Table": table,
        }
    nodes[TARGET_ID] = {"S3GlueParquetTarget": target}
    validate_nodes(nodes)
    return nodes


def describe_graph(nodes: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """One line per node in run order: ``id: Type "Name" <- inputs``."""
    lines = []
    for node_id in _topological_order(nodes):
        (kind, body), = nodes[node_id].items()
        inputs = ", ".join(body.get("Inputs", [])) or "-"
        lines.append(f'{node_id}: {kind} "{body.get("Name", "")}" <- {inputs}')
    return lines


def validate_nodes(nodes: Mapping[str, Mapping[str, Any]]) -> None:
    """Check ``nodes`` against botocore's Glue model (types, required, enums, patterns) and as a DAG."""
    from botocore.validate import ParamValidator

    model = _glue_model()
    create_job = model.operation_model("CreateJob").input_shape
    # Validate in the request that carries the graph, so the error paths match the API's.
    params = {"Name": "validate", "Role": "validate", "Command": {"Name": "glueetl"},
              "CodeGenConfigurationNodes": dict(nodes)}  # fmt: skip
    report = ParamValidator().validate(params, create_job)
    if report.has_errors():
        raise ConfigError(f"Glue Studio graph is invalid for the Glue API:\n{report.generate_report()}")
    problems: list[str] = []
    _check_constraints(nodes, create_job.members["CodeGenConfigurationNodes"], "CodeGenConfigurationNodes", problems)
    for node_id, node in nodes.items():
        if len(node) != 1:
            problems.append(f"node {node_id!r} must have exactly one node type, has {sorted(node)}")
            continue
        (_kind, body), = node.items()
        for src in body.get("Inputs", []):
            if src not in nodes:
                problems.append(f"node {node_id!r} reads from unknown node {src!r}")
        for alias in body.get("SqlAliases", []):
            if alias["From"] not in body.get("Inputs", []):
                problems.append(f"node {node_id!r}: SQL alias {alias['Alias']!r} is not one of its inputs")
    if not problems:
        try:
            _topological_order(nodes)
        except ConfigError as exc:
            problems.append(exc.message)
    if problems:
        raise ConfigError("Glue Studio graph is invalid:\n  " + "\n  ".join(problems),
                          hint="fix the node(s) named above; see docs/glue.md")  # fmt: skip


@cache
def _glue_model() -> Any:
    """botocore's Glue service model (loaded once)."""
    import botocore.session

    return botocore.session.get_session().get_service_model("glue")


@cache
def _compile(pattern: str) -> re.Pattern[str]:
    """A Python regex for an AWS model pattern (its surrogate-pair ranges mean 'any astral character')."""
    fixed = pattern.replace("\\uD800\\uDC00-\\uDBFF\\uDFFF", "\\U00010000-\\U0010FFFF")
    return re.compile(fixed)


def _check_constraints(value: Any, shape: Any, path: str, problems: list[str]) -> None:
    """Check what botocore's validator leaves out: enums, patterns, max length, list max size."""
    kind = shape.type_name
    meta = shape.metadata
    if kind == "structure" and isinstance(value, Mapping):
        for name, member in shape.members.items():
            if name in value:
                _check_constraints(value[name], member, f"{path}.{name}", problems)
    elif kind == "map" and isinstance(value, Mapping):
        for k, v in value.items():
            _check_constraints(k, shape.key, f"{path} key {k!r}", problems)
            _check_constraints(v, shape.value, f"{path}.{k}", problems)
    elif kind == "list" and isinstance(value, Sequence) and not isinstance(value, str):
        if "max" in meta and len(value) > meta["max"]:
            problems.append(f"{path}: at most {meta['max']} item(s), got {len(value)}")
        for i, item in enumerate(value):
            _check_constraints(item, shape.member, f"{path}[{i}]", problems)
    elif kind == "string" and isinstance(value, str):
        if shape.enum and value not in shape.enum:
            problems.append(f"{path}: {value!r} is not one of {shape.enum}")
        if "pattern" in meta and not _compile(meta["pattern"]).fullmatch(value):
            problems.append(f"{path}: {value!r} does not match the API pattern {meta['pattern']}")
        if "max" in meta and len(value) > meta["max"]:
            problems.append(f"{path}: longer than {meta['max']} characters")
    elif kind == "double" and isinstance(value, int | float) and not (
        meta.get("min", value) <= value <= meta.get("max", value)
    ):
        problems.append(f"{path}: {value} is outside [{meta.get('min')}, {meta.get('max')}]")


def _topological_order(nodes: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Node ids sources-first; raises ConfigError on a cycle."""
    inputs = {nid: list(next(iter(n.values())).get("Inputs", [])) for nid, n in nodes.items()}
    order: list[str] = []
    state: dict[str, int] = {}

    def visit(nid: str, trail: tuple[str, ...]) -> None:
        if state.get(nid) == 2:
            return
        if state.get(nid) == 1:
            raise ConfigError(f"Glue Studio graph has a cycle: {' -> '.join((*trail, nid))}")
        state[nid] = 1
        for src in inputs.get(nid, []):
            visit(src, (*trail, nid))
        state[nid] = 2
        order.append(nid)

    for nid in nodes:
        visit(nid, ())
    return order
