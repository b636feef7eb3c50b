"""The CodeCommit push filter (pipekit.deploy.trigger, handler.filter_handler): which pushes start a deploy.

The decision is pure (``decide``) and tested on paths; ``handle`` is tested on the twin's CodeCommit with
real pushes and the real GetDifferences, StartPipelineExecution answered by a botocore ``before-call``
hook (the pipeline itself is covered end to end in tests/local/test_twin_cicd_stack.py).
"""

from __future__ import annotations

import json
import logging

import pytest
from cicd_helpers import GlueRepo, Starts, push_event

from pipekit.aws.codecommit import changed_paths
from pipekit.deploy import trigger
from pipekit.deploy.sources import FileChange
from pipekit.errors import ConfigError

SETTINGS = trigger.FilterSettings(pipeline="glue-etl-glue-deploy", repository="glue-etl", branch="main",
                                  watched=("glue/jobs", "glue/scripts"))


def _push(commit: str | None = "c" * 40, old: str | None = None, branch: str = "main",
          repository: str = "glue-etl") -> trigger.Push:
    return trigger.Push(event_id="e1", repository=repository, branch=branch, commit=commit, old_commit=old,
                        kind="referenceUpdated" if old else "referenceCreated")


def _changes(*pairs: tuple[str, str]) -> list[FileChange]:
    return [FileChange(s, p) for s, p in pairs]


@pytest.mark.parametrize(("changes", "start"), [
    ([("M", "README.md")], False),
    ([("A", "docs/cicd.md"), ("M", "README.md")], False),
    ([("A", "glue/jobs-old/x.json")], False),  # shares a prefix with glue/jobs, is not under it
    ([("M", "glue/scriptsX.py"), ("M", "glue/jobs")], False),  # a file named like the directory
    ([("A", "glue/jobs/x.json")], True),
    ([("D", "glue/jobs/x.json")], True),  # a deleted config: the deploy reports (or prunes) the orphan
    ([("M", "glue/scripts/lib/util.py")], True),  # nested
    ([], False),  # an empty commit
])
def test_decide_on_paths(changes: list[tuple[str, str]], start: bool) -> None:
    decision = trigger.decide(_push(), SETTINGS, _changes(*changes))
    assert decision.start is start, decision
    if not start:
        assert decision.reason == f"none of the {len(changes)} changed path(s) is under glue/jobs, glue/scripts"
    else:
        assert decision.matched == tuple(p for _, p in changes if p.startswith(("glue/jobs/", "glue/scripts/")))


@pytest.mark.parametrize(("before", "after", "start"), [
    ("docs/x.json", "glue/jobs/x.json", True),  # moved into a watched directory
    ("glue/jobs/x.json", "attic/x.json", True),  # moved out: the job's config is gone
    ("docs/a.md", "docs/b.md", False),
])
def test_renames_count_on_both_sides(before: str, after: str, start: bool) -> None:
    diffs = [{"changeType": "M", "beforeBlob": {"path": before, "blobId": "1", "mode": "100644"},
              "afterBlob": {"path": after, "blobId": "1", "mode": "100644"}}]
    changes = [FileChange(s, p) for s, p in changed_paths(diffs)]
    assert {c.path for c in changes} == {before, after}
    assert trigger.decide(_push(), SETTINGS, changes).start is start


def test_other_branches_repositories_and_deleted_branches_start_nothing() -> None:
    watched_change = _changes(("A", "glue/jobs/x.json"))
    assert trigger.decide(_push(branch="dev"), SETTINGS, watched_change).reason == "not glue-etl:main"
    assert not trigger.decide(_push(repository="other"), SETTINGS, watched_change).start
    assert "no commit" in trigger.decide(_push(commit=None), SETTINGS, None).reason


def test_settings_from_env_use_the_deploy_actions_watched_syntax() -> None:
    env = {"PIPELINE_NAME": "p", "REPOSITORY_NAME": "r", "WATCHED": " glue/jobs , etl/src "}
    assert trigger.FilterSettings.from_env(env) == trigger.FilterSettings("p", "r", "main", ("glue/jobs", "etl/src"))
    assert trigger.FilterSettings.from_env({"PIPELINE_NAME": "p", "REPOSITORY_NAME": "r"}).watched == (
        "glue/jobs", "glue/scripts")
    with pytest.raises(ConfigError, match="REPOSITORY_NAME"):
        trigger.FilterSettings.from_env({"PIPELINE_NAME": "p"})
    with pytest.raises(ConfigError, match="WATCHED"):
        trigger.FilterSettings.from_env({**env, "WATCHED": "/abs,glue/jobs"})
    with pytest.raises(ConfigError, match="WATCHED"):
        trigger.FilterSettings.from_env({**env, "WATCHED": " , "})


