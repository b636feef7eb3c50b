"""Run the iris_training DAG once with ``dag.test()`` and print a JSON summary (used by tests and the benchmark).

Run it in a fresh process whose environment already names AIRFLOW_HOME and AIRFLOW__CORE__DAGS_FOLDER:
Airflow reads its configuration when first imported.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path


def main() -> None:
    """Parse args, run the DAG, print {"state", "tasks", "seconds"} as the last stdout line."""
    parser = argparse.ArgumentParser()
    parser.add_argument("dag_file", type=Path)
    parser.add_argument("--conf", default="{}", help="run conf (DAG params) as JSON")
    args = parser.parse_args()

    spec = importlib.util.spec_from_file_location("iris_training_under_test", args.dag_file)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    dag = module.iris_training_dag

    started = time.perf_counter()
    run = dag.test(run_conf=json.loads(args.conf))
    seconds = time.perf_counter() - started
    tasks = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    sys.stdout.flush()
    print(json.dumps({"state": str(run.state), "tasks": tasks, "seconds": seconds}))


if __name__ == "__main__":
    main()
