"""The provider's operators on a real CeleryExecutor cluster: two workers, over loopback to the emulator."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_optimizely.emulator.handle import EmulatorHandle
from scripts.cluster import AirflowApi, LocalCluster
from tests.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]


def test_mapped_upserts_spread_over_both_workers_and_store_every_row(
    airflow_cluster: LocalCluster,
    cluster_api: AirflowApi,
    emulator: EmulatorHandle,
    all_workers_running: list[str],
):
    cluster_api.unpause("cluster_customers_synced")  # Airflow queues runs only for an unpaused DAG
    outcome = cluster_api.run("cluster_odp_profiles", {"rows": 4000, "partitions": 8}, timeout=300)

    outcome.assert_success()
    upserts = [ti for ti in outcome.task_instances if ti["task_id"] == "upsert"]
    assert sorted(ti["map_index"] for ti in upserts) == list(range(8))
    assert {ti["hostname"] for ti in upserts} == {
        airflow_cluster.worker_hostname(worker) for worker in all_workers_running
    }
    assert all(ti["try_number"] == 1 for ti in outcome.task_instances), outcome.task_instances
    reports = [
        cluster_api.xcom(outcome.dag_id, outcome.run_id, "upsert", map_index=index) for index in range(8)
    ]
    assert [report["rows_succeeded"] for report in reports] == [500] * 8
    stored = {p["identifiers"]["email"]: p["attributes"] for p in emulator.state("odp")["profiles"]}
    assert len(stored) == 4000
    assert stored["user3999@example.com"] == {"first_name": "Name3999", "city": "City 49"}
    received = emulator.received("odp")["items"]["odp_profiles"]
    assert (received["total"], received["duplicates"]) == (4000, 0)

    # Each mapped task, running at once with others, recorded its asset event (none created the asset:
    # the consumer declares it), and the scheduler started the DAG scheduled on it.
    events = cluster_api.call(
        "GET",
        "/assets/events",
        params={"source_dag_id": outcome.dag_id, "source_run_id": outcome.run_id, "limit": 100},
    )["asset_events"]
    assert sorted(e["source_map_index"] for e in events) == list(range(8))
    assert {e["uri"] for e in events} == {"optimizely-odp://optimizely_odp_default/customers"}

    def consumer_runs() -> list[dict[str, Any]]:
        runs = cluster_api.call("GET", "/dags/cluster_customers_synced/dagRuns")["dag_runs"]
        return [run for run in runs if run["run_type"] == "asset_triggered"]

    wait_until(consumer_runs, timeout=120, interval=0.5, what="the asset-triggered run of the consumer")


def test_a_task_whose_worker_is_killed_is_retried_and_finishes_on_the_other_worker(
    airflow_cluster: LocalCluster,
    cluster_api: AirflowApi,
    emulator: EmulatorHandle,
    all_workers_running: list[str],
):
    # One request a second, 100 profiles each: the task runs for ten seconds unless its worker dies.
    emulator.set_faults("odp", route="POST /profiles", delay_seconds=1.0)
    dag_id = "cluster_slow_odp_profiles"
    run_id = cluster_api.trigger(dag_id, {"rows": 1000, "partitions": 1})

    def upsert_running_after_two_batches() -> dict[str, Any]:
        sent = emulator.received("odp")["requests"].get("POST /profiles", 0)
        upserts = [ti for ti in cluster_api.task_instances(dag_id, run_id) if ti["task_id"] == "upsert"]
        return upserts[0] if upserts and upserts[0]["state"] == "running" and sent >= 2 else {}

    running = wait_until(upsert_running_after_two_batches, timeout=180, interval=0.2, what="the upsert")
    lost, survivor = sorted(
        all_workers_running, key=lambda worker: airflow_cluster.worker_hostname(worker) != running["hostname"]
    )
    assert airflow_cluster.worker_hostname(lost) == running["hostname"]
    main_pid = airflow_cluster.worker_pid(lost)

    killed = airflow_cluster.kill_worker(lost)  # kill -9: the worker, its pool and the task, at once

    assert main_pid in killed and len(killed) >= 3
    assert lost not in airflow_cluster.running_members()
    emulator.clear_faults()
    outcome = cluster_api.wait_for_run(dag_id, run_id, timeout=240)
    outcome.assert_success()
    tries = cluster_api.tries(dag_id, run_id, "upsert", 0)
    assert [(t["hostname"], t["state"]) for t in tries] == [
        (airflow_cluster.worker_hostname(lost), "failed"),
        (airflow_cluster.worker_hostname(survivor), "success"),
    ]
    stored = emulator.state("odp")["profiles"]
    assert len(stored) == 1000
    # The retry resumes from the sync state: what the lost try had had answered is not sent again. Only
    # the batch in flight when the worker died (one request of 100: max_concurrency=1) is sent again,
    # and the report counts it as resent: those rows may have been applied twice (they were if the
    # emulator had applied them before the kill), never more.
    received = emulator.received("odp")["items"]["odp_profiles"]
    assert received["distinct"] == 1000 and received["total"] == 1000 + received["duplicates"]
    report = cluster_api.xcom(dag_id, run_id, "upsert", map_index=0)
    state = report["sync_state"]
    assert state["resumed"] is True and state["acknowledged_before"] >= 200
    assert received["duplicates"] <= state["classified"]["resent"] <= 100
    assert report["rows_succeeded"] == 1000 - state["acknowledged_before"]
