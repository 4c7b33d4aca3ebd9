"""Send one day of events from a warehouse events table to ODP, every day.

Each run covers one day, ``[data_interval_start, data_interval_end)``, and sends the events that
happened in it: a rerun of a day sends that day again (and nothing else), a new day never resends an
old one. ``CronDataIntervalTimetable`` gives a daily run that interval (Airflow 3's plain ``"@daily"``
runs at a point in time, with no interval to select by).

The events table (``params.events_table``) has a row per event: ``event_type`` and ``action`` become the
event's ``type`` and ``action``; ``customer_id`` and ``email`` its identifiers; the other columns its
``data``. Connections: ``optimizely_odp_default`` (ODP) and ``warehouse`` (any SQL connection).
"""

from __future__ import annotations

import datetime

from airflow.sdk import DAG, CronDataIntervalTimetable, Param

from airflow_provider_optimizely.operators.odp import OptimizelyOdpSendEventsOperator

# Day boundaries as dates ('2026-03-02'): portable SQL that compares right with a TIMESTAMP column and
# with ISO 8601 text (SQLite), whatever the database's own timestamp literal syntax. A run triggered by
# hand without a logical date (`airflow dags trigger`, the REST API, the UI's default) has no data
# interval: it sends the last whole day before it was triggered.
DAY_OF_EVENTS = """
{%- set manual = data_interval_end is not defined or not data_interval_end -%}
{%- set end = (dag_run.run_after if manual else data_interval_end) | ds -%}
{%- set start = macros.ds_add(end, -1) if manual else data_interval_start | ds -%}
SELECT event_type, action, customer_id, email, product_id, quantity, price, occurred_at
FROM {{ params.events_table }}
WHERE occurred_at >= '{{ start }}'
  AND occurred_at < '{{ end }}'
ORDER BY occurred_at
"""

with DAG(
    dag_id="example_odp_daily_events",
    description="Send each day's warehouse events to ODP",
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc),
    catchup=False,
    max_active_runs=1,
    tags=["optimizely", "odp", "example"],
    doc_md=__doc__,
    params={"events_table": Param("events", type="string", description="warehouse table of events")},
):
    OptimizelyOdpSendEventsOperator(
        task_id="send_events",
        sql_conn_id="warehouse",
        sql=DAY_OF_EVENTS,
        type_column="event_type",
        action_column="action",
        identifier_columns={"customer_id": "customer_id", "email": "email"},
        data_columns=["product_id", "quantity", "price", "occurred_at"],
        max_rejected=0,
    )
