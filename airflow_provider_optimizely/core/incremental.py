"""Incremental syncs: between the source and the API, only what changed goes out.

The sync state (``core.sync_state``) keeps, for every key, a fingerprint of what was last sent for it
and whether the API took it. A ``ChangeFilter`` sits in ``core.sync.run_sync``:

- ``preselect(page)``: for a page of a CSV, a SQL result or a JSON Lines file, fingerprint each row as the
  source holds it (``core.source_fingerprints``), ask the state which rows to send (new, changed, carried
  over from a failed send, or in flight when an earlier attempt of this run stopped), and hand the
  writer only those to prepare;
- ``select(batch)``: encode each prepared item's body once (the request sends those same bytes); for
  items of rows given as a list, fingerprint that payload and keep only the items to send;
- ``dispatching(batch)``: just before a batch's request goes on the wire, past its rate-limit and pacing
  waits (``core.send_mark``), mark its items sent (one durable write a batch, for writers of many items
  a request): after a crash, the next attempt counts exactly those that had no answer as resent;
- ``record(batch, result)``: once the API answered a batch, record it: a refused item keeps its old
  fingerprint and is marked failed, so the next run sends it again.

Events have no key to compare: ``EventFilter`` does the same for the events of one data interval
(``IntervalRun``), each event's identity being the fingerprint of its payload, so that a rerun of a done
interval sends nothing and a resumed one sends only what had no answer.

A dry run classifies without sending or recording anything.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from airflow_provider_optimizely.core.json_body import encode_json_each
from airflow_provider_optimizely.core.json_records import EncodedRecords
from airflow_provider_optimizely.core.page import Page
from airflow_provider_optimizely.core.partitions import Partition
from airflow_provider_optimizely.core.source_fingerprints import (
    Preselection,
    SourceRows,
    fingerprinted,
    fingerprinted_columns,
    preselect,
)
from airflow_provider_optimizely.core.sync import Batch, BatchResult, Writer, columns_of
from airflow_provider_optimizely.core.sync_state import IntervalRun, KeyRun, fingerprints, key_hashes


def encoded_bodies(bodies: Sequence[Any]) -> tuple[Sequence[Any], Sequence[Any]]:
    """``(bodies to send, their payload bytes)``: JSON written once, here, and sent as it is
    (``msgspec.Raw``), so that a fingerprint is of the very bytes the API receives."""
    if isinstance(bodies, EncodedRecords):
        return bodies, bodies.payloads()
    payloads = encode_json_each(bodies)
    return list(map(msgspec.Raw, payloads)), payloads


def answered_ok(batch: Batch, result: BatchResult) -> bool | list[bool]:
    """Whether the API took each item of ``batch`` (``True``: all of them)."""
    refused = {rejection.row for rejection in result.rejected}
    return [row not in refused for row in batch.rows] if refused else True


class ChangeFilter:
    """Sends only what the sync state says changed; records what the API answered.

    ``marks_dispatch``: whether each batch is marked before it is sent, so that a resumed run counts
    exactly the items it sends again. A mark is an append to a log on a local store, but a file of its
    own on an object store: there, for one item a request (DCP, Profile Store), it would cost a PUT a
    row, and a resumed run cannot tell resent items from new ones.

    With the writer's ``key_column`` (and its ``mapping``), the rows of a CSV, a SQL result or a JSON
    Lines file are fingerprinted as the source holds them, before they are prepared (``preselect``,
    ``core.source_fingerprints``); other rows by the payload their writer made of them (``select``).
    One source gives one kind: its pages are all of one sort.
    """

    def __init__(
        self,
        run: KeyRun,
        *,
        marks_dispatch: bool = True,
        key_column: str | None = None,
        mapping: Mapping[str, str] | None = None,
    ) -> None:
        self.run = run
        self.marks_dispatch = marks_dispatch
        self.key_column = key_column
        self.mapping = mapping
        self._columns: list[str] | None = None

    @property
    def dry_run(self) -> bool:
        return self.run.dry_run

    def preselect(self, page: Page, partition: Partition | None = None) -> Preselection | None:
        """For a CSV, SQL or JSON Lines page: its rows to prepare (new, changed, carried over, resent,
        and any it can't key), classified by their values; None for another page (``select`` then
        classifies its items once prepared)."""
        if self.key_column is None or not fingerprinted(page):
            return None
        if self._columns is None and page.lines is None:  # a line is fingerprinted whole
            self._columns = fingerprinted_columns(columns_of(page), self.key_column, self.mapping)
        rows = SourceRows.of(page, self._columns or [], self.key_column, all_sent=self.run.full)
        return preselect(self.run, rows, page, partition, dry_run=self.dry_run)

    def select(self, batch: Batch) -> Batch:
        """The items of ``batch`` to send, each with its key hash and fingerprint (kept as they are for
        items ``preselect`` chose)."""
        if not len(batch):
            return batch
        if batch.prints is not None:
            bodies, _ = encoded_bodies(batch.bodies)
            return Batch(batch.rows, batch.keys, bodies, batch.hashes, batch.prints)
        bodies, payloads = encoded_bodies(batch.bodies)
        hashes, prints = key_hashes(batch.keys), fingerprints(payloads)
        classes = self.run.classify(hashes, prints, keys=batch.keys)
        fingerprinted = Batch(batch.rows, batch.keys, bodies, hashes, prints)
        chosen = classes.indexes()
        if self.dry_run:
            return Batch()
        return fingerprinted if len(chosen) == len(batch) else fingerprinted.subset(chosen)

    def dispatching(self, batch: Batch) -> None:
        if self.marks_dispatch and len(batch) and batch.hashes is not None:
            self.run.dispatching(batch.hashes)

    def record(self, batch: Batch, result: BatchResult) -> None:
        """The API's answer to ``batch``: refused items are marked failed (carried over next run)."""
        if len(batch) and batch.hashes is not None:
            self.run.acknowledge(batch.hashes, batch.keys, batch.prints, answered_ok(batch, result))


