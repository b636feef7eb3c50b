"""CodeCommit content operations, backed by a REAL git repository per CodeCommit repository.

moto keeps only repository metadata. Here each repository gets a bare git repo under the twin's
state dir (``codecommit/<region>/<name>.git``). A repository created through the API gets that
repo's ``file://`` URL as its ``cloneUrlHttp``; one created by a CloudFormation stack
(:mod:`pipekit.local.cfn_models`) gets the twin's loopback smart-HTTP URL (:mod:`pipekit.local.git_http`),
whose pushes emit the CodeCommit state-change event. ``git clone``/``git push`` work on both, and PutFile
commits through the API too. GetBranch, GetCommit,
GetDifferences (with paging), GetFile, GetFolder and GetBlob read the git repository with git itself.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

from pipekit.local.server import TwinContext, TwinFault, operation

_T = "CodeCommit_20150413."
_MODES = {"100644": "NORMAL", "100755": "EXECUTABLE", "120000": "SYMLINK"}


def repo_dir(state_dir: Path, region: str, name: str) -> Path:
    """Where the bare git repository of CodeCommit repository ``name`` lives."""
    return Path(state_dir) / "codecommit" / region / f"{name}.git"


#: Path prefix of the twin's smart-HTTP git endpoint: ``<prefix>/<region>/v1/repos/<name>``.
GIT_HTTP_PREFIX = "/_twin/codecommit"


def clone_url_http(endpoint_url: str, region: str, name: str) -> str:
    """The twin's loopback clone URL of repository ``name`` (the shape of CodeCommit's ``/v1/repos/<name>``)."""
    return f"{endpoint_url.rstrip('/')}{GIT_HTTP_PREFIX}/{region}/v1/repos/{name}"


def create_repository_with_git(state_dir: Path, endpoint_url: str, account: str, region: str, name: str,
                               description: str | None) -> dict[str, Any]:
    """moto's CreateRepository plus a fresh bare git repo served over HTTP; returns the repository metadata."""
    from moto.codecommit.models import codecommit_backends

    backend = codecommit_backends[account][region]
    backend.create_repository(name, description or "")
    path = repo_dir(state_dir, region, name)
    # A git repo left from an earlier twin state (moto was reset) belongs to no repository any more.
    shutil.rmtree(path, ignore_errors=True)
    _init_bare(path)
    metadata: dict[str, Any] = backend.repositories[name].repository_metadata
    metadata["cloneUrlHttp"] = clone_url_http(endpoint_url, region, name)
    return metadata


def _backend(ctx: TwinContext) -> Any:
    from moto.codecommit.models import codecommit_backends

    return codecommit_backends[ctx.account][ctx.region]


def _init_bare(path: Path, default_branch: str = "main") -> None:
    if not (path / "HEAD").exists():
        path.mkdir(parents=True, exist_ok=True)
        subprocess.run(["git", "init", "--quiet", "--bare", f"--initial-branch={default_branch}", str(path)],
                       check=True, capture_output=True)


def _repo(ctx: TwinContext, body: dict[str, Any]) -> Path:
    name = body.get("repositoryName") or ""
    repo = _backend(ctx).repositories.get(name)
    if repo is None:
        raise TwinFault("RepositoryDoesNotExistException", f"{name} does not exist")
    path = repo_dir(ctx.state_dir, ctx.region, name)
    _init_bare(path)
    if not str(repo.repository_metadata.get("cloneUrlHttp", "")).startswith(ctx.endpoint_url):
        repo.repository_metadata["cloneUrlHttp"] = path.resolve().as_uri()
    return path


def _git(path: Path, *args: str, input: bytes | None = None, env: dict[str, str] | None = None) -> bytes:
    proc = subprocess.run(["git", "--git-dir", str(path), *args], input=input, capture_output=True,
                          env={**os.environ, **(env or {})}, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)}: {proc.stderr.decode(errors='replace').strip()}")
    return proc.stdout


