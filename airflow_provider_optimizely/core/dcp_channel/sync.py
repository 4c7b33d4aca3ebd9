"""A DCP profile sync by the cheaper channel for its size (``choice``): the whole flow, Airflow-free.

1. The source is read once through ``core.sync.run_sync`` as every sync reads it (rejects, partitions,
   progress), and change detection picks the items to send; instead of being sent, they are appended to
   a ``ChangeSpool`` on disk (so memory stays flat however large the change set).
2. The channel is chosen on the items that fit the file.
3. Bulk: each row of the file is marked sent in the sync state (one durable write a page), the file is
   uploaded once per run (``bulk.upload_once``), the items that did not fit the file go through the
   profile API meanwhile, and once Upload History says the file was processed each row of it is
   acknowledged (its new fingerprint kept) or carried over (its old fingerprint kept).
   REST: the spooled items go through the profile API (``run_sync`` again, over prepared items).

A try killed anywhere in 3 left its file's rows marked sent and unanswered: the retry finds them again
(``resent``), builds the same file and waits for the upload the killed try made. Nothing is acknowledged
before DCP has answered, and an acknowledgement is recorded once (the run's commit merges them).
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np

from airflow_provider_optimizely.core.concurrency import AdaptiveConcurrency
from airflow_provider_optimizely.core.dcp_channel.bulk import (
    DEFAULT_MAX_POLL_INTERVAL,
    DEFAULT_POLL_INTERVAL,
    DEFAULT_UPLOAD_TIMEOUT,
    BulkTarget,
    FileOutcome,
    upload_once,
    wait_processed,
)
from airflow_provider_optimizely.core.dcp_channel.choice import (
    BULK,
    DEFAULT_BULK_THRESHOLD,
    REST,
    choose_channel,
)
from airflow_provider_optimizely.core.dcp_channel.spool import ChangeSpool
from airflow_provider_optimizely.core.incremental import ChangeFilter, encoded_bodies
from airflow_provider_optimizely.core.page import Page
from airflow_provider_optimizely.core.partitions import Partition
from airflow_provider_optimizely.core.report import (
    Log,
    ProgressLog,
    Rejection,
    RejectLimit,
    RunReport,
    TooManyRejectedRows,
)
from airflow_provider_optimizely.core.source_fingerprints import Preselection
from airflow_provider_optimizely.core.sync import Batch, BatchResult, run_sync
from airflow_provider_optimizely.core.sync_state import ItemClass
from airflow_provider_optimizely.core.writers.dcp import DcpProfileWriter

# The passes below judge no reject limit: the rejects of all of them are judged once, at the end.
_NO_LIMIT = RejectLimit(count=sys.maxsize)
_KEYS_NAMED = 10


@dataclass(frozen=True)
class ChannelSettings:
    method: str = "auto"
    bulk_threshold: int = DEFAULT_BULK_THRESHOLD
    upload_timeout: float = DEFAULT_UPLOAD_TIMEOUT
    poll_interval: float = DEFAULT_POLL_INTERVAL
    max_poll_interval: float = DEFAULT_MAX_POLL_INTERVAL


def sync_by_channel(
    pages: Iterable[Page],
    writer: DcpProfileWriter,
    *,
    report: RunReport,
    settings: ChannelSettings,
    bulk_target: Callable[[], BulkTarget],
    changes: ChangeFilter | None = None,
    partition: Partition | None = None,
    max_concurrency: int = 4,
    concurrency: AdaptiveConcurrency | None = None,
    max_rejected: Any = 0,
    progress: ProgressLog | None = None,
    request_stats: Callable[[], Any] | None = None,
    work_dir: str | None = None,
    logger: Log,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> RunReport:
    """Send the rows of ``pages`` that changed by the channel ``settings`` choose (module doc); the
    report, filled in place, says which and why (``report.channel``)."""
    limit = RejectLimit.parse(max_rejected)
    common: dict[str, Any] = {
        "report": report,
        "partition": partition,
        "max_concurrency": max_concurrency,
        "concurrency": concurrency,
        "progress": progress,
        "request_stats": request_stats,
        "logger": logger,
    }
    if settings.method == REST or (changes is not None and changes.dry_run):
        run_sync(pages, writer, changes=changes, max_rejected=limit, **common)
        to_send = report.rows_read if changes is None else _to_send(changes)
        choice = choose_channel(settings.method, to_send, settings.bulk_threshold)
        report.channel = {"method": settings.method, "channel": choice.channel, "reason": choice.reason}
        if changes is not None and changes.dry_run:
            report.channel["dry_run"] = True
        return report
    started = clock()
    with tempfile.TemporaryDirectory(prefix="optimizely-dcp-changes-", dir=work_dir) as folder:
        spool = ChangeSpool(Path(folder))
        try:
            run_sync(
                pages, writer, changes=_Spooling(writer, spool, changes), max_rejected=_NO_LIMIT, **common
            )
        finally:
            spool.close()
        choice = choose_channel(settings.method, spool.in_file, settings.bulk_threshold)
        logger.info("channel %s", choice.reason)
        report.channel = {
            "method": settings.method,
            "channel": choice.channel,
            "reason": choice.reason,
            "threshold": settings.bulk_threshold,
            "changed": spool.items,
        }
        if choice.channel == BULK and spool.in_file:
            _bulk(spool, writer, settings, bulk_target(), changes, common, clock, sleep)
        else:
            _replay(spool.read(), writer, changes, common)
            report.channel["rows_by_profile_api"] = spool.items
    report.duration_seconds = clock() - started
    if request_stats is not None:
        report.requests = dict(request_stats())
    if report.rows_rejected and limit.exceeded_by(report.rows_rejected, report.rows_read):
        raise TooManyRejectedRows(report, limit)
    return report


def _to_send(changes: ChangeFilter) -> int:
    counts = changes.run.counts
    sent = [ItemClass.NEW, ItemClass.CHANGED, ItemClass.CARRIED_OVER, ItemClass.RESENT]
    if changes.run.full:
        sent.append(ItemClass.UNCHANGED)
    return sum(counts.get(item_class.label, 0) for item_class in sent)


def _bulk(
    spool: ChangeSpool,
    writer: DcpProfileWriter,
    settings: ChannelSettings,
    target: BulkTarget,
    changes: ChangeFilter | None,
    common: dict[str, Any],
    clock: Callable[[], float],
    sleep: Callable[[float], None],
) -> None:
    report: RunReport = common["report"]
    logger: Log = common["logger"]
    if changes is not None:
        for batch, _ in spool.read(in_file=True):  # a crash from here on counts these rows resent
            changes.run.dispatching(batch.hashes)
    key, reused = upload_once(target, spool.csv_path, spool.content_hash, logger)
    logger.info(
        "%s %d row(s), %d bytes, as %s",
        "reusing" if reused else "uploaded",
        spool.in_file,
        spool.file_bytes,
        key,
    )
    assert report.channel is not None
    by_api = spool.items - spool.in_file
    report.channel.update(
        {"file": key, "reused_upload": reused, "rows_in_file": spool.in_file, "rows_by_profile_api": by_api}
    )
    if by_api:
        logger.info(
            "%d changed row(s) leave an attribute of the file empty: sent through the profile API", by_api
        )
        _replay(spool.read(in_file=False), writer, changes, common)
    entry = wait_processed(
        target,
        key,
        timeout=settings.upload_timeout,
        poll_interval=settings.poll_interval,
        max_poll_interval=settings.max_poll_interval,
        log=logger,
        clock=clock,
        sleep=sleep,
    )
    outcome = FileOutcome.of(entry)
    carried, named = _record_file(spool, outcome, changes, report)
    report.channel.update({"upload_history": outcome.summary(), "carried_over": carried})
    if carried:
        report.details["carried_over"] += carried
        report.channel["carried_over_keys"] = named
        logger.warning(
            "%d row(s) of the file were not written by DCP (%s...): carried over to the next run",
            carried,
            ", ".join(named),
        )


def _record_file(
    spool: ChangeSpool, outcome: FileOutcome, changes: ChangeFilter | None, report: RunReport
) -> tuple[int, list[str]]:
    """Acknowledge each row of the file as Upload History answered it; ``(carried over, first keys)``."""
    carried, named = 0, list[str]()
    for batch, lines in spool.read(in_file=True):
        written, refused = outcome.answers(lines)
        for index in np.flatnonzero(refused):
            line = int(lines[index])
            report.reject(Rejection(batch.rows[index], batch.keys[index], outcome.reason(line)))
        not_written = np.flatnonzero(~written)
        carried += len(not_written)
        named += [batch.keys[i] for i in not_written[: _KEYS_NAMED - len(named)]]
        report.rows_sent += len(batch) - int(np.count_nonzero(~written & ~refused))
        report.rows_succeeded += int(np.count_nonzero(written))
        if changes is not None:
            changes.run.acknowledge(batch.hashes, batch.keys, batch.prints, written)
    return carried, named


def _replay(
    batches: Iterator[tuple[Batch, np.ndarray]],
    writer: DcpProfileWriter,
    changes: ChangeFilter | None,
    common: dict[str, Any],
) -> None:
    """Send spooled items through the profile API: ``run_sync`` over pages of prepared items."""
    report: RunReport = common["report"]
    read = report.rows_read  # these rows were counted when the source was read
    pages = cast(Iterable[Page], (_Prepared(batch) for batch, _ in batches))
    replay_common = {**common, "progress": None, "partition": None}
    try:
        run_sync(
            pages, _Replaying(writer), changes=_Answers(changes), max_rejected=_NO_LIMIT, **replay_common
        )
    finally:
        report.rows_read = read


class _Spooling:
    """In ``run_sync``'s place of change tracking: the items change detection picks go to the spool,
    and none to the API (``select`` gives back nothing)."""

    def __init__(self, writer: DcpProfileWriter, spool: ChangeSpool, changes: ChangeFilter | None) -> None:
        self.writer = writer
        self.spool = spool
        self.changes = changes

    def preselect(self, page: Page, partition: Partition | None) -> Preselection | None:
        return None if self.changes is None else self.changes.preselect(page, partition)

    def select(self, batch: Batch) -> Batch:
        if self.spool.columns is None:
            self.spool.set_columns(self.writer.attributes_written())
        if not len(batch):
            return batch
        if self.changes is not None:
            chosen = self.changes.select(batch)
        else:
            bodies, _ = encoded_bodies(batch.bodies)
            chosen = Batch(batch.rows, batch.keys, bodies)
        if len(chosen):
            original = dict(zip(batch.rows, batch.bodies, strict=True))
            self.spool.add(chosen, [original[row] for row in chosen.rows])
        return Batch()

    def dispatching(self, batch: Batch) -> None:
        """Never called: nothing is sent."""

    def record(self, batch: Batch, result: BatchResult) -> None:
        """Never called: nothing is sent."""


class _Answers:
    """Change tracking for spooled items: already chosen, so only the API's answers are recorded."""

    def __init__(self, changes: ChangeFilter | None) -> None:
        self.changes = changes

    def preselect(self, page: Page, partition: Partition | None) -> None:
        """Spooled items are prepared already."""

    def select(self, batch: Batch) -> Batch:
        return batch

    def dispatching(self, batch: Batch) -> None:
        if self.changes is not None:
            self.changes.dispatching(batch)

    def record(self, batch: Batch, result: BatchResult) -> None:
        if self.changes is not None:
            self.changes.record(batch, result)


class _Prepared:
    """A page of items already prepared (for ``_Replaying``): what ``run_sync`` reads of a page."""

    header: Sequence[str] = ()
    rows: Sequence[Any] = ()

    def __init__(self, batch: Batch) -> None:
        self.batch = batch

    def __len__(self) -> int:
        return len(self.batch)


class _Replaying:
    """The DCP writer for pages of prepared items: they are sent as they are."""

    def __init__(self, writer: DcpProfileWriter) -> None:
        self.writer = writer
        self.operation, self.api, self.target = writer.operation, writer.api, writer.target
        self.batch_size, self.orders_by_key = writer.batch_size, writer.orders_by_key
        self.holds_last_batch, self.signature = writer.holds_last_batch, writer.signature

    def check_columns(self, columns: Sequence[str]) -> None:
        """Checked when the source was read."""

    def resume(self, metadata: dict[str, Any]) -> None:
        """Nothing to resume: the writer took the metadata when the source was read."""

    def prepare_page(self, first_row: int, page: Page) -> tuple[Batch, list[Rejection]]:
        return cast(_Prepared, page).batch, []

    def send(self, batch: Batch, final: bool) -> BatchResult:
        return self.writer.send(batch, final)
