"""The fault soak (test_soak.py): profiles to ODP and Optimove and events to ODP, from files, while the
emulator fails a share of requests. The files, connections and Optimove data connection come as params."""

from __future__ import annotations

import datetime

from airflow.sdk import DAG

from airflow_provider_optimizely.operators.odp import (
    OptimizelyOdpSendEventsOperator,
    OptimizelyOdpUpsertProfilesOperator,
)
from airflow_provider_optimizely.operators.optimove import OptimoveUploadRecordsOperator

with DAG(
    "soak_sync",
    schedule=None,
    start_date=datetime.datetime(2026, 1, 1),
    catchup=False,
    params={
        "odp_conn_id": "optimizely_odp_default",
        "optimove_conn_id": "optimove_default",
        "profiles_path": "",
        "events_path": "",
        "optimove_connection": "",
    },
):
    OptimizelyOdpUpsertProfilesOperator(
        task_id="odp_profiles",
        conn_id="{{ params.odp_conn_id }}",
        path="{{ params.profiles_path }}",
        identifier_column="email",
        max_concurrency=4,
    )
    OptimoveUploadRecordsOperator(
        task_id="optimove_profiles",
        conn_id="{{ params.optimove_conn_id }}",
        path="{{ params.profiles_path }}",
        identifier_column="email",
        data_connection_uuid="{{ params.optimove_connection }}",
        max_concurrency=4,
    )
    OptimizelyOdpSendEventsOperator(
        task_id="odp_events",
        conn_id="{{ params.odp_conn_id }}",
        path="{{ params.events_path }}",
        max_concurrency=4,
    )
