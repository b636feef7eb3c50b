"""Run one DAG with ``dag.test()`` and write the run and task states as JSON (used by conftest.AirflowHome)."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(dags_folder: str, dag_id: str, conf_json: str, out: str) -> int:
    """Load ``dag_id`` from ``dags_folder``, run it once, save {"state", "tasks"} to ``out``."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=dags_folder)
    if bag.import_errors:
        print(f"import errors: {bag.import_errors}", file=sys.stderr)
    dag = bag.get_dag(dag_id)
    if dag is None:
        print(f"no DAG {dag_id!r} in {dags_folder}", file=sys.stderr)
        return 2
    run = dag.test(run_conf=json.loads(conf_json))
    from airflow import settings

    session = settings.Session()
    tis = run.get_task_instances(session=session)
    # A mapped task instance is "<task_id>[<map_index>]"; an unmapped one (or a mapped task that never
    # expanded, e.g. skipped upstream) is its plain task id.
    result = {
        "state": str(run.state),
        "tasks": {(ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]"): str(ti.state) for ti in tis},
    }
    Path(out).write_text(json.dumps(result))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:5]))
