"""The official kaggle client, imported lazily and with its exits and HTTP errors turned into DatasetError."""

from __future__ import annotations

import contextlib
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipekit._extras import require
from pipekit.errors import DatasetError

MISSING_CREDENTIALS_HINT = (
    "Set KAGGLE_USERNAME and KAGGLE_KEY, or put kaggle.json (from kaggle.com > Settings > API) in "
    "~/.kaggle/ or $KAGGLE_CONFIG_DIR, or create the Airflow connection 'kaggle_default' "
    "(login = username, password = key). To train on scikit-learn's bundled Iris instead, "
    "opt in with offline_fallback=True (CLI: --offline-fallback)."
)


class KaggleCredentialsError(DatasetError):
    """No Kaggle credentials were found, or Kaggle rejected them."""


class KaggleUnavailableError(DatasetError):
    """The Kaggle API could not be reached or failed on its side; trying again later may work."""

    retryable = True


@dataclass(frozen=True)
class KaggleAuth:
    """Explicit Kaggle credentials (e.g. from an Airflow connection); the key never appears in repr."""

    username: str
    key: str

    def __repr__(self) -> str:
        return f"KaggleAuth(username={self.username!r}, key='***')"


def _import_kaggle_api() -> type:
    """Import ``KaggleApi`` without letting the package's import-time authentication print or exit."""
    # `import kaggle` calls api.authenticate() at import time; it swallows the failure but prints help
    # to stdout. Silence that: pipekit authenticates explicitly below and reports what to set.
    with contextlib.redirect_stdout(io.StringIO()):
        require("kaggle", "ml")
        from kaggle.api.kaggle_api_extended import KaggleApi
    return KaggleApi


def _make_api(auth: KaggleAuth | None) -> Any:
    """Build an authenticated KaggleApi; raise DatasetError naming what to set when no credentials exist."""
    kaggle_api_cls = _import_kaggle_api()
    from kagglesdk import KaggleClient
    from kagglesdk.kaggle_env import KaggleEnv

    class _PipekitKaggleApi(kaggle_api_cls):  # type: ignore[misc, valid-type]
        """KaggleApi that honours ``KAGGLE_API_ENVIRONMENT=TEST`` and reads the config dir at call time."""

        def __init__(self) -> None:
            super().__init__()
            # kaggle fixes config_dir when the module is first imported; re-read it so a
            # KAGGLE_CONFIG_DIR set later (per task, per test) is honoured.
            config_dir = os.environ.get("KAGGLE_CONFIG_DIR")
            if config_dir:
                self.config_dir = config_dir
                self.config = os.path.join(config_dir, self.config_file)

        def build_kaggle_client(self) -> Any:
            # kaggle 2.2.4 picks the endpoint from CLI flags only (PROD unless --local), so the
            # documented TEST environment (kagglesdk: http://localhost:7777) is otherwise ignored.
            if os.environ.get("KAGGLE_API_ENVIRONMENT") != "TEST":
                return super().build_kaggle_client()
            return KaggleClient(
                env=KaggleEnv.TEST,
                verbose="--verbose" in self.args,
                username=self.config_values.get(self.CONFIG_NAME_USER),
                password=self.config_values.get(self.CONFIG_NAME_KEY),
                api_token=self.config_values.get(self.CONFIG_NAME_TOKEN),
                response_processor=self.get_response_processor(),
            )

    api = _PipekitKaggleApi()
    if auth is not None:
        api.config_values = {api.CONFIG_NAME_USER: auth.username, api.CONFIG_NAME_KEY: auth.key}
        return api
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            api.authenticate()
    except SystemExit as exc:  # the client calls exit(1) when it finds no credentials
        raise KaggleCredentialsError("No Kaggle credentials found.", hint=MISSING_CREDENTIALS_HINT) from exc
    return api


def credential_source(auth: KaggleAuth | None) -> str:
    """Where the credentials come from, for the manifest (never the values)."""
    if auth is not None:
        return "explicit (e.g. Airflow connection)"
    if os.environ.get("KAGGLE_USERNAME") and os.environ.get("KAGGLE_KEY"):
        return "environment (KAGGLE_USERNAME/KAGGLE_KEY)"
    if os.environ.get("KAGGLE_API_TOKEN"):
        return "environment (KAGGLE_API_TOKEN)"
    return "kaggle config file"


def kaggle_download(slug: str, dest: Path, auth: KaggleAuth | None) -> list[Path]:
    """Download and unzip every file of dataset ``slug`` into ``dest`` with the official client."""
    import requests

    api = _make_api(auth)
    dest.mkdir(parents=True, exist_ok=True)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            api.dataset_download_files(slug, path=str(dest), force=True, quiet=True, unzip=True)
    except requests.exceptions.HTTPError as exc:
        status = exc.response.status_code if exc.response is not None else None
        if status in (401, 403):
            raise KaggleCredentialsError(
                f"Kaggle rejected the credentials (HTTP {status}) while downloading {slug}.",
                hint="Check KAGGLE_USERNAME/KAGGLE_KEY (or kaggle.json / the Airflow connection); "
                "regenerate the key at kaggle.com > Settings > API if it was revoked.",
            ) from exc
        if status == 404:
            raise DatasetError(
                f"Kaggle dataset {slug!r} was not found (HTTP 404).",
                hint="Check the slug (owner/dataset) on kaggle.com/datasets.",
            ) from exc
        raise KaggleUnavailableError(
            f"Kaggle download of {slug} failed: HTTP {status}.", hint="Retry later."
        ) from exc
    except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
        raise KaggleUnavailableError(
            f"Cannot reach the Kaggle API to download {slug}: {type(exc).__name__}.",
            hint="Check the network (or proxy settings), or opt in to offline_fallback=True "
            "to train on scikit-learn's bundled Iris.",
        ) from exc
    except (ValueError, RuntimeError) as exc:  # the client's own errors: corrupt zip, size mismatch
        raise DatasetError(f"Kaggle download of {slug} failed: {exc}", hint="Retry with --force.") from exc
    return sorted(p for p in dest.rglob("*") if p.is_file())
