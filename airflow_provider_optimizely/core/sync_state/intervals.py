"""Events by data interval: an interval that succeeded is not sent again; a crashed one resumes.

An interval ``[start, end)`` has a done record (``intervals/done/<interval>.json``) once a run of it
completed, and while a run goes, checkpoints (``intervals/runs/<interval>/``, as ``checkpoints`` writes
them). Intervals are matched exactly: a done day says nothing of the week around it.

Each event has an identity, the caller's ``fingerprints`` of the event's row (so the same row read
again has the same identity). Two identical rows are two events: a resumed interval skips as many
occurrences of an identity as earlier attempts had acknowledged, and sends the rest.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timezone
from typing import Any

import numpy as np

from airflow_provider_optimizely.core.sync_state.checkpoints import (
    Attempt,
    Checkpointer,
    RunFolder,
    attempt_name,
)
from airflow_provider_optimizely.core.sync_state.classify import (
    Classification,
    HashIndex,
    ItemClass,
    as_uint64,
)
from airflow_provider_optimizely.core.sync_state.generation import DISPATCHED, FAILED, OK
from airflow_provider_optimizely.core.sync_state.run import RunClosedError
from airflow_provider_optimizely.core.sync_state.storage import Storage, safe_name

_SENT = np.array([True, False, False, False, False, True, False])
_DONE = re.compile(r"^(.+)\.json$")


def interval_text(moment: Any) -> str:
    """An interval bound as ISO 8601 text (an aware datetime in UTC)."""
    if isinstance(moment, datetime):
        if moment.tzinfo is not None:
            moment = moment.astimezone(timezone.utc)
        return moment.isoformat()
    if isinstance(moment, date):
        return moment.isoformat()
    return str(moment)


class Intervals:
    """The intervals of one sync."""

    def __init__(self, storage: Storage, path: str) -> None:
        self.storage = storage
        self.path = path

    def record(self, start: Any, end: Any) -> dict[str, Any] | None:
        """The done record of ``[start, end)``, or None if no run of it completed."""
        return self.storage.read_json(f"{self.path}/done/{_name(start, end)}.json")

    def done_count(self) -> int:
        return len(self._done_names())

    def done(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Done records (the last ``limit`` by start, all if None): one read each."""
        names = self._done_names()
        chosen = names if limit is None else names[-limit:] if limit else []
        return [value for name in chosen if (value := self.storage.read_json(f"{self.path}/done/{name}"))]

    def _done_names(self) -> list[str]:
        return [name for name in self.storage.list_names(f"{self.path}/done") if _DONE.match(name)]

    def begin(
        self,
        start: Any,
        end: Any,
        *,
        force: bool = False,
        dry_run: bool = False,
        checkpoint_every_items: int = 1,
        checkpoint_every_seconds: float | None = None,
    ) -> IntervalRun:
        return IntervalRun(
            self,
            interval_text(start),
            interval_text(end),
            force=force,
            dry_run=dry_run,
            checkpoint_every_items=checkpoint_every_items,
            checkpoint_every_seconds=checkpoint_every_seconds,
        )


