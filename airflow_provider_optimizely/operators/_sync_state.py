"""The Airflow side of the sync state: where it is kept, what names a sync and a run, and how a row-sync
operator begins and ends its run (``SyncStateMixin``).

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
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseHook, ObjectStoragePath
from airflow.sdk.configuration import conf
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_optimizely import __version__
from airflow_provider_optimizely.core.incremental import close
from airflow_provider_optimizely.core.report import RunReport
from airflow_provider_optimizely.core.sync import Writer
from airflow_provider_optimizely.core.sync_state import IntervalRun, KeyRun, StateStore, SyncState
from airflow_provider_optimizely.operators._base import as_bool

if TYPE_CHECKING:
    from airflow.sdk import Context

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


# Answers are written to the sync state at least this many items at a time (each acknowledged batch of
# ODP or Optimove is one write) and every few seconds: at one profile a request (DCP, Profile Store), a
# write a profile would cost more than the profile.
CHECKPOINT_ITEMS = 100
CHECKPOINT_SECONDS = 5.0


class SyncStateMixin:
    """The row-sync operator's use of the sync state: begin a run of this attempt, end it."""

    keeps_state: ClassVar[bool]
    incremental: bool | str
    dry_run_only: bool | str
    full_refresh: bool | str
    sync_id: str | None
    partition: Any
    conn_id: str
    state_store: str | None
    state_store_conn_id: str | None
    log: Any

    def begin_state(self, writer: Writer, hook: Any, context: Context) -> KeyRun | IntervalRun | None:
        """The sync state's run for this attempt, or None when the sync keeps no state."""
        ti = self.state_wanted(context)
        if ti is None:
            return None
        dry_run = as_bool(self.dry_run_only, "dry_run")
        sync_id = self.sync_id or default_sync_id(ti, writer.target, self.partition)
        state = self.state_of(sync_id)
        # The provider's version: a row is compared as the source holds it, not as its payload, so a
        # release that makes other payloads of the same row sends every row again
        # (core.source_fingerprints).
        signature = {
            **writer.signature,
            "conn_id": self.conn_id,
            "endpoint": hook.base_url,
            "provider_version": __version__,
        }
        run = state.begin_run(
            run_key(ti),
            signature,
            full_refresh=as_bool(self.full_refresh, "full_refresh"),
            dry_run=dry_run,
            checkpoint_every_items=max(CHECKPOINT_ITEMS, writer.batch_size),
            checkpoint_every_seconds=CHECKPOINT_SECONDS,
        )
        if run.full:
            self.log.info("sync %r: every row is sent (%s)", sync_id, run.full_reason)
        else:
            self.log.info(
                "sync %r: only new and changed rows are sent (%d key(s) in its state)",
                sync_id,
                run.committed_keys,
            )
        if run.resumed:
            self.log.info(
                "sync %r: attempt %d resumes this run: %d row(s) answered before are not sent again",
                sync_id,
                run.attempt,
                run.acknowledged_before,
            )
        if not dry_run:
            writer.resume(run.metadata)
            run.flush()  # the metadata is kept before the first row goes out
        return run

    def state_wanted(self, context: Context) -> Any:
        """The task instance, when this sync keeps a state (else None)."""
        if not (self.keeps_state and as_bool(self.incremental, "incremental")):
            if as_bool(self.dry_run_only, "dry_run"):
                raise AirflowFailException("dry_run compares with the sync state: it needs incremental=True")
            return None
        ti = context.get("ti")
        if ti is None:  # execute() called outside Airflow: no run to name the state after
            self.log.info("no task instance: the sync keeps no state")
        return ti

    def state_of(self, sync_id: str) -> SyncState:
        return open_state_store(self.state_store, self.state_store_conn_id).sync(sync_id)

    def _end(self, run: KeyRun | IntervalRun | None, report: RunReport, *, commit: bool) -> None:
        if run is None:
            return
        # A run that did not finish keeps its checkpoints: a retry resumes from them.
        counts = {"rows_read": report.rows_read, "rows_succeeded": report.rows_succeeded}
        report.sync_state = close(run, keep=commit, summary=counts)
