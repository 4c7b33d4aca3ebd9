"""PostgreSQL rows streamed into Optimove profiles, with the task's peak traced memory in its report
(test_postgres_warehouse.py compares a 50,000-row run with a 200,000-row one)."""

from __future__ import annotations

import datetime
import tracemalloc
from typing import Any

from airflow.sdk import DAG, BaseHook

from airflow_provider_optimizely.operators.optimove import OptimoveUploadRecordsOperator


class PeakMemoryUpsert(OptimoveUploadRecordsOperator):
    """The upsert operator, measured: ``traced_peak_bytes`` is the most memory Python held during the run
    (every thread of the task: the cursor, the batches, the requests)."""

    def execute(self, context: Any) -> dict[str, Any]:
        # What a first run imports (the database's hook, the REST client) is no memory of the run.
        BaseHook.get_connection(self.sql_conn_id).get_hook()
        self.hook.client  # noqa: B018 - built on first use
        tracemalloc.start()
        try:
            report = super().execute(context)
            report["traced_peak_bytes"] = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        return report


with DAG(
    "postgres_warehouse_upsert",
    schedule=None,
    start_date=datetime.datetime(2026, 1, 1),
    catchup=False,
    params={"conn_id": "optimove_default", "table": "", "source_table": "", "rows": 0},
):
    PeakMemoryUpsert(
        task_id="upsert",
        conn_id="{{ params.conn_id }}",
        data_connection_uuid="{{ params.table }}",
        sql_conn_id="warehouse",
        sql="SELECT * FROM {{ params.source_table }} WHERE user_id <= %(rows)s ORDER BY user_id",
        parameters={"rows": "{{ params.rows }}"},
        identifier_column="user_id",
        fetch_size=2000,
        max_concurrency=4,
    )
