"""A real Airflow with the CeleryExecutor for the tests of this folder, started once per session.

``airflow_cluster`` starts ``scripts.cluster`` (an api-server, a scheduler, a DAG processor, a triggerer
and two Celery workers, each its own process) on loopback, with ``tests/cluster/dags`` as its DAG
bundle and the session's emulator (``run_emulator()`` through the ``optimizely_emulator_session`` fixture) as
the target of the four default connections. It is stopped, and its database dropped, at the end of the
session, or by its watchdog if this process dies first.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from airflow_provider_optimizely.emulator.handle import EmulatorHandle
from scripts.cluster import AirflowApi, ClusterSettings, LocalCluster

CLUSTER_DAGS = Path(__file__).resolve().parent / "dags"
CLUSTER_DAG_IDS = (
    "cluster_odp_profiles",
    "cluster_slow_odp_profiles",
    "cluster_shared_budget",
    "cluster_customers_synced",
)


def _echo(message: str) -> None:
    print(f"[cluster] {message}", file=sys.stderr, flush=True)


# The shared rate budget's store: the machine's Redis, another database than the Celery broker's.
RATE_STORE = {"conn_type": "redis", "host": "127.0.0.1", "port": 6379, "extra": {"db": 7}}


@pytest.fixture(scope="session")
def cluster_extra_env(optimizely_emulator_session: EmulatorHandle) -> dict[str, str]:
    """More environment for every process of the cluster: ``odp_shared`` and ``optimove_shared``, the
    emulator's ODP and Optimove connections sharing their rate budget through ``rate_store``."""
    env = {"AIRFLOW_CONN_RATE_STORE": json.dumps(RATE_STORE)}
    shared = (("odp_shared", "optimizely_odp_default"), ("optimove_shared", "optimove_default"))
    for conn_id, default in shared:
        connection = optimizely_emulator_session.connection(default)
        connection["extra"] = {**connection.get("extra", {}), "rate_limit_store_conn_id": "rate_store"}
        env[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps(connection)
    return env


@pytest.fixture(scope="session")
def airflow_cluster(
    optimizely_emulator_session: EmulatorHandle,
    cluster_extra_env: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[LocalCluster]:
    settings = ClusterSettings(
        folder=tmp_path_factory.mktemp("airflow-cluster"),
        dag_folders=(CLUSTER_DAGS,),
        extra_env={**optimizely_emulator_session.airflow_env(), **cluster_extra_env},
    )
    cluster = LocalCluster(settings, echo=_echo)
    began = time.monotonic()
    try:
        cluster.up(fresh_database=True, owner_pid=os.getpid(), drop_database_after=True, timeout=300)
        api = cluster.api()
        try:
            api.wait_for_dags(CLUSTER_DAG_IDS, timeout=120)
        finally:
            api.close()
        _echo(f"ready (DAGs parsed) in {time.monotonic() - began:.1f} s; logs in {settings.folder / 'logs'}")
        yield cluster
    finally:
        stopping = time.monotonic()
        killed = cluster.down(drop_database=True)
        _echo(f"stopped in {time.monotonic() - stopping:.1f} s" + (f", killed {killed}" if killed else ""))


@pytest.fixture(scope="session")
def cluster_api(airflow_cluster: LocalCluster) -> Iterator[AirflowApi]:
    api = airflow_cluster.api()
    yield api
    api.close()


@pytest.fixture
def all_workers_running(airflow_cluster: LocalCluster) -> list[str]:
    """Every worker up (one killed by an earlier test is started again); their names."""
    workers = airflow_cluster.settings.worker_names()
    for worker in workers:
        if worker not in airflow_cluster.running_members():
            airflow_cluster.start_worker(worker)
    return workers