def test_not_a_codecommit_event_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="Not a CodeCommit state-change event"):
        trigger.Push.from_event({"CodePipeline.job": {"id": "x"}})


# ------------------------------------------------------------------------------- on the twin


def test_pushes_on_the_twin(glue_repo: GlueRepo, caplog: pytest.LogCaptureFixture) -> None:
    starts = Starts()
    caplog.set_level(logging.INFO, logger="pipekit.deploy.trigger")

    # The first commit of the repository has no parent: everything in it is new.
    first = glue_repo.commit({"README.md": "# etl\n", "glue/jobs/a.json": "{}"}, "first")
    out = trigger.handle(push_event(glue_repo, first), SETTINGS, session=starts.session)
    assert out["action"] == "start" and out["paths"] == ["glue/jobs/a.json"], out
    assert starts.calls[-1]["name"] == SETTINGS.pipeline
    assert starts.calls[-1]["sourceRevisions"] == [
        {"actionName": "Source", "revisionType": "COMMIT_ID", "revisionValue": first}]
    assert starts.calls[-1]["clientRequestToken"]  # the event id: a re-delivered event starts no second one

    # README only: skipped, with one structured log line saying why
    docs = glue_repo.commit({"README.md": "# etl, documented\n"}, "docs")
    out = trigger.handle(push_event(glue_repo, docs, old=first), SETTINGS, session=starts.session)
    assert out["action"] == "skip" and len(starts.calls) == 1
    logged = [json.loads(r.getMessage()) for r in caplog.records if r.name == "pipekit.deploy.trigger"]
    assert logged[-1] == {"pipekit": "trigger", "action": "skip", "commit": docs, "branch": "main",
                          "repository": "glue-etl",
                          "why": "none of the 1 changed path(s) is under glue/jobs, glue/scripts"}

    # A path that merely shares the prefix
    near = glue_repo.commit({"glue/jobs-old/x.json": "{}"}, "near miss")
    assert trigger.handle(push_event(glue_repo, near, old=docs), SETTINGS, session=starts.session)["action"] == "skip"

    # A delete under a watched directory starts a deploy (the orphan is reported or pruned)
    gone = glue_repo.commit({"glue/jobs/a.json": None}, "drop a")
    out = trigger.handle(push_event(glue_repo, gone, old=near), SETTINGS, session=starts.session)
    assert out["action"] == "start" and out["paths"] == ["glue/jobs/a.json"]

    # A push of two commits: the watched change in the first one counts, though the tip is docs-only
    one = glue_repo.commit({"glue/scripts/etl.py": "print(1)\n"}, "script")
    two = glue_repo.commit({"README.md": "again\n"}, "docs again")
    out = trigger.handle(push_event(glue_repo, two, old=gone), SETTINGS, session=starts.session)
    assert out["action"] == "start" and out["paths"] == ["glue/scripts/etl.py"], (one, out)

    # A new branch whose tip is docs-only: diffed against its parent
    glue_repo.git("checkout", "-q", "-b", "feature")
    (glue_repo.work / "NOTES.md").write_text("x\n")
    glue_repo.git("add", "-A")
    glue_repo.git("commit", "-q", "-m", "notes")
    glue_repo.git("push", "-q", "origin", "feature")
    tip = glue_repo.git("rev-parse", "HEAD")
    feature = trigger.FilterSettings(**{**SETTINGS.__dict__, "branch": "feature"})
    assert trigger.handle(push_event(glue_repo, tip, branch="feature"), feature, session=starts.session)["action"] == "skip"
    assert len(starts.calls) == 3


def test_get_differences_is_followed_across_pages(glue_repo: GlueRepo, monkeypatch: pytest.MonkeyPatch) -> None:
    """A push changing more paths than one GetDifferences page: the watched one on the last page still counts."""
    from pipekit.aws import codecommit

    files: dict[str, str | None] = {f"docs/{i:03}.md": "x" for i in range(7)}
    files["glue/scripts/zz.py"] = "print(2)\n"  # sorts last
    commit = glue_repo.commit(files, "many")
    original = codecommit.get_differences
    monkeypatch.setattr(codecommit, "get_differences",
                        lambda *a, **kw: original(*a, **{**kw, "page_size": 3}))
    starts = Starts()
    requests: list[str] = []
    starts.session.events.register("before-call.codecommit.GetDifferences",
                                   lambda params, **kw: requests.append(json.loads(params["body"]).get("NextToken")))
    out = trigger.handle(push_event(glue_repo, commit), SETTINGS, session=starts.session)
    assert out["action"] == "start" and out["paths"] == ["glue/scripts/zz.py"]
    assert requests == [None, "3", "6"]  # three pages of at most 3
