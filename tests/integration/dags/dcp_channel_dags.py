"""A DAG for test_dcp_channel.py: a PostgreSQL table into DCP profiles, each run by the channel its
change set calls for (``method``, ``bulk_threshold`` from the params)."""

from __future__ import annotations

import datetime

from airflow.sdk import DAG

from airflow_provider_optimizely.operators.dcp import OptimizelyDcpUpsertProfilesOperator

with DAG(
    "dcp_channel_pg",
    params={"table": "", "table_id": 0, "method": "auto", "bulk_threshold": 500, "max_rejected": 0},
    schedule=None,
    start_date=datetime.datetime(2026, 1, 1),
    catchup=False,
    render_template_as_native_obj=True,
):
    OptimizelyDcpUpsertProfilesOperator(
        task_id="upsert",
        sql_conn_id="warehouse",
        sql="SELECT customer_id, plan, visits, score, vip, since FROM {{ params.table }} "
        "ORDER BY customer_id",
        table_id="{{ params.table_id }}",
        identifier_column="customer_id",
        method="{{ params.method }}",
        bulk_threshold="{{ params.bulk_threshold }}",
        max_rejected="{{ params.max_rejected }}",
        poll_interval=0.1,
        max_concurrency=4,
    )

# The first try gives up waiting for Upload History after a second (DCP's queue is longer); Airflow's
# retry must wait for the file that try uploaded, not upload the change set again.
with DAG(
    "dcp_channel_retry",
    params={"path": "", "table_id": 0},
    schedule=None,
    start_date=datetime.datetime(2026, 1, 1),
    catchup=False,
    render_template_as_native_obj=True,
):
    OptimizelyDcpUpsertProfilesOperator(
        task_id="upsert",
        path="{{ params.path }}",
        table_id="{{ params.table_id }}",
        identifier_column="customer_id",
        method="bulk",
        upload_timeout="{{ 1 if ti.try_number == 1 else 60 }}",
        poll_interval=0.1,
        retries=1,
        retry_delay=datetime.timedelta(seconds=0),
    )
