"""Dataset download with a checksum manifest, a cache check, an opt-in offline fallback, and CSV validation."""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from pipekit.errors import DatasetError, ValidationError
from pipekit.io.atomic import atomic_write_bytes, atomic_write_text, sha256_file
from pipekit.ml._kaggle import (
    KaggleAuth,
    KaggleCredentialsError,
    KaggleUnavailableError,
    credential_source,
    kaggle_download,
)
from pipekit.ml.iris import COLUMNS, FEATURES, IRIS_FILE, IRIS_SLUG, ROWS, SPECIES, TARGET, iris_csv_bytes
from pipekit.ml.settings import DATA_DIR_ENV, make_staging_dir

log = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"
FALLBACK_SOURCE = "scikit-learn bundled Iris (sklearn.datasets.load_iris)"


@dataclass(frozen=True)
class FileEntry:
    """One downloaded file: name relative to the data folder, size and sha256."""

    name: str
    size: int
    sha256: str


@dataclass(frozen=True)
class DatasetManifest:
    """What is in the data folder and where it came from."""

    slug: str
    source: str
    files: tuple[FileEntry, ...]
    downloaded_at: str
    fallback: bool = False
    fallback_reason: str | None = None
    credential_source: str | None = None
    kaggle_version: str | None = None
    #: The Kaggle API base URL the files came from (kagglesdk's KAGGLE_API_ENVIRONMENT); None for the fallback.
    endpoint: str | None = None
    #: True when this call found the files already present and matching; nothing was downloaded.
    cached: bool = field(default=False, compare=False)

    def to_json(self) -> str:
        """The manifest as stored on disk (without the per-call ``cached`` flag)."""
        payload = asdict(self)
        payload.pop("cached")
        return json.dumps(payload, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> DatasetManifest:
        """Parse a stored manifest."""
        data = json.loads(text)
        data["files"] = tuple(FileEntry(**f) for f in data.get("files", []))
        return cls(**data)


def read_manifest(data_dir: str | os.PathLike[str]) -> DatasetManifest | None:
    """The manifest in ``data_dir``, or None when there is none or it is unreadable."""
    path = Path(data_dir) / MANIFEST_NAME
    try:
        return DatasetManifest.from_json(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, NotADirectoryError):
        return None
    except (ValueError, TypeError, KeyError) as exc:
        log.warning("ignoring unreadable manifest %s (%s); the dataset will be fetched again", path, exc)
        return None


def _files_match(data_dir: Path, manifest: DatasetManifest) -> bool:
    """True when every file in the manifest is present with the recorded size and sha256."""
    for entry in manifest.files:
        path = data_dir / entry.name
        if not path.is_file() or path.stat().st_size != entry.size or sha256_file(path) != entry.sha256:
            return False
    return bool(manifest.files)


def _install(staged: list[Path], staging: Path, data_dir: Path) -> tuple[FileEntry, ...]:
    """Move staged files into ``data_dir`` (one atomic rename each) and describe them."""
    entries = []
    for src in staged:
        rel = src.relative_to(staging)
        dest = data_dir / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(src, dest)
        entries.append(FileEntry(name=rel.as_posix(), size=dest.stat().st_size, sha256=sha256_file(dest)))
    return tuple(entries)


def _kaggle_version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("kaggle")
    except PackageNotFoundError:
        return None


def _fallback(data_dir: Path, slug: str, reason: str) -> DatasetManifest:
    """Write scikit-learn's Iris in the Kaggle CSV layout and record that the fallback was used."""
    log.warning("using the offline fallback (%s) because: %s", FALLBACK_SOURCE, reason)
    dest = atomic_write_bytes(data_dir / IRIS_FILE, iris_csv_bytes())
    entry = FileEntry(name=IRIS_FILE, size=dest.stat().st_size, sha256=sha256_file(dest))
    manifest = DatasetManifest(
        slug=slug,
        source=FALLBACK_SOURCE,
        files=(entry,),
        downloaded_at=datetime.now(UTC).isoformat(timespec="seconds"),
        fallback=True,
        fallback_reason=reason,
    )
    atomic_write_text(data_dir / MANIFEST_NAME, manifest.to_json())
    return manifest


def download_dataset(
    data_dir: str | os.PathLike[str],
    slug: str = IRIS_SLUG,
    *,
    auth: KaggleAuth | None = None,
    offline_fallback: bool = False,
    force: bool = False,
) -> DatasetManifest:
    """Fetch Kaggle dataset ``slug`` into ``data_dir`` unless the manifest's files are already there and intact.

    Credentials come from ``auth`` or, through the kaggle client, from KAGGLE_USERNAME/KAGGLE_KEY or
    kaggle.json. Without credentials or network this raises DatasetError saying what to set, unless
    ``offline_fallback`` is True: then scikit-learn's Iris is written instead and the manifest says so.
    """
    data_dir = Path(data_dir)
    existing = read_manifest(data_dir)
    usable = existing is not None and existing.slug == slug and (offline_fallback or not existing.fallback)
    if not force and usable and existing is not None and _files_match(data_dir, existing):
        log.info("dataset %s already in %s with matching sha256; not downloading", slug, data_dir)
        return replace(existing, cached=True)

    # Stage inside data_dir so the final moves are same-filesystem renames; a failure leaves no partial files.
    staging = make_staging_dir(data_dir, ".download-", DATA_DIR_ENV)
    try:
        try:
            staged, endpoint = kaggle_download(slug, staging, auth)
        except (KaggleCredentialsError, KaggleUnavailableError) as exc:
            if not offline_fallback:
                raise
            return _fallback(data_dir, slug, exc.message)
        if not staged:
            raise DatasetError(
                f"Kaggle returned no files for {slug}.", hint="Check the dataset on kaggle.com."
            )
        files = _install(staged, staging, data_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    manifest = DatasetManifest(
        slug=slug,
        source=f"kaggle:{slug}",
        files=files,
        downloaded_at=datetime.now(UTC).isoformat(timespec="seconds"),
        credential_source=credential_source(auth),
        kaggle_version=_kaggle_version(),
        endpoint=endpoint,
    )
    atomic_write_text(data_dir / MANIFEST_NAME, manifest.to_json())
    log.info("downloaded %s into %s: %s", slug, data_dir, ", ".join(f.name for f in files))
    return manifest


# --------------------------------------------------------------------------------------------- validation


@dataclass(frozen=True)
class Problem:
    """One validation failure: where it is and what is wrong."""

    check: str
    message: str
    column: str | None = None
    rows: tuple[int, ...] = ()


@dataclass(frozen=True)
class ValidationReport:
    """Every problem found in a dataset file, plus its shape."""

    path: str
    rows: int
    columns: tuple[str, ...]
    problems: tuple[Problem, ...]

    @property
    def ok(self) -> bool:
        """True when no problem was found."""
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def _first_rows(mask: pd.Series, limit: int = 10) -> tuple[int, ...]:
    # Report 1-based CSV line numbers of data rows (header is line 1), so users can jump to them.
    return tuple(int(i) + 2 for i in mask[mask].index[:limit])


def check_iris_csv(
    csv_path: str | os.PathLike[str],
    *,
    expected_rows: int | None = ROWS,
    min_rows: int = 30,
) -> ValidationReport:
    """Check an Iris CSV's columns, row count, numeric features and labels; collect every problem."""
    path = Path(csv_path)
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ValidationError(
            f"{path}: not a readable CSV ({exc}).",
            report=ValidationReport(str(path), 0, (), (Problem("readable", str(exc)),)),
            hint="Re-download it (pipekit ml download --force).",
        ) from exc

    problems: list[Problem] = []
    missing = [c for c in (*FEATURES, TARGET) if c not in frame.columns]
    if missing:
        problems.append(
            Problem("columns", f"missing column(s) {missing}; expected {list(COLUMNS)} (Id optional)")
        )
    unexpected = [c for c in frame.columns if c not in COLUMNS]
    if unexpected:
        problems.append(Problem("columns", f"unexpected column(s) {unexpected}"))
    if expected_rows is not None and len(frame) != expected_rows:
        problems.append(Problem("row_count", f"{len(frame)} data rows, expected {expected_rows}"))
    elif len(frame) < min_rows:
        problems.append(Problem("row_count", f"{len(frame)} data rows, need at least {min_rows} to train"))

    for column in FEATURES:
        if column not in frame.columns:
            continue
        values = pd.to_numeric(frame[column], errors="coerce")
        bad = values.isna()
        if bad.any():
            problems.append(
                Problem(
                    "numeric", f"{int(bad.sum())} empty or non-numeric value(s)", column, _first_rows(bad)
                )
            )
        negative = values < 0
        if negative.any():
            problems.append(
                Problem(
                    "range", f"{int(negative.sum())} negative measurement(s)", column, _first_rows(negative)
                )
            )
    if TARGET in frame.columns:
        unknown = ~frame[TARGET].isin(SPECIES)
        if unknown.any():
            labels = sorted(map(str, frame.loc[unknown, TARGET].unique()))[:5]
            problems.append(
                Problem(
                    "labels",
                    f"unknown species {labels}; expected {list(SPECIES)}",
                    TARGET,
                    _first_rows(unknown),
                )
            )
        absent = [s for s in SPECIES if s not in set(frame[TARGET])]
        if absent:
            problems.append(Problem("labels", f"no rows for species {absent}", TARGET))
    return ValidationReport(str(path), len(frame), tuple(map(str, frame.columns)), tuple(problems))


def validate_iris_csv(csv_path: str | os.PathLike[str], **kwargs: Any) -> ValidationReport:
    """Like :func:`check_iris_csv`, but raise ValidationError (carrying the report) when anything is wrong."""
    report = check_iris_csv(csv_path, **kwargs)
    if not report.ok:
        details = "; ".join(
            f"{p.column + ': ' if p.column else ''}{p.message}"
            + (f" (CSV lines {', '.join(map(str, p.rows))})" if p.rows else "")
            for p in report.problems
        )
        raise ValidationError(
            f"{report.path} failed validation: {details}",
            report=report,
            hint="Fix or re-download the file (pipekit ml download --force); the original is left untouched.",
        )
    return report
