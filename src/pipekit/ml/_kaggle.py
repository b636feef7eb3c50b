"""The official kaggle client, imported lazily and with its exits and HTTP errors turned into DatasetError.

pipekit needs three things the kaggle package has no public setting for: a ``KAGGLE_CONFIG_DIR`` set after
``import kaggle``, explicit credentials (an Airflow connection), and the API environment (``KaggleApi``
takes it from CLI flags only). The endpoint does have a public setting, one layer down: kagglesdk's
``KaggleClient`` reads ``KAGGLE_API_ENVIRONMENT`` (PROD when unset; TEST = ``http://localhost:7777``,
LOCALHOST, QA, STAGING, ADMIN) whenever it is not handed an environment. ``_make_api`` lets that setting
decide. Because this relies on ``KaggleApi`` internals, it runs only with the kaggle releases in
``KAGGLE_VERSION_RANGE``, which is also the pin in pyproject.toml's ``ml`` extra.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from pipekit._extras import require
from pipekit.errors import DatasetError

#: The kaggle releases the KaggleApi shim below was verified with. pyproject.toml's ``ml`` extra pins the same
#: range. Before 2.2.4, ``import kaggle`` calls exit(1) when no credentials exist. Before 1.8.4, the
#: ``KaggleApi`` hooks used here are missing. 2.3 has not been verified.
KAGGLE_MIN_VERSION = "2.2.4"
KAGGLE_BELOW_VERSION = "2.3"
KAGGLE_VERSION_RANGE = f">={KAGGLE_MIN_VERSION},<{KAGGLE_BELOW_VERSION}"

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


def _release(text: str) -> tuple[int, ...]:
    """The numeric release of a version string: ``"2.2.5"`` -> ``(2, 2, 5)``, ``"2.3.0rc1"`` -> ``(2, 3, 0)``."""
    match = re.match(r"\d+(?:\.\d+)*", text)
    return tuple(int(part) for part in match.group().split(".")) if match else ()


def check_kaggle_version(installed: str) -> None:
    """Raise DatasetError unless kaggle ``installed`` is in ``KAGGLE_VERSION_RANGE``."""
    if not _release(KAGGLE_MIN_VERSION) <= _release(installed) < _release(KAGGLE_BELOW_VERSION):
        raise DatasetError(
            f"kaggle {installed} is not supported: pipekit relies on parts of the kaggle client "
            f"(KaggleApi) that are verified only for kaggle{KAGGLE_VERSION_RANGE}.",
            hint=f'pip install "kaggle{KAGGLE_VERSION_RANGE}" (the range pipekit[ml] pins).',
        )


def _import_kaggle_api() -> type:
    """Import ``KaggleApi`` without letting the package's import-time authentication print or exit."""
    try:
        installed: str | None = version("kaggle")
    except PackageNotFoundError:
        installed = None  # require() below says how to install it
    if installed is not None:
        check_kaggle_version(installed)  # before the import: kaggle < 2.2.4 may exit(1) while importing
    # `import kaggle` calls api.authenticate() at import time; it swallows the failure but prints help
    # to stdout. Silence that: pipekit authenticates explicitly below and reports what to set.
    with contextlib.redirect_stdout(io.StringIO()):
        require("kaggle", "ml")
        from kaggle.api.kaggle_api_extended import KaggleApi
    return KaggleApi


def _api_environment() -> Any:
    """The kagglesdk environment selected by ``KAGGLE_API_ENVIRONMENT``; kagglesdk parses the value itself."""
    from kagglesdk.kaggle_env import get_env

    try:
        return get_env()
    except Exception as exc:  # kagglesdk raises a bare Exception for an unknown value
        raise DatasetError(
            f"KAGGLE_API_ENVIRONMENT={os.environ.get('KAGGLE_API_ENVIRONMENT')!r} is not an environment the "
            "kaggle client knows.",
            hint="Unset it for api.kaggle.com, or use TEST (the local stand-in on http://localhost:7777), "
            "LOCALHOST, QA, STAGING or ADMIN.",
        ) from exc


def _make_api(auth: KaggleAuth | None) -> Any:
    """Build an authenticated KaggleApi; raise DatasetError naming what to set when no credentials exist.

    The returned api has ``pipekit_endpoint``, the API base URL its client talks to (no credentials in it).
    """
    kaggle_api_cls = _import_kaggle_api()
    from kagglesdk import KaggleClient
    from kagglesdk.kaggle_env import get_endpoint

    env = _api_environment()

    class _PipekitKaggleApi(kaggle_api_cls):  # type: ignore[misc, valid-type]  # KaggleApi is imported at call time (no stubs)
        """KaggleApi that reads KAGGLE_CONFIG_DIR and KAGGLE_API_ENVIRONMENT when it is built, not at import.

        Verified for kaggle in KAGGLE_VERSION_RANGE only (checked by _import_kaggle_api).
        """

        pipekit_endpoint: str = get_endpoint(env)

        def __init__(self) -> None:
            super().__init__()
            # kaggle fixes config_dir when the module is first imported; re-read it so a
            # KAGGLE_CONFIG_DIR set later (per task, per test) is honoured.
            config_dir = os.environ.get("KAGGLE_CONFIG_DIR")
            if config_dir:
                self.config_dir = config_dir
                self.config = os.path.join(config_dir, self.config_file)

        def build_kaggle_client(self) -> Any:
            # KaggleApi chooses the environment from CLI flags (PROD unless --local/--staging/--admin) and passes
            # it to KaggleClient, which then ignores KAGGLE_API_ENVIRONMENT. Pass the environment kagglesdk
            # reads from that variable instead; every other argument is the one KaggleApi passes.
            return KaggleClient(
                env=env,
                verbose="--verbose" in self.args or "-v" in self.args,
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


def kaggle_download(slug: str, dest: Path, auth: KaggleAuth | None) -> tuple[list[Path], str]:
    """Download and unzip every file of dataset ``slug`` into ``dest`` with the official client.

    Returns the files and the API base URL they came from (e.g. ``https://api.kaggle.com``).
    """
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
    return sorted(p for p in dest.rglob("*") if p.is_file()), api.pipekit_endpoint
