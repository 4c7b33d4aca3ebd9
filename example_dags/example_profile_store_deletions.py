"""Delete the Profile Store profiles that a deletion-requests table lists, then mark the requests done.

The warehouse table ``params.requests_table`` holds ``profile_id``, ``requested_at`` and ``processed_at``
(empty until done). Each daily run deletes every profile requested before the end of its interval and
not yet processed (older misses included), then stamps those requests ``processed_at``. A profile that
is already gone counts as deleted, so a rerun after a failure is safe; the stamp runs only once every
delete succeeded.

Connections: ``optimizely_profile_store_default`` (Profile Store) and ``warehouse`` (any SQL connection).
"""

from __future__ import annotations

import datetime

from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator
from airflow.sdk import DAG, CronDataIntervalTimetable, Param

from airflow_provider_optimizely.operators.profile_store import OptimizelyProfileStoreDeleteProfilesOperator

# Both statements pick the same requests: pending ones made before the end of the run's interval (or, for a
# run triggered by hand without a logical date, which has no interval, before the day it was triggered).
PENDING_PROFILES = """
{%- set cutoff = (data_interval_end if data_interval_end is defined and data_interval_end
                  else dag_run.run_after) | ds %}
SELECT DISTINCT profile_id FROM {{ params.requests_table }}
WHERE processed_at IS NULL AND requested_at < '{{ cutoff }}'
"""
MARK_PROCESSED = """
{%- set cutoff = (data_interval_end if data_interval_end is defined and data_interval_end
                  else dag_run.run_after) | ds %}
UPDATE {{ params.requests_table }} SET processed_at = CURRENT_TIMESTAMP
WHERE processed_at IS NULL AND requested_at < '{{ cutoff }}'
"""

with DAG(
    dag_id="example_profile_store_deletions",
    description="Delete the profiles listed in a deletion-requests table",
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc),
    catchup=False,
    max_active_runs=1,
    tags=["optimizely", "profile-store", "example"],
    doc_md=__doc__,
    params={
        "requests_table": Param("deletion_requests", type="string", description="warehouse table"),
        "scope": Param("default", type="string", description="Profile Store scope of the profiles"),
    },
):
    delete_profiles = OptimizelyProfileStoreDeleteProfilesOperator(
        task_id="delete_profiles",
        sql_conn_id="warehouse",
        sql=PENDING_PROFILES,
        id_column="profile_id",
        scope="{{ params.scope }}",
        max_rejected=0,
    )

    mark_processed = SQLExecuteQueryOperator(
        task_id="mark_processed",
        conn_id="warehouse",
        sql=MARK_PROCESSED,
    )

    delete_profiles >> mark_processed
