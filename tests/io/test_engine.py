"""Streaming engine: same result as the in-memory pipeline, tricky CSV, atomic outputs, untouched input."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pipekit
from pipekit.core import CleaningConfig, clean_dataframe
from pipekit.errors import ConfigError, InputError, ValidationError
from pipekit.io import _run, engine
from pipekit.io._dedup import RowHasher, SeenRows
from pipekit.io.atomic import sha256_file
from pipekit.io.engine import clean_file, output_paths

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _rows(table: pd.DataFrame) -> list[tuple[object, ...]]:
    """Rows as plain tuples with None for missing values (dtype-independent comparison)."""
    frame = table.astype(object).where(table.notna(), None)
    return [tuple(r) for r in frame.itertuples(index=False, name=None)]


def _reference(path: Path, **kwargs: object) -> tuple[pd.DataFrame, dict[str, int]]:
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    out, report = clean_dataframe(frame, now=NOW, **kwargs)  # type: ignore[arg-type]
    return out, report.counts


def _write(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return path


# --- equivalence with the in-memory path ----------------------------------------------------------

_cell = st.text(alphabet=list("ab AB,\"'\n-éÉ@.xyz"), max_size=6)
_ts = st.sampled_from(
    ["2020-01-01", "2030-05-05T10:00:00Z", "2024-02-30 10:00", "nope", "", " 2021-03-04 05:06:07+02:00"]
)
_row = st.tuples(st.sampled_from(["1", "2", "007", "", " 3 "]), _cell, _cell, _ts, _cell)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(_row, max_size=40))
def test_streaming_equals_in_memory(tmp_path: Path, rows: list[tuple[str, ...]]) -> None:
    frame = pd.DataFrame(rows, columns=["id", "name", "email", "timestamp", "note"], dtype=object)
    src = tmp_path / "random.csv"
    frame.to_csv(src, index=False)
    expected, counts = _reference(src)
    for batch_rows in (1, 7, 65536):
        out_dir = tmp_path / f"out{batch_rows}"
        report = clean_file(src, out_dir, now=NOW, batch_rows=batch_rows)
        got = pq.read_table(output_paths(src, out_dir)["parquet"]).to_pandas()
        assert _rows(got) == _rows(expected), f"batch_rows={batch_rows}"
        assert report.counts == counts
        assert report.rows_read == len(frame)
        assert report.rows_written == len(expected)


def test_sample_file_matches_in_memory_with_polars_hash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_run, "_POLARS_MIN_BYTES", 0)  # use the polars row hash even on a small file
    src = pipekit.sample.write_customers_csv(tmp_path / "customers.csv", 5000, seed=7)
    expected, counts = _reference(src)
    report = clean_file(src, tmp_path / "out", now=NOW, batch_rows=999)
    assert report.settings["row_hash"] == "polars"
    assert report.counts == counts
    assert report.counts["dropped_duplicate"] > 0 and report.counts["dropped_null"] > 0
    got = pq.read_table(output_paths(src, tmp_path / "out")["parquet"]).to_pandas()
    assert _rows(got) == _rows(expected)
    csv_back = pd.read_csv(output_paths(src, tmp_path / "out")["csv"], dtype=str, keep_default_na=False)
    assert csv_back["id"].str.len().eq(8).all()  # "00000001" stays a string with its zeros


def test_dedup_keys_keep_first(tmp_path: Path) -> None:
    src = _write(
        tmp_path / "c.csv",
        "id,name,email,timestamp\n1,a,A@x.io,2020-01-01\n2,b,a@x.io ,2020-01-02\n3,c,c@x.io,2020-01-03\n",
    )
    config = CleaningConfig(dedup_keys=("email",))
    report = clean_file(src, tmp_path / "o", now=NOW, config=config, batch_rows=1)
    got = pq.read_table(output_paths(src, tmp_path / "o")["parquet"]).to_pydict()
    assert got["id"] == ["1", "3"] and report.counts["dropped_duplicate"] == 1


def test_row_hash_engines_agree_on_equality() -> None:
    table = pa.table({"a": ["x", "x", "y", None, ""], "b": ["1", "1", "1", "", None]})
    for hasher in (RowHasher(use_polars=False), RowHasher(use_polars=True)):
        h = hasher.hash_rows(table)
        assert h.shape == (5, 2) and h.dtype == np.uint64
        assert (h[0] == h[1]).all()
        assert len({tuple(row) for row in h.tolist()}) == 4  # rows 3 and 4 differ only by null vs "" position


def test_row_hashes_are_keyed_per_run() -> None:
    # A fixed seed let crafted rows collide on purpose; each run now draws its own key.
    table = pa.table({"a": ["x", "y"]})
    for use_polars in (False, True):
        first, second = RowHasher(use_polars=use_polars), RowHasher(use_polars=use_polars)
        assert not (first.hash_rows(table) == second.hash_rows(table)).any()
        same = RowHasher(seed=7, use_polars=use_polars).hash_rows(table)
        assert (same == RowHasher(seed=7, use_polars=use_polars).hash_rows(table)).all()


def _pairs(rng: np.random.Generator, n: int, hi_values: int, lo_values: int) -> np.ndarray:
    return np.stack([rng.integers(0, hi_values, size=n), rng.integers(0, lo_values, size=n)], axis=1).astype(
        np.uint64
    )


@pytest.mark.parametrize("hi_values", [3, 400])
def test_seen_rows_matches_a_set(hi_values: int) -> None:
    # hi_values=3: most pairs share their high half with another, so only the low half tells them apart
    # (a colliding 64-bit hash must never drop a row).
    rng = np.random.default_rng(1)
    seen, reference = SeenRows(), set()
    for _ in range(50):
        batch = _pairs(rng, int(rng.integers(0, 60)), hi_values, 40)
        if hi_values == 3:
            batch[:, 0] <<= np.uint64(62)  # spread over the buckets (top bits)
        keep = seen.first_new(batch)
        expected = []
        for i, h in enumerate(map(tuple, batch.tolist())):
            if h not in reference:
                reference.add(h)
                expected.append(i)
        assert keep.tolist() == expected
    assert len(seen) == len(reference)
    assert seen.nbytes == 12 * len(reference)


def test_seen_rows_stays_exact_as_its_filter_grows() -> None:
    # 150k distinct pairs in batches of 5k with repeats across and within batches: runs merge many
    # times in every bucket on the way, and no row is ever dropped or kept twice.
    rng = np.random.default_rng(3)
    pool = rng.integers(0, 2**63, size=(150_000, 2), dtype=np.uint64) * np.uint64(2)
    seen, reference = SeenRows(), set()
    for _ in range(40):
        batch = pool[rng.integers(0, len(pool), size=5_000)]
        keep = seen.first_new(batch)
        expected = []
        for i, h in enumerate(map(tuple, batch.tolist())):
            if h not in reference:
                reference.add(h)
                expected.append(i)
        assert keep.tolist() == expected
    assert len(seen) == len(reference) > 65_536
    assert seen.nbytes == 12 * len(reference)


def test_two_rows_whose_64_bit_hashes_collide_are_both_kept() -> None:
    seen = SeenRows()
    assert seen.first_new(np.array([[5, 1]], dtype=np.uint64)).tolist() == [0]
    assert seen.first_new(np.array([[5, 2], [5, 1], [5, 2]], dtype=np.uint64)).tolist() == [0]
    assert len(seen) == 2


# --- tricky but valid CSV ---------------------------------------------------------------------------


def test_bom_crlf_and_quoted_fields(tmp_path: Path) -> None:
    text = (
        "\ufeffid,name,email,timestamp,note\r\n"
        '1,"o\'brien, mary",MARY@X.IO,2020-01-01,"says ""hi"",\r\nthen leaves"\r\n'
        "2,  jean-luc  picard ,jl@x.io,2031-01-01T00:00:00Z,\r\n"
    )
    src = _write(tmp_path / "tricky.csv", text)
    report = clean_file(src, tmp_path / "o", now=NOW)
    got = pq.read_table(output_paths(src, tmp_path / "o")["parquet"]).to_pydict()
    assert list(got) == ["id", "name", "email", "timestamp", "note", "is_future"]
    assert got["name"] == ["O'Brien, Mary", "Jean-Luc Picard"]
    assert got["email"] == ["m***@x.io", "j***@x.io"]
    assert got["note"][0] == 'says "hi",\r\nthen leaves'
    assert got["is_future"] == [False, True]
    assert report.rows_read == 2


def test_header_only_is_valid_and_writes_empty_outputs(tmp_path: Path) -> None:
    src = _write(tmp_path / "h.csv", "id,name,email,timestamp\n")
    report = clean_file(src, tmp_path / "o", now=NOW)
    paths = output_paths(src, tmp_path / "o")
    assert report.rows_read == 0 and report.rows_written == 0
    assert pq.read_table(paths["parquet"]).num_rows == 0
    assert paths["csv"].read_text().splitlines()[0].replace('"', "") == "id,name,email,timestamp,is_future"
    assert json.loads(paths["report"].read_text())["rows_written"] == 0


def test_other_encoding_with_option(tmp_path: Path) -> None:
    src = _write(
        tmp_path / "l.csv", "id,name,email,timestamp\n1,café olé,a@b.io,2020-01-01\n".encode("latin-1")
    )
    with pytest.raises(InputError, match=r"line 2 .*utf-8") as info:
        clean_file(src, tmp_path / "o", now=NOW)
    assert "--encoding" in (info.value.hint or "")
    clean_file(src, tmp_path / "o", now=NOW, encoding="latin-1")
    assert pq.read_table(output_paths(src, tmp_path / "o")["parquet"]).column("name").to_pylist() == [
        "Café Olé"
    ]


# --- bad input ---------------------------------------------------------------------------------------


def test_empty_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="empty"):
        clean_file(_write(tmp_path / "e.csv", ""), tmp_path / "o")


def test_missing_required_columns_lists_them(tmp_path: Path) -> None:
    src = _write(tmp_path / "m.csv", "id,fullname\n1,x\n")
    with pytest.raises(ValidationError, match="name, email, timestamp") as info:
        clean_file(src, tmp_path / "o")
    assert info.value.report.missing_columns == ("name", "email", "timestamp")
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_wrong_field_count_names_the_line(tmp_path: Path) -> None:
    src = _write(tmp_path / "w.csv", 'id,name,email,timestamp\n1,"a\nb",a@b.io,2020-01-01\n2,b,c,d,e\n')
    with pytest.raises(InputError, match=r"line 4 has 5 field\(s\), expected 4"):
        clean_file(src, tmp_path / "o")
    assert not list((tmp_path / "o").glob("*"))


def test_quarantine_keeps_raw_rows_private_and_out_of_the_published_folder(tmp_path: Path) -> None:
    src = _write(
        tmp_path / "q.csv",
        "id,name,email,timestamp\n1,a,a@b.io,2020-01-01\n2,b\n3,c,c@b.io,2020-01-01,extra\n4,d,d@b.io,2020-01-02\n",
    )
    private = tmp_path / "private"
    report = clean_file(src, tmp_path / "o", now=NOW, bad_rows="quarantine", quarantine_dir=private)
    assert report.quarantined == 2 and report.rows_written == 2
    path = Path(report.quarantine["path"])
    assert path == engine.quarantine_path(src, private, report.input["sha256"]) and path.parent == private
    # The rows cannot be split into columns, so they cannot be masked: raw, but owner-only, and not published.
    assert path.read_text().splitlines() == ["id,name,email,timestamp", "2,b", "3,c,c@b.io,2020-01-01,extra"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(private.stat().st_mode) == 0o700
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == [
        "q_cleaned.csv",
        "q_cleaned.parquet",
        "q_report.json",
    ]
    assert str(path) not in report.outputs.values()
    assert report.quarantine["first_rows"] == [
        {"line": 3, "record": 3, "fields": 2},
        {"line": 4, "record": 4, "fields": 5},
    ]
    assert report.quarantine["expected_fields"] == 4
    on_disk = json.loads(output_paths(src, tmp_path / "o")["report"].read_text())
    assert on_disk["quarantine"]["path"] == str(path) and on_disk["quarantined"] == 2


def test_quarantine_defaults_to_the_private_state_folder(tmp_path: Path, private_state_home: Path) -> None:
    src = _write(tmp_path / "q.csv", "id,name,email,timestamp\n1,a,a@b.io,2020-01-01\n2,b\n")
    report = clean_file(src, tmp_path / "o", now=NOW, bad_rows="quarantine")
    assert engine.default_quarantine_dir() == private_state_home / "pipekit" / "quarantine"
    assert Path(report.quarantine["path"]).parent == engine.default_quarantine_dir()


def test_a_rerun_removes_the_raw_quarantine_file_older_versions_published(tmp_path: Path) -> None:
    src = _write(tmp_path / "q.csv", "id,name,email,timestamp\n1,a,a@b.io,2020-01-01\n")
    (tmp_path / "o").mkdir()
    legacy = _write(tmp_path / "o" / "q_quarantine.csv", "id,name,email,timestamp\n2,b,raw@secret.io\n")
    report = clean_file(src, tmp_path / "o", now=NOW, bad_rows="quarantine", quarantine_dir=tmp_path / "p")
    assert not legacy.exists() and report.quarantine == {} and "quarantine" not in report.to_dict()
    assert not (tmp_path / "p").exists(), "no private folder is made when nothing is quarantined"


@pytest.mark.parametrize("inside", [".", "sub/private"])
def test_a_quarantine_folder_inside_the_output_is_refused(tmp_path: Path, inside: str) -> None:
    src = _write(tmp_path / "q.csv", "id,name,email,timestamp\n1,a,a@b.io,2020-01-01\n")
    with pytest.raises(ConfigError, match="inside the output folder") as info:
        clean_file(src, tmp_path / "o", bad_rows="quarantine", quarantine_dir=tmp_path / "o" / inside)
    assert "--quarantine-dir" in (info.value.hint or "")
    assert not (tmp_path / "o").exists()


def test_malformed_row_error_names_line_and_columns_but_no_value(tmp_path: Path) -> None:
    src = _write(
        tmp_path / "w.csv", "id,name,email,timestamp\n1,a,a@b.io,2020-01-01\n2,Jane Roe,jane.roe@secret.io\n"
    )
    with pytest.raises(InputError) as info:
        clean_file(src, tmp_path / "o")
    text = str(info.value)
    assert "line 3 has 3 field(s), expected 4 (id, name, email, timestamp)" in text
    assert "jane" not in text.lower() and "secret" not in text and "Roe" not in text
    with pytest.raises(InputError) as info:  # the same for validate/scan-pii's reader
        list(engine.iter_batches(src))
    assert "line 3 has 3 field(s)" in str(info.value) and "jane" not in str(info.value).lower()


def test_arrow_messages_lose_the_row_they_quote() -> None:
    from pipekit.io._read import scrub

    assert scrub("CSV parse error: Expected 4 columns, got 3: 2,b,jane@x.io") == (
        "CSV parse error: Expected 4 columns, got 3 (values not shown)"
    )
    assert "jane" not in scrub("conversion error to int64: invalid value 'jane@x.io'")


def test_hash_policy_without_key_fails_before_writing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PIPEKIT_MASK_KEY", raising=False)
    policy = pipekit.MaskingPolicy.from_dict({"columns": {"email": {"strategy": "hash"}}})
    src = _write(tmp_path / "k.csv", "id,name,email,timestamp\n1,a,a@b.io,2020-01-01\n")
    with pytest.raises(ConfigError, match="PIPEKIT_MASK_KEY"):
        clean_file(src, tmp_path / "o", policy=policy)
    report = clean_file(src, tmp_path / "o", policy=policy, key=b"engine-test-key-0123", now=NOW)
    assert report.counts["masked.email"] == 1


# --- CSV formula guard -------------------------------------------------------------------------------

FORMULAS = (
    "id,name,email,timestamp,note,amount\n"
    '1,"=HYPERLINK(""http://evil.example"",""x"")",=x@evil.io,2020-01-01,"+cmd|\' /C calc\'!A0",-12.5\n'
    '2,bob,c@d.io,2020-01-01,"\t=1+1",+1\n'
    "3,@SUM(1),e@f.io,2020-01-01,-2+3+cmd,-1e5\n"
)


def _csv_and_parquet(src: Path, out: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    paths = output_paths(src, out)
    csv = pd.read_csv(paths["csv"], dtype=str, keep_default_na=False)
    return csv, pq.read_table(paths["parquet"]).to_pandas()


def test_csv_output_guards_formulas_and_parquet_keeps_the_true_values(tmp_path: Path) -> None:
    src = _write(tmp_path / "f.csv", FORMULAS)
    report = clean_file(src, tmp_path / "o", now=NOW)
    csv, parquet = _csv_and_parquet(src, tmp_path / "o")
    # Trimming made "\t=1+1" formula-like: the guard runs on the final value, so it is guarded too.
    assert parquet["note"].tolist() == ["+cmd|' /C calc'!A0", "=1+1", "-2+3+cmd"]
    assert csv["note"].tolist() == ["'+cmd|' /C calc'!A0", "'=1+1", "'-2+3+cmd"]
    assert csv["amount"].tolist() == parquet["amount"].tolist() == ["-12.5", "+1", "-1e5"]  # plain numbers
    assert csv["email"].tolist() == ["'=***@evil.io", "c***@d.io", "e***@f.io"]  # masked, then guarded
    assert [v[:2] for v in csv["name"]] == ["'=", "Bo", "'@"] and parquet["name"][0].startswith("=")
    assert csv["is_future"].tolist() == ["false"] * 3
    assert report.formula_guard == {
        "enabled": True, "cells": {"name": 2, "email": 1, "note": 3}, "header_cells": 0, "total": 6,
    }  # fmt: skip
    on_disk = json.loads(output_paths(src, tmp_path / "o")["report"].read_text())
    assert on_disk["csv_formula_guard"]["cells"] == {"name": 2, "email": 1, "note": 3}
    assert on_disk["settings"]["formula_guard"] is True
    assert "CSV formula guard: 6 cell(s)" in report.summary()


def test_formula_guard_counts_add_up_across_batches_and_guard_the_header(tmp_path: Path) -> None:
    rows = "".join(f"{i},n{i},e{i}@x.io,2020-01-01,{'=1' if i % 3 == 0 else 'ok'}\n" for i in range(1, 31))
    src = _write(tmp_path / "b.csv", "id,name,email,timestamp,=cmd|' /C calc'!A0\n" + rows)
    report = clean_file(src, tmp_path / "o", now=NOW, batch_rows=4)
    header = output_paths(src, tmp_path / "o")["csv"].read_text().splitlines()[0]
    assert header.split(",")[4] == "\"'=cmd|' /C calc'!A0\""
    assert pq.read_table(output_paths(src, tmp_path / "o")["parquet"]).column_names[4] == "=cmd|' /C calc'!A0"
    assert report.formula_guard["cells"] == {"=cmd|' /C calc'!A0": 10}
    assert report.formula_guard["header_cells"] == 1 and report.formula_guard["total"] == 11


def test_formula_guard_can_be_turned_off(tmp_path: Path) -> None:
    src = _write(tmp_path / "f.csv", FORMULAS)
    report = clean_file(src, tmp_path / "o", now=NOW, config=CleaningConfig(formula_guard=False))
    csv, parquet = _csv_and_parquet(src, tmp_path / "o")
    assert csv.drop(columns="is_future").values.tolist() == parquet.drop(columns="is_future").values.tolist()
    assert report.formula_guard["enabled"] is False and report.settings["formula_guard"] is False
    assert "CSV formula guard: off" in report.summary()


# --- atomicity, idempotence, untouched input ----------------------------------------------------------


def test_failure_mid_run_leaves_no_partial_file_and_keeps_earlier_outputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = pipekit.sample.write_customers_csv(tmp_path / "c.csv", 3000, seed=2)
    out = tmp_path / "o"
    clean_file(src, out, now=NOW)
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    real = _run.finalize_batch
    calls = {"n": 0}

    def failing(*args: object, **kwargs: object) -> object:
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("disk on fire")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(_run, "finalize_batch", failing)
    with pytest.raises((RuntimeError, pipekit.StorageError)):
        clean_file(src, out, now=datetime(2030, 1, 1, tzinfo=UTC), batch_rows=500)
    after = {p.name: p.read_bytes() for p in out.iterdir()}
    assert after == before  # same files, same bytes, and no temp files left behind


def test_rerun_is_idempotent_and_input_untouched(tmp_path: Path) -> None:
    src = pipekit.sample.write_customers_csv(tmp_path / "c.csv", 2000, seed=3)
    digest = sha256_file(src)
    first = clean_file(src, tmp_path / "o", now=NOW)
    csv_1 = output_paths(src, tmp_path / "o")["csv"].read_bytes()
    second = clean_file(src, tmp_path / "o", now=NOW)
    assert output_paths(src, tmp_path / "o")["csv"].read_bytes() == csv_1
    assert first.counts == second.counts
    assert sha256_file(src) == digest == first.input["sha256"]
    report = json.loads(output_paths(src, tmp_path / "o")["report"].read_text())
    assert report["input"]["bytes"] == src.stat().st_size
    assert set(report) >= {"rows_read", "counts", "validation", "outputs", "timings", "pipekit_version"}
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == [
        "c_cleaned.csv",
        "c_cleaned.parquet",
        "c_report.json",
    ]


def test_notebook_api_clean() -> None:
    frame = pipekit.sample.make_customers(500, seed=4)
    cleaned, report = pipekit.clean(frame, now=NOW, dedup_keys=["id"])
    assert report.rows_in == 500 and report.rows_out == len(cleaned)
    assert cleaned["id"].is_unique
    assert cleaned["email"].str.contains(r"^.?\*\*\*(?:@|$)").all()
