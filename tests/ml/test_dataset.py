"""Dataset download through the real kaggle client against the stand-in; manifest, cache, fallback, validation."""

from __future__ import annotations

import json
import tomllib
from importlib.metadata import version
from pathlib import Path

import pandas as pd
import pytest

from pipekit.errors import DatasetError, StorageError, ValidationError
from pipekit.io.atomic import sha256_file
from pipekit.ml import (
    KaggleAuth,
    KaggleCredentialsError,
    KaggleUnavailableError,
    _kaggle,
    check_iris_csv,
    download_dataset,
    read_manifest,
    validate_iris_csv,
)
from pipekit.ml._kaggle import KAGGLE_VERSION_RANGE, check_kaggle_version
from pipekit.ml._standin import DEFAULT_KEY, DEFAULT_USERNAME, KaggleStandIn
from pipekit.ml.iris import COLUMNS, ROWS, SPECIES, iris_csv_bytes, iris_frame

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def _kaggle_in_verified_range() -> bool:
    try:
        check_kaggle_version(version("kaggle"))
    except DatasetError:
        return False
    return True


def test_iris_frame_has_the_kaggle_layout() -> None:
    frame = iris_frame()
    assert tuple(frame.columns) == COLUMNS
    assert len(frame) == ROWS
    assert frame["Species"].value_counts().to_dict() == dict.fromkeys(SPECIES, 50)
    assert iris_csv_bytes().startswith(
        b"Id,SepalLengthCm,SepalWidthCm,PetalLengthCm,PetalWidthCm,Species\n1,5.1,3.5"
    )


