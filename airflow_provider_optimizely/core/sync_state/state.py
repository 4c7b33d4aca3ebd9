"""The state store and one sync's state: where runs begin, and what inspection and reset see."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

import fsspec
import pyarrow.compute as pc

from airflow_provider_optimizely.core.sync_state.checkpoints import Attempt, RunFolder, attempt_name, started
from airflow_provider_optimizely.core.sync_state.classify import PriorAcks
from airflow_provider_optimizely.core.sync_state.commit import Slice, commit
from airflow_provider_optimizely.core.sync_state.generation import (
    FAILED,
    CommittedKeys,
    load_committed,
)
from airflow_provider_optimizely.core.sync_state.intervals import IntervalRun, Intervals
from airflow_provider_optimizely.core.sync_state.keyrange import KeyRange
from airflow_provider_optimizely.core.sync_state.manifest import Manifest
from airflow_provider_optimizely.core.sync_state.run import KeyRun
from airflow_provider_optimizely.core.sync_state.storage import Storage, safe_name

log = logging.getLogger(__name__)
# A run folder holding only attempt files (no answers to commit) this old is removed by the next run.
STALE_ATTEMPTS = timedelta(days=7)
DEFAULT_SAMPLE_SIZE = 5


class StateStore:
    """Sync states under one root folder of an fsspec filesystem (local, ``s3://``, ``gs://``...)."""

    def __init__(self, fs: Any, root: str) -> None:
        self.storage = Storage(fs, root)

    @classmethod
    def from_uri(cls, uri: str, storage_options: Mapping[str, Any] | None = None) -> StateStore:
        """A local folder path, ``file://...``, ``s3://bucket/prefix`` (through s3fs), ``gs://``..."""
        fs, root = fsspec.core.url_to_fs(uri, **dict(storage_options or {}))
        return cls(fs, root)

    def sync(self, sync_id: str, key_range: KeyRange | tuple[int, int] | str | None = None) -> SyncState:
        return SyncState(self.storage, sync_id, KeyRange.parse(key_range))

    def key_ranges(self, sync_id: str) -> list[KeyRange]:
        """The key ranges of a sync that have a folder (one, ``KeyRange()``, unless it is split)."""
        found = []
        for name in self.storage.list_names(self.storage.path(safe_name(sync_id))):
            if name == "keys-all":
                found.append(KeyRange())
            elif name.startswith("keys-") and "-of-" in name:
                index, _, count = name[len("keys-") :].partition("-of-")
                found.append(KeyRange(int(index), int(count)))
        return sorted(found, key=lambda r: (r.count, r.index))

    def describe(self, sync_id: str, intervals_shown: int = 10) -> dict[str, Any]:
        """Every key range of a sync, how many intervals are done, and the last few of them."""
        intervals = self.sync(sync_id).intervals
        return {
            "sync_id": sync_id,
            "key_ranges": [self.sync(sync_id, r).describe() for r in self.key_ranges(sync_id)],
            "intervals_done": intervals.done_count(),
            "last_intervals_done": intervals.done(limit=intervals_shown),
        }

    def reset(self, sync_id: str) -> None:
        """Forget everything of a sync: the next run is a first run."""
        for key_range in self.key_ranges(sync_id):
            self.sync(sync_id, key_range).reset()
        self.storage.remove_tree(self.storage.path(safe_name(sync_id)))


class SyncState:
    """The state of one sync (``sync_id``) over one key range."""

    def __init__(self, storage: Storage, sync_id: str, key_range: KeyRange) -> None:
        self.sync_id = sync_id
        self.key_range = key_range
        base = storage.path(safe_name(sync_id))
        self.area = Slice(storage, sync_id, f"{base}/{key_range.name}", key_range)
        self.intervals = Intervals(storage, f"{base}/intervals")

    def begin_run(
        self,
        run_key: str,
        signature: Mapping[str, Any],
        *,
        full_refresh: bool = False,
        dry_run: bool = False,
        checkpoint_every_items: int = 1,
        checkpoint_every_seconds: float | None = None,
        sample_size: int = DEFAULT_SAMPLE_SIZE,
    ) -> KeyRun:
        """Begin (or resume) the run ``run_key``; see ``KeyRun`` for what it found.

        ``signature`` (JSON-ready: target, mapping, primary key...) is compared with the committed
        one: a difference makes a full run. Other runs that stopped for good without committing have
        their answers committed first, unless ``dry_run`` (which writes nothing at all).
        """
        signature = canonical(signature)
        recovered = [] if dry_run else self._recover(run_key, signature)
        manifest, committed = self._load()
        folder = RunFolder(self.area.storage, self.area.path, run_key)
        earlier = sorted(folder.attempts(), key=lambda a: a.name)
        resuming = bool(earlier) and earlier[-1].signature == signature
        prior = PriorAcks(*folder.read_checkpoints()) if resuming else PriorAcks.none()
        changes = changed_fields(manifest.signature, signature) if manifest else []
        if manifest is None:
            reason: str | None = "first run"
        elif full_refresh:
            reason = "full_refresh"
        elif changes:
            reason = f"signature changed: {', '.join(changes)}"
        else:
            reason = None
        attempt = Attempt(
            name=attempt_name(),
            run_key=run_key,
            signature=signature,
            started_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            metadata=dict(earlier[-1].metadata) if resuming else {},
        )
        return KeyRun(
            self.area,
            run_key=run_key,
            signature=signature,
            manifest=manifest,
            committed=committed,
            prior=prior,
            earlier=earlier if resuming else [],
            attempt=attempt,
            full_reason=reason,
            signature_changes=changes,
            recovered=recovered,
            dry_run=dry_run,
            checkpoint_every_items=checkpoint_every_items,
            checkpoint_every_seconds=checkpoint_every_seconds,
            sample_size=sample_size,
        )

    def begin_interval(self, start: Any, end: Any, **options: Any) -> IntervalRun:
        """Begin (or resume) the events of the data interval ``[start, end)``: see ``IntervalRun``."""
        return self.intervals.begin(start, end, **options)

    def describe(self, sample_size: int = DEFAULT_SAMPLE_SIZE) -> dict[str, Any]:
        """The committed state in a few lines: counts, generation, signature, the last run, the first
        carried-over keys, and the runs that left checkpoints."""
        manifest = self.area.manifest()
        runs = []
        for name in self.area.storage.list_names(f"{self.area.path}/runs"):
            folder = RunFolder.named(self.area.storage, self.area.path, name)
            attempts = folder.attempts()
            runs.append(
                {
                    "run_key": attempts[-1].run_key if attempts else name,
                    "attempts": len(attempts),
                    "checkpoint_files": len(folder.ack_files()),
                }
            )
        described: dict[str, Any] = {
            "sync_id": self.sync_id,
            "key_range": str(self.key_range),
            "generation": manifest.generation if manifest else 0,
            "runs_with_checkpoints": runs,
        }
        if manifest is None:
            return {**described, "keys": 0, "ok": 0, "failed": 0}
        carried_over: list[str] = []
        if manifest.failed:
            for table in self.area.files(manifest, ["outcome", "key"]):
                failed = table.filter(pc.equal(table.column("outcome"), FAILED)).column("key")
                carried_over += failed.slice(0, sample_size - len(carried_over)).to_pylist()
                if len(carried_over) >= sample_size:
                    break
        return {
            **described,
            "keys": manifest.keys,
            "ok": manifest.ok,
            "failed": manifest.failed,
            "carried_over_sample": carried_over,
            "committed_at": manifest.committed_at,
            "signature": manifest.signature,
            "files": len(manifest.all_files()),
            "bytes": sum(entry.bytes for entry in manifest.all_files()),
            "last_run": manifest.last_run,
        }

    def reset(self) -> None:
        """Forget this key range's state: manifests first, so that no reader sees a partial state."""
        storage = self.area.storage
        manifests = f"{self.area.path}/manifests"
        storage.remove_files([f"{manifests}/{name}" for name in storage.list_names(manifests)])
        storage.remove_tree(self.area.path)

    # -- internals -----------------------------------------------------------------------------------

    def _load(self) -> tuple[Manifest | None, CommittedKeys]:
        for _ in range(3):
            manifest = self.area.manifest()
            if manifest is None:
                return None, CommittedKeys.empty()
            try:
                return manifest, load_committed(self.area.storage, self.area.path, manifest)
            except FileNotFoundError:  # two commits came and cleaned up while the files were read
                continue
        raise RuntimeError(f"the sync state of {self.sync_id!r} kept changing while it was read")

    def _recover(self, run_key: str, signature: dict[str, Any]) -> list[str]:
        """Commit the answers of runs that will not commit themselves: other run keys' checkpoints, and
        earlier attempts of this run key under another signature (their answers were to another target
        or mapping). Oldest first. Their attempt files stay, for a run still going."""
        storage, path = self.area.storage, self.area.path
        folders = []
        for name in storage.list_names(f"{path}/runs"):
            folder = RunFolder.named(storage, path, name)
            attempts = sorted(folder.attempts(), key=lambda a: a.name)
            if not attempts:
                continue
            if name == safe_name(run_key) and attempts[-1].signature == signature:
                continue  # this run's own earlier attempts: resumed, not recovered
            folders.append((attempts[0].name, folder, attempts))
        recovered = []
        for _, folder, attempts in sorted(folders, key=lambda entry: entry[0]):
            names = folder.ack_files()
            if not names:
                if datetime.now(timezone.utc) - started(attempts[-1].name) > STALE_ATTEMPTS:
                    folder.remove(folder.all_files())
                continue
            answers = folder.read_answers(names)
            last = attempts[-1]
            log.warning("committing the answers of run %r, which stopped without committing", last.run_key)
            commit(
                self.area,
                self.area.manifest(),
                answers,
                signature=last.signature,
                run_key=last.run_key,
                last_run={"run_key": last.run_key, "recovered": True, "acknowledged": answers.counts()},
            )
            folder.remove(names + folder.dispatch_logs())
            recovered.append(last.run_key)
        return recovered


def canonical(signature: Mapping[str, Any]) -> dict[str, Any]:
    """The signature as its JSON reads back: tuples and lists, key orders, compare equal."""
    value: dict[str, Any] = json.loads(json.dumps(dict(signature), sort_keys=True, default=str))
    return value


def changed_fields(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    return sorted(name for name in {*old, *new} if old.get(name) != new.get(name))
