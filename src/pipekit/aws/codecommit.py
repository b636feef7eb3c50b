"""CodeCommit content: branches, commits, differences (all pages), files and folders."""

from __future__ import annotations

from typing import Any

from pipekit.aws._calls import call, code_of
from pipekit.aws._client import client
from pipekit.errors import AwsError


def _cc(session: Any | None) -> Any:
    return client("codecommit", session)


def get_branch_head(repository: str, branch: str, *, session: Any | None = None) -> str:
    """The commit id at the tip of ``branch``."""
    resp = call(_cc(session).get_branch, f"CodeCommit {repository}:{branch} (GetBranch)",
                repositoryName=repository, branchName=branch)
    return str(resp["branch"]["commitId"])


def get_commit(repository: str, commit: str, *, session: Any | None = None) -> dict[str, Any]:
    """The GetCommit ``commit`` structure (message, parents, treeId, author...)."""
    return call(_cc(session).get_commit, f"CodeCommit {repository}@{commit[:12]} (GetCommit)",
                repositoryName=repository, commitId=commit)["commit"]


def parent_of(repository: str, commit: str, *, session: Any | None = None) -> str | None:
    """The first parent of ``commit``, or None for a repository's first commit."""
    parents = get_commit(repository, commit, session=session).get("parents") or []
    return str(parents[0]) if parents else None


def get_differences(repository: str, after: str, before: str | None = None, *,
                    session: Any | None = None, page_size: int = 100) -> list[dict[str, Any]]:
    """Every difference between ``before`` (None: the empty tree) and ``after``, following NextToken."""
    cc = _cc(session)
    kwargs: dict[str, Any] = {"repositoryName": repository, "afterCommitSpecifier": after,
                              "MaxResults": page_size}
    if before:
        kwargs["beforeCommitSpecifier"] = before
    out: list[dict[str, Any]] = []
    what = f"CodeCommit {repository} {before[:12] if before else '(empty)'}..{after[:12]} (GetDifferences)"
    while True:
        page = call(cc.get_differences, what, **kwargs)
        out.extend(page.get("differences", []))
        if not page.get("NextToken"):
            return out
        kwargs["NextToken"] = page["NextToken"]


def changed_paths(differences: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """``(status, path)`` pairs from GetDifferences output; a rename yields a D and an A."""
    out: list[tuple[str, str]] = []
    for d in differences:
        before, after = d.get("beforeBlob") or {}, d.get("afterBlob") or {}
        status = d.get("changeType", "M")
        if status == "D" or (before.get("path") and before.get("path") != after.get("path")):
            out.append(("D", before["path"]))
        if status != "D" and after.get("path"):
            out.append(("A" if status == "A" or before.get("path") != after["path"] else "M", after["path"]))
    return out


def get_file(repository: str, commit: str, path: str, *, session: Any | None = None) -> bytes:
    """The content of ``path`` at ``commit``."""
    resp = call(_cc(session).get_file, f"CodeCommit {repository}@{commit[:12]}:{path} (GetFile)",
                repositoryName=repository, commitSpecifier=commit, filePath=path)
    return bytes(resp["fileContent"])


def list_files(repository: str, commit: str, folder: str, *, session: Any | None = None) -> list[str]:
    """Every file path under ``folder`` at ``commit`` (recursive); [] if the folder does not exist."""
    cc = _cc(session)
    out: list[str] = []
    pending = [folder.strip("/")]
    while pending:
        current = pending.pop()
        try:
            resp = call(cc.get_folder, f"CodeCommit {repository}@{commit[:12]}:{current}/ (GetFolder)",
                        repositoryName=repository, commitSpecifier=commit, folderPath=current)
        except AwsError as err:
            if code_of(err) == "FolderDoesNotExistException":
                continue
            raise
        out += [f["absolutePath"] for f in resp.get("files", [])]
        pending += [s["absolutePath"] for s in resp.get("subFolders", [])]
    return sorted(out)