class IntervalRun:
    """One attempt at the events of ``[start, end)``.

    - ``already_done``: the done record of an earlier run, or None. Unless ``force``, every event is
      ``ACKNOWLEDGED`` (sent before): the caller sends nothing and says so.
    - ``resumed`` / ``acknowledged_before`` / ``unanswered_before``: what earlier attempts of this
      interval recorded, as for ``KeyRun``.
    - ``metadata``: kept with the checkpoints, given back to a later attempt.
    """

    def __init__(
        self,
        intervals: Intervals,
        start: str,
        end: str,
        *,
        force: bool,
        dry_run: bool,
        checkpoint_every_items: int,
        checkpoint_every_seconds: float | None,
    ) -> None:
        self.intervals = intervals
        self.start, self.end = start, end
        self.name = _name(start, end)
        self.force = force
        self.dry_run = dry_run
        self.already_done = intervals.record(start, end)
        self._skip_all = self.already_done is not None and not force
        self._folder = RunFolder(intervals.storage, intervals.path, f"{start}--{end}")
        earlier = sorted(self._folder.attempts(), key=lambda a: a.name)
        hashes, _, outcomes = self._folder.read_checkpoints()
        answered = (outcomes == OK) | (outcomes == FAILED)
        self._ids, self._acknowledged_counts = np.unique(hashes[answered], return_counts=True)
        self._consumed = np.zeros(len(self._ids), dtype=np.int64)
        dispatched = np.unique(hashes[outcomes == DISPATCHED])
        self._unanswered = HashIndex(dispatched[~np.isin(dispatched, self._ids)])
        self._index = HashIndex(self._ids)
        self.acknowledged_before = int(answered.sum())
        self.unanswered_before = len(self._unanswered)
        self.resumed = bool(self.acknowledged_before or self.unanswered_before)
        self.attempt = len(earlier) + 1
        attempt = Attempt(
            name=attempt_name(),
            run_key=f"{start}--{end}",
            signature={"start": start, "end": end},
            started_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            metadata=dict(earlier[-1].metadata) if earlier else {},
        )
        self.metadata = attempt.metadata
        self._checkpoints = Checkpointer(
            self._folder, attempt, every_items=checkpoint_every_items, every_seconds=checkpoint_every_seconds
        )
        self.totals = np.zeros(len(ItemClass), dtype=np.int64)
        self.acknowledged = {"ok": 0, "failed": 0}
        self._closed = False

    def classify(self, event_ids: Any) -> Classification:
        """``NEW`` (send), ``ACKNOWLEDGED`` (an earlier attempt, or an earlier run if not forced, sent
        it) or ``RESENT`` (an earlier attempt sent it with no answer recorded: send)."""
        ids = as_uint64(event_ids)
        classes = np.full(len(ids), ItemClass.ACKNOWLEDGED if self._skip_all else ItemClass.NEW, np.uint8)
        if not self._skip_all:
            if len(self._unanswered):
                classes[self._unanswered.find(ids)[0]] = ItemClass.RESENT
            found, position = self._index.find(ids)
            where = position[found]
            if len(where):
                order = np.argsort(where, kind="stable")
                ordered = where[order]
                first = np.r_[True, ordered[1:] != ordered[:-1]]
                steps = np.arange(len(ordered))
                rank = np.empty(len(ordered), dtype=np.int64)
                rank[order] = steps - np.maximum.accumulate(np.where(first, steps, 0))
                done = self._consumed[where] + rank < self._acknowledged_counts[where]
                np.add.at(self._consumed, where, 1)
                found_classes = classes[found]
                found_classes[done] = ItemClass.ACKNOWLEDGED
                classes[found] = found_classes
        self.totals += np.bincount(classes, minlength=len(ItemClass))
        return Classification(classes, _SENT[classes])

    @property
    def counts(self) -> dict[str, int]:
        return {
            c.label: int(self.totals[c])
            for c in ItemClass
            if c in (ItemClass.NEW, ItemClass.ACKNOWLEDGED, ItemClass.RESENT)
        }

    def dispatching(self, event_ids: Any) -> None:
        """Record, durably, that these events are about to be sent (see ``KeyRun.dispatching``)."""
        ids = as_uint64(event_ids)
        self._write()
        self._checkpoints.dispatch(ids)

    def acknowledge(self, event_ids: Any, ok: bool | Any = True) -> None:
        """Record the API's answer for events sent; durable as the checkpoint policy says."""
        ids = as_uint64(event_ids)
        self._write()
        outcomes = np.where(np.asarray(ok, dtype=bool), OK, FAILED).astype(np.uint8)
        if outcomes.ndim == 0:
            outcomes = np.full(len(ids), outcomes, dtype=np.uint8)
        failed = int(np.count_nonzero(outcomes))
        self.acknowledged["ok"] += len(ids) - failed
        self.acknowledged["failed"] += failed
        self._checkpoints.add(ids, [None] * len(ids), np.zeros(len(ids), np.uint64), outcomes)

    def flush(self) -> None:
        self._write()
        self._checkpoints.flush()

    def complete(self, summary: dict[str, Any] | None = None) -> dict[str, Any]:
        """Record the interval as done (with ``summary``), then remove its checkpoints."""
        self._write()
        self._checkpoints.flush()
        names = self._folder.all_files()
        answers = self._folder.read_numbers([n for n in names if n.startswith("acks-")])[2]
        record = {
            "start": self.start,
            "end": self.end,
            "completed_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "attempts": self.attempt,
            "forced": self.force,
            "acknowledged": {"ok": int((answers == OK).sum()), "failed": int((answers == FAILED).sum())},
            "classified": self.counts,
            **dict(summary or {}),
        }
        self.intervals.storage.write_json(f"{self.intervals.path}/done/{self.name}.json", record)
        self._closed = True
        self._folder.remove(names)
        return record

    def abandon(self) -> None:
        """End without completing; answers received are kept for a later attempt (a dry run wrote
        nothing)."""
        if not self.dry_run and not self._closed and self._checkpoints.waiting:
            self._checkpoints.flush()
        self._closed = True

    def _write(self) -> None:
        if self.dry_run:
            raise RunClosedError("a dry run writes nothing: it may classify, not acknowledge or complete")
        if self._closed:
            raise RunClosedError(f"interval [{self.start}, {self.end}) was completed or abandoned")


def _name(start: Any, end: Any) -> str:
    return safe_name(f"{interval_text(start)}--{interval_text(end)}")
