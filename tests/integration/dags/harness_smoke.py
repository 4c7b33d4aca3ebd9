"""A DAG that only proves the integration harness runs DAGs and reads their XComs."""

from __future__ import annotations

import datetime

from airflow.sdk import DAG, task

with DAG("harness_smoke", schedule=None, start_date=datetime.datetime(2026, 1, 1), catchup=False):

    @task
    def answer(**context) -> dict:
        return {"answer": 42, "conf": dict(context["dag_run"].conf or {})}

    answer()
