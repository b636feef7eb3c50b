"""How long the customer DAG file takes to parse, as the DAG processor pays it on every loop.

    .venv/bin/python benchmarks/bench_dag_parse.py [--repeat 20] [--json]

Measures, in a fresh interpreter with its own temporary AIRFLOW_HOME (nothing touches ~/airflow):
  * exec   - executing the DAG module (imports + DAG construction), Airflow itself already imported;
  * dagbag - DagBag.process_file on the file (exec + DAG validation and bagging), what the processor runs;
and lists heavy modules (pandas, pyarrow, numpy, great_expectations, pipekit) the parse pulled in (should be none).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

DAG_FILE = Path(__file__).resolve().parents[1] / "adapters" / "airflow" / "dags" / "customer_pipeline.py"
HEAVY = ("pandas", "pyarrow", "numpy", "great_expectations", "pipekit")


def main() -> int:
    """Time the parse and print a small table (or JSON)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=20, help="timed parses per method (default 20)")
    parser.add_argument("--dag-file", type=Path, default=DAG_FILE)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()

    home = tempfile.mkdtemp(prefix="pipekit-bench-airflow-")
    os.environ.update(
        {
            "AIRFLOW_HOME": home,
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(args.dag_file.parent),
        }
    )
    t0 = time.perf_counter()
    import importlib.util

    import airflow.sdk  # noqa: F401  - the processor has Airflow loaded before it parses any file
    from airflow.dag_processing.dagbag import DagBag
    from airflow.providers.standard.operators.bash import BashOperator  # noqa: F401

    airflow_import = time.perf_counter() - t0

    exec_times = []
    for i in range(args.repeat):
        spec = importlib.util.spec_from_file_location(f"bench_customer_dag_{i}", args.dag_file)
        module = importlib.util.module_from_spec(spec)
        start = time.perf_counter()
        spec.loader.exec_module(module)
        exec_times.append(time.perf_counter() - start)
    heavy = sorted(m for m in HEAVY if m in sys.modules)

    bag = DagBag(dag_folder=str(args.dag_file.parent), collect_dags=False)
    bag_times = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        dags = bag.process_file(str(args.dag_file), only_if_updated=False)
        bag_times.append(time.perf_counter() - start)
    assert any(d.dag_id == "customer_pipeline" for d in dags), bag.import_errors

    def stats(xs: list[float]) -> dict[str, float]:
        xs = sorted(xs)
        return {
            "median_ms": round(statistics.median(xs) * 1000, 2),
            "p95_ms": round(xs[min(len(xs) - 1, int(len(xs) * 0.95))] * 1000, 2),
            "max_ms": round(xs[-1] * 1000, 2),
            "first_ms": None,
        }

    result = {
        "dag_file": str(args.dag_file),
        "repeat": args.repeat,
        "airflow_import_s": round(airflow_import, 2),
        "exec": {**stats(exec_times), "first_ms": round(exec_times[0] * 1000, 2)},
        "dagbag_process_file": {**stats(bag_times), "first_ms": round(bag_times[0] * 1000, 2)},
        "heavy_modules_loaded": heavy,
        "budget_ms": 500,
    }
    result["within_budget"] = max(result["exec"]["p95_ms"], result["dagbag_process_file"]["p95_ms"]) < 500
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"DAG file: {args.dag_file.name}  (repeat {args.repeat}; Airflow import itself {airflow_import:.2f} s, not counted)")
        print("| method | first (ms) | median (ms) | p95 (ms) | max (ms) |")
        print("|---|---:|---:|---:|---:|")
        for name in ("exec", "dagbag_process_file"):
            r = result[name]
            print(f"| {name} | {r['first_ms']} | {r['median_ms']} | {r['p95_ms']} | {r['max_ms']} |")
        print(f"heavy modules loaded by the parse: {', '.join(heavy) or 'none'}")
        print(f"within the 500 ms budget: {result['within_budget']}")
    return 0 if result["within_budget"] and not heavy else 1


if __name__ == "__main__":
    sys.exit(main())
