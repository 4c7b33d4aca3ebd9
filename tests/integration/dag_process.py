"""Run one DAG with ``dag.test()`` in a process of its own, as ``run_dag`` does in the test's process: a
test kills this process (``kill -9``) to play a worker lost halfway through a task, or runs two at once.
The last line of its output is ``XCOMS`` and the run's return values as JSON.

    python -m tests.integration.dag_process DAG_ID CONF_JSON LOGICAL_DATE
"""

from __future__ import annotations

import json
import sys
from datetime import datetime

import tests.conftest  # noqa: F401  (the Airflow home and DAG bundles, before Airflow is imported)
from tests.integration.conftest import _load_dag, _return_values


def main() -> None:
    dag_id, conf, logical_date = sys.argv[1], json.loads(sys.argv[2]), datetime.fromisoformat(sys.argv[3])
    run = _load_dag(dag_id).test(run_conf=conf, logical_date=logical_date, run_after=logical_date)
    print("XCOMS", json.dumps(_return_values(run), default=str), flush=True)


if __name__ == "__main__":
    main()
