"""``pipekit clean`` starts fast: no pandas, no pydantic on its way (issue 13's start-up budget).

Timing is measured by benchmarks/bench_startup.py, not here; these tests pin what makes it slow.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pipekit.sample

PIPEKIT = Path(sys.executable).with_name("pipekit")


def _imported(*args: str, cwd: Path) -> set[str]:
    """Top-level modules loaded (``sys.modules`` at exit) when the console script runs ``pipekit ARGS``."""
    record = cwd / "modules.json"
    code = (
        "import atexit, json, runpy, sys\n"
        f"atexit.register(lambda: open({str(record)!r}, 'w').write(json.dumps(sorted(sys.modules))))\n"
        f"sys.argv = [{str(PIPEKIT)!r}, *{list(args)!r}]\n"
        f"runpy.run_path({str(PIPEKIT)!r}, run_name='__main__')\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=cwd, timeout=120, check=True, capture_output=True)
    return {name.split(".")[0] for name in json.loads(record.read_text())}


def test_quiet_clean_imports_neither_pandas_nor_pydantic_nor_rich(tmp_path: Path) -> None:
    src = pipekit.sample.write_customers_csv(tmp_path / "c.csv", 10, seed=1, layout="narrow")
    names = _imported("clean", str(src), "--out", str(tmp_path / "out"), "--quiet", cwd=tmp_path)
    assert {"pyarrow", "numpy", "pipekit"} <= names  # the measurement works
    assert not names & {"pandas", "pydantic", "rich"}  # rich loads only when something is printed
    assert (tmp_path / "out" / "c_cleaned.parquet").exists()


def test_help_imports_no_data_library(tmp_path: Path) -> None:
    names = _imported("--help", cwd=tmp_path)
    assert not names & {"pandas", "pydantic", "polars", "boto3"}


def test_pyarrow_still_converts_pandas_after_the_deferral() -> None:
    """The console script's deferral must not change what pyarrow does with pandas later in the process."""
    code = (
        "import sys\n"
        "from pipekit.cli import _common\n"
        "_common.OWN_PROCESS = True\n"
        "_common.defer_pandas()\n"
        "assert 'pandas' not in sys.modules\n"
        "import pyarrow as pa\n"
        "frame = pa.table({'a': [1, None]}).to_pandas()\n"
        "import pandas as pd\n"
        "arr = pa.array(pd.Series([1.5, float('nan')]), from_pandas=True)\n"
        "assert arr.to_pylist() == [1.5, None], arr\n"
        "assert pa.Table.from_pandas(frame).num_rows == 2\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_commands_run_in_a_host_process_never_defer_pandas(tmp_path: Path) -> None:
    """typer's CliRunner (or any host process) keeps pyarrow's pandas handling as it was."""
    import pandas as pd
    import pyarrow as pa
    from typer.testing import CliRunner

    from pipekit.cli import app

    src = pipekit.sample.write_customers_csv(tmp_path / "c.csv", 10, seed=1, layout="narrow")
    result = CliRunner().invoke(app, ["clean", str(src), "--out", str(tmp_path / "out"), "--quiet"])
    assert result.exit_code == 0, result.output
    stamps = pa.array(pd.Series(pd.to_datetime(["2024-01-01", None])))
    assert stamps.null_count == 1


def test_allocator_tuning_only_in_the_console_scripts_own_process() -> None:
    """glibc's malloc keeps freed heap pages for the next batch in `pipekit clean`'s own process only."""
    import platform

    big = 1 << 30
    code = (
        "import os, sys\n"
        "from pipekit.cli import _common\n"
        f"host = _common.tune_allocator({big})\n"
        "_common.OWN_PROCESS = True\n"
        "small = _common.tune_allocator(1000)\n"
        "os.environ['PIPEKIT_MALLOC_TUNING'] = '0'\n"
        f"off = _common.tune_allocator({big})\n"
        "del os.environ['PIPEKIT_MALLOC_TUNING']\n"
        f"print(host, small, off, _common.tune_allocator({big}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    glibc = sys.platform == "linux" and platform.libc_ver()[0] == "glibc"
    assert out.stdout.split() == ["False", "False", "False", str(glibc)]
