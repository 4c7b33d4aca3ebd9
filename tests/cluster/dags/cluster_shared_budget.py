"""A 400,000-row sync split into mapped partitions on the cluster's workers, into ODP profiles (10
requests a second) and Optimove (a budget the emulator announces), every task of an account drawing on
one rate budget in Redis (the connections ``odp_shared`` and ``optimove_shared`` name the Redis
connection ``rate_store`` in their extra ``rate_limit_store_conn_id``).

``params.odp_path`` / ``params.optimove_path``: CSV files the test wrote (``email, first_name, city`` and
``user_id, email, city``), read whole by each task, which sends only its partition's keys.
"""

from __future__ import annotations

import datetime
from typing import Any

from airflow.sdk import DAG, task

from airflow_provider_optimizely.operators.odp import OptimizelyOdpUpsertProfilesOperator
from airflow_provider_optimizely.operators.optimove import OptimoveUploadRecordsOperator

COMMON: dict[str, Any] = {
    "schedule": None,
    "start_date": datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc),
    "catchup": False,
    "default_args": {"retries": 2, "retry_delay": datetime.timedelta(seconds=1)},
    "tags": ["cluster-test"],
}


@task
def partitions(params: dict[str, Any] | None = None) -> list[str]:
    assert params is not None
    count = int(params["partitions"])
    return [f"{index}/{count}" for index in range(count)]


with DAG(
    "cluster_shared_budget",
    params={"odp_path": "", "optimove_path": "", "data_connection_uuid": "", "partitions": 8},
    **COMMON,
):
    parts = partitions()
    OptimizelyOdpUpsertProfilesOperator.partial(
        task_id="odp",
        conn_id="odp_shared",
        path="{{ params.odp_path }}",
        identifier_column="email",
        incremental=False,
    ).expand(partition=parts)
    OptimoveUploadRecordsOperator.partial(
        task_id="optimove",
        conn_id="optimove_shared",
        path="{{ params.optimove_path }}",
        data_connection_uuid="{{ params.data_connection_uuid }}",
        identifier_column="user_id",
        incremental=False,
    ).expand(partition=parts)
