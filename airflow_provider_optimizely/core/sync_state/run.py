"""One attempt of a sync run over a key range: classify, acknowledge, list the unseen, commit."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from airflow_provider_optimizely.core.sync_state.checkpoints import Attempt, Checkpointer, RunFolder
from airflow_provider_optimizely.core.sync_state.classify import (
    Classification,
    Classifier,
    ItemClass,
    PriorAcks,
    as_uint64,
)
from airflow_provider_optimizely.core.sync_state.commit import Slice, commit
from airflow_provider_optimizely.core.sync_state.generation import (
    DELETED,
    FAILED,
    OK,
    CommittedKeys,
)
from airflow_provider_optimizely.core.sync_state.hashing import key_hashes
from airflow_provider_optimizely.core.sync_state.manifest import Manifest


class RunClosedError(RuntimeError):
    """The run was committed or abandoned, or is a dry run that may not write."""


class KeyRun:
    """One attempt of a run (``SyncState.begin_run`` makes it). What it found is in its attributes:

    - ``full`` / ``full_reason``: every item is sent, and why (``"first run"``, ``"full_refresh"``,
      ``"signature changed: mapping, primary_key"``); ``signature_changes`` names the changed fields.
    - ``resumed``: earlier attempts of this run key acknowledged ``acknowledged_before`` keys, which
      ``classify`` calls ``ACKNOWLEDGED``; ``unanswered_before`` were sent with no answer recorded
      (``RESENT``). ``attempt`` counts the attempts, this one included.
    - ``recovered``: run keys of other runs that stopped for good without committing, whose
      acknowledged keys were committed before this run began.
    - ``base_generation``, ``committed_keys``: the committed state this run compares against.
    - ``metadata``: a dict the caller fills; kept with the checkpoints, given back to a later attempt.
    """

    def __init__(
        self,
        area: Slice,
        *,
        run_key: str,
        signature: dict[str, Any],
        manifest: Manifest | None,
        committed: CommittedKeys,
        prior: PriorAcks,
        earlier: list[Attempt],
        attempt: Attempt,
        full_reason: str | None,
        signature_changes: list[str],
        recovered: list[str],
        dry_run: bool,
        checkpoint_every_items: int,
        checkpoint_every_seconds: float | None,
        sample_size: int,
    ) -> None:
        self.area = area
        self.run_key = run_key
        self.signature = signature
        self.manifest = manifest
        self.full_reason = full_reason
        self.full = full_reason is not None
        self.signature_changes = signature_changes
        self.recovered = recovered
        self.dry_run = dry_run
        self.attempt = len(earlier) + 1
        self.resumed = len(prior) > 0 or len(prior.unanswered) > 0
        self.acknowledged_before = prior.acknowledged
        self.unanswered_before = len(prior.unanswered)
        self.base_generation = manifest.generation if manifest else 0
        self.committed_keys = len(committed)
        self.metadata: dict[str, Any] = attempt.metadata
        self._attempt = attempt
        self._prior = prior
        self._classifier = Classifier(committed, prior, area.key_range, self.full)
        self._folder = RunFolder(area.storage, area.path, run_key)
        self._checkpoints = Checkpointer(
            self._folder, attempt, every_items=checkpoint_every_items, every_seconds=checkpoint_every_seconds
        )
        self._deleted: list[np.ndarray] = []
        self._sample_size = sample_size
        self.samples: dict[str, list[str]] = {c.label: [] for c in ItemClass}
        self.acknowledged = {"ok": 0, "failed": 0, "deleted": 0}
        self._counting = threading.Lock()
        self._closed = False

    # -- change detection ----------------------------------------------------------------------------

    def classify(
        self, key_hashes: Any, fingerprints: Any, keys: Sequence[str] | None = None
    ) -> Classification:
        """Classify a page's items (parallel ``uint64`` arrays or lists) and mark them seen. With
        ``keys``, the first ``sample_size`` keys of each class are kept in ``samples``."""
        result = self._classifier.classify(key_hashes, fingerprints)
        if keys is not None:
            for item_class in ItemClass:
                sample = self.samples[item_class.label]
                if len(sample) < self._sample_size and self._classifier.totals[item_class]:
                    for index in result.indexes(item_class)[: self._sample_size - len(sample)]:
                        sample.append(str(keys[index]))
        return result

    @property
    def counts(self) -> dict[str, int]:
        """Items classified so far, by class label."""
        return self._classifier.totals_by_label()

    @property
    def items_classified(self) -> int:
        return int(self._classifier.totals.sum())

    # -- checkpoints ---------------------------------------------------------------------------------

    def dispatching(self, key_hashes: Any) -> None:
        """Record, durably, that these keys are about to be sent (optional: one write a call). After a
        crash, the next attempt calls those with no answer ``RESENT``: the exact count of items that
        may have been applied twice."""
        hashes = self._check_in_range(as_uint64(key_hashes))
        self._write()
        self._checkpoints.dispatch(hashes)

    def acknowledge(self, key_hashes: Any, keys: Any, fingerprints: Any, ok: bool | Any = True) -> None:
        """Record the API's answer for items sent: ``ok`` (one bool, or one a item) says which succeeded.
        A failed item keeps its last good fingerprint and is marked failed: the next run sends it again
        (``CARRIED_OVER``). Durable as the checkpoint policy says; thread-safe."""
        hashes = self._check_in_range(as_uint64(key_hashes))
        self._write()
        outcomes = np.where(np.asarray(ok, dtype=bool), OK, FAILED).astype(np.uint8)
        if outcomes.ndim == 0:
            outcomes = np.full(len(hashes), outcomes, dtype=np.uint8)
        if not len(hashes) == len(outcomes) == len(fingerprints) == len(keys):
            raise ValueError("acknowledge takes as many key hashes, keys, fingerprints and outcomes")
        failed = int(np.count_nonzero(outcomes))
        with self._counting:
            self.acknowledged["ok"] += len(hashes) - failed
            self.acknowledged["failed"] += failed
        self._checkpoints.add(hashes, keys, fingerprints, outcomes)

    def acknowledge_deleted(self, keys: Sequence[str]) -> None:
        """Record keys the API deleted (mirror mode): the commit drops them from the state."""
        hashes = self._check_in_range(key_hashes(keys))
        self._write()
        with self._counting:
            self._deleted.append(hashes)
            self.acknowledged["deleted"] += len(hashes)
        zeros = np.zeros(len(hashes), np.uint64)
        self._checkpoints.add(hashes, keys, zeros, np.full(len(hashes), DELETED, np.uint8))

    def flush(self) -> None:
        """Write what waits now, and the metadata (call it after setting ``metadata`` that must survive
        a crash, before the first send)."""
        self._write()
        self._checkpoints.flush()

    @property
    def checkpointed(self) -> int:
        """Entries this attempt wrote out."""
        return self._checkpoints.rows_written

    # -- keys gone from the source -------------------------------------------------------------------

    def _unseen_mask(self, start: int, hashes: np.ndarray) -> np.ndarray:
        unseen = ~self._classifier.seen[start : start + len(hashes)]
        for deleted in [self._prior.deleted, *self._deleted]:
            if len(deleted):
                unseen &= ~np.isin(hashes, deleted)
        return unseen

    def unseen_count(self) -> int:
        """Committed keys that no page classified so far held (and that are not deleted yet)."""
        committed = self._classifier.committed
        return int(np.count_nonzero(self._unseen_mask(0, committed.hashes)))

    def unseen_keys(self) -> Iterator[str]:
        """The keys of ``unseen_count``, read a file of the committed state at a time. Call it once the
        whole source was classified: before that, every key not read yet looks gone."""
        if self.manifest is None:
            return
        start = 0
        for table in self.area.files(self.manifest, ["key_hash", "key"]):
            hashes = table.column("key_hash").to_numpy()
            mask = self._unseen_mask(start, hashes)
            start += len(hashes)
            if mask.any():
                yield from table.column("key").filter(pa.array(mask)).to_pylist()

    # -- the end -------------------------------------------------------------------------------------

    def commit(self, summary: Mapping[str, Any] | None = None) -> Manifest:
        """Merge the committed state with every acknowledged entry of this run (all its attempts) into a
        new generation, publish it, and remove this run's checkpoints. ``summary`` (JSON-ready) is kept
        as the manifest's ``last_run`` beside the run's own counts. ``StateConflictError`` if another
        attempt committed since this one began."""
        self._write()
        self._checkpoints.flush()
        names = self._folder.all_files()
        answers = self._folder.read_answers([name for name in names if name.startswith("acks-")])
        last_run = {
            "run_key": self.run_key,
            "attempt": self.attempt,
            "full": self.full,
            "full_reason": self.full_reason,
            "classified": self.counts,
            "acknowledged": answers.counts(),
            "resumed": self.resumed,
            "acknowledged_before": self.acknowledged_before,
            **dict(summary or {}),
        }
        manifest = commit(
            self.area,
            self.manifest,
            answers,
            signature=self.signature,
            run_key=self.run_key,
            last_run=last_run,
            committed=self._classifier.committed,
        )
        self._closed = True
        self._folder.remove(names)
        return manifest

    def abandon(self) -> None:
        """End the run without committing. A dry run wrote nothing; a run that sent keys keeps its
        checkpoints, so that a later attempt of it resumes (or a later run commits them)."""
        if not self.dry_run and not self._closed and self._checkpoints.waiting:
            self._checkpoints.flush()  # answers received are facts about the target: keep them
        self._closed = True

    def summary(self) -> dict[str, Any]:
        """What this attempt found and did, JSON-ready (for the run report)."""
        return {
            "full": self.full,
            "full_reason": self.full_reason,
            "resumed": self.resumed,
            "attempt": self.attempt,
            "acknowledged_before": self.acknowledged_before,
            "unanswered_before": self.unanswered_before,
            "recovered_runs": self.recovered,
            "classified": self.counts,
            "acknowledged": dict(self.acknowledged),
            "samples": {label: keys for label, keys in self.samples.items() if keys},
        }

    def _write(self) -> None:
        if self.dry_run:
            raise RunClosedError("a dry run writes nothing: it may classify, not acknowledge or commit")
        if self._closed:
            raise RunClosedError(f"run {self.run_key!r} was committed or abandoned")

    def _check_in_range(self, hashes: np.ndarray) -> np.ndarray:
        if self.area.key_range.whole:
            return hashes
        outside = ~self.area.key_range.contains(hashes)
        if outside.any():
            raise ValueError(f"{int(outside.sum())} key(s) lie outside {self.area.key_range}")
        return hashes
