"""What each process of the cluster runs (its command line and environment), and how a Celery worker
shows it is ready (it answers a ``ping``, as ``celery inspect ping`` sends it)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from pathlib import Path

from scripts.cluster.settings import (
    HOSTNAME_ENV,
    LOOPBACK,
    MEMBER_ENV,
    REPO_ROOT,
    ClusterSettings,
    celery_node_name,
    worker_hostname,
    worker_queue,
)

CORE_MEMBERS = ("api-server", "scheduler", "dag-processor", "triggerer")
# Started by ``LocalCluster.up(owner_pid=...)``: stops the cluster when its owner (a test session) ends.
WATCHDOG = "watchdog"


def process_env(settings: ClusterSettings, home: Path, name: str) -> dict[str, str]:
    """The environment of one process: the caller's, without any Airflow setting (a test session's own
    ``AIRFLOW_HOME``/``AIRFLOW__*`` must not leak in), plus the cluster's and ``extra_env``."""
    env = {key: value for key, value in os.environ.items() if not key.lstrip("_").startswith("AIRFLOW")}
    env.pop(HOSTNAME_ENV, None)
    python_path = [str(REPO_ROOT), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    env.update(
        AIRFLOW_HOME=str(home),
        # scripts.cluster.hostname must be importable by the workers.
        PYTHONPATH=os.pathsep.join(python_path),
        PYTHONUNBUFFERED="1",
        # setproctitle (Celery and the api-server rename their processes) would otherwise write the new
        # title over the environment, where `down` reads each process's mark.
        SPT_NOENV="1",
        **{MEMBER_ENV: f"{settings.cluster_id}/{name}"},
    )
    if name in settings.worker_names():
        env[HOSTNAME_ENV] = worker_hostname(settings.cluster_id, name)
        env["AIRFLOW__CORE__HOSTNAME_CALLABLE"] = "scripts.cluster.hostname.worker_hostname"
    env.update(settings.extra_env)
    return env


def command(settings: ClusterSettings, name: str, api_port: int) -> list[str]:
    airflow = [sys.executable, "-m", "airflow"]
    if name == "api-server":
        return [*airflow, "api-server", "--host", LOOPBACK, "--port", str(api_port), "--workers", "1"]
    if name == "scheduler":
        return [*airflow, "scheduler", "--skip-serve-logs"]
    if name == "dag-processor":
        return [*airflow, "dag-processor"]
    if name == "triggerer":
        return [*airflow, "triggerer", "--skip-serve-logs"]
    if name in settings.worker_names():
        # Task logs are read from the shared log folder, so no worker serves them (that would be one
        # more port per worker). Mingle and gossip only slow the start of a local worker.
        return [
            *airflow,
            *("celery", "worker", "--celery-hostname", celery_node_name(settings.cluster_id, name)),
            *("--queues", f"{settings.queue},{worker_queue(name)}"),
            *("--concurrency", str(settings.worker_concurrency)),
            *("--skip-serve-logs", "--without-mingle", "--without-gossip"),
        ]
    raise ValueError(f"no cluster process {name!r}")


def watchdog_command(folder: Path, owner_pid: int, drop_database: bool) -> list[str]:
    command = [sys.executable, "-m", "scripts.cluster", "watch", "--folder", str(folder)]
    return [*command, "--owner", str(owner_pid), *(["--drop-db"] if drop_database else [])]


def ping_workers(settings: ClusterSettings, workers: Iterable[str], timeout: float = 1.0) -> set[str]:
    """The workers that answer a Celery ``ping`` within ``timeout``."""
    from celery import Celery

    nodes = {celery_node_name(settings.cluster_id, worker): worker for worker in workers}
    app = Celery(
        "cluster-ping",
        broker=settings.celery_url,
        broker_transport_options={"global_keyprefix": settings.redis_prefix},
    )
    try:
        replies = app.control.ping(destination=list(nodes), timeout=timeout)
    finally:
        app.close()
    return {nodes[node] for reply in replies for node in reply if node in nodes}
