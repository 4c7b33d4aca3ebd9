"""DAGs that run the table-setup operators of each API with the params a test passes (test_tables.py)."""

from __future__ import annotations

import datetime

from airflow.sdk import DAG

from airflow_provider_optimizely.operators.dcp import (
    OptimizelyDcpCreateTableOperator,
    OptimizelyDcpRegisterAttributesOperator,
)
from airflow_provider_optimizely.operators.odp import (
    OptimizelyOdpCreateObjectTypeOperator,
    OptimizelyOdpRegisterFieldsOperator,
)
from airflow_provider_optimizely.operators.optimove import OptimoveCreateDataConnectionOperator

START = datetime.datetime(2026, 1, 1)
# Native rendering: a list of attributes or a mapping of overrides arrives as a list or a mapping.
COMMON = {"schedule": None, "start_date": START, "catchup": False, "render_template_as_native_obj": True}

with DAG("table_setup_dcp_create", params={"table_name": "t", "keyfield_locator_type": "uid"}, **COMMON):
    OptimizelyDcpCreateTableOperator(
        task_id="create_table",
        table_name="{{ params.table_name }}",
        keyfield_locator_type="{{ params.keyfield_locator_type }}",
    )

with DAG("table_setup_dcp_attributes", params={"table_name": "t", "attributes": []}, **COMMON):
    create = OptimizelyDcpCreateTableOperator(task_id="create_table", table_name="{{ params.table_name }}")
    OptimizelyDcpRegisterAttributesOperator(
        task_id="register_attributes", table_id=create.output, attributes="{{ params.attributes }}"
    )

INFERRED = {"source_table": "s", "identifier_column": "customer_id", "exclude": [], "overrides": {}}

with DAG("table_setup_dcp_inferred", params={"table_name": "t", **INFERRED}, **COMMON):
    create = OptimizelyDcpCreateTableOperator(task_id="create_table", table_name="{{ params.table_name }}")
    OptimizelyDcpRegisterAttributesOperator(
        task_id="register_attributes",
        table_id=create.output,
        sql_conn_id="warehouse",
        source_table="{{ params.source_table }}",
        identifier_column="{{ params.identifier_column }}",
        exclude="{{ params.exclude }}",
        overrides="{{ params.overrides }}",
    )

with DAG("table_setup_odp_attributes", params={"object_type": "t", "attributes": []}, **COMMON):
    create = OptimizelyOdpCreateObjectTypeOperator(
        task_id="create_object_type", object_type="{{ params.object_type }}"
    )
    OptimizelyOdpRegisterFieldsOperator(
        task_id="register_fields", object_type=create.output, attributes="{{ params.attributes }}"
    )

with DAG("table_setup_odp_inferred", params={"object_type": "t", **INFERRED}, **COMMON):
    create = OptimizelyOdpCreateObjectTypeOperator(
        task_id="create_object_type", object_type="{{ params.object_type }}"
    )
    OptimizelyOdpRegisterFieldsOperator(
        task_id="register_fields",
        object_type=create.output,
        sql_conn_id="warehouse",
        source_table="{{ params.source_table }}",
        identifier_column="{{ params.identifier_column }}",
        exclude="{{ params.exclude }}",
        overrides="{{ params.overrides }}",
    )

with DAG(
    "table_setup_optimove_create",
    params={"name": "t", "primary_key": "customer_id", "recreate_if_missing": False},
    **COMMON,
):
    OptimoveCreateDataConnectionOperator(
        task_id="create_data_connection",
        name="{{ params.name }}",
        primary_key="{{ params.primary_key }}",
        recreate_if_missing="{{ params.recreate_if_missing }}",
    )
