"""Pure parts of the deployer: config schema and validation, plan with field-level diffs, event parsing."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipekit.deploy import _jsonschema
from pipekit.deploy.config import OWNER_TAG, JobConfigError, load_configs, parse_config, schema
from pipekit.deploy.event import DeploySettings, parse_event
from pipekit.deploy.plan import ChangeKind, CurrentJob, DesiredJob, plan, summarize
from pipekit.errors import ConfigError

ROLE = "arn:aws:iam::123456789012:role/GlueJobRole"
EVENTS = Path(__file__).parent / "events"


def cfg(**kw: object) -> bytes:
    return json.dumps({"script": "etl.py", "role": ROLE, **kw}).encode()


def test_schema_is_valid_draft_2020_12_and_published_in_docs() -> None:
    jsonschema.Draft202012Validator.check_schema(schema())
    docs = Path(__file__).parents[2] / "docs" / "cicd-job-config.schema.json"
    assert json.loads(docs.read_text()) == schema(), "docs copy of the schema is out of date"


def test_name_comes_from_file_name_and_defaults_apply() -> None:
    c = parse_config("glue/jobs/customers_etl.json", cfg())
    assert c.name == "customers_etl" and c.glue_version == "5.0" and c.number_of_workers == 2
    d = c.definition("bkt")
    assert d["Command"] == {"Name": "glueetl", "ScriptLocation": "s3://bkt/scripts/etl.py", "PythonVersion": "3"}


def test_yaml_config() -> None:
    c = parse_config("glue/jobs/a.yaml", f"script: etl.py\nrole: {ROLE}\nnumber_of_workers: 4\n".encode())
    assert c.number_of_workers == 4


@pytest.mark.parametrize(
    ("doc", "field", "fragment"),
    [
        ({"script": "etl.py"}, "role", "is required but missing"),
        ({"script": "etl.sh", "role": ROLE}, "script", "does not match"),
        ({"script": "etl.py", "role": ROLE, "number_of_workers": "2"}, "number_of_workers", "must be of type integer"),
        ({"script": "etl.py", "role": ROLE, "number_of_workers": True}, "number_of_workers", "must be of type"),
        ({"script": "etl.py", "role": ROLE, "glue_version": "2.0"}, "glue_version", "is not one of"),
        ({"script": "etl.py", "role": ROLE, "timeout_minutes": 0}, "timeout_minutes", "less than the minimum"),
        ({"script": "etl.py", "role": ROLE, "workers": 3}, "workers", "is not a known field"),
        ({"script": "etl.py", "role": ROLE, "default_arguments": {"source": "x"}}, "default_arguments.source",
         "key 'source' does not match"),
        ({"script": "etl.py", "role": ROLE, "default_arguments": {"--n": 1}}, "default_arguments.--n",
         "must be of type string"),
        ({"script": "etl.py", "role": ROLE, "tags": {"pipekit:owner": "me"}}, "tags.pipekit:owner", "does not match"),
    ],
)
def test_bad_config_names_file_and_field(doc: dict, field: str, fragment: str) -> None:
    with pytest.raises(JobConfigError) as info:
        parse_config("glue/jobs/j.json", json.dumps(doc).encode())
    assert any(p.file == "glue/jobs/j.json" and p.field == field and fragment in p.message
               for p in info.value.problems), info.value.problems
    # jsonschema agrees that the document is invalid
    assert list(jsonschema.Draft202012Validator(schema()).iter_errors(doc))


def test_every_problem_of_every_file_is_reported_at_once() -> None:
    files = {"glue/jobs/a.json": b"{not json", "glue/jobs/b.json": cfg(max_retries=-1, worker_type="X"),
             "glue/jobs/c.json": cfg(), "glue/jobs/c.yaml": cfg()}
    with pytest.raises(JobConfigError) as info:
        load_configs(files, known_files={"glue/scripts/etl.py"})
    text = str(info.value)
    assert "glue/jobs/a.json: file: invalid JSON at line 1 column 2" in text
    assert "glue/jobs/b.json: field 'max_retries'" in text and "glue/jobs/b.json: field 'worker_type'" in text
    assert "job 'c' is also defined by glue/jobs/c.json" in text


def test_missing_script_is_named() -> None:
    with pytest.raises(JobConfigError, match=r"field 'script': glue/scripts/etl\.py does not exist"):
        load_configs({"glue/jobs/a.json": cfg()}, known_files=set())


_values = st.recursive(st.none() | st.booleans() | st.integers(-5, 400) | st.sampled_from(
    ["etl.py", "x", "5.0", "G.1X", "--a", ROLE, ""]), lambda c: st.lists(c, max_size=3) | st.dictionaries(
    st.sampled_from(["--a", "b", "pipekit:x", "team"]), c, max_size=3), max_leaves=6)
_docs = st.dictionaries(st.sampled_from([*sorted(schema()["properties"]), "bogus"]), _values, max_size=8)


@settings(max_examples=300, deadline=None)
@given(doc=_docs)
def test_validator_agrees_with_jsonschema(doc: dict) -> None:
    ours = list(_jsonschema.iter_errors(doc, schema()))
    theirs = list(jsonschema.Draft202012Validator(schema()).iter_errors(doc))
    assert bool(ours) == bool(theirs), (ours, [e.message for e in theirs])


def _desired(**kw: object) -> DesiredJob:
    c = parse_config("glue/jobs/j.json", cfg(**kw))
    return DesiredJob.from_config(c, bucket="bkt", owner="repo")


def _as_current(d: DesiredJob, **changes: object) -> CurrentJob:
    # What GetJob returns: the definition plus fields Glue fills in.
    definition = {**d.definition, "Name": d.name, "MaxCapacity": 2.0, "CreatedOn": "x", **changes}
    return CurrentJob(d.name, definition, dict(d.tags))


def test_plan_create_update_unchanged_conflict_orphan() -> None:
    a, b, c, d = (_desired(description=n) for n in "abcd")
    a, b, c, d = (DesiredJob(n, x.definition, x.tags, x.config_path) for n, x in zip("abcd", (a, b, c, d), strict=True))
    current = {
        "b": _as_current(b, NumberOfWorkers=9, DefaultArguments={"--old": "1"}),
        "c": _as_current(c),
        "d": CurrentJob("d", d.definition, {"team": "other"}),
        "e": CurrentJob("e", {}, {OWNER_TAG: "repo"}),
        "f": CurrentJob("f", {}, {OWNER_TAG: "another"}),
    }
    changes = {ch.job_name: ch for ch in plan([a, b, c, d], current, owner="repo")}
    assert changes["a"].kind is ChangeKind.CREATE
    assert changes["b"].kind is ChangeKind.UPDATE
    assert {str(x) for x in changes["b"].diffs} == {"NumberOfWorkers: 9 -> 2", "DefaultArguments.--old: '1' -> None"}
    assert changes["c"].kind is ChangeKind.UNCHANGED
    assert changes["d"].kind is ChangeKind.CONFLICT and "no pipekit:owner tag" in changes["d"].reason
    assert changes["e"].kind is ChangeKind.ORPHAN
    assert "f" not in changes  # someone else's job is not even mentioned
    assert summarize(changes.values())["update"] == 1


def test_tag_only_change_is_an_update_without_definition_rewrite() -> None:
    d = _desired(tags={"team": "new"})
    cur = _as_current(d)
    cur = CurrentJob(cur.name, cur.definition, {**cur.tags, "team": "old", "stale": "x", "aws:cloudformation:id": "1"})
    (ch,) = plan([d], {"j": cur}, owner="repo")
    assert ch.kind is ChangeKind.UPDATE and not ch.needs_update
    assert dict(ch.tags_to_add) == {"team": "new"} and ch.tags_to_remove == ("stale",)


@settings(max_examples=100, deadline=None)
@given(workers=st.integers(2, 299), timeout=st.integers(1, 10080), args=st.dictionaries(
    st.from_regex(r"--[a-z]{1,5}", fullmatch=True), st.text(max_size=5), max_size=3))
def test_plan_after_apply_is_unchanged(workers: int, timeout: int, args: dict) -> None:
    """Idempotence: once Glue holds what the plan asked for, planning again changes nothing."""
    d = _desired(number_of_workers=workers, timeout_minutes=timeout, default_arguments=args)
    (ch,) = plan([d], {"j": _as_current(d)}, owner="repo")
    assert ch.kind is ChangeKind.UNCHANGED


def test_parse_event_matches_powertools() -> None:
    from aws_lambda_powertools.utilities.data_classes import CodePipelineJobEvent

    raw = json.loads((EVENTS / "invoke_continuation.json").read_text().replace(
        "${USER_PARAMETERS}", '{\\"bucket\\": \\"b\\", \\"repository\\": \\"r\\"}'))
    ours = parse_event(raw)
    theirs = CodePipelineJobEvent(raw)
    assert ours.job_id == theirs.get_id
    assert ours.continuation_token == theirs.data.continuation_token
    assert ours.artifacts[0].bucket == theirs.data.input_artifacts[0].location.s3_location.bucket_name
    assert ours.artifacts[0].key == theirs.data.input_artifacts[0].location.s3_location.key
    assert ours.revision == theirs.data.input_artifacts[0].revision
    assert json.loads(ours.user_parameters) == theirs.decoded_user_parameters
    assert "wJalr" not in repr(ours)  # artifact credentials never reach a log line


def test_settings_validation() -> None:
    s = DeploySettings.from_user_parameters('{"bucket": "b", "repository": "r"}')
    assert s.owner == "r" and s.last_deployed_parameter == "/pipekit/glue-deploy/r/last-deployed"
    with pytest.raises(ConfigError, match="needs 'bucket'"):
        DeploySettings.from_user_parameters("{}")
    with pytest.raises(ConfigError, match="unknown keys \\['bukket'\\]"):
        DeploySettings.from_user_parameters({"bukket": "b"})
    with pytest.raises(ConfigError, match="needs 'repository'"):
        DeploySettings.from_user_parameters({"bucket": "b"})


def test_non_pipeline_event_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="Not a CodePipeline job event"):
        parse_event({"Records": []})