def test_download_through_kaggle_client_writes_manifest_then_uses_cache(
    standin: KaggleStandIn, standin_credentials: None, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    manifest = download_dataset(data_dir)
    assert not manifest.cached and not manifest.fallback
    # Both of the real client's requests reached the stand-in, authenticated, through KAGGLE_API_ENVIRONMENT=TEST.
    assert standin.stats.requests == [
        "POST /api/v1/datasets.DatasetApiService/DownloadDataset",
        "GET /storage/saurabh00007/iriscsv/archive.zip",
    ]
    stats = standin.stats
    assert (stats.api_calls, stats.archive_downloads, stats.rejected_auth) == (1, 1, 0)
    assert manifest.endpoint == standin.endpoint == "http://localhost:7777"
    csv = data_dir / "Iris.csv"
    assert csv.read_bytes() == iris_csv_bytes()
    (entry,) = manifest.files
    assert (entry.name, entry.size, entry.sha256) == ("Iris.csv", csv.stat().st_size, sha256_file(csv))
    stored = json.loads((data_dir / "manifest.json").read_text())
    assert stored["slug"] == "saurabh00007/iriscsv" and stored["source"] == "kaggle:saurabh00007/iriscsv"
    assert stored["kaggle_version"] == version("kaggle")
    assert stored["endpoint"] == standin.endpoint
    assert stored["credential_source"] == "environment (KAGGLE_USERNAME/KAGGLE_KEY)"
    assert DEFAULT_KEY not in json.dumps(stored)
    assert sorted(p.name for p in data_dir.iterdir()) == ["Iris.csv", "manifest.json"]  # no zip, no staging

    again = download_dataset(data_dir)
    assert again.cached and again.files == manifest.files
    assert standin.stats.api_calls == 1 and standin.stats.archive_downloads == 1

    download_dataset(data_dir, force=True)
    assert standin.stats.archive_downloads == 2


def test_changed_file_is_downloaded_again(
    standin: KaggleStandIn, standin_credentials: None, tmp_path: Path
) -> None:
    download_dataset(tmp_path)
    (tmp_path / "Iris.csv").write_text("Id,oops\n1,2\n")
    manifest = download_dataset(tmp_path)
    assert not manifest.cached
    assert standin.stats.archive_downloads == 2
    assert (tmp_path / "Iris.csv").read_bytes() == iris_csv_bytes()


def test_unreadable_manifest_means_download_again(
    standin: KaggleStandIn, standin_credentials: None, tmp_path: Path
) -> None:
    download_dataset(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    assert not download_dataset(tmp_path).cached
    assert read_manifest(tmp_path) is not None


def test_kaggle_json_credentials(standin: KaggleStandIn, kaggle_env: Path, tmp_path: Path) -> None:
    (kaggle_env / "kaggle.json").write_text(json.dumps({"username": DEFAULT_USERNAME, "key": DEFAULT_KEY}))
    (kaggle_env / "kaggle.json").chmod(0o600)
    manifest = download_dataset(tmp_path / "data")
    assert manifest.credential_source == "kaggle config file"
    assert standin.stats.archive_downloads == 1


def test_explicit_credentials_and_masked_repr(
    standin: KaggleStandIn, kaggle_env: Path, tmp_path: Path
) -> None:
    auth = KaggleAuth(DEFAULT_USERNAME, DEFAULT_KEY)
    assert DEFAULT_KEY not in repr(auth)
    manifest = download_dataset(tmp_path, auth=auth)
    assert manifest.credential_source.startswith("explicit")


def test_missing_credentials_say_what_to_set(
    standin: KaggleStandIn, kaggle_env: Path, tmp_path: Path
) -> None:
    with pytest.raises(KaggleCredentialsError) as info:
        download_dataset(tmp_path / "data")
    assert "KAGGLE_USERNAME and KAGGLE_KEY" in info.value.hint
    assert "kaggle.json" in info.value.hint and "offline_fallback=True" in info.value.hint
    assert standin.stats.api_calls == 0
    assert list((tmp_path / "data").iterdir()) == []  # staging folder removed, nothing half-written


def test_rejected_credentials(standin: KaggleStandIn, kaggle_env: Path, tmp_path: Path) -> None:
    with pytest.raises(KaggleCredentialsError, match="rejected the credentials \\(HTTP 401\\)") as info:
        download_dataset(tmp_path, auth=KaggleAuth(DEFAULT_USERNAME, "wrong-key-123"))
    assert "wrong-key-123" not in str(info.value)
    assert standin.stats.rejected_auth == 1


def test_unknown_dataset(standin: KaggleStandIn, standin_credentials: None, tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="not found \\(HTTP 404\\)"):
        download_dataset(tmp_path, "nobody/nothing")


def test_unreachable_api_is_retryable_and_fallback_is_opt_in(
    standin_credentials: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Simulate no network with requests' own setting: send the client's traffic to a proxy on a port
    # nothing listens on (9 = discard).
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    with pytest.raises(KaggleUnavailableError, match="Cannot reach the Kaggle API") as info:
        download_dataset(tmp_path / "a")
    assert info.value.retryable

    manifest = download_dataset(tmp_path / "b", offline_fallback=True)
    assert manifest.fallback and manifest.fallback_reason.startswith("Cannot reach the Kaggle API")


def test_offline_fallback_recorded_and_not_reused_without_opt_in(
    standin: KaggleStandIn, kaggle_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = download_dataset(tmp_path, offline_fallback=True)
    assert manifest.fallback and manifest.source.startswith("scikit-learn")
    assert manifest.fallback_reason == "No Kaggle credentials found."
    assert manifest.endpoint is None and manifest.kaggle_version is None
    validate_iris_csv(tmp_path / "Iris.csv")
    assert download_dataset(tmp_path, offline_fallback=True).cached

    # Once credentials exist and the user no longer opts in, the real dataset replaces the fallback copy.
    monkeypatch.setenv("KAGGLE_USERNAME", DEFAULT_USERNAME)
    monkeypatch.setenv("KAGGLE_KEY", DEFAULT_KEY)
    real = download_dataset(tmp_path)
    assert not real.fallback and real.source == "kaggle:saurabh00007/iriscsv"
    assert real.endpoint == standin.endpoint
    assert standin.stats.archive_downloads == 1


def test_port_in_use_is_a_clear_error(standin: KaggleStandIn) -> None:
    port = standin.bound_port
    with pytest.raises(DatasetError, match=rf"127\.0\.0\.1:{port} is already in use") as info:
        KaggleStandIn(port=port).start()
    assert "--port 0" in info.value.hint


def test_standin_as_a_proxy_serves_only_the_test_endpoint(standin: KaggleStandIn) -> None:
    import requests

    proxies = {"http": standin.proxy_url}
    ok = requests.get(f"{standin.endpoint}/storage/saurabh00007/iriscsv/archive.zip", proxies=proxies, timeout=10)
    assert ok.status_code == 200 and ok.content[:2] == b"PK"
    other = requests.get("http://example.invalid/storage/x/archive.zip", proxies=proxies, timeout=10)
    assert other.status_code == 502 and standin.endpoint in other.json()["message"]


def test_standin_command_reports_its_proxy_on_a_free_port(tmp_path: Path) -> None:
    import subprocess
    import sys
    import time

    import requests

    ready = tmp_path / "ready"
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipekit.ml._standin", "--port", "0", "--ready-file", str(ready)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not ready.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        proxy = ready.read_text().strip()
        assert proxy.startswith("http://127.0.0.1:") and not proxy.endswith(":7777")
        reply = requests.get(
            "http://localhost:7777/storage/saurabh00007/iriscsv/archive.zip", proxies={"http": proxy}, timeout=10
        )
        assert reply.status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_unknown_api_environment_is_a_clear_error(
    standin: KaggleStandIn, standin_credentials: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KAGGLE_API_ENVIRONMENT", "NOWHERE")
    with pytest.raises(DatasetError, match="KAGGLE_API_ENVIRONMENT='NOWHERE' is not an environment") as info:
        download_dataset(tmp_path)
    assert "TEST" in info.value.hint
    assert standin.stats.api_calls == 0


# ------------------------------------------------------------------ the kaggle releases pipekit supports


def test_ml_extra_pins_the_kaggle_range_the_shim_is_verified_for() -> None:
    ml_extra = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]["optional-dependencies"]["ml"]
    assert f"kaggle{KAGGLE_VERSION_RANGE}" in ml_extra
    assert _kaggle_in_verified_range(), f"kaggle {version('kaggle')} is outside {KAGGLE_VERSION_RANGE}"


@pytest.mark.parametrize("release", ["2.2.4", "2.2.99", "2.2.10.post1"])
def test_kaggle_releases_in_the_range_are_accepted(release: str) -> None:
    check_kaggle_version(release)


@pytest.mark.parametrize("release", ["1.6.17", "2.0.2", "2.2.3", "2.3", "2.3.0rc1", "3.0.0"])
def test_kaggle_releases_outside_the_range_are_refused(release: str) -> None:
    with pytest.raises(DatasetError, match=f"kaggle {release} is not supported") as info:
        check_kaggle_version(release)
    assert f"kaggle{KAGGLE_VERSION_RANGE}" in info.value.hint


def test_unsupported_kaggle_is_refused_before_it_is_imported_or_called(
    standin: KaggleStandIn, standin_credentials: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_kaggle, "version", lambda name: "2.2.3")
    with pytest.raises(DatasetError, match=r"kaggle 2\.2\.3 is not supported"):
        # Not a reason to fall back: the install needs fixing.
        download_dataset(tmp_path / "data", offline_fallback=True)
    assert standin.stats.api_calls == 0


@pytest.mark.skipif(
    not _kaggle_in_verified_range(),
    reason=f"documents kaggle{KAGGLE_VERSION_RANGE}, whose KaggleApi takes the endpoint from CLI flags only",
)
def test_kaggle_api_alone_ignores_kaggle_api_environment(kaggle_env: Path) -> None:
    """Why pipekit builds the kagglesdk client itself: for kaggle>=2.2.4,<2.3, KaggleApi sends TEST to PROD.

    If a release in the range starts honouring KAGGLE_API_ENVIRONMENT, this fails: drop the shim in _kaggle.py.
    """
    kaggle_api_cls = _kaggle._import_kaggle_api()
    stock = kaggle_api_cls.build_kaggle_client_with_params(args=[])
    # PROD, although KAGGLE_API_ENVIRONMENT=TEST is set.
    assert stock.http_client().get_non_api_endpoint() == "https://www.kaggle.com"


# ------------------------------------------------------------------------------------------ validation


def _write(tmp_path: Path, frame: pd.DataFrame) -> Path:
    path = tmp_path / "Iris.csv"
    frame.to_csv(path, index=False)
    return path


def test_valid_csv_passes(tmp_path: Path) -> None:
    report = validate_iris_csv(_write(tmp_path, iris_frame()))
    assert report.ok and report.rows == 150


def test_invalid_csv_reports_every_problem_and_leaves_file_untouched(tmp_path: Path) -> None:
    frame = iris_frame().drop(columns=["PetalWidthCm"]).head(149)
    frame["SepalLengthCm"] = frame["SepalLengthCm"].astype(object)
    frame.loc[3, "SepalLengthCm"] = "n/a"
    frame.loc[5, "SepalWidthCm"] = -1.0
    frame.loc[7, "Species"] = "Iris-unknown"
    frame["extra"] = 1
    path = _write(tmp_path, frame)
    before = sha256_file(path)

    report = check_iris_csv(path)
    checks = [(p.check, p.column) for p in report.problems]
    assert ("columns", None) in checks  # missing PetalWidthCm and unexpected "extra": two entries
    assert sum(1 for c in checks if c[0] == "columns") == 2
    assert ("row_count", None) in checks
    assert ("numeric", "SepalLengthCm") in checks
    assert ("range", "SepalWidthCm") in checks
    assert ("labels", "Species") in checks
    numeric = next(p for p in report.problems if p.check == "numeric")
    assert numeric.rows == (5,)  # CSV line 5 = data row index 3

    with pytest.raises(ValidationError, match="PetalWidthCm") as info:
        validate_iris_csv(path)
    assert info.value.report == report
    assert sha256_file(path) == before


def test_unreadable_csv(tmp_path: Path) -> None:
    path = tmp_path / "Iris.csv"
    path.write_bytes(b"")
    with pytest.raises(ValidationError, match="not a readable CSV"):
        validate_iris_csv(path)


def test_unwritable_data_dir_is_a_storage_error(standin_credentials: None, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")  # a file where the data folder should be (root ignores chmod, this it cannot)
    with pytest.raises(StorageError, match="Cannot write to") as info:
        download_dataset(blocker / "data")
    assert "PIPEKIT_ML_DATA_DIR" in info.value.hint
