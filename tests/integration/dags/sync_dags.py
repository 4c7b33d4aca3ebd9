"""DAGs that run each API's data operators with the params a test passes (test_upsert, test_events,
test_delete, test_bad_input). Every argument is a template over ``params``, rendered as native objects,
so a test passes a mapping as a mapping and ``None`` as ``None``."""

from __future__ import annotations

import datetime

from airflow.sdk import DAG

from airflow_provider_optimizely.operators.dcp import OptimizelyDcpUpsertProfilesOperator
from airflow_provider_optimizely.operators.odp import (
    OptimizelyOdpSendEventsOperator,
    OptimizelyOdpUpsertProfilesOperator,
)
from airflow_provider_optimizely.operators.optimove import OptimoveUploadRecordsOperator
from airflow_provider_optimizely.operators.profile_store import (
    OptimizelyProfileStoreDeleteProfilesOperator,
    OptimizelyProfileStorePutProfilesOperator,
)

COMMON = {
    "schedule": None,
    "start_date": datetime.datetime(2026, 1, 1),
    "catchup": False,
    "render_template_as_native_obj": True,
}
# What every upsert DAG takes.
SOURCE = {
    "path": "",
    "identifier_column": "email",
    "column_mapping": None,
    "max_rejected": 0,
    "full_refresh": False,
    "dry_run": False,
}

with DAG("sync_odp_profiles_from_file", params={**SOURCE, "identifier_name": None}, **COMMON):
    OptimizelyOdpUpsertProfilesOperator(
        task_id="upsert",
        path="{{ params.path }}",
        identifier_column="{{ params.identifier_column }}",
        identifier_name="{{ params.identifier_name }}",
        column_mapping="{{ params.column_mapping }}",
        max_rejected="{{ params.max_rejected }}",
        full_refresh="{{ params.full_refresh }}",
        dry_run="{{ params.dry_run }}",
        max_concurrency=4,
    )

with DAG("sync_dcp_profiles_from_file", params={**SOURCE, "table_id": 0}, **COMMON):
    OptimizelyDcpUpsertProfilesOperator(
        task_id="upsert",
        path="{{ params.path }}",
        table_id="{{ params.table_id }}",
        identifier_column="{{ params.identifier_column }}",
        column_mapping="{{ params.column_mapping }}",
        max_rejected="{{ params.max_rejected }}",
        full_refresh="{{ params.full_refresh }}",
        dry_run="{{ params.dry_run }}",
        max_concurrency=4,
    )

with DAG("sync_profile_store_from_file", params={**SOURCE, "scope": None}, **COMMON):
    OptimizelyProfileStorePutProfilesOperator(
        task_id="upsert",
        path="{{ params.path }}",
        identifier_column="{{ params.identifier_column }}",
        column_mapping="{{ params.column_mapping }}",
        scope="{{ params.scope }}",
        max_rejected="{{ params.max_rejected }}",
        full_refresh="{{ params.full_refresh }}",
        dry_run="{{ params.dry_run }}",
        max_concurrency=4,
    )

with DAG(
    "sync_optimove_from_file",
    params={**SOURCE, "data_connection_uuid": "", "allow_partial_records": False},
    **COMMON,
):
    OptimoveUploadRecordsOperator(
        task_id="upsert",
        path="{{ params.path }}",
        data_connection_uuid="{{ params.data_connection_uuid }}",
        identifier_column="{{ params.identifier_column }}",
        column_mapping="{{ params.column_mapping }}",
        allow_partial_records="{{ params.allow_partial_records }}",
        max_rejected="{{ params.max_rejected }}",
        full_refresh="{{ params.full_refresh }}",
        dry_run="{{ params.dry_run }}",
        max_concurrency=4,
    )

with DAG(
    "sync_events_from_file",
    params={
        "path": "",
        "event_type": None,
        "action": None,
        "identifier_columns": None,
        "data_columns": None,
        "max_rejected": 0,
    },
    **COMMON,
):
    OptimizelyOdpSendEventsOperator(
        task_id="send_events",
        path="{{ params.path }}",
        event_type="{{ params.event_type }}",
        action="{{ params.action }}",
        identifier_columns="{{ params.identifier_columns }}",
        data_columns="{{ params.data_columns }}",
        max_rejected="{{ params.max_rejected }}",
    )

with DAG(
    "sync_delete_profiles",
    params={
        "profile_ids": [],
        "scope": None,
        "conn_id": "optimizely_profile_store_default",
        "max_concurrency": 2,
    },
    **COMMON,
):
    OptimizelyProfileStoreDeleteProfilesOperator(
        task_id="delete_profiles",
        conn_id="{{ params.conn_id }}",
        profile_ids="{{ params.profile_ids }}",
        scope="{{ params.scope }}",
        max_concurrency="{{ params.max_concurrency }}",
    )
