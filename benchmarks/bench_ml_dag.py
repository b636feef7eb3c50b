"""Benchmark the iris_training DAG: DAG-file parse time and end-to-end run time on real Airflow 3.

    .venv/bin/python benchmarks/bench_ml_dag.py [--repeat 3] [--parse-repeat 20] [--out .bench/ml_dag.json]

Parse time is what Airflow's DagBag records for the file (``FileLoadStat.duration``, as shown by
``airflow dags report``), measured in a process where Airflow is already imported, as in the DAG processor.
End to end runs ``dag.test()`` in a fresh process against a temporary AIRFLOW_HOME (SQLite) with the
Kaggle API stand-in on 127.0.0.1:7777: a fresh run (download + train) and a cached re-run (no download).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DAG_FILE = REPO / "adapters" / "airflow" / "dags" / "iris_training.py"
RUNNER = REPO / "tests" / "ml" / "run_dag.py"

PARSE_SNIPPET = """
import json, statistics, sys, time
t0 = time.perf_counter()
from airflow.dag_processing.dagbag import DagBag
import airflow.sdk
warm = time.perf_counter() - t0
durations, wall = [], []
for _ in range(int(sys.argv[2])):
    t = time.perf_counter()
    bag = DagBag(dag_folder=sys.argv[1])
    wall.append(time.perf_counter() - t)
    assert not bag.import_errors, bag.import_errors
    assert "iris_training" in bag.dag_ids
    durations.append(bag.dagbag_stats[0].duration.total_seconds())
print(json.dumps({"airflow_import_s": warm, "file_load_s": durations, "dagbag_wall_s": wall}))
"""


def _env(home: Path, dags: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "KAGGLE_"))}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "KAGGLE_API_ENVIRONMENT": "TEST",
            "KAGGLE_CONFIG_DIR": str(home / "kaggle"),
            "PYTHONPATH": str(REPO / "src"),
        }
    )
    (home / "kaggle").mkdir(parents=True, exist_ok=True)
    return env


def measure_parse(env: dict[str, str], dag_path: Path, repeat: int) -> dict[str, float]:
    """Median DagBag file-load time of the DAG file, Airflow already imported."""
    proc = subprocess.run(
        [sys.executable, "-c", PARSE_SNIPPET, str(dag_path), str(repeat)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    return {
        "parse_median_s": statistics.median(data["file_load_s"]),
        "parse_min_s": min(data["file_load_s"]),
        "parse_max_s": max(data["file_load_s"]),
        "dagbag_wall_median_s": statistics.median(data["dagbag_wall_s"]),
        "airflow_import_s": data["airflow_import_s"],
    }


def run_dag(env: dict[str, str], dag_path: Path, conf: dict[str, object]) -> dict[str, float | str]:
    """One dag.test() run in a fresh process: in-process run time, process wall time and CPU time."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, str(RUNNER), str(dag_path), "--conf", json.dumps(conf)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    if summary["state"] != "success":
        raise SystemExit(f"DAG run failed: {summary}\n{(proc.stdout + proc.stderr)[-3000:]}")
    return {"dag_test_s": summary["seconds"], "process_wall_s": wall, "process_cpu_s": cpu}


def main() -> None:
    """Run the measurements and print a Markdown summary."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=3, help="end-to-end runs of each kind")
    parser.add_argument("--parse-repeat", type=int, default=20)
    parser.add_argument("--out", type=Path, default=REPO / ".bench" / "ml_dag.json")
    args = parser.parse_args()

    sys.path.insert(0, str(REPO / "src"))
    from pipekit.ml._standin import DEFAULT_KEY, DEFAULT_USERNAME, KaggleStandIn

    root = Path(tempfile.mkdtemp(prefix="bench-ml-dag-"))
    try:
        home, dags = root / "airflow", root / "dags"
        dags.mkdir(parents=True)
        dag_path = dags / DAG_FILE.name
        shutil.copy2(DAG_FILE, dag_path)
        env = _env(home, dags)
        airflow = Path(sys.executable).with_name("airflow")
        subprocess.run([str(airflow), "db", "migrate"], env=env, capture_output=True, check=True, timeout=600)

        parse = measure_parse(env, dag_path, args.parse_repeat)
        fresh, cached = [], []
        conn = json.dumps({"conn_type": "generic", "login": DEFAULT_USERNAME, "password": DEFAULT_KEY})
        with KaggleStandIn() as standin:
            run_env = {**env, "AIRFLOW_CONN_KAGGLE_DEFAULT": conn}
            for i in range(args.repeat):
                conf = {"data_dir": str(root / f"data{i}"), "models_dir": str(root / f"models{i}")}
                fresh.append(run_dag(run_env, dag_path, conf))
                cached.append(run_dag(run_env, dag_path, conf))
            downloads = standin.stats.archive_downloads
        if downloads != args.repeat:
            raise SystemExit(
                f"expected {args.repeat} downloads (cached runs download nothing), saw {downloads}"
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)

    def med(rows: list[dict[str, float | str]], key: str) -> float:
        return statistics.median(float(r[key]) for r in rows)

    result = {
        "command": "python benchmarks/bench_ml_dag.py " + " ".join(sys.argv[1:]),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "load_avg": os.getloadavg()},
        **parse,
        "fresh_dag_test_median_s": med(fresh, "dag_test_s"),
        "fresh_process_median_s": med(fresh, "process_wall_s"),
        "cached_dag_test_median_s": med(cached, "dag_test_s"),
        "cached_process_median_s": med(cached, "process_wall_s"),
        "fresh_process_cpu_median_s": med(fresh, "process_cpu_s"),
        "cached_process_cpu_median_s": med(cached, "process_cpu_s"),
        "runs": {"fresh": fresh, "cached": cached},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print("| measure | median (s) |")
    print("|---|---|")
    print(f"| DAG file parse (DagBag FileLoadStat, n={args.parse_repeat}) | {parse['parse_median_s']:.4f} |")
    print(
        f"| end to end, fresh run: download + train (dag.test, n={args.repeat}) | {result['fresh_dag_test_median_s']:.1f} |"
    )
    print(
        f"| end to end, cached re-run (dag.test, n={args.repeat}) | {result['cached_dag_test_median_s']:.1f} |"
    )
    print(
        f"| fresh run, whole process (interpreter + Airflow start) | {result['fresh_process_median_s']:.1f} |"
    )
    print(f"| fresh run, CPU time user+sys of that process | {result['fresh_process_cpu_median_s']:.1f} |")
    print(
        f"| cached re-run, CPU time user+sys of its process | {result['cached_process_cpu_median_s']:.1f} |"
    )
    print(f"load average during run: {result['machine']['load_avg']}; details in {args.out}")


if __name__ == "__main__":
    main()
