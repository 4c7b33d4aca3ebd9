"""A daily DAG that sends exactly its data interval's events from PostgreSQL to ODP (test_events.py)."""

from __future__ import annotations

import datetime

from airflow.sdk import DAG, CronDataIntervalTimetable

from airflow_provider_optimizely.operators.odp import OptimizelyOdpSendEventsOperator

with DAG(
    "postgres_events_interval",
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc),
    catchup=False,
    params={"events_table": "events", "sql_conn_id": "warehouse"},
):
    OptimizelyOdpSendEventsOperator(
        task_id="send_events",
        sql_conn_id="{{ params.sql_conn_id }}",
        sql="""
            SELECT kind AS type, action, email, order_id, total, occurred_at
            FROM {{ params.events_table }}
            WHERE occurred_at >= '{{ data_interval_start }}' AND occurred_at < '{{ data_interval_end }}'
            ORDER BY occurred_at
        """,
        identifier_columns=["email"],
        fetch_size=50,
    )
