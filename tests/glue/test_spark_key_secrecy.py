"""The masking key never reaches what Spark shows: plans (explain), the event log, the configuration.

A keyed hash built from Spark SQL built-ins carries the HMAC pads (key XOR 0x36 / 0x5c) as binary
literals, so ``explain()``, the Spark UI and event logs hand out the key. These tests look for the key
in every form it could take there (raw, hex, base64, the pads raw / hex / as Spark's ``0x..`` and
``X'..'`` literals) and fail when any shows up.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipekit.core import ColumnRule, MaskingPolicy
from pipekit.core.masking import mask_column

pytestmark = pytest.mark.spark

REPO = Path(__file__).resolve().parents[2]
ENTRYPOINT = REPO / "adapters" / "glue" / "customers_etl.py"

#: 32 ASCII bytes, so the raw key is also a text needle; pads of a key this long keep every key byte.
KEY = b"pipekit-secrecy-key-0123456789ab"
POLICY = MaskingPolicy(
    {
        "FirstName": ColumnRule("literal", value="hu25"),
        "EmailAddress": ColumnRule("email", email_mode="hash"),
        "Phone": ColumnRule("hash"),
        "PasswordHash": ColumnRule("redact"),
    }
)
ROWS = [
    ("1", "Ann", " Ann@Example.COM", "245-555-0173", "h1"),
    ("2", "Zoë", "zoë@exämple.com", "", "h2"),
    ("3", None, None, None, None),
    ("4", "Émile", "", "😀 1 (11) 500 555-0132", "h4"),
]
COLUMNS = ["CustomerID", "FirstName", "EmailAddress", "Phone", "PasswordHash"]


def _pads(key: bytes) -> tuple[bytes, bytes]:
    """The key-dependent part of RFC 2104's inner and outer pads (the 0x36/0x5c filler is the same for any key)."""
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)


def key_needles(key: bytes) -> dict[str, bytes]:
    """Every rendering of ``key`` and its pads worth grepping for, lower-cased (haystacks are lower-cased too)."""
    ipad, opad = _pads(key)
    needles = {"key": key, "key hex": key.hex().encode(), "key base64": base64.b64encode(key),
               "key base64url": base64.urlsafe_b64encode(key)}  # fmt: skip
    for name, pad in (("ipad", ipad), ("opad", opad)):
        full = pad.ljust(64, b"\x36" if name == "ipad" else b"\x5c")
        needles[f"{name} raw"] = pad
        # Hex also covers Spark's renderings of a binary literal: 0x.. (explain) and X'..' (SQL).
        needles[f"{name} hex"] = pad.hex().encode()
        needles[f"{name} base64"] = base64.b64encode(full)
        # Any 8 consecutive key-dependent bytes: a plan printer that truncates long literals still leaks those.
        needles[f"{name} hex prefix"] = pad[:8].hex().encode()
    return {name: needle.lower() for name, needle in needles.items()}


def leaks(haystack: bytes | str, key: bytes = KEY) -> list[str]:
    """Names of the key renderings found in ``haystack`` (case-insensitive)."""
    data = haystack.encode("utf-8", "surrogateescape") if isinstance(haystack, str) else haystack
    data = data.lower()
    return [name for name, needle in key_needles(key).items() if needle in data]


def test_needles_find_the_old_sql_pads() -> None:
    """The detector itself: a plan rendered the way Spark prints the old SQL HMAC is caught."""
    ipad, opad = _pads(KEY)
    old_plan = f"sha2(concat(0x{opad.hex().upper()}5C5C, unhex(sha2(concat(X'{ipad.hex()}3636', encode(v#1, UTF-8))"
    assert {"ipad hex", "opad hex"} <= set(leaks(old_plan))
    assert leaks("Project [pipekit_keyed_mask(v#1) AS v#5]") == []


# A key longer than SHA-256's 64-byte block is hashed first (RFC 2104): its pads derive from that digest.
@pytest.mark.parametrize("key", [KEY, b"a-much-longer-masking-key-" * 4], ids=["32 bytes", "104 bytes"])
def test_key_is_not_in_explain_or_conf(spark, capsys: pytest.CaptureFixture[str], key: bytes) -> None:
    from pipekit.spark import apply_policy_spark

    frame = spark.createDataFrame(ROWS, ", ".join(f"{c} string" for c in COLUMNS))
    masked, _ = apply_policy_spark(frame, POLICY, key=key, detect_pii=False)
    for mode in ("simple", "extended", "codegen", "cost", "formatted"):
        masked.explain(mode)
    masked.collect()  # the executed plan (after adaptive execution) is printed too
    masked.explain(True)
    printed = capsys.readouterr().out
    assert "Physical Plan" in printed
    assert leaks(printed, key) == []
    # The plan shows the keyed masks as the UDF over their input column, nothing derived from the key.
    assert "ArrowEvalPython" in printed and "pipekit_keyed_mask(cast(Phone" in printed and "sha2" not in printed
    assert leaks(masked._jdf.queryExecution().toString(), key) == []
    conf = "\n".join(f"{k}={v}" for k, v in spark.sparkContext.getConf().getAll())
    runtime = "\n".join(f"{r[0]}={r[1]}" for r in spark.sql("SET").collect())
    assert leaks(conf, key) == [] and leaks(runtime, key) == []


