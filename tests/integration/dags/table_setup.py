"""DAGs that run the table-setup operators with the params a test passes (see test_tables.py)."""

from __future__ import annotations

import datetime

from airflow.sdk import DAG

from airflow_provider_optimizely.operators import (
    OptimizelyCreateTableOperator,
    OptimizelyRegisterAttributesOperator,
)

START = datetime.datetime(2026, 1, 1)
# Native rendering: a list of attributes or a mapping of overrides arrives as a list or a mapping.
COMMON = {"schedule": None, "start_date": START, "catchup": False, "render_template_as_native_obj": True}

with DAG(
    "table_setup_create",
    params={
        "conn_id": "optimizely_default",
        "table_name": "t",
        "primary_key": None,
        "keyfield_locator_type": "uid",
    },
    **COMMON,
):
    OptimizelyCreateTableOperator(
        task_id="create_table",
        conn_id="{{ params.conn_id }}",
        table_name="{{ params.table_name }}",
        primary_key="{{ params.primary_key }}",
        keyfield_locator_type="{{ params.keyfield_locator_type }}",
    )

with DAG(
    "table_setup_attributes",
    params={"conn_id": "optimizely_default", "table_name": "t", "attributes": []},
    **COMMON,
):
    create = OptimizelyCreateTableOperator(
        task_id="create_table", conn_id="{{ params.conn_id }}", table_name="{{ params.table_name }}"
    )
    OptimizelyRegisterAttributesOperator(
        task_id="register_attributes",
        conn_id="{{ params.conn_id }}",
        table_id=create.output,
        attributes="{{ params.attributes }}",
    )

with DAG(
    "table_setup_inferred",
    params={
        "conn_id": "optimizely_default",
        "table_name": "t",
        "source_table": "s",
        "identifier_column": "customer_id",
        "exclude": [],
        "overrides": {},
    },
    **COMMON,
):
    create = OptimizelyCreateTableOperator(
        task_id="create_table", conn_id="{{ params.conn_id }}", table_name="{{ params.table_name }}"
    )
    OptimizelyRegisterAttributesOperator(
        task_id="register_attributes",
        conn_id="{{ params.conn_id }}",
        table_id=create.output,
        sql_conn_id="warehouse",
        source_table="{{ params.source_table }}",
        identifier_column="{{ params.identifier_column }}",
        exclude="{{ params.exclude }}",
        overrides="{{ params.overrides }}",
    )
