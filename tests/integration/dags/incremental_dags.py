"""DAGs of incremental syncs for test_incremental.py: a PostgreSQL table into Optimove and, in mirror mode,
into Profile Store; and files into Optimove and ODP, for runs killed halfway."""

from __future__ import annotations

import datetime

from airflow.sdk import DAG

from airflow_provider_optimizely.operators.odp import OptimizelyOdpUpsertProfilesOperator
from airflow_provider_optimizely.operators.optimove import OptimoveUploadRecordsOperator
from airflow_provider_optimizely.operators.profile_store import OptimizelyProfileStorePutProfilesOperator

COMMON = {
    "schedule": None,
    "start_date": datetime.datetime(2026, 1, 1),
    "catchup": False,
    "render_template_as_native_obj": True,
}
STATE = {"state_store": None, "state_store_conn_id": None, "dry_run": False}

with DAG("incremental_pg_optimove", params={"table": "", "data_connection_uuid": "", **STATE}, **COMMON):
    OptimoveUploadRecordsOperator(
        task_id="upsert",
        sql_conn_id="warehouse",
        sql="SELECT * FROM {{ params.table }} ORDER BY user_id",
        identifier_column="user_id",
        data_connection_uuid="{{ params.data_connection_uuid }}",
        state_store="{{ params.state_store }}",
        state_store_conn_id="{{ params.state_store_conn_id }}",
        dry_run="{{ params.dry_run }}",
        max_concurrency=4,
    )

with DAG(
    "incremental_pg_profile_store_mirror",
    params={"table": "", "max_delete_fraction": 0.1, **STATE},
    **COMMON,
):
    OptimizelyProfileStorePutProfilesOperator(
        task_id="mirror",
        sql_conn_id="warehouse",
        sql="SELECT id, name, visits FROM {{ params.table }} ORDER BY id",
        identifier_column="id",
        column_mapping={"name": "Name", "visits": "Visits"},
        mirror=True,
        max_delete_fraction="{{ params.max_delete_fraction }}",
        dry_run="{{ params.dry_run }}",
        max_concurrency=4,
    )

with DAG("incremental_file_optimove", params={"path": "", "data_connection_uuid": ""}, **COMMON):
    OptimoveUploadRecordsOperator(
        task_id="upsert",
        path="{{ params.path }}",
        identifier_column="user_id",
        data_connection_uuid="{{ params.data_connection_uuid }}",
        batch_size=1000,
        max_concurrency=2,
    )

with DAG("incremental_file_odp", params={"path": ""}, **COMMON):
    OptimizelyOdpUpsertProfilesOperator(
        task_id="upsert",
        path="{{ params.path }}",
        identifier_column="email",
        batch_size=250,
        max_concurrency=2,
    )
