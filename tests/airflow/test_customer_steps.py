"""The job's steps without Airflow: config precedence, run_once, retries and failures are idempotent, poison files rejected."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipekit.cli import app
from pipekit.customer_pipeline import (
    CustomerPipelineConfig,
    clean,
    flag_future,
    ingest,
    publish,
    run_once,
    validate,
)
from pipekit.errors import ConfigError, InputError, StorageError, ValidationError
from pipekit.io.ingest import Manifest

pytest.importorskip("great_expectations")

CSV = (
    "id,name,email,timestamp\n"
    '1,"smith, john",John.Smith@Example.com,2030-01-01T00:00:00+02:00\n'
    '2,"ann\nmarie",ann@example.org,2020-01-01\n'
    '2,"ann\nmarie",ann@example.org,2020-01-01\n'
    "3,,nobody@example.org,2020-01-01\n"
)
NOW = "2026-06-15T12:00:00Z"


def _config(base: Path, **extra) -> CustomerPipelineConfig:
    return CustomerPipelineConfig.resolve({"base_dir": str(base), "now": NOW, **extra}, env={})


def test_config_precedence_params_then_variable_then_env_then_default(tmp_path):
    env = {"AIRFLOW_HOME": str(tmp_path / "af"), "PIPEKIT_CUSTOMER_PATTERN": "env_*.csv",
           "PIPEKIT_CUSTOMER_LANDING_DIR": "/env/in", "PIPEKIT_CUSTOMER_OUTPUT_DIR": "/env/out"}
    variables = {"pipekit_customer_landing_dir": "/var/in"}
    cfg = CustomerPipelineConfig.resolve({"landing_dir": None, "pattern": "p_*.csv"}, variable=variables.get, env=env)
    assert cfg.pattern == "p_*.csv"
    assert cfg.landing_dir == Path("/var/in")
    assert cfg.output_dir == Path("/env/out")
    assert cfg.backup_dir == tmp_path / "af" / "pipekit" / "customers" / "backups"
    assert cfg.now is None and cfg.remove_source is True
    assert CustomerPipelineConfig.resolve({"now": "2026-01-01"}, env=env).now.isoformat() == "2026-01-01T00:00:00+00:00"
    with pytest.raises(ConfigError, match="now="):
        CustomerPipelineConfig.resolve({"now": "soon"}, env=env)
    with pytest.raises(ConfigError, match="bad_rows"):
        CustomerPipelineConfig.resolve({"bad_rows": "ignore"}, env=env)
    assert json.dumps(cfg.to_dict())


def test_run_once_completes_then_skips_the_same_bytes(tmp_path):
    cfg = _config(tmp_path)
    assert run_once(cfg)["status"] == "no_file"
    cfg.landing_dir.mkdir(parents=True)
    (cfg.landing_dir / "drop.csv").write_text(CSV)
    report = run_once(cfg, run_id="r1")
    assert report["status"] == "completed"
    assert report["future_rows"] == {"shell_script": 1, "core": 1, "agree": True}
    assert report["counts"]["dropped_duplicate"] == 1 and report["counts"]["dropped_null"] == 1
    cleaned = Path(report["outputs"]["cleaned_csv"]).read_text()
    assert "john.smith@" not in cleaned.lower() and "Smith, John" in cleaned
    assert not (cfg.landing_dir / "drop.csv").exists()
    (cfg.landing_dir / "again.csv").write_text(CSV)
    assert run_once(cfg, run_id="r2")["status"] == "duplicate"
    assert [e.event for e in Manifest(cfg.manifest_path)] == ["ingested", "completed", "skipped_duplicate"]


def test_retried_steps_reuse_their_outputs_and_a_failed_publish_keeps_the_landing_file(tmp_path):
    cfg = _config(tmp_path)
    cfg.landing_dir.mkdir(parents=True)
    landing = cfg.landing_dir / "drop.csv"
    landing.write_text(CSV)
    first = ingest(str(landing), cfg, run_id="r1")
    assert ingest(str(landing), cfg, run_id="r1") == first, "a retried ingest reuses its entry and backup"
    validated = validate(first, cfg)
    cleaned = clean(first, cfg)
    csv_bytes = Path(cleaned["cleaned_csv"]).read_bytes()
    assert clean(first, cfg)["cleaned_csv"] == cleaned["cleaned_csv"]
    assert Path(cleaned["cleaned_csv"]).read_bytes() == csv_bytes, "same input + same now -> same output"
    count = flag_future(cleaned)
    # The backup is damaged before publish: nothing may be deleted, and the task fails clearly.
    backup = Path(first["entry"]["backup_path"])
    backup.write_text("damaged")
    with pytest.raises(StorageError, match="backup"):
        publish(first, validated, cleaned, count, cfg)
    assert landing.read_text() == CSV
    assert [e.event for e in Manifest(cfg.manifest_path)] == ["ingested"]
    # Re-running the ingest (same run) notices the bad backup, takes a new one; publish then succeeds.
    again = ingest(str(landing), cfg, run_id="r1")
    assert again["entry"]["backup_path"] != str(backup)
    publish(again, validated, cleaned, count, cfg)
    assert not landing.exists()
    assert [e.event for e in Manifest(cfg.manifest_path)][-1] == "completed"


def test_cli_run_customer(tmp_path):
    runner = CliRunner()
    base = tmp_path / "b"
    (base / "landing").mkdir(parents=True)
    empty = runner.invoke(app, ["airflow", "run-customer", "--base-dir", str(base)])
    assert empty.exit_code == 0 and "no file matching" in empty.output
    (base / "landing" / "bad.csv").write_text("id,name,timestamp\n1,a,2020-01-01\n")
    bad = runner.invoke(app, ["airflow", "run-customer", "--base-dir", str(base), "--now", NOW])
    assert bad.exit_code == 1
    assert "required columns missing: email" in " ".join(bad.output.split())
    assert not (base / "landing" / "bad.csv").exists(), "a poison file does not stay in the way"
    assert len(list((base / "rejected").glob("bad.csv.*Z"))) == 1
    (base / "landing" / "good.csv").write_text(CSV)
    ok = runner.invoke(app, ["airflow", "run-customer", "--base-dir", str(base), "--now", NOW, "--json"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.output)["status"] == "completed"


def test_validation_error_carries_the_quality_result(tmp_path):
    cfg = _config(tmp_path)
    cfg.landing_dir.mkdir(parents=True)
    (cfg.landing_dir / "x.csv").write_text("id,email\n1,a@b.co\n")
    ingested = ingest(str(cfg.landing_dir / "x.csv"), cfg, run_id="r")
    with pytest.raises(ValidationError) as err:
        validate(ingested, cfg)
    assert err.value.report.missing_columns == ("name", "timestamp")
    assert "x.csv (delivered as" in str(err.value)


def test_poison_file_is_rejected_once_with_a_masked_reason_and_a_retry_adds_nothing(tmp_path):
    cfg = _config(tmp_path)
    cfg.landing_dir.mkdir(parents=True)
    landing = cfg.landing_dir / "bad.csv"
    landing.write_text('id,name,timestamp,contact\n1,"Doe, Jane",2024-01-01,jane.secret@example.com\n2,,soon,x\n')
    ingested = ingest(str(landing), cfg, run_id="r1")
    with pytest.raises(ValidationError, match="required columns missing: email") as err:
        validate(ingested, cfg)
    assert "rejected: bad.csv moved to" in str(err.value)
    (moved,) = cfg.rejected_dir.glob("bad.csv.*Z")
    reason_text = moved.with_name(moved.name + ".reason.json").read_text()
    reason = json.loads(reason_text)
    assert (reason["gate"], reason["missing_columns"], reason["stage"]) == ("FAIL", ["email"], "validate")
    assert {p["column"] for p in reason["problems"]} == {"name", "timestamp"}
    assert "jane.secret" not in reason_text and "Doe" not in reason_text
    assert not landing.exists()
    events = [e.event for e in Manifest(cfg.manifest_path)]
    assert events == ["ingested", "rejected"]

    # The task is retried (cleared): same failure, no second reason file, no second manifest line.
    with pytest.raises(ValidationError):
        validate(ingested, cfg)
    assert len(list(cfg.rejected_dir.iterdir())) == 2
    assert [e.event for e in Manifest(cfg.manifest_path)] == events
    # The same bytes delivered again: refused at ingest, moved aside, no backup or manifest line.
    landing.write_text(moved.read_text())
    with pytest.raises(ValidationError, match="was rejected before"):
        ingest(str(landing), cfg, run_id="r2")
    assert not landing.exists() and len(list(cfg.rejected_dir.glob("bad.csv.*Z"))) == 2
    assert [e.event for e in Manifest(cfg.manifest_path)] == events
    assert len(list(cfg.backup_dir.glob("*.csv"))) == 1


def test_unparsable_file_is_rejected(tmp_path):
    cfg = _config(tmp_path)
    cfg.landing_dir.mkdir(parents=True)
    landing = cfg.landing_dir / "latin.csv"
    landing.write_bytes("id,name,email,timestamp\n1,Jos\xe9,j@x.com,2024-01-01\n".encode("latin-1"))
    ingested = ingest(str(landing), cfg, run_id="r1")
    with pytest.raises(InputError, match="not valid utf-8"):
        validate(ingested, cfg)
    (moved,) = cfg.rejected_dir.glob("latin.csv.*Z")
    assert json.loads(moved.with_name(moved.name + ".reason.json").read_text())["error"] == "InputError"
    assert [e.event for e in Manifest(cfg.manifest_path)] == ["ingested", "rejected"]


def test_file_not_countable_as_csv_is_rejected_at_ingest(tmp_path):
    cfg = _config(tmp_path)
    cfg.landing_dir.mkdir(parents=True)
    landing = cfg.landing_dir / "huge_field.csv"
    landing.write_text('id,name,email,timestamp\n1,"' + "x" * 200_000 + '",a@b.co,2024-01-01\n')
    with pytest.raises(InputError, match="not readable as CSV"):
        ingest(str(landing), cfg, run_id="r1")
    assert not landing.exists() and len(list(cfg.rejected_dir.glob("huge_field.csv.*Z"))) == 1
    (entry,) = Manifest(cfg.manifest_path)
    assert (entry.event, entry.row_count, entry.backup_path) == ("rejected", -1, None)
