"""DAGs of test_lineage.py: a PostgreSQL-to-DCP sync whose OpenLineage events are read back, and syncs
whose asset events schedule a downstream DAG (ODP with a target known at parse time; DCP with a templated
one, in mapped tasks)."""

from __future__ import annotations

import datetime
import os

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

from airflow_provider_optimizely.assets import dcp_table_asset, odp_object_asset
from airflow_provider_optimizely.operators.dcp import OptimizelyDcpUpsertProfilesOperator
from airflow_provider_optimizely.operators.odp import OptimizelyOdpUpsertProfilesOperator

START = datetime.datetime(2026, 1, 1)
COMMON = {"schedule": None, "start_date": START, "catchup": False}

with DAG("lineage_dcp_from_postgres", params={"table_id": 0, "source_table": ""}, **COMMON):
    OptimizelyDcpUpsertProfilesOperator(
        task_id="upsert",
        table_id="{{ params.table_id }}",
        sql_conn_id="warehouse",
        sql=(
            "SELECT p.user_id, p.email AS email_address, p.first_name || ' ' || p.last_name AS full_name, "
            "p.tier FROM {{ params.source_table }} AS p ORDER BY p.user_id"
        ),
        identifier_column="user_id",
        column_mapping={"email_address": "email", "full_name": "name", "tier": "tier"},
    )

with DAG("assets_odp_sync", params={"path": ""}, **COMMON):
    OptimizelyOdpUpsertProfilesOperator(task_id="upsert", path="{{ params.path }}", identifier_column="email")

with DAG("assets_odp_consumer", schedule=[odp_object_asset("customers")], start_date=START, catchup=False):
    EmptyOperator(task_id="profiles_synced")

with DAG("assets_dcp_mapped_sync", params={"table_id": 0, "path": ""}, **COMMON):
    OptimizelyDcpUpsertProfilesOperator.partial(
        task_id="upsert", table_id="{{ params.table_id }}", path="{{ params.path }}", identifier_column="id"
    ).expand(partition=["0/2", "1/2"])

# The table a test made: its id is known only once the emulator gave it, so the test names it here.
_DCP_TABLE = os.environ.get("LINEAGE_TEST_DCP_TABLE_ID", "1")

with DAG("assets_dcp_consumer", schedule=[dcp_table_asset(_DCP_TABLE)], start_date=START, catchup=False):
    EmptyOperator(task_id="profiles_synced")