_DRIVER = """
import importlib.util, json, sys
from pyspark.sql import SparkSession
from pipekit.core import MaskingPolicy
from pipekit.spark import apply_policy_spark

events, source, target, policy_file, dump = sys.argv[1:6]
spark = (SparkSession.builder.master("local[2]").appName("pipekit-key-secrecy")
         .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
         .config("spark.sql.shuffle.partitions", "2")
         .config("spark.eventLog.enabled", "true").config("spark.eventLog.dir", events)
         .config("spark.eventLog.compress", "false").getOrCreate())
spark.sparkContext.setLogLevel("ERROR")
spec = importlib.util.spec_from_file_location("customers_etl", {entrypoint!r})
entry = importlib.util.module_from_spec(spec)
spec.loader.exec_module(entry)
code = entry.main(["--JOB_NAME", "secrecy", "--source_path", source, "--target_path", target,
                   "--policy", policy_file, "--detect_pii", "false"], spark=spark)
frame = spark.read.csv(source, header=True)
masked, _ = apply_policy_spark(frame, MaskingPolicy.from_file(policy_file), detect_pii=False)
masked.explain(True)
masked.explain("formatted")
with open(dump, "w") as out:
    json.dump({{"conf": spark.sparkContext.getConf().getAll(),
               "sql_conf": [list(r) for r in spark.sql("SET").collect()],
               "plan": masked._jdf.queryExecution().toString()}}, out)
spark.stop()
sys.exit(code)
"""


def test_key_is_not_in_the_event_log_of_a_glue_job_run(tmp_path: Path) -> None:
    """The real Glue entrypoint with hash rules, event log on: every event-log byte, plan, conf and output line is clean."""
    import csv

    source = tmp_path / "customers.csv"
    with source.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(COLUMNS)
        writer.writerows([["" if v is None else v for v in row] for row in ROWS])
    policy_file = tmp_path / "policy.json"
    policy_file.write_text(json.dumps(POLICY.to_dict()), encoding="utf-8")
    events, target, dump = tmp_path / "events", tmp_path / "out", tmp_path / "dump.json"
    events.mkdir()
    script = tmp_path / "driver.py"
    script.write_text(textwrap.dedent(_DRIVER.format(entrypoint=str(ENTRYPOINT))), encoding="utf-8")
    env = {**os.environ, "PIPEKIT_MASK_KEY": KEY.decode(), "PYSPARK_PYTHON": sys.executable,
           "PYSPARK_DRIVER_PYTHON": sys.executable, "SPARK_LOCAL_IP": "127.0.0.1"}  # fmt: skip
    env.pop("PYSPARK_SUBMIT_ARGS", None)
    proc = subprocess.run(
        [sys.executable, str(script), f"file://{events}", str(source), str(target), str(policy_file), str(dump)],
        cwd=REPO, env=env, capture_output=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-3000:]

    log_files = [p for p in events.rglob("*") if p.is_file()]
    assert log_files, "Spark wrote no event log"
    log = b"\n".join(p.read_bytes() for p in log_files)
    # The log does hold the plans (so the check is not vacuous): SQL executions with their physical plan.
    assert b"SparkListenerSQLExecutionStart" in log and b"physicalPlanDescription" in log
    assert b"EmailAddress" in log and b"Phone" in log
    assert leaks(log) == [], f"event log leaks the key: {leaks(log)}"
    assert leaks(dump.read_bytes()) == []
    assert b"Physical Plan" in proc.stdout
    assert leaks(proc.stdout) == [] and leaks(proc.stderr) == []

    # And the job did hash with that key: the output equals the core kernel's.
    table = pq.read_table(target).sort_by("CustomerID")
    for name in ("EmailAddress", "Phone"):
        source_values = pa.array([row[COLUMNS.index(name)] or None for row in ROWS], pa.string())
        expected = mask_column(source_values, POLICY.rules[name], key=KEY)[0].to_pylist()
        assert table.column(name).to_pylist() == expected, name
