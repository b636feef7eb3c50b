"""The CodeCommit twin over a real git repo, driven through pipekit.aws.codecommit and boto3."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

import boto3
import pytest

from pipekit.aws import codecommit as cc
from pipekit.errors import AwsError


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(cwd), *args], check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture()
def repo(reset_twin, tmp_path):
    client = boto3.client("codecommit")
    meta = client.create_repository(repositoryName="etl")["repositoryMetadata"]
    assert meta["cloneUrlHttp"].startswith("file://")
    work = tmp_path / "work"
    subprocess.run(["git", "clone", "-q", meta["cloneUrlHttp"], str(work)], check=True, capture_output=True)
    _git(work, "config", "user.email", "t@example.com")
    _git(work, "config", "user.name", "t")
    _git(work, "checkout", "-q", "-B", "main")
    return work


def _commit(work: Path, files: dict[str, str | None], msg: str) -> str:
    for rel, text in files.items():
        p = work / rel
        if text is None:
            p.unlink()
        else:
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(text)
    _git(work, "add", "-A")
    _git(work, "commit", "-q", "-m", msg)
    _git(work, "push", "-q", "origin", "main")
    return _git(work, "rev-parse", "HEAD")


def test_push_then_read_through_the_api(repo) -> None:
    c1 = _commit(repo, {"glue/jobs/a.json": "{}", "glue/scripts/a.py": "print(1)\n", "README.md": "x"}, "one")
    c2 = _commit(repo, {"glue/jobs/a.json": '{"x": 1}', "README.md": None, "glue/jobs/b.json": "{}"}, "two")
    assert cc.get_branch_head("etl", "main") == c2
    assert cc.parent_of("etl", c2) == c1
    assert cc.parent_of("etl", c1) is None
    assert cc.get_commit("etl", c2)["message"].strip() == "two"
    diff = cc.changed_paths(cc.get_differences("etl", c2, c1))
    assert sorted(diff) == [("A", "glue/jobs/b.json"), ("D", "README.md"), ("M", "glue/jobs/a.json")]
    first = cc.changed_paths(cc.get_differences("etl", c1))
    assert sorted(p for _, p in first) == ["README.md", "glue/jobs/a.json", "glue/scripts/a.py"]
    assert cc.get_file("etl", c1, "glue/jobs/a.json") == b"{}"
    assert cc.list_files("etl", c2, "glue") == ["glue/jobs/a.json", "glue/jobs/b.json", "glue/scripts/a.py"]
    assert cc.list_files("etl", c2, "nope") == []
    with pytest.raises(AwsError, match="FileDoesNotExistException"):
        cc.get_file("etl", c2, "README.md")


def test_get_differences_pages(repo) -> None:
    files = {f"glue/scripts/s{i:02}.py": str(i) for i in range(7)}
    c1 = _commit(repo, files, "many")
    assert len(cc.get_differences("etl", c1, page_size=3)) == 7
    page = boto3.client("codecommit").get_differences(repositoryName="etl", afterCommitSpecifier=c1, MaxResults=3)
    assert len(page["differences"]) == 3 and page["NextToken"]


def test_put_file_and_blob(reset_twin) -> None:
    client = boto3.client("codecommit")
    client.create_repository(repositoryName="api")
    r1 = client.put_file(repositoryName="api", branchName="main", fileContent=b"a", filePath="x/a.txt",
                         commitMessage="add a", name="n", email="e@x")
    with pytest.raises(client.exceptions.ParentCommitIdRequiredException):
        client.put_file(repositoryName="api", branchName="main", fileContent=b"b", filePath="b.txt")
    r2 = client.put_file(repositoryName="api", branchName="main", fileContent=b"b", filePath="b.txt",
                         parentCommitId=r1["commitId"])
    assert cc.parent_of("api", r2["commitId"]) == r1["commitId"]
    assert client.get_blob(repositoryName="api", blobId=r1["blobId"])["content"] == b"a"
    assert cc.list_files("api", "main", "") == ["b.txt", "x/a.txt"]
    assert base64.b64encode(cc.get_file("api", "main", "x/a.txt")) == base64.b64encode(b"a")


def test_missing_repository_is_an_aws_error(reset_twin) -> None:
    with pytest.raises(AwsError, match="RepositoryDoesNotExistException"):
        cc.get_branch_head("ghost", "main")


def _shapes():
    """tests/local/_shapes.py (botocore output-shape check), imported by path: tests/local is no package."""
    import importlib.util
    import sys

    name = "pipekit_tests_shapes"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parents[1] / "local" / "_shapes.py")
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def _aws(*args: str) -> dict:
    """The unchanged AWS CLI as a subprocess (AWS_* env points at the twin), its JSON answer."""
    import json
    import os
    import sys

    cli = Path(sys.executable).parent / "aws"
    done = subprocess.run([str(cli), *args, "--output", "json"], capture_output=True, text=True,
                          env=dict(os.environ), timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_list_repositories_and_branches_through_the_aws_cli(repo) -> None:
    """https://docs.aws.amazon.com/codecommit/latest/APIReference/API_ListRepositories.html and
    API_ListBranches.html: names + ids, sortBy/order honoured; branches from the repository's refs."""
    _commit(repo, {"README.md": "x"}, "one")
    _git(repo, "push", "-q", "origin", "main:feature/x")
    boto3.client("codecommit").create_repository(repositoryName="aaa-first")

    listed = _aws("codecommit", "list-repositories")
    _shapes().assert_valid("codecommit", "ListRepositories", listed)
    assert [r["repositoryName"] for r in listed["repositories"]] == ["aaa-first", "etl"]
    assert all(r["repositoryId"] for r in listed["repositories"])
    down = _aws("codecommit", "list-repositories", "--sort-by", "repositoryName", "--order", "descending")
    assert [r["repositoryName"] for r in down["repositories"]] == ["etl", "aaa-first"]

    branches = _aws("codecommit", "list-branches", "--repository-name", "etl")
    _shapes().assert_valid("codecommit", "ListBranches", branches)
    assert branches == {"branches": ["feature/x", "main"]}
    assert _aws("codecommit", "list-branches", "--repository-name", "aaa-first") == {"branches": []}
    with pytest.raises(Exception, match="RepositoryDoesNotExist"):
        boto3.client("codecommit").list_branches(repositoryName="nope")
