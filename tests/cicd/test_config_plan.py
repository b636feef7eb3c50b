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
from pipekit.deploy.event import DeploySettings, parse_event, user_parameters_schema
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
    assert s.prune is False and s.watched == ("glue/jobs", "glue/scripts") and s.source == "codecommit"
    with pytest.raises(ConfigError, match="field 'bucket': is required but missing"):
        DeploySettings.from_user_parameters("{}")
    with pytest.raises(ConfigError, match="field 'bukket': is not a known field"):
        DeploySettings.from_user_parameters({"bukket": "b"})
    with pytest.raises(ConfigError, match="field 'repository': is required for the codecommit source"):
        DeploySettings.from_user_parameters({"bucket": "b"})
    zipped = DeploySettings.from_user_parameters({"bucket": "b", "source": "zip", "owner": "team-a",
                                                  "scripts_prefix": "glue", "state_prefix": "/x/y/"})
    assert (zipped.owner, zipped.repository, zipped.scripts_prefix, zipped.state_prefix) == (
        "team-a", None, "glue/", "/x/y")


@pytest.mark.parametrize(("params", "prune", "watched"), [
    ({"prune": "false"}, False, ("glue/jobs", "glue/scripts")),
    ({"prune": "true"}, True, ("glue/jobs", "glue/scripts")),
    ({"prune": False}, False, ("glue/jobs", "glue/scripts")),
    ({"prune": True}, True, ("glue/jobs", "glue/scripts")),
    ({"watched": "glue/jobs"}, False, ("glue/jobs",)),
    ({"watched": " glue/jobs , glue/scripts,"}, False, ("glue/jobs", "glue/scripts")),
    ({"watched": ["glue/jobs", "etl"]}, False, ("glue/jobs", "etl")),
])
def test_user_parameters_booleans_and_lists(params: dict, prune: bool, watched: tuple[str, ...]) -> None:
    s = DeploySettings.from_user_parameters(json.dumps({"bucket": "b", "repository": "r", **params}))
    assert (s.prune, s.watched) == (prune, watched)


@pytest.mark.parametrize(("params", "fragment"), [
    ({"prune": "yes"}, "field 'prune': 'yes' is not one of"),
    ({"prune": "True"}, "field 'prune': 'True' is not one of"),
    ({"prune": 1}, "field 'prune': must be of type boolean or string, got 1"),
    ({"watched": ""}, "field 'watched': '' does not match"),
    ({"watched": " , "}, "field 'watched': ' , ' does not match"),
    ({"watched": []}, "field 'watched': has fewer than 1 item(s)"),
    ({"watched": "glue/jobs,/abs"}, "field 'watched.1': '/abs' does not match"),
    ({"watched": [3]}, "field 'watched.0': must be of type string"),
    ({"bucket": "s3://b"}, "field 'bucket': 's3://b' does not match"),
    ({"source": "svn"}, "field 'source': 'svn' is not one of ['codecommit', 'zip', 'git']"),
    ({"Prune": True}, "field 'Prune': is not a known field (known: branch, bucket, job_prefix, on_run_failure, owner, prune,"),
])
def test_bad_user_parameters_name_the_key(params: dict, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        DeploySettings.from_user_parameters({"bucket": "b", "repository": "r", **params}, "job-1")
    text = str(info.value)
    assert text.startswith("CodePipeline job job-1: UserParameters has 1 problem(s):") and fragment in text, text
    assert "user_parameters.schema.json" in text
    # jsonschema agrees the document is invalid, except where the code checks the split string itself
    if params != {"watched": "glue/jobs,/abs"}:
        assert list(jsonschema.Draft202012Validator(user_parameters_schema()).iter_errors(
            {"bucket": "b", "repository": "r", **params}))


def test_user_parameters_schema_is_valid_shipped_and_documented() -> None:
    jsonschema.Draft202012Validator.check_schema(user_parameters_schema())
    root = Path(__file__).parents[2]
    docs = root / "docs" / "cicd-user-parameters.schema.json"
    assert json.loads(docs.read_text()) == user_parameters_schema(), "docs copy of the schema is out of date"
    assert "cicd-user-parameters.schema.json" in (root / "docs" / "cicd.md").read_text()
    from pipekit.deploy.package import MODULES

    assert "deploy/user_parameters.schema.json" in MODULES


_param_values = st.one_of(st.none(), st.booleans(), st.integers(-1, 2), st.sampled_from(
    ["true", "false", "yes", "", " , ", "b", "s3://b", "glue/jobs", "glue/jobs,glue/scripts", "/abs", "zip",
     "codecommit", "scripts/", "/p/q", "p"]), st.lists(st.sampled_from(["glue/jobs", "", "/a", " x"]), max_size=2))
_params = st.dictionaries(st.sampled_from([*sorted(user_parameters_schema()["properties"]), "bogus"]),
                          _param_values, max_size=6)


@settings(max_examples=300, deadline=None)
@given(doc=_params)
def test_validator_agrees_with_jsonschema_on_user_parameters(doc: dict) -> None:
    ours = list(_jsonschema.iter_errors(doc, user_parameters_schema()))
    theirs = list(jsonschema.Draft202012Validator(user_parameters_schema()).iter_errors(doc))
    assert bool(ours) == bool(theirs), (ours, [e.message for e in theirs])


def test_non_pipeline_event_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="Not a CodePipeline job event"):
        parse_event({"Records": []})
