"""Sync state: what each key was last sent as, so that a sync sends only what changed and resumes.

Airflow-free. The caller computes, per item, a key hash and a fingerprint (the operators: of the row as
the source holds it, see ``core.source_fingerprints``), asks which items to send, and reports the API's
answers::

    store = StateStore.from_uri("s3://bucket/prefix", storage_options)    # or StateStore(fs, root)
    state = store.sync(sync_id, key_range=None)                           # or KeyRange(i, n), "i/n"
    run = state.begin_run(run_key, signature, full_refresh=False, dry_run=False,
                          checkpoint_every_items=1, checkpoint_every_seconds=None)
    run.full, run.full_reason, run.resumed, run.acknowledged_before, run.metadata
    for page in pages:
        hashes, prints = key_hashes(page.keys), fingerprints(page.payload_bytes)
        classes = run.classify(hashes, prints, keys=page.keys)   # .send mask, .classes, .counts()
        ... send the items where classes.send; per acknowledged batch:
        run.acknowledge(batch_hashes, batch_keys, batch_prints, ok)   # ok: bool or one bool an item
    run.unseen_count(); run.unseen_keys()     # mirror mode: committed keys the source no longer has
    run.acknowledge_deleted(keys)             # after the API deleted them
    run.commit(summary)                        # or run.abandon() (a dry run: nothing was written)

Events go by data interval: ``state.begin_interval(start, end, force=False)`` gives an ``IntervalRun``
(``already_done``, ``classify(event_ids)``, ``acknowledge(event_ids, ok)``, ``complete(summary)``),
an event's identity being ``fingerprints`` of its row's bytes.

Inspection: ``state.describe()``, ``state.reset()``, ``store.describe(sync_id)``,
``store.reset(sync_id)``, and ``python -m airflow_provider_optimizely.core.sync_state show|reset URI
SYNC_ID``. ``docs/sync-state.md`` describes the layout, the guarantees and the figures.
"""

from airflow_provider_optimizely.core.sync_state.classify import Classification, ItemClass
from airflow_provider_optimizely.core.sync_state.hashing import (
    fingerprint,
    fingerprints,
    key_hash,
    key_hashes,
)
from airflow_provider_optimizely.core.sync_state.intervals import IntervalRun
from airflow_provider_optimizely.core.sync_state.keyrange import KeyRange
from airflow_provider_optimizely.core.sync_state.manifest import Manifest, StateConflictError
from airflow_provider_optimizely.core.sync_state.run import KeyRun, RunClosedError
from airflow_provider_optimizely.core.sync_state.state import StateStore, SyncState

__all__ = [
    "Classification",
    "IntervalRun",
    "ItemClass",
    "KeyRange",
    "KeyRun",
    "Manifest",
    "RunClosedError",
    "StateConflictError",
    "StateStore",
    "SyncState",
    "fingerprint",
    "fingerprints",
    "key_hash",
    "key_hashes",
]
