"""DAGs that run the data operators with the params a test passes (test_upsert, test_events, test_delete,
test_bad_input). Every argument is a template over ``params``, rendered as native objects, so a test
passes a mapping as a mapping and ``None`` as ``None``."""

from __future__ import annotations

import datetime

from airflow.sdk import DAG

from airflow_provider_optimizely.operators import (
    OptimizelyDeleteProfilesOperator,
    OptimizelySendEventsOperator,
    OptimizelyUpsertProfilesOperator,
)

COMMON = {
    "schedule": None,
    "start_date": datetime.datetime(2026, 1, 1),
    "catchup": False,
    "render_template_as_native_obj": True,
}

with DAG(
    "sync_upsert_from_file",
    params={
        "conn_id": "optimizely_odp_default",
        "path": "",
        "identifier_column": "email",
        "identifier_name": None,
        "table": None,
        "column_mapping": None,
        "scope": None,
        "max_rejected": 0,
    },
    **COMMON,
):
    OptimizelyUpsertProfilesOperator(
        task_id="upsert",
        conn_id="{{ params.conn_id }}",
        path="{{ params.path }}",
        identifier_column="{{ params.identifier_column }}",
        identifier_name="{{ params.identifier_name }}",
        table="{{ params.table }}",
        column_mapping="{{ params.column_mapping }}",
        scope="{{ params.scope }}",
        max_rejected="{{ params.max_rejected }}",
        max_concurrency=4,
    )

with DAG(
    "sync_events_from_file",
    params={
        "conn_id": "optimizely_odp_default",
        "path": "",
        "event_type": None,
        "identifier_columns": None,
        "data_columns": None,
        "max_rejected": 0,
    },
    **COMMON,
):
    OptimizelySendEventsOperator(
        task_id="send_events",
        conn_id="{{ params.conn_id }}",
        path="{{ params.path }}",
        event_type="{{ params.event_type }}",
        identifier_columns="{{ params.identifier_columns }}",
        data_columns="{{ params.data_columns }}",
        max_rejected="{{ params.max_rejected }}",
    )

with DAG(
    "sync_delete_profiles",
    params={"conn_id": "optimizely_profile_store_default", "profile_ids": [], "scope": None},
    **COMMON,
):
    OptimizelyDeleteProfilesOperator(
        task_id="delete_profiles",
        conn_id="{{ params.conn_id }}",
        profile_ids="{{ params.profile_ids }}",
        scope="{{ params.scope }}",
        max_concurrency=2,
    )
