"""The Airflow side of the sync state: where it is kept, and what names a sync and a run.

- The store is the operator's ``state_store`` (a URI), else the ``[optimizely] sync_state_uri`` setting
  (``AIRFLOW__OPTIMIZELY__SYNC_STATE_URI``), else the folder ``optimizely_sync_state`` in the Airflow
  home. A URI with a scheme (``s3://``, ``gs://``...) is opened as an ``ObjectStoragePath`` with
  ``state_store_conn_id`` (or ``[optimizely] sync_state_conn_id``), so that workers on other hosts (Celery,
  Kubernetes pods) share one state.
- A sync is named by the DAG, the task, its map index when mapped, and the target (``sync_id`` replaces
  that); an attempt of a run by the DAG run and map index, which an Airflow retry keeps, so it resumes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from airflow.sdk import BaseHook, ObjectStoragePath
from airflow.sdk.configuration import conf

from airflow_provider_optimizely.core.sync_state import StateStore

SECTION = "optimizely"
DEFAULT_FOLDER = "optimizely_sync_state"


def state_store_uri(asked: str | None) -> str:
    if asked:
        return asked
    configured = conf.get(SECTION, "sync_state_uri", fallback=None)
    if configured:
        return str(configured)
    home = os.environ.get("AIRFLOW_HOME") or str(Path.home() / "airflow")
    return str(Path(home) / DEFAULT_FOLDER)


def open_state_store(uri: str | None, conn_id: str | None) -> StateStore:
    """The state store at ``uri`` (see the module's docstring for the defaults)."""
    location = state_store_uri(uri)
    if "://" not in location or location.startswith("file://"):
        return StateStore.from_uri(location)
    conn_id = conn_id or conf.get(SECTION, "sync_state_conn_id", fallback=None)
    if conn_id:
        # A connection id that names nothing would leave the store to the environment's credentials.
        BaseHook.get_connection(conn_id)
    path = ObjectStoragePath(location, conn_id=conn_id)
    return StateStore(path.fs, path.path)


def default_sync_id(ti: Any, target: str | None, partition: str | None = None) -> str:
    """DAG, task, target; and the partition (``i/n``) or else the map index of a mapped task: each
    partition keeps a state of its own, whichever task instance runs it."""
    if partition:
        which = [f"partition-{str(partition).replace('/', '-of-')}"]
    elif ti.map_index is not None and ti.map_index >= 0:
        which = [str(ti.map_index)]
    else:
        which = []
    return ".".join([ti.dag_id, ti.task_id, *which, target or "target"])


def run_key(ti: Any) -> str:
    """The same for every try of one task instance's run, so that a retry resumes."""
    map_index = ti.map_index if ti.map_index is not None else -1
    return f"{ti.run_id}#{map_index}"
