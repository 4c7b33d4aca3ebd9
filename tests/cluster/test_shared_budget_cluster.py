"""The issue's run on the real CeleryExecutor cluster: a 400,000-row sync as 8 mapped partitions into ODP
profiles (10 requests a second, enforced in real seconds) and into Optimove (a budget the emulator
announces in its headers), spread over two workers whose tasks draw on one rate budget in Redis."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from airflow_provider_optimizely.emulator.handle import EmulatorHandle
from airflow_provider_optimizely.hooks.optimove import OptimoveHook
from scripts.cluster import AirflowApi, LocalCluster

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

ROWS = 400_000
PARTITIONS = 8
ODP_LIMIT = 10  # a second: the published limit, enforced by the emulator from the start
OPTIMOVE_LIMIT = 20  # a second, announced in X-RateLimit-* and enforced


def _write(path: Path, header: list[str], rows) -> str:
    with open(path, "w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(header)
        writer.writerows(rows)
    return str(path)


def test_eight_partitions_on_two_workers_share_each_accounts_budget(
    airflow_cluster: LocalCluster,
    cluster_api: AirflowApi,
    emulator: EmulatorHandle,
    all_workers_running: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
):
    emulator.set_time_scale(1.0)  # real seconds: ODP's window is one second, as the vendor's
    emulator.set_rate_limit("optimove", OPTIMOVE_LIMIT, window_seconds=1)
    for name, value in emulator.airflow_env().items():
        monkeypatch.setenv(name, value)
    uuid = OptimoveHook().create_connection("shared", primary_key="user_id").data_connection_uuid
    odp_path = _write(
        tmp_path / "odp.csv",
        ["email", "first_name", "city"],
        ((f"user{i}@example.com", f"Name{i}", f"City {i % 50}") for i in range(ROWS)),
    )
    optimove_path = _write(
        tmp_path / "optimove.csv",
        ["user_id", "email", "city"],
        ((i, f"user{i}@example.com", f"City {i % 50}") for i in range(ROWS)),
    )
    conf = {
        "odp_path": odp_path,
        "optimove_path": optimove_path,
        "data_connection_uuid": uuid,
        "partitions": PARTITIONS,
    }

    outcome = cluster_api.run("cluster_shared_budget", conf, timeout=480)

    outcome.assert_success()
    mapped = [ti for ti in outcome.task_instances if ti["task_id"] in ("odp", "optimove")]
    assert len(mapped) == 2 * PARTITIONS
    assert {ti["hostname"] for ti in mapped} == {
        airflow_cluster.worker_hostname(worker) for worker in all_workers_running
    }
    for task_id in ("odp", "optimove"):
        reports = [
            cluster_api.xcom(outcome.dag_id, outcome.run_id, task_id, map_index=i) for i in range(PARTITIONS)
        ]
        assert sum(report["rows_succeeded"] for report in reports) == ROWS, task_id
        assert all(report["rows_rejected"] == 0 for report in reports), task_id
    # Every window the emulator counted held at most the limit, and it refused nothing.
    windows = emulator.rate_windows()
    assert max(windows["odp:POST /profiles"]["windows"].values()) <= ODP_LIMIT
    assert max(windows["optimove"]["windows"].values()) <= OPTIMOVE_LIMIT
    for api in ("odp", "optimove"):
        faults = emulator.received(api)["faults"]
        assert not [kind for kind in faults if kind.endswith("rate_limited")], faults
    # Nothing lost, nothing sent twice (no report counts a resend).
    profiles = emulator.received("odp")["items"]["odp_profiles"]
    assert (profiles["distinct"], profiles["duplicates"]) == (ROWS, 0)
    records = emulator.state("optimove")["records"][uuid]
    assert len(records) == ROWS