def _resolve(path: Path, spec: str, *, what: str = "commit") -> str:
    proc = subprocess.run(["git", "--git-dir", str(path), "rev-parse", "--verify", "--quiet", f"{spec}^{{commit}}"],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0 or not proc.stdout.strip():
        raise TwinFault("CommitDoesNotExistException", f"{what} {spec} does not exist")
    return proc.stdout.strip()


@operation(_T + "CreateRepository")
def create_repository(body: dict[str, Any], ctx: TwinContext) -> dict[str, Any]:
    """moto's CreateRepository plus a bare git repo; cloneUrlHttp points at it."""
    from moto.codecommit.exceptions import RepositoryNameExistsException

    name = body.get("repositoryName") or ""
    try:
        _backend(ctx).create_repository(name, body.get("repositoryDescription"))
    except RepositoryNameExistsException as exc:
        raise TwinFault("RepositoryNameExistsException", f"Repository named {name} already exists") from exc
    # A git repo left from an earlier twin state (moto was reset) belongs to no repository any more.
    shutil.rmtree(repo_dir(ctx.state_dir, ctx.region, name), ignore_errors=True)
    _repo(ctx, body)
    return {"repositoryMetadata": _backend(ctx).repositories[name].repository_metadata}


@operation(_T + "GetBranch")
def get_branch(body: dict[str, Any], ctx: TwinContext) -> dict[str, Any]:
    path = _repo(ctx, body)
    branch = body.get("branchName") or ""
    proc = subprocess.run(["git", "--git-dir", str(path), "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}"],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise TwinFault("BranchDoesNotExistException", f"Branch {branch} does not exist")
    return {"branch": {"branchName": branch, "commitId": proc.stdout.strip()}}


def _person(line: str) -> dict[str, str]:
    name, rest = line.split(" <", 1)
    email, when = rest.split("> ", 1)
    return {"name": name, "email": email, "date": when}


@operation(_T + "GetCommit")
def get_commit(body: dict[str, Any], ctx: TwinContext) -> dict[str, Any]:
    path = _repo(ctx, body)
    commit = _resolve(path, body.get("commitId") or "")
    raw = _git(path, "cat-file", "commit", commit).decode()
    header, _, message = raw.partition("\n\n")
    fields: dict[str, list[str]] = {}
    for line in header.splitlines():
        key, _, value = line.partition(" ")
        fields.setdefault(key, []).append(value)
    return {"commit": {
        "commitId": commit,
        "treeId": fields["tree"][0],
        "parents": fields.get("parent", []),
        "message": message,
        "author": _person(fields["author"][0]),
        "committer": _person(fields["committer"][0]),
        "additionalData": "",
    }}


def _blob(mode: str, sha: str, path: str) -> dict[str, str] | None:
    if set(sha) == {"0"}:
        return None
    return {"blobId": sha, "path": path, "mode": mode}


@operation(_T + "GetDifferences")
def get_differences(body: dict[str, Any], ctx: TwinContext) -> dict[str, Any]:
    path = _repo(ctx, body)
    after = _resolve(path, body.get("afterCommitSpecifier") or "")
    before = body.get("beforeCommitSpecifier")
    args = ["diff-tree", "-r", "--no-renames", "--no-abbrev", "-z"]
    args += [_resolve(path, before), after] if before else ["--root", after]
    paths = [body[k] for k in ("beforePath", "afterPath") if body.get(k)]
    if paths:
        args += ["--", *dict.fromkeys(paths)]
    out = _git(path, *args).decode()
    parts = [p for p in out.split("\0") if p]
    if not before and parts and not parts[0].startswith(":"):
        parts = parts[1:]  # --root prints the commit id first
    diffs: list[dict[str, Any]] = []
    for meta, file_path in zip(parts[0::2], parts[1::2], strict=True):
        old_mode, new_mode, old_sha, new_sha, status = meta[1:].split(" ")
        entry: dict[str, Any] = {"changeType": {"A": "A", "D": "D"}.get(status[0], "M")}
        if (b := _blob(old_mode, old_sha, file_path)) is not None:
            entry["beforeBlob"] = b
        if (a := _blob(new_mode, new_sha, file_path)) is not None:
            entry["afterBlob"] = a
        diffs.append(entry)
    start = int(body.get("NextToken") or 0)
    size = int(body.get("MaxResults") or 100)
    page: dict[str, Any] = {"differences": diffs[start:start + size]}
    if start + size < len(diffs):
        page["NextToken"] = str(start + size)
    return page


def _ls(path: Path, commit: str, target: str) -> list[tuple[str, str, str, str]]:
    out = _git(path, "ls-tree", "-z", commit, *([target] if target else [])).decode()
    rows = []
    for item in filter(None, out.split("\0")):
        meta, name = item.split("\t", 1)
        mode, kind, sha = meta.split(" ")
        rows.append((mode, kind, sha, name))
    return rows


@operation(_T + "GetFile")
def get_file(body: dict[str, Any], ctx: TwinContext) -> dict[str, Any]:
    path = _repo(ctx, body)
    commit = _resolve(path, body.get("commitSpecifier") or "HEAD")
    file_path = (body.get("filePath") or "").strip("/")
    rows = [r for r in _ls(path, commit, file_path) if r[1] == "blob" and r[3] == file_path]
    if not rows:
        raise TwinFault("FileDoesNotExistException", f"{file_path} does not exist at {commit}")
    mode, _, sha, _ = rows[0]
    content = _git(path, "cat-file", "blob", sha)
    return {"commitId": commit, "blobId": sha, "filePath": file_path, "fileMode": _MODES.get(mode, "NORMAL"),
            "fileSize": len(content), "fileContent": base64.b64encode(content).decode()}


@operation(_T + "GetFolder")
def get_folder(body: dict[str, Any], ctx: TwinContext) -> dict[str, Any]:
    path = _repo(ctx, body)
    commit = _resolve(path, body.get("commitSpecifier") or "HEAD")
    folder = (body.get("folderPath") or "").strip("/")
    if folder:
        entry = [r for r in _ls(path, commit, folder) if r[3] == folder and r[1] == "tree"]
        if not entry:
            raise TwinFault("FolderDoesNotExistException", f"{folder} does not exist at {commit}")
        tree = entry[0][2]
    else:
        tree = _git(path, "rev-parse", f"{commit}^{{tree}}").decode().strip()
    files, subs, links, mods = [], [], [], []
    for mode, kind, sha, name in _ls(path, tree, ""):
        absolute = str(PurePosixPath(folder) / name) if folder else name
        if kind == "tree":
            subs.append({"treeId": sha, "absolutePath": absolute, "relativePath": name})
        elif kind == "commit":
            mods.append({"commitId": sha, "absolutePath": absolute, "relativePath": name})
        elif mode == "120000":
            links.append({"blobId": sha, "absolutePath": absolute, "relativePath": name, "fileMode": "SYMLINK"})
        else:
            files.append({"blobId": sha, "absolutePath": absolute, "relativePath": name,
                          "fileMode": _MODES.get(mode, "NORMAL")})
    return {"commitId": commit, "folderPath": folder or "/", "treeId": tree, "subFolders": subs, "files": files,
            "symbolicLinks": links, "subModules": mods}


@operation(_T + "GetBlob")
def get_blob(body: dict[str, Any], ctx: TwinContext) -> dict[str, Any]:
    path = _repo(ctx, body)
    sha = body.get("blobId") or ""
    try:
        content = _git(path, "cat-file", "blob", sha)
    except RuntimeError as exc:
        raise TwinFault("BlobIdDoesNotExistException", f"blob {sha} does not exist") from exc
    return {"content": base64.b64encode(content).decode()}


@operation(_T + "PutFile")
def put_file(body: dict[str, Any], ctx: TwinContext) -> dict[str, Any]:
    """Commit one file to a branch (creating the branch on the first commit), like CodeCommit's PutFile."""
    path = _repo(ctx, body)
    branch = body.get("branchName") or ""
    file_path = (body.get("filePath") or "").strip("/")
    content = base64.b64decode(body.get("fileContent") or "")
    head = subprocess.run(["git", "--git-dir", str(path), "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}"],
                          capture_output=True, text=True, check=False).stdout.strip()
    parent = body.get("parentCommitId")
    if head and parent != head:
        raise TwinFault("ParentCommitIdOutdatedException" if parent else "ParentCommitIdRequiredException",
                        f"parentCommitId must be the tip of {branch}: {head}")
    blob = _git(path, "hash-object", "-w", "--stdin", input=content).decode().strip()
    mode = "100755" if body.get("fileMode") == "EXECUTABLE" else "100644"
    with tempfile.TemporaryDirectory() as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        if head:
            _git(path, "read-tree", head, env=env)
        _git(path, "update-index", "--add", "--cacheinfo", f"{mode},{blob},{file_path}", env=env)
        tree = _git(path, "write-tree", env=env).decode().strip()
    who = {"GIT_AUTHOR_NAME": body.get("name") or "pipekit", "GIT_AUTHOR_EMAIL": body.get("email") or "twin@pipekit",
           "GIT_COMMITTER_NAME": body.get("name") or "pipekit",
           "GIT_COMMITTER_EMAIL": body.get("email") or "twin@pipekit"}
    args = ["commit-tree", tree, "-m", body.get("commitMessage") or f"PutFile {file_path}"]
    if head:
        args += ["-p", head]
    commit = _git(path, *args, env=who).decode().strip()
    _git(path, "update-ref", f"refs/heads/{branch}", commit)
    return {"commitId": commit, "blobId": blob, "treeId": tree}


#: Items per page of ListRepositories / ListBranches (AWS returns up to 1,000 and a nextToken).
_PAGE = 1000


def _page(items: list[Any], token: str | None) -> tuple[list[Any], str | None]:
    """One page of ``items`` from ``token`` (an offset written by an earlier page), and the next token."""
    try:
        start = int(token) if token else 0
    except ValueError:
        raise TwinFault("InvalidContinuationTokenException", "The continuation token is not valid.") from None
    if start < 0 or start > len(items):
        raise TwinFault("InvalidContinuationTokenException", "The continuation token is not valid.")
    end = start + _PAGE
    return items[start:end], (str(end) if end < len(items) else None)


@operation(_T + "ListRepositories")
def list_repositories(body: dict[str, Any], ctx: TwinContext) -> dict[str, Any]:
    """ListRepositories: name and id of every repository, sorted by ``sortBy`` (repositoryName or
    lastModifiedDate) in ``order`` (ascending or descending), 1,000 a page."""
    sort_by, order = body.get("sortBy") or "repositoryName", body.get("order") or "ascending"
    if sort_by not in ("repositoryName", "lastModifiedDate"):
        raise TwinFault("InvalidSortByException", f"The sortBy value {sort_by} is not valid.")
    if order not in ("ascending", "descending"):
        raise TwinFault("InvalidOrderException", f"The order value {order} is not valid.")
    metadata = [repo.repository_metadata for repo in _backend(ctx).repositories.values()]
    metadata.sort(key=lambda m: str(m.get(sort_by) or m.get("repositoryName")), reverse=order == "descending")
    page, token = _page(metadata, body.get("nextToken"))
    out: dict[str, Any] = {"repositories": [{"repositoryName": m["repositoryName"], "repositoryId": m["repositoryId"]}
                                            for m in page]}
    if token:
        out["nextToken"] = token
    return out


@operation(_T + "ListBranches")
def list_branches(body: dict[str, Any], ctx: TwinContext) -> dict[str, Any]:
    """ListBranches: the names of the repository's branches (from its git refs), 1,000 a page."""
    path = _repo(ctx, body)
    refs = _git(path, "for-each-ref", "--format=%(refname:strip=2)", "refs/heads/").decode().split()
    page, token = _page(sorted(refs), body.get("nextToken"))
    out: dict[str, Any] = {"branches": page}
    if token:
        out["nextToken"] = token
    return out
