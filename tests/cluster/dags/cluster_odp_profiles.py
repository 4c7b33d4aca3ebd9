"""DAGs the cluster tests run on a real CeleryExecutor: ODP profile upserts as mapped tasks.

- ``cluster_odp_profiles``: ``params.rows`` generated profiles split into ``params.partitions`` lists,
  each upserted by one mapped task (``.partial().expand()``), so that the tasks spread over the workers.
- ``cluster_customers_synced``: scheduled on the asset of ODP ``customers`` profiles, which the upserts
  record (eight mapped tasks at once on two workers: each records its event, none creates the asset).
- ``cluster_slow_odp_profiles``: one upsert of ``params.rows`` profiles, 100 a request and one request at
  a time: with a slow emulator it runs long enough to lose its worker mid-run.

Both retry a failed task twice, a second apart: a task whose worker is lost comes back on another.
"""

from __future__ import annotations

import datetime
from typing import Any

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG, task

from airflow_provider_optimizely.assets import odp_object_asset
from airflow_provider_optimizely.operators.odp import OptimizelyOdpUpsertProfilesOperator

COMMON: dict[str, Any] = {
    "schedule": None,
    "start_date": datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc),
    "catchup": False,
    "default_args": {"retries": 2, "retry_delay": datetime.timedelta(seconds=1)},
    "tags": ["cluster-test"],
}


def profiles(count: int, partitions: int) -> list[list[dict[str, str]]]:
    rows = [
        {"email": f"user{i}@example.com", "first_name": f"Name{i}", "city": f"City {i % 50}"}
        for i in range(count)
    ]
    return [rows[part::partitions] for part in range(partitions)]


@task
def split_profiles(params: dict[str, Any] | None = None) -> list[list[dict[str, str]]]:
    assert params is not None
    return profiles(int(params["rows"]), int(params["partitions"]))


with DAG("cluster_odp_profiles", params={"rows": 4000, "partitions": 8}, **COMMON):
    OptimizelyOdpUpsertProfilesOperator.partial(
        task_id="upsert", identifier_column="email", batch_size=250, max_concurrency=1
    ).expand(rows=split_profiles())

with DAG(
    "cluster_customers_synced",
    schedule=[odp_object_asset("customers")],
    start_date=COMMON["start_date"],
    catchup=False,
    tags=["cluster-test"],
):
    EmptyOperator(task_id="profiles_synced")

with DAG("cluster_slow_odp_profiles", params={"rows": 1000, "partitions": 1}, **COMMON):
    OptimizelyOdpUpsertProfilesOperator.partial(
        task_id="upsert", identifier_column="email", batch_size=100, max_concurrency=1
    ).expand(rows=split_profiles())
