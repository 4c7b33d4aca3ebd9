"""Load a warehouse query into a DCP table through its S3 import path, then wait for DCP to process it.

1. ``bulk_upload`` runs ``params.sql`` on the ``warehouse`` connection and streams the rows into a CSV,
   checking every value against the DCP table's attributes as it goes; personal-data columns named in
   ``params.hash_columns`` are uploaded as salted SHA-256 hashes (the salt is the Variable
   ``dcp_hash_salt``). Nothing is uploaded when a row is bad. The file goes to the table's S3 path with
   the table's own keys; a retry of the task reuses the file it already uploaded.
2. ``wait_for_processing`` waits until Upload History lists the file as ``processed``: it checks once,
   then defers to the triggerer (``params.deferrable``), or pokes on the worker when that is false.
3. ``report`` returns what was uploaded and what DCP applied.

Connections: ``optimizely_default`` (DCP; point it at the emulator with ``optimizely-emulator``) and
``warehouse`` (any SQL connection).
"""

from __future__ import annotations

import datetime
from typing import Any

from airflow.sdk import DAG, Param, task

from airflow_provider_optimizely.operators.dcp import OptimizelyDcpBulkUploadOperator
from airflow_provider_optimizely.sensors.dcp import OptimizelyDcpUploadHistorySensor

with DAG(
    dag_id="example_dcp_bulk_upload",
    description="Warehouse query -> checked CSV in the DCP table's S3 path -> wait for Upload History",
    schedule="@daily",
    start_date=datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc),
    catchup=False,
    max_active_runs=1,
    tags=["optimizely", "dcp", "bulk-upload", "example"],
    doc_md=__doc__,
    # Renders params as Python values, so that params.deferrable reaches the sensor as a bool.
    render_template_as_native_obj=True,
    params={
        "table_id": Param(0, type="integer", description="DCP table (datasource) id"),
        "sql": Param(
            'SELECT customer_id AS "customerId", plan, visits, last_order FROM customers',
            type="string",
            description="warehouse query; its columns are the table's attributes plus customerId",
        ),
        "hash_columns": Param([], type="array", description="personal-data columns to upload hashed"),
        "deferrable": Param(True, type="boolean", description="wait in the triggerer (else poke)"),
        "poll_interval": Param(30.0, type="number", description="seconds between Upload History checks"),
    },
):
    bulk_upload = OptimizelyDcpBulkUploadOperator(
        task_id="bulk_upload",
        table_id="{{ params.table_id }}",
        sql="{{ params.sql }}",
        sql_conn_id="warehouse",
        hash_columns="{{ params.hash_columns }}",
        hash_salt_variable="dcp_hash_salt",
        retries=2,
        retry_delay=datetime.timedelta(seconds=30),
    )

    wait_for_processing = OptimizelyDcpUploadHistorySensor(
        task_id="wait_for_processing",
        uploads=bulk_upload.output,
        deferrable="{{ params.deferrable }}",
        poll_interval="{{ params.poll_interval }}",
        timeout=2 * 60 * 60,
    )

    @task
    def report(upload: dict[str, Any], processed: dict[str, Any]) -> dict[str, Any]:
        files = processed.get("files", {})
        return {
            "s3_key": upload["s3_key"],
            "rows_uploaded": upload["rows_uploaded"],
            "bytes": upload["bytes"],
            "content_hash": upload["content_hash"],
            "rows_applied": sum(f["rows_processed"] for f in files.values()),
            "rows_refused_by_dcp": sum(f["rows_failed"] for f in files.values()),
            "dcp_said": processed.get("message"),
        }

    report(bulk_upload.output, wait_for_processing.output)
