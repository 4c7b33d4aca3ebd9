"""Set up a DCP table and its attributes, then sync customer profiles into it from a warehouse table.

1. ``create_table`` makes the DCP table ``params.table_name`` (keyed by ``uid``) unless it exists, creating
   the account's DCP service first if it has none; its XCom is the table id.
2. ``register_attributes`` registers one attribute per column of the warehouse table
   ``params.source_table`` (its SQL types decide the datatypes), skipping the key column and those that
   exist already.
3. ``sync_profiles`` writes the rows that changed since its last run (every row on the first) as
   customer profiles (customerId = ``params.identifier_column``): 1,000 or more as one bulk-upload file
   acknowledged from Upload History, fewer through the profile API (``method="auto"``,
   docs/dcp-channel.md); it returns the run report, which says which channel and why.

Connections: ``optimizely_default`` (DCP) and ``warehouse`` (any SQL connection). Every step is safe to
run again: a rerun finds the table and the attributes and rewrites the same profiles.
"""

from __future__ import annotations

import datetime

from airflow.sdk import DAG, Param

from airflow_provider_optimizely.operators.dcp import (
    OptimizelyDcpCreateTableOperator,
    OptimizelyDcpRegisterAttributesOperator,
    OptimizelyDcpUpsertProfilesOperator,
)

with DAG(
    dag_id="example_dcp_profile_sync",
    description="Create a DCP table and attributes, then upsert profiles from a warehouse table",
    schedule="@daily",
    start_date=datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc),
    catchup=False,
    max_active_runs=1,
    tags=["optimizely", "dcp", "example"],
    doc_md=__doc__,
    params={
        "table_name": Param("customers", type="string", description="DCP table to create or reuse"),
        "source_table": Param("customers", type="string", description="warehouse table to read"),
        "identifier_column": Param("customer_id", type="string", description="column holding customerId"),
    },
):
    create_table = OptimizelyDcpCreateTableOperator(
        task_id="create_table",
        table_name="{{ params.table_name }}",
        keyfield_locator_type="uid",
        description="Customer profiles synced from the warehouse by Airflow",
    )

    register_attributes = OptimizelyDcpRegisterAttributesOperator(
        task_id="register_attributes",
        table_id=create_table.output,
        sql_conn_id="warehouse",
        source_table="{{ params.source_table }}",
        identifier_column="{{ params.identifier_column }}",
    )

    sync_profiles = OptimizelyDcpUpsertProfilesOperator(
        task_id="sync_profiles",
        table_id=create_table.output,
        sql_conn_id="warehouse",
        sql="SELECT * FROM {{ params.source_table }}",
        identifier_column="{{ params.identifier_column }}",
        max_rejected=0,
        max_concurrency=4,
    )

    register_attributes >> sync_profiles
