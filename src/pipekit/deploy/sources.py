"""Where a deployment reads the repository from: CodeCommit's API, a git clone, or a zip with a manifest.

All three answer the same questions: which files changed since the last deployed revision, and what
a file contains at the revision being deployed. The pipeline does not care which one it talks to.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from pipekit.aws import codecommit
from pipekit.deploy.config import WATCHED_DIRS
from pipekit.errors import DeployError


@dataclass(frozen=True)
class FileChange:
    """A changed path: status A (added), M (modified) or D (deleted)."""

    status: str
    path: str


class Source(Protocol):
    """A repository at one revision."""

    kind: str
    revision: str

    def baseline(self, last_deployed: str | None) -> str | None:
        """The revision to diff from: the last deployed one, else the parent; None means "everything"."""

    def changes(self, since: str | None) -> list[FileChange]:
        """Paths changed between ``since`` and ``revision``."""

    def read(self, path: str) -> bytes:
        """Content of ``path`` at ``revision``."""

    def list_files(self, folder: str) -> list[str]:
        """Paths under ``folder`` at ``revision``."""

    def remember(self) -> None:
        """Persist whatever the next diff needs (zip manifests); called after a successful deploy."""


def watched(changes: Iterable[FileChange], dirs: Iterable[str] = WATCHED_DIRS) -> list[FileChange]:
    """Keep only changes under the watched directories."""
    prefixes = tuple(d.rstrip("/") + "/" for d in dirs)
    return [c for c in changes if c.path.startswith(prefixes)]


class CodeCommitSource:
    """CodeCommit through its API (GetDifferences, GetFile, GetFolder): no clone, no git in the Lambda."""

    kind = "codecommit"

    def __init__(self, repository: str, revision: str, *, session: Any | None = None) -> None:
        self.repository = repository
        self.revision = revision
        self.session = session

    def baseline(self, last_deployed: str | None) -> str | None:
        return last_deployed or codecommit.parent_of(self.repository, self.revision, session=self.session)

    def changes(self, since: str | None) -> list[FileChange]:
        diffs = codecommit.get_differences(self.repository, self.revision, since, session=self.session)
        return [FileChange(s, p) for s, p in codecommit.changed_paths(diffs)]

    def read(self, path: str) -> bytes:
        return codecommit.get_file(self.repository, self.revision, path, session=self.session)

    def list_files(self, folder: str) -> list[str]:
        return codecommit.list_files(self.repository, self.revision, folder, session=self.session)

    def remember(self) -> None:
        """Nothing to keep: CodeCommit diffs any two commits."""


class GitSource:
    """A full clone on disk (CodePipeline full-clone artifact, CodeConnections, a laptop): ``git diff``."""

    kind = "git"

    def __init__(self, workdir: str | Path, revision: str | None = None) -> None:
        self.workdir = Path(workdir)
        if shutil.which("git") is None:
            raise DeployError("The git source needs the git executable, which is not on PATH.",
                              hint="Use the codecommit or zip source, or add git to the runtime.")
        self.revision = revision or self._git("rev-parse", "HEAD").strip()

    def _git(self, *args: str) -> str:
        proc = subprocess.run(["git", "-C", str(self.workdir), *args], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise DeployError(f"git {' '.join(args)} failed in {self.workdir}: {proc.stderr.strip()}")
        return proc.stdout

    def baseline(self, last_deployed: str | None) -> str | None:
        if last_deployed:
            return last_deployed
        proc = subprocess.run(["git", "-C", str(self.workdir), "rev-parse", "--verify", "--quiet",
                               f"{self.revision}^"], capture_output=True, text=True, check=False)
        return proc.stdout.strip() or None

    def changes(self, since: str | None) -> list[FileChange]:
        if since is None:
            return [FileChange("A", p) for p in self._git("ls-tree", "-r", "--name-only", self.revision).split()]
        out = self._git("diff", "--name-status", "--no-renames", since, self.revision)
        return [FileChange(line.split("\t")[0][0], line.split("\t")[1]) for line in out.splitlines() if line]

    def read(self, path: str) -> bytes:
        proc = subprocess.run(["git", "-C", str(self.workdir), "show", f"{self.revision}:{path}"],
                              capture_output=True, check=False)
        if proc.returncode != 0:
            raise DeployError(f"{path} does not exist at {self.revision[:12]}: {proc.stderr.decode().strip()}")
        return proc.stdout

    def list_files(self, folder: str) -> list[str]:
        return self._git("ls-tree", "-r", "--name-only", self.revision, "--", folder.rstrip("/") + "/").split()

    def remember(self) -> None:
        """Nothing to keep: git diffs any two commits in the clone."""


class ManifestStore(Protocol):
    """Keeps one JSON manifest per deployed revision (S3 in the Lambda, a dict in tests)."""

    def load(self, revision: str) -> dict[str, str] | None: ...

    def save(self, revision: str, manifest: dict[str, str]) -> None: ...


class ZipSource:
    """A zip of the repository (CodePipeline's default CODE_ZIP artifact from any source, or an S3 upload).

    A zip has no history, so the diff is against the path -> sha256 manifest saved when the last
    revision was deployed; with no manifest, every file counts as added.
    """

    kind = "zip"

    def __init__(self, data: bytes, revision: str, store: ManifestStore) -> None:
        self.revision = revision
        self.store = store
        try:
            archive = zipfile.ZipFile(io.BytesIO(data))
        except zipfile.BadZipFile as exc:
            raise DeployError(f"the source artifact for revision {revision} is not a zip file: {exc}") from exc
        # CodePipeline's CODE_ZIP puts the repository root at the zip root, so zip paths are repo paths.
        self.files = {n: archive.read(n) for n in archive.namelist() if not n.endswith("/")}
        self.manifest = {p: hashlib.sha256(b).hexdigest() for p, b in self.files.items()}

    def baseline(self, last_deployed: str | None) -> str | None:
        return last_deployed

    def changes(self, since: str | None) -> list[FileChange]:
        old = (self.store.load(since) if since else None) or {}
        out = [FileChange("A" if p not in old else "M", p) for p, h in self.manifest.items() if old.get(p) != h]
        out += [FileChange("D", p) for p in old if p not in self.manifest]
        return sorted(out, key=lambda c: c.path)

    def read(self, path: str) -> bytes:
        try:
            return self.files[path]
        except KeyError:
            raise DeployError(f"{path} is not in the source artifact of revision {self.revision}") from None

    def list_files(self, folder: str) -> list[str]:
        prefix = folder.rstrip("/") + "/"
        return sorted(p for p in self.files if p.startswith(prefix))

    def remember(self) -> None:
        self.store.save(self.revision, self.manifest)


class S3ManifestStore:
    """Manifests as ``s3://BUCKET/PREFIX<revision>.json``."""

    def __init__(self, bucket: str, prefix: str, *, session: Any | None = None) -> None:
        self.bucket, self.prefix, self.session = bucket, prefix, session

    def load(self, revision: str) -> dict[str, str] | None:
        from pipekit.deploy import _s3

        data = _s3.get_bytes(self.bucket, f"{self.prefix}{revision}.json", session=self.session)
        return None if data is None else json.loads(data)

    def save(self, revision: str, manifest: dict[str, str]) -> None:
        from pipekit.deploy import _s3

        _s3.put_bytes(self.bucket, f"{self.prefix}{revision}.json",
                      json.dumps(manifest, sort_keys=True).encode(), session=self.session)