class EventFilter:
    """Sends only the events of an interval that no earlier attempt (or run) had answered."""

    def __init__(self, run: IntervalRun) -> None:
        self.run = run

    def preselect(self, page: Page, partition: Partition | None = None) -> None:
        """Events are identified by their payload, once prepared (``select``)."""

    def select(self, batch: Batch) -> Batch:
        if not len(batch):
            return batch
        bodies, payloads = encoded_bodies(batch.bodies)
        ids = fingerprints(payloads)
        chosen = self.run.classify(ids).indexes()
        if self.run.dry_run:
            return Batch()
        identified = Batch(batch.rows, batch.keys, bodies, ids, ids)
        return identified if len(chosen) == len(batch) else identified.subset(chosen)

    def dispatching(self, batch: Batch) -> None:
        if len(batch) and batch.hashes is not None:
            self.run.dispatching(batch.hashes)

    def record(self, batch: Batch, result: BatchResult) -> None:
        if len(batch) and batch.hashes is not None:
            self.run.acknowledge(batch.hashes, answered_ok(batch, result))


def change_tracking(run: KeyRun | IntervalRun, writer: Writer) -> ChangeFilter | EventFilter:
    """What sits between ``writer`` and the API for ``run``: a dispatch mark a request (on an object
    store only when requests carry many items), and fingerprints of the source's rows for a writer of
    keyed rows."""
    if isinstance(run, IntervalRun):
        return EventFilter(run)
    return ChangeFilter(
        run,
        marks_dispatch=writer.batch_size > 1 or run.area.storage.appends,
        key_column=getattr(writer, "identifier_column", None),
        mapping=getattr(writer, "mapping", None),
    )


def close(run: KeyRun | IntervalRun, *, keep: bool, summary: dict[str, Any]) -> dict[str, Any]:
    """End ``run``: keep what it did (commit the keys, or record the interval done) or, for a dry run or
    a run that did not finish, keep only its checkpoints for a later attempt. Returns what the run report
    says of the state."""
    if run.dry_run or not keep:
        run.abandon()
    elif isinstance(run, IntervalRun):
        run.complete(summary)
    else:
        run.commit(summary)
    if isinstance(run, KeyRun):
        return run.summary()
    return {
        "interval": [run.start, run.end],
        "already_done": run.already_done is not None,
        "forced": run.force,
        "resumed": run.resumed,
        "attempt": run.attempt,
        "acknowledged_before": run.acknowledged_before,
        "unanswered_before": run.unanswered_before,
        "classified": run.counts,
        "acknowledged": dict(run.acknowledged),
    }
